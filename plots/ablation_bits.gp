# Ablation on the bit range of the precision schedule: the test top-1 at the selected checkpoint (best
# validation top-1; results/README.md) of each configuration, its mean over the seeds with the 95 %
# t-interval as error bars and each seed as a small point beside it; x = its bit range as a category
# ("2-6", "3-6", ...; fixed and full precision configurations appear as "4 (fixed)", "32 (full)"), with
# the mean training cost ratio cr on the right axis. Stands for a column of the paper's Table 4
# (ablation), whose content was not retrieved (method.md 7).
#
#   gnuplot -e "datadir='plots/out/data/quick_ablation_bits'; out='plots/out/quick_ablation_bits_ablation_bits'" \
#           plots/ablation_bits.gp
#
# datadir: one experiment's directory written by cbnn_export; reads DIR/groups.csv (group, n,
#          test_top1_at_selected_mean, _ci_lo, _ci_hi, mean_cost_ratio, schedule, bits_min, bits_max)
#          and DIR/runs.csv (group_row: the row of the run's configuration in groups.csv, status,
#          test_top1_at_selected: the seeds). One category per configuration, in the file's order. A
#          configuration named with other grid axes besides bits=... gets them on a second line of its label.
# out:     output path without extension; writes OUT.png and OUT.pdf.
# Optional: title.

if (!exists("datadir")) { print "ablation_bits.gp: set datadir='DIR/EXPERIMENT' (cbnn_export output)"; exit status 1 }
if (!exists("out")) out = datadir.'_ablation_bits'
# helpers (plots/lib.gp): shq(), basename(), readcsv(), ... found beside this script
lastsl(s) = (strstrt(s, "/") == 0 ? 0 : strstrt(s, "/") + lastsl(s[strstrt(s, "/") + 1:]))
load (lastsl(ARG0) ? ARG0[1:lastsl(ARG0) - 1] : ".").'/lib.gp'
if (!exists("title")) title = basename(datadir).": top-1 against the bit range of the schedule"
# groups.csv is RFC 4180 CSV, read through lib.gp's readcsv (names may hold commas and spaces)
csv = readcsv(datadir.'/groups.csv')
runs = readcsv(datadir.'/runs.csv')

set datafile columnheaders
set encoding utf8
do for [i=1:8] { set linetype i lc rgb word("#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #7f7f7f", i) }
set linetype cycle 8

# the group name without its KEY=VALUE component (names are comma-separated KEY=VALUE parts)
kpos(g, k) = strstrt(",".g.",", ",".k."=")
tailfrom(g, k) = substr(",".g.",", kpos(g, k) + 1, strlen(g) + 2)
trimc(s) = (s eq "," || s eq ",," || s eq "") ? "" : substr(s, (s[1:1] eq "," ? 2 : 1), strlen(s) - (s[strlen(s):strlen(s)] eq "," ? 1 : 0))
without(g, k) = kpos(g, k) == 0 ? g : trimc(substr(",".g.",", 1, kpos(g, k)) . substr(tailfrom(g, k), strstrt(tailfrom(g, k), ",") + 1, strlen(g) + 2))
# the interval's ends; a NaN one (one seed) draws no error bar
# (gnuplot marks a point undefined as soon as column() meets "nan", so the string is tested first)
lo0(m) = (strcol(m."_ci_lo") eq "nan" ? column(m."_mean") : column(m."_ci_lo"))
hi0(m) = (strcol(m."_ci_hi") eq "nan" ? column(m."_mean") : column(m."_ci_hi"))
# category label: the bit range, and the rest of the group's name when it has other axes
bitlabel(s, lo, hi) = (s eq "cyclic" ? sprintf("%d-%d", lo, hi) : s eq "fixed" ? sprintf("%d (fixed)", lo) : s eq "full" ? "32 (full)" : s)
extra(g) = (kpos(g, "bits") > 0 && without(g, "bits") ne "" ? "\n".without(g, "bits") : "")
catlabel(g, s, lo, hi) = bitlabel(s, lo, hi).extra(g)
# colour by schedule
kind(s) = (s eq "cyclic" ? 1 : s eq "fixed" ? 2 : 8)

stats csv using 0:(column("n")) nooutput
if (STATS_records < 1) { print "ablation_bits.gp: no group in ".datadir."/groups.csv"; exit status 1 }
ncat = STATS_records
nmin = STATS_min_y
nmax = STATS_max_y
seeds = (nmin == nmax ? (nmin > 1 ? sprintf("mean and 95 %% CI over %d seeds", nmin) : "1 seed, no interval") : sprintf("mean and 95 %% CI over %d-%d seeds", nmin, nmax))
stats csv using (column("mean_cost_ratio")) nooutput
crmin = STATS_min
crmax = STATS_max
# whether any label has a second line (then the x label moves down one line)
has_extra = 0
stats csv using (has_extra = has_extra || extra(strcol("group")) ne "", 0) nooutput
has_fixed = 0
has_full = 0
stats csv using (has_fixed = has_fixed || strcol("schedule") eq "fixed", has_full = has_full || (strcol("schedule") ne "fixed" && strcol("schedule") ne "cyclic"), 0) nooutput

do for [fmt in "png pdf"] {
    if (fmt eq "png") {
        set terminal pngcairo size 1000,700 font "DejaVu Sans,12" linewidth 1.5 noenhanced
    } else {
        set terminal pdfcairo size 6.94in,4.86in font "DejaVu Sans,12" linewidth 0.75 pointscale 0.6 noenhanced
    }
    set output out.".".fmt
    set title title."\nfilled points: mean with its 95 % t-interval" font ",13"
    set xrange [-0.6 : ncat - 0.4]
    set xlabel "bit range of the weight/activation schedule (bits; errors at grad_bits)" offset 0, (has_extra ? -1 : 0)
    set ylabel sprintf("test top-1 at the selected checkpoint (%%), %s", seeds)
    set y2label "mean training cost ratio cr (fraction of an fp32 step, log scale)"
    set logscale y2
    set y2range [crmin / 1.5 : crmax * 1.5]
    set y2tics ("0.003" 0.003, "0.005" 0.005, "0.01" 0.01, "0.02" 0.02, "0.03" 0.03, "0.05" 0.05, "0.1" 0.1, "0.2" 0.2, "0.3" 0.3, "0.5" 0.5, "1" 1) nomirror
    set ytics nomirror
    set offsets 0, 0, graph 0.1, graph 0.1
    set grid ytics lt 1 lc rgb "#dddddd" lw 0.7
    set key outside bottom center horizontal Left reverse samplen 1 width 1 maxrows 1
    set bmargin (has_extra ? 8 : 7)
    # the mean and its interval at the category, the seeds (complete runs of runs.csv, by group_row)
    # 0.12 to the right, cr 0.12 to the left, so that the markers do not hide each other
    plot csv using 0:(column("test_top1_at_selected_mean")):(lo0("test_top1_at_selected")):(hi0("test_top1_at_selected")): \
             (kind(strcol("schedule"))): \
             xticlabels(catlabel(strcol("group"), strcol("schedule"), column("bits_min"), column("bits_max"))) \
             with yerrorbars lc variable pt 7 ps 1.5 lw 1.5 notitle, \
         runs using ((strcol("status") eq "complete" && strcol("group_row") ne "") ? column("group_row") + 0.12 : NaN): \
             (column("test_top1_at_selected")):(kind(strcol("schedule"))) with points lc variable pt 6 ps 0.8 notitle, \
         csv using ($0 - 0.12):(column("mean_cost_ratio")) axes x1y2 with points lc rgb "#555555" pt 5 ps 1.1 notitle, \
         NaN with points lc 1 pt 7 ps 1.5 title "cyclic", \
         for [k=1:has_fixed] NaN with points lc 2 pt 7 ps 1.5 title "fixed", \
         for [k=1:has_full] NaN with points lc 8 pt 7 ps 1.5 title "full precision", \
         NaN with points lc rgb "black" pt 6 ps 0.8 title "seeds (right)", \
         NaN with points lc rgb "#555555" pt 5 ps 1.1 title "cost ratio cr (right axis, left)"
    unset output
}
