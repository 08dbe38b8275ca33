# Ablation on the number of precision cycles: the test top-1 at the selected checkpoint (best
# validation top-1; results/README.md) against N_cyc (log2 axis): per configuration its mean over the
# seeds with the 95 % t-interval as error bars, and each seed as a small point beside it. Stands for a
# column of the paper's Table 4 (ablation), whose content was not retrieved (method.md 7): the axis is
# guessed from CPT.
#
#   gnuplot -e "datadir='plots/out/data/quick_ablation_cycles'; out='plots/out/quick_ablation_cycles_ablation_cycles'" \
#           plots/ablation_cycles.gp
#
# datadir: one experiment's directory written by cbnn_export; reads DIR/groups.csv (group, n,
#          test_top1_at_selected_mean, _ci_lo, _ci_hi, schedule, cycles) and DIR/runs.csv (group,
#          status, schedule, cycles, test_top1_at_selected: the seeds). Only cyclic configurations are
#          drawn. Configurations that differ in something besides the cycle count (another grid
#          axis) become separate lines, named by their group without "cycles=N".
# out:     output path without extension; writes OUT.png and OUT.pdf.
# Optional: title.

if (!exists("datadir")) { print "ablation_cycles.gp: set datadir='DIR/EXPERIMENT' (cbnn_export output)"; exit status 1 }
if (!exists("out")) out = datadir.'_ablation_cycles'
# helpers (plots/lib.gp): shq(), basename(), readcsv(), ... found beside this script
lastsl(s) = (strstrt(s, "/") == 0 ? 0 : strstrt(s, "/") + lastsl(s[strstrt(s, "/") + 1:]))
load (lastsl(ARG0) ? ARG0[1:lastsl(ARG0) - 1] : ".").'/lib.gp'
if (!exists("title")) title = basename(datadir).": top-1 against the number of precision cycles"
# groups.csv is RFC 4180 CSV, read through lib.gp's readcsv (names may hold commas and spaces)
csv = readcsv(datadir.'/groups.csv')
runs = readcsv(datadir.'/runs.csv')

set datafile columnheaders
set encoding utf8
# colours of lines 1..8 (then repeating): matplotlib's tab10, readable on white
do for [i=1:8] { set linetype i lc rgb word("#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #7f7f7f", i) }
set linetype cycle 8

# the group name without its KEY=VALUE component (names are comma-separated KEY=VALUE parts)
kpos(g, k) = strstrt(",".g.",", ",".k."=")
tailfrom(g, k) = substr(",".g.",", kpos(g, k) + 1, strlen(g) + 2)
trimc(s) = (s eq "," || s eq ",," || s eq "") ? "" : substr(s, (s[1:1] eq "," ? 2 : 1), strlen(s) - (s[strlen(s):strlen(s)] eq "," ? 1 : 0))
without(g, k) = kpos(g, k) == 0 ? g : trimc(substr(",".g.",", 1, kpos(g, k)) . substr(tailfrom(g, k), strstrt(tailfrom(g, k), ",") + 1, strlen(g) + 2))
series_of(g) = (without(g, "cycles") eq "" ? "all" : without(g, "cycles"))
cyclic(s) = (s eq "cyclic")
# the interval's ends; a NaN one (one seed) draws no error bar
# (gnuplot marks a point undefined as soon as column() meets "nan", so the string is tested first)
lo0(m) = (strcol(m."_ci_lo") eq "nan" ? column(m."_mean") : column(m."_ci_lo"))
hi0(m) = (strcol(m."_ci_hi") eq "nan" ? column(m."_mean") : column(m."_ci_hi"))

series = ""
stats csv using (cyclic(strcol("schedule")) ? (s = series_of(strcol("group")), \
                 (strstrt(" ".series." ", " ".s." ") ? 0 : (series = series." ".s, 0))) : 0) nooutput
nseries = words(series)
stats csv using (cyclic(strcol("schedule")) ? column("cycles") : NaN):(column("n")) nooutput
if (STATS_records < 1) { print "ablation_cycles.gp: no cyclic group in ".datadir."/groups.csv"; exit status 1 }
cmin = STATS_min_x
cmax = STATS_max_x
nmin = STATS_min_y
nmax = STATS_max_y
seeds = (nmin == nmax ? (nmin > 1 ? sprintf("mean and 95 %% CI over %d seeds", nmin) : "1 seed, no interval") : sprintf("mean and 95 %% CI over %d-%d seeds", nmin, nmax))

do for [fmt in "png pdf"] {
    if (fmt eq "png") {
        set terminal pngcairo size 1000,700 font "DejaVu Sans,12" linewidth 1.5 noenhanced
    } else {
        set terminal pdfcairo size 6.94in,4.86in font "DejaVu Sans,12" linewidth 0.75 pointscale 0.6 noenhanced
    }
    set output out.".".fmt
    set title title."\nfilled points, lines: mean with its 95 % t-interval; small open points: the seeds (drawn 4 % to the left)" font ",12"
    set logscale x 2
    set xrange [cmin / 1.5 : cmax * 1.5]
    set xtics 2 format "%.0f"
    set xlabel "number of precision cycles N_cyc (log2 scale)"
    set ylabel sprintf("test top-1 at the selected checkpoint (%%), %s", seeds)
    set offsets 0, 0, graph 0.12, graph 0.12
    set grid lt 1 lc rgb "#dddddd" lw 0.7
    set key outside right top vertical Left reverse samplen 2 width 1 noenhanced
    # lines through the configurations sorted by cycle count (smooth unique), the means with their
    # intervals on top, the seeds (complete runs of runs.csv) beside them
    sel(i) = cyclic(strcol("schedule")) && series_of(strcol("group")) eq word(series, i)
    seed(i) = sel(i) && strcol("status") eq "complete"
    plot for [i=1:nseries] csv using (sel(i) ? column("cycles") : NaN):(column("test_top1_at_selected_mean")) \
             smooth unique with lines lc i lw 2 notitle, \
         for [i=1:nseries] csv using (sel(i) ? column("cycles") : NaN):(column("test_top1_at_selected_mean")): \
             (lo0("test_top1_at_selected")):(hi0("test_top1_at_selected")) \
             with yerrorbars lc i pt 7 ps 1.3 lw 1.5 title (nseries > 1 ? word(series, i) : "mean, 95 % CI"), \
         for [i=1:nseries] runs using (seed(i) ? column("cycles") / 1.04 : NaN):(column("test_top1_at_selected")) \
             with points lc i pt 6 ps 0.7 title (nseries > 1 ? word(series, i).": seeds" : "seeds")
    unset output
}
