#!/usr/bin/env bash
# plots/regenerate and cbnn_landscape against the reliability defects of issue 12, one block each:
#   3. landscapes of the wrong weights: cbnn_landscape refuses a run that is not complete unless
#      --allow-unfinished (then the table says unfinished = 1 and the figure says so); a landscape
#      of an older checkpoint than the run's is not drawn (one line naming the run and both steps)
#      and its old figure is removed; the panel titles give the step;
#   4. outputs keyed by results file: a copy X_old.h5 of experiment X gets X_old.md, data/X_old/
#      and X_old_* figures, and leaves X's alone; a figure of X_old that no longer applies goes;
#   7. names and paths reach gnuplot as strings, never as code: a run named with an apostrophe,
#      spaces, '=' and commas, in a results file and an output folder with an apostrophe and a
#      space, draws every figure; a figure that fails makes regenerate exit non-zero;
#  11. a kill -9 while a figure is drawn leaves the previous figure (not a 0-byte file), and the
#      next run removes the leftovers of killed runs (temporary figures, .export.* folders) but
#      not those of a run still going.
#
#   tests/test_plots_safety.sh BUILD/cyclebnn BUILD/analysis/cbnn_export BUILD/analysis/cbnn_schedule BUILD/analysis/cbnn_landscape
set -uo pipefail
exe=${1:?usage: test_plots_safety.sh cyclebnn cbnn_export cbnn_schedule cbnn_landscape}
export_exe=${2:?cbnn_export}
schedule_exe=${3:?cbnn_schedule}
landscape_exe=${4:?cbnn_landscape}
src=${CBNN_SOURCE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
regen="$src/plots/regenerate"
py=/usr/bin/python3
. "$(dirname "$0")/testlib.sh"
work_dir plots_safety
for t in gnuplot awk od "$py"; do command -v "$t" >/dev/null || { echo "test_plots_safety.sh: $t is missing" >&2; exit 1; }; done
"$py" -c 'import h5py' 2>/dev/null || { echo "test_plots_safety.sh: h5py is missing (python3-h5py)" >&2; exit 1; }
is_png() { [ -s "$1" ] && [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }
is_pdf() { [ -s "$1" ] && [ "$(head -c 5 "$1")" = "%PDF-" ] && tail -c 64 "$1" | grep -q '%%EOF'; }
h5() { "$py" -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r+'); $2" "$1"; }
h5get() { "$py" -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r'); print($2)" "$1"; }

# gnuplot as regenerate runs it, through a wrapper that logs each -e line (the string settings) and,
# when $KILL_ON names a script, truncates that figure's output as gnuplot's `set output` does and
# kills regenerate and itself with SIGKILL: a kill -9 in the middle of drawing.
real_gnuplot=$(command -v gnuplot)
mkdir -p "$work/bin"
cat > "$work/bin/gnuplot" <<EOF
#!/usr/bin/env bash
[ "\${1:-}" = -e ] && [ \$# -eq 3 ] && printf '%s\n' "\$2" >> "$work/gnuplot.log"
if [ -n "\${KILL_ON:-}" ] && [ "\${3##*/}" = "\$KILL_ON" ]; then
    o=\$("$real_gnuplot" -e "\$2" -e 'print out' 2>&1 | tail -n 1)
    : > "\$o.png"
    kill -9 \$PPID \$\$
fi
exec "$real_gnuplot" "\$@"
EOF
chmod +x "$work/bin/gnuplot"
export PATH="$work/bin:$PATH"
regen_to() { "$regen" --out "$1" --export "$export_exe" --schedule "$schedule_exe" "${@:2}"; }

# ---- a tiny experiment: a fixed and a cyclic run, 16 steps each
res="$work/res dir's"
mkdir -p "$res"
cat > "$work/safe.yaml" <<EOF
name: safe
base:
  model: {arch: cifar_resnet8, conv: cyclebnn}
  data: {dataset: fashion_mnist, train_subset: 256, test_subset: 64, val_split: 64}
  optim: {name: adamw, lr: 0.002}
  train: {iterations: 16, batch_size: 32, eval_interval: 8, eval_batch_size: 32, log_interval: 1}
  precision: {schedule: cyclic, bits: [2, 6], grad_bits: 8, cycles: 2}
runs:
  fixed4: {precision: {schedule: fixed, bits: 4}}
  cyclic2-6: {precision.schedule: cyclic}
EOF
"$exe" --results "$res" "$work/safe.yaml" > "$work/train.out" 2>&1
check "training exits 0: $(tail -n 2 "$work/train.out" | tr '\n' ' ')" test $? -eq 0
X="$res/safe.h5"
[ -f "$X" ] || { echo "test_plots_safety.sh: training failed, stopping" >&2; exit 1; }

# ---- 3. cbnn_landscape: complete runs only, unless --allow-unfinished
for r in fixed4 cyclic2-6; do
    "$landscape_exe" --grid 3 --subset 32 --threads 2 "$X" "$r" > "$work/land.out" 2>&1
    check "cbnn_landscape on the complete run $r: $(tail -n 1 "$work/land.out")" test $? -eq 0
done
"$landscape_exe" --1d --grid 5 --subset 32 --threads 2 "$X" fixed4 > "$work/land.out" 2>&1
check "cbnn_landscape --1d on fixed4: $(tail -n 1 "$work/land.out")" test $? -eq 0
check "the table records the step of the weights (16)" test "$(h5get "$X" "int(f['runs/fixed4/landscape'].attrs['checkpoint_step'])")" = 16
check "... and that the run was complete" test "$(h5get "$X" "int(f['runs/fixed4/landscape'].attrs['unfinished'])")" = 0
U="$work/unfinished.h5"
cp "$X" "$U"
h5 "$U" "f['runs/cyclic2-6'].attrs['status'] = 'interrupted'"
"$landscape_exe" --grid 3 --subset 32 --threads 2 "$U" cyclic2-6 > "$work/refused.out" 2>&1
rc=$?
check "cbnn_landscape refuses an interrupted run (rc $rc)" test $rc -ne 0
check "... in one line naming the run, its status and --allow-unfinished: $(cat "$work/refused.out")" \
    test "$(grep -c "run 'cyclic2-6' in $U is interrupted, not complete.*--allow-unfinished" "$work/refused.out")" = 1
"$landscape_exe" --allow-unfinished --grid 3 --subset 32 --threads 2 "$U" cyclic2-6 > "$work/land.out" 2>&1
check "--allow-unfinished evaluates it: $(tail -n 1 "$work/land.out")" test $? -eq 0
check "... and marks the table unfinished, with the run's status" \
    test "$(h5get "$U" "int(f['runs/cyclic2-6/landscape'].attrs['unfinished']), f['runs/cyclic2-6/landscape'].attrs['run_status']")" = "1 interrupted"

# ---- 7. a run name with an apostrophe, spaces, '=' and commas; a file and a folder with an
# apostrophe and a space: every figure is drawn, the names reach gnuplot as quoted strings
odd="it's a run, lr=0.002,bits=2-6"
W="$res/it's safe.h5"
cp "$X" "$W"
h5 "$W" "f.move('runs/cyclic2-6', \"runs/$odd\")"
out="$work/out dir's"
: > "$work/gnuplot.log"
regen_to "$out" "$W" "$U" > "$work/odd.out" 2>&1
rc=$?
check "regenerate with odd names exits 0 (rc $rc): $(grep -i 'fail\|error' "$work/odd.out" | head -n 5 | tr '\n' ' ')" test $rc -eq 0
for f in "it's safe_training_curves" "it's safe_ablation_bits" "it's safe_fig3_landscape" "it's safe_fig3_landscape1d" \
         unfinished_fig3_landscape fig1b_efficiency fig2_schedule; do
    check "'$f' is a PNG and a PDF" bash -c "$(declare -f is_png is_pdf); is_png \"\$1.png\" && is_pdf \"\$1.pdf\"" _ "$out/$f"
done
check "the odd run name reaches gnuplot as a quoted string ('' for ')" \
    grep -qF "btitle='it''s a run, lr=0.002,bits=2-6 at step 16 (evaluated at 6 bits; test, first 32 images)'" "$work/gnuplot.log"
check "the landscape title gives the step: fixed4 at step 16" \
    grep -qF "atitle='fixed4 at step 16 (evaluated at 4 bits; test, first 32 images)'" "$work/gnuplot.log"
check "the unfinished run's panel says so" grep -qF "cyclic2-6 at step 16 of an unfinished (interrupted) run" "$work/gnuplot.log"
check "... and so does the figure's title" grep -qF "unfinished: loss landscape around the weights at the steps given (an unfinished run among them)" "$work/gnuplot.log"
check "the training curves name the odd run" grep -q "it's a run, lr=0.002,bits=2-6" "$out/data/it's safe/runs.csv"
# a figure that fails: regenerate says which and exits 1, the others are still drawn
mkdir -p "$work/broken/plots"
cp -r "$src/plots/." "$work/broken/plots/"
echo 'print "broken on purpose"; exit status 1' > "$work/broken/plots/ablation_bits.gp"
"$work/broken/plots/regenerate" --out "$work/bad" --export "$export_exe" --schedule "$schedule_exe" "$X" > "$work/bad.out" 2>&1
rc=$?
check "a failing figure makes regenerate exit non-zero (rc $rc)" test $rc -ne 0
check "... naming it" grep -q "failed: safe_ablation_bits" "$work/bad.out"
check "... and the other figures are drawn" is_png "$work/bad/safe_training_curves.png"

# ---- 4. keyed by results file: X_old.h5 holds the same experiment as X.h5
out="$work/out4"
cp "$X" "$res/safe_old.h5"
h5 "$res/safe_old.h5" "del f['runs/fixed4/landscape1d']"
regen_to "$out" "$X" > "$work/k1.out" 2>&1
regen_to "$out" "$res/safe_old.h5" > "$work/k2.out" 2>&1
check "regenerate X_old exits 0: $(tail -n 2 "$work/k2.out" | tr '\n' ' ')" test $? -eq 0
check "safe.md still names safe.h5" grep -qF "\`$X\`" "$res/safe.md"
check "safe_old.md names safe_old.h5" grep -qF "\`$res/safe_old.h5\`" "$res/safe_old.md"
check "data/safe/ and data/safe_old/ both there" test -f "$out/data/safe/runs.csv" -a -f "$out/data/safe_old/runs.csv"
for f in training_curves ablation_bits fig3_landscape fig3_landscape1d; do
    check "safe_$f.png is X's own" is_png "$out/safe_$f.png"
done
for f in training_curves ablation_bits fig3_landscape; do check "safe_old_$f.png drawn" is_png "$out/safe_old_$f.png"; done
check "no safe_old_fig3_landscape1d (its 1-D table is gone)" test ! -e "$out/safe_old_fig3_landscape1d.png"
check "the figure lists both files" grep -q "fig1b_efficiency: .*safe.*safe_old\|fig1b_efficiency: .*safe_old.*safe" "$work/k2.out"

# ---- 3 (figures): a landscape of an older checkpoint than the run's is stale: not drawn, its old
# figure removed (only this file's), one line naming the run and both steps
h5 "$res/safe_old.h5" "f['runs/fixed4/landscape'].attrs['checkpoint_step'] = 8.0; f['runs/cyclic2-6/landscape'].attrs['checkpoint_step'] = 8.0"
regen_to "$out" "$res/safe_old.h5" > "$work/stale.out" 2>&1
check "regenerate with stale landscapes exits 0" test $? -eq 0
check "one line names the stale run and both steps: $(grep stale "$work/stale.out" | head -n 1)" \
    test "$(grep -c "run 'fixed4': landscape/ is stale: computed on the weights at step 8, the run (complete) is now at step 16" "$work/stale.out")" = 1
check "the stale figure is removed" test ! -e "$out/safe_old_fig3_landscape.png" -a ! -e "$out/safe_old_fig3_landscape.pdf"
check "... and said so" grep -q "removed $out/safe_old_fig3_landscape.png" "$work/stale.out"
check "... but not X's" is_png "$out/safe_fig3_landscape.png"
check "no stale landscape data exported" test ! -e "$out/data/safe_old/fixed4.landscape.dat"

# ---- 11. kill -9 while drawing: the previous figure stays; the leftovers go at the next start
out="$work/out11"
regen_to "$out" "$X" > "$work/k.out" 2>&1
before=$(cksum < "$out/safe_training_curves.png")
KILL_ON=training_curves.gp regen_to "$out" "$X" > "$work/killed.out" 2>&1
rc=$?
check "the killed regenerate died of SIGKILL (rc $rc)" test $rc -eq 137
check "the previous training curves are intact after the kill" test "$(cksum < "$out/safe_training_curves.png")" = "$before"
check "a temporary figure was left by the kill" bash -c 'ls -A "$1" | grep -q "^\.safe_training_curves\.tmp\."' _ "$out"
mkdir -p "$out/data/.export.999999999.abc123" "$out/data/.export.oldAbC" "$out/data/.export.$$.live00"
touch -d '2 hours ago' "$out/data/.export.oldAbC"
regen_to "$out" "$X" > "$work/after.out" 2>&1
check "regenerate after the kill exits 0" test $? -eq 0
check "the temporary figure of the killed run is removed" bash -c '! ls -A "$1" | grep -q "\.tmp\."' _ "$out"
check "the staging folder of a dead process is removed" test ! -e "$out/data/.export.999999999.abc123"
check "an old staging folder of the former naming is removed" test ! -e "$out/data/.export.oldAbC"
check "the staging folder of a live process is kept" test -d "$out/data/.export.$$.live00"
check "no temporary md beside the results" bash -c '! ls -A "$1" | grep -q "\.md\."' _ "$res"

finish test_plots_safety
