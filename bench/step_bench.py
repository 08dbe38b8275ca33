#!/usr/bin/python3
"""Runs the engine's and PyTorch's training steps side by side and the kernel
benchmarks, then writes bench/RESULTS.md. Called by bench/run_step_bench (which
builds the engine and makes sure python3-torch is installed); stdlib only.

    bench/step_bench.py BUILD_DIR [--batches 16,64] [--reps 5] [--isa native,avx2] [--quick] [--out FILE]

Every configuration runs in its own process (so its peak RSS is its own), in
the order engine, torch fake-quant, torch fp32, engine fp32 for each batch;
each process reports the median img/s of --reps repetitions. Kernel
benchmarks: build/bench/bench_bconv_packed (binary forward vs our fp32 conv)
and build/bench/conv_throughput (our fp32 conv vs the BLAS's sgemm alone, on the
CIFAR and the ImageNet ResNet-18 convs).

--isa avx2 repeats the training steps with both sides held to AVX2 (the machine
type the issue was written for, Zen 1, has no AVX-512): the engine's kernel
tables (CBNN_SIMD=avx2), PyTorch's oneDNN (ONEDNN_MAX_CPU_ISA=AVX2) and ATen
kernels (ATEN_CPU_CAPABILITY=avx2); OpenBLAS already runs its Haswell kernels here.
"""

# environment of each ISA setting (added to the common one)
ISA_ENV = {
    "native": {},
    "avx2": {"CBNN_SIMD": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2",
             "ATEN_CPU_CAPABILITY": "avx2", "OPENBLAS_CORETYPE": "Haswell"},
}
import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, env):
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        raise SystemExit("step_bench: command failed (%d): %s" % (p.returncode, " ".join(cmd)))
    return p.stdout, p.stderr


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit("step_bench: no JSON line in output:\n" + text)


def normalize(r):
    """the peer's JSON (img_per_s = the list of repetitions, *_ms keys) in the engine's form"""
    if isinstance(r.get("img_per_s"), list):
        r["reps_img_per_s"] = r["img_per_s"]
        r["img_per_s"] = r["img_per_s_median"]
        r["ms"] = {k: r[k + "_ms"] for k in ("forward", "backward", "optimizer") if k + "_ms" in r}
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
    isa = [x for x in ("avx2", "fma", "avx512f", "avx512_vpopcntdq", "avx512_vnni", "avx_vnni") if " %s " % x in " %s " % flags]
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = "%.0f GiB" % (int(f.readline().split()[1]) / 1048576)
    except OSError:
        pass
    return "%s, %d logical CPUs, %s, ISA: %s; %s %s" % (model, os.cpu_count() or 0, mem, " ".join(isa),
                                                     platform.system(), platform.release())


def git_rev():
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except OSError:
        return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build")
    ap.add_argument("--batches", default="16,64")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--isa", default="native,avx2", help="native and/or avx2 (both sides held to AVX2)")
    ap.add_argument("--quick", action="store_true", help="2 reps of few steps, no kernel benches: a smoke run")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    a = ap.parse_args()
    if a.quick:
        a.reps = 2
    batches = [int(b) for b in a.batches.split(",")]
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OMP_WAIT_POLICY="PASSIVE")
    exe = os.path.join(a.build, "bench", "train_step")
    peer = os.path.join(ROOT, "bench", "peer", "torch_step.py")
    t_start = datetime.datetime.now(datetime.timezone.utc)

    isas = [x for x in a.isa.split(",") if x]
    for x in isas:
        if x not in ISA_ENV:
            raise SystemExit("step_bench: unknown --isa '%s' (native, avx2)" % x)
    rows = {}   # (isa, batch, name) -> json
    cmds = []
    for isa in isas:
        env_isa = dict(env, **ISA_ENV[isa])
        prefix = " ".join("%s=%s" % kv for kv in sorted(ISA_ENV[isa].items()))
        for b in batches:
            steps = 2 if a.quick else (8 if b <= 16 else 3)
            common = ["--batch", str(b), "--reps", str(a.reps), "--threads", str(a.threads)]
            confs = [
                ("engine cyclebnn", [exe, "--mode", "cyclebnn", "--steps", str(steps), "--warmup", "2"] + common + ["--json"]),
                ("torch fakequant", ["/usr/bin/python3", peer, "--mode", "fakequant", "--steps", str(steps), "--warmup", "2"] + common + ["--json"]),
                ("torch fp32", ["/usr/bin/python3", peer, "--mode", "fp32", "--steps", str(steps), "--warmup", "2"] + common + ["--json"]),
                ("engine fp32", [exe, "--mode", "fp32", "--steps", str(steps), "--warmup", "2"] + common + ["--json"]),
            ]
            for name, cmd in confs:
                out, _ = run(cmd, env_isa)
                rows[(isa, b, name)] = r = normalize(last_json(out))
                line = " ".join(os.path.relpath(c, ROOT) if os.path.isabs(c) and c.startswith(ROOT) else c for c in cmd)
                cmds.append((prefix + " " + line).strip())
                print("%s batch %d %-16s %8.2f img/s  peak RSS %7.1f MiB" % (isa, b, name, r["img_per_s"],
                      r["peak_rss_mib"]), file=sys.stderr, flush=True)

    kernels = {}
    if not a.quick:
        out, _ = run([os.path.join(a.build, "bench", "bench_bconv_packed"), str(max(a.reps, 5))], env)
        kernels["bconv_packed"] = out
        m = re.search(r"total: fp32 ([\d.]+) ms, packed best ([\d.]+) ms \(x([\d.]+)\), packed avx2 ([\d.]+) ms \(x([\d.]+)\)", out)
        if m:
            kernels["bin_vs_fp32"] = (float(m.group(3)), float(m.group(5)), float(m.group(1)), float(m.group(2)))
        out, _ = run([os.path.join(a.build, "bench", "bench_bconv_bwd"), str(max(a.reps, 5))], env)
        kernels["bconv_bwd"] = out
        m = re.search(r"whole step fp32 ([\d.]+) ms -> int8 (\S+) ([\d.]+) ms \(x([\d.]+)\)", out)
        if m:
            kernels["bwd_int8_vs_fp32"] = (float(m.group(1)), m.group(2), float(m.group(3)), float(m.group(4)))
        for key, extra in (("", []), ("_imagenet", ["--imagenet"])):
            out, _ = run([os.path.join(a.build, "bench", "conv_throughput"), str(max(a.reps, 5))] + extra, env)
            kernels["conv_throughput" + key] = out
            m = re.search(r"all layers\s+[\d.]+ \|\s+([\d.]+)\s+([\d.]+)\s+([\d.]+) \|\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out)
            if m:
                kernels["conv_vs_sgemm" + key] = tuple(float(m.group(i)) for i in range(1, 7))

    write_report(a, isas, batches, rows, kernels, cmds, t_start)
    print("step_bench: wrote %s" % os.path.relpath(a.out, ROOT), file=sys.stderr)


def verdict(ok):
    return "**met**" if ok else "**missed**"


ISA_TITLE = {
    "native": "this machine's best kernels on both sides (engine: AVX-512 VPOPCNTDQ / VNNI tables; PyTorch: oneDNN's AVX-512)",
    "avx2": "both sides held to AVX2 (`CBNN_SIMD=avx2`, `ONEDNN_MAX_CPU_ISA=AVX2`, `ATEN_CPU_CAPABILITY=avx2`), as on the AVX2-only machine type the issue names",
}


def write_report(a, isas, batches, rows, kernels, cmds, t_start):
    L = []
    date = t_start.strftime("%Y-%m-%d %H:%M UTC")
    L.append("# Benchmark results: the engine beside PyTorch")
    L.append("")
    L.append("Generated by `bench/run_step_bench%s` on %s (git %s); do not edit by hand "
             "(bench/README.md discusses them)." % (" --quick" if a.quick else "", date, git_rev()))
    L.append("")
    L.append("Machine: %s. Threads: %d (`OMP_NUM_THREADS`, `torch.set_num_threads`). Model: CIFAR-10 ResNet-18 "
             "(method.md 4.1), 32x32 inputs, AdamW; the engine's CycleBNN at k = 4 bits, error 8 bits, faithful "
             "options (packed forward, integer backward products: the defaults). The PyTorch peer "
             "(`bench/peer/torch_step.py`, torch 1.13 from Debian) trains the same architecture with the authors' "
             "semantics emulated in fp32 (fake-quant), and the plain fp32 net." % (machine(), a.threads))
    L.append("")
    L.append("img/s: median of %d repetitions, each process one configuration; the training step without data "
             "loading on both sides (the engine's loader time, CIFAR-10 augmentation on synthetic images, is "
             "the `loader` column). Phase columns: median ms per step. Peak RSS: the process's (getrusage), "
             "libraries included (PyTorch's take about 280 MiB before the first step)." % a.reps)
    for isa in isas:
        L.append("")
        L.append("## Training step: %s" % ISA_TITLE[isa])
        L.append("")
        L.append("| batch | configuration | img/s | forward ms | backward ms | optimizer ms | loader ms | peak RSS MiB | before the model MiB |")
        L.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for b in batches:
            for name in ("engine cyclebnn", "torch fakequant", "torch fp32", "engine fp32"):
                r = rows.get((isa, b, name))
                if not r:
                    continue
                ms = r.get("ms", {})
                def f(k):
                    v = ms.get(k)
                    return "%.1f" % v if isinstance(v, (int, float)) else "–"
                base = r.get("setup_rss_mib")
                L.append("| %d | %s | %.2f | %s | %s | %s | %s | %.0f | %s |" % (b, name, r["img_per_s"], f("forward"),
                         f("backward"), f("optimizer"), f("loader"), r["peak_rss_mib"],
                         "%.0f" % base if isinstance(base, (int, float)) else "–"))
    L.append("")
    L.append("## Targets (issue 7)")
    L.append("")
    L.append("| target | kernels | measured | |")
    L.append("|---|---|---:|---|")
    for isa in isas:
        for b in batches:
            e, fq, fp = (rows.get((isa, b, n)) for n in ("engine cyclebnn", "torch fakequant", "torch fp32"))
            if e and fq:
                x = e["img_per_s"] / fq["img_per_s"]
                L.append("| CycleBNN step >= 2x PyTorch fake-quant img/s, batch %d | %s | x%.2f | %s |" % (b, isa, x, verdict(x >= 2)))
            if e and fp:
                x = e["img_per_s"] / fp["img_per_s"]
                L.append("| CycleBNN step >= 1.3x PyTorch fp32 img/s, batch %d | %s | x%.2f | %s |" % (b, isa, x, verdict(x >= 1.3)))
        if 64 in batches and rows.get((isa, 64, "engine cyclebnn")) and rows.get((isa, 64, "torch fakequant")):
            x = rows[(isa, 64, "engine cyclebnn")]["peak_rss_mib"] / rows[(isa, 64, "torch fakequant")]["peak_rss_mib"]
            L.append("| peak RSS <= 0.5x PyTorch fake-quant, batch 64 | %s | x%.2f | %s |" % (isa, x, verdict(x <= 0.5)))
            e64, t64 = rows[(isa, 64, "engine cyclebnn")], rows[(isa, 64, "torch fakequant")]
            if "setup_rss_mib" in e64 and "setup_rss_mib" in t64:
                y = (e64["peak_rss_mib"] - e64["setup_rss_mib"]) / (t64["peak_rss_mib"] - t64["setup_rss_mib"])
                L.append("| (the same without each process's memory before the model: libraries, data) | %s | x%.2f | (for reference) |"
                         % (isa, y))
    if "bin_vs_fp32" in kernels:
        best, avx2, fp, pk = kernels["bin_vs_fp32"]
        L.append("| binary conv forward >= 3x our fp32 conv (CIFAR RN18 binary layers, batch 16) | native | x%.2f | %s |"
                 % (best, verdict(best >= 3)))
        L.append("| same | avx2 | x%.2f | %s |" % (avx2, verdict(avx2 >= 3)))
    if "bwd_int8_vs_fp32" in kernels:
        fp, name, i8, x = kernels["bwd_int8_vs_fp32"]
        L.append("| backward products: integer kernels vs fp32 GEMMs (`conv2d_backward`), error quantization included, same layers | %s | x%.2f (%.1f vs %.1f ms) | (measured, no target) |"
                 % (name, x, i8, fp))
    for key, net in (("", "CIFAR"), ("_imagenet", "ImageNet")):
        if "conv_vs_sgemm" + key not in kernels:
            continue
        fwd_gf, fwd_sg, fwd_r, bwd_gf, bwd_sg, bwd_r = kernels["conv_vs_sgemm" + key]
        L.append("| our fp32 conv >= 80%% of BLAS sgemm, forward (all %s RN18 convs, batch 16) | OpenBLAS Haswell | %.0f%% (%.1f vs %.1f GF/s) | %s |"
                 % (net, 100 * fwd_r, fwd_gf, fwd_sg, verdict(fwd_r >= 0.8)))
        L.append("| same, backward (dW + dX) | OpenBLAS Haswell | %.0f%% (%.1f vs %.1f GF/s) | %s |"
                 % (100 * bwd_r, bwd_gf, bwd_sg, verdict(bwd_r >= 0.8)))
    L.append("")
    for isa in isas:
        L.append("## Where the engine's CycleBNN step goes (%s kernels, median ms per step)" % isa)
        L.append("")
        keys = [("loader", "loader (CIFAR-10 augmentation)"), ("forward", "forward, all layers"),
                ("bconv_weight_prep", "  binary convs: E2 + k-bit weights + sign + pack"),
                ("bconv_act_prep", "  binary convs: E3 + k-bit activations + codes + pack"),
                ("bconv_conv", "  binary convs: 1-bit conv + alpha"),
                ("backward", "backward, all layers"),
                ("bconv_err_quant", "  binary convs: dalpha (+ error quantization on the fp32 path)"),
                ("bconv_products", "  binary convs: error quantization to codes + the two backward products"),
                ("bconv_jacobians", "  binary convs: pseudo-gradients, E2/E3 Jacobians"),
                ("optimizer", "optimizer (AdamW)")]
        L.append("| phase | " + " | ".join("batch %d" % b for b in batches) + " |")
        L.append("|---|" + "---:|" * len(batches))
        for k, label in keys:
            vals = []
            for b in batches:
                r = rows.get((isa, b, "engine cyclebnn"))
                v = r["ms"].get(k) if r else None
                vals.append("%.1f" % v if isinstance(v, (int, float)) else "–")
            L.append("| %s | %s |" % (label, " | ".join(vals)))
        L.append("")
    L.append("## Commands")
    L.append("")
    L.append("```")
    L.append("bench/run_step_bench   # builds, installs python3-torch if missing, runs all of the below")
    for c in cmds:
        L.append(c)
    if kernels:
        L.append("build/bench/bench_bconv_packed %d" % max(a.reps, 5))
        L.append("build/bench/bench_bconv_bwd %d" % max(a.reps, 5))
        L.append("build/bench/conv_throughput %d" % max(a.reps, 5))
        L.append("build/bench/conv_throughput %d --imagenet" % max(a.reps, 5))
    L.append("```")
    L.append("")
    L.append("Environment: `OMP_NUM_THREADS=%d OMP_WAIT_POLICY=PASSIVE`." % a.threads)
    for name in ("bconv_packed", "bconv_bwd", "conv_throughput", "conv_throughput_imagenet"):
        if name in kernels:
            L.append("")
            L.append("## Kernel benchmark output: %s" % name)
            L.append("")
            L.append("```")
            L.append(kernels[name].rstrip())
            L.append("```")
    # sections written by hand after the generated ones (the detector's step,
    # bench/det_step) are carried over: they start at a "## " line that says
    # "written by hand"
    try:
        with open(a.out) as f:
            old = f.read()
        at = old.find("\n## ", 0)
        while at >= 0:
            end = old.find("\n", at + 1)
            if "written by hand" in old[at:end]:
                L.append(old[at:].rstrip("\n"))
                break
            at = old.find("\n## ", at + 1)
    except OSError:
        pass
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(L) + "\n")
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
