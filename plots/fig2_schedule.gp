# Fig. 2 of the paper: the cyclic precision schedule (bits against epoch).
#
#   gnuplot -e "data='plots/out/data/fig2_schedule.dat'; out='plots/out/fig2_schedule'" plots/fig2_schedule.gp
#
# data: the output of build/analysis/cbnn_schedule (columns: epoch iteration bits grad_bits;
#       one row per change of bits plus the end points, drawn `with steps`). Its defaults are the
#       caption's setting: 2-6 bits, 8 cycles, 600 epochs (method.md 2.2).
# out:  output path without extension; writes OUT.png and OUT.pdf.
# Optional: title (string), cycles (number of cycles, for the cycle-boundary grid; default 8).

if (!exists("data")) data = 'plots/out/data/fig2_schedule.dat'
if (!exists("out")) out = 'plots/out/fig2_schedule'
if (!exists("cycles")) cycles = 8
if (!exists("title")) title = sprintf("Cyclic precision schedule (paper Fig. 2 setting: 2-6 bits, %d cycles, 600 epochs)", cycles)

set encoding utf8
stats data using 1 nooutput
emax = STATS_max
stats data using 3 nooutput
bmin = STATS_min
bmax = STATS_max
stats data using 4 nooutput
gmax = STATS_max
ymax = (gmax > bmax ? gmax : bmax)

do for [fmt in "png pdf"] {
    if (fmt eq "png") {
        set terminal pngcairo size 1000,600 font "DejaVu Sans,12" linewidth 1.5 noenhanced
    } else {
        set terminal pdfcairo size 6.94in,4.17in font "DejaVu Sans,12" linewidth 0.75 pointscale 0.6 noenhanced
    }
    set output out.".".fmt
    set title title font ",13"
    set xlabel "epoch"
    set ylabel "bit width (bits)"
    set xrange [0:emax]
    set yrange [bmin - 0.6 : ymax + 1.4]
    set ytics bmin, 1, ymax
    # one x tic per cycle start, so the grid marks the restarts
    set xtics emax / cycles
    set grid xtics ytics lt 1 lc rgb "#dddddd" lw 0.7
    set key top center horizontal Left reverse box opaque samplen 3 width 1
    plot data using 1:3 with steps lw 2 lc rgb "#1f5fa8" title "weight/activation bits b (cyclic, rint of a half cosine)", \
         data using 1:4 with steps lw 1.5 dt 2 lc rgb "#c0392b" title "error (gradient) bits g"
    unset output
}
