/* Parallel loops on a small pool of worker threads.  Workers sleep on a
 * condition variable between loops (no spinning), the pool follows the
 * thread count of cvis_set_num_threads, and a loop started while another
 * one runs (from another user thread) simply runs serially.  OpenBLAS
 * runs one thread (gemm.h), so loop bodies may call BLAS; a loop started
 * inside another loop's body runs serially. */
#ifndef CVIS_CORE_PARALLEL_H
#define CVIS_CORE_PARALLEL_H

#include <stdint.h>

/* fn(ctx, begin, end) on disjoint ranges covering [0, n), each at least
 * `grain` long (except the last); returns when all are done. */
typedef void (*cvis__range_fn)(void *ctx, int64_t begin, int64_t end);
void cvis__parallel_for(int64_t n, int64_t grain, cvis__range_fn fn, void *ctx);
/* The same cut into exactly `ways` ranges (at most n).  The cut and each
 * range's index never depend on whether the pool is free (a busy pool runs
 * the ranges one after the other on the calling thread), so per-range
 * partial results sum to the same bits either way. */
void cvis__parallel_run(int64_t n, int ways, cvis__range_fn fn, void *ctx);

/* How many ranges a loop of n items with this grain would be cut into now
 * (for callers that keep one scratch buffer per range). */
int cvis__parallel_ways(int64_t n, int64_t grain);
/* The index of the range being run by the calling thread's current loop
 * body, in [0, ways). */
int cvis__parallel_index(void);

#endif
