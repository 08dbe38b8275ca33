# Helpers shared by the figure scripts (not a figure). Loaded first by each script:
#
#   lastsl(s) = (strstrt(s, "/") == 0 ? 0 : strstrt(s, "/") + lastsl(s[strstrt(s, "/") + 1:]))
#   load (lastsl(ARG0) ? ARG0[1:lastsl(ARG0) - 1] : ".").'/lib.gp'
#
# Paths and names (run names hold apostrophes, spaces, commas, '=') reach the shell only through
# shq(), which quotes any string for sh; file and directory names are taken apart by string
# functions here, never by a `basename '...'` command line.

# s with every a replaced by b
subst(s, a, b) = (strstrt(s, a) == 0 ? s : s[1:strstrt(s, a) - 1].b.subst(s[strstrt(s, a) + strlen(a):], a, b))
# position of the last '/' in s (0: none)
lastsl(s) = (strstrt(s, "/") == 0 ? 0 : strstrt(s, "/") + lastsl(s[strstrt(s, "/") + 1:]))
# the directory and file name parts of a path, and a file name without a suffix
dirname(p) = (lastsl(p) == 0 ? "." : lastsl(p) == 1 ? "/" : p[1:lastsl(p) - 1])
basename(p) = p[lastsl(p) + 1:]
endswith(s, x) = (strlen(s) >= strlen(x) && s[strlen(s) - strlen(x) + 1:] eq x)
nosuffix(s, x) = (endswith(s, x) && strlen(s) > strlen(x) ? s[1:strlen(s) - strlen(x)] : s)
# s as one single-quoted sh word: 'it'\''s'
shq(s) = "'".subst(s, "'", "'\\''")."'"
# s as an awk -v value (awk reads backslash escapes in it), quoted for sh
awkv(s) = shq(subst(s, '\', '\\'))
# line i (1-based) of a text of newline-separated lines (as system() returns)
nthline(s, i) = (i <= 1 ? (strstrt(s, "\n") ? s[1:strstrt(s, "\n") - 1] : s) : nthline(s[strstrt(s, "\n") + 1:], i - 1))
nlines(s) = (s eq "" ? 0 : 1 + (strstrt(s, "\n") ? nlines(s[strstrt(s, "\n") + 1:]) : 0))

# An RFC 4180 CSV line into a[1..n] (awk source: a quoted field may hold commas and "" quotes)
csvparse = 'function parse(L, a,   n, f, q, i, c) { n = 0; f = ""; q = 0; \
  for (i = 1; i <= length(L); i++) { c = substr(L, i, 1); \
    if (q) { if (c == Q) { if (substr(L, i + 1, 1) == Q) { f = f c; i++ } else q = 0 } else f = f c } \
    else if (c == Q) q = 1; else if (c == ",") { a[++n] = f; f = "" } else f = f c } \
  a[++n] = f; return n } '
# CSV -> gnuplot's whitespace columns. gnuplot's own comma separator would cut a quoted name such
# as "cycles=8,seed=1" at its comma. A field that is empty or holds anything but letters, digits and
# _ . + - = , : % (names with spaces, apostrophes, ...) is written in double quotes, which gnuplot
# reads as one string column (a double quote inside it becomes '); numbers stay bare.
csv2ws = csvparse.'BEGIN { Q = sprintf("%c", 34) } \
{ n = parse($0, a); s = ""; for (j = 1; j <= n; j++) { v = a[j]; gsub(Q, "''", v); \
    if (v == "" || v ~ /[^-A-Za-z0-9_.+=,:%]/) v = Q v Q; s = s (j > 1 ? " " : "") v }; print s }'
# a CSV file as a gnuplot data source
readcsv(p) = "< awk ".shq(csv2ws)." ".shq(p)
