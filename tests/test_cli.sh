#!/usr/bin/env bash
# The experiment driver end to end (build/cyclebnn, what ./run_experiment runs):
# --help, --dry-run, a grid trained into an HDF5 file read back field by field
# with h5py, rerun skipping complete runs, --only with --fresh, a changed
# config refused without touching the file, a diverging run failing while the
# grid goes on, a full disk and an unwritable results folder leaving the
# previous file intact, one session per file (a second is refused, a dry run
# only reads), Ctrl-C then resume (warned when another build started the run).
#
#   tests/test_cli.sh BUILD/cyclebnn
set -uo pipefail
exe=${1:?usage: test_cli.sh path/to/cyclebnn}
py=/usr/bin/python3   # Debian's, with python3-h5py (scripts/bootstrap.sh installs it)
. "$(dirname "$0")/testlib.sh"
work_dir cli

# A tiny grid: binary ResNet-8 on 256 Fashion-MNIST images, 2 cycle counts x 2 seeds.
cat > "$work/grid.yaml" <<'EOF'
name: cli_grid
description: driver test
base:
  model: {arch: cifar_resnet8, conv: cyclebnn}
  precision: {schedule: cyclic, bits: [2, 6], grad_bits: 8}
  data: {dataset: fashion_mnist, train_subset: 256, test_subset: 64, augment: {flip: true}}
  optim: {name: adamw, lr: 0.002}
  train: {iterations: 16, batch_size: 32, eval_interval: 8, eval_batch_size: 32, log_interval: 8, checkpoint_interval: 4}
grid:
  precision.cycles: [1, 2]
seeds: [1, 2]
EOF
names=("cycles=1,seed=1" "cycles=1,seed=2" "cycles=2,seed=1" "cycles=2,seed=2")
res="$work/results"
h5="$res/cli_grid.h5"

# --help names every option
"$exe" --help > "$work/help" 2>&1; rc=$?
check "--help exits 0" test $rc -eq 0
for opt in --only --dry-run --threads --fresh --results --help-config; do
    check "--help mentions $opt" has "$work/help" "$opt"
done

# --dry-run lists the expanded runs and touches nothing
"$exe" --dry-run --results "$res" "$work/grid.yaml" > "$work/dry" 2>&1; rc=$?
check "--dry-run exits 0" test $rc -eq 0
for n in "${names[@]}"; do check "--dry-run lists $n" grep -q "^[0-9]* *$n  *new  *16 " "$work/dry"; done
check "--dry-run gives an estimated time" has "$work/dry" "estimated"
check "--dry-run writes no file" test ! -e "$res"

# a bad file: exit 2, FILE:LINE:COL, nothing written
sed 's/precision.cycles: \[1, 2\]/precision.cycle: [1, 2]/' "$work/grid.yaml" > "$work/typo.yaml"
"$exe" --results "$res" "$work/typo.yaml" > "$work/typo.out" 2>&1; rc=$?
check "a bad file exits 2" test $rc -eq 2
check "a bad file names file:line:col and the key" has "$work/typo.out" "typo.yaml:10:3: grid axis 'precision.cycle' names no key (did you mean 'precision.cycles'?)"
check "a bad file writes nothing" test ! -e "$res"

# the grid trains
"$exe" --results "$res" "$work/grid.yaml" > "$work/run1.out" 2> "$work/run1.err"; rc=$?
check "the grid exits 0" test $rc -eq 0
check "4 runs trained" has "$work/run1.out" "4 trained, 0 skipped as complete, 0 failed"
check "progress shows run i/N and the grid ETA" grep -q "^\[run 4/4 cycles=2,seed=2\] step 16/16 .*grid ETA" "$work/run1.err"
for n in "${names[@]}"; do check "the table lists $n complete" grep -q "^$n  *complete " "$work/run1.out"; done
check "no working copy is left" test ! -e "$h5.tmp" -a ! -e "$h5.commit"

# the file, field by field
"$py" - "$h5" "$work/grid.yaml" > "$work/h5check" 2>&1 <<'EOF'
import sys, math, h5py, numpy as np
path, yaml_path = sys.argv[1], sys.argv[2]
errors = []
def want(cond, what):
    if not cond: errors.append(what)
with h5py.File(path, "r") as f:
    a = f.attrs
    want(int(a["schema_version"]) == 4, "schema_version")
    want(a["experiment"] == "cli_grid", "experiment")
    want(a["experiment_yaml"] == open(yaml_path).read(), "experiment_yaml is the file verbatim")
    for k in ("git_revision", "compiler", "build", "cpu_model", "start_time", "first_start_time"):
        want(isinstance(a[k], str) and len(a[k]) > 0, "root attribute " + k)
    want(int(a["omp_threads"]) >= 1, "omp_threads")
    runs = sorted(f["runs"].keys())
    want(runs == sorted(["cycles=1,seed=1", "cycles=1,seed=2", "cycles=2,seed=1", "cycles=2,seed=2"]), "run names %s" % runs)
    for name in runs:
        r = f["runs"][name]
        cyc, seed = name.split(",")
        want(r.attrs["status"] == "complete", name + " status")
        cfg = r.attrs["config"]
        want(("cycles: " + cyc.split("=")[1]) in cfg and ("seed: " + seed.split("=")[1]) in cfg, name + " config")
        t, vg, e = r["train"], r["val"], r["test"]
        want(list(t["step"][:]) == list(range(1, 17)), name + " train/step")
        for col in ("loss", "lr", "time_s", "bits", "grad_bits", "cost_ratio", "top1"):
            v = t[col][:]
            want(len(v) == 16 and np.all(np.isfinite(v)), name + " train/" + col)
            want(t[col].maxshape == (None,) and t[col].chunks is not None, name + " train/" + col + " is chunked and extendible")
        want(set(t["bits"][:]) <= {2.0, 3.0, 4.0, 5.0, 6.0} and np.all(t["grad_bits"][:] == 8), name + " bits")
        want(np.all((t["top1"][:] >= 0) & (t["top1"][:] <= 100)), name + " train/top1 in [0, 100]")
        # the default hold-out (data.val_split -1: 5,000 Fashion-MNIST training images) and the
        # selection on it (results/README.md, "Validation, selection and when the test set is evaluated")
        want(r.attrs["val_split"] == 5000, name + " val_split is the default 5000")
        want(list(vg["step"][:]) == [8, 16], name + " val/step")
        vt, vb = vg["top1"][:], vg["bits"][:]
        want(np.all((vt >= 0) & (vt <= 100)) and set(vb) <= {2.0, 3.0, 4.0, 5.0, 6.0}, name + " val/top1, val/bits")
        sel = int(r.attrs["selected_step"])
        want(sel == int(vg["step"][int(np.argmax(vt))]), name + " selected_step is the first best validation top-1")
        want(r.attrs["val_top1_at_selected"] == vt.max(), name + " val_top1_at_selected")
        # the test set: once at the final weights and once at the selected ones (when they differ),
        # each at the evaluation precision (fixed 0) and at eval_bits_fixed (fixed 1), nothing else
        want(r.attrs["eval_bits_fixed"] == 6, name + " eval_bits_fixed is the top of bits [2, 6]")
        rows = list(zip(e["step"][:].tolist(), e["role"][:].tolist(), e["fixed"][:].tolist()))
        want_rows = [(16, 2, 0), (16, 2, 1)] + ([(sel, 1, 0), (sel, 1, 1)] if sel != 16 else [])
        want(sorted(rows) == sorted(want_rows), name + " test/ rows %s, expected %s" % (rows, want_rows))
        tt, tb = dict(zip(rows, e["top1"][:])), dict(zip(rows, e["bits"][:]))
        if sorted(rows) == sorted(want_rows):
            srole = 1 if sel != 16 else 2
            want(r.attrs["final_test_top1"] == tt[(16, 2, 0)], name + " final_test_top1 is the final test row")
            want(r.attrs["final_test_top1_fixed"] == tt[(16, 2, 1)], name + " final_test_top1_fixed")
            want(r.attrs["test_top1_at_selected"] == tt[(sel, srole, 0)], name + " test_top1_at_selected")
            want(r.attrs["test_top1_at_selected_fixed"] == tt[(sel, srole, 1)], name + " test_top1_at_selected_fixed")
            want(r.attrs["paper_best_top1"] == max(tt[k] for k in rows if k[2] == 0), name + " paper_best_top1")
            want(all(tb[k] == 6 for k in rows if k[2] == 1), name + " test/bits of the fixed rows")
            # the evaluation precision of a step is the same on validation and on test
            want(tb[(sel, srole, 0)] == vb[list(vg["step"][:]).index(sel)], name + " test/bits at the selected step")
        want(0 < r.attrs["mean_cost_ratio"] < 0.05, name + " mean_cost_ratio")
        want(r.attrs["bit_macs"] < r.attrs["fp32_macs"], name + " bit_macs < fp32_macs")
        want(r.attrs["wall_time_s"] > 0, name + " wall_time_s")
        nl = len(r["summary"]["name"])
        want(nl > 5 and all(len(r["cost"][c]) == nl for c in r["cost"]), name + " cost/ and summary/ tables")
        ck = r["checkpoint"]
        want(ck.attrs["complete"] == 1 and ck.attrs["step"] == 16, name + " checkpoint flag and step")
        want(len(ck["params"]) == len(ck["opt_m"]) == len(ck["opt_v"]) and np.all(np.isfinite(ck["params"][:])), name + " checkpoint arrays")
        # the selected weights are kept; when the selection is the last evaluation they are the final ones
        want(len(ck["selected_params"]) == len(ck["params"]) and int(ck["selected_state"][0]) == sel, name + " checkpoint/selected_*")
        if sel == 16:
            want(np.array_equal(ck["selected_params"][:], ck["params"][:]), name + " selected (step 16) = final weights")
    # /stats: per configuration (the run name without seed=N), each metric over the 2 seeds
    s = f["stats"]
    cfgs, mets = s["config"].asstr()[:], s["metric"].asstr()[:]
    want(sorted(set(cfgs)) == ["cycles=1", "cycles=2"], "stats configurations %s" % sorted(set(cfgs)))
    for i, (c, m) in enumerate(zip(cfgs, mets)):
        vals = [f["runs"][c + ",seed=%d" % k].attrs[m] for k in (1, 2)]
        want(s["n"][i] == 2 and abs(s["mean"][i] - np.mean(vals)) < 1e-9, "stats %s %s: n %d mean %r, runs %s" % (c, m, s["n"][i], s["mean"][i], vals))
    want({"test_top1_at_selected", "final_test_top1", "paper_best_top1"} <= set(mets), "stats metrics %s" % sorted(set(mets)))
print("\n".join(errors) if errors else "h5 ok")
sys.exit(1 if errors else 0)
EOF
rc=$?
check "the results file reads back field by field: $(cat "$work/h5check" | tr '\n' ';')" test $rc -eq 0
check "h5dump reads the file" bash -c "h5dump -A '$h5' | grep -q 'schema_version'"
# the printed table is the file's numbers: val@sel, sel step, test@sel, final test, fixed, best test*
"$py" - "$h5" "$work/run1.out" > "$work/table.check" 2>&1 <<'PYEOF'
import sys, h5py
f, out = h5py.File(sys.argv[1], "r"), open(sys.argv[2]).read().splitlines()
bad = []
head = [l for l in out if l.startswith("run ")]
if not head or head[0].split()[1:10] != ["status", "val@sel", "sel", "step", "test@sel", "final", "test", "fixed", "best"]:
    bad.append("header %r" % head)
cols = ("val_top1_at_selected", "selected_step", "test_top1_at_selected", "final_test_top1", "final_test_top1_fixed", "paper_best_top1")
for name, r in f["runs"].items():
    row = [l.split() for l in out if l.split()[:1] == [name]]
    a = r.attrs
    want = ["%.2f%%" % a[cols[0]], "%.0f" % a[cols[1]]] + ["%.2f%%" % a[c] for c in cols[2:]]
    if len(row) != 1 or row[0][2:8] != want: bad.append("%s: %s, file %s" % (name, row, want))
if not any("SELECTED ON TEST" in l for l in out): bad.append("no legend saying best test* is selected on test")
print("; ".join(bad) or "ok")
sys.exit(1 if bad else 0)
PYEOF
rc=$?
check "the printed table shows the file's selection numbers ($(cat "$work/table.check"))" test $rc -eq 0

# rerun: everything is skipped
"$exe" --results "$res" "$work/grid.yaml" > "$work/run2.out" 2> "$work/run2.err"; rc=$?
check "the rerun exits 0" test $rc -eq 0
check "the rerun skips the 4 complete runs" has "$work/run2.out" "0 trained, 4 skipped as complete, 0 failed"

# a changed config is refused and the file is left alone
sum_before=$(md5sum < "$h5")
sed 's/lr: 0.002/lr: 0.003/' "$work/grid.yaml" > "$work/changed.yaml"
"$exe" --results "$res" "$work/changed.yaml" > "$work/changed.out" 2>&1; rc=$?
check "a changed config exits 2" test $rc -eq 2
check "a changed config is explained" has "$work/changed.out" "was trained with another configuration: in the file: '    lr: 0.002', in the YAML: '    lr: 0.003'"
check "a changed config leaves the file as it was" test "$(md5sum < "$h5")" = "$sum_before"
check "a changed config leaves no working copy" test ! -e "$h5.tmp"
# ... while threads may change freely
"$exe" --threads 1 --results "$res" "$work/grid.yaml" > "$work/thr.out" 2>&1; rc=$?
check "another thread count is not a changed config" test $rc -eq 0

# --fresh with --only: the selected runs start over, the others are kept as they were
# (issue 12, 2: it used to wipe every run that was not selected)
cp "$h5" "$work/before_only.h5"
"$exe" --fresh --only 'cycles=2,*' --results "$res" "$work/grid.yaml" > "$work/only.out" 2> "$work/only.err"; rc=$?
check "--fresh --only exits 0" test $rc -eq 0
check "--only trains the 2 matching runs again" has "$work/only.out" "2 trained, 0 skipped as complete, 0 failed"
check "--fresh --only says what it resets" has "$work/only.err" "--fresh --only: the 2 selected runs start over; the file's other runs are kept"
check "--fresh --only retrains from step 1" grep -q "^\[run 1/2 cycles=2,seed=1\] step 8/16" "$work/only.err"
"$py" - "$work/before_only.h5" "$h5" > "$work/only.check" 2>&1 <<'PYEOF'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
bad = []
if sorted(b["runs"]) != sorted(a["runs"]): bad.append("run list %s" % sorted(b["runs"]))
if b.attrs["first_start_time"] != a.attrs["first_start_time"]: bad.append("first_start_time not kept")
for n in a["runs"]:
    ra, rb = a["runs"][n], b["runs"][n]
    if rb.attrs["status"] != "complete": bad.append(n + " is " + rb.attrs["status"])
    for d in ("train/loss", "train/step", "val/top1", "test/top1", "test/role", "checkpoint/params", "checkpoint/opt_v",
              "checkpoint/selected_params"):
        if not np.array_equal(ra[d][:], rb[d][:]): bad.append(n + " " + d + " differs")
    # the kept runs are copied whole; the retrained ones were trained again (deterministic: equal numbers)
    kept = n.startswith("cycles=1")
    if kept and ra["train/time_s"][:].tolist() != rb["train/time_s"][:].tolist(): bad.append(n + " was retrained")
print("; ".join(bad) or "ok")
sys.exit(1 if bad else 0)
PYEOF
rc=$?
check "after --fresh --only: the 2 other runs kept bitwise, all 4 complete and equal ($(cat "$work/only.check"))" test $rc -eq 0
"$exe" --only nomatch --results "$res" "$work/grid.yaml" > "$work/nomatch.out" 2>&1; rc=$?
check "--only matching nothing exits 2 and lists the runs" test $rc -eq 2 -a "$(grep -c 'cycles=' "$work/nomatch.out")" -eq 4

# a diverging run fails with a message; the grid goes on
cat > "$work/diverge.yaml" <<'EOF'
name: cli_diverge
base:
  model: {arch: cifar_resnet8, conv: cyclebnn}
  precision: {schedule: cyclic, bits: [2, 6], cycles: 2}
  data: {train_subset: 256, test_subset: 64}
  train: {iterations: 8, batch_size: 32, eval_interval: 8, eval_batch_size: 32}
runs:
  diverge: {optim: {name: sgd, lr: 1e30}}
  fine: {}
EOF
"$exe" --results "$res" "$work/diverge.yaml" > "$work/div.out" 2> "$work/div.err"; rc=$?
check "a failed run makes the exit status 1" test $rc -eq 1
check "the failed run says why" has "$work/div.err" "run diverge failed: loss is"
check "the grid continues after a failure" grep -q "^fine  *complete " "$work/div.out"
"$py" -c "
import sys, h5py
r = h5py.File(sys.argv[1], 'r')['runs']
sys.exit(0 if r['diverge'].attrs['status'] == 'failed' and 'diverged' in r['diverge'].attrs['message'] and r['fine'].attrs['status'] == 'complete' else 1)
" "$res/cli_diverge.h5"
check "the file records failed + message and complete" test $? -eq 0
# a failed run is skipped by a rerun, with the way to retry it (issue 12, 2)
"$exe" --results "$res" "$work/diverge.yaml" > "$work/div2.out" 2> "$work/div2.err"; rc=$?
check "a rerun with a failed run exits 1" test $rc -eq 1
check "a rerun names --retry-failed" has "$work/div2.err" "run 1/2 diverge: failed earlier (loss is"
check "a rerun names --retry-failed (2)" has "$work/div2.err" "--retry-failed trains it again from its last checkpoint, --fresh --only 'diverge' starts it over"
# --retry-failed trains it again (this one diverges again: same numbers, same failure)
"$exe" --retry-failed --results "$res" "$work/diverge.yaml" > "$work/div3.out" 2> "$work/div3.err"; rc=$?
check "--retry-failed retries the failed run" has "$work/div3.err" "diverge: failed earlier (loss is"
check "--retry-failed says it retries" grep -q "retried (--retry-failed)" "$work/div3.err"
check "--retry-failed: the run trained again and failed again" has "$work/div3.err" "run diverge failed: loss is"
check "--retry-failed skips complete runs" has "$work/div3.out" "0 trained, 1 skipped as complete, 1 failed"
# a run that failed for a passing reason (marked so here) completes from its last checkpoint
"$py" -c '
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    r = f["runs/fine"]
    print(repr(r.attrs["final_test_top1"]))
    r.attrs["status"] = "failed"; r.attrs["message"] = "out of memory"' "$res/cli_diverge.h5" > "$work/fine_top1"
"$exe" --retry-failed --only fine --results "$res" "$work/diverge.yaml" > "$work/div4.out" 2> "$work/div4.err"; rc=$?
check "--retry-failed completes a run that failed for a passing reason" test $rc -eq 0
check "... from its last checkpoint" has "$work/div4.err" "fine: failed earlier (out of memory); retried (--retry-failed), from its last checkpoint"
check "... with its numbers" "$py" -c '
import sys, h5py
r = h5py.File(sys.argv[1], "r")["runs/fine"]
sys.exit(0 if r.attrs["status"] == "complete" and repr(r.attrs["final_test_top1"]) == open(sys.argv[2]).read().strip() else 1)' "$res/cli_diverge.h5" "$work/fine_top1"

# a full disk (simulated with a file-size limit; EFBIG instead of ENOSPC):
# a clear error, and the previous file is intact
size_kb=$(( $(stat -c %s "$h5") * 3 / 4 / 1024 ))   # the 2 kept runs fit, the 2 retrained do not
( trap '' XFSZ; ulimit -f $size_kb; exec "$exe" --fresh --only 'cycles=1,*' --results "$res" "$work/grid.yaml" ) > "$work/full.out" 2>&1; rc=$?
check "a full disk exits 1" test $rc -eq 1
check "a full disk is named" has "$work/full.out" "File too large"
# every error is one line (issue 12, 13: HDF5's disk-full text carried a newline)
check "a full disk's message is one line: $(grep -m1 'File too large' "$work/full.out")" \
    grep -q "^\(cyclebnn: \)\{0,1\}results $h5: .*File too large" "$work/full.out"
check "no line of the full-disk output is a continuation" bash -c "! grep -q '^[[:space:]]' '$work/full.out'"
# what is published is a whole earlier commit (the file as it was, or with the
# retrained runs' checkpoints up to the last commit that fitted), never a partial one
check "a full disk leaves a readable file" bash -c "h5dump -A '$h5' > /dev/null"
check "a full disk leaves no working copy" test ! -e "$h5.tmp" -a ! -e "$h5.commit"
"$exe" --dry-run --results "$res" "$work/grid.yaml" > "$work/after_full" 2>&1
check "the kept runs are still complete after the full disk" grep -q "cycles=2,seed=1  *complete" "$work/after_full"
"$exe" --results "$res" "$work/grid.yaml" > "$work/after_full_rerun.out" 2>&1; rc=$?
check "the same command with space again completes the grid" test $rc -eq 0
check "... and all 4 runs are complete" test "$(grep -c '^cycles=.*  *complete ' "$work/after_full_rerun.out")" -eq 4

# an unwritable results folder (a file is in the way: root ignores permissions)
touch "$work/afile"
"$exe" --results "$work/afile/sub" "$work/grid.yaml" > "$work/unw.out" 2>&1; rc=$?
check "an unwritable results folder exits 1" test $rc -eq 1
check "an unwritable results folder is named" has "$work/unw.out" "cannot create directory $work/afile"

# --results "" (an unset variable): refused, nothing at the file-system root (issue 12, 8)
rm -f /cli_grid.h5
"$exe" --results "" "$work/grid.yaml" > "$work/empty_res.out" 2>&1; rc=$?
check "--results '' exits 2" test $rc -eq 2
check "--results '' is explained" has "$work/empty_res.out" "cyclebnn: --results expects a directory, got an empty string"
check "--results '' writes nothing in /" test ! -e /cli_grid.h5 -a ! -e /cli_grid.h5.lock

# what stands at the results path, each one line naming it (issue 12, 13)
mkdir -p "$work/kinds/cli_grid.h5"
"$exe" --results "$work/kinds" "$work/grid.yaml" > "$work/kind_dir.out" 2>&1; rc=$?
check "a directory in place of the file exits 1" test $rc -eq 1
check "a directory in place of the file is named as such" test "$(head -n 1 "$work/kind_dir.out")" = \
    "cyclebnn: results $work/kinds/cli_grid.h5: is a directory, not a results file: move it away or use another --results directory"
rmdir "$work/kinds/cli_grid.h5"
: > "$work/kinds/cli_grid.h5"
"$exe" --results "$work/kinds" "$work/grid.yaml" > "$work/kind_empty.out" 2>&1; rc=$?
check "an empty results file exits 1" test $rc -eq 1
check "an empty results file is named as such" test "$(head -n 1 "$work/kind_empty.out")" = \
    "cyclebnn: results $work/kinds/cli_grid.h5: is empty (0 bytes), not a results file: move it away or start over with --fresh"
check "an empty results file is left as it was" test ! -s "$work/kinds/cli_grid.h5"
# a symlinked results file: the target is updated, the link stays a link (issue 12, 12)
mkdir -p "$work/store" "$work/linked"
cp "$h5" "$work/store/real.h5"
ln -s "$work/store/real.h5" "$work/linked/cli_grid.h5"
"$exe" --fresh --only 'cycles=1,seed=1' --results "$work/linked" "$work/grid.yaml" > "$work/link.out" 2>&1; rc=$?
check "a symlinked results file trains" test $rc -eq 0
check "the link is still a link" test -L "$work/linked/cli_grid.h5"
check "the target holds the commit" bash -c "h5dump -a /runs/cycles=1,seed=1/status '$work/store/real.h5' | grep -q complete"
check "no working copy or lock beside the link" test ! -e "$work/linked/cli_grid.h5.tmp" -a ! -e "$work/linked/cli_grid.h5.lock"

# Ctrl-C: stop after the current step with a checkpoint, then resume
cat > "$work/long.yaml" <<'EOF'
name: cli_long
base:
  model: {arch: cifar_resnet8, conv: cyclebnn}
  precision: {schedule: cyclic, bits: [2, 6], cycles: 4}
  data: {train_subset: 2048, test_subset: 64, val_split: 64}   # a small hold-out: the default 5,000 costs minutes under ASan
  train: {iterations: 400, batch_size: 32, eval_interval: 200, eval_batch_size: 32, log_interval: 1, checkpoint_interval: 50}
EOF
"$exe" --results "$res" "$work/long.yaml" > "$work/long1.out" 2> "$work/long1.err" &
pid=$!
for _ in $(seq 1 600); do grep -q "step 20/400" "$work/long1.err" 2>/dev/null && break; sleep 0.1; done
# while it trains: a second session is refused, a dry run only looks
"$exe" --results "$res" "$work/long.yaml" > "$work/second.out" 2>&1; rc=$?
check "a second session on the same file exits 3 (in use)" test $rc -eq 3
check "a second session names the lock" has "$work/second.out" "another cyclebnn session is writing this file"
"$exe" --dry-run --results "$res" "$work/long.yaml" > "$work/dry_during.out" 2>&1; rc=$?
check "--dry-run during a session works" test $rc -eq 0
kill -INT $pid
wait $pid; rc=$?
check "Ctrl-C exits 130" test $rc -eq 130
check "Ctrl-C says how to resume" has "$work/long1.err" "rerun the same command to resume"
check "the run records the build that started it" "$py" -c '
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    sys.exit(0 if f["runs/cli_long"].attrs["git_revision"] not in ("", None) else 1)' "$res/cli_long.h5"
# as if another build had started it: the resume warns that the numbers follow this build from there;
# and as if a loss landscape had been computed on the interrupted weights: the resume removes it (issue 12, 3)
"$py" -c '
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f["runs/cli_long"].attrs["git_revision"] = "0000000"
    g = f["runs/cli_long"].create_group("landscape")
    g.attrs["checkpoint_step"] = f["runs/cli_long/checkpoint"].attrs["step"]' "$res/cli_long.h5"
"$exe" --results "$res" "$work/long.yaml" > "$work/long2.out" 2> "$work/long2.err"; rc=$?
check "the rerun after Ctrl-C completes" test $rc -eq 0
check "the rerun resumes from the stop's checkpoint" grep -q "resuming from the checkpoint at step [0-9]*/400" "$work/long2.err"
check "resuming another build's run warns" grep -q "warning: run cli_long was started by build 0000000 and resumes from step" "$work/long2.err"
check "the resume says the stale landscape goes" has "$work/long2.err" "run cli_long trains on: its landscape (of an unfinished state) is removed"
check "the resumed run has no stale landscape" "$py" -c '
import sys, h5py
sys.exit(0 if "landscape" not in h5py.File(sys.argv[1], "r")["runs/cli_long"] else 1)' "$res/cli_long.h5"
check "the warning keeps the starter's revision" "$py" -c '
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    sys.exit(0 if f["runs/cli_long"].attrs["git_revision"] == "0000000" else 1)' "$res/cli_long.h5"
check "no lock file is left" test ! -e "$res/cli_long.h5.lock"

# ./run_experiment (the wrapper): signals reach cyclebnn, a refused session draws no figures (issue 12, 9 and 10)
wrapper="${CBNN_SOURCE_ROOT:?}/run_experiment"
export CBNN_NO_BUILD=1 CBNN_BUILD_DIR="$(cd "$(dirname "$exe")" && pwd)"
child_of() { pgrep -P "$1" -x cyclebnn; }
"$wrapper" --fresh --results "$res" "$work/long.yaml" > "$work/w1.out" 2> "$work/w1.err" &
wpid=$!
wait_for "$work/w1.err" "step 20/400"
cpid=$(child_of $wpid)
check "the wrapper runs cyclebnn as its child" test -n "$cpid"
"$wrapper" --results "$res" "$work/long.yaml" > "$work/w2.out" 2>&1; rc=$?
check "a second wrapper session exits 3 (in use)" test $rc -eq 3
check "a refused session draws no figures" bash -c "! grep -q 'regenerate\|made .*png' '$work/w2.out'"
kill -TERM $wpid
wait $wpid; rc=$?
check "SIGTERM to the wrapper stops cyclebnn with a checkpoint (exit 130)" test $rc -eq 130
check "... which says how to resume" has "$work/w1.err" "rerun the same command to resume"
check "no cyclebnn is left training" bash -c "[ -n '$cpid' ] && ! kill -0 '$cpid' 2>/dev/null"
# kill -9 of the wrapper: cyclebnn stops by itself (with a checkpoint) instead of training on, orphaned, holding the lock
"$wrapper" --results "$res" "$work/long.yaml" > "$work/w3.out" 2> "$work/w3.err" &
wpid=$!
wait_for "$work/w3.err" "resuming from the checkpoint"
cpid=$(child_of $wpid)
check "the third wrapper session trains (cyclebnn is its child)" test -n "$cpid"
kill -KILL $wpid
for _ in $(seq 1 100); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
check "kill -9 of the wrapper: cyclebnn stops" bash -c "[ -n '$cpid' ] && ! kill -0 '$cpid' 2>/dev/null"
check "... having checkpointed" has "$work/w3.err" "rerun the same command to resume"
"$exe" --results "$res" "$work/long.yaml" > "$work/w4.out" 2>&1; rc=$?
check "... and the same command completes the run" test $rc -eq 0
unset CBNN_NO_BUILD CBNN_BUILD_DIR

finish test_cli
