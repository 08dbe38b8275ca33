#!/usr/bin/python3
"""PyTorch CPU training-step benchmark: the "peer" of the C engine.

Trains the CIFAR-10 ResNet-18 of method.md 4.1 (--arch cifar_resnet18, the
default) or the ImageNet ResNet-18 of method.md 4.2 (--arch imagenet_resnet18,
224 px, 1000 classes) on random in-memory data (inputs U[0,1) [N,3,S,S] as
ToTensor gives, labels below the class count, drawn once from a seeded
generator before timing; data loading is deliberately not measured) and times
the training step:

  --mode fakequant  the authors' semantics, all emulated in fp32 the way their
                    PyTorch code does it (method.md 3): every block conv is a
                    BinarizeConv2d - weight standardisation (E2), per-sample
                    activation normalisation in training (E3), k-bit min/max
                    fake quantizers with straight-through gradients (E4, E5;
                    activation running zp/R with momentum 0.9), sign with
                    sign(0) = 0 (E6; weights: identity STE, activations:
                    ApproxSign derivative at the quantized value), conv with
                    zero padding, the 8-bit per-tensor min/max stochastic
                    error quantizer between the conv and alpha (E8), alpha
                    scale (E7). k = 4 for weights/activations (a representative
                    point of the 2-6 cycle; k does not change the cost of fake
                    quantization), 8-bit errors.
  --mode fp32       the same network with plain nn.Conv2d (bias=False) in place
                    of every binary conv: ordinary full-precision training.

CIFAR, both modes: fp32 stem conv3x3 -> BN (no activation), BasicBlocks with
BN, Hardtanh and the option-A shortcut (AvgPool2d(2) + zero channel padding,
planes//4 on each side), avg_pool2d(4), BatchNorm1d(512), Linear(512 -> 10).
ImageNet (core/models/imagenet_resnet.c): fp32 stem conv7x7 s2 -> BN ->
Hardtanh -> MaxPool(3, s2, p1); stages of [64, 128, 256, 512] x 2 blocks with
the Bi-Real shortcut around each conv (out = HT(BN1(conv1(x)) + res),
out2 = HT(BN2(conv2(out)) + out); res = fp32 conv1x1 s2 -> BN where the shape
changes); global average pool, BatchNorm1d(512), Linear(512 -> 1000); every
BatchNorm2d gamma = 1e-8. Both nets: mean cross-entropy, AdamW as in the recipe of method.md 5.1/5.2 (lr 1e-3, betas
(0.9, 0.999), eps 1e-8, weight_decay 1e-5 decoupled, on every parameter) with
CosineAnnealingLR stepped once per iteration. model.train() throughout.

The layer primitives (quantizers, sign functions, standardisation) are
imported from tests/golden/make_bconv_golden.py, the independent PyTorch
reimplementation of the binary conv used to make the C engine's golden test
data. Only the error quantizer is local: the golden replays saved noise draws,
here the noise is drawn in the backward as CPT's UniformQuantizeGrad does.

Use Debian's /usr/bin/python3 (python3-torch 1.13, numpy):

    nice /usr/bin/python3 bench/peer/torch_step.py --mode fakequant --batch 16
    nice /usr/bin/python3 bench/peer/torch_step.py --mode fp32 --batch 64 --json
    nice /usr/bin/python3 bench/peer/torch_step.py --mode fakequant --check-learns
    nice /usr/bin/python3 bench/peer/torch_step.py --arch imagenet_resnet18 --mode fp32 --batch 16 --json
"""

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "golden"))
sys.dont_write_bytecode = True  # no __pycache__ in tests/golden
import make_bconv_golden as G  # noqa: E402  (its import sets 1 thread; main() sets ours afterwards)

# Parameter counts of the C engine's nets (model_summary() of core/model.c,
# "parameters:" line, for model.conv = cyclebnn and fp32; the difference, 3840,
# is the alphas of the 16 binary convs: 2*(64+128+256+512)*2), by (arch,
# classes, mode). CIFAR: from model_build("cifar_resnet18", ...) and
# model_summary(); ImageNet at 1000 classes: the "params_model" field of
# `build/bench/train_step --arch imagenet_resnet18 --size 224 [--mode fp32]
# --json`, the same sum (Model.n_params itself is larger: it includes alignment
# padding of the parameter arena). Other class counts are printed, not checked.
EXPECTED_PARAMS = {
    ("cifar_resnet18", 10, "fakequant"): 11005002, ("cifar_resnet18", 10, "fp32"): 11001162,
    ("imagenet_resnet18", 1000, "fakequant"): 11694376, ("imagenet_resnet18", 1000, "fp32"): 11690536,
}

BITS = 4.0        # weight/activation bits (float, as CPT's args.num_bits)
GRAD_BITS = 8.0   # error bits
MOMENTUM = 0.9    # QuantMeasure momentum


class StochErrorQuant(torch.autograd.Function):
    """Identity forward; in the backward the incoming gradient (= dout * alpha)
    is fake-quantized to `bits` with per-tensor zp = min, R = max - min and
    stochastic rounding: noise U(-0.5, 0.5) added before the clamp, then round
    half to even (method.md 3.3, E8). Like CPT's UniformQuantizeGrad, the
    forward returns its input unchanged."""

    @staticmethod
    def forward(ctx, y, bits):
        ctx.bits = bits
        return y

    @staticmethod
    def backward(ctx, g):
        zp = g.min()
        rng = g.max() - zp
        noise = torch.empty_like(g).uniform_(-0.5, 0.5)
        return G.fake_quant(g, zp, rng, ctx.bits, noise), None


class BinarizeConv2d(nn.Conv2d):
    """method.md 3.1/3.2 in training mode (eval mode: no E3, running zp/R)."""

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0, inert_clamp=False):
        super().__init__(in_ch, out_ch, kernel_size, stride=stride, padding=padding, bias=False)
        self.alpha = nn.Parameter(torch.rand(out_ch, 1, 1))          # U[0,1)
        self.register_buffer("tau", torch.tensor(1.0))
        self.register_buffer("running_zero_point", torch.zeros(1, 1, 1, 1))
        self.register_buffer("running_range", torch.zeros(1, 1, 1, 1))
        self.num_bits = BITS
        self.num_grad_bits = GRAD_BITS
        self.inert_clamp = inert_clamp

    def forward(self, a):
        w1 = G.standardize_weight(self.weight)                           # E2
        if self.inert_clamp:
            # ReCU's clamp as it runs in the authors' code (tau = 1): Q = +inf,
            # so it is the identity; only its cost is modelled (method.md 3.4)
            q = (-w1.detach().abs().mean() * torch.log(2 - 2 * self.tau)).item()
            w1 = torch.clamp(w1, -q, q)
        a0 = G.normalize_act(a) if self.training else a                 # E3
        k = self.num_bits
        with torch.no_grad():
            zpw, rw = G.weight_qparams(w1)                              # per output channel
            if self.training:
                zpa = a0.min()
                ra = a0.max() - zpa
                self.running_zero_point.mul_(MOMENTUM).add_(zpa * (1 - MOMENTUM))
                self.running_range.mul_(MOMENTUM).add_(ra * (1 - MOMENTUM))
            else:
                zpa, ra = self.running_zero_point, self.running_range
        wq = G.QuantSTE.apply(w1, zpw, rw, k)                           # E4/E5
        aq = G.QuantSTE.apply(a0, zpa, ra, k)
        bw = G.SignSTE.apply(wq)                                        # E6
        ba = G.SignApprox.apply(aq)
        y = F.conv2d(ba, bw, None, self.stride, self.padding, self.dilation, self.groups)
        y = StochErrorQuant.apply(y, self.num_grad_bits)                # E8 hook
        return y * self.alpha                                           # E7


class ShortcutA(nn.Module):
    """AvgPool2d(2) then zero-pad the channel dim by planes//4 on each side."""

    def __init__(self, planes):
        super().__init__()
        self.pad = planes // 4

    def forward(self, x):
        return F.pad(F.avg_pool2d(x, 2), (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride, make_conv):
        super().__init__()
        self.conv1 = make_conv(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = make_conv(planes, planes, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.ht = nn.Hardtanh()
        if stride != 1 or in_planes != planes:
            self.shortcut = ShortcutA(planes)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = self.ht(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return self.ht(out)


class CifarResNet18(nn.Module):
    """method.md 4.1 (ReCU resnet2.py resnet18_1w1a)."""

    def __init__(self, mode, num_classes=10, inert_clamp=False):
        super().__init__()
        if mode == "fakequant":
            def make_conv(i, o, s):
                return BinarizeConv2d(i, o, 3, stride=s, padding=1, inert_clamp=inert_clamp)
        else:
            def make_conv(i, o, s):
                return nn.Conv2d(i, o, 3, stride=s, padding=1, bias=False)
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        layers, in_planes = [], 64
        for planes, stride in zip((64, 128, 256, 512), (1, 2, 2, 2)):
            for s in (stride, 1):
                layers.append(BasicBlock(in_planes, planes, s, make_conv))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.bn_head = nn.BatchNorm1d(512)
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):          # BinarizeConv2d included
                nn.init.kaiming_normal_(m.weight)  # fan_in, gain sqrt(2)
        # BN: gamma 1, beta 0 (default); Linear: default init; alpha ~ U[0,1)

    def forward(self, x):
        out = self.bn1(self.conv1(x))              # no activation after the stem BN
        out = self.layers(out)
        out = F.avg_pool2d(out, out.size(3))
        out = out.view(out.size(0), -1)
        return self.fc(self.bn_head(out))


class BiRealBlock(nn.Module):
    """The ImageNet ResNet-18 block of method.md 4.2: a shortcut around each conv."""

    def __init__(self, in_planes, planes, stride, make_conv):
        super().__init__()
        self.conv1 = make_conv(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = make_conv(planes, planes, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.ht = nn.Hardtanh()
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        res = x if self.downsample is None else self.downsample(x)
        out = self.ht(self.bn1(self.conv1(x)) + res)
        return self.ht(self.bn2(self.conv2(out)) + out)


class ImagenetResNet18(nn.Module):
    """method.md 4.2 (ReCU ImageNet resnet18_1w1a; the engine's core/models/imagenet_resnet.c)."""

    def __init__(self, mode, num_classes=1000, inert_clamp=False):
        super().__init__()
        if mode == "fakequant":
            def make_conv(i, o, s):
                return BinarizeConv2d(i, o, 3, stride=s, padding=1, inert_clamp=inert_clamp)
        else:
            def make_conv(i, o, s):
                return nn.Conv2d(i, o, 3, stride=s, padding=1, bias=False)
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.ht = nn.Hardtanh()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        layers, in_planes = [], 64
        for planes, stride in zip((64, 128, 256, 512), (1, 2, 2, 2)):
            for s in (stride, 1):
                layers.append(BiRealBlock(in_planes, planes, s, make_conv))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.bn_head = nn.BatchNorm1d(512)
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):          # BinarizeConv2d and the downsample convs included
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):   # every BatchNorm2d, stem and downsample included
                nn.init.constant_(m.weight, 1e-8)
        # BatchNorm1d and Linear: defaults; alpha ~ U[0,1)

    def forward(self, x):
        out = self.maxpool(self.ht(self.bn1(self.conv1(x))))
        out = self.layers(out)
        out = F.avg_pool2d(out, out.size(3))     # AvgPool2d(7) at 224 px: the global average
        out = out.view(out.size(0), -1)
        return self.fc(self.bn_head(out))


def blas_libraries():
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1]
                b = os.path.basename(p)
                if any(s in b for s in ("blas", "lapack", "mkl", "dnnl", "gomp", "omp")) and ".so" in b:
                    libs.add(os.path.realpath(p))
    except OSError:
        pass
    return sorted(libs)


def build(args):
    torch.manual_seed(args.seed)
    net = ImagenetResNet18 if args.arch == "imagenet_resnet18" else CifarResNet18
    model = net(args.mode, num_classes=args.classes, inert_clamp=args.inert_clamp)
    model.train()
    # Recipe of method.md 5.1/5.2 (README CIFAR command = the ImageNet flags):
    # AdamW (torch.optim.AdamW), lr 1e-3, betas (0.9, 0.999), eps 1e-8,
    # weight_decay 1e-5 (decoupled), on all parameters incl. BN, alpha, biases;
    # CosineAnnealingLR(T_max = iterations, eta_min 0) stepped once per iteration.
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=187500, eta_min=0)
    return model, opt, sched


def make_data(batch, n_batches, seed, size=32, classes=10):
    gen = torch.Generator().manual_seed(seed + 12345)
    xs = [torch.rand(batch, 3, size, size, generator=gen) for _ in range(n_batches)]
    ys = [torch.randint(0, classes, (batch,), generator=gen) for _ in range(n_batches)]
    return xs, ys


def step(model, opt, sched, crit, x, y):
    """One training step; returns (loss, t_forward, t_backward, t_optimizer)."""
    t0 = time.perf_counter()
    loss = crit(model(x), y)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    opt.step()
    opt.zero_grad()
    sched.step()
    t3 = time.perf_counter()
    return loss.item(), t1 - t0, t2 - t1, t3 - t2


def check_learns(args, model, opt, sched, crit):
    x, y = make_data(args.batch, 1, args.seed, args.size, args.classes)
    x, y = x[0], y[0]
    losses = []
    for i in range(args.check_steps):
        loss, _, _, _ = step(model, opt, sched, crit, x, y)
        losses.append(loss)
        print("step %3d  loss %.4f" % (i, loss))
    first = statistics.mean(losses[:3])
    last = statistics.mean(losses[-5:])
    ok = last < 0.5 * first
    print("check-learns %s: mode %s batch %d, mean loss of steps 0-2 %.4f, of the last 5 %.4f (ratio %.3f)"
          % ("PASS" if ok else "FAIL", args.mode, args.batch, first, last, last / first))
    if args.json:
        print(json.dumps({"mode": args.mode, "batch": args.batch, "check_learns": ok, "losses": losses}))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", choices=("cifar_resnet18", "imagenet_resnet18"), default="cifar_resnet18")
    ap.add_argument("--size", type=int, default=0, help="input side in pixels (default: 32 CIFAR, 224 ImageNet)")
    ap.add_argument("--classes", type=int, default=0, help="default: 10 CIFAR, 1000 ImageNet")
    ap.add_argument("--mode", choices=("fakequant", "fp32"), default="fakequant")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0, help="steps per repetition (default: ~3 s worth)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    ap.add_argument("--inert-clamp", action="store_true",
                    help="fakequant: also run ReCU's inert clamp (Q = +inf) as the authors' code does (cost only)")
    ap.add_argument("--check-learns", action="store_true",
                    help="instead of timing, train --check-steps steps on one fixed batch and check the loss falls")
    ap.add_argument("--check-steps", type=int, default=30)
    args = ap.parse_args()
    inet = args.arch == "imagenet_resnet18"
    args.size = args.size or (224 if inet else 32)
    args.classes = args.classes or (1000 if inet else 10)
    if args.size < (64 if inet else 8):
        ap.error("--size %d is too small for %s" % (args.size, args.arch))

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    # the high-water mark before the model exists (the libraries), as the engine's train_step reports it
    base_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    model, opt, sched = build(args)
    n_params = sum(p.numel() for p in model.parameters())
    n_buffers = sum(b.numel() for b in model.buffers())
    expected = EXPECTED_PARAMS.get((args.arch, args.classes, args.mode))
    print("torch %s, threads %d (interop %d), mkldnn available %s (enabled %s), %s %dx%d, %d classes, mode %s, batch %d"
          % (torch.__version__, torch.get_num_threads(), torch.get_num_interop_threads(),
             torch.backends.mkldnn.is_available(), torch.backends.mkldnn.enabled, args.arch, args.size, args.size,
             args.classes, args.mode, args.batch))
    if expected is None:
        print("parameters: %d (no C engine count recorded for %d classes); buffers %d" % (n_params, args.classes, n_buffers))
    else:
        print("parameters: %d (C engine: %d) %s; buffers %d"
              % (n_params, expected, "OK" if n_params == expected else "MISMATCH", n_buffers))
        assert n_params == expected, "parameter count differs from the C engine's"
    crit = nn.CrossEntropyLoss()

    if args.check_learns:
        return check_learns(args, model, opt, sched, crit)

    xs, ys = make_data(args.batch, 4, args.seed, args.size, args.classes)
    nb = len(xs)
    setup_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # torch + model + data (AdamW state comes lazily)
    it = 0
    warm_times = []
    for _ in range(max(args.warmup, 1)):
        t0 = time.perf_counter()
        step(model, opt, sched, crit, xs[it % nb], ys[it % nb])
        warm_times.append(time.perf_counter() - t0)
        it += 1
    steps = args.steps or max(1, int(math.ceil(3.0 / statistics.median(warm_times))))

    rates, tf, tb, to, tstep = [], [], [], [], []
    for r in range(args.reps):
        t0 = time.perf_counter()
        for _ in range(steps):
            s0 = time.perf_counter()
            _, f, b, o = step(model, opt, sched, crit, xs[it % nb], ys[it % nb])
            tstep.append(time.perf_counter() - s0)
            tf.append(f)
            tb.append(b)
            to.append(o)
            it += 1
        dt = time.perf_counter() - t0
        rates.append(steps * args.batch / dt)
        print("rep %d: %d steps in %.3f s = %.2f img/s" % (r, steps, dt, rates[-1]))

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    med = statistics.median(rates)
    ms = {k: 1e3 * statistics.median(v) for k, v in (("forward", tf), ("backward", tb), ("optimizer", to),
                                                       ("step", tstep))}
    print("median %.2f img/s over %d reps of %d steps (warm-up %d, median warm-up step %.1f ms)"
          % (med, args.reps, steps, len(warm_times), 1e3 * statistics.median(warm_times)))
    print("phase medians per step: forward+loss %.1f ms, backward %.1f ms, optimizer %.1f ms (step %.1f ms)"
          % (ms["forward"], ms["backward"], ms["optimizer"], ms["step"]))
    print("peak RSS %.1f MiB (%.1f MiB before the first step: torch, model, data; AdamW state is allocated in the first step)" % (peak_mib, setup_mib))
    libs = blas_libraries()
    print("native libraries: %s" % (", ".join(libs) or "?"))
    if args.json:
        print(json.dumps({
            "engine": "pytorch", "arch": args.arch, "size": args.size, "classes": args.classes,
            "mode": args.mode, "batch": args.batch, "threads": args.threads,
            "torch": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available(),
            "mkldnn_enabled": torch.backends.mkldnn.enabled, "inert_clamp": args.inert_clamp,
            "bits": BITS if args.mode == "fakequant" else 32, "grad_bits": GRAD_BITS if args.mode == "fakequant" else 32,
            "params": n_params, "steps": steps, "reps": args.reps, "warmup": len(warm_times),
            "img_per_s": rates, "img_per_s_median": med, "img_per_s_min": min(rates), "img_per_s_max": max(rates),
            "forward_ms": ms["forward"], "backward_ms": ms["backward"], "optimizer_ms": ms["optimizer"],
            "step_ms": ms["step"], "peak_rss_mib": peak_mib, "setup_rss_mib": base_mib, "model_data_rss_mib": setup_mib, "libraries": libs,
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
