#!/bin/bash
# A rank that hangs (issue 15 (e)): `test_dist --stall MODE` makes rank 1 sleep
# 5 s before a collective whose stall timeout is 1 s. The job must end with a
# nonzero status (MPI_Abort(comm, 3)) within a few seconds, and rank 0 must
# have named rank 1 and its host on stderr, in both kinds of collective: the
# star through rank 0 (dist_any) and the recursive doubling (the tree sum).
# usage: test_dist_stall.sh MPIRUN TEST_DIST
set -u
mpirun=$1
exe=$2
host=$(hostname)
fails=0
for mode in any tree; do
    log=$(mktemp)
    t0=$(date +%s)
    "$mpirun" --oversubscribe --bind-to none -np 2 "$exe" --stall "$mode" >"$log" 2>&1
    rc=$?
    t1=$(date +%s)
    if [ "$rc" -eq 0 ]; then
        echo "FAIL dist_stall $mode: mpirun exited 0 with rank 1 late by 5 s and a 1 s timeout"
        fails=$((fails + 1))
    fi
    # rank 0 names rank 1 and its host (the launch is local: the same host)
    if ! grep -qF "cyclebnn[0/2 $host]: " "$log" ||
       ! grep -F "cyclebnn[0/2 $host]: " "$log" | grep -q "waited more than 1 s for rank(s) 1 (host $host); aborting"; then
        echo "FAIL dist_stall $mode: rank 0 did not name rank 1 (host $host) on stderr"
        fails=$((fails + 1))
    fi
    if [ $((t1 - t0)) -gt 30 ]; then
        echo "FAIL dist_stall $mode: the job took $((t1 - t0)) s to end"
        fails=$((fails + 1))
    fi
    echo "--- mode $mode: mpirun exit $rc after $((t1 - t0)) s; its output:"
    cat "$log"
    rm -f "$log"
done
[ "$fails" -eq 0 ] && echo "dist_stall: ok" || echo "dist_stall: $fails failed"
exit $((fails != 0))
