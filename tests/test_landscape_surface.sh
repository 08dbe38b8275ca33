#!/usr/bin/env bash
# cbnn_landscape --export-surface: the surface-file layout of tomgoldstein/loss-landscape
# (analysis/README.md, "Surface files"), read back under that project's conventions.
#
# A binary ResNet-8 trains 8 iterations on 256 Fashion-MNIST images; cbnn_landscape computes a
# 5 x 5 landscape on the test split and a 7-point 1-D one on the training split, and exports
# both. /usr/bin/python3 + h5py then read the files as their plot_2D.py / h52vtp.py do
# (X, Y = meshgrid(xcoordinates, ycoordinates), Z = f[name][:], point k of Z.ravel() at
# (X.ravel()[k], Y.ravel()[k])) and plot_1D.py does (x = xcoordinates, train_loss, train_acc),
# and check every point against the results file's own table, looked up by its (alpha, beta):
# loss equal, accuracy equal (ours is already percent), dtypes float64, shapes, the names by
# split (a 1-D landscape on the validation hold-out too: val_loss, val_acc), the attributes. The 2-D landscape must not be symmetric (loss(a, b) != loss(b, a)
# somewhere), so a transposed file fails. A copy of the results file with rows removed from its
# table gives -1 at exactly those points. Errors: no landscape, no run, a stale landscape, a
# missing directory, a directory as FILE, the results file as FILE (left unchanged), compute
# options mixed in; a failed export leaves an existing FILE alone and no FILE.tmp behind.
#
#   tests/test_landscape_surface.sh BUILD/cyclebnn BUILD/analysis/cbnn_landscape
set -uo pipefail
exe=${1:?usage: test_landscape_surface.sh cyclebnn cbnn_landscape}
land=${2:?cbnn_landscape}
. "$(dirname "$0")/testlib.sh"
work_dir landsurf
py=/usr/bin/python3
$py -c 'import h5py, numpy' 2>/dev/null || { echo "FAIL test_landscape_surface: $py has no h5py/numpy (apt-get install python3-h5py)"; exit 1; }

cat > "$work/surf.yaml" <<EOF
name: surf
base:
  model: {arch: cifar_resnet8, conv: cyclebnn}
  data: {dataset: fashion_mnist, train_subset: 256, test_subset: 64, val_split: 64, augment: {flip: true}}
  precision: {schedule: cyclic, bits: [2, 6], grad_bits: 8, cycles: 2}
  optim: {name: adamw, lr: 0.002}
  train: {iterations: 8, batch_size: 32, eval_interval: 8, eval_batch_size: 32, log_interval: 4}
runs:
  net: {}
EOF
res="$work/results"
"$exe" --results "$res" "$work/surf.yaml" > "$work/train.out" 2>&1
rc=$?
check "training exits 0 (rc $rc: $(tail -n 2 "$work/train.out" | tr '\n' ' '))" test $rc -eq 0
h5="$res/surf.h5"
[ -f "$h5" ] || { echo "FAIL: no results file $h5, stopping" >&2; exit 1; }

"$land" --grid 5 --subset 48 --seed 3 --threads 2 "$h5" net > "$work/l2.out" 2>&1
check "2-D landscape: $(tail -n 1 "$work/l2.out")" test $? -eq 0
"$land" --1d --grid 7 --subset 40 --split train --threads 2 "$h5" net > "$work/l1.out" 2>&1
check "1-D landscape: $(tail -n 1 "$work/l1.out")" test $? -eq 0

# --help documents the option
"$land" --help > "$work/help" 2>&1
check "--help names --export-surface" has "$work/help" "--export-surface FILE"
check "--help names --surface-prefix" has "$work/help" "--surface-prefix"

# the exports; an existing FILE is replaced whole (junk first)
echo junk > "$work/s2.h5"
"$land" --export-surface "$work/s2.h5" "$h5" net > "$work/e2.out" 2>&1
check "export 2-D exits 0: $(cat "$work/e2.out")" test $? -eq 0
check "export 2-D says what it wrote" has "$work/e2.out" "test_loss, test_acc: 5 x 5"
"$land" --export-surface "$work/s1.h5" --1d "$h5" net > "$work/e1.out" 2>&1
check "export 1-D exits 0: $(cat "$work/e1.out")" test $? -eq 0
"$land" --export-surface "$work/s2p.h5" --surface-prefix train "$h5" net > "$work/e2p.out" 2>&1
check "export 2-D with --surface-prefix train exits 0: $(cat "$work/e2p.out")" test $? -eq 0
check "no FILE.tmp left behind" test ! -e "$work/s2.h5.tmp" -a ! -e "$work/s1.h5.tmp"

# -1 where a point has no value: a copy of the results file whose 2-D table lost three rows
cp "$h5" "$work/holes.h5"
$py - "$work/holes.h5" <<'EOF' > "$work/holes.out" 2>&1
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], 'r+') as f:
    g = f['runs/net/landscape']
    cols = {k: g[k][:] for k in g.keys()}
    units = {k: g[k].attrs.get('units') for k in g.keys()}
    # drop (alpha, beta) = (-1, 0.5), (0.5, 1), (0, -0.5): a pattern symmetric under no transpose
    drop = [(-1.0, 0.5), (0.5, 1.0), (0.0, -0.5)]
    keep = np.ones(len(cols['alpha']), bool)
    for a, b in drop:
        hit = (cols['alpha'] == a) & (cols['beta'] == b)
        assert hit.sum() == 1, (a, b)
        keep &= ~hit
    for k in cols:
        del g[k]
        g[k] = cols[k][keep]
        if units[k] is not None:
            g[k].attrs['units'] = units[k]
    del f['runs/net/landscape1d']
print('ok')
EOF
check "making the copy with holes: $(tail -n 1 "$work/holes.out")" has "$work/holes.out" "^ok"
"$land" --export-surface "$work/sh.h5" "$work/holes.h5" net > "$work/eh.out" 2>&1
check "export of a table with missing rows exits 0: $(cat "$work/eh.out")" test $? -eq 0

$py - "$h5" "$work/s2.h5" "$work/s1.h5" "$work/s2p.h5" "$work/sh.h5" <<'EOF' > "$work/check.out" 2>&1
import sys, h5py, numpy as np
res, s2, s1, s2p, sh = sys.argv[1:]
bad = []
def check(ok, what):
    if not ok: bad.append(what)

r = h5py.File(res, 'r')
run = r['runs/net']
t2 = {k: run['landscape'][k][:] for k in ('alpha', 'beta', 'loss', 'top1', 'flips')}
t1 = {k: run['landscape1d'][k][:] for k in ('alpha', 'loss', 'top1', 'flips')}
a2 = dict(run['landscape'].attrs)
run_git = run.attrs['git_revision']
run_git = run_git.decode() if isinstance(run_git, bytes) else run_git

def ours(a, b):
    """our table's row at (alpha, beta), looked up by its coordinates"""
    hit = np.nonzero((t2['alpha'] == a) & (t2['beta'] == b))[0]
    return hit[0] if len(hit) == 1 else None

# the test must be able to tell x from y: some loss(a, b) != loss(b, a)
asym = sum(1 for k in range(len(t2['alpha'])) if t2['loss'][k] != t2['loss'][ours(t2['beta'][k], t2['alpha'][k])])
check(asym > 0, 'the 2-D landscape is symmetric: this test could not tell a transposed file')

def check_2d(path, loss_name, acc_name, missing=()):
    f = h5py.File(path, 'r')
    x, y = f['xcoordinates'][:], f['ycoordinates'][:]
    check(f['xcoordinates'].dtype == np.float64 and f['ycoordinates'].dtype == np.float64, path + ': coordinates not float64')
    check(x.shape == (5,) and y.shape == (5,), path + ': coordinate shapes %s %s' % (x.shape, y.shape))
    check(np.array_equal(x, np.unique(t2['alpha'])) and np.array_equal(y, np.unique(t2['beta'])), path + ': axes are not our alpha / beta')
    for name in (loss_name, acc_name, 'flips'):
        check(name in f and f[name].dtype == np.float64 and f[name].shape == (len(y), len(x)), path + ': %s missing, not float64 or not (ny, nx)' % name)
    # plot_2D.py: X, Y = np.meshgrid(x, y); Z = np.array(f[surf_name][:]); contour(X, Y, Z)
    X, Y = np.meshgrid(x, y)
    Z, A, F = np.array(f[loss_name][:]), np.array(f[acc_name][:]), np.array(f['flips'][:])
    check(Z.shape == X.shape, path + ': Z and meshgrid(x, y) differ in shape')
    n_missing = 0
    for iy in range(len(y)):
        for ix in range(len(x)):
            k = ours(X[iy, ix], Y[iy, ix])
            if (X[iy, ix], Y[iy, ix]) in missing:
                n_missing += 1
                check(Z[iy, ix] == -1 and A[iy, ix] == -1 and F[iy, ix] == -1, path + ': (%g, %g) has no value but is not -1' % (X[iy, ix], Y[iy, ix]))
                continue
            check(k is not None, path + ': no row of ours at (%g, %g)' % (X[iy, ix], Y[iy, ix]))
            if k is None: continue
            check(Z[iy, ix] == t2['loss'][k], path + ': loss at (%g, %g): %r, ours %r' % (X[iy, ix], Y[iy, ix], Z[iy, ix], t2['loss'][k]))
            check(A[iy, ix] == t2['top1'][k], path + ': acc at (%g, %g): %r, ours %r (percent)' % (X[iy, ix], Y[iy, ix], A[iy, ix], t2['top1'][k]))
            check(F[iy, ix] == t2['flips'][k], path + ': flips at (%g, %g)' % (X[iy, ix], Y[iy, ix]))
    check(n_missing == len(missing), path + ': %d holes, expected %d' % (n_missing, len(missing)))
    # their crunch()/h52vtp.py: value k of vals.ravel() is at (xm.ravel()[k], ym.ravel()[k])
    xm, ym = np.meshgrid(x, y)
    for k in range(Z.size):
        j = ours(xm.ravel()[k], ym.ravel()[k])
        if j is not None and (xm.ravel()[k], ym.ravel()[k]) not in missing:
            check(Z.ravel()[k] == t2['loss'][j], path + ': flat %d' % k)
    # a transposed file would fail the checks above
    if not missing:
        check(not np.array_equal(Z.T, Z), path + ': Z is symmetric, the order is not tested')
        check(any(Z.T[iy, ix] != t2['loss'][ours(X[iy, ix], Y[iy, ix])] for iy in range(5) for ix in range(5)), path + ': the transpose would pass too')
    return f

f = check_2d(s2, 'test_loss', 'test_acc')
check('train_loss' not in f and 'train_acc' not in f, s2 + ': a test-split landscape is written as train_*')
at = dict(f.attrs)
s = lambda v: v.decode() if isinstance(v, bytes) else v
check(s(at.get('run')) == 'net', s2 + ': run %r' % at.get('run'))
check(s(at.get('split')) == 'test', s2 + ': split %r' % at.get('split'))
check(int(at.get('subset', -1)) == 48 and int(at.get('subset')) == int(a2['subset']), s2 + ': subset %r' % at.get('subset'))
check(int(at.get('directions_seed', -1)) == 3, s2 + ': directions_seed %r' % at.get('directions_seed'))
check(s(at.get('results_file')) == res, s2 + ': results_file %r' % at.get('results_file'))
check(s(at.get('git_revision')) == run_git and run_git != '', s2 + ': git_revision %r, run %r' % (at.get('git_revision'), run_git))
check(int(at.get('filled', -1)) == 25 and int(at.get('grid_n', -1)) == 5, s2 + ': filled / grid_n')
check(float(at.get('checkpoint_step', -1)) == float(a2['checkpoint_step']) == 8, s2 + ': checkpoint_step')

fp = check_2d(s2p, 'train_loss', 'train_acc')
check(s(fp.attrs.get('split')) == 'test' and 'test_loss' not in fp, s2p + ': --surface-prefix train must keep split = test')

fh = check_2d(sh, 'test_loss', 'test_acc', missing={(-1.0, 0.5), (0.5, 1.0), (0.0, -0.5)})
check(int(fh.attrs.get('filled', -1)) == 22, sh + ': filled %r' % fh.attrs.get('filled'))

# plot_1D.py: x = f['xcoordinates'][:], train_loss, train_acc (its assert: 'train_loss' in f.keys())
g = h5py.File(s1, 'r')
check('ycoordinates' not in g, s1 + ': a 1-D file has ycoordinates')
check('train_loss' in g.keys() and 'train_acc' in g.keys() and 'test_loss' not in g, s1 + ': names of a train-split 1-D landscape')
x = g['xcoordinates'][:]
check(x.shape == (7,) and g['xcoordinates'].dtype == np.float64, s1 + ': xcoordinates')
for name, col in (('train_loss', 'loss'), ('train_acc', 'top1'), ('flips', 'flips')):
    v = g[name][:]
    check(v.dtype == np.float64 and v.shape == (7,), s1 + ': %s dtype/shape' % name)
    for i in range(7):
        hit = np.nonzero(t1['alpha'] == x[i])[0]
        check(len(hit) == 1 and v[i] == t1[col][hit[0]], s1 + ': %s at %g' % (name, x[i]))
check(s(g.attrs.get('split')) == 'train' and int(g.attrs.get('subset', -1)) == 40, s1 + ': split / subset')

for b in bad: print('FAIL:', b)
print('checked: %d problems' % len(bad))
EOF
check "the surface files read back under their conventions ($(tail -n 1 "$work/check.out"))" grep -q "^checked: 0 problems" "$work/check.out"
grep "FAIL\|Error\|Traceback\|line" "$work/check.out" | head -n 20 >&2

# a landscape on the validation hold-out (data.val_split: 64 images; --subset 100 takes them all)
cp "$h5" "$work/val.h5"
"$land" --1d --grid 5 --subset 100 --split val --threads 2 "$work/val.h5" net > "$work/lv.out" 2>&1
check "1-D landscape on val: $(tail -n 1 "$work/lv.out")" test $? -eq 0
"$land" --export-surface "$work/sv.h5" --1d "$work/val.h5" net > "$work/ev.out" 2>&1
check "export of the val landscape exits 0: $(cat "$work/ev.out")" test $? -eq 0
$py - "$work/val.h5" "$work/sv.h5" <<'EOF2' > "$work/checkv.out" 2>&1
import sys, h5py, numpy as np
t = h5py.File(sys.argv[1], 'r')['runs/net/landscape1d']
f = h5py.File(sys.argv[2], 'r')
s = lambda v: v.decode() if isinstance(v, bytes) else v
ok = (sorted(f.keys()) == ['flips', 'val_acc', 'val_loss', 'xcoordinates'] and s(f.attrs['split']) == 'val'
      and int(f.attrs['subset']) == 64 and s(t.attrs['split']).startswith('val, first 64 images')
      and np.array_equal(f['xcoordinates'][:], t['alpha'][:]) and np.array_equal(f['val_loss'][:], t['loss'][:])
      and np.array_equal(f['val_acc'][:], t['top1'][:]) and f['val_loss'].dtype == np.float64)
print('ok' if ok else 'bad: %s %r %r' % (sorted(f.keys()), dict(f.attrs).get('split'), s(t.attrs['split'])))
EOF2
check "the val surface: val_loss / val_acc, split val, 64 images, the table's values ($(tail -n 1 "$work/checkv.out"))" has "$work/checkv.out" "^ok"

# errors: each names the file, and a failed export leaves FILE as it was
cp "$work/s2.h5" "$work/keep.h5"
cp "$h5" "$work/before.h5"
err() { "$land" "$@" > "$work/err.out" 2>&1; echo $?; }
rc=$(err --export-surface "$work/keep.h5" --1d "$work/holes.h5" net)
check "no 1-D landscape: exit 1 (rc $rc)" test "$rc" -eq 1
check "... says which file and run has none" has "$work/err.out" "run 'net' in $work/holes.h5 has no 1-D landscape"
check "... and FILE is left as it was" cmp -s "$work/keep.h5" "$work/s2.h5"
check "... with no FILE.tmp" test ! -e "$work/keep.h5.tmp"
rc=$(err --export-surface "$work/keep.h5" "$h5" nosuchrun)
check "no such run: exit 1 (rc $rc)" test "$rc" -eq 1
check "... names the file and lists its runs" has "$work/err.out" "$h5 has no run 'nosuchrun' (its runs: net)"
rc=$(err --export-surface "$work/no/such/dir/s.h5" "$h5" net)
check "missing directory: exit 1 (rc $rc)" test "$rc" -eq 1
check "... names the file and the directory" has "$work/err.out" "cannot write surface file $work/no/such/dir/s.h5: directory $work/no/such/dir does not exist"
mkdir "$work/adir"
rc=$(err --export-surface "$work/adir" "$h5" net)
check "a directory as FILE: exit 1 (rc $rc)" test "$rc" -eq 1
check "... says so" has "$work/err.out" "surface file $work/adir is a directory"
rc=$(err --export-surface "$h5" "$h5" net)
check "the results file as FILE: exit 1 (rc $rc)" test "$rc" -eq 1
check "... says so" has "$work/err.out" "is the results file itself"
check "... and leaves it unchanged" cmp -s "$h5" "$work/before.h5"
rc=$(err --export-surface "$work/x.h5" --grid 5 "$h5" net)
check "--grid with --export-surface: exit 2 (rc $rc)" test "$rc" -eq 2
check "... says why" has "$work/err.out" "--export-surface only exports"
rc=$(err --surface-prefix train "$h5" net)
check "--surface-prefix alone: exit 2 (rc $rc)" test "$rc" -eq 2
# a stale landscape (of an older checkpoint than the run's now)
cp "$h5" "$work/stale.h5"
$py -c "import h5py,sys; f=h5py.File(sys.argv[1],'r+'); f['runs/net/landscape'].attrs['checkpoint_step']=4.0" "$work/stale.h5"
rc=$(err --export-surface "$work/x.h5" "$work/stale.h5" net)
check "a stale landscape: exit 1 (rc $rc)" test "$rc" -eq 1
check "... names both steps" has "$work/err.out" "is stale: it is of the checkpoint at step 4, the run's checkpoint is now at step 8"
check "... and writes nothing" test ! -e "$work/x.h5" -a ! -e "$work/x.h5.tmp"
finish test_landscape_surface
