# 1-D loss landscapes (the 1-D variant of the paper's Fig. 3): loss and top-1 along one
# filter-normalised random direction, f(alpha) = L(theta* + alpha d), one curve per run (Li et al.
# 2018, method.md 8).
#
#   gnuplot -e "files='DIR/E/fixed6.landscape1d.dat DIR/E/cyclic2-6.landscape1d.dat'; \
#               titles='fixed6 cyclic2-6'; out='plots/out/E_fig3_landscape1d'" plots/fig3_landscape1d.gp
#
# files:  space-separated landscape1d files written by cbnn_export (# alpha loss top1 flips).
# titles: space-separated curve titles, one per file (default: the file names).
# Or, for paths and titles with spaces (what plots/regenerate passes): nfiles=N and file1..fileN,
# title1..titleN (the titles optional).
# out:    output path without extension; writes OUT.png and OUT.pdf.
# Optional: title.

# helpers (plots/lib.gp): shq(), basename(), readcsv(), ... found beside this script
lastsl(s) = (strstrt(s, "/") == 0 ? 0 : strstrt(s, "/") + lastsl(s[strstrt(s, "/") + 1:]))
load (lastsl(ARG0) ? ARG0[1:lastsl(ARG0) - 1] : ".").'/lib.gp'
numbered = exists("nfiles")
if (!numbered && (!exists("files") || words(files) < 1)) { print "fig3_landscape1d.gp: set files='A.landscape1d.dat B.landscape1d.dat ...' (or nfiles=N, file1=...)"; exit status 1 }
if (!exists("out")) out = 'fig3_landscape1d'
if (!exists("title")) title = "1-D loss landscape around the trained weights (filter-normalised direction, Li et al. 2018)"
n = (numbered ? nfiles + 0 : words(files))   # (a number, or the string of one)
file(i) = (numbered ? value(sprintf("file%d", i)) : word(files, i))
given(i) = (numbered ? exists(sprintf("title%d", i)) : exists("titles") && words(titles) >= i)
ctitle(i) = (!given(i) ? nosuffix(basename(file(i)), ".landscape1d.dat") : numbered ? value(sprintf("title%d", i)) : word(titles, i))

set encoding utf8
do for [i=1:8] { set linetype i lc rgb word("#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #7f7f7f", i) }
set linetype cycle 8

do for [fmt in "png pdf"] {
    if (fmt eq "png") {
        set terminal pngcairo size 1400,650 font "DejaVu Sans,12" linewidth 1.5 noenhanced
    } else {
        set terminal pdfcairo size 9.72in,4.51in font "DejaVu Sans,12" linewidth 0.75 pointscale 0.6 noenhanced
    }
    set output out.".".fmt
    set multiplot layout 1,2 title title."\n(α = 0: the trained weights; loss and top-1 on the images and split that cbnn_landscape used)" font ",13" margins 0.06,0.98,0.2,0.83 spacing 0.08
    set grid lt 1 lc rgb "#dddddd" lw 0.7
    set xlabel "α (step along the direction, filter-normalised)"
    set xzeroaxis lt 0
    set key at screen 0.5, 0.02 center bottom horizontal Left reverse samplen 2.5 width 2
    set title "(a) loss along the direction" font ",12"
    set ylabel "loss (nats, mean cross-entropy)"
    plot for [i=1:n] file(i) using 1:2 with lines lc i lw 2 title ctitle(i)
    unset key
    set title "(b) top-1 along the direction"
    set ylabel "top-1 accuracy (%)"
    plot for [i=1:n] file(i) using 1:3 with lines lc i lw 2 notitle
    unset multiplot
    unset output
}
