/*  =========================================================================
    bench-time.h - the clock and the samples' median of the benchmarks, shared
    by bench/zproc-bench.c and bench/redis-ref.c (which compare.sh builds
    alone, with gcc: so a header, not a library)
    =========================================================================
*/

#ifndef BENCH_TIME_H_INCLUDED
#define BENCH_TIME_H_INCLUDED

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

//  Now on the monotonic clock, ns
static inline uint64_t
s_now_ns (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (uint64_t) now.tv_sec * 1000000000ULL + (uint64_t) now.tv_nsec;
}

//  qsort's order of uint64_t samples, smallest first
static inline int
s_compare_u64 (const void *left, const void *right)
{
    uint64_t a = *(const uint64_t *) left, b = *(const uint64_t *) right;
    return a < b? -1: a > b? 1: 0;
}

//  The median of count samples, in ns; sorts them
static inline uint64_t
s_median_ns (uint64_t *samples, size_t count)
{
    qsort (samples, count, sizeof (uint64_t), s_compare_u64);
    return count % 2? samples [count / 2]
                    : (samples [count / 2 - 1] + samples [count / 2]) / 2;
}

#endif
