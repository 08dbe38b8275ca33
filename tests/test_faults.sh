#!/usr/bin/env bash
# Fault injection (meson suite "faults", issue 12): a training session killed
# with SIGKILL at system calls of its commits, or meeting a full disk, then the
# same command again. After each fault the published results file is readable
# (or absent, before the first commit), and once the rerun finishes, every
# number of the run is bitwise the one an uninterrupted session wrote. Also the
# lock interleaving of issue 12 (1) on the real binary: a session stalled
# between open(PATH.lock) and flock() while the holder ends and a third starts
# must be refused, not become a second writer.
#
#   tests/test_faults.sh BUILD/cyclebnn
#
# The kills are strace's (-e inject=SYSCALL:signal=SIGKILL:when=N), counted
# over the system calls that touch the results file, its working copy, its
# commit copy and its lock (-P); strace is installed by scripts/bootstrap.sh.
set -uo pipefail
exe=$(cd "$(dirname "${1:?usage: test_faults.sh path/to/cyclebnn}")" && pwd)/$(basename "$1")
py=/usr/bin/python3
. "$(dirname "$0")/testlib.sh"
work_dir faults
command -v strace >/dev/null || { echo "strace is not installed (Debian package strace; scripts/bootstrap.sh installs it)"; exit 1; }
start=$(date +%s)
# LeakSanitizer stops the world with ptrace, which it cannot do under strace: off
# for the traced sessions of a sanitizer build (the untraced ones keep it)
traced() { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace "$@"; }

# One run, a commit every 2 steps (checkpoints), evaluations, 2 cycles of precision.
# A 64-image validation hold-out (not the default 5,000, which would make each of
# the ~40 sessions below evaluate 10,000 images): the periodic evaluations, the
# selected checkpoint's arrays and the final test rows go through every fault.
# Evaluations at steps 3, 6 and 8, checkpoints every 2: this run selects step 3
# (checked below), weights that are in no checkpoint's params, so every
# session resumed from step 4 or later must restore them from checkpoint/selected_*.
cat > "$work/f.yaml" <<'EOF'
name: faults
base:
  model: {arch: cifar_resnet8, conv: cyclebnn}
  precision: {schedule: cyclic, bits: [2, 6], grad_bits: 8, cycles: 2}
  data: {dataset: fashion_mnist, train_subset: 128, test_subset: 64, val_split: 64}
  train: {iterations: 8, batch_size: 32, eval_interval: 3, eval_batch_size: 32, log_interval: 2, checkpoint_interval: 2, threads: 2}
EOF

# Every number a run has (not times, which differ by nature), as text.
digest() {
    "$py" - "$1" <<'EOF'
import sys, hashlib, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    for name in sorted(f["runs"]):
        r = f["runs"][name]
        print(name, r.attrs["status"], *(repr(r.attrs[a]) for a in (
            "final_test_top1", "paper_best_top1", "test_top1_at_selected", "val_top1_at_selected", "selected_step",
            "final_test_top1_fixed", "test_top1_at_selected_fixed", "eval_bits_fixed", "val_split",
            "mean_cost_ratio", "bit_macs", "fp32_macs")))
        for g, cols in (("train", ("step", "loss", "lr", "bits", "grad_bits", "cost_ratio", "top1")),
                        ("val", ("step", "top1", "loss", "bits")),
                        ("test", ("step", "top1", "loss", "bits", "role", "fixed"))):
            for c in cols:
                print(g, c, r[g][c][:].tolist())
        ck = r["checkpoint"]
        print("checkpoint", ck.attrs["complete"], ck.attrs["step"])
        for a in sorted(ck):
            v = ck[a][:]
            if a == "loop_state":   # experiments/run_record.c LS_*: best, top1, loss, train time, wall time, cr sum and compensation
                v = np.delete(v, [3, 4])
            print(a, hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest())
EOF
}

res="$work/base"
"$exe" --results "$res" "$work/f.yaml" > "$work/base.out" 2>&1; rc=$?
check "the uninterrupted session exits 0" test $rc -eq 0
digest "$res/faults.h5" > "$work/base.digest" 2>&1
check "the uninterrupted session's file reads back" grep -q "^faults complete" "$work/base.digest"
check "the uninterrupted session evaluated on validation at steps 3, 6 and 8" grep -q "^val step \[3, 6, 8\]$" "$work/base.digest"
check "... selected step 3: test at the final and the selected weights" grep -q "^test step \[8, 8, 3, 3\]$" "$work/base.digest"

# The system calls of a session that touch the results paths, by kind.
# strace -P for the results paths under DIR (absolute: strace matches descriptors by their /proc path)
paths_in() { local h5="$1/faults.h5"; echo "-P $h5 -P $h5.tmp -P $h5.commit -P $h5.lock"; }
paths=($(paths_in "$work/probe"))
traced -f -qq -o "$work/probe.strace" -e trace=rename,renameat,renameat2,fsync,write,pwrite64,openat,unlink,flock \
    "${paths[@]}" "$exe" --results "$work/probe" "$work/f.yaml" > /dev/null 2>&1
count() { grep -cE "^[0-9]+ +$1\(" "$work/probe.strace"; }
n_rename=$(count rename) n_fsync=$(count fsync) n_write=$(count write) n_pwrite=$(count pwrite64) n_open=$(count openat)
echo "system calls on the results paths: rename $n_rename, fsync $n_fsync, write $n_write, pwrite64 $n_pwrite, openat $n_open"
# The number of writes is not quite the same from one session to the next:
# HDF5 deflates the train/ and val/ columns, and time_s (wall-clock seconds)
# compresses to a few bytes more or less, which can add or save a pwrite64
# into the working copy (measured: 189 or 190 in three identical sessions) or
# move the commit copy across a buffer boundary. The kill and ENOSPC points
# of those two stop short of the probe's last calls, so that each one is
# reached in every session; the renames, fsyncs and opens are structural.
n_pwrite=$((n_pwrite - 2)) n_write=$((n_write - 1))
check "the probe saw the commits (renames)" test "$n_rename" -ge 4
check "the probe saw the commit copies (write, fsync)" test "$n_write" -ge 4 -a "$n_fsync" -ge 4

# spread K points over 1..N (all of them when N <= K)
points() {
    local n=$1 k=$2 i
    if [ "$n" -le "$k" ]; then seq 1 "$n"; return; fi
    for i in $(seq 0 $((k - 1))); do echo $((1 + i * (n - 1) / (k - 1))); done | uniq
}

# after a fault: the published file is whole (or absent), no working copy is
# taken for it, and the same command completes with the uninterrupted numbers
after_fault() {
    local what=$1 dir=$2
    if [ -e "$dir/faults.h5" ]; then
        check "$what: the published file is readable" bash -c "h5dump -A '$dir/faults.h5' > /dev/null 2>&1"
    fi
    "$exe" --results "$dir" "$work/f.yaml" > "$dir.rerun" 2>&1; local rc=$?
    check "$what: the same command again exits 0 ($(tail -n 1 "$dir.rerun"))" test $rc -eq 0
    digest "$dir/faults.h5" > "$dir.digest" 2>&1
    check "$what: every number equals the uninterrupted session's" cmp -s "$dir.digest" "$work/base.digest"
    check "$what: nothing is left beside the file" bash -c "! ls '$dir' | grep -qv '^faults.h5$'"
}

n_kill=0
kill_at() {
    local call=$1 when=$2 dir="$work/k_${1}_$2"
    traced -f -qq -o /dev/null -e trace="$call" -e inject="$call":signal=SIGKILL:when="$when" $(paths_in "$dir") \
        "$exe" --results "$dir" "$work/f.yaml" > "$dir.out" 2>&1; local rc=$?
    check "kill -9 at $call #$when: the session was killed (exit $rc)" test $rc -ne 0
    n_kill=$((n_kill + 1))
    after_fault "kill -9 at $call #$when" "$dir"
}
[ -n "${FAULTS_ONLY:-}" ] && { kill_at rename 1; finish test_faults; }
for n in $(points "$n_rename" 8); do kill_at rename "$n"; done
for n in $(points "$n_fsync" 6); do kill_at fsync "$n"; done
for n in $(points "$n_write" 6); do kill_at write "$n"; done
for n in $(points "$n_pwrite" 5); do kill_at pwrite64 "$n"; done
for n in $(points "$n_open" 4); do kill_at openat "$n"; done
echo "killed at $n_kill system calls"

# A full disk: real ENOSPC from the writes into the working copy and the commit
# copy, and the file-size limit at several sizes. The session fails with one
# line naming the file; the same command with space again completes it.
n_full=0
enospc_at() {
    local call=$1 when=$2 dir="$work/e_${1}_$2"
    traced -f -qq -o /dev/null -e trace="$call" -e inject="$call":error=ENOSPC:when="$when"+ $(paths_in "$dir") \
        "$exe" --results "$dir" "$work/f.yaml" > "$dir.out" 2>&1; local rc=$?
    check "ENOSPC from $call #$when on: exit 1" test $rc -eq 1
    check "ENOSPC from $call #$when on: one line names the file and the cause" \
        grep -q "^\(cyclebnn: \)\{0,1\}results $dir/faults.h5: .*No space left on device" "$dir.out"
    n_full=$((n_full + 1))
    after_fault "ENOSPC from $call #$when on" "$dir"
}
for n in $(points "$n_write" 3); do enospc_at write "$n"; done
for n in $(points "$n_pwrite" 3); do enospc_at pwrite64 "$n"; done
size=$(stat -c %s "$res/faults.h5")
for frac in 10 35 60 85; do
    dir="$work/fsize_$frac"
    ( trap '' XFSZ; ulimit -f $((size * frac / 100 / 1024)); exec "$exe" --results "$dir" "$work/f.yaml" ) > "$dir.out" 2>&1; rc=$?
    check "file-size limit at $frac%: exit 1" test $rc -eq 1
    check "file-size limit at $frac%: one line names the file" grep -q "^\(cyclebnn: \)\{0,1\}results $dir/faults.h5: .*File too large" "$dir.out"
    n_full=$((n_full + 1))
    after_fault "file-size limit at $frac%" "$dir"
done
echo "full disk at $n_full points"

# The lock interleaving (issue 12, 1): B stalls 6 s between open(lock) and flock;
# meanwhile A (holding the lock) stops and C starts a longer session.
cat > "$work/long.yaml" <<'EOF'
name: race
base:
  model: {arch: cifar_resnet8, conv: cyclebnn}
  precision: {schedule: cyclic, bits: [2, 6], cycles: 2}
  data: {train_subset: 1024, test_subset: 64}
  train: {iterations: 100000, batch_size: 32, eval_interval: 100000, eval_batch_size: 32, log_interval: 1, checkpoint_interval: 20}
EOF
race="$work/race"
"$exe" --results "$race" "$work/long.yaml" > "$work/a.out" 2> "$work/a.err" &
a=$!
wait_for "$work/a.err" "step 2/"
traced -f -qq -o /dev/null -e trace=flock -e inject=flock:delay_enter=6000000:when=1 \
    "$exe" --results "$race" "$work/long.yaml" > "$work/b.out" 2> "$work/b.err" &
b=$!
sleep 2   # B has opened A's lock file and sleeps before its flock
kill -INT $a
wait $a
"$exe" --results "$race" "$work/long.yaml" > "$work/c.out" 2> "$work/c.err" &
c=$!
wait_for "$work/c.err" "resuming from the checkpoint"
wait $b; rc=$?
check "the stalled session is refused as 'in use' (exit $rc; $(head -c 300 "$work/b.err" | tr '\n' ' '))" test $rc -eq 3
check "... with the lock message" has "$work/b.err" "another cyclebnn session is writing this file"
kill -INT $c
wait $c; rc=$?
check "the session that holds the lock stops normally" test $rc -eq 130
check "the file is readable after the race" bash -c "h5dump -A '$race/race.h5' > /dev/null 2>&1"
check "no working copy is left after the race" test ! -e "$race/race.h5.tmp"

echo "faults: $(( $(date +%s) - start )) s"
finish test_faults
