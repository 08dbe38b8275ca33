/* The CPU features the kernel tables may use: probed once, capped once by the
 * environment, lowered on demand by tests. Every table chooser asks
 * cpu_features() (a load of a cached mask), so one switch sets every family:
 *
 *   CBNN_SIMD=native   everything this CPU has (the default; also when unset or empty)
 *   CBNN_SIMD=avx512   the AVX-512 tables and below, no AVX-VNNI (an Ice Lake)
 *   CBNN_SIMD=avx-vnni AVX2 + AVX-VNNI, no AVX-512 (an Alder Lake)
 *   CBNN_SIMD=avx2     AVX2 + FMA + POPCNT only (a Haswell, Zen 1-3)
 *   CBNN_SIMD=c        the C tables (also "none"); CBNN_NO_SIMD=1 does the same
 *
 * A cap never adds what the CPU lacks. Any other CBNN_SIMD value is an error:
 * cpu_env_error() gives one line naming the variable and the accepted values,
 * and until a main acts on it the kernels use the C tables. The library does
 * not exit: every main that runs kernels checks cpu_env_error() first and
 * exits with status 2 and that line (a typo must not silently benchmark the
 * wrong kernels). Every table gives bitwise the same results, so the choice
 * changes speed only. */
#ifndef CBNN_CPU_H
#define CBNN_CPU_H

enum {
    CPU_POPCNT = 1u << 0,
    CPU_AVX2 = 1u << 1,
    CPU_FMA = 1u << 2,
    CPU_AVX512F = 1u << 3,
    CPU_AVX512BW = 1u << 4,
    CPU_AVX512VL = 1u << 5,
    CPU_AVX512VPOPCNTDQ = 1u << 6,
    CPU_AVX512VNNI = 1u << 7,
    CPU_AVXVNNI = 1u << 8, /* VEX vpdpbusd (CPUID leaf 7 subleaf 1, EAX bit 4) */
};

/* the levels CBNN_SIMD names (each a mask of the above); the test harness runs every kernel at each */
#define CPU_LEVEL_C 0u
#define CPU_LEVEL_AVX2 (CPU_POPCNT | CPU_AVX2 | CPU_FMA)
#define CPU_LEVEL_AVXVNNI (CPU_LEVEL_AVX2 | CPU_AVXVNNI)
#define CPU_LEVEL_AVX512                                                                                       \
    (CPU_LEVEL_AVX2 | CPU_AVX512F | CPU_AVX512BW | CPU_AVX512VL | CPU_AVX512VPOPCNTDQ | CPU_AVX512VNNI)
#define CPU_LEVEL_NATIVE (~0u)

/* what the kernels may use: probed & the environment's cap & the test mask.
 * Thread-safe; the first call probes. */
unsigned cpu_features(void);
/* what the CPU has (ignoring CBNN_SIMD / CBNN_NO_SIMD and the test mask) */
unsigned cpu_detected(void);
/* Tests: cpu_features() becomes probed & cap & mask. It can only LOWER what the
 * CPU and the environment allow; CPU_LEVEL_NATIVE restores. Tables that cache
 * per level (bconv_packed_fns, bconv_bwd_int8_fns) follow on their next call.
 * Not meant to race with running kernels: set it between calls. */
void cpu_set_mask_for_tests(unsigned mask);
/* NULL when CBNN_SIMD / CBNN_NO_SIMD are valid, else the one-line message
 * (the kernels then run the C tables; a main should exit 2 with it) */
const char *cpu_env_error(void);
/* the names of the bits of mask, space separated ("avx2 fma popcnt"; "none" for 0) */
const char *cpu_feature_names(unsigned mask, char *buf, unsigned len);

#endif
