/* What every benchmark here needs: a monotonic clock and medians. */
#pragma once

/* CLOCK_MONOTONIC in seconds. */
double bench_now(void);
/* Median of v[0..n) (sorts v). */
double bench_median(double *v, int n);
