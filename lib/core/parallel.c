/* The worker pool behind cvis__parallel_for. */
#include "parallel.h"

#include <pthread.h>

#include "cvis.h"

#define MAX_WORKERS 64

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;  /* one loop at a time */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static int n_workers;        /* started so far */
static uint64_t generation;  /* bumped for every loop */
static int pending;          /* ranges not finished */
static struct {
    cvis__range_fn fn;
    void *ctx;
    int64_t n;
    int ways;
} job;
static _Thread_local int range_index;

/* Range i of n items cut into `ways`: the same cut whoever runs it. */
static void run_one(cvis__range_fn fn, void *ctx, int64_t n, int ways, int i)
{
    int64_t per = n / ways, extra = n % ways;
    int64_t begin = i * per + (i < extra ? i : extra);
    int64_t end = begin + per + (i < extra ? 1 : 0);
    int saved = range_index;
    range_index = i;
    if (begin < end)
        fn(ctx, begin, end);
    range_index = saved;
}

static void run_range(int i)
{
    run_one(job.fn, job.ctx, job.n, job.ways, i);
}

static void *worker(void *arg)
{
    int me = (int)(intptr_t)arg; /* runs range me + 1 */
    uint64_t seen = 0;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (generation == seen)
            pthread_cond_wait(&start_cv, &lock);
        seen = generation;
        int mine = me + 1 < job.ways;
        pthread_mutex_unlock(&lock);
        if (mine)
            run_range(me + 1);
        pthread_mutex_lock(&lock);
        if (mine && --pending == 0)
            pthread_cond_signal(&done_cv);
    }
    return NULL;
}

int cvis__parallel_ways(int64_t n, int64_t grain)
{
    int threads = cvis_get_num_threads();
    if (threads > MAX_WORKERS + 1)
        threads = MAX_WORKERS + 1;
    if (grain < 1)
        grain = 1;
    int64_t by_grain = n / grain;
    int ways = threads < by_grain ? threads : (int)by_grain;
    return ways < 1 ? 1 : ways;
}

int cvis__parallel_index(void)
{
    return range_index;
}

void cvis__parallel_for(int64_t n, int64_t grain, cvis__range_fn fn, void *ctx)
{
    cvis__parallel_run(n, cvis__parallel_ways(n, grain), fn, ctx);
}

void cvis__parallel_run(int64_t n, int ways, cvis__range_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    if (ways > n)
        ways = (int)n;
    if (ways < 1)
        ways = 1;
    /* Serial when another thread's loop has the pool, but over the same
     * ranges with the same indices: callers that keep one partial result
     * per range then sum them in the same order either way. */
    if (ways == 1 || pthread_mutex_trylock(&run_lock) != 0) {
        for (int i = 0; i < ways; i++)
            run_one(fn, ctx, n, ways, i);
        return;
    }
    pthread_mutex_lock(&lock);
    while (n_workers < ways - 1 && n_workers < MAX_WORKERS) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, worker, (void *)(intptr_t)n_workers);
        pthread_attr_destroy(&attr);
        if (rc != 0)
            break;
        n_workers++;
    }
    /* With fewer workers than ranges (a thread could not be started), this
     * thread runs the ranges that have none. */
    int helpers = ways - 1 < n_workers ? ways - 1 : n_workers;
    job.fn = fn;
    job.ctx = ctx;
    job.n = n;
    job.ways = ways;
    pending = helpers;
    generation++;
    pthread_cond_broadcast(&start_cv);
    pthread_mutex_unlock(&lock);
    run_range(0);
    for (int i = helpers + 1; i < ways; i++)
        run_range(i);
    pthread_mutex_lock(&lock);
    while (pending > 0)
        pthread_cond_wait(&done_cv, &lock);
    pthread_mutex_unlock(&lock);
    pthread_mutex_unlock(&run_lock);
}
