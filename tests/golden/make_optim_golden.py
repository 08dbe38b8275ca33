#!/usr/bin/python3
"""Reference numbers for tests/test_optim.c, produced by PyTorch itself.

Regenerate (from the repository root; takes about two minutes, most of it
stepping three CosineAnnealingLR schedulers 9,000,000 times):

    /usr/bin/python3 tests/golden/make_optim_golden.py > tests/golden/optim_golden.h

Debian's /usr/bin/python3 is used on purpose: it has torch (python3-torch) and
numpy; the python3 first on PATH may not. The output is deterministic (no
timestamps), so regenerating with the same torch gives a byte-identical file.

What is computed, all in float64 on the CPU:
  * torch.optim.AdamW and torch.optim.SGD (single-tensor path, foreach=False)
    on a 7-element parameter with fixed initial values and a fixed sequence of
    OG_STEPS gradients, the learning rate possibly changing every step (set in
    param_groups before step(), as a scheduler does). The parameter after
    every step and the optimizer state after the last step are recorded.
  * torch.optim.lr_scheduler.CosineAnnealingLR driven the way the CycleBNN
    reference training loop drives it (method.md 2.3, 5.1): T_max =
    (I - 4W) / num_cyclic_annealing (Python true division), no step() during
    the first 4W iterations, then step() once per iteration BEFORE the
    forward, so the lr read at iteration i is the one that iteration trains
    with. torch's step() uses its recursive formula; the closed form
    (_get_closed_form_lr) at the same last_epoch is recorded alongside.
  * torch.optim.lr_scheduler.StepLR stepped after each iteration (the lr read
    at iteration i is base_lr * gamma ** (i // step_size)), the convention of
    core/lr_schedule.h.
"""

import math
import platform
import sys
import warnings

import numpy as np
import torch

# step() before optimizer.step() is exactly what the reference loop does with
# an optimizer that never steps here; torch warns about it, which is noise.
warnings.simplefilter("ignore")

N = 7
STEPS = 10

INIT = [0.5, -1.25, 3.0, 1e-3, -0.02, 0.0, 7.5]
# Per-element gradient scales: ordinary, small, large, tiny (eps-dominated in
# AdamW), and an element whose gradient is zero on some steps.
SCALES = [1.0, 1e-3, 10.0, 1e-9, 0.5, 2.0, 100.0]


def gradient(step, j):
    g = SCALES[j] * math.sin(1.3 * step + 0.7 * j + 0.1)
    if j == 4 and step % 3 == 1:
        g = 0.0
    return g


GRADS = [[gradient(s, j) for j in range(N)] for s in range(STEPS)]


def lr_const(v):
    return [v] * STEPS


def lr_varying(v):
    # a decaying, non-monotone sequence: exercises lr entering every step
    return [v * (0.5 + 0.5 * math.cos(0.4 * s)) + v * 0.05 for s in range(STEPS)]


ADAMW_CASES = [
    # name, lr per step, betas, eps, weight_decay
    ("paper (lr 1e-3, wd 1e-5)", lr_const(1e-3), (0.9, 0.999), 1e-8, 1e-5),
    ("large wd, other betas", lr_const(0.05), (0.8, 0.95), 1e-6, 0.1),
    ("varying lr, no wd", lr_varying(0.01), (0.9, 0.999), 1e-8, 0.0),
    ("varying lr, wd 1e-2, big eps", lr_varying(0.1), (0.5, 0.9), 1e-3, 1e-2),
]

SGD_CASES = [
    # name, lr per step, momentum, dampening, weight_decay, nesterov
    ("plain", lr_const(0.1), 0.0, 0.0, 0.0, False),
    ("weight decay, no momentum", lr_const(0.1), 0.0, 0.0, 1e-2, False),
    ("momentum 0.9, wd 5e-4", lr_const(0.05), 0.9, 0.0, 5e-4, False),
    ("nesterov 0.9, wd 1e-4", lr_varying(0.05), 0.9, 0.0, 1e-4, True),
    ("momentum 0.8, dampening 0.3, wd 1e-3", lr_varying(0.02), 0.8, 0.3, 1e-3, False),
    ("nesterov 0.5, no wd", lr_const(0.2), 0.5, 0.0, 0.0, True),
]


def run_adamw(lrs, betas, eps, wd):
    p = torch.tensor(INIT, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.AdamW([p], lr=lrs[0], betas=betas, eps=eps, weight_decay=wd,
                            amsgrad=False, maximize=False, foreach=False)
    traj = []
    for s in range(STEPS):
        p.grad = torch.tensor(GRADS[s], dtype=torch.float64)
        opt.param_groups[0]["lr"] = lrs[s]
        opt.step()
        traj.append(p.detach().tolist())
    st = opt.state[p]
    assert int(st["step"].item()) == STEPS
    return traj, st["exp_avg"].tolist(), st["exp_avg_sq"].tolist()


def run_sgd(lrs, momentum, dampening, wd, nesterov):
    p = torch.tensor(INIT, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lrs[0], momentum=momentum, dampening=dampening,
                          weight_decay=wd, nesterov=nesterov, maximize=False, foreach=False)
    traj = []
    for s in range(STEPS):
        p.grad = torch.tensor(GRADS[s], dtype=torch.float64)
        opt.param_groups[0]["lr"] = lrs[s]
        opt.step()
        traj.append(p.detach().tolist())
    buf = opt.state[p].get("momentum_buffer") if momentum != 0 else None
    return traj, (buf.tolist() if buf is not None else [0.0] * N)


def _dummy_optimizer(lr0):
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    return torch.optim.SGD([p], lr=lr0)


# Cosine settings. "iters: None" records every iteration; otherwise the listed
# ones (a 9M-iteration run is still stepped in full, only sampled on output).
I_IMNET = 9_000_000
I_CIFAR = 187_500
COSINE_CASES = [
    dict(name="ImageNet README: lr 1e-3, I 9e6, W 0, nca 1", lr0=1e-3, eta_min=0.0,
         I=I_IMNET, W=0, nca=1.0,
         iters=[0, 1, 2, 3, 1000, 2_249_999, 4_499_999, 4_500_000, 4_500_001, 6_749_999,
                8_999_997, 8_999_998, 8_999_999]),
    dict(name="nca 2 (lr rises again): lr 1e-3, I 9e6, W 0", lr0=1e-3, eta_min=0.0,
         I=I_IMNET, W=0, nca=2.0,
         iters=[0, 1, 2_249_999, 4_499_997, 4_499_998, 4_499_999, 4_500_000, 4_500_001,
                4_500_002, 6_749_999, 8_999_998, 8_999_999]),
    dict(name="I 9e6, W 1000 (4000 held), eta_min 1e-6, nca 1", lr0=1e-3, eta_min=1e-6,
         I=I_IMNET, W=1000, nca=1.0,
         iters=[0, 1, 3999, 4000, 4001, 4_499_999, 4_502_000, 8_999_998, 8_999_999]),
    dict(name="CIFAR README: lr 1e-3, I 187500, W 0, nca 1", lr0=1e-3, eta_min=0.0,
         I=I_CIFAR, W=0, nca=1.0,
         iters=[0, 1, 46_874, 93_749, 93_750, 140_624, 187_498, 187_499]),
    dict(name="small: lr 0.1, I 1000, W 25, nca 3, eta_min 1e-3", lr0=0.1, eta_min=1e-3,
         I=1000, W=25, nca=3.0, iters=None),
    dict(name="small: lr 0.05, I 1000, W 0, nca 7 (non-integer T_max)", lr0=0.05, eta_min=0.0,
         I=1000, W=0, nca=7.0, iters=None),
    dict(name="small: lr 1e-3, I 500, W 0, nca 2", lr0=1e-3, eta_min=0.0,
         I=500, W=0, nca=2.0, iters=None),
]

STEP_CASES = [
    dict(name="lr 0.01, step 6, gamma 0.1", lr0=0.01, step_size=6, gamma=0.1, I=40),
    dict(name="lr 1e-3, step 7, gamma 0.5", lr0=1e-3, step_size=7, gamma=0.5, I=60),
]


def run_cosine_group(cases):
    """Step every case's scheduler in one pass over max(I) iterations."""
    state = []
    for c in cases:
        opt = _dummy_optimizer(c["lr0"])
        t_max = (c["I"] - 4 * c["W"]) / c["nca"]
        sch = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t_max, eta_min=c["eta_min"])
        want = set(range(c["I"])) if c["iters"] is None else set(c["iters"])
        state.append((c, opt, sch, t_max, want, {}, {}))
    for i in range(max(c["I"] for c in cases)):
        for c, opt, sch, t_max, want, stepped, closed in state:
            if i >= c["I"]:
                continue
            if i >= 4 * c["W"]:
                sch.step()
            if i in want:
                stepped[i] = opt.param_groups[0]["lr"]
                closed[i] = sch._get_closed_form_lr()[0] if i >= 4 * c["W"] else c["lr0"]
    out = []
    for c, opt, sch, t_max, want, stepped, closed in state:
        its = sorted(want)
        out.append((c, t_max, its, [stepped[i] for i in its], [closed[i] for i in its]))
    return out


def run_step(c):
    opt = _dummy_optimizer(c["lr0"])
    sch = torch.optim.lr_scheduler.StepLR(opt, step_size=c["step_size"], gamma=c["gamma"])
    stepped, closed = [], []
    for i in range(c["I"]):
        stepped.append(opt.param_groups[0]["lr"])
        closed.append(sch._get_closed_form_lr()[0])
        sch.step()  # after the iteration
    return stepped, closed


# ---------------------------------------------------------------- output


def f(x):
    # repr() is the shortest string that reads back to the same double, and a
    # C compiler converts decimal literals with correct rounding.
    x = float(x)
    assert math.isfinite(x)
    return repr(x)


def flist(xs):
    return "{" + ", ".join(f(x) for x in xs) + "}"


def cstr(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    torch.set_default_dtype(torch.float64)
    w = sys.stdout.write
    w("/* GENERATED by tests/golden/make_optim_golden.py -- do not edit.\n")
    w(" * Regenerate: /usr/bin/python3 tests/golden/make_optim_golden.py"
      " > tests/golden/optim_golden.h\n")
    w(" * Produced with torch %s, numpy %s, Python %s (%s), float64 on the CPU,\n"
      % (torch.__version__, np.__version__, platform.python_version(), platform.machine()))
    w(" * using torch.optim.AdamW / torch.optim.SGD (foreach=False, single-tensor path) and\n"
      " * torch.optim.lr_scheduler.CosineAnnealingLR / StepLR actually stepped; see the\n"
      " * script's docstring for the exact protocol. Consumed by tests/test_optim.c. */\n")
    w("#ifndef CBNN_OPTIM_GOLDEN_H\n#define CBNN_OPTIM_GOLDEN_H\n\n")
    w('#define OG_TORCH_VERSION "%s"\n' % torch.__version__)
    w("#define OG_N %d\n#define OG_STEPS %d\n\n" % (N, STEPS))
    w("static const double og_init[OG_N] = %s;\n\n" % flist(INIT))
    w("/* og_grads[s] is the gradient fed to step s+1 */\n")
    w("static const double og_grads[OG_STEPS][OG_N] = {\n")
    for g in GRADS:
        w("    %s,\n" % flist(g))
    w("};\n\n")

    w("typedef struct {\n    const char *name;\n    double lr[OG_STEPS]; /* lr of step s+1 */\n"
      "    double beta1, beta2, eps, weight_decay;\n"
      "    double param[OG_STEPS][OG_N]; /* after step s+1 */\n"
      "    double exp_avg[OG_N], exp_avg_sq[OG_N]; /* after the last step */\n} OgAdamW;\n\n")
    w("static const OgAdamW og_adamw[] = {\n")
    for name, lrs, (b1, b2), eps, wd in ADAMW_CASES:
        traj, m, v = run_adamw(lrs, (b1, b2), eps, wd)
        w("    {%s,\n     %s,\n     %s, %s, %s, %s,\n     {\n" % (cstr(name), flist(lrs), f(b1), f(b2),
                                                              f(eps), f(wd)))
        for row in traj:
            w("         %s,\n" % flist(row))
        w("     },\n     %s,\n     %s},\n" % (flist(m), flist(v)))
    w("};\n#define OG_N_ADAMW ((int)(sizeof og_adamw / sizeof og_adamw[0]))\n\n")

    w("typedef struct {\n    const char *name;\n    double lr[OG_STEPS];\n"
      "    double momentum, dampening, weight_decay;\n    int nesterov;\n"
      "    double param[OG_STEPS][OG_N];\n"
      "    double momentum_buffer[OG_N]; /* after the last step (zeros if momentum == 0) */\n"
      "} OgSGD;\n\n")
    w("static const OgSGD og_sgd[] = {\n")
    for name, lrs, mom, damp, wd, nest in SGD_CASES:
        traj, buf = run_sgd(lrs, mom, damp, wd, nest)
        w("    {%s,\n     %s,\n     %s, %s, %s, %d,\n     {\n" % (cstr(name), flist(lrs), f(mom),
                                                              f(damp), f(wd), int(nest)))
        for row in traj:
            w("         %s,\n" % flist(row))
        w("     },\n     %s},\n" % flist(buf))
    w("};\n#define OG_N_SGD ((int)(sizeof og_sgd / sizeof og_sgd[0]))\n\n")

    w("/* Cosine: lr_stepped[k] is opt.param_groups[0]['lr'] read at 0-based iteration\n"
      " * iters[k] after the reference loop's step() (none during the first 4W iterations);\n"
      " * lr_closed[k] is torch's _get_closed_form_lr() at the same last_epoch (lr0 while held). */\n")
    w("typedef struct {\n    const char *name;\n    double lr0, eta_min;\n"
      "    long total_iters, cyclic_warmup;\n    double num_cyclic_annealing;\n"
      "    double t_max; /* as torch was given it */\n    int n;\n    const long *iters;\n"
      "    const double *lr_stepped, *lr_closed;\n} OgCosine;\n\n")
    results = run_cosine_group(COSINE_CASES)
    for k, (c, t_max, its, st, cl) in enumerate(results):
        w("static const long og_cos%d_iters[] = {%s};\n" % (k, ", ".join(str(i) for i in its)))
        w("static const double og_cos%d_stepped[] = %s;\n" % (k, flist(st)))
        w("static const double og_cos%d_closed[] = %s;\n\n" % (k, flist(cl)))
    w("static const OgCosine og_cosine[] = {\n")
    for k, (c, t_max, its, st, cl) in enumerate(results):
        w("    {%s, %s, %s, %dL, %dL, %s, %s, %d, og_cos%d_iters, og_cos%d_stepped, og_cos%d_closed},\n"
          % (cstr(c["name"]), f(c["lr0"]), f(c["eta_min"]), c["I"], c["W"], f(c["nca"]), f(t_max),
             len(its), k, k, k))
    w("};\n#define OG_N_COSINE ((int)(sizeof og_cosine / sizeof og_cosine[0]))\n\n")

    w("/* StepLR: lr read at iteration i = 0..n-1, scheduler stepped after it. */\n")
    w("typedef struct {\n    const char *name;\n    double lr0;\n    long step_size;\n    double gamma;\n"
      "    int n;\n    const double *lr_stepped, *lr_closed;\n} OgStep;\n\n")
    for k, c in enumerate(STEP_CASES):
        st, cl = run_step(c)
        w("static const double og_step%d_stepped[] = %s;\n" % (k, flist(st)))
        w("static const double og_step%d_closed[] = %s;\n\n" % (k, flist(cl)))
    w("static const OgStep og_step[] = {\n")
    for k, c in enumerate(STEP_CASES):
        w("    {%s, %s, %dL, %s, %d, og_step%d_stepped, og_step%d_closed},\n"
          % (cstr(c["name"]), f(c["lr0"]), c["step_size"], f(c["gamma"]), c["I"], k, k))
    w("};\n#define OG_N_STEP ((int)(sizeof og_step / sizeof og_step[0]))\n\n")
    w("#endif\n")


if __name__ == "__main__":
    main()
