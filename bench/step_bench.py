#!/usr/bin/python3
"""Runs the engine's and PyTorch's training steps side by side and the kernel
benchmarks, then writes bench/RESULTS.md (issue 17's targets and issue 7's).
Called by bench/run_step_bench (which builds the engine and makes sure
python3-torch is installed); stdlib only.

    bench/step_bench.py BUILD_DIR [--quick] [--threads 2] [--batches 16,64] [--imagenet-batch 16]
                        [--isa native,avx2] [--steps S --reps R --warmup W] [--kernel-reps K]
                        [--no-imagenet] [--no-kernels] [--dry-run | --estimate] [--out FILE] [--raw FILE]
    bench/step_bench.py --from-raw FILE [--out FILE]      # rewrite the report from a saved run

What runs, each configuration in its own process (so its peak RSS is its own):
  CIFAR-10 ResNet-18, 32 px, at each of --batches:
    engine cyclebnn fast / lean   bench/train_step --mode cyclebnn --memory fast|lean
    engine fp32 native / onednn   bench/train_step --mode fp32 --fp32-conv native|onednn
    torch fp32 / fakequant        bench/peer/torch_step.py --mode fp32|fakequant
  ImageNet ResNet-18, 224 px, 1000 classes, at --imagenet-batch: the same but
    torch fakequant (fewer steps and repetitions, so that it stays bounded).
Every configuration runs at each thread count of --threads (OMP_NUM_THREADS and
--threads of both programs) with this machine's kernels; --isa avx2 repeats the
CIFAR configurations but the lean one at the largest thread count with both
sides held to AVX2 (the machine type issue 7 was written for, Zen 1, has no
AVX-512): the engine's kernel tables (CBNN_SIMD=avx2), oneDNN, PyTorch's and
ours (ONEDNN_MAX_CPU_ISA=AVX2), PyTorch's ATen kernels (ATEN_CPU_CAPABILITY=avx2),
OpenBLAS (its Haswell kernels, what it picks here anyway). Then the kernel
benchmarks at the largest thread count: bench_bconv_packed, bench_bconv_bwd,
conv_throughput (CIFAR and ImageNet convs).

Bounded time: first every configuration runs one warm-up and one timed step (the
probe); its step time sizes the configuration's repetitions (about --rep-s
seconds each, --steps overrides) and the estimate of the whole run, printed
before anything else runs (the kernel benchmarks' share from the last run's raw
file when there is one). --estimate stops there; --dry-run prints the plan and
runs nothing. Every command has a time limit (4x its estimate, at least 2 min).

A configuration that cannot run is a row marked "unavailable" (train_step exits
with status 3 when --fp32-conv onednn has no oneDNN behind it) or "failed", never
a stopped script; the exit status is 1 when anything but an onednn row failed.
Everything measured is also written to --raw (default: --out with .json), which
--from-raw turns into the report again without running anything.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# environment of each ISA setting (added to the common one)
ISA_ENV = {
    "native": {},
    "avx2": {"CBNN_SIMD": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2",
             "ATEN_CPU_CAPABILITY": "avx2", "OPENBLAS_CORETYPE": "Haswell"},
}
ISA_TITLE = {
    "native": "this machine's best kernels on both sides (engine: its best tables, e.g. AVX-512 VPOPCNTDQ / VNNI; "
              "oneDNN, PyTorch's and ours: their best ISA)",
    "avx2": "both sides held to AVX2 (`CBNN_SIMD=avx2`, `ONEDNN_MAX_CPU_ISA=AVX2`, `ATEN_CPU_CAPABILITY=avx2`, "
            "`OPENBLAS_CORETYPE=Haswell`), as on the AVX2-only machine type issue 7 names",
}
# label -> (program, mode, train.memory, model.fp32_conv)
CONFS = {
    "engine cyclebnn fast": ("engine", "cyclebnn", "fast", "native"),
    "engine cyclebnn lean": ("engine", "cyclebnn", "lean", "native"),
    "engine fp32 native": ("engine", "fp32", "fast", "native"),
    "engine fp32 onednn": ("engine", "fp32", "fast", "onednn"),
    "torch fp32": ("torch", "fp32", None, None),
    "torch fakequant": ("torch", "fakequant", None, None),
}
ENGINE_CONFS = [c for c in CONFS if c.startswith("engine")]
NETS = {  # key -> (arch, size, title)
    "cifar": ("cifar_resnet18", 32, "CIFAR-10 ResNet-18, 32 px"),
    "imagenet": ("imagenet_resnet18", 224, "ImageNet ResNet-18, 224 px, 1000 classes"),
}
NET_CONFS = {"cifar": list(CONFS), "imagenet": [c for c in CONFS if c != "torch fakequant"]}
AVX2_CONFS = [c for c in CONFS if c != "engine cyclebnn lean"]
# repetitions, warm-up steps, seconds per repetition and the most steps per repetition
PROFILES = {
    "full": {"cifar": dict(reps=7, warmup=2, rep_s=3.0, max_steps=24),
             "imagenet": dict(reps=5, warmup=1, rep_s=4.0, max_steps=6), "kernel_reps": 7},
    "quick": {"cifar": dict(reps=3, warmup=1, rep_s=1.5, max_steps=12),
              "imagenet": dict(reps=3, warmup=1, rep_s=2.0, max_steps=2), "kernel_reps": 3},
}
UNAVAILABLE_RC = 3  # train_step: --fp32-conv onednn has no oneDNN behind it


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def rel(path):
    return os.path.relpath(path, ROOT) if os.path.isabs(path) and path.startswith(ROOT) else path


def run(cmd, env, timeout):
    """(rc, stdout, stderr, wall seconds); rc None on a timeout"""
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                           timeout=timeout)
        return p.returncode, p.stdout, p.stderr, time.monotonic() - t0
    except subprocess.TimeoutExpired as e:
        def text(x):
            return x.decode(errors="replace") if isinstance(x, bytes) else (x or "")
        return None, text(e.stdout), text(e.stderr), time.monotonic() - t0


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def normalize(r):
    """the peer's JSON (img_per_s = the list of repetitions, *_ms keys) in the engine's form"""
    if isinstance(r.get("img_per_s"), list):
        r["reps_img_per_s"] = r["img_per_s"]
        r["img_per_s"] = r["img_per_s_median"]
        r["ms"] = {k: r[k + "_ms"] for k in ("forward", "backward", "optimizer") if k + "_ms" in r}
    reps = r.get("reps_img_per_s") or [r["img_per_s"]]
    r.setdefault("img_per_s_min", min(reps))
    r.setdefault("img_per_s_max", max(reps))
    return r


def machine():
    model, flags = "?", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "?":
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = line.split(":", 1)[1]
    except OSError:
        pass
    isa = [x for x in ("avx2", "fma", "avx512f", "avx512_vpopcntdq", "avx512_vnni", "avx_vnni")
           if " %s " % x in " %s " % flags]
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = "%.0f GiB" % (int(f.readline().split()[1]) / 1048576)
    except OSError:
        pass
    return "%s, %d logical CPUs, %s, ISA: %s; %s %s" % (model, os.cpu_count() or 0, mem, " ".join(isa),
                                                     platform.system(), platform.release())


def git_rev():
    try:  # a copy carried by bench/pack_step_bench has no .git, but the revision it was packed at
        with open(os.path.join(ROOT, "REVISION")) as f:
            return f.read().strip() + " (packed)"
    except OSError:
        pass
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
        return (rev or "?") + ("+dirty" if dirty else "")
    except OSError:
        return "?"


# ---------------------------------------------------------------- the plan

def plan(a):
    """the configurations to run, in order: dicts with isa, threads, net, batch, label"""
    items = []
    nets = [("cifar", b) for b in a.batch_list] + ([] if a.no_imagenet else [("imagenet", a.imagenet_batch)])
    for isa in a.isa_list:
        thread_counts = sorted(a.thread_list, reverse=True) if isa == "native" else [max(a.thread_list)]
        for T in thread_counts:
            for net, b in nets:
                if isa != "native" and net != "cifar":
                    continue
                for label in NET_CONFS[net]:
                    if (isa != "native" and label not in AVX2_CONFS) or (a.no_torch and label.startswith("torch")):
                        continue
                    items.append({"isa": isa, "threads": T, "net": net, "batch": b, "label": label})
    return items


def command(a, it, steps, reps, warmup):
    prog, mode, memory, fp32_conv = CONFS[it["label"]]
    arch, size, _ = NETS[it["net"]]
    common = ["--arch", arch, "--size", str(size), "--mode", mode, "--batch", str(it["batch"]),
              "--threads", str(it["threads"]), "--steps", str(steps), "--reps", str(reps), "--warmup", str(warmup),
              "--json"]
    if prog == "engine":
        return [os.path.join(a.build, "bench", "train_step"), "--memory", memory, "--fp32-conv", fp32_conv] + common
    return [a.python, os.path.join(ROOT, "bench", "peer", "torch_step.py")] + common


def env_of(it):
    return dict(os.environ, OMP_NUM_THREADS=str(it["threads"]), OMP_WAIT_POLICY="PASSIVE", **ISA_ENV[it["isa"]])


def shown(cmd, isa):
    prefix = " ".join("%s=%s" % kv for kv in sorted(ISA_ENV[isa].items()))
    return (prefix + " " + " ".join(shlex.quote(rel(c)) for c in cmd)).strip()


def failure(rc, out, err, timeout):
    if rc is None:
        return "failed: timed out after %.0f s" % timeout
    lines = [l.strip() for l in (err + out).strip().splitlines() if l.strip()]
    why = lines[-1] if lines else "no output"
    why = re.sub(r"^train_step: ", "", why)[:200]
    return ("unavailable: " if rc == UNAVAILABLE_RC else "failed (exit status %d): " % rc) + why


def sizing(a, it, step_s):
    """steps, reps, warm-up of a configuration from its probed step time"""
    p = dict(a.profile[it["net"]])
    if a.reps:
        p["reps"] = a.reps
    if a.warmup is not None:
        p["warmup"] = a.warmup
    if a.steps:
        steps = a.steps
    elif step_s:
        steps = max(1, min(p["max_steps"], int(math.ceil(a.rep_s_scale * p["rep_s"] / step_s))))
    else:
        steps = 1 if it["net"] == "imagenet" else 4
    return steps, p["reps"], p["warmup"]


def probe(a, it):
    """one warm-up and one timed step: (step seconds, process overhead seconds, error)"""
    cmd = command(a, it, 1, 1, 1)
    rc, out, err, wall = run(cmd, env_of(it), a.probe_timeout)
    r = last_json(out) if rc == 0 else None
    if not r:
        return None, wall, failure(rc, out, err, a.probe_timeout)
    r = normalize(r)
    step_s = it["batch"] / r["img_per_s"] if r["img_per_s"] > 0 else None
    # the rest of the wall time: start-up, libraries, the first (slower) step
    return step_s, max(0.0, wall - (step_s or 0)), None


def estimate_s(it, steps, reps, warmup):
    if not it.get("step_s"):
        return None
    warm = max(warmup, 1) if CONFS[it["label"]][0] == "torch" else warmup
    return it["overhead_s"] + (warm + reps * steps) * it["step_s"]


def previous_kernel_s(a):
    try:
        with open(a.raw) as f:
            old = json.load(f)
        if old.get("kernel_reps") == a.kernel_reps:
            return old.get("timing", {}).get("kernels_s")
    except (OSError, ValueError, AttributeError):
        pass
    return None


def fmt_min(s):
    return "%.1f min" % (s / 60.0)


# ---------------------------------------------------------------- kernels

def kernel_benches(a, T):
    env = dict(os.environ, OMP_NUM_THREADS=str(T), OMP_WAIT_POLICY="PASSIVE")
    k = {"outputs": {}, "parsed": {}, "errors": {}, "cmds": []}
    reps = str(a.kernel_reps)
    jobs = [("bconv_packed", ["bench_bconv_packed", reps]), ("bconv_bwd", ["bench_bconv_bwd", reps]),
            ("conv_throughput", ["conv_throughput", reps]),
            ("conv_throughput_imagenet", ["conv_throughput", reps, "--imagenet"])]
    for name, argv in jobs:
        cmd = [os.path.join(a.build, "bench", argv[0])] + argv[1:]
        k["cmds"].append(shown(cmd, "native"))
        log("+ " + shown(cmd, "native"))
        rc, out, err, _ = run(cmd, env, 1800)
        if rc != 0:
            k["errors"][name] = failure(rc, out, err, 1800)
            continue
        k["outputs"][name] = out
        if name == "bconv_packed":
            m = re.search(r"total: fp32 ([\d.]+) ms, packed best ([\d.]+) ms \(x([\d.]+)\), packed avx2 ([\d.]+) ms "
                          r"\(x([\d.]+)\)", out)
            if m:
                k["parsed"]["bin_vs_fp32"] = [float(m.group(3)), float(m.group(5)), float(m.group(1)),
                                              float(m.group(2))]
        elif name == "bconv_bwd":
            m = re.search(r"whole step fp32 ([\d.]+) ms -> int8 (\S+) ([\d.]+) ms \(x([\d.]+)\)", out)
            if m:
                k["parsed"]["bwd_int8_vs_fp32"] = [float(m.group(1)), m.group(2), float(m.group(3)),
                                                   float(m.group(4))]
        else:
            m = re.search(r"all layers\s+[\d.]+ \|\s+([\d.]+)\s+([\d.]+)\s+([\d.]+) \|\s+([\d.]+)\s+([\d.]+)\s+"
                          r"([\d.]+)", out)
            if m:
                k["parsed"]["conv_vs_sgemm" + name[len("conv_throughput"):]] = [float(m.group(i))
                                                                               for i in range(1, 7)]
    return k


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build", nargs="?")
    ap.add_argument("--quick", action="store_true", help="fewer and shorter repetitions (about 10 minutes)")
    ap.add_argument("--threads", default="2", help="thread counts, e.g. 1,2 (efficiency needs 1)")
    ap.add_argument("--batches", default="16,64", help="CIFAR batches")
    ap.add_argument("--imagenet-batch", type=int, default=16)
    ap.add_argument("--no-imagenet", action="store_true")
    ap.add_argument("--isa", default="native,avx2", help="native and/or avx2 (both sides held to AVX2)")
    ap.add_argument("--steps", type=int, default=0, help="steps per repetition for every configuration "
                    "(default: sized from the probe)")
    ap.add_argument("--reps", type=int, default=0, help="repetitions (default: 7 CIFAR / 5 ImageNet; --quick 3)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up steps (default 2 CIFAR / 1 ImageNet)")
    ap.add_argument("--rep-s-scale", type=float, default=1.0, help="scale the seconds per repetition")
    ap.add_argument("--kernel-reps", type=int, default=0, help="repetitions of the kernel benchmarks (7; --quick 3)")
    ap.add_argument("--no-kernels", action="store_true")
    ap.add_argument("--no-torch", action="store_true", help="the engine's configurations only")
    ap.add_argument("--python", default="/usr/bin/python3", help="the interpreter with torch for the peer")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and run nothing")
    ap.add_argument("--estimate", action="store_true", help="probe, print the estimate and stop")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    ap.add_argument("--raw", default=None, help="everything measured, as JSON (default: OUT with .json)")
    ap.add_argument("--from-raw", default=None, help="write the report from this raw file; run nothing")
    a = ap.parse_args()
    a.raw = a.raw or os.path.splitext(a.out)[0] + ".json"
    if a.from_raw:
        with open(a.from_raw) as f:
            data = json.load(f)
        write_report(data, a.out)
        log("step_bench: wrote %s from %s" % (rel(a.out), rel(a.from_raw)))
        return 0
    if not a.build:
        ap.error("BUILD_DIR is required (or --from-raw FILE)")
    a.build = os.path.abspath(a.build)
    a.profile = PROFILES["quick" if a.quick else "full"]
    a.kernel_reps = a.kernel_reps or a.profile["kernel_reps"]
    a.probe_timeout = 900
    try:
        a.batch_list = [int(b) for b in a.batches.split(",") if b]
        a.thread_list = sorted({int(t) for t in a.threads.split(",") if t})
    except ValueError:
        ap.error("--batches and --threads take comma-separated integers")
    a.isa_list = [x for x in a.isa.split(",") if x]
    for x in a.isa_list:
        if x not in ISA_ENV:
            ap.error("unknown --isa '%s' (native, avx2)" % x)
    if not a.batch_list or not a.thread_list or min(a.batch_list + a.thread_list) < 1 or a.imagenet_batch < 1:
        ap.error("--batches, --threads and --imagenet-batch must be positive")
    items = plan(a)
    argv_shown = " ".join(shlex.quote(x) for x in sys.argv[1:] if os.path.abspath(x) != a.build)
    if a.build != os.path.join(ROOT, "build"):
        argv_shown = ("--build %s %s" % (shlex.quote(rel(a.build)), argv_shown)).strip()

    if a.dry_run:
        print("step_bench --dry-run: %d configurations (steps per repetition sized from a probe step unless "
              "--steps), then %s" % (len(items), "no kernel benchmarks" if a.no_kernels else
                                     "the kernel benchmarks at %d threads" % max(a.thread_list)))
        for it in items:
            steps, reps, warmup = sizing(a, it, None)
            print("  " + shown(command(a, it, steps if a.steps else "S", reps, warmup), it["isa"]))
        return 0

    t_start = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    load0 = os.getloadavg()[0]
    log("step_bench: probing %d configurations (one warm-up and one timed step each)" % len(items))
    for it in items:
        it["step_s"], it["overhead_s"], it["error"] = probe(a, it)
        if it["error"]:
            log("  %s %dT %s b%d %-22s %s" % (it["isa"], it["threads"], it["net"], it["batch"], it["label"],
                                              it["error"]))
    t_probe = time.monotonic() - t0
    total_est = 0.0
    for it in items:
        it["steps"], it["reps"], it["warmup"] = sizing(a, it, it["step_s"])
        it["estimate_s"] = estimate_s(it, it["steps"], it["reps"], it["warmup"])
        total_est += it["estimate_s"] or 0.0
    kern_est = None if a.no_kernels else previous_kernel_s(a)
    msg = "step_bench: estimate %s for the training steps (%d configurations, %d of them could not run)" % (
        fmt_min(total_est), len(items), sum(1 for it in items if it["error"]))
    if not a.no_kernels:
        msg += (" + %s for the kernel benchmarks (their time in the last run, %s)" % (fmt_min(kern_est), rel(a.raw))
                if kern_est else " + the kernel benchmarks (not estimated: no earlier run at --kernel-reps %d)"
                % a.kernel_reps)
    msg += "; the probes took %s" % fmt_min(t_probe)
    log(msg)
    if a.estimate:
        for it in items:
            log("  %s %dT %-8s b%-3d %-22s steps %d x reps %d (+%d warm-up): %s" % (
                it["isa"], it["threads"], it["net"], it["batch"], it["label"], it["steps"], it["reps"],
                it["warmup"], "%.0f s" % it["estimate_s"] if it["estimate_s"] else it["error"]))
        return 0

    t1 = time.monotonic()
    done_est = 0.0
    for i, it in enumerate(items):
        cmd = command(a, it, it["steps"], it["reps"], it["warmup"])
        it["cmd"] = shown(cmd, it["isa"])
        it["result"] = None
        if it["error"] and it["error"].startswith("unavailable"):
            it["cmd"] += "   # not run: the probe found it unavailable"
        else:
            limit = max(120.0, 4 * (it["estimate_s"] or 60.0))
            log("+ " + it["cmd"])
            rc, out, err, wall = run(cmd, env_of(it), limit)
            r = last_json(out) if rc == 0 else None
            if r:
                it["result"], it["error"], it["wall_s"] = normalize(r), None, wall
            else:
                it["error"] = failure(rc, out, err, limit) if rc != 0 else "failed: no JSON line in its output"
        done_est += it["estimate_s"] or 0.0
        r = it["result"]
        log("[%d/%d] %s %dT %s b%d %-22s %s   (%.1f of ~%.1f min)" % (
            i + 1, len(items), it["isa"], it["threads"], it["net"], it["batch"], it["label"],
            "%.2f img/s [%.2f-%.2f], peak RSS %.0f MiB" % (r["img_per_s"], r["img_per_s_min"], r["img_per_s_max"],
                                                          r["peak_rss_mib"]) if r else it["error"],
            (time.monotonic() - t1) / 60, total_est / 60))
    t_steps = time.monotonic() - t1

    t2 = time.monotonic()
    kernels = None if a.no_kernels else kernel_benches(a, max(a.thread_list))
    t_kern = time.monotonic() - t2
    data = {
        "generated_by": "bench/run_step_bench" + (" " + argv_shown if argv_shown else ""),
        "date": t_start.strftime("%Y-%m-%d %H:%M UTC"), "revision": git_rev(), "machine": machine(),
        "load_average": [load0, os.getloadavg()[0]], "cores": os.cpu_count() or 0,
        "threads": a.thread_list, "isa": a.isa_list, "batches": a.batch_list,
        "imagenet_batch": None if a.no_imagenet else a.imagenet_batch, "quick": a.quick,
        "kernel_reps": a.kernel_reps, "kernels": kernels,
        "timing": {"probes_s": t_probe, "steps_s": t_steps, "kernels_s": None if a.no_kernels else t_kern,
                   "total_s": time.monotonic() - t0, "estimate_s": total_est, "kernels_estimate_s": kern_est},
        "rows": items,
    }
    tmp = a.raw + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, a.raw)
    write_report(data, a.out)
    log("step_bench: wrote %s and %s in %s (the steps estimated %s, took %s)" % (
        rel(a.out), rel(a.raw), fmt_min(time.monotonic() - t0), fmt_min(total_est), fmt_min(t_steps)))
    bad = [it for it in items if it["error"] and CONFS[it["label"]][3] != "onednn"]
    for it in bad:
        log("step_bench: %s %dT %s b%d %s: %s" % (it["isa"], it["threads"], it["net"], it["batch"], it["label"],
                                                  it["error"]))
    return 1 if bad else 0


# ---------------------------------------------------------------- the report

class Rows:
    """the measured rows by (isa, threads, net, batch, label)"""

    def __init__(self, data):
        self.d = {(r["isa"], r["threads"], r["net"], r["batch"], r["label"]): r for r in data["rows"]}

    def get(self, isa, T, net, b, label):
        return self.d.get((isa, T, net, b, label))

    def res(self, isa, T, net, b, label):
        r = self.get(isa, T, net, b, label)
        return r["result"] if r and r.get("result") else None

    def why(self, isa, T, net, b, label):
        r = self.get(isa, T, net, b, label)
        if not r:
            return "not run"
        return (r.get("error") or "not run").split(":")[0]


def verdict(x, ok):
    return "–" if x is None else ("**met**" if ok else "**missed**")


def mib(b):
    return b / 1048576.0


def ips_cell(r):
    return "%.2f [%.2f–%.2f]" % (r["img_per_s"], r["img_per_s_min"], r["img_per_s_max"])


def num(v, f="%.1f"):
    return f % v if isinstance(v, (int, float)) else "–"


def write_report(data, out):
    rows = Rows(data)
    threads, isas = data["threads"], data["isa"]
    batches = data["batches"]
    inet_b = data.get("imagenet_batch")
    nets = [("cifar", b) for b in batches] + ([("imagenet", inet_b)] if inet_b else [])
    Tt = 2 if 2 in threads else max(threads)  # the thread count when measured
    bmem = max(batches)
    L = []
    A = L.append
    A("# Benchmark results: the engine beside PyTorch")
    A("")
    tm = data["timing"]
    A("Generated by `%s` on %s (git %s) in %.1f min (estimated %.1f min for the steps, which took %.1f); do not "
      "edit by hand (bench/README.md discusses them). Raw numbers: the JSON file of the same name."
      % (data["generated_by"], data["date"], data["revision"], tm["total_s"] / 60, tm["estimate_s"] / 60,
         tm["steps_s"] / 60))
    A("")
    la = data["load_average"]
    busy = max(la) > 0.5 * max(1, data["cores"])
    A("Machine: %s. Load average (1 min) before / after: %.2f / %.2f%s. Threads: %s (`OMP_NUM_THREADS`, "
      "`torch.set_num_threads`, `OMP_WAIT_POLICY=PASSIVE`); the targets are read at %d threads."
      % (data["machine"], la[0], la[1], " (**other jobs shared the machine: read the ratios, not the absolute "
                                         "numbers**)" if busy else "", ", ".join(map(str, threads)), Tt))
    A("")
    A("Models: CIFAR-10 ResNet-18 (method.md 4.1, 32 px, 10 classes) at batch %s%s; AdamW. Engine "
      "(`bench/train_step`): CycleBNN at k = 4 bits, error 8 bits, the faithful defaults, with `train.memory` "
      "fast or lean; the same net with fp32 convs, `model.fp32_conv` native (ours, thread-count invariant) or "
      "onednn. PyTorch peer (`bench/peer/torch_step.py`, Debian's torch 1.13): the same architecture in fp32, "
      "and with the authors' semantics emulated in fp32 (fake-quant, CIFAR only)."
      % (", ".join(map(str, batches)), "; ImageNet ResNet-18 (method.md 4.2, 224 px, 1000 classes) at batch %d"
         % inet_b if inet_b else ""))
    A("")
    A("img/s: the median of the repetitions, [the slowest–the fastest repetition] beside it (the run-to-run "
      "spread); the training step without data loading on both sides (the engine's loader is the `loader` "
      "column). Each configuration is its own process. Phase columns: median ms per step. Peak RSS: the "
      "process's (getrusage), libraries included. Training arenas: `model_train_bytes` (acts, dacts, saved, "
      "scratch, noise and any other arena; not params, grads, optimizer state); the fp32 twin is the same net "
      "with fp32 convs, memory fast, planned by `model_layout` at the same batch and never allocated.")
    A("")
    targets17(A, rows, data, Tt, bmem, nets, inet_b)
    targets7(A, rows, data, Tt, batches)
    for net, b in ([("cifar", bmem)] + ([("imagenet", inet_b)] if inet_b else [])):
        memory_table(A, rows, Tt, net, b)
    for isa in isas:
        for T in (sorted(threads, reverse=True) if isa == "native" else [max(threads)]):
            A("## Training step: %s, %d thread%s" % (ISA_TITLE[isa], T, "s" if T > 1 else ""))
            A("")
            A("| model | batch | configuration | img/s [min–max] | forward ms | backward ms | optimizer ms | "
              "loader ms | peak RSS MiB | before the model MiB | training arenas MiB |")
            A("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
            for net, b in nets:
                for label in CONFS:
                    it = rows.get(isa, T, net, b, label)
                    if not it:
                        continue
                    r = it.get("result")
                    name = NETS[net][0]
                    if not r:
                        A("| %s | %d | %s | %s | | | | | | | |" % (name, b, label, it.get("error") or "not run"))
                        continue
                    ms = r.get("ms", {})
                    A("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                        name, b, label, ips_cell(r), num(ms.get("forward")), num(ms.get("backward")),
                        num(ms.get("optimizer")), num(ms.get("loader")), num(r.get("peak_rss_mib"), "%.0f"),
                        num(r.get("setup_rss_mib"), "%.0f"),
                        num(mib(r["train_bytes"])) if "train_bytes" in r else "–"))
            A("")
    scaling_table(A, rows, threads, nets)
    phase_tables(A, rows, isas, Tt, threads, nets)
    A("## Commands")
    A("")
    A("Each configuration first ran one warm-up and one timed step (`--steps 1 --reps 1 --warmup 1`) that sized "
      "its repetitions and the estimate.")
    A("")
    A("```")
    A("%s   # builds, installs python3-torch if missing, runs all of the below" % data["generated_by"])
    for it in data["rows"]:
        if it.get("cmd"):
            A(it["cmd"])
    k = data.get("kernels")
    if k:
        for c in k["cmds"]:
            A(c)
    A("```")
    if k:
        for name in ("bconv_packed", "bconv_bwd", "conv_throughput", "conv_throughput_imagenet"):
            A("")
            A("## Kernel benchmark output: %s" % name)
            A("")
            if name in k["outputs"]:
                A("```")
                A(k["outputs"][name].rstrip())
                A("```")
            else:
                A(k["errors"].get(name, "not run"))
    carry_hand_sections(L, out)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(L) + "\n")
    os.replace(tmp, out)


def ratio(rows, isa, T, net, b, num_label, den_label, key="img_per_s"):
    """(num / den, why-not)"""
    n, d = rows.res(isa, T, net, b, num_label), rows.res(isa, T, net, b, den_label)
    if n and d and d.get(key):
        return n[key] / d[key], None
    missing = num_label if not n else den_label
    return None, "%s: %s" % (missing, rows.why(isa, T, net, b, missing))


def targets17(A, rows, data, Tt, bmem, nets, inet_b):
    A("## Targets (issue 17)")
    A("")
    A("Measured in this run at %d threads, never adjusted; a row that could not run says why (\"unavailable\": "
      "the configuration refused to run in this build). The speed rows also say whether the 3x stretch is met." % Tt)
    A("")
    A("| target | setting | measured | |")
    A("|---|---|---:|---|")
    blocks = [("cifar", bmem, "1", "(1)")] + ([("imagenet", inet_b, "5", "(5) ImageNet:")] if inet_b else [])
    for net, b, _, tag in blocks:
        name = NETS[net][0]
        for memory in ("lean", "fast"):
            lab = "engine cyclebnn " + memory
            r = rows.res("native", Tt, net, b, lab)
            x = r.get("train_ratio_fp32_twin") if r else None
            why = "no ratio in its output" if r else "%s: %s" % (lab, rows.why("native", Tt, net, b, lab))
            A("| %s training arenas, CycleBNN / our fp32 twin <= 0.25, %s batch %d | memory %s%s | %s | %s |" % (
                tag, name, b, memory, "" if memory == "lean" else " (beside)",
                "x%.3f" % x if x is not None else why, verdict(x, x is not None and x <= 0.25)))
        for memory in ("lean", "fast"):
            lab = "engine cyclebnn " + memory
            x, why = ratio(rows, "native", Tt, net, b, lab, "engine fp32 native", "peak_rss_mib")
            A("| %s peak RSS, CycleBNN / our fp32 (native) <= 0.6, %s batch %d | memory %s%s | %s | %s |" % (
                tag, name, b, memory, "" if memory == "lean" else " (beside)",
                "x%.3f" % x if x is not None else why, verdict(x, x is not None and x <= 0.6)))
    for net, b in nets:
        tag = "(2)" if net == "cifar" else "(5) ImageNet:"
        for memory in ("fast", "lean"):
            x, why = ratio(rows, "native", Tt, net, b, "engine cyclebnn " + memory, "torch fp32")
            A("| %s CycleBNN step >= 2.5x PyTorch fp32 img/s (stretch 3x), %s batch %d | native kernels, memory %s%s "
              "| %s | %s%s |" % (tag, NETS[net][0], b, memory, "" if memory == "fast" else " (beside)",
                                 "x%.2f" % x if x is not None else why, verdict(x, x is not None and x >= 2.5),
                                 "" if x is None else "; stretch %s" % ("met" if x >= 3 else "missed")))
    for net, b in nets:
        tag = "(3)" if net == "cifar" else "(5) ImageNet:"
        for isa in data["isa"]:
            if isa != "native" and net != "cifar":
                continue
            for be in ("native", "onednn"):
                x, why = ratio(rows, isa, Tt if isa == "native" else max(data["threads"]), net, b,
                               "engine fp32 " + be, "torch fp32")
                A("| %s our fp32 >= 1.0x PyTorch fp32 img/s, %s batch %d | fp32 conv %s, %s kernels | %s | %s |"
                  % (tag, NETS[net][0], b, be, isa, "x%.2f" % x if x is not None else why,
                     verdict(x, x is not None and x >= 1.0)))
    if 1 in data["threads"] and 2 in data["threads"]:
        for net, b in nets:
            tag = "(4)" if net == "cifar" else "(5) ImageNet:"
            for label in ENGINE_CONFS:
                e = efficiency(rows, net, b, label, 2)
                A("| %s parallel efficiency at 2 threads >= 0.9, %s batch %d | %s | %s | %s |" % (
                    tag, NETS[net][0], b, label[len("engine "):], "%.2f" % e if e is not None else
                    "%s at 1 or 2 threads" % rows.why("native", 2, net, b, label), verdict(e, e is not None and e >= 0.9)))
    else:
        A("| (4) parallel efficiency at 2 threads >= 0.9 | – | not measured: this run's threads are %s; run "
          "`bench/run_step_bench --threads 1,2` | – |" % ",".join(map(str, data["threads"])))
    A("")


def efficiency(rows, net, b, label, T):
    r1, rT = rows.res("native", 1, net, b, label), rows.res("native", T, net, b, label)
    if r1 and rT and r1["img_per_s"] > 0:
        return rT["img_per_s"] / (T * r1["img_per_s"])
    return None


def targets7(A, rows, data, Tt, batches):
    A("## Earlier targets, still measured (issue 7)")
    A("")
    A("The engine's row is CycleBNN with memory fast; CIFAR-10 ResNet-18; %d threads." % Tt)
    A("")
    A("| target | kernels | measured | |")
    A("|---|---|---:|---|")
    for isa in data["isa"]:
        T = Tt if isa == "native" else max(data["threads"])
        for b in batches:
            for den, thr in (("torch fakequant", 2.0), ("torch fp32", 1.3)):
                x, why = ratio(rows, isa, T, "cifar", b, "engine cyclebnn fast", den)
                A("| CycleBNN step >= %gx PyTorch %s img/s, batch %d | %s | %s | %s |" % (
                    thr, den[len("torch "):].replace("fakequant", "fake-quant"), b, isa,
                    "x%.2f" % x if x is not None else why, verdict(x, x is not None and x >= thr)))
        b = max(batches)
        x, why = ratio(rows, isa, T, "cifar", b, "engine cyclebnn fast", "torch fakequant", "peak_rss_mib")
        A("| peak RSS <= 0.5x PyTorch fake-quant, batch %d | %s | %s | %s |" % (
            b, isa, "x%.2f" % x if x is not None else why, verdict(x, x is not None and x <= 0.5)))
        e, t = rows.res(isa, T, "cifar", b, "engine cyclebnn fast"), rows.res(isa, T, "cifar", b, "torch fakequant")
        if e and t and "setup_rss_mib" in e and "setup_rss_mib" in t and t["peak_rss_mib"] > t["setup_rss_mib"]:
            y = (e["peak_rss_mib"] - e["setup_rss_mib"]) / (t["peak_rss_mib"] - t["setup_rss_mib"])
            A("| (the same without each process's memory before the model: libraries, data) | %s | x%.2f | "
              "(for reference) |" % (isa, y))
    k = data.get("kernels")
    if k is None:
        A("| kernel targets | – | not measured (`--no-kernels`) | – |")
    else:
        p = k["parsed"]
        if "bin_vs_fp32" in p:
            best, avx2 = p["bin_vs_fp32"][0], p["bin_vs_fp32"][1]
            A("| binary conv forward >= 3x our fp32 conv (CIFAR RN18 binary layers, batch 16) | native | x%.2f | %s |"
              % (best, verdict(best, best >= 3)))
            A("| same | avx2 | x%.2f | %s |" % (avx2, verdict(avx2, avx2 >= 3)))
        else:
            A("| binary conv forward >= 3x our fp32 conv | – | %s | – |" % k["errors"].get(
                "bconv_packed", "its output did not parse"))
        if "bwd_int8_vs_fp32" in p:
            fp, name, i8, x = p["bwd_int8_vs_fp32"]
            A("| backward products: integer kernels vs fp32 GEMMs (`conv2d_backward`), error quantization included, "
              "same layers | %s | x%.2f (%.1f vs %.1f ms) | (measured, no target) |" % (name, x, i8, fp))
        else:
            A("| backward products: integer kernels vs fp32 GEMMs | – | %s | – |" % k["errors"].get(
                "bconv_bwd", "its output did not parse"))
        for key, net in (("", "CIFAR"), ("_imagenet", "ImageNet")):
            if "conv_vs_sgemm" + key not in p:
                A("| our fp32 conv >= 80%% of BLAS sgemm (%s RN18 convs) | – | %s | – |" % (
                    net, k["errors"].get("conv_throughput" + key, "its output did not parse")))
                continue
            fwd_gf, fwd_sg, fwd_r, bwd_gf, bwd_sg, bwd_r = p["conv_vs_sgemm" + key]
            A("| our fp32 conv (native) >= 80%% of BLAS sgemm, forward (all %s RN18 convs, batch 16) | OpenBLAS | "
              "%.0f%% (%.1f vs %.1f GF/s) | %s |" % (net, 100 * fwd_r, fwd_gf, fwd_sg, verdict(fwd_r, fwd_r >= 0.8)))
            A("| same, backward (dW + dX) | OpenBLAS | %.0f%% (%.1f vs %.1f GF/s) | %s |"
              % (100 * bwd_r, bwd_gf, bwd_sg, verdict(bwd_r, bwd_r >= 0.8)))
    A("")


def memory_table(A, rows, Tt, net, b):
    A("## Training memory: %s, batch %d (native kernels, %d threads)" % (NETS[net][2], b, Tt))
    A("")
    A("MiB per arena (as `model_train_bytes` rounds them; other = any arena beyond the five). Ratios: the "
      "training arenas to the fp32 twin's, the peak RSS to our fp32 net's (native conv) in its own process.")
    A("")
    A("| configuration | acts | dacts | saved | scratch | noise | other | training arenas | × fp32 twin | "
      "peak RSS | × our fp32 peak RSS | oneDNN workspace |")
    A("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    fp = rows.res("native", Tt, net, b, "engine fp32 native")
    twin = None
    for label in ENGINE_CONFS:
        it = rows.get("native", Tt, net, b, label)
        if not it:
            continue
        r = it.get("result")
        if not r or "arena_bytes" not in r:
            A("| %s | %s |%s" % (label[len("engine "):], it.get("error") or "no arena split in its output",
                                 " |" * 10))
            continue
        ab = r["arena_bytes"]
        twin = r.get("fp32_twin_train_bytes") or twin
        x = r.get("train_ratio_fp32_twin")
        rss = r["peak_rss_mib"] / fp["peak_rss_mib"] if fp else None
        ws = r.get("onednn_workspace_bytes")
        A("| %s | %s | %.1f | %s | %s | %s | %s |" % (
            label[len("engine "):], " | ".join("%.1f" % mib(ab[k]) for k in ("acts", "dacts", "saved", "scratch",
                                                                             "noise", "other")),
            mib(r["train_bytes"]), "x%.3f" % x if x is not None else "–", "%.0f" % r["peak_rss_mib"],
            "x%.3f" % rss if rss is not None else "–", "%.1f" % mib(ws) if ws else "–"))
    A("")
    if twin:
        A("The fp32 twin's training arenas: %.1f MiB%s." % (
            mib(twin), "" if not fp else " (our fp32 native row, allocated: %.1f MiB)" % mib(fp["train_bytes"])))
        A("")


def scaling_table(A, rows, threads, nets):
    if len(threads) < 2:
        return
    A("## Scaling: img/s at each thread count, native kernels")
    A("")
    if 1 in threads:
        A("Parallel efficiency at T threads = img/s(T) / (T × img/s(1)).")
    else:
        A("Efficiency needs a run at 1 thread (`--threads 1,...`).")
    A("")
    higher = [T for T in threads if T > 1]
    A("| model | batch | configuration | " + " | ".join("T=%d img/s" % T for T in threads) +
      (" | " + " | ".join("efficiency T=%d" % T for T in higher) if 1 in threads else "") + " |")
    A("|---|---:|---|" + "---:|" * (len(threads) + (len(higher) if 1 in threads else 0)))
    for net, b in nets:
        for label in CONFS:
            if not any(rows.get("native", T, net, b, label) for T in threads):
                continue
            cells = []
            for T in threads:
                r = rows.res("native", T, net, b, label)
                cells.append(ips_cell(r) if r else rows.why("native", T, net, b, label))
            if 1 in threads:
                for T in higher:
                    e = efficiency(rows, net, b, label, T)
                    cells.append("%.2f" % e if e is not None else "–")
            A("| %s | %d | %s | %s |" % (NETS[net][0], b, label, " | ".join(cells)))
    A("")


PHASES = [("loader", "loader"), ("forward", "forward, all layers"),
          ("bconv_weight_prep", "  binary convs: E2 + k-bit weights + sign + pack"),
          ("bconv_act_prep", "  binary convs: E3 + k-bit activations + codes + pack"),
          ("bconv_conv", "  binary convs: 1-bit conv + alpha"),
          ("backward", "backward, all layers"),
          ("bconv_err_quant", "  binary convs: dalpha (+ error quantization on the fp32 path)"),
          ("bconv_products", "  binary convs: error quantization to codes + the two backward products"),
          ("bconv_jacobians", "  binary convs: pseudo-gradients, E2/E3 Jacobians"),
          ("optimizer", "optimizer (AdamW)")]


def phase_tables(A, rows, isas, Tt, threads, nets):
    for isa in isas:
        T = Tt if isa == "native" else max(threads)
        cols = [(net, b, m) for net, b in nets for m in ("fast", "lean")
                if rows.res(isa, T, net, b, "engine cyclebnn " + m)]
        if not cols:
            continue
        A("## Where the engine's CycleBNN step goes (%s kernels, %d threads, median ms per step)" % (isa, T))
        A("")
        A("| phase | " + " | ".join("%s b%d %s" % ("CIFAR" if n == "cifar" else "ImageNet", b, m)
                                   for n, b, m in cols) + " |")
        A("|---|" + "---:|" * len(cols))
        for key, label in PHASES:
            vals = [num(rows.res(isa, T, n, b, "engine cyclebnn " + m)["ms"].get(key)) for n, b, m in cols]
            A("| %s | %s |" % (label, " | ".join(vals)))
        A("")


def carry_hand_sections(L, out):
    """sections written by hand after the generated ones (the detector's step,
    bench/det_step) are carried over from the file written over (or, for a
    report written elsewhere, bench/RESULTS.md): they start at a "## " line
    that says "written by hand" """
    old = None
    for path in (out, os.path.join(ROOT, "bench", "RESULTS.md")):
        try:
            with open(path) as f:
                old = f.read()
            break
        except OSError:
            pass
    if old is None:
        return
    at = old.find("\n## ", 0)
    while at >= 0:
        end = old.find("\n", at + 1)
        if "written by hand" in old[at:end]:
            L.append(old[at:].rstrip("\n"))
            return
        at = old.find("\n## ", at + 1)


if __name__ == "__main__":
    sys.exit(main())
