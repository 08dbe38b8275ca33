#!/usr/bin/env bash
# bench/train_step refuses an unknown --memory or --fp32-conv value: exit
# status 2 (not a crash, not a run) and a message naming the option and value.
# usage: test_train_step_refusals.sh TRAIN_STEP
set -u
ts=$1
fails=0
check() { # option value
    local out rc
    out=$("$ts" "$1" "$2" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" -ne 2 ] || [[ "$out" != *"$1"*"'$2'"* ]]; then
        echo "FAIL $1 $2: exit $rc, stderr: $out"
        fails=$((fails + 1))
    fi
}
check --memory medium
check --fp32-conv mkl
echo "train_step_refusals: 2 checks, $fails failed"
[ "$fails" -eq 0 ]
