#!/usr/bin/env bash
# The real-format loaders through the experiment driver: small CIFAR-10
# (binary) and ImageNet (JPEG folders) sets written by the generators, trained
# on by build/cyclebnn with the paper's augmentations (CIFAR: mean-filled crop,
# flip, AutoAugment, Cutout; ImageNet: RandomResizedCrop, flip, Lighting, eval
# resize + centre crop). The CIFAR run must learn (best top-1 above 20 %,
# chance is 10 %); the ImageNet run holds out 8 of its 24 training images
# for validation (data.val_split: the hold-out through a real loader's
# views, evaluated with the eval transforms); the background loader
# (data.loader_workers) changes no number; a missing dataset names the path
# and the fetch script.
#
# The default hold-out (5,000 images for CIFAR-10, 10,000 for ImageNet) is
# larger than these generated sets, so each YAML names its own data.val_split.
#
#   tests/test_datasets_e2e.sh CYCLEBNN MAKE_CIFAR10 MAKE_IMAGENET
set -uo pipefail
exe=${1:?} make_cifar=${2:?} make_inet=${3:?}
py=/usr/bin/python3
. "$(dirname "$0")/testlib.sh"
work_dir e2e

"$make_cifar" "$work/c" --train 512 --test 128 --seed 1 > /dev/null; check "make_cifar10" test $? -eq 0
"$make_inet" "$work/i" --per-class 6 --seed 1 > /dev/null; check "make_imagenet" test $? -eq 0

cat > "$work/c.yaml" <<EOF
name: e2e_cifar
base:
  model: {arch: cifar_resnet8, conv: cyclebnn}
  precision: {schedule: cyclic, bits: [2, 6], cycles: 2}
  data:
    dataset: cifar10
    path: $work/c/cifar-10-batches-bin
    normalize: false
    # no hold-out: the learning threshold below was set on the best of the periodic test
    # evaluations over all 512 training images (paper_best_top1 with val_split 0, the old best_top1)
    val_split: 0
    augment: {crop_pad: 4, crop_fill_mean: true, flip: true, autoaugment: true, cutout: 16}
  optim: {lr: 0.002}
  train: {epochs: 3, batch_size: 32, eval_batch_size: 32, log_interval: 16}
EOF
"$exe" --results "$work/r" "$work/c.yaml" > "$work/c.out" 2> "$work/c.err"; rc=$?
check "the CIFAR-10 run completes (rc $rc)" test $rc -eq 0
check "the CIFAR-10 run saw 512 / 128 images" grep -q "(512 train / 0 validation / 128 test images)" "$work/c.err"
"$py" -c "
import sys, h5py
r = h5py.File(sys.argv[1], 'r')['runs/e2e_cifar']
b = float(r.attrs['paper_best_top1'])
print('CIFAR-10 synthetic best test top-1 (selected on test, val_split 0) %.2f %%' % b)
t = r['test']
periodic = t['top1'][:][t['fixed'][:] == 0]   # val_split 0: every periodic evaluation is a test row
sys.exit(0 if b > 20 and r.attrs['val_split'] == 0 and len(r['val/step']) == 0 and b == periodic.max() else 1)" "$work/r/e2e_cifar.h5"
check "the CIFAR-10 run learns (best top-1 > 20 %)" test $? -eq 0

cat > "$work/i.yaml" <<EOF
name: e2e_imagenet
base:
  model: {arch: imagenet_resnet18, conv: cyclebnn}
  precision: {schedule: cyclic, bits: [2, 6], cycles: 2}
  data:
    dataset: imagenet
    path: $work/i
    image_size: 64
    eval_resize: 72
    val_split: 8
    normalize: true
    augment: {random_resized_crop: true, flip: true, lighting: true}
  train: {iterations: 6, batch_size: 8, eval_batch_size: 8, log_interval: 2, eval_interval: 6}
EOF
"$exe" --results "$work/r" "$work/i.yaml" > "$work/i.out" 2> "$work/i.err"; rc=$?
check "the ImageNet run completes (rc $rc)" test $rc -eq 0
check "the ImageNet run saw 16 / 8 images (24 less the 8 held out)" grep -q "(16 train / 8 validation / 8 test images)" "$work/i.err"
"$py" -c "
import sys, h5py
r = h5py.File(sys.argv[1], 'r')['runs/e2e_imagenet']
ok = r.attrs['val_split'] == 8 and list(r['val/step'][:]) == [6] and 0 <= r['val/top1'][0] <= 100
ok = ok and r.attrs['selected_step'] == 6 and r.attrs['val_top1_at_selected'] == r['val/top1'][0]
rows = sorted(zip(r['test/step'][:].tolist(), r['test/role'][:].tolist(), r['test/fixed'][:].tolist()))
sys.exit(0 if ok and rows == [(6, 2, 0), (6, 2, 1)] else 1)" "$work/r/e2e_imagenet.h5"
check "the ImageNet run evaluates on its 8 validation images, then on test at the end" test $? -eq 0

# the background loader gives the same numbers, bit for bit
same_losses() { "$py" -c "
import sys, h5py, numpy as np
a = h5py.File(sys.argv[1], 'r')['runs'][sys.argv[3]]['train/loss'][:]
b = h5py.File(sys.argv[2], 'r')['runs'][sys.argv[3]]['train/loss'][:]
sys.exit(0 if len(a) > 0 and len(a) == len(b) and a.tobytes() == b.tobytes() else 1)" "$@"; }
for what in c i; do
    name=$([ $what = c ] && echo e2e_cifar || echo e2e_imagenet)
    sed 's/^  train: {/  train: {threads: 2, /; s/^    dataset: \(.*\)$/    dataset: \1\n    loader_workers: 2/' "$work/$what.yaml" > "$work/${what}_ld.yaml"
    "$exe" --results "$work/rl" "$work/${what}_ld.yaml" > "$work/${what}_ld.out" 2> "$work/${what}_ld.err"; rc=$?
    check "$name with loader_workers 2 completes (rc $rc)" test $rc -eq 0
    check "$name: loader_workers 2 gives bitwise the same losses as in-step loading" \
        same_losses "$work/r/$name.h5" "$work/rl/$name.h5" "$name"
done

# a missing dataset: the path looked at and the script that fetches it
sed "s|path: $work/c/cifar-10-batches-bin|path: $work/nowhere|" "$work/c.yaml" > "$work/missing.yaml"
"$exe" --results "$work/r2" "$work/missing.yaml" > "$work/m.out" 2>&1; rc=$?
check "a missing CIFAR-10 exits 1" test $rc -eq 1
check "a missing CIFAR-10 names the path" grep -q "$work/nowhere" "$work/m.out"
check "a missing CIFAR-10 names the fetch script" grep -q "fetch_cifar10.sh" "$work/m.out"

finish test_datasets_e2e
