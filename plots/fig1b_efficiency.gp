# Fig. 1(b) of the paper: top-1 accuracy against training MACs (log scale). Two panels:
#   left:  the paper's Table 2 (ImageNet, ResNet-18), the "paper" points, from plots/paper_table2.dat
#          (method.md §7), with the paper's headline saving of CycleBNN against AdaBin;
#   right: ours, one point per configuration of every experiment given (the test top-1 at the selected
#          checkpoint, results/README.md: its mean over the seeds with the 95 % t-interval as error bar,
#          against its bit-weighted training MACs), coloured by experiment and labelled by configuration.
#          Groups of different experiments with the same MACs and top-1 (the same run in two files,
#          e.g. cycles=8 = bits=2-6 = cyclic2-6) share one point and one label.
# The panels are not on one axis on purpose: our runs are Fashion-MNIST-scale, the paper's are ImageNet.
#
#   gnuplot -e "groups='plots/out/data/E1/groups.csv plots/out/data/E2/groups.csv'; \
#               out='plots/out/fig1b_efficiency'" plots/fig1b_efficiency.gp
#
# groups: space-separated groups.csv files written by cbnn_export (DIR/<results file>/groups.csv; the
#         legend names each by its directory). Columns used: group, test_top1_at_selected_mean,
#         test_top1_at_selected_ci_lo and _ci_hi (nan for one seed: no bar), bit_macs (fp32-MAC
#         equivalents, results/README.md).
#         Or, for paths with spaces (what plots/regenerate passes): ngroups=N and groups1..groupsN.
# paper:  default plots/paper_table2.dat next to this script.
# out:    output path without extension; writes OUT.png and OUT.pdf.
# Optional: title.

# helpers (plots/lib.gp): shq(), basename(), readcsv(), ... found beside this script
lastsl(s) = (strstrt(s, "/") == 0 ? 0 : strstrt(s, "/") + lastsl(s[strstrt(s, "/") + 1:]))
load (lastsl(ARG0) ? ARG0[1:lastsl(ARG0) - 1] : ".").'/lib.gp'
numbered = exists("ngroups")
if (!numbered && (!exists("groups") || words(groups) < 1)) { print "fig1b_efficiency.gp: set groups='DIR/E/groups.csv ...' (cbnn_export output)"; exit status 1 }
if (!exists("paper")) paper = dirname(ARG0).'/paper_table2.dat'
if (!exists("out")) out = 'fig1b_efficiency'
if (!exists("title")) title = "Top-1 accuracy against training MACs (paper Fig. 1b)"
nexp = (numbered ? ngroups + 0 : words(groups))   # (a number, or the string of one)
gfile(i) = (numbered ? value(sprintf("groups%d", i)) : word(groups, i))
expname(i) = basename(dirname(gfile(i)))
gfiles = ""
do for [i=1:nexp] { gfiles = gfiles." ".shq(gfile(i)) }

# Our points and their label layout, by awk: CSV parsed as RFC 4180 (a group name with a comma is
# quoted; gnuplot's own comma separator would cut it); one row per distinct point:
#   x y half-interval experiment_index label_y ymin ymax label_chars "label"
# Labels sit in a column right of the points, in the points' order of y, at least ROWS apart in a
# display range [ymin, ymax] that holds every point and error bar, with a leader line to their point.
layout = 'function parse(L, a,   n, f, q, i, c) { n = 0; f = ""; q = 0; \
  for (i = 1; i <= length(L); i++) { c = substr(L, i, 1); \
    if (q) { if (c == Q) { if (substr(L, i + 1, 1) == Q) { f = f c; i++ } else q = 0 } else f = f c } \
    else if (c == Q) q = 1; else if (c == ",") { a[++n] = f; f = "" } else f = f c } \
  a[++n] = f; return n } \
BEGIN { Q = sprintf("%c", 34); ROWS = 24 } \
FNR == 1 { ne++; m = parse($0, h); for (j = 1; j <= m; j++) col[h[j]] = j; next } \
{ parse($0, a); xs = a[col["bit_macs"]]; ys = a[col["test_top1_at_selected_mean"]]; \
  lo = a[col["test_top1_at_selected_ci_lo"]]; hi = a[col["test_top1_at_selected_ci_hi"]]; \
  if (xs == "nan" || ys == "nan" || xs == "" || ys == "" || xs + 0 <= 0) next; \
  sd = (lo == "nan" || hi == "nan" || lo == "" || hi == "") ? 0 : (hi - lo) / 2; \
  g = a[col["group"]]; if (g == "") g = "(one run)"; \
  k = sprintf("%.6g %.4f", xs + 0, ys + 0); \
  if (k in pid) { i = pid[k]; lab[i] = lab[i] " = " g; if (sd + 0 > s[i]) s[i] = sd + 0 } \
  else { np++; pid[k] = np; px[np] = xs + 0; py[np] = ys + 0; s[np] = sd + 0; e[np] = ne; lab[np] = g } } \
END { if (np == 0) exit; \
  for (i = 1; i <= np; i++) o[i] = i; \
  for (i = 2; i <= np; i++) { t = o[i]; for (j = i - 1; j >= 1 && py[o[j]] > py[t]; j--) o[j + 1] = o[j]; o[j + 1] = t } \
  lo = py[1] - s[1]; hi = py[1] + s[1]; \
  for (i = 1; i <= np; i++) { if (py[i] - s[i] < lo) lo = py[i] - s[i]; if (py[i] + s[i] > hi) hi = py[i] + s[i] } \
  H = (hi - lo) * 1.3; if (H < 1) H = 1; g = H / ROWS; if (np * g > H) { H = np * g * 1.05; g = H / ROWS } \
  c = (hi + lo) / 2; ymin = c - H / 2; ymax = c + H / 2; \
  for (r = 1; r <= np; r++) { i = o[r]; yl[i] = py[i]; if (r > 1 && yl[i] < yl[o[r - 1]] + g) yl[i] = yl[o[r - 1]] + g; \
    if (yl[i] < ymin + g / 2) yl[i] = ymin + g / 2 } \
  for (r = np; r >= 1; r--) { i = o[r]; top = (r == np ? ymax - g / 2 : yl[o[r + 1]] - g); if (yl[i] > top) yl[i] = top } \
  for (i = 1; i <= np; i++) { L = length(lab[i]); if (L > maxl) maxl = L } \
  for (i = 1; i <= np; i++) { gsub(Q, "''", lab[i]); printf "%.10g %.10g %.10g %d %.10g %.10g %.10g %d %s%s%s\n", \
    px[i], py[i], s[i], e[i], yl[i], ymin, ymax, maxl, Q, lab[i], Q } }'
ours = "< awk ".shq(layout).gfiles

stats ours using 1:2 nooutput
if (STATS_records < 1) { print "fig1b_efficiency.gp: no complete group with bit_macs and top-1 in".gfiles; exit status 1 }
xmin = STATS_min_x
xmax = STATS_max_x
stats ours using 6:8 nooutput
ymin = STATS_min_x
maxl = STATS_max_y
stats ours using 7 nooutput
ymax = STATS_max
# x layout of the right panel (log axis): points from xlo, labels from xlab on, the labels' width as a
# share of the panel (about 7.4 px a character in a 560 px wide plot), the axis ending after them
xlo = xmin / 2.0
xlab = xmax * 2.0
wshare = (maxl * 7.4 + 20) / 560.0
wshare = (wshare > 0.6 ? 0.6 : wshare)
decades = log10(xlab / xlo) / (1 - wshare)
xhi = xlo * 10**decades

set encoding utf8
do for [i=1:8] { set linetype i lc rgb word("#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #7f7f7f", i) }
set linetype cycle 8
pcolour(k) = (k eq "cyclebnn" ? 0xd62728 : k eq "adabin" ? 0x2ca02c : k eq "fp" ? 0x000000 : 0x7f7f7f)

do for [fmt in "png pdf"] {
    if (fmt eq "png") {
        set terminal pngcairo size 1400,750 font "DejaVu Sans,12" linewidth 1.5 noenhanced
    } else {
        set terminal pdfcairo size 9.72in,5.21in font "DejaVu Sans,12" linewidth 0.75 pointscale 0.6 noenhanced
    }
    set output out.".".fmt
    set multiplot title title font ",14"
    set logscale x
    set format x "%.0e"
    set xtics autofreq
    set grid lt 1 lc rgb "#dddddd" lw 0.7
    set xlabel "training MACs (fp32-MAC equivalents, log scale)"
    set ylabel "top-1 accuracy (%)"
    set key off

    # ---- left: the paper (Table 2, ImageNet ResNet-18)
    set origin 0.0, 0.1
    set size 0.44, 0.83
    set title "paper: Table 2, ImageNet ResNet-18 (method.md §7)" font ",12"
    set xrange [3e14 : 4e17]
    set yrange [38 : 73]
    set arrow 1 from 2.81e16, 63.1 to 1.05e15, 60.4 lc rgb "#d62728" lw 1.2 dt 2 filled size screen 0.012, 20
    set label 1 "27x fewer training MACs" at 5.0e15, 66.4 center textcolor rgb "#d62728"
    set label 2 "than AdaBin (2.81E16 / 1.05E15)" at 5.0e15, 64.6 center textcolor rgb "#d62728"
    # baseline labels in a column right of x = 2.8E16, at label_y, with a leader line to the point
    plot paper using 3:2:(pcolour(strcol(4))) with points lc rgb variable pt 7 ps 1.4, \
         paper using (strcol(4) eq "cyclebnn" ? NaN : $3 * 1.1):2:($3 * 0.5):($5 - $2) with vectors nohead lc rgb "#aaaaaa" lw 0.8, \
         paper using (strcol(4) eq "cyclebnn" ? NaN : $3 * 1.65):5:(sprintf("%s %.1f", strcol(1), $2)) with labels left, \
         paper using (strcol(4) eq "cyclebnn" ? $3 * 0.6 : NaN):($2 - 2.2):(sprintf("%s %.1f", strcol(1), $2)) with labels left textcolor rgb "#d62728"
    unset arrow 1
    unset label 1
    unset label 2

    # ---- right: ours
    set origin 0.44, 0.1
    set size 0.56, 0.83
    set title "ours: test top-1 at the selected checkpoint, mean and 95 % CI (not ImageNet)" font ",12"
    set xrange [xlo : xhi]
    set yrange [ymin : ymax]
    # tics at 1, 2, (3,) 5 x 10^k when the axis spans few decades, else at 10^k
    set xtics ()
    set mxtics default
    do for [k=floor(log10(xlo)):ceil(log10(xhi))] {
        do for [m in (decades < 1.5 ? "1 2 3 5" : decades < 2.5 ? "1 2 5" : "1")] {
            v = real(m) * 10.0**k
            if (v >= xlo && v <= xhi) { set xtics add (sprintf("%.0e", v) v) }
        }
    }
    set key at screen 0.5, 0.005 center bottom horizontal maxrows 1 Left reverse samplen 1 width 2 noenhanced title "ours, by experiment:"
    plot ours using 1:2:(xlab * 0.95 - $1):($5 - $2) with vectors nohead lc rgb "#bbbbbb" lw 0.8 notitle, \
         ours using 1:2:3:4 with yerrorbars lc variable pt 7 ps 1.3 lw 1.2 notitle, \
         ours using (xlab):5:9:4 with labels left textcolor variable notitle, \
         for [i=1:nexp] NaN with points lc i pt 7 ps 1.3 title expname(i)
    unset multiplot
    unset output
}
