#!/usr/bin/env bash
# A grid over MPI ranks (issue 15 (a), (e)): build/cyclebnn under mpirun
# against one process, run by run and array by array.
#   - 2 ranks (K = 1) give the results file of one process (every run's
#     train/val/test tables, cost and summary tables, checkpoint arrays
#     (the selected weights included) and attributes, timings aside, and the
#     /stats table over seeds); the parts are merged and removed;
#   - a rank killed mid-run (CBNN_FAULT_EXIT_AT_STEP on rank 1), then the same
#     command again: resumed from the checkpoint, complete and equal; both
#     ranks killed, then one process: it goes on in the parts, equal again;
#   - ranks of different builds (CBNN_FAKE_REVISION on rank 1, MPMD syntax):
#     exit 2 naming the rank, its host and the revision, no file touched;
#     --ranks-per-run not dividing the ranks: exit 2, one message, no file;
#   - job-array style: --max-runs 1 sessions while the results file is held
#     by another session leave complete parts; --merge merges them; merging
#     again is a no-op, a leftover duplicate part is removed, a part with
#     other content is kept with a warning; the last run makes the file equal;
#   - one run over 2 ranks (--ranks-per-run 2, train.shards 2) equals one
#     process at train.shards 2, evaluation included; killed on 2 ranks, it
#     resumes on one process, equal again.
#
#   tests/test_grid_mpi.sh BUILD/cyclebnn MPIRUN
# (meson's env: OMPI_ALLOW_RUN_AS_ROOT..., OMP_NUM_THREADS=1)
set -uo pipefail
exe=${1:?usage: test_grid_mpi.sh path/to/cyclebnn path/to/mpirun}
mpirun=${2:?usage: test_grid_mpi.sh path/to/cyclebnn path/to/mpirun}
py=/usr/bin/python3   # Debian's, with python3-h5py
. "$(dirname "$0")/testlib.sh"
work_dir grid_mpi
export OMP_NUM_THREADS=1
np2=(--oversubscribe --bind-to none -np 2)

# 4 tiny runs: a binary ResNet-8 on 128 Fashion-MNIST images, 8 steps with
# checkpoints every 2 (the fault lands between two). A 64-image validation
# hold-out (the default 5,000 would make the ~15 sessions below evaluate
# 10,000 images per run): the periodic evaluations, the selection and the
# final test rows go through the ranks, the parts and the merges.
cat > "$work/grid.yaml" <<'EOF'
name: mpi_grid
description: grid over ranks test
base:
  model: {arch: cifar_resnet8, conv: cyclebnn}
  precision: {schedule: cyclic, bits: [2, 6], grad_bits: 8}
  data: {dataset: fashion_mnist, train_subset: 128, test_subset: 32, val_split: 64, augment: {flip: true}}
  optim: {name: adamw, lr: 0.002}
  train: {iterations: 8, batch_size: 16, eval_interval: 4, eval_batch_size: 16, log_interval: 4, checkpoint_interval: 2}
grid:
  precision.cycles: [1, 2]
seeds: [1, 2]
EOF
yaml=$work/grid.yaml
h5() { echo "$work/$1/mpi_grid.h5"; }
parts() { echo "$work/$1/mpi_grid.parts"; }

# Every run of two results files equal, timings aside (train/time_s, the
# wall/throughput attributes, and loop_state's two clocks: LS_TRAIN_TIME and
# LS_WALL, indices 3 and 4 in experiments/run_record.c). Extra arguments:
# only those runs; without them the root /stats tables are compared too.
cat > "$work/cmp.py" <<'EOF'
import sys, h5py, numpy as np
TIMING_ATTRS = {"wall_time_s", "images_per_s", "peak_rss_bytes"}
def same(x, y):
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind in "OSU": return x.shape == y.shape and list(x.ravel()) == list(y.ravel())
    return x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
errs = []
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "r") as b:
    ra, rb = sorted(a["runs"].keys()), sorted(b["runs"].keys())
    if ra != rb: errs.append("runs %s vs %s" % (ra, rb))
    for run in (sys.argv[3:] or ra):
        ga, gb = a["runs"][run], b["runs"][run]
        for k in sorted(set(ga.attrs) | set(gb.attrs)):
            if k in TIMING_ATTRS: continue
            if k not in ga.attrs or k not in gb.attrs or not same(ga.attrs[k], gb.attrs[k]):
                errs.append("%s: attribute %s differs" % (run, k))
        na, nb = [], []
        ga.visit(na.append); gb.visit(nb.append)
        if sorted(na) != sorted(nb): errs.append("%s: objects differ" % run)
        for name in sorted(set(na) & set(nb)):
            if not isinstance(ga[name], h5py.Dataset) or name == "train/time_s": continue
            x, y = ga[name][()], gb[name][()]
            if name == "checkpoint/loop_state": x, y = np.delete(x, [3, 4]), np.delete(y, [3, 4])
            if not same(x, y): errs.append("%s: %s differs" % (run, name))
        for must in ("train/loss", "val/loss", "test/loss", "test/role", "checkpoint/params", "checkpoint/opt_v",
                     "checkpoint/buffers", "checkpoint/selected_params"):
            if must not in na: errs.append("%s: no %s" % (run, must))
        if ga.attrs.get("status") != "complete": errs.append("%s: status %s" % (run, ga.attrs.get("status")))
        if len(ga["train/loss"]) != 8: errs.append("%s: %d train rows" % (run, len(ga["train/loss"])))
        if len(ga["val/loss"]) != 2: errs.append("%s: %d val rows" % (run, len(ga["val/loss"])))
    if not sys.argv[3:]:
        if "stats" not in a or "stats" not in b: errs.append("no /stats")
        else:
            for col in sorted(set(a["stats"]) | set(b["stats"])):
                if col not in a["stats"] or col not in b["stats"] or not same(a["stats"][col][()], b["stats"][col][()]):
                    errs.append("/stats/%s differs" % col)
for e in errs: print("DIFF", e)
sys.exit(1 if errs else 0)
EOF
same_as_ref() { "$py" "$work/cmp.py" "$(h5 ref)" "$@" > "$work/cmp.out" 2>&1 || { cat "$work/cmp.out" >&2; return 1; }; }
# status of a run in a results or part file
status_of() { "$py" -c 'import sys,h5py; print(h5py.File(sys.argv[1],"r")["runs"][sys.argv[2]].attrs["status"])' "$1" "$2" 2>/dev/null; }
ckpt_step_of() { "$py" -c 'import sys,h5py; print(int(h5py.File(sys.argv[1],"r")["runs"][sys.argv[2]]["checkpoint"].attrs["step"]))' "$1" "$2" 2>/dev/null; }
n_runs=4

# ---- the reference: one process, straight into the results file
"$exe" --results "$work/ref" "$yaml" > "$work/ref.out" 2> "$work/ref.err"; rc=$?
check "one process: exit 0" test $rc -eq 0
check "one process: 4 trained" has "$work/ref.out" "4 trained, 0 skipped as complete, 0 failed"
check "one process: no part files" test ! -e "$(parts ref)"

# ---- 2 ranks, K = 1: the same file
"$mpirun" "${np2[@]}" "$exe" --results "$work/mpi" "$yaml" > "$work/mpi.out" 2> "$work/mpi.err"; rc=$?
check "2 ranks: exit 0" test $rc -eq 0
check "2 ranks: the same results as one process" same_as_ref "$(h5 mpi)"
check "2 ranks: both ranks trained runs" grep -q "cyclebnn\[1/2 .*trained by ranks 1-1" "$work/mpi.err"
check "2 ranks: rank 0 merged the parts" grep -q "cyclebnn\[0/2 .*: run .* merged into" "$work/mpi.err"
check "2 ranks: the parts are gone" test ! -e "$(parts mpi)"
check "2 ranks: one table, from rank 0" test "$(grep -c '^4 trained, 0 skipped as complete, 0 failed' "$work/mpi.out")" -eq 1
check "2 ranks: nothing left beside the file" test -z "$(ls "$work/mpi" | grep -v '^mpi_grid.h5$')"
# the same command again: nothing to train, the file as it was
"$mpirun" "${np2[@]}" "$exe" --results "$work/mpi" "$yaml" > "$work/mpi2.out" 2> "$work/mpi2.err"; rc=$?
check "2 ranks again: exit 0" test $rc -eq 0
check "2 ranks again: all skipped" has "$work/mpi2.out" "0 trained, 4 skipped as complete, 0 failed"
check "2 ranks again: still the same" same_as_ref "$(h5 mpi)"

# ---- a rank dies mid-run: _exit(9) after step 5 (checkpoints at 4 and 6).
# Rank 1 alone: mpirun then ends rank 0, which may first get further (the
# runs are tiny), even resume rank 1's run itself; either way the run goes
# on from its step-4 checkpoint, and the same command completes the grid.
# Every rank (no CBNN_FAULT_RANK): each leaves its first run's part behind.
fault() { # $1: results dir, then mpirun options
    local dir=$1
    shift
    "$mpirun" "${np2[@]}" -x CBNN_FAULT_EXIT_AT_STEP=5 "$@" "$exe" --results "$work/$dir" "$yaml" \
        > "$work/$dir.fault.out" 2> "$work/$dir.fault.err"
}
fault kill1 -x CBNN_FAULT_RANK=1; rc=$?
check "a killed rank: the session fails" test $rc -ne 0
check "a killed rank: rank 1 died after step 5" grep -q "cyclebnn\[1/2 .*step 4/8" "$work/kill1.fault.err"
"$mpirun" "${np2[@]}" "$exe" --results "$work/kill1" "$yaml" > "$work/kill1.out" 2> "$work/kill1.err"; rc=$?
check "a killed rank, the same command again: exit 0" test $rc -eq 0
check "a killed rank: its run resumed from a checkpoint (4, or a later one of rank 0's)" \
    grep -q "\[cycles=1,seed=2\] resuming from the checkpoint at step [4-7]/8" "$work/kill1.fault.err" "$work/kill1.err"
check "a killed rank, the same command again: complete and equal" same_as_ref "$(h5 kill1)"
check "a killed rank, the same command again: parts merged" test ! -e "$(parts kill1)"
# both ranks die; one process resumes: it goes on in the parts, merges them
fault kill2
for r in 'cycles=1,seed=1' 'cycles=1,seed=2'; do
    check "every rank killed: the part of $r keeps its step-4 checkpoint" \
        test "$(ckpt_step_of "$(parts kill2)/$r.h5" "$r")" = 4 -a "$(status_of "$(parts kill2)/$r.h5" "$r")" = running
done
"$exe" --results "$work/kill2" "$yaml" > "$work/kill2.out" 2> "$work/kill2.err"; rc=$?
check "one process after killed ranks: exit 0" test $rc -eq 0
for r in 'cycles=1,seed=1' 'cycles=1,seed=2'; do
    check "one process after killed ranks: $r goes on in its part" has "$work/kill2.err" "$r: goes on in its part file"
    check "one process after killed ranks: $r from step 4" has "$work/kill2.err" "\[$r\] resuming from the checkpoint at step 4/8"
done
check "one process after killed ranks: complete and equal" same_as_ref "$(h5 kill2)"
check "one process after killed ranks: parts merged" test ! -e "$(parts kill2)"

# ---- ranks that differ: exit 2 before any file, naming rank 1, its host and the field
"$mpirun" --oversubscribe --bind-to none -np 1 "$exe" --results "$work/fp" "$yaml" : \
    -np 1 -x CBNN_FAKE_REVISION=fake0rev "$exe" --results "$work/fp" "$yaml" > "$work/fp.out" 2>&1; rc=$?
check "different builds: exit 2" test $rc -eq 2
check "different builds: rank 1, its host and the revision named" \
    grep -q "rank 1 on $(hostname): git revision 'fake0rev' (rank 0: '" "$work/fp.out"
check "different builds: said once" test "$(grep -c 'do not run the same build' "$work/fp.out")" -eq 1
check "different builds: no file touched" test ! -e "$work/fp"
"$mpirun" "${np2[@]}" "$exe" --ranks-per-run 3 --results "$work/k3" "$yaml" > "$work/k3.out" 2>&1; rc=$?
check "K not dividing the ranks: exit 2" test $rc -eq 2
check "K not dividing the ranks: one message" test "$(grep -c 'does not divide the 2 ranks' "$work/k3.out")" -eq 1
check "K not dividing the ranks: no file touched" test ! -e "$work/k3"

# ---- job-array style: --max-runs 1 while the results file is held elsewhere
arr=$(h5 arr)
"$exe" --merge --results "$work/arr" "$yaml" > "$work/arr0.out" 2>&1; rc=$?
check "--merge on nothing: exit 0, the grid declared" test $rc -eq 0 -a "$(status_of "$arr" 'cycles=1,seed=1')" = pending
# another session holds the file (its lock, as results_h5.c takes it): no merge can happen;
# the sleep itself holds the lock, so killing it releases the file
( exec 9> "$arr.lock" && flock -x 9 && exec sleep 300 ) &
holder=$!
for _ in $(seq 1 100); do flock -n "$arr.lock" true || break; sleep 0.05; done
"$exe" --max-runs 1 --results "$work/arr" "$yaml" > "$work/arr1.out" 2> "$work/arr1.err"; rc=$?
check "--max-runs 1, file held: exit 0" test $rc -eq 0
check "--max-runs 1, file held: the merge is left for later" has "$work/arr1.err" "until the next session or --merge"
check "--max-runs 1, file held: one part complete" \
    test "$(status_of "$(parts arr)/cycles=1,seed=1.h5" 'cycles=1,seed=1')" = complete
"$mpirun" "${np2[@]}" "$exe" --max-runs 1 --results "$work/arr" "$yaml" > "$work/arr2.out" 2> "$work/arr2.err"; rc=$?
check "2 ranks --max-runs 1, file held: exit 0" test $rc -eq 0
check "2 ranks --max-runs 1: each group trained one run" \
    test -e "$(parts arr)/cycles=1,seed=2.h5" -a -e "$(parts arr)/cycles=2,seed=1.h5" -a ! -e "$(parts arr)/cycles=2,seed=2.h5"
check "the file was not touched while held" test "$(status_of "$arr" 'cycles=1,seed=1')" = pending
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
cp "$(parts arr)/cycles=1,seed=1.h5" "$work/dup.h5"
"$exe" --merge --results "$work/arr" "$yaml" > "$work/arr3.out" 2> "$work/arr3.err"; rc=$?
check "--merge: exit 0" test $rc -eq 0
check "--merge: 3 runs merged" test "$(grep -c 'merged into' "$work/arr3.err")" -eq 3
check "--merge: the table shows 3 complete" test "$(grep -c '^cycles=.* complete ' "$work/arr3.out")" -eq 3
check "--merge: the parts are gone" test ! -e "$(parts arr)"
check "--merge: the merged runs equal one process's" same_as_ref "$arr" 'cycles=1,seed=1' 'cycles=1,seed=2' 'cycles=2,seed=1'
cp "$arr" "$work/arr_before.h5"
"$exe" --merge --results "$work/arr" "$yaml" > "$work/arr4.out" 2> "$work/arr4.err"; rc=$?
check "--merge twice: exit 0, nothing merged" test $rc -eq 0 -a "$(grep -c 'merged' "$work/arr4.err")" -eq 0
check "--merge twice: the runs unchanged" "$py" "$work/cmp.py" "$work/arr_before.h5" "$arr" 'cycles=1,seed=1'
# a leftover copy of a merged part (a crash between the commit and the removal): removed
mkdir -p "$(parts arr)" && cp "$work/dup.h5" "$(parts arr)/cycles=1,seed=1.h5"
"$exe" --merge --results "$work/arr" "$yaml" > "$work/arr5.out" 2> "$work/arr5.err"; rc=$?
check "a duplicate part: exit 0, removed as merged already" test $rc -eq 0 -a ! -e "$(parts arr)"
check "a duplicate part: said" has "$work/arr5.err" "was merged already"
# a part of that run with other content: kept, with a warning
mkdir -p "$(parts arr)" && cp "$work/dup.h5" "$(parts arr)/cycles=1,seed=1.h5"
"$py" -c 'import sys,h5py; f=h5py.File(sys.argv[1],"r+"); f["runs/cycles=1,seed=1/train/loss"][0] += 1' \
    "$(parts arr)/cycles=1,seed=1.h5"
"$exe" --merge --results "$work/arr" "$yaml" > "$work/arr6.out" 2> "$work/arr6.err"; rc=$?
check "a different part: kept" test $rc -eq 0 -a -e "$(parts arr)/cycles=1,seed=1.h5"
check "a different part: said" has "$work/arr6.err" "holds another result: the part is kept"
check "a different part: the file's run unchanged" "$py" "$work/cmp.py" "$work/arr_before.h5" "$arr" 'cycles=1,seed=1'
rm -rf "$(parts arr)"
# the last task trains the last run and merges it: the whole file equals one process's
"$exe" --max-runs 1 --results "$work/arr" "$yaml" > "$work/arr7.out" 2> "$work/arr7.err"; rc=$?
check "the last --max-runs task: exit 0" test $rc -eq 0
check "the last --max-runs task: the file equals one process's" same_as_ref "$arr"

# ---- one run over 2 ranks (issue 15 (b)): --ranks-per-run 2 at train.shards 2
# equals one process at train.shards 2, evaluation included (a rank evaluates
# in pieces of 8 rows where one process takes 16); then a run killed on 2
# ranks after step 5 resumes on one process: equal again.
sed 's/checkpoint_interval: 2}/checkpoint_interval: 2, shards: 2}/' "$yaml" > "$work/grid_s2.yaml"
"$exe" --results "$work/ref_s2" "$work/grid_s2.yaml" > "$work/ref_s2.out" 2> "$work/ref_s2.err"; rc=$?
check "shards 2, one process: exit 0" test $rc -eq 0
"$mpirun" "${np2[@]}" "$exe" --ranks-per-run 2 --results "$work/dp2" "$work/grid_s2.yaml" > "$work/dp2.out" \
    2> "$work/dp2.err"; rc=$?
check "shards 2 on 2 ranks (K = 2): exit 0" test $rc -eq 0
check "shards 2 on 2 ranks (K = 2): the same results as one process" \
    "$py" "$work/cmp.py" "$work/ref_s2/mpi_grid.h5" "$work/dp2/mpi_grid.h5"
check "shards 2 on 2 ranks: S = 2 is not S = 1 (the plan reaches the kernels)" \
    bash -c "! '$py' '$work/cmp.py' '$(h5 ref)' '$work/ref_s2/mpi_grid.h5' > /dev/null 2>&1"
"$mpirun" "${np2[@]}" -x CBNN_FAULT_EXIT_AT_STEP=5 "$exe" --ranks-per-run 2 --results "$work/dp2k" \
    "$work/grid_s2.yaml" > "$work/dp2k.fault.out" 2> "$work/dp2k.fault.err"; rc=$?
check "shards 2 on 2 ranks, killed after step 5: the session fails" test $rc -ne 0
"$exe" --results "$work/dp2k" "$work/grid_s2.yaml" > "$work/dp2k.out" 2> "$work/dp2k.err"; rc=$?
check "... then one process: exit 0" test $rc -eq 0
check "... then one process: resumed from the 2 ranks' checkpoint" grep -q "resuming from the checkpoint at step 4/8" \
    "$work/dp2k.err"
check "... then one process: the same results as one process throughout" \
    "$py" "$work/cmp.py" "$work/ref_s2/mpi_grid.h5" "$work/dp2k/mpi_grid.h5"

finish test_grid_mpi
