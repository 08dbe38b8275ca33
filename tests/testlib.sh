# Shared by the shell tests (sourced): a scratch directory removed on exit,
# passive OpenMP waits, and check counting like testutil.h's CHECK.
#   work_dir NAME        -> $work, a fresh /tmp/cbnn_NAME_XXXXXX
#   check WHAT CMD...    -> counts CMD's success, prints "FAIL: WHAT" otherwise
#   has FILE TEXT        -> FILE contains TEXT
#   finish NAME          -> prints "NAME: N passed, M failed", exits 1 on a failure
#   wait_for FILE TEXT   -> waits up to 60 s for TEXT to appear in FILE (a background job's log)
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
passed=0 failed=0
work_dir() { work=$(mktemp -d "/tmp/cbnn_$1_XXXXXX") || exit 1; trap '[ -n "${CBNN_KEEP_WORK:-}" ] || rm -rf "$work"' EXIT; }
ok()    { passed=$((passed + 1)); }
bad()   { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
has()   { grep -q -- "$2" "$1"; }
finish() { echo "$1: $passed passed, $failed failed"; test "$failed" -eq 0; exit $?; }
wait_for() { for _ in $(seq 1 600); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
