/* Throughput probes of this machine (bench/peak.c): operations per second on
 * all OpenMP threads, with the widest instructions the CPU has; *how names
 * them. 0 when the probe has no variant for this CPU. */
#ifndef CBNN_PEAK_H
#define CBNN_PEAK_H

double peak_fp32_flops(const char **how); /* fp32 FMA: 2 flops each */
double peak_bitmacs(const char **how);    /* popcount of 64-bit words, x 64 */
double peak_int8_macs(const char **how);  /* u8 x s8 multiply-accumulates */

#endif
