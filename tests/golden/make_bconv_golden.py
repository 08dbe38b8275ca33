#!/usr/bin/python3
"""Reference values for tests/test_binary_conv.c: the CycleBNN binary
convolution (BinarizeConv2d, method.md 3.1-3.3, E2-E11) re-implemented in
PyTorch from the method document, independently of the C code, with autograd
doing the backward pass the way the authors' code does it: custom
torch.autograd.Function classes for the k-bit quantizers (straight-through),
the weight sign (straight-through), the activation sign (ApproxSign
derivative max(0, 2 - 2|x|) at the quantized input it receives), and an
identity-in-forward hook between the conv and alpha that quantizes the
incoming gradient (8 bits, per-tensor min/max, noise U(-0.5, 0.5) added before
the clamp, round half to even). Everything is float32 on the CPU, one thread.

Regenerate (from the repository root, a few seconds):

    /usr/bin/python3 tests/golden/make_bconv_golden.py

which rewrites tests/golden/bconv_golden.bin. Debian's /usr/bin/python3 is
used on purpose: it has torch (python3-torch) and numpy; the python3 first on
PATH may not. The output is deterministic (seeded torch.Generator, no
timestamps): the same torch gives a byte-identical file. Produced with the
torch version recorded in the file's first line (1.13.0a0 when committed).

Cases (N=2, C=3, H=W=6, O=4, K=3, pad 1, grad bits 8):
  k{2,3,4,5,6,32}_s{1,2}_gq0   training step, error quantization off
  k{2,3,4,5,6,32}_s{1,2}_gq1   training step, error quantization on, stochastic
                               rounding with the saved noise draws
  k4_s1_gqdet                  error quantization on, deterministic rounding
  k3_s1_eval                   eval-mode forward (no E3, activation range from
                               the given running zp/R, no running update)
Inputs are shared by the cases of one group k{k}_s{s}: x ~ 0.3 + 0.8 N(0,1)
(an asymmetric range, so the sign threshold theta_k is not 0), W ~ 0.01 +
0.05 N(0,1), alpha ~ U[0,1), running (zp, R) = (-0.4, 1.7) before the step,
dout ~ N(0,1), noise = U[0,1) - 0.5 (exact in float32).

Ties. The forward pass of the C engine computes the same float32 operations
as this script, but its variances are summed in another order, so a
standardised weight or normalised activation may differ by an ulp. At a
quantization boundary (y = (x - zp)/s a half-integer) an ulp can move an
element to the neighbouring grid point, which changes the ApproxSign factor
and possibly a sign. Rather than loosen the test, the inputs of each group are
redrawn (next seed) until every interior y is at least MARGIN away from a
half-integer (k <= 6), or every standardised value is at least MARGIN_ZERO
away from 0 (k = 32, where the grid is finer than float32 near the range
ends and only the sign can matter). The seeds used are printed.

File format (tests/golden/bconv_golden.bin). A sequence of lines and binary
payloads; every header line is ASCII and ends with '\\n':
  line 1:  "CBNN-GOLDEN-V1 float32-le torch=<version>"
  "case <name> inputs=<group> bits=<k> grad_bits=<g> stride=<s> pad=<p> grad_quant=<0|1> noise=<0|1> train=<0|1>"
           describes one case (no payload)
  "tensor <name> <d0>x<d1>x...": followed immediately by prod(d) little-endian
           IEEE float32 values, C order
  "end"    last line
Tensor names: "<group>/x" [N,C,H,W], "<group>/w" [O,C,K,K], "<group>/alpha" [O],
"<group>/running" [2] (zp, R before the step), "<group>/dout" [N,O,OH,OW],
"<group>/noise" [N,O,OH,OW]; a case may override the group's running values
with "<case>/running_in" (the eval case does); results "<case>/out", "<case>/dx", "<case>/dw",
"<case>/dalpha" (training cases only) and "<case>/running" (zp, R after).
"""

import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)

N, C, H, W, O, K, PAD = 2, 3, 6, 6, 4, 3, 1
GRAD_BITS = 8.0
MOMENTUM = 0.9
MARGIN = 1e-3        # in grid steps, for k <= 6
MARGIN_ZERO = 1e-3   # absolute, for k = 32
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bconv_golden.bin")


def qmax_of(k):
    return 2.0 ** k - 1.0          # a Python float, as CPT's 2.**num_bits - 1.


def grid_scale(rng, k):
    # s = max(R / (2^k - 1), 1e-8)
    return torch.max(rng / qmax_of(k), torch.tensor(1e-8, dtype=torch.float32))


def fake_quant(x, zp, rng, k, noise=None):
    """E4: (x - zp)/s [+ noise], clamp to [0, 2^k-1], round half to even, dequantize."""
    s = grid_scale(rng, k)
    y = (x - zp) / s
    if noise is not None:
        y = y + noise
    y = torch.clamp(y, 0.0, qmax_of(k))
    y = torch.round(y)              # torch.round: half to even
    return y * s + zp


class QuantSTE(torch.autograd.Function):
    """k-bit min-max fake quantization; gradient straight through, no mask."""

    @staticmethod
    def forward(ctx, x, zp, rng, k):
        return fake_quant(x, zp, rng, k)

    @staticmethod
    def backward(ctx, g):
        return g, None, None, None


class SignSTE(torch.autograd.Function):
    """weights: torch.sign forward, identity backward"""

    @staticmethod
    def forward(ctx, x):
        return torch.sign(x)

    @staticmethod
    def backward(ctx, g):
        return g


class SignApprox(torch.autograd.Function):
    """activations: torch.sign forward, ApproxSign derivative at the input it
    receives (the quantized activation)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sign(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.clamp(2 - 2 * torch.abs(x), min=0)


class ErrorQuant(torch.autograd.Function):
    """identity forward; backward quantizes the incoming gradient (E8):
    per-tensor zp = min, R = max - min, noise before the clamp"""

    @staticmethod
    def forward(ctx, y, bits, noise):
        ctx.bits = bits
        ctx.noise = noise
        return y.clone()

    @staticmethod
    def backward(ctx, g):
        zp = g.min()
        rng = g.max() - zp
        return fake_quant(g, zp, rng, ctx.bits, ctx.noise), None, None


def standardize_weight(w):
    # E2: W / (sqrt(var_unbiased + 1e-5) / 2 / sqrt(2)), per output channel
    return w / (torch.sqrt(w.var(dim=(1, 2, 3), keepdim=True) + 1e-5) / 2 / math.sqrt(2))


def normalize_act(a):
    # E3: A / sqrt(var_unbiased + 1e-5), per sample, training only
    return a / torch.sqrt(a.var(dim=(1, 2, 3), keepdim=True) + 1e-5)


def weight_qparams(w1):
    zp = w1.amin(dim=(1, 2, 3), keepdim=True)
    return zp, w1.amax(dim=(1, 2, 3), keepdim=True) - zp


def binarize_conv(x, w, alpha, k, stride, train, running, grad_quant, noise):
    """returns out and the running (zp, R) after the call"""
    w1 = standardize_weight(w)
    a0 = normalize_act(x) if train else x
    running = running.clone()
    if k != 0:
        with torch.no_grad():
            zpw, rw = weight_qparams(w1)
            if train:
                zpa = a0.min()
                ra = a0.max() - zpa
                running[0] = running[0] * MOMENTUM + zpa * (1 - MOMENTUM)
                running[1] = running[1] * MOMENTUM + ra * (1 - MOMENTUM)
            else:
                zpa, ra = running[0], running[1]
        wq = QuantSTE.apply(w1, zpw, rw, k)
        aq = QuantSTE.apply(a0, zpa, ra, k)
    else:
        wq, aq = w1, a0
    bw = SignSTE.apply(wq)
    ba = SignApprox.apply(aq)
    y = F.conv2d(ba, bw, bias=None, stride=stride, padding=PAD)
    if grad_quant:
        y = ErrorQuant.apply(y, GRAD_BITS, noise)
    return y * alpha.view(1, -1, 1, 1), running


def half_margin(v, zp, rng, k):
    """smallest distance (in grid steps) of an interior y = (v - zp)/s to a half-integer"""
    s = grid_scale(rng, k)
    y = torch.clamp((v - zp) / s, 0.0, qmax_of(k))
    frac = y - torch.floor(y)
    return float(torch.abs(frac - 0.5).min())


def margins_ok(x, w, k, running, train=True):
    with torch.no_grad():
        w1 = standardize_weight(w)
        a0 = normalize_act(x) if train else x
        if k >= 24:
            return float(w1.abs().min()) >= MARGIN_ZERO and float(a0.abs().min()) >= MARGIN_ZERO
        zpw, rw = weight_qparams(w1)
        if train:
            zpa, ra = a0.min(), a0.max() - a0.min()
        else:
            zpa, ra = running[0], running[1]
        return half_margin(w1, zpw, rw, k) >= MARGIN and half_margin(a0, zpa, ra, k) >= MARGIN


def out_hw(stride):
    return (H + 2 * PAD - K) // stride + 1


class Writer:
    def __init__(self):
        self.parts = [("CBNN-GOLDEN-V1 float32-le torch=%s\n" % torch.__version__).encode()]

    def case(self, name, group, k, stride, grad_quant, noise, train):
        self.parts.append(("case %s inputs=%s bits=%g grad_bits=%g stride=%d pad=%d grad_quant=%d noise=%d train=%d\n"
                           % (name, group, k, GRAD_BITS, stride, PAD, grad_quant, noise, train)).encode())

    def tensor(self, name, t):
        a = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4"))
        self.parts.append(("tensor %s %s\n" % (name, "x".join(str(s) for s in a.shape))).encode())
        self.parts.append(a.tobytes())

    def finish(self):
        self.parts.append(b"end\n")
        return b"".join(self.parts)


def run_case(wr, name, group, inp, k, stride, train, grad_quant, use_noise):
    x = inp["x"].clone().requires_grad_(train)
    w = inp["w"].clone().requires_grad_(train)
    alpha = inp["alpha"].clone().requires_grad_(train)
    noise = inp["noise"] if (grad_quant and use_noise) else None
    wr.case(name, group, k, stride, int(grad_quant), int(noise is not None), int(train))
    if train:
        out, running = binarize_conv(x, w, alpha, k, stride, True, inp["running"], grad_quant, noise)
        out.backward(inp["dout"])
        wr.tensor(name + "/out", out)
        wr.tensor(name + "/dx", x.grad)
        wr.tensor(name + "/dw", w.grad)
        wr.tensor(name + "/dalpha", alpha.grad)
        wr.tensor(name + "/running", running)
        return out, x.grad
    with torch.no_grad():
        out, running = binarize_conv(x, w, alpha, k, stride, False, inp["running"], False, None)
    wr.tensor(name + "/out", out)
    wr.tensor(name + "/running", running)
    return out, None


def main():
    wr = Writer()
    seeds = []
    group_index = 0
    for k in (2.0, 3.0, 4.0, 5.0, 6.0, 32.0):
        for stride in (1, 2):
            group = "k%d_s%d" % (k, stride)
            oh = out_hw(stride)
            running = torch.tensor([-0.4, 1.7], dtype=torch.float32)
            for attempt in range(1000):
                seed = 1000 * group_index + attempt
                gen = torch.Generator().manual_seed(seed)
                x = 0.3 + 0.8 * torch.randn(N, C, H, W, generator=gen)
                w = 0.01 + 0.05 * torch.randn(O, C, K, K, generator=gen)
                ok = margins_ok(x, w, k, running)
                if group == "k3_s1":   # also serves the eval case
                    ok = ok and margins_ok(x, w, k, torch.tensor([-1.5, 3.5]), train=False)
                if ok:
                    break
            else:
                sys.exit("no input set without near-ties for " + group)
            inp = {
                "x": x, "w": w,
                "alpha": torch.rand(O, generator=gen),
                "running": running,
                "dout": torch.randn(N, O, oh, oh, generator=gen),
                "noise": torch.rand(N, O, oh, oh, generator=gen) - 0.5,
            }
            seeds.append((group, seed))
            group_index += 1
            for name in ("x", "w", "alpha", "running", "dout", "noise"):
                wr.tensor(group + "/" + name, inp[name])
            run_case(wr, group + "_gq0", group, inp, k, stride, True, False, False)
            run_case(wr, group + "_gq1", group, inp, k, stride, True, True, True)
            if group == "k4_s1":
                run_case(wr, group + "_gqdet", group, inp, k, stride, True, True, False)
            if group == "k3_s1":
                ev = dict(inp)
                ev["running"] = torch.tensor([-1.5, 3.5], dtype=torch.float32)
                wr.tensor("k3_s1_eval/running_in", ev["running"])
                run_case(wr, "k3_s1_eval", group, ev, k, stride, False, False, False)
    data = wr.finish()
    with open(OUT, "wb") as f:
        f.write(data)
    print("wrote %s (%d bytes), torch %s; seeds: %s"
          % (OUT, len(data), torch.__version__, ", ".join("%s=%d" % s for s in seeds)))


if __name__ == "__main__":
    main()
