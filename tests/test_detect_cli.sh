#!/usr/bin/env bash
# A detection run end to end (issue 14) through build/cyclebnn: a tiny binary
# Faster R-CNN on a synthetic VOCdevkit the run writes itself; the results
# file's detection tables read back; 1 and 2 threads bitwise; Ctrl-C then a
# rerun resumes bitwise to the uninterrupted numbers; the detections through
# cbnn_voc_results (comp4 files) and cbnn_voc_eval; the CLI's errors.
#
#   tests/test_detect_cli.sh BUILD/cyclebnn BUILD/analysis/cbnn_voc_results BUILD/analysis/cbnn_voc_eval
set -uo pipefail
exe=${1:?usage: test_detect_cli.sh cyclebnn cbnn_voc_results cbnn_voc_eval}
vres=${2:?}
veval=${3:?}
py=/usr/bin/python3
. "$(dirname "$0")/testlib.sh"
work_dir detect_cli

# 16 synthetic images: VOC2007 trainval (4) + VOC2012 trainval (8) train, VOC2007 test (4)
cat > "$work/det.yaml" <<EOF
name: det_cli
base:
  model: {arch: frcnn_resnet18, conv: cyclebnn, width: 8}
  precision: {schedule: cyclic, bits: [2, 6], grad_bits: 8, cycles: 2}
  data: {dataset: synth_voc, path: "$work/synth", synth_images: 16, min_size: 64}
  detect: {anchor_scales: [1, 2, 4], rois_per_image: 16, pre_nms_train: 600, post_nms_train: 100,
           pre_nms_test: 300, post_nms_test: 50}
  optim: {name: adamw, lr: 0.002, weight_decay: 0}
  schedule: {lr: step, step_epochs: [1], gamma: 0.1}
  train: {iterations: 8, batch_size: 4, eval_interval: 4, log_interval: 1, checkpoint_interval: 2, seed: 3}
EOF
res="$work/results"
h5="$res/det_cli.h5"

"$exe" --results "$res" "$work/det.yaml" > "$work/a.out" 2> "$work/a.err"; rc=$?
check "a detection run completes" test $rc -eq 0
check "it wrote the synthetic devkit" test -d "$work/synth/VOCdevkit/VOC2007/Annotations"
check "it leaves no temporary devkit" bash -c "! ls -d '$work'/synth.tmp* 2>/dev/null"
check "progress names the detection losses" grep -q "^\[det_cli\] step 8/8 .*rpn .*rcnn " "$work/a.err"
check "evaluations print mAP07" grep -q "eval @ step 8 on 4 images: mAP07 " "$work/a.err"
check "the results file has the detection tables" "$py" -c '
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    r = f["runs/det_cli"]
    assert r.attrs["status"] in (b"complete", "complete"), r.attrs["status"]
    assert len(r["train/loss"]) == 8 and np.all(np.isfinite(r["train/loss"][:]))
    t = r["detect_train"]
    for k in ("rpn_cls", "rpn_box", "rcnn_cls", "rcnn_box", "rpn_prior", "rpn_reg", "head_prior", "head_reg",
              "rpn_fg", "roi_fg"):
        assert len(t[k]) == 8, k
    # the IB terms are 0 until the decay after epoch 1 (24 entries with flips: 6 steps of 4), then on
    assert t["rpn_reg"][0] == 0 and t["rpn_reg"][7] > 0, (t["rpn_reg"][:])
    e = r["detect_eval"]
    assert list(e["step"][:]) == [4.0, 8.0], e["step"][:]
    # a detection dataset has no validation hold-out (data.val_split -1 is 0 for it): the periodic
    # evaluations are test/ rows, role 0 and the last role 2, their top1 the mAP07 in percent
    assert r.attrs["val_split"] == 0 and len(r["val/step"]) == 0, (r.attrs["val_split"], r["val/step"][:])
    tt = r["test"]
    assert list(tt["step"][:]) == [4, 8] and list(tt["role"][:]) == [0, 2] and list(tt["fixed"][:]) == [0, 0], \
        (tt["step"][:], tt["role"][:], tt["fixed"][:])
    assert np.allclose(tt["top1"][:], 100 * e["map07"][:], rtol=1e-12, atol=0), (tt["top1"][:], e["map07"][:])
    assert r.attrs["final_test_top1"] == tt["top1"][1] and r.attrs["paper_best_top1"] == tt["top1"][:].max()
    assert r.attrs["selected_step"] == 8 and r.attrs["test_top1_at_selected"] == r.attrs["final_test_top1"]
    ap = r["ap"]
    assert len(ap["class"]) == 20 and len(ap["ap07"]) == 20
    d = r["detections"]
    n = len(d["score"])
    for k in ("image", "class", "x1", "y1", "x2", "y2"):
        assert len(d[k]) == n, k
    assert len(r["detection_images/id"]) == 4
    # cost/ and summary/ cover both graphs; the bit-weighted MACs of a cyclic run are below its fp32 count
    names = [x.decode() if isinstance(x, bytes) else x for x in r["cost/name"][:]]
    assert "conv1" in names and "rpn.conv" in names and "head.cls_score" in names, names
    assert len(r["summary/name"]) == len(names)
    fp32, bit = r.attrs["fp32_macs"], r.attrs["bit_macs"]
    assert 0 < bit < fp32, (bit, fp32)
    assert 0 < r.attrs["mean_cost_ratio"] < 1, r.attrs["mean_cost_ratio"]
    assert np.all(np.isfinite(r["train/cost_ratio"][:]))
' "$h5"

# the same run with 1 and 2 threads: bitwise the same losses and mAP
cp "$work/det.yaml" "$work/det1.yaml"
sed -i 's/^name: det_cli/name: det_cli1/' "$work/det1.yaml"
"$exe" --threads 1 --results "$res" "$work/det1.yaml" > "$work/t1.out" 2> "$work/t1.err"; rc=$?
check "the 1-thread run completes" test $rc -eq 0
same_numbers() {
    "$py" -c '
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r")["runs"][n] for p, n in ((sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])))
for k in ("train/loss", "test/top1", "test/role", "detect_train/rcnn_box", "detect_train/rpn_cls", "detect_eval/map07",
          "detections/score", "detections/x1"):
    x, y = a[k][:], b[k][:]
    assert x.shape == y.shape and np.array_equal(x, y, equal_nan=True), (k, x, y)
' "$@"
}
check "1 and 2 threads give bitwise the same numbers" same_numbers "$h5" det_cli "$res/det_cli1.h5" det_cli1

# Ctrl-C after step 3, then the same command: resumes from the checkpoint, bitwise the uninterrupted run
sed 's/^name: det_cli/name: det_cli2/; s/iterations: 8/iterations: 8/' "$work/det.yaml" > "$work/det2.yaml"
"$exe" --results "$res" "$work/det2.yaml" > "$work/s1.out" 2> "$work/s1.err" &
pid=$!
wait_for "$work/s1.err" "step 3/8"
kill -INT $pid
wait $pid; rc=$?
check "Ctrl-C exits 130" test $rc -eq 130
"$exe" --results "$res" "$work/det2.yaml" > "$work/s2.out" 2> "$work/s2.err"; rc=$?
check "the rerun completes" test $rc -eq 0
check "the rerun resumes from a checkpoint" grep -q "resuming from the checkpoint at step [0-9]*/8" "$work/s2.err"
check "the resumed run equals the uninterrupted one bitwise" same_numbers "$h5" det_cli "$res/det_cli2.h5" det_cli2

# the detections as the devkit's comp4 files, scored by cbnn_voc_eval
"$vres" "$h5" --run det_cli --out "$work/comp4" > "$work/vres.out" 2>&1; rc=$?
check "cbnn_voc_results writes the comp4 files" test $rc -eq 0 -a -f "$work/comp4/VOC2007/Main/comp4_det_test_car.txt"
"$veval" --devkit "$work/synth/VOCdevkit" --results "$work/comp4" > "$work/veval.out" 2>&1; rc=$?
check "cbnn_voc_eval scores them" test $rc -eq 0
check "... with a mean row" grep -qi "mean" "$work/veval.out"

# errors: a VOC run without a devkit names the path and the fetch script; a detector on a classification dataset
sed 's/dataset: synth_voc, path: "[^"]*"/dataset: voc, path: "\/nonexistent\/VOCdevkit"/; s/^name: det_cli/name: det_nodata/' \
    "$work/det.yaml" > "$work/nodata.yaml"
"$exe" --results "$res" "$work/nodata.yaml" > "$work/nodata.out" 2>&1; rc=$?
check "a missing devkit fails" test $rc -ne 0
check "... naming the path and datasets/fetch_voc.sh" grep -q "no VOCdevkit at /nonexistent/VOCdevkit.*fetch_voc.sh" \
    "$work/nodata.out"
sed 's/dataset: synth_voc, path: "[^"]*", synth_images: 16, min_size: 64/dataset: fashion_mnist/' "$work/det.yaml" \
    > "$work/cls.yaml"
"$exe" --results "$res" "$work/cls.yaml" > "$work/cls.out" 2>&1; rc=$?
check "a detector with a classification dataset exits 2" test $rc -eq 2
check "... naming file:line" grep -q "cls.yaml:[0-9]*:[0-9]*:" "$work/cls.out"
finish detect_cli
