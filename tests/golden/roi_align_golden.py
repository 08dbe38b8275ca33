#!/usr/bin/python3
"""Reference values for tests/test_roi_align.c: torchvision.ops.roi_align
(Debian's python3-torchvision, 0.14) on fixed float64 inputs, its output and,
through autograd, the gradient with respect to the features for a fixed
upstream gradient. torchvision is the independent implementation here: the
reference detector's ROIAlign((7, 7), 1/16, 0) is roi_align(aligned=False,
sampling_ratio=0) (method.md 4.4).

Regenerate (from the repository root, a second or two):

    apt-get install -y python3-torchvision   # pulls python3-torch
    /usr/bin/python3 tests/golden/roi_align_golden.py

which rewrites tests/golden/roi_align_golden.bin. Debian's /usr/bin/python3 is
used on purpose (it has torch, torchvision and numpy). The output is
deterministic (seeded numpy Generator, no timestamps): the same versions give
a byte-identical file; the versions are recorded in its first line.

Inputs (all float64; torchvision computes in the input's dtype):
  feat [2, 2, 9, 11] ~ N(0, 1) (seed 14)
  two RoI lists in image pixels, one per spatial scale (1/16 and 1/4), made
  from the same templates in feature cells (x1, y1, x2, y2) divided by the
  scale, most with a seeded jitter of up to 0.4 cells, every coordinate
  rounded to float32 (the C side takes float RoIs). Templates: inside the
  map, partially outside (each side), fully outside (left/top and
  right/bottom), sub-pixel (smaller than one cell), larger than the map,
  inverted (x2 < x1: w clamped to 1 when not aligned, no samples when
  aligned), samples landing exactly on -1 and on H and W (kept, no jitter),
  just past -1 (dropped), plus random ones; batch indices alternate 0, 1.
  dout [R, C, PH, PW]: dout[i] = ((37 i) mod 101 - 50) / 50 over the flat
  index i, recomputed by the C test (no need to store it).

Cases:
  s16_a0        scale 1/16, 7x7, sampling_ratio 0, aligned False (the reference's)
  s16_a1        scale 1/16, 7x7, sampling_ratio 0, aligned True
  s4_a0         scale 1/4,  7x7, sampling_ratio 0, aligned False
  s4_a1         scale 1/4,  7x7, sampling_ratio 0, aligned True
  s4_a0_sr2     scale 1/4,  3x5, sampling_ratio 2, aligned False

File format (tests/golden/roi_align_golden.bin): ASCII header lines ending in
'\\n', each "tensor" line followed immediately by its little-endian IEEE
float64 payload, C order:
  "CBNN-GOLDEN-V1 float64-le torchvision=<v> torch=<v>"
  "tensor feat 2x2x9x11"
  "tensor rois16 <R>x5"    "tensor rois4 <R>x5"
  "case <name> rois=<rois16|rois4> ph=<PH> pw=<PW> scale_inv=<16|4> sampling=<s> aligned=<0|1>"
  "tensor <name>/out <R>x<C>x<PH>x<PW>"
  "tensor <name>/dfeat 2x2x9x11"
  "end"
"""
import struct
import sys

import numpy as np
import torch
import torchvision
from torchvision.ops import roi_align

OUT = "tests/golden/roi_align_golden.bin"
N, C, H, W = 2, 2, 9, 11

# (x1, y1, x2, y2) in feature cells, jitter flag
TEMPLATES = [
    ((1.3, 2.1, 6.7, 7.4), True),      # inside
    ((0.2, 0.5, 10.1, 8.6), True),     # inside, nearly the whole map
    ((4.0, 3.0, 6.5, 4.2), True),      # inside, small
    ((-2.5, -1.7, 3.2, 4.4), True),    # partially outside, top-left
    ((8.0, 6.5, 13.5, 11.0), True),    # partially outside, bottom-right
    ((-0.6, 3.0, 4.0, 9.8), True),     # partially outside, left and bottom
    ((3.0, -4.0, 9.0, 2.0), True),     # partially outside, top
    ((-9.0, -8.0, -3.0, -4.0), True),  # fully outside, top-left
    ((14.0, 11.5, 20.0, 18.0), True),  # fully outside, bottom-right
    ((3.2, 4.1, 3.5, 4.3), False),     # sub-pixel
    ((7.05, 1.45, 7.3, 1.6), False),   # sub-pixel
    ((-5.0, -4.0, 17.0, 14.0), True),  # larger than the map
    ((6.0, 5.0, 4.5, 2.0), True),      # inverted
    ((-1.5, 2.5, 5.5, 9.5), False),    # not aligned: samples exactly at x = -1 and y = 9 = H
    ((4.5, -1.5, 11.5, 5.5), False),   # not aligned: samples exactly at y = -1 and x = 11 = W
    ((-1.5625, 0.0, 5.4375, 7.0), False),  # first column of samples at x = -1.0625: dropped
]
N_RANDOM = 6


def f32(x):
    return float(np.float32(x))


def make_rois(rng, scale_inv):
    rows = []
    for k, (box, jitter) in enumerate(TEMPLATES):
        cells = np.array(box, dtype=np.float64)
        if jitter:
            cells = cells + rng.uniform(-0.4, 0.4, size=4)
        rows.append([k % 2] + [f32(v * scale_inv) for v in cells])
    for k in range(N_RANDOM):
        a = rng.uniform(-3.0, 14.0, size=2)
        b = a + rng.uniform(0.2, 9.0, size=2)
        cells = [a[0], a[1], b[0], b[1]]
        rows.append([(len(TEMPLATES) + k) % 2] + [f32(v * scale_inv) for v in cells])
    return torch.tensor(rows, dtype=torch.float64)


def dout_pattern(shape):
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.int64)
    return torch.from_numpy((((37 * i) % 101 - 50) / 50.0).reshape(shape))


def tensor_bytes(name, t):
    a = np.ascontiguousarray(t.detach().numpy(), dtype="<f8")
    head = "tensor %s %s\n" % (name, "x".join(str(d) for d in a.shape))
    return head.encode("ascii") + a.tobytes()


def main():
    torch.set_num_threads(1)
    rng = np.random.default_rng(14)
    feat = torch.from_numpy(rng.standard_normal((N, C, H, W)))
    rois = {"rois16": make_rois(rng, 16.0), "rois4": make_rois(rng, 4.0)}
    cases = [
        ("s16_a0", "rois16", 7, 7, 16, 0, False),
        ("s16_a1", "rois16", 7, 7, 16, 0, True),
        ("s4_a0", "rois4", 7, 7, 4, 0, False),
        ("s4_a1", "rois4", 7, 7, 4, 0, True),
        ("s4_a0_sr2", "rois4", 3, 5, 4, 2, False),
    ]
    blob = [("CBNN-GOLDEN-V1 float64-le torchvision=%s torch=%s\n" %
             (torchvision.__version__, torch.__version__)).encode("ascii")]
    blob.append(tensor_bytes("feat", feat))
    for k, v in rois.items():
        blob.append(tensor_bytes(k, v))
    for name, rk, ph, pw, sinv, sr, aligned in cases:
        x = feat.clone().requires_grad_(True)
        out = roi_align(x, rois[rk], output_size=(ph, pw), spatial_scale=1.0 / sinv,
                        sampling_ratio=sr, aligned=aligned)
        (out * dout_pattern(out.shape)).sum().backward()
        blob.append(("case %s rois=%s ph=%d pw=%d scale_inv=%d sampling=%d aligned=%d\n" %
                     (name, rk, ph, pw, sinv, sr, int(aligned))).encode("ascii"))
        blob.append(tensor_bytes(name + "/out", out))
        blob.append(tensor_bytes(name + "/dfeat", x.grad))
        nz = int((out.abs().sum(dim=(1, 2, 3)) == 0).sum())
        print("%-10s out %s, %d RoIs all zero" % (name, tuple(out.shape), nz))
    blob.append(b"end\n")
    data = b"".join(blob)
    with open(OUT, "wb") as f:
        f.write(data)
    print("wrote %s (%d bytes)" % (OUT, len(data)), file=sys.stderr)


if __name__ == "__main__":
    main()
