#!/usr/bin/env bash
# plots/regenerate end to end: two tiny experiments trained with build/cyclebnn (binary ResNet-8,
# 16 iterations on 256 Fashion-MNIST images, a 64-image validation split (the default 5,000 would make
# the evaluations most of the test's time), 2 configurations x 2 seeds each), optionally with small
# loss landscapes (cbnn_landscape), exported by cbnn_export and drawn by the gnuplot scripts. Checks
# that every expected figure exists as a real PNG and PDF (magic bytes, size), that no figure that
# does not apply is drawn, that the exported data the figures read has the rows the runs logged,
# that cbnn_schedule gives the bits the engine trained with and the Fig. 2 table of method.md 2.2,
# that the landscape scripts draw the contract's format, and the error messages (unknown
# experiment, no gnuplot).
#
#   tests/test_plots.sh BUILD/cyclebnn BUILD/analysis/cbnn_export BUILD/analysis/cbnn_schedule [BUILD/analysis/cbnn_landscape]
set -uo pipefail
exe=${1:?usage: test_plots.sh cyclebnn cbnn_export cbnn_schedule [cbnn_landscape]}
export_exe=${2:?cbnn_export}
schedule_exe=${3:?cbnn_schedule}
landscape_exe=${4:-}
src=${CBNN_SOURCE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
regen="$src/plots/regenerate"
. "$(dirname "$0")/testlib.sh"
work_dir plots
# data rows of a .dat file (not comments, not blank)
rows() { grep -cv '^[[:space:]]*\(#\|$\)' "$1"; }
is_png() { [ -s "$1" ] && [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }
is_pdf() { [ -s "$1" ] && [ "$(head -c 5 "$1")" = "%PDF-" ] && tail -c 64 "$1" | grep -q '%%EOF'; }
png_width() { od -An -tu1 -j16 -N4 "$1" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }'; }

for t in gnuplot awk od; do command -v $t >/dev/null || { echo "test_plots.sh: $t is missing (scripts/bootstrap.sh installs gnuplot-nox)" >&2; exit 1; }; done

common='  model: {arch: cifar_resnet8, conv: cyclebnn}
  data: {dataset: fashion_mnist, train_subset: 256, test_subset: 64, val_split: 64, augment: {flip: true}}
  optim: {name: adamw, lr: 0.002}
  train: {iterations: 16, batch_size: 32, eval_interval: 8, eval_batch_size: 32, log_interval: 1}'
cat > "$work/plots_cycles.yaml" <<EOF
name: plots_cycles
base:
$common
  precision: {schedule: cyclic, bits: [2, 6], grad_bits: 8}
grid:
  precision.cycles: [1, 2]
seeds: [1, 2]
EOF
cat > "$work/plots_bits.yaml" <<EOF
name: plots_bits
base:
$common
  precision: {schedule: cyclic, bits: [2, 6], grad_bits: 8, cycles: 2}
runs:
  fixed4: {precision: {schedule: fixed, bits: 4}}
  cyclic2-6: {precision.schedule: cyclic}
seeds: [1, 2]
EOF
res="$work/results"
for e in plots_cycles plots_bits; do
    "$exe" --results "$res" "$work/$e.yaml" > "$work/$e.train.out" 2>&1
    rc=$?
    check "training $e exits 0 (rc $rc: $(tail -n 2 "$work/$e.train.out" | tr '\n' ' '))" test $rc -eq 0
done
[ -f "$res/plots_cycles.h5" ] && [ -f "$res/plots_bits.h5" ] || { echo "test_plots.sh: training failed, stopping" >&2; exit 1; }

have_landscape=0
if [ -n "$landscape_exe" ] && [ -x "$landscape_exe" ]; then
    have_landscape=1
    for r in "fixed4,seed=1" "cyclic2-6,seed=1"; do
        "$landscape_exe" --grid 5 --subset 64 --threads 2 "$res/plots_bits.h5" "$r" > "$work/land.out" 2>&1
        check "cbnn_landscape 2-D on $r: $(tail -n 1 "$work/land.out")" test $? -eq 0
        "$landscape_exe" --1d --grid 7 --subset 64 --threads 2 "$res/plots_bits.h5" "$r" > "$work/land.out" 2>&1
        check "cbnn_landscape 1-D on $r: $(tail -n 1 "$work/land.out")" test $? -eq 0
    done
fi

# --help, and the errors
"$regen" --help > "$work/help" 2>&1
check "regenerate --help exits 0" test $? -eq 0
for opt in --out --results --export --schedule; do check "--help names $opt" grep -q -- "$opt" "$work/help"; done
"$regen" --out "$work/none" --results "$res" --export "$export_exe" --schedule "$schedule_exe" no_such_experiment > "$work/missing" 2>&1
rc=$?
check "an experiment without a results file fails" test $rc -ne 0
check "... with a clear message" grep -q "experiment 'no_such_experiment' has no results file" "$work/missing"
check "... and draws nothing" test ! -e "$work/none/fig2_schedule.png"
# no gnuplot: a PATH holding every program but gnuplot
mkdir -p "$work/nognuplot"
for dir in /usr/local/bin /usr/bin /bin; do
    [ -d "$dir" ] || continue
    for p in "$dir"/*; do
        b=${p##*/}
        case "$b" in gnuplot*) continue ;; esac
        [ -e "$work/nognuplot/$b" ] || ln -s "$p" "$work/nognuplot/$b" 2>/dev/null
    done
done
PATH="$work/nognuplot" "$regen" --out "$work/nogp" --export "$export_exe" --schedule "$schedule_exe" "$res/plots_cycles.h5" > "$work/nogp.out" 2>&1
rc=$?
check "no gnuplot: regenerate fails" test $rc -ne 0
check "no gnuplot: the message says to install gnuplot-nox" grep -q "gnuplot is not installed: install gnuplot-nox" "$work/nogp.out"

# the figures
out="$work/out"
"$regen" --out "$out" --export "$export_exe" --schedule "$schedule_exe" "$res/plots_cycles.h5" "$res/plots_bits.h5" > "$work/regen.out" 2>&1
rc=$?
check "regenerate exits 0 (rc $rc): $(tail -n 5 "$work/regen.out" | tr '\n' ' ')" test $rc -eq 0
expected=(fig2_schedule fig1b_efficiency plots_cycles_training_curves plots_cycles_ablation_cycles
          plots_bits_training_curves plots_bits_ablation_bits)
absent=(plots_cycles_ablation_bits plots_bits_ablation_cycles plots_cycles_fig3_landscape plots_cycles_fig3_landscape1d)
if [ $have_landscape -eq 1 ]; then
    expected+=(plots_bits_fig3_landscape plots_bits_fig3_landscape1d)
else
    absent+=(plots_bits_fig3_landscape plots_bits_fig3_landscape1d)
fi
for f in "${expected[@]}"; do
    check "$f.png is a PNG" is_png "$out/$f.png"
    check "$f.pdf is a PDF" is_pdf "$out/$f.pdf"
    [ -f "$out/$f.png" ] && check "$f.png is at least 800 px wide" test "$(png_width "$out/$f.png")" -ge 800
    check "regenerate names $f" grep -q "made $out/$f.png" "$work/regen.out"
done
for f in "${absent[@]}"; do check "no $f (it does not apply)" test ! -e "$out/$f.png"; done

# the exported data the figures read
d="$out/data"
for e in plots_cycles plots_bits; do
    check "$e/runs.csv: header + 4 runs" test "$(wc -l < "$d/$e/runs.csv")" -eq 5
    check "$e/groups.csv: header + 2 groups" test "$(wc -l < "$d/$e/groups.csv")" -eq 3
    check "$e/groups.csv: 2 seeds per group" test "$(awk -F, 'NR > 1 && $2 != 2' "$d/$e/groups.csv" | wc -l)" -eq 0
done
check "the comparison table labels the paper's metric as selected on test" grep -q "best test top-1 (selected on test)" "$d/plots_cycles/comparison.md"
check "groups.csv gives the 95 % interval of the test top-1 at the selected checkpoint" test "$(head -n 1 "$d/plots_cycles/groups.csv" | tr ',' '\n' | grep -c '^test_top1_at_selected_ci_')" -eq 2
check "runs.csv quotes a run name with a comma" grep -q '^"cycles=1,seed=1",cycles_1_seed_1,complete,cycles=1,' "$d/plots_cycles/runs.csv"
for f in cycles_1_seed_1 cycles_1_seed_2 cycles_2_seed_1 cycles_2_seed_2; do
    check "$f.train.dat: 16 logged steps" test "$(rows "$d/plots_cycles/$f.train.dat")" -eq 16
    check "$f.val.dat: 2 evaluations (steps 8, 16)" test "$(awk '!/^#/ && NF { printf "%s ", $1 }' "$d/plots_cycles/$f.val.dat")" = "8 16 "
    check "$f.train.dat: error bits 8" test "$(awk '!/^#/ && NF && $5 != 8' "$d/plots_cycles/$f.train.dat" | wc -l)" -eq 0
done
# cbnn_schedule gives the bits the engine trained with: 16 iterations as one epoch, N cycles
for c in 1 2; do
    sched=$("$schedule_exe" --epochs 1 --iters-per-epoch 16 --cycles $c --all | awk '!/^#/ && $2 < 16 { printf "%s ", $3 }')
    trained=$(awk '!/^#/ && NF { printf "%s ", $4 }' "$d/plots_cycles/cycles_${c}_seed_1.train.dat")
    check "cbnn_schedule --cycles $c = the bits logged by training ($sched / $trained)" test "$sched" = "$trained"
done
fixed_bits=$(awk '!/^#/ && NF { print $4 }' "$d/plots_bits/fixed4_seed_1.train.dat" | sort -u | tr '\n' ' ')
check "fixed4 trained at 4 bits ($fixed_bits)" test "$fixed_bits" = "4 "
# Fig. 2's data: method.md 2.2 (2-6 bits, 8 cycles, 600 epochs): bands 0-17 / 18-31 / 32-43 / 44-57 / 58-74
s="$d/fig2_schedule.dat"
check "fig2_schedule.dat: 8 cycles x 5 widths + last iteration + end row" test "$(rows "$s")" -eq 42
check "fig2_schedule.dat: starts at epoch 0 with 2 bits, errors 8" test "$(awk '!/^#/ && NF { print $1, $2, $3, $4; exit }' "$s")" = "0.000000 0 2 8"
check "fig2_schedule.dat: ends at epoch 600" test "$(awk '!/^#/ && NF { e = $1 } END { print e }' "$s")" = "600.000000"
bands=$(awk '!/^#/ && NF && $1 < 75 { printf "%d:%d ", $1, $3 }' "$s")
check "fig2_schedule.dat: first cycle's bands as method.md 2.2 ($bands)" test "$bands" = "0:2 17:3 31:4 43:5 57:6 "
check "fig2_schedule.dat: cycle 2 starts at epoch 75 at 2 bits" grep -q '^75.000000 234375 2 8$' "$s"
if [ $have_landscape -eq 1 ]; then
    l="$d/plots_bits/fixed4_seed_1.landscape.dat"
    check "landscape.dat: 5 x 5 rows" test "$(rows "$l")" -eq 25
    check "landscape.dat: 5 blocks of 5 rows (gnuplot grid format)" test "$(awk 'NF && !/^#/ { n++ } !NF && n { print n; n = 0 } END { if (n) print n }' "$l" | tr '\n' ' ')" = "5 5 5 5 5 "
    check "landscape1d.dat: 7 rows" test "$(rows "$d/plots_bits/cyclic2-6_seed_1.landscape1d.dat")" -eq 7
    check "regenerate pairs fixed4,seed=1 with cyclic2-6,seed=1" grep -q . "$out/plots_bits_fig3_landscape.png"
fi

# the landscape scripts on the contract's format directly (whatever cbnn_landscape did)
mkdir -p "$work/land"
for r in fixed cyclic; do
    w=1; [ $r = cyclic ] && w=2
    awk -v w=$w 'BEGIN { print "# alpha beta loss top1 flips"
        for (i = -1; i <= 1; i += 0.5) { for (j = -1; j <= 1; j += 0.5) printf "%g %g %g %g %d\n", i, j, 0.5 + w * (i * i + j * j), 80 - w * (i * i + j * j), 100 * (i * i + j * j); print "" } }' > "$work/land/$r.landscape.dat"
    awk -v w=$w 'BEGIN { print "# alpha loss top1 flips"
        for (i = -1; i <= 1; i += 0.25) printf "%g %g %g %d\n", i, 0.5 + w * i * i, 80 - w * i * i, 100 * i * i }' > "$work/land/$r.landscape1d.dat"
done
gnuplot -e "a='$work/land/fixed.landscape.dat'; atitle='fixed'; b='$work/land/cyclic.landscape.dat'; btitle='cyclic'; out='$work/land/l2'" "$src/plots/fig3_landscape.gp" > "$work/land/log" 2>&1
check "fig3_landscape.gp draws two synthetic landscapes: $(head -c 300 "$work/land/log")" bash -c "$(declare -f is_png is_pdf); is_png '$work/land/l2.png' && is_pdf '$work/land/l2.pdf'"
gnuplot -e "a='$work/land/fixed.landscape.dat'; out='$work/land/l1'" "$src/plots/fig3_landscape.gp" > "$work/land/log" 2>&1
check "fig3_landscape.gp draws one landscape: $(head -c 300 "$work/land/log")" bash -c "$(declare -f is_png is_pdf); is_png '$work/land/l1.png' && is_pdf '$work/land/l1.pdf'"
gnuplot -e "files='$work/land/fixed.landscape1d.dat $work/land/cyclic.landscape1d.dat'; titles='fixed cyclic'; out='$work/land/d1'" "$src/plots/fig3_landscape1d.gp" > "$work/land/log" 2>&1
check "fig3_landscape1d.gp draws two synthetic 1-D landscapes: $(head -c 300 "$work/land/log")" bash -c "$(declare -f is_png is_pdf); is_png '$work/land/d1.png' && is_pdf '$work/land/d1.pdf'"

echo "test_plots: $passed passed, $failed failed$([ $have_landscape -eq 1 ] || echo ' (no cbnn_landscape given: landscape figures checked on synthetic data only)')"
[ $failed -eq 0 ]
