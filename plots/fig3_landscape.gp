# Fig. 3 of the paper: loss landscapes of two runs side by side (e.g. a fixed-precision and a
# cyclic-precision BNN), 2-D filter-normalised random directions (Li et al. 2018, method.md 8).
# Both panels share one colour scale and one set of contour levels, computed from both files, so
# that wider contours with larger intervals can be compared as the paper's caption does.
#
#   gnuplot -e "a='DIR/E/fixed6.landscape.dat'; atitle='fixed6'; b='DIR/E/cyclic2-6.landscape.dat'; \
#               btitle='cyclic2-6'; out='plots/out/E_fig3_landscape'" plots/fig3_landscape.gp
#
# a, b:    landscape files written by cbnn_export (# alpha beta loss top1 flips; N x N rows,
#          alpha-major, a blank line after each block of N rows). b may be left out: one panel.
# atitle, btitle: panel titles (default: the file names).
# out:     output path without extension; writes OUT.png and OUT.pdf.
# Optional: levels (number of contour intervals over the common range, default 20), title,
#           zmax (clip the colour scale and the contours at this loss; default: the common maximum).

if (!exists("a")) { print "fig3_landscape.gp: set a='FILE.landscape.dat' (and b=...)"; exit status 1 }
if (!exists("b")) b = ''
if (!exists("out")) out = 'fig3_landscape'
# helpers (plots/lib.gp): shq(), basename(), readcsv(), ... found beside this script
lastsl(s) = (strstrt(s, "/") == 0 ? 0 : strstrt(s, "/") + lastsl(s[strstrt(s, "/") + 1:]))
load (lastsl(ARG0) ? ARG0[1:lastsl(ARG0) - 1] : ".").'/lib.gp'
if (!exists("atitle")) atitle = nosuffix(basename(a), ".landscape.dat")
if (!exists("btitle")) btitle = (b eq '' ? '' : nosuffix(basename(b), ".landscape.dat"))
if (!exists("levels")) levels = 20
if (!exists("title")) title = "Loss landscape around the trained weights (filter-normalised directions, Li et al. 2018)"
npanels = (b eq '' ? 1 : 2)
file(i) = (i == 1 ? a : b)
ptitle(i) = (i == 1 ? atitle : btitle)

# common range of the loss over both files
stats a using 3 nooutput
lo = STATS_min
hi = STATS_max
if (npanels == 2) {
    stats b using 3 nooutput
    lo = (STATS_min < lo ? STATS_min : lo)
    hi = (STATS_max > hi ? STATS_max : hi)
}
if (exists("zmax")) { hi = zmax }
if (hi <= lo) { hi = lo + 1 }
dz = (hi - lo) / levels

set encoding utf8
do for [fmt in "png pdf"] {
    if (fmt eq "png") {
        set terminal pngcairo size (npanels == 2 ? 1400 : 800),700 font "DejaVu Sans,12" linewidth 1.5 noenhanced
    } else {
        set terminal pdfcairo size (npanels == 2 ? 9.72 : 5.56),4.86 font "DejaVu Sans,12" linewidth 0.75 pointscale 0.6 noenhanced
    }
    set output out.".".fmt
    set multiplot layout 1,npanels title sprintf("%s\ncontours every %.3g nats from %.3g to %.3g, same colour scale in both panels; + = the trained weights", title, dz, lo, hi) font ",13"
    set view map
    set size ratio 1
    set pm3d map interpolate 2,2
    set palette defined (0 "#440154", 1 "#3b528b", 2 "#21918c", 3 "#5ec962", 4 "#fde725")   # viridis
    set cbrange [lo:hi]
    set zrange [lo:hi]
    set contour base
    set cntrparam levels incremental lo, dz, hi
    set cntrparam linear
    set cntrlabel onecolor
    unset clabel
    set xlabel "α (direction 1, filter-normalised)"
    set ylabel "β (direction 2, filter-normalised)"
    set cblabel "loss (nats, mean cross-entropy)"
    set key off
    set tics out nomirror
    set label 1 "+" at 0, 0, hi center front textcolor rgb "#ff4040" font ",18"
    do for [i=1:npanels] {
        set title ptitle(i) font ",13"
        if (i < npanels) { unset colorbox } else { set colorbox }
        splot file(i) using 1:2:3 with pm3d nocontours notitle, \
              file(i) using 1:2:3 with lines nosurface lc rgb "white" lw 0.8 notitle
    }
    unset multiplot
    unset label 1
    unset output
}
