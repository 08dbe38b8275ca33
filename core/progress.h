/* Progress lines with throughput and ETA for long loops. */
#ifndef CBNN_PROGRESS_H
#define CBNN_PROGRESS_H

#include <stdio.h>

double now_seconds(void);  /* monotonic clock */
/* "1h02m", "3m05s", "12s" */
void format_duration(char *buf, size_t n, double seconds);

#endif
