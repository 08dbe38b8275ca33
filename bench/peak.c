/* Throughput probes of this machine, so kernel benchmarks can say what share
 * of the peak they reach. Each runs one instruction stream on every OpenMP
 * thread, with 8-12 independent accumulators (enough to hide latency), for
 * about 0.1 s, and returns operations per second for the whole machine. The
 * widest variant the CPU has is used (CBNN_SIMD=avx2 caps it as it caps the
 * engine's kernel tables). */
#include "peak.h"

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PEAK_X86 1
#endif

#define ITERS 2000000L

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int avx2_only(void) {
    const char *e = getenv("CBNN_SIMD");
    return e && !strcmp(e, "avx2");
}

static volatile double sink; /* keeps the accumulators alive */

#ifdef PEAK_X86
__attribute__((target("avx2,fma"))) static double fma256(long n) {
    __m256 a[10], x = _mm256_set1_ps(1.0000001f), y = _mm256_set1_ps(0.9999999f);
    for (int k = 0; k < 10; k++) a[k] = _mm256_set1_ps((float)k);
    for (long i = 0; i < n; i++)
        for (int k = 0; k < 10; k++) a[k] = _mm256_fmadd_ps(a[k], x, y);
    float s = 0;
    for (int k = 0; k < 10; k++) s += _mm256_cvtss_f32(a[k]);
    sink = s;
    return 2.0 * 8 * 10 * (double)n;
}
__attribute__((target("avx512f"))) static double fma512(long n) {
    __m512 a[10], x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(0.9999999f);
    for (int k = 0; k < 10; k++) a[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < n; i++)
        for (int k = 0; k < 10; k++) a[k] = _mm512_fmadd_ps(a[k], x, y);
    float s = 0;
    for (int k = 0; k < 10; k++) s += _mm512_cvtss_f32(a[k]);
    sink = s;
    return 2.0 * 16 * 10 * (double)n;
}
/* 64 bit-MACs per popcounted word (a ternary dot of 64 channels) */
__attribute__((target("popcnt"))) static double popcnt64(long n) {
    uint64_t a[8], c[8] = {0};
    for (int k = 0; k < 8; k++) a[k] = 0x9e3779b97f4a7c15ull * (uint64_t)(k + 1);
    for (long i = 0; i < n; i++)
        for (int k = 0; k < 8; k++) {
            a[k] ^= 0x5555555555555555ull; /* a new word each time, off the accumulator's chain */
            c[k] += (uint64_t)__builtin_popcountll(a[k]);
        }
    uint64_t s = 0;
    for (int k = 0; k < 8; k++) s += c[k];
    sink = (double)s;
    return 64.0 * 8 * (double)n;
}
__attribute__((target("avx512f,avx512vpopcntdq"))) static double popcnt512(long n) {
    __m512i a[8], c[8];
    const __m512i m = _mm512_set1_epi64(0x5555555555555555ll);
    for (int k = 0; k < 8; k++) a[k] = _mm512_set1_epi64((long long)(0x9e3779b97f4a7c15ull * (uint64_t)(k + 1))),
                                c[k] = _mm512_setzero_si512();
    for (long i = 0; i < n; i++)
        for (int k = 0; k < 8; k++) {
            a[k] = _mm512_xor_si512(a[k], m); /* new words each time, so nothing is hoisted */
            c[k] = _mm512_add_epi64(c[k], _mm512_popcnt_epi64(a[k]));
        }
    long long s = 0;
    for (int k = 0; k < 8; k++) s += _mm512_reduce_add_epi64(c[k]);
    sink = (double)s;
    return 64.0 * 8 * 8 * (double)n;
}
/* u8 x s8 multiply-accumulates */
__attribute__((target("avx2"))) static double maddubs256(long n) {
    __m256i a[8], x[8], y = _mm256_set1_epi8(-1), one = _mm256_set1_epi16(1), m = _mm256_set1_epi8(1);
    for (int k = 0; k < 8; k++) a[k] = _mm256_setzero_si256(), x[k] = _mm256_set1_epi8((char)(3 + k));
    for (long i = 0; i < n; i++)
        for (int k = 0; k < 8; k++) {
            x[k] = _mm256_xor_si256(x[k], m); /* new operands each time, so nothing is hoisted */
            a[k] = _mm256_add_epi32(a[k], _mm256_madd_epi16(_mm256_maddubs_epi16(x[k], y), one));
        }
    int s = 0;
    for (int k = 0; k < 8; k++) s += _mm256_extract_epi32(a[k], 0);
    sink = s;
    return 32.0 * 8 * (double)n;
}
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static double vnni512(long n) {
    __m512i a[10], x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(-1);
    for (int k = 0; k < 10; k++) a[k] = _mm512_setzero_si512();
    for (long i = 0; i < n; i++)
        for (int k = 0; k < 10; k++) a[k] = _mm512_dpbusd_epi32(a[k], x, y);
    long long s = 0;
    for (int k = 0; k < 10; k++) s += _mm512_reduce_add_epi32(a[k]);
    sink = (double)s;
    return 64.0 * 10 * (double)n;
}
#endif

/* ops/s of fn on every thread at once */
static double run_all(double (*fn)(long)) {
    double ops = 0;
    const double t0 = now();
    #pragma omp parallel reduction(+ : ops)
    ops += fn(ITERS / 4);
    return ops / (now() - t0);
}

double peak_fp32_flops(const char **how) {
#ifdef PEAK_X86
    __builtin_cpu_init();
    if (!avx2_only() && __builtin_cpu_supports("avx512f")) {
        *how = "avx512 fma";
        return run_all(fma512);
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *how = "avx2 fma";
        return run_all(fma256);
    }
#endif
    *how = "none";
    return 0;
}

double peak_bitmacs(const char **how) {
#ifdef PEAK_X86
    __builtin_cpu_init();
    if (!avx2_only() && __builtin_cpu_supports("avx512vpopcntdq")) {
        *how = "avx512 vpopcntq x 64";
        return run_all(popcnt512);
    }
    if (__builtin_cpu_supports("popcnt")) {
        *how = "popcnt x 64";
        return run_all(popcnt64);
    }
#endif
    *how = "none";
    return 0;
}

double peak_int8_macs(const char **how) {
#ifdef PEAK_X86
    __builtin_cpu_init();
    if (!avx2_only() && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw")) {
        *how = "avx512 vpdpbusd";
        return run_all(vnni512);
    }
    if (__builtin_cpu_supports("avx2")) {
        *how = "avx2 vpmaddubsw+vpmaddwd";
        return run_all(maddubs256);
    }
#endif
    *how = "none";
    return 0;
}
