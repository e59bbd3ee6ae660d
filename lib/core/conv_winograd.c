/* Winograd F(2x2, 3x3) convolution (conv_winograd.h).  With the 1-D
 * transforms of F(2, 3)
 *   input  B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   kernel G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   output A^T = [1 1 1 0; 0 1 -1 -1]
 * a tile's outputs are A^T [(G g G^T) .* (B^T d B)] A.  The 16 element
 * positions xi of the transformed tile are independent, so for a chunk of
 * tiles V[xi] (tiles x C) and U[xi] (C x cout) give M[xi] = V[xi] U[xi]
 * by one SGEMM each.  All loops run over channels, contiguous in NHWC. */
#include "conv_winograd.h"

#include <string.h>

#include "gemm.h"
#include "isa.h"
#include "parallel.h"

/* A thread transforms a chunk of tiles, multiplies and transforms back
 * before the next chunk: the transformed input and products of a chunk
 * stay under this many floats (4 MiB, about the cache a core has) unless
 * that is fewer than MIN_CHUNK tiles, below which repacking the kernel's
 * 16 matrices for every chunk costs more than the cache saves (resnet18,
 * batch 32, 1 thread: 2^23 floats 701 ms, 2^20 599-620 ms, 2^18 618-674). */
#define CHUNK_FLOATS ((int64_t)1 << 20)
#define MIN_CHUNK 256
/* Output channels per block of the output transform's local buffer. */
#define OUT_BLOCK 64

/* The 1-D transforms: B^T on four values, G on three, A^T on four
 * values into two. */
#define BT4(d0, d1, d2, d3, o0, o1, o2, o3)                     \
    do {                                                         \
        float d0_ = (d0), d1_ = (d1), d2_ = (d2), d3_ = (d3);    \
        o0 = d0_ - d2_;                                          \
        o1 = d1_ + d2_;                                          \
        o2 = d2_ - d1_;                                          \
        o3 = d1_ - d3_;                                          \
    } while (0)
#define G3(g0, g1, g2, o0, o1, o2, o3)                           \
    do {                                                         \
        float g0_ = (g0), g1_ = (g1), g2_ = (g2);                \
        o0 = g0_;                                                \
        o1 = 0.5f * (g0_ + g1_ + g2_);                           \
        o2 = 0.5f * (g0_ - g1_ + g2_);                           \
        o3 = g2_;                                                \
    } while (0)
#define AT4(m0, m1, m2, m3, o0, o1)                              \
    do {                                                         \
        float m0_ = (m0), m1_ = (m1), m2_ = (m2), m3_ = (m3);    \
        o0 = m0_ + m1_ + m2_;                                    \
        o1 = m1_ - m2_ - m3_;                                    \
    } while (0)

/* Below these, the transforms and 16 small products cost more than
 * they save (resnet18 saliency at batch 3 with 32, 64, 128 and 256 tiles
 * at least: 138, 135, 129 and 144 ms). */
#define MIN_TILES 128
#define MIN_CHANNELS 16

static int mode = CVIS__WINO_WHERE_IT_PAYS;

void cvis__winograd_mode(int m)
{
    mode = m;
}

int cvis__winograd_pays(int64_t tiles, int64_t C, int64_t cout)
{
    if (mode != CVIS__WINO_WHERE_IT_PAYS)
        return mode == CVIS__WINO_ALWAYS;
    return tiles >= MIN_TILES && C >= MIN_CHANNELS && cout >= MIN_CHANNELS;
}

/* The transforms' bodies, inlined below into one function per
 * instruction set (isa.h): additions over channels, in wider vectors where
 * the CPU has them, the same arithmetic on every level. */
#define BODY static inline __attribute__((always_inline))

/* The loops write V, U or y while reading through other pointers that
 * never overlap them. */
#if defined(__clang__)
#define NO_ALIAS _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define NO_ALIAS _Pragma("GCC ivdep")
#else
#define NO_ALIAS
#endif

typedef struct {
    const cvis__conv_geom *g;
    int64_t th, tw;  /* tiles down and across an image */
    int64_t t0, tc;  /* first tile of the chunk, tiles per chunk (the stride of V and M) */
    int64_t n;       /* tiles in this chunk */
    const float *x, *w, *zero;
    float *y, *U, *V, *M;
    int accumulate;
    const cvis__wino_plan *plan;
    const struct transforms *tf;
} wino_job;

static int64_t tile_count(const cvis__conv_geom *g, int64_t images)
{
    return images * ((g->Ho + 1) / 2) * ((g->Wo + 1) / 2);
}

cvis__wino_plan cvis__winograd_plan(const cvis__conv_geom *g, int64_t images)
{
    cvis__wino_plan p;
    p.tiles = tile_count(g, images);
    p.tc = CHUNK_FLOATS / (16 * (g->C + g->cout));
    if (p.tc < MIN_CHUNK)
        p.tc = MIN_CHUNK;
    /* at least one chunk per thread */
    int threads = cvis__parallel_ways(p.tiles, 1);
    int64_t share = (p.tiles + threads - 1) / threads;
    if (p.tc > share)
        p.tc = share;
    if (p.tc < 1) /* no tiles at all */
        p.tc = 1;
    int64_t chunks = (p.tiles + p.tc - 1) / p.tc;
    p.ways = cvis__parallel_ways(chunks, 1);
    p.floats = 16 * g->C * g->cout + p.ways * 16 * p.tc * (g->C + g->cout) + g->C;
    return p;
}

/* U[xi] = (G w G^T)[xi] for input channels [c0, c1), as (C x cout). */
BODY void kernel_body(const wino_job *j, int64_t c0, int64_t c1)
{
    int64_t C = j->g->C, K = j->g->cout;
    for (int64_t c = c0; c < c1; c++) {
        const float *w[9];
        for (int t = 0; t < 9; t++)
            w[t] = j->w + (t * C + c) * K;
        float *u = j->U + c * K;
        int64_t s = C * K; /* between positions xi */
        NO_ALIAS
        for (int64_t o = 0; o < K; o++) {
            /* G along the kernel's rows, then along its columns */
            float a00, a10, a20, a30, a01, a11, a21, a31, a02, a12, a22, a32;
            G3(w[0][o], w[3][o], w[6][o], a00, a10, a20, a30);
            G3(w[1][o], w[4][o], w[7][o], a01, a11, a21, a31);
            G3(w[2][o], w[5][o], w[8][o], a02, a12, a22, a32);
            G3(a00, a01, a02, u[0 * s + o], u[1 * s + o], u[2 * s + o], u[3 * s + o]);
            G3(a10, a11, a12, u[4 * s + o], u[5 * s + o], u[6 * s + o], u[7 * s + o]);
            G3(a20, a21, a22, u[8 * s + o], u[9 * s + o], u[10 * s + o], u[11 * s + o]);
            G3(a30, a31, a32, u[12 * s + o], u[13 * s + o], u[14 * s + o], u[15 * s + o]);
        }
    }
}

/* The tile's image, tile row and tile column. */
static void tile_at(const wino_job *j, int64_t t, int64_t *b, int64_t *ty, int64_t *tx)
{
    int64_t per_image = j->th * j->tw;
    *b = t / per_image;
    *ty = t % per_image / j->tw;
    *tx = t % j->tw;
}

/* V[xi] rows [l0, l1) of the chunk: B^T d B for each tile d (4x4 pixels,
 * zeros outside the input). */
BODY void input_body(const wino_job *j, int64_t l0, int64_t l1)
{
    const cvis__conv_geom *g = j->g;
    int64_t C = g->C, s = j->tc * C;
    for (int64_t l = l0; l < l1; l++) {
        int64_t b, ty, tx;
        tile_at(j, j->t0 + l, &b, &ty, &tx);
        const float *d[16];
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < 4; k++) {
                int64_t iy = 2 * ty - g->pt + i, ix = 2 * tx - g->pl + k;
                d[4 * i + k] = iy >= 0 && iy < g->H && ix >= 0 && ix < g->W
                                   ? j->x + ((b * g->H + iy) * g->W + ix) * C
                                   : j->zero;
            }
        float *v = j->V + l * C;
        NO_ALIAS
        for (int64_t c = 0; c < C; c++) {
            /* B^T down each column of the tile, then along each row */
            float e00, e10, e20, e30, e01, e11, e21, e31, e02, e12, e22, e32, e03, e13, e23, e33;
            BT4(d[0][c], d[4][c], d[8][c], d[12][c], e00, e10, e20, e30);
            BT4(d[1][c], d[5][c], d[9][c], d[13][c], e01, e11, e21, e31);
            BT4(d[2][c], d[6][c], d[10][c], d[14][c], e02, e12, e22, e32);
            BT4(d[3][c], d[7][c], d[11][c], d[15][c], e03, e13, e23, e33);
            BT4(e00, e01, e02, e03, v[0 * s + c], v[1 * s + c], v[2 * s + c], v[3 * s + c]);
            BT4(e10, e11, e12, e13, v[4 * s + c], v[5 * s + c], v[6 * s + c], v[7 * s + c]);
            BT4(e20, e21, e22, e23, v[8 * s + c], v[9 * s + c], v[10 * s + c], v[11 * s + c]);
            BT4(e30, e31, e32, e33, v[12 * s + c], v[13 * s + c], v[14 * s + c], v[15 * s + c]);
        }
    }
}

/* M[xi] = V[xi] U[xi] for positions [p0, p1), on this thread. */
static void product_range(const wino_job *j, int64_t p0, int64_t p1)
{
    int64_t C = j->g->C, K = j->g->cout;
    for (int64_t p = p0; p < p1; p++)
        cvis__sgemm(CblasNoTrans, CblasNoTrans, (int)j->n, (int)K, (int)C, 1.0f,
                    j->V + p * j->tc * C, (int)C, j->U + p * C * K, (int)K, 0.0f,
                    j->M + p * j->tc * K, (int)K);
}

/* Outputs of the chunk's tiles [l0, l1): A^T m A, through a local block of
 * channels so that a tile cut by the output's edge writes only its
 * inside. */
BODY void output_body(const wino_job *j, int64_t l0, int64_t l1)
{
    const cvis__conv_geom *g = j->g;
    int64_t K = g->cout, s = j->tc * K;
    float out[4][OUT_BLOCK];
    for (int64_t l = l0; l < l1; l++) {
        int64_t b, ty, tx;
        tile_at(j, j->t0 + l, &b, &ty, &tx);
        const float *m = j->M + l * K;
        for (int64_t o0 = 0; o0 < K; o0 += OUT_BLOCK) {
            int64_t nb = K - o0 < OUT_BLOCK ? K - o0 : OUT_BLOCK;
            const float *p = m + o0;
            for (int64_t o = 0; o < nb; o++) {
                /* A^T down each column of the tile, then along both rows */
                float r00, r10, r01, r11, r02, r12, r03, r13;
                AT4(p[o], p[4 * s + o], p[8 * s + o], p[12 * s + o], r00, r10);
                AT4(p[s + o], p[5 * s + o], p[9 * s + o], p[13 * s + o], r01, r11);
                AT4(p[2 * s + o], p[6 * s + o], p[10 * s + o], p[14 * s + o], r02, r12);
                AT4(p[3 * s + o], p[7 * s + o], p[11 * s + o], p[15 * s + o], r03, r13);
                AT4(r00, r01, r02, r03, out[0][o], out[1][o]);
                AT4(r10, r11, r12, r13, out[2][o], out[3][o]);
            }
            for (int i = 0; i < 2; i++)
                for (int k = 0; k < 2; k++) {
                    int64_t oy = 2 * ty + i, ox = 2 * tx + k;
                    if (oy >= g->Ho || ox >= g->Wo)
                        continue;
                    float *dst = j->y + ((b * g->Ho + oy) * g->Wo + ox) * K + o0;
                    const float *src = out[2 * i + k];
                    if (j->accumulate)
                        for (int64_t o = 0; o < nb; o++)
                            dst[o] += src[o];
                    else
                        memcpy(dst, src, (size_t)nb * sizeof(float));
                }
        }
    }
}

typedef void (*transform_fn)(const wino_job *j, int64_t begin, int64_t end);
struct transforms {
    transform_fn kernel, input, output;
};

#define TRANSFORMS(SUFFIX, TARGET)                                                  \
    TARGET static void kernel##SUFFIX(const wino_job *j, int64_t c0, int64_t c1)    \
    {                                                                               \
        kernel_body(j, c0, c1);                                                     \
    }                                                                               \
    TARGET static void input##SUFFIX(const wino_job *j, int64_t l0, int64_t l1)     \
    {                                                                               \
        input_body(j, l0, l1);                                                      \
    }                                                                               \
    TARGET static void output##SUFFIX(const wino_job *j, int64_t l0, int64_t l1)    \
    {                                                                               \
        output_body(j, l0, l1);                                                     \
    }                                                                               \
    static const struct transforms transforms##SUFFIX = {kernel##SUFFIX, input##SUFFIX, \
                                                         output##SUFFIX};

TRANSFORMS(_generic, )
#if defined(__x86_64__) && defined(__GNUC__)
TRANSFORMS(_avx2, __attribute__((target("avx2"))))
TRANSFORMS(_avx512, __attribute__((target("avx512f"))))
#endif

static const struct transforms *pick_transforms(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    int isa = cvis__isa();
    if (isa >= CVIS__ISA_AVX512)
        return &transforms_avx512;
    if (isa >= CVIS__ISA_AVX2)
        return &transforms_avx2;
#endif
    return &transforms_generic;
}

static void kernel_range(void *ctx, int64_t c0, int64_t c1)
{
    const wino_job *j = ctx;
    j->tf->kernel(j, c0, c1);
}

/* Chunks [k0, k1) on this thread, through its own V and M. */
static void chunk_range(void *ctx, int64_t k0, int64_t k1)
{
    wino_job j = *(const wino_job *)ctx;
    const cvis__conv_geom *g = j.g;
    j.V += cvis__parallel_index() * 16 * j.tc * (g->C + g->cout);
    j.M = j.V + 16 * j.tc * g->C;
    for (int64_t k = k0; k < k1; k++) {
        j.t0 = k * j.tc;
        j.n = j.plan->tiles - j.t0 < j.tc ? j.plan->tiles - j.t0 : j.tc;
        j.tf->input(&j, 0, j.n);
        product_range(&j, 0, 16);
        j.tf->output(&j, 0, j.n);
    }
}

void cvis__winograd_forward(const cvis__conv_geom *g, const cvis__wino_plan *plan, const float *x,
                            const float *w, float *y, int accumulate, float *scratch)
{
    wino_job j = {g, (g->Ho + 1) / 2, (g->Wo + 1) / 2, 0, plan->tc, 0, x, w, NULL, y, NULL, NULL,
                  NULL, accumulate, plan, pick_transforms()};
    j.U = scratch;
    j.V = j.U + 16 * g->C * g->cout;
    float *zero = j.V + plan->ways * 16 * plan->tc * (g->C + g->cout);
    memset(zero, 0, (size_t)g->C * sizeof(float));
    j.zero = zero;
    cvis__parallel_for(g->C, 8, kernel_range, &j);
    cvis__parallel_run((plan->tiles + plan->tc - 1) / plan->tc, plan->ways, chunk_range, &j);
}
