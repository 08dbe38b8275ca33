#!/bin/bash
# The layering of the tree (ARCHITECTURE.md): core <- datasets <- tasks <-
# experiments <- analysis. A file may include headers of its own layer and of
# the layers below it, never of one above. An include is resolved by its path
# ("datasets/loader.h", "../experiments/config.h") or, for a bare name
# ("loader.h", found through the build's include path), by the folder that
# holds a header of that name. Prints every violation with file:line.
set -u
root=${CBNN_SOURCE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 1
layers=(core datasets tasks experiments analysis)
rank() { local i; for i in "${!layers[@]}"; do [ "${layers[$i]}" = "$1" ] && { echo "$i"; return; }; done; echo -1; }
bad=0 checked=0
for own in "${layers[@]}"; do
    r_own=$(rank "$own")
    while IFS= read -r -d '' f; do
        while IFS=: read -r line name; do
            checked=$((checked + 1))
            base=${name##*/}
            target=""
            for l in "${layers[@]}"; do # an explicit folder in the path
                case "/$name" in */"$l"/*) target=$l ;; esac
            done
            if [ -z "$target" ]; then # a bare name: the folder that has it (own layer first)
                if [ -e "$(dirname "$f")/$name" ]; then target=$own
                else
                    for l in "${layers[@]}"; do
                        [ -n "$(find "$l" -name "$base" -print -quit 2>/dev/null)" ] && { target=$l; break; }
                    done
                fi
            fi
            [ -z "$target" ] && continue # a system or generated header (build_rev.h)
            if [ "$(rank "$target")" -gt "$r_own" ]; then
                echo "FAIL layering: $f:$line includes \"$name\" from $target/, a layer above $own/"
                bad=$((bad + 1))
            fi
        done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | sed -E 's/^([0-9]+):.*"([^"]+)".*/\1:\2/')
    done < <(find "$own" -name '*.[ch]' -print0)
done
echo "layering: $checked includes checked, $bad upward"
[ "$bad" -eq 0 ] && [ "$checked" -gt 100 ]
