#!/bin/bash
# Lists the functions longer than a limit (default 120 lines) in the given
# C files, longest first: "lines file:line name". Uses universal-ctags's
# end-of-scope field, so braces inside strings and comments do not confuse it.
#   scripts/function_lengths.sh [-n LIMIT] FILE...
set -euo pipefail
limit=120
if [ "${1:-}" = "-n" ]; then limit=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: $0 [-n LIMIT] FILE..." >&2; exit 2; }
ctags --output-format=u-ctags --fields=+ne --kinds-C=f -o - "$@" |
    awk -F'\t' -v limit="$limit" '{
        line = ""; end = "";
        for (i = 4; i <= NF; i++) {
            if ($i ~ /^line:/) line = substr($i, 6);
            if ($i ~ /^end:/) end = substr($i, 5);
        }
        if (line != "" && end != "" && end - line + 1 > limit)
            printf "%5d %s:%s %s\n", end - line + 1, $2, line, $1;
    }' | sort -rn
