#!/bin/bash
# run_fuzz.sh TARGET SEED_DIR WORK_DIR [libFuzzer options...]
# Fuzz TARGET for $CBNN_FUZZ_SECONDS (default 20) seconds, starting from the
# seeds in SEED_DIR (read only) plus what earlier runs left in WORK_DIR/corpus
# (new inputs go there); crashes, leaks and timeouts are written as
# WORK_DIR/crash-*, leak-*, timeout-*, oom-* and fail the test.
set -u
exe=$1 seeds=$2 work=$3
shift 3
secs=${CBNN_FUZZ_SECONDS:-20}
mkdir -p "$work/corpus"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
"$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$work/" "$@" "$work/corpus" "$seeds"
rc=$?
echo "corpus: $(ls "$work/corpus" | wc -l) files in $work/corpus"
exit $rc
