/* CPU features, probed once (core/cpu.h). */
#include "cpu.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define CPU_X86 1
#endif

static const struct {
    const char *name;
    unsigned mask;
} simd_values[] = {
    {"native", CPU_LEVEL_NATIVE}, {"avx512", CPU_LEVEL_AVX512}, {"avx-vnni", CPU_LEVEL_AVXVNNI},
    {"avx2", CPU_LEVEL_AVX2},     {"c", CPU_LEVEL_C},           {"none", CPU_LEVEL_C},
};
#define N_SIMD_VALUES (sizeof simd_values / sizeof simd_values[0])

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static unsigned detected, allowed; /* written once under probe_once, read-only after */
static char env_error[256];        /* empty: the environment is valid */
static _Atomic unsigned test_mask = CPU_LEVEL_NATIVE;

static unsigned probe(void) {
    unsigned f = 0;
#ifdef CPU_X86
    /* __builtin_cpu_supports also checks that the OS saves the YMM/ZMM state */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("popcnt")) f |= CPU_POPCNT;
    if (__builtin_cpu_supports("fma")) f |= CPU_FMA;
    if (__builtin_cpu_supports("avx2")) {
        f |= CPU_AVX2;
        /* AVX-VNNI: CPUID.(EAX=7, ECX=1):EAX bit 4, read directly (older compilers'
         * __builtin_cpu_supports do not know the name; the YMM state is enabled since
         * AVX2 is usable) */
        unsigned a = 0, b = 0, c = 0, d = 0;
        if (__get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4))) f |= CPU_AVXVNNI;
    }
    if (__builtin_cpu_supports("avx512f")) f |= CPU_AVX512F;
    if (__builtin_cpu_supports("avx512bw")) f |= CPU_AVX512BW;
    if (__builtin_cpu_supports("avx512vl")) f |= CPU_AVX512VL;
    if (__builtin_cpu_supports("avx512vpopcntdq")) f |= CPU_AVX512VPOPCNTDQ;
    if (__builtin_cpu_supports("avx512vnni")) f |= CPU_AVX512VNNI;
#endif
    return f;
}

/* the cap of CBNN_NO_SIMD / CBNN_SIMD; sets env_error on an unknown value */
static unsigned env_cap(void) {
    unsigned cap = CPU_LEVEL_NATIVE;
    const char *lim = getenv("CBNN_SIMD"), *no = getenv("CBNN_NO_SIMD");
    if (lim && *lim) {
        size_t i = 0;
        while (i < N_SIMD_VALUES && strcasecmp(lim, simd_values[i].name) != 0) i++;
        if (i == N_SIMD_VALUES) {
            /* the C tables until a main reports it and stops: the library never
             * exits, and the C tables need no CPU feature at all */
            cap = CPU_LEVEL_C;
            int n = snprintf(env_error, sizeof env_error, "CBNN_SIMD=%.64s: unknown value; accepted:", lim);
            for (i = 0; i < N_SIMD_VALUES && n > 0 && (size_t)n < sizeof env_error; i++)
                n += snprintf(env_error + n, sizeof env_error - (size_t)n, " %s", simd_values[i].name);
            if (n > 0 && (size_t)n < sizeof env_error)
                snprintf(env_error + n, sizeof env_error - (size_t)n, " (or unset; CBNN_NO_SIMD=1 = c)");
        } else {
            cap = simd_values[i].mask;
        }
    }
    if (no && *no && *no != '0') cap = CPU_LEVEL_C; /* as documented since the first table */
    return cap;
}

static void init(void) {
    detected = probe();
    allowed = detected & env_cap();
}

unsigned cpu_features(void) {
    pthread_once(&probe_once, init);
    return allowed & atomic_load_explicit(&test_mask, memory_order_relaxed);
}

unsigned cpu_detected(void) {
    pthread_once(&probe_once, init);
    return detected;
}

void cpu_set_mask_for_tests(unsigned mask) { atomic_store_explicit(&test_mask, mask, memory_order_relaxed); }

const char *cpu_env_error(void) {
    pthread_once(&probe_once, init);
    return env_error[0] ? env_error : NULL;
}

const char *cpu_feature_names(unsigned mask, char *buf, unsigned len) {
    static const char *names[] = {"popcnt",         "avx2",            "fma",         "avx512f",
                                  "avx512bw",       "avx512vl",        "avx512vpopcntdq", "avx512vnni",
                                  "avx-vnni"};
    size_t n = 0;
    if (len) buf[0] = 0;
    for (unsigned i = 0; i < sizeof names / sizeof names[0] && n < len; i++)
        if (mask & (1u << i)) {
            int k = snprintf(buf + n, len - n, "%s%s", n ? " " : "", names[i]);
            if (k > 0) n += (size_t)k;
        }
    if (!n && len) snprintf(buf, len, "none");
    return buf;
}
