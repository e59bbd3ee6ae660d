/* The worker pool: a loop is cut into the same ranges, with the same range
 * indices, whether the pool is free or busy with another thread's loop.
 * Callers keep one partial result per range index (the direct
 * convolution's weight gradients) and sum them in index order, so a busy
 * pool must not change the cut: it used to run the whole loop as range 0,
 * and weight gradients then differed in the last bits from one run to the
 * next when several threads computed at once. */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "check.h"
#include "core/conv_winograd.h"
#include "core/gemm.h"
#include "core/parallel.h"
#include "core/ops.h"
#include "core/rng.h"
#include "core/tape.h"

#define MAX_RANGES 16

typedef struct {
    int64_t begin[MAX_RANGES], end[MAX_RANGES];
    pthread_t thread[MAX_RANGES];
    int seen[MAX_RANGES];
    const float *values;
    double partial[MAX_RANGES];
} record;

static void record_range(void *ctx, int64_t begin, int64_t end)
{
    record *r = ctx;
    int i = cvis__parallel_index();
    r->begin[i] = begin;
    r->end[i] = end;
    r->thread[i] = pthread_self();
    r->seen[i]++;
    float sum = 0; /* float on purpose: the order of additions shows */
    for (int64_t k = begin; k < end; k++)
        sum += r->values[k];
    r->partial[i] = sum;
}

static float total(const record *r, int ways)
{
    float s = 0;
    for (int i = 0; i < ways; i++)
        s += (float)r->partial[i];
    return s;
}

/* Another thread's loop holds the pool until `release` is set. */
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static int holding, release;

static void hold_range(void *ctx, int64_t begin, int64_t end)
{
    (void)ctx;
    (void)end;
    if (begin != 0)
        return; /* the worker's range ends at once */
    pthread_mutex_lock(&hold_lock);
    holding = 1;
    pthread_cond_broadcast(&hold_cv);
    while (!release)
        pthread_cond_wait(&hold_cv, &hold_lock);
    pthread_mutex_unlock(&hold_lock);
}

static void *holder(void *arg)
{
    (void)arg;
    cvis__parallel_for(2, 1, hold_range, NULL);
    return NULL;
}

static void test_busy_pool_keeps_the_cut(void)
{
    enum { N = 1001 };
    static float values[N];
    for (int k = 0; k < N; k++)
        values[k] = 1.0f / (float)(k + 1) + (k % 7 == 0 ? 1000.0f : 0.0f);
    CHECK_OK(cvis_set_num_threads(2));
    int ways = cvis__parallel_ways(N, 1);
    CHECK(ways == 2);

    record free_run = {.values = values};
    cvis__parallel_for(N, 1, record_range, &free_run);

    pthread_t t;
    CHECK(pthread_create(&t, NULL, holder, NULL) == 0);
    pthread_mutex_lock(&hold_lock);
    while (!holding)
        pthread_cond_wait(&hold_cv, &hold_lock);
    pthread_mutex_unlock(&hold_lock);

    record busy_run = {.values = values};
    cvis__parallel_for(N, 1, record_range, &busy_run);

    pthread_mutex_lock(&hold_lock);
    release = 1;
    pthread_cond_broadcast(&hold_cv);
    pthread_mutex_unlock(&hold_lock);
    pthread_join(t, NULL);

    for (int i = 0; i < ways; i++) {
        CHECK(free_run.seen[i] == 1 && busy_run.seen[i] == 1);
        CHECK(free_run.begin[i] == busy_run.begin[i] && free_run.end[i] == busy_run.end[i]);
        /* the busy run really ran here, serially */
        CHECK(pthread_equal(busy_run.thread[i], pthread_self()));
    }
    CHECK(busy_run.begin[0] == 0 && busy_run.end[ways - 1] == N);
    CHECK(free_run.end[0] == busy_run.begin[1]);
    CHECK(!busy_run.seen[ways]);
    float a = total(&free_run, ways), b = total(&busy_run, ways);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
}

static void test_explicit_ways(void)
{
    enum { N = 23 };
    static float values[N];
    for (int k = 0; k < N; k++)
        values[k] = (float)k;
    CHECK_OK(cvis_set_num_threads(2));
    /* more ranges than threads: every range runs once, with its index */
    record r = {.values = values};
    cvis__parallel_run(N, 5, record_range, &r);
    int64_t next = 0;
    for (int i = 0; i < 5; i++) {
        CHECK(r.seen[i] == 1);
        CHECK(r.begin[i] == next);
        next = r.end[i];
    }
    CHECK(next == N && !r.seen[5]);
    CHECK(r.end[0] - r.begin[0] == 5 && r.end[4] - r.begin[4] == 4); /* 23 = 5+5+5+4+4 */
    /* never more ranges than items */
    record few = {.values = values};
    cvis__parallel_run(3, 8, record_range, &few);
    CHECK(few.seen[0] && few.seen[1] && few.seen[2] && !few.seen[3]);
}

/* cvis__sgemm cuts a product into row or column blocks on the pool: every
 * transpose, both cuts, edges that are not whole blocks, a beta that adds
 * to C, against one cblas_sgemm call. */
static void test_threaded_gemm(void)
{
    CHECK_OK(cvis_set_num_threads(2));
    CHECK(openblas_get_num_threads() == 1); /* the pool does the threading */
    /* M = 1 and N = 1 go through sgemv, threaded or not; a few rows with
     * a large B (K x N >= 2^20, N a multiple of 128; one row only with
     * N = 128) through cvis__sgemm_few_rows where the CPU has AVX-512, on
     * one thread (two cut N into blocks of 32 columns) */
    static const int shapes[][3] = {{301, 40, 190}, {9, 333, 700},   {1, 130, 20000},
                                    {1, 7, 50},     {2000, 1, 1500}, {5, 1, 9},
                                    {8, 128, 8192}, {3, 256, 4100},  {1, 128, 9000},
                                    {1, 256, 8192}};
    for (int s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++)
        for (int t = 0; t < 8; t++) {
            CHECK_OK(cvis_set_num_threads(s >= 6 ? 1 : 2));
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            enum CBLAS_TRANSPOSE ta = t & 1 ? CblasTrans : CblasNoTrans;
            if (t & 4 && t & 3)
                continue; /* beta = 0: one layout is enough */
            enum CBLAS_TRANSPOSE tb = t & 2 ? CblasTrans : CblasNoTrans;
            int lda = ta == CblasNoTrans ? K : M, ldb = tb == CblasNoTrans ? N : K;
            float *a = malloc(sizeof(float) * (size_t)M * K), *b = malloc(sizeof(float) * (size_t)K * N);
            float *c = malloc(sizeof(float) * (size_t)M * N), *ref = malloc(sizeof(float) * (size_t)M * N);
            for (int64_t i = 0; i < (int64_t)M * K; i++)
                a[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
            for (int64_t i = 0; i < (int64_t)K * N; i++)
                b[i] = (float)((i * 104729) % 997) / 997.0f - 0.5f;
            /* t & 4: beta = 0 overwrites C, even NaN */
            float beta = t & 4 ? 0.0f : 2.0f;
            for (int64_t i = 0; i < (int64_t)M * N; i++) {
                ref[i] = (float)(i % 13);
                c[i] = t & 4 ? NAN : ref[i];
            }
            cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 0.5f, a, lda, b, ldb, beta, ref, N);
            cvis__sgemm(ta, tb, M, N, K, 0.5f, a, lda, b, ldb, beta, c, N);
            double worst = 0;
            for (int64_t i = 0; i < (int64_t)M * N; i++) {
                double d = fabs((double)c[i] - ref[i]) / (1.0 + fabs((double)ref[i]));
                worst = d > worst || d != d ? d : worst;
            }
            if (worst > 1e-4) /* sgemv sums in another order */
                fprintf(stderr, "gemm %dx%dx%d trans %d: off by %g\n", M, N, K, t, worst);
            CHECK(worst <= 1e-4);
            free(a), free(b), free(c), free(ref);
        }
}

/* A small residual network's ops on the tape -- a convolution on the GEMM
 * path or through Winograd (in chunks of tiles, one chunk per thread with
 * two), max and average pooling, a residual addition, a softmax --
 * forward and backward on one thread, then on two: the same bits.  Each
 * op's element-wise work is large enough to be split between threads. */
static void run_net(const cvis_tensor *x, const cvis_tensor *k, const cvis_tensor *bias,
                    const float *seed, float *out, float *dx)
{
    static const cvis__conv_attr conv = {3, 3, 1, 1, 1, 1, 1, CVIS__PAD_SAME_UPPER, 0, 0, 0, 0,
                                         40, 1, 0, 0, CVIS_ACT_RELU, 0};
    static const cvis__pool_attr maxp = {CVIS_POOL_MAX, 3, 3, 1, 1, CVIS__PAD_SAME_UPPER,
                                         0, 0, 0, 0, 0, 0};
    static const cvis__pool_attr avgp = {CVIS_POOL_AVG, 3, 3, 1, 1, CVIS__PAD_SAME_UPPER,
                                         0, 0, 0, 0, 0, 1};
    static const cvis__binary_attr add = {CVIS__BIN_ADD};
    static const cvis__act_attr soft = {CVIS_ACT_SOFTMAX, 0};
    cvis__tape *t = NULL;
    int xs, c, m, a, s, y, pair[2];
    const cvis_tensor *params[2] = {k, bias};
    CHECK_OK(cvis__tape_new(&t));
    CHECK_OK(cvis__tape_leaf(t, x, 1, &xs));
    CHECK_OK(cvis__tape_push(t, &cvis__op_conv2d, &conv, 1, &xs, 2, params, 0, 0, &c));
    CHECK_OK(cvis__tape_push(t, &cvis__op_pool2d, &maxp, 1, &c, 0, NULL, 0, 0, &m));
    CHECK_OK(cvis__tape_push(t, &cvis__op_pool2d, &avgp, 1, &c, 0, NULL, 0, 0, &a));
    pair[0] = m, pair[1] = a;
    CHECK_OK(cvis__tape_push(t, &cvis__op_binary, &add, 2, pair, 0, NULL, 0, 0, &s));
    CHECK_OK(cvis__tape_push(t, &cvis__op_activation, &soft, 1, &s, 0, NULL, 0, 0, &y));
    const cvis_tensor *o = cvis__tape_value(t, y);
    memcpy(out, o->data, (size_t)o->size * sizeof(float));
    CHECK_OK(cvis__tape_backward(t, 1, &y, &seed, CVIS__RELU_NORMAL));
    memcpy(dx, cvis__tape_grad(t, xs)->data, (size_t)x->size * sizeof(float));
    cvis__tape_free(t);
}

static cvis_tensor *uniform(cvis__rng *r, int ndim, const int64_t *shape, double lo, double hi)
{
    cvis_tensor *t = NULL;
    CHECK_OK(cvis_tensor_create(ndim, shape, &t));
    for (int64_t i = 0; t && i < t->size; i++)
        t->data[i] = (float)(lo + (hi - lo) * cvis__rng_uniform(r));
    return t;
}

static void test_ops_do_not_depend_on_threads(void)
{
    cvis__rng r;
    cvis__rng_seed(&r, 7);
    int64_t xs[4] = {2, 40, 48, 16}, ks[4] = {3, 3, 16, 40}, bs = 40, ys[4] = {2, 40, 48, 40};
    cvis_tensor *x = uniform(&r, 4, xs, -1, 1), *k = uniform(&r, 4, ks, -0.3, 0.3);
    cvis_tensor *bias = uniform(&r, 1, &bs, -0.1, 0.1), *seed = uniform(&r, 4, ys, -1, 1);
    size_t no = (size_t)seed->size, nx = (size_t)x->size;
    float *out1 = malloc(no * sizeof(float)), *out2 = malloc(no * sizeof(float));
    float *dx1 = malloc(nx * sizeof(float)), *dx2 = malloc(nx * sizeof(float));
    for (int mode = CVIS__WINO_NEVER; mode <= CVIS__WINO_WHERE_IT_PAYS; mode++) {
        cvis__winograd_mode(mode);
        CHECK_OK(cvis_set_num_threads(1));
        run_net(x, k, bias, seed->data, out1, dx1);
        CHECK_OK(cvis_set_num_threads(2));
        run_net(x, k, bias, seed->data, out2, dx2);
        CHECK(memcmp(out1, out2, no * sizeof(float)) == 0);
        CHECK(memcmp(dx1, dx2, nx * sizeof(float)) == 0);
        double sum = 0;
        for (size_t i = 0; i < nx; i++)
            sum += fabs(dx1[i]);
        CHECK(sum > 0); /* a gradient reached the input */
    }
    cvis__winograd_mode(CVIS__WINO_WHERE_IT_PAYS);
    free(out1), free(out2), free(dx1), free(dx2);
    cvis_tensor_free(x), cvis_tensor_free(k), cvis_tensor_free(bias), cvis_tensor_free(seed);
}

TEST_MAIN({
    int threads = cvis_get_num_threads();
    test_busy_pool_keeps_the_cut();
    test_explicit_ways();
    test_threaded_gemm();
    test_ops_do_not_depend_on_threads();
    cvis_set_num_threads(threads);
})
