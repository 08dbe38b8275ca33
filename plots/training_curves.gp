# Training curves of the runs of one experiment, in four panels: training loss, validation top-1
# (with the test evaluations of the selected and final weights marked), bit widths (weights/activations
# and errors) and learning rate, each against the optimizer step.
# Not a figure of the paper: it shows what the precision schedule does to training.
#
#   gnuplot -e "datadir='plots/out/data/quick_ablation_cycles'; out='plots/out/quick_ablation_cycles_training_curves'" \
#           plots/training_curves.gp
#
# datadir: one experiment's directory written by `cbnn_export --out DIR results/E.h5` (DIR/E):
#          runs.csv, FILE.train.dat (# step loss lr bits grad_bits cost_ratio top1 time_s),
#          FILE.val.dat (# step top1 loss bits: the periodic evaluations, on the validation split; on the
#          test set for a run without one, runs.csv curve_split = test), FILE.test.dat (# step top1 loss
#          bits role fixed: role 1 selected, 2 final weights; fixed 1 at eval_bits_fixed).
# out:     output path without extension; writes OUT.png and OUT.pdf.
# Optional:
#   runs='a b'   the runs to draw, by their `file` column of runs.csv (default: every run that is
#                not pending); colours go by group (the run without its seed), dashes by seed
#   title        figure title (default: the directory's name)
#   ema          smoothing window of the loss curve in logged rows (default: rows/40; 1 = raw)

if (!exists("datadir")) { print "training_curves.gp: set datadir='DIR/EXPERIMENT' (cbnn_export output)"; exit status 1 }
# helpers (plots/lib.gp): shq(), basename(), readcsv(), ... found beside this script
lastsl(s) = (strstrt(s, "/") == 0 ? 0 : strstrt(s, "/") + lastsl(s[strstrt(s, "/") + 1:]))
load (lastsl(ARG0) ? ARG0[1:lastsl(ARG0) - 1] : ".").'/lib.gp'
if (!exists("out")) out = datadir.'_training_curves'
if (!exists("title")) title = basename(datadir).": training curves"

# file, group number, seed number within the group, whether it has a val file, whether its curve is
# on the test set (1) or validation (0), whether it has a test file, and the run name, one run a line, from runs.csv (RFC 4180 CSV:
# a run name may hold commas, spaces, quotes). The run name comes last on its line, as the rest of the
# line, so that it may hold anything but a newline; the file column is a stem of [A-Za-z0-9_.-]
# (cbnn_export).
pickruns = csvparse.'function has(p,   l, r) { r = (getline l < p) > 0; close(p); return r } \
BEGIN { Q = sprintf("%c", 34) } \
NR == 1 { m = parse($0, h); for (i = 1; i <= m; i++) col[h[i]] = i; n = split(pick, p, " "); for (i = 1; i <= n; i++) want[p[i]] = 1; next } \
{ parse($0, a); f = a[col["file"]]; if (pick == "" ? a[col["status"]] == "pending" : !(f in want)) next; \
  if (!has(dir "/" f ".train.dat")) next; \
  g = a[col["group"]]; if (!(g in gi)) { gi[g] = ++ng; ns[g] = 0 }; ns[g]++; \
  name = a[col["run"]]; gsub(/[\r\n]/, " ", name); \
  print f, gi[g], ns[g], has(dir "/" f ".val.dat"), (a[col["curve_split"]] == "test" ? 1 : 0), has(dir "/" f ".test.dat"), name }'
runs_table = system("awk -v pick=".awkv(exists("runs") ? runs : "")." -v dir=".awkv(datadir)." ".shq(pickruns)." ".shq(datadir.'/runs.csv'))
nruns = nlines(runs_table)
if (nruns < 1) { print "training_curves.gp: no run with logged steps (FILE.train.dat) in ".datadir."/runs.csv"; exit status 1 }
row(i) = nthline(runs_table, i)
# the run name: the line after its first six words and their spaces
nameof(l) = l[strlen(word(l, 1)) + strlen(word(l, 2)) + strlen(word(l, 3)) + strlen(word(l, 4)) + strlen(word(l, 5)) + strlen(word(l, 6)) + 7:]
file(i) = datadir.'/'.word(row(i), 1)
name(i) = nameof(row(i))
colour(i) = int(word(row(i), 2))
dash(i) = int(word(row(i), 3))
evalfile(i) = (word(row(i), 4) eq "1" ? file(i).'.val.dat' : '/dev/null')
# the test evaluations of the selected and final weights (test.dat roles 1, 2 at fixed 0)
testsrc(i) = (word(row(i), 6) eq "1" ? file(i).'.test.dat' : '/dev/null')
neval = 0
on_test = 0
do for [i=1:nruns] { neval = neval + (word(row(i), 4) eq "1"); on_test = on_test + (word(row(i), 5) eq "1") }

if (!exists("ema")) {
    stats file(1).'.train.dat' using 1 nooutput
    ema = STATS_records / 40.0
}
# common x range: step 0 to the last logged step of any run; lr scale for readable tick labels
xmax = 1
lrmax = 0
bitmax = 1
do for [i=1:nruns] {
    stats file(i).'.train.dat' using 1:3 nooutput
    if (STATS_records > 0) { xmax = (STATS_max_x > xmax ? STATS_max_x : xmax); lrmax = (STATS_max_y > lrmax ? STATS_max_y : lrmax) }
    stats file(i).'.train.dat' using 4:5 nooutput
    if (STATS_records > 0) { bitmax = (STATS_max_x > bitmax ? STATS_max_x : bitmax); bitmax = (STATS_max_y > bitmax ? STATS_max_y : bitmax) }
}
lrexp = (lrmax > 0 ? floor(log10(lrmax)) : 0)
# "×10⁻³" for the axis label (plain text: the terminal is noenhanced so that run names print as they are)
lrunit = (lrexp <= -1 && lrexp >= -9 ? "×10⁻".word("¹ ² ³ ⁴ ⁵ ⁶ ⁷ ⁸ ⁹", -lrexp) : sprintf("×1e%d", lrexp))
# bit-width curves of different runs are drawn this far apart (bits) so that they do not hide each other
boff = (nruns > 1 ? 0.2 / (nruns - 1) : 0)
bshift(i) = (i - (nruns + 1) / 2.0) * boff
a_ema = (ema <= 1 ? 0.0 : 1.0 - 1.0/ema)
smooth_y(row, y) = (row == 0 ? (s_ema = y) : (s_ema = a_ema*s_ema + (1 - a_ema)*y))

set encoding utf8
# colours of lines 1..8 (then repeating): matplotlib's tab10, readable on white
do for [i=1:8] { set linetype i lc rgb word("#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #7f7f7f", i) }
set linetype cycle 8
do for [fmt in "png pdf"] {
    if (fmt eq "png") {
        set terminal pngcairo size 1200,800 font "DejaVu Sans,12" linewidth 1.5 noenhanced
    } else {
        set terminal pdfcairo size 8.33in,5.56in font "DejaVu Sans,12" linewidth 0.75 pointscale 0.6 noenhanced
    }
    set output out.".".fmt
    set multiplot layout 2,2 title title font ",14" margins 0.07,0.79,0.08,0.91 spacing 0.085,0.12
    set grid lt 1 lc rgb "#dddddd" lw 0.7
    set xlabel "optimizer step"
    set xrange [0:xmax]
    set format y "%g"

    # (a) training loss, with the key for the whole figure to the right of the panels
    set title (a_ema > 0 ? sprintf("(a) training loss (moving average over %.0f logged steps)", ema) : "(a) training loss") font ",12"
    set ylabel "minibatch cross-entropy (nats)"
    set key at screen 0.805, 0.91 top left Left reverse samplen 2.5 spacing 1.15 title "run" noenhanced
    plot for [i=1:nruns] file(i).'.train.dat' using 1:(smooth_y(column(0), $2)) with lines lc colour(i) dt dash(i) lw 1.5 title name(i)
    unset key

    # (b) validation top-1 (the test set for runs without a validation split), and the test top-1 of
    # the selected (diamonds) and final (squares) weights at the evaluation precision
    set title (on_test == nruns ? "(b) test top-1 at each evaluation (no validation split: selected on test)" : \
               on_test > 0 ? "(b) top-1 at each evaluation: validation (test for runs without a validation split)" : \
               "(b) validation top-1 at each evaluation")
    set ylabel "top-1 accuracy (%)"
    set label 4 "test top-1: ◇ selected, □ final weights" at graph 0.02, 0.05 left font ",10"
    if (neval > 0) {
        plot for [i=1:nruns] evalfile(i) using 1:2 with linespoints lc colour(i) dt dash(i) pt 7 ps 0.8 lw 1.5 notitle, \
             for [i=1:nruns] testsrc(i) using 1:(($5 == 1 && $6 == 0) ? $2 : NaN) with points lc colour(i) pt 12 ps 1.6 lw 1.5 notitle, \
             for [i=1:nruns] testsrc(i) using 1:(($5 == 2 && $6 == 0) ? $2 : NaN) with points lc colour(i) pt 4 ps 1.6 lw 1.5 notitle
    } else {
        set yrange [0:100]
        set label 3 "no evaluation logged yet" at graph 0.5, 0.5 center
        plot NaN notitle
        unset label 3
        set yrange [*:*]
    }
    unset label 4

    # (c) bit widths
    set title (boff > 0 ? sprintf("(c) bits: b solid, g dashed (runs offset by %.2g bit)", boff) : "(c) bits: b solid, g dashed") 
    if (bitmax > 10) {
        # a full-precision run (32 bits) beside 2-8-bit runs: log2 axis, so both stay readable
        set ylabel "bit width (bits, log2 scale)"
        set logscale y 2
        set yrange [1.7 : bitmax * 1.25]
        set ytics ("2" 2, "3" 3, "4" 4, "5" 5, "6" 6, "8" 8, "12" 12, "16" 16, "24" 24, "32" 32)
    } else {
        set ylabel "bit width (bits)"
        set yrange [0 : bitmax + 1]
        set ytics 1
    }
    plot for [i=1:nruns] file(i).'.train.dat' using 1:($4 + bshift(i)) with steps lc colour(i) dt 1 lw 1.5 notitle, \
         for [i=1:nruns] file(i).'.train.dat' using 1:($5 + bshift(i)) with steps lc colour(i) dt 2 lw 1.5 notitle
    unset logscale y
    set yrange [*:*]
    set ytics autofreq

    # (d) learning rate
    set title "(d) learning rate"
    set ylabel (lrexp != 0 ? "learning rate (".lrunit.")" : "learning rate")
    plot for [i=1:nruns] file(i).'.train.dat' using 1:($3 / 10**lrexp) with lines lc colour(i) dt dash(i) lw 1.5 notitle
    unset multiplot
    unset output
}
