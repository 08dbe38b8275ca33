// The C++ side of gbench_shim.h: each C callback becomes one registered
// benchmark whose body hands the benchmark::State to C as an opaque pointer.
#include "gbench_shim.h"

#include <benchmark/benchmark.h>

#include <string>

static benchmark::State *unwrap(GbState *st) { return reinterpret_cast<benchmark::State *>(st); }

extern "C" void gb_register(const char *name, GbFn fn, void *arg, double flops_per_iter) {
    benchmark::RegisterBenchmark(name, [fn, arg, flops_per_iter](benchmark::State &state) {
        fn(reinterpret_cast<GbState *>(&state), arg);
        if (flops_per_iter > 0)
            state.counters["FLOPS"] = benchmark::Counter(flops_per_iter, benchmark::Counter::kIsIterationInvariantRate,
                                                         benchmark::Counter::kIs1000);
    })
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
}

extern "C" void gb_register_rate(const char *name, GbFn fn, void *arg, double ops_per_iter, const char *counter,
                                 double peak) {
    std::string cname(counter);
    benchmark::RegisterBenchmark(name, [fn, arg, ops_per_iter, cname, peak](benchmark::State &state) {
        fn(reinterpret_cast<GbState *>(&state), arg);
        state.counters[cname] = benchmark::Counter(ops_per_iter, benchmark::Counter::kIsIterationInvariantRate,
                                                   benchmark::Counter::kIs1000);
        // (ops / peak) per iteration, as a rate: the fraction of the peak reached
        if (peak > 0)
            state.counters["peak_share"] =
                benchmark::Counter(ops_per_iter / peak, benchmark::Counter::kIsIterationInvariantRate);
    })
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
}

extern "C" int gb_keep_running(GbState *st) { return unwrap(st)->KeepRunning() ? 1 : 0; }

extern "C" void gb_pause_timing(GbState *st) { unwrap(st)->PauseTiming(); }

extern "C" void gb_resume_timing(GbState *st) { unwrap(st)->ResumeTiming(); }

extern "C" void gb_add_context(const char *key, const char *value) { benchmark::AddCustomContext(key, value); }

extern "C" int gb_run(int argc, char **argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
