/* A C face for Google Benchmark (C++), so benchmarks of the engine can be
 * written in C like the rest of it.
 *
 *   static void bm(GbState *st, void *arg) {
 *       ...setup (not timed)...
 *       while (gb_keep_running(st)) work(arg);
 *   }
 *   gb_register("name", bm, arg, flops_per_iteration);
 *   return gb_run(argc, argv);
 *
 * Every benchmark reports wall-clock time (UseRealTime): the BLAS and our
 * OpenMP loops run on several threads, and CPU time would add them up. */
#ifndef CBNN_GBENCH_SHIM_H
#define CBNN_GBENCH_SHIM_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct GbState GbState; /* opaque: a benchmark::State */
typedef void (*GbFn)(GbState *st, void *arg);

/* register fn under name (copied); arg is passed through and must outlive
 * gb_run. flops_per_iter > 0 adds a FLOP/s rate counter. */
void gb_register(const char *name, GbFn fn, void *arg, double flops_per_iter);
/* the same with a named rate counter: ops_per_iter per iteration reported as
 * `counter` per second (k = 1000), and when peak > 0 a `peak_share` column:
 * the rate over peak (ops per second) */
void gb_register_rate(const char *name, GbFn fn, void *arg, double ops_per_iter, const char *counter, double peak);
/* the timing loop condition: true while the library wants more iterations */
int gb_keep_running(GbState *st);
/* exclude a stretch inside the loop from the timing */
void gb_pause_timing(GbState *st);
void gb_resume_timing(GbState *st);
/* a key/value line in the report header (e.g. the BLAS core) */
void gb_add_context(const char *key, const char *value);
/* parse --benchmark_* flags, run what was registered; 0 on success */
int gb_run(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif
