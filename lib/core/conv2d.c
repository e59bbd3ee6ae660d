/* 2-D convolution in NHWC: im2col + SGEMM (1x1 stride-1 convolutions use
 * the input directly), with the bias, an optional inference batch norm and
 * the activation fused into the output.  Backward-data is GEMM + col2im,
 * or with stride 1 a forward convolution of dy with the flipped kernel;
 * backward-weights is im2col + GEMM.  Few output channels take the direct
 * kernels of conv_direct.h instead, and 3x3 stride-1 layers with enough
 * work Winograd's (conv_winograd.h), forward and flipped. */
#include <math.h>
#include <string.h>

#include "conv_direct.h"
#include "conv_winograd.h"
#include "error.h"
#include "gemm.h"
#include "ops.h"
#include "parallel.h"

cvis_status cvis__window(int64_t in, int k, int s, int d, int mode, int pad_before,
                         int pad_after, int ceil_mode, int64_t *out, int *before, int *after)
{
    if (k < 1 || s < 1 || d < 1)
        return cvis__fail(CVIS_E_INVALID_ARG, "kernel, stride and dilation must be positive");
    int64_t span = (int64_t)(k - 1) * d + 1;
    if (mode == CVIS__PAD_SAME_UPPER || mode == CVIS__PAD_SAME_LOWER) {
        int64_t o = (in + s - 1) / s;
        int64_t total = (o - 1) * s + span - in;
        if (total < 0)
            total = 0;
        int64_t lo = mode == CVIS__PAD_SAME_UPPER ? total / 2 : total - total / 2;
        *before = (int)lo;
        *after = (int)(total - lo);
        *out = o;
    } else {
        if (mode == CVIS__PAD_VALID)
            pad_before = pad_after = 0;
        if (pad_before < 0 || pad_after < 0)
            return cvis__fail(CVIS_E_INVALID_ARG, "negative padding");
        int64_t room = in + pad_before + pad_after - span;
        if (room < 0)
            return cvis__fail(CVIS_E_SHAPE,
                              "window of %lld does not fit an input of %lld (padded %d+%d)",
                              (long long)span, (long long)in, pad_before, pad_after);
        int64_t o = ceil_mode ? (room + s - 1) / s + 1 : room / s + 1;
        /* the last window must start inside the input or the leading pad */
        if (ceil_mode && (o - 1) * s >= in + pad_before)
            o--;
        *before = pad_before;
        *after = pad_after;
        *out = o;
    }
    if (*out < 1)
        return cvis__fail(CVIS_E_SHAPE, "window gives an empty output");
    return CVIS_OK;
}

typedef struct geom {
    int64_t B, H, W, C, Ho, Wo, cout;
    int pt, pl;
    int cg, coutg; /* channels per group, in and out */
    int64_t K;     /* kh*kw*cg: rows of a group's kernel */
    int direct;    /* 1x1, stride 1, no pad, one group: no im2col */
    int small;     /* few output channels: the direct kernels (conv_direct.h) */
    int wino;      /* 3x3, stride 1, many tiles: Winograd (conv_winograd.h) */
    int64_t nb;    /* images per im2col + GEMM (im2col path) */
} geom;

/* Images share one im2col + GEMM while their columns fit in this many
 * floats: a deep layer's product then packs its weights once for several
 * images instead of once per image, and its few rows per image (49 at 7x7)
 * become enough rows to keep the kernel and both threads busy. */
#define COL_BATCH_FLOATS ((int64_t)1 << 21)

/* 3x3, stride 1, unit dilation, one group, and enough work for Winograd
 * to pay (cvis__winograd_pays). */
static int winograd_fits(int kh, int kw, int sh, int sw, int dh, int dw, int groups,
                         const geom *g)
{
    int64_t tiles = g->B * ((g->Ho + 1) / 2) * ((g->Wo + 1) / 2);
    return kh == 3 && kw == 3 && sh == 1 && sw == 1 && dh == 1 && dw == 1 && groups == 1 &&
           tiles <= INT32_MAX && cvis__winograd_pays(tiles, g->C, g->cout);
}

static cvis_status conv_geom(const cvis__conv_attr *a, const cvis__shape *x, geom *g)
{
    if (x->ndim != 4)
        return cvis__fail(CVIS_E_SHAPE, "convolution expects (B,H,W,C) input, got rank %d",
                          x->ndim);
    if (a->groups < 1 || x->d[3] % a->groups || a->cout % a->groups || a->cout < 1)
        return cvis__fail(CVIS_E_SHAPE,
                          "convolution: %d groups do not divide %lld input and %d output channels",
                          a->groups, (long long)x->d[3], a->cout);
    int pb, pr;
    g->B = x->d[0];
    g->H = x->d[1];
    g->W = x->d[2];
    g->C = x->d[3];
    g->cout = a->cout;
    CVIS_TRY(cvis__window(g->H, a->kh, a->sh, a->dh, a->pad_mode, a->pt, a->pb, 0, &g->Ho, &g->pt,
                          &pb));
    CVIS_TRY(cvis__window(g->W, a->kw, a->sw, a->dw, a->pad_mode, a->pl, a->pr, 0, &g->Wo, &g->pl,
                          &pr));
    g->cg = (int)(g->C / a->groups);
    g->coutg = a->cout / a->groups;
    g->K = (int64_t)a->kh * a->kw * g->cg;
    g->direct = a->kh == 1 && a->kw == 1 && a->sh == 1 && a->sw == 1 && g->pt == 0 &&
                g->pl == 0 && a->groups == 1 && g->Ho == g->H && g->Wo == g->W;
    g->small = !g->direct && a->groups == 1 && a->cout % 8 == 0 && a->cout <= 32;
    g->wino = !g->small && winograd_fits(a->kh, a->kw, a->sh, a->sw, a->dh, a->dw, a->groups, g);
    if (g->B * g->Ho * g->Wo > INT32_MAX || g->K > INT32_MAX || g->C > INT32_MAX)
        return cvis__fail(CVIS_E_LIMIT, "convolution too large for the BLAS interface");
    int64_t per_image = g->Ho * g->Wo * g->K;
    g->nb = g->direct || g->small || per_image >= COL_BATCH_FLOATS ? 1
                                                                   : COL_BATCH_FLOATS / per_image;
    if (g->nb > g->B)
        g->nb = g->B > 0 ? g->B : 1;
    return CVIS_OK;
}

static cvis_status conv_shape(const void *attr, int n_in, const cvis__shape *in, cvis__shape *out)
{
    if (n_in != 1)
        return cvis__fail(CVIS_E_INTERNAL, "convolution takes one input");
    geom g;
    CVIS_TRY(conv_geom(attr, &in[0], &g));
    out->ndim = 4;
    out->d[0] = g.B;
    out->d[1] = g.Ho;
    out->d[2] = g.Wo;
    out->d[3] = g.cout;
    return CVIS_OK;
}

/* Rows (oy,ox) for oy in [oy0, oy1), columns (ky,kx,c) for channels
 * [c0, c0+cg) of one image. */
static void im2col(const cvis__conv_attr *a, const geom *g, const float *x, int c0, float *col,
                   int64_t oy0, int64_t oy1)
{
    for (int64_t oy = oy0; oy < oy1; oy++)
        for (int64_t ox = 0; ox < g->Wo; ox++) {
            float *row = col + (oy * g->Wo + ox) * g->K;
            int64_t ix0 = ox * a->sw - g->pl;
            /* with unit dilation and all channels, a row of taps inside the
             * image is kw * C contiguous values of the input (NHWC) */
            int span = a->dw == 1 && g->cg == g->C && ix0 >= 0 && ix0 + a->kw <= g->W;
            for (int ky = 0; ky < a->kh; ky++) {
                int64_t iy = oy * a->sh - g->pt + (int64_t)ky * a->dh;
                if (span && iy >= 0 && iy < g->H) {
                    memcpy(row + (int64_t)ky * a->kw * g->cg, x + (iy * g->W + ix0) * g->C,
                           (size_t)a->kw * (size_t)g->cg * sizeof(float));
                    continue;
                }
                for (int kx = 0; kx < a->kw; kx++) {
                    int64_t ix = ox * a->sw - g->pl + (int64_t)kx * a->dw;
                    float *dst = row + ((int64_t)ky * a->kw + kx) * g->cg;
                    if (iy < 0 || iy >= g->H || ix < 0 || ix >= g->W) {
                        for (int c = 0; c < g->cg; c++)
                            dst[c] = 0;
                    } else {
                        const float *src = x + (iy * g->W + ix) * g->C + c0;
                        for (int c = 0; c < g->cg; c++)
                            dst[c] = src[c];
                    }
                }
            }
        }
}

/* The adjoint of im2col for the group's channels [cb, ce): adds the
 * columns back into the image gradient.  Each channel's sum runs in the
 * same order whatever the range, so results do not depend on threads. */
static void col2im(const cvis__conv_attr *a, const geom *g, const float *col, int c0, float *dx,
                   int64_t cb, int64_t ce)
{
    for (int64_t oy = 0; oy < g->Ho; oy++)
        for (int64_t ox = 0; ox < g->Wo; ox++) {
            const float *row = col + (oy * g->Wo + ox) * g->K;
            int64_t ix0 = ox * a->sw - g->pl;
            /* as in im2col: a row of taps inside the image is one span */
            int span = a->dw == 1 && cb == 0 && ce == g->C && ix0 >= 0 && ix0 + a->kw <= g->W;
            for (int ky = 0; ky < a->kh; ky++) {
                int64_t iy = oy * a->sh - g->pt + (int64_t)ky * a->dh;
                if (iy < 0 || iy >= g->H)
                    continue;
                if (span) {
                    const float *src = row + (int64_t)ky * a->kw * g->cg;
                    float *dst = dx + (iy * g->W + ix0) * g->C;
                    for (int64_t i = 0; i < (int64_t)a->kw * g->C; i++)
                        dst[i] += src[i];
                    continue;
                }
                for (int kx = 0; kx < a->kw; kx++) {
                    int64_t ix = ox * a->sw - g->pl + (int64_t)kx * a->dw;
                    if (ix < 0 || ix >= g->W)
                        continue;
                    const float *src = row + ((int64_t)ky * a->kw + kx) * g->cg;
                    float *dst = dx + (iy * g->W + ix) * g->C + c0;
                    for (int64_t c = cb; c < ce; c++)
                        dst[c] += src[c];
                }
            }
        }
}

/* im2col by output rows and col2im by channels on the worker pool (while
 * BLAS's threads wait: the pool never runs during a GEMM). */
typedef struct col_job {
    const cvis__conv_attr *a;
    const geom *g;
    const float *x;
    float *col, *dx;
    int c0;
    int64_t images;
} col_job;

/* Rows of `images` consecutive images: row r is image r / Ho, output row
 * r % Ho; image b's columns follow image b-1's. */
static void im2col_range(void *ctx, int64_t begin, int64_t end)
{
    const col_job *j = ctx;
    const geom *g = j->g;
    for (int64_t r = begin; r < end; r++) {
        int64_t b = r / g->Ho, oy = r % g->Ho;
        im2col(j->a, g, j->x + b * g->H * g->W * g->C, j->c0, j->col + b * g->Ho * g->Wo * g->K,
               oy, oy + 1);
    }
}

static void col2im_range(void *ctx, int64_t begin, int64_t end)
{
    const col_job *j = ctx;
    const geom *g = j->g;
    for (int64_t b = 0; b < j->images; b++)
        col2im(j->a, g, j->col + b * g->Ho * g->Wo * g->K, j->c0, j->dx + b * g->H * g->W * g->C,
               begin, end);
}

static void im2col_par(const cvis__conv_attr *a, const geom *g, const float *x, int64_t images,
                       int c0, float *col)
{
    col_job j = {a, g, x, col, NULL, c0, images};
    cvis__parallel_for(images * g->Ho, 2, im2col_range, &j);
}

static void col2im_par(const cvis__conv_attr *a, const geom *g, const float *col, int64_t images,
                       int c0, float *dx)
{
    col_job j = {a, g, NULL, (float *)col, dx, c0, images};
    cvis__parallel_for(g->cg, 16, col2im_range, &j);
}

/* Per-channel coefficients of the epilogue y = (conv + pre) * scale + shift.
 * With batch norm, pre is the bias and the normalization is applied as a
 * separate batch-norm layer would apply it, so that merging the two layers
 * (as ONNX import does) changes no bit of the result. */
static void epilogue_coeffs(const cvis__conv_attr *a, const cvis_tensor *const *p, float *pre,
                            float *scale, float *shift)
{
    const float *bias = a->has_bias ? p[1]->data : NULL;
    int bn = a->has_bias ? 2 : 1;
    for (int c = 0; c < a->cout; c++) {
        float b = bias ? bias[c] : 0.0f;
        if (a->has_bn) {
            const float *gamma = p[bn]->data, *beta = p[bn + 1]->data;
            const float *mean = p[bn + 2]->data, *var = p[bn + 3]->data;
            float s = gamma[c] / sqrtf(var[c] + a->bn_eps);
            pre[c] = b;
            scale[c] = s;
            shift[c] = beta[c] - mean[c] * s;
        } else {
            pre[c] = 0.0f;
            scale[c] = 1.0f;
            shift[c] = b;
        }
    }
}

/* Bias (or batch norm) and activation on `rows` output rows, in one pass
 * for the common case of a bias and a ReLU. */
static void epilogue_rows(const cvis__conv_attr *a, int act, float *y, int64_t rows,
                          const float *pre, const float *scale, const float *shift)
{
    for (int64_t r = 0; r < rows; r++) {
        float *v = y + r * a->cout;
        if (a->has_bn)
            for (int c = 0; c < a->cout; c++)
                v[c] = (v[c] + pre[c]) * scale[c] + shift[c];
        else if (act == CVIS_ACT_RELU)
            for (int c = 0; c < a->cout; c++) {
                float t = v[c] + shift[c];
                v[c] = t > 0 ? t : 0;
            }
        else
            for (int c = 0; c < a->cout; c++)
                v[c] = v[c] + shift[c];
    }
    if (a->has_bn || act != CVIS_ACT_RELU)
        cvis__act_apply(act, a->alpha, y, rows * a->cout, a->cout);
}

typedef struct epilogue_job {
    const cvis__conv_attr *a;
    int act;
    float *y;
    const float *pre, *scale, *shift;
} epilogue_job;

static void epilogue_range(void *ctx, int64_t r0, int64_t r1)
{
    const epilogue_job *j = ctx;
    epilogue_rows(j->a, j->act, j->y + r0 * j->a->cout, r1 - r0, j->pre, j->scale, j->shift);
}

/* The epilogue on the worker pool, by rows of at least 32768 values. */
static void epilogue(const cvis__conv_attr *a, int drop_act, float *y, int64_t rows,
                     const float *pre, const float *scale, const float *shift)
{
    epilogue_job j = {a, drop_act ? CVIS_ACT_LINEAR : a->act, y, pre, scale, shift};
    cvis__parallel_for(rows, 32768 / a->cout + 1, epilogue_range, &j);
}

/* The im2col path's columns (a Winograd layer's weight gradient takes
 * that path too). */
static int64_t col_floats(const geom *g)
{
    return g->direct || g->small ? 0 : g->nb * g->Ho * g->Wo * g->K;
}

static cvis__conv_geom direct_geom(const cvis__conv_attr *a, const geom *g)
{
    cvis__conv_geom d = {g->H, g->W, g->C, g->Ho, g->Wo, g->cout, a->kh, a->kw,
                         a->sh, a->sw, a->dh, a->dw, g->pt, g->pl};
    return d;
}

/* The direct kernels run on the worker pool: forward and weight gradients
 * by output rows of the whole batch, data gradients by image (an image's
 * rows share input rows).  Each output element is computed by one thread
 * in one order, so forward and input gradients do not depend on the
 * thread count; weight gradients are summed per range, then together. */
typedef struct direct_job {
    cvis__conv_geom g;
    const float *x, *w, *wt, *dy;
    float *y, *dx, *dw_parts;
    int64_t dw_n;
    int accumulate;
} direct_job;

#define ROW_GRAIN 4

static void forward_rows(void *ctx, int64_t begin, int64_t end)
{
    const direct_job *j = ctx;
    int64_t Ho = j->g.Ho, in = j->g.H * j->g.W * j->g.C, out = Ho * j->g.Wo * j->g.cout;
    for (int64_t b = begin / Ho; b * Ho < end; b++) {
        int64_t oy0 = begin > b * Ho ? begin - b * Ho : 0, oy1 = end - b * Ho < Ho ? end - b * Ho : Ho;
        cvis__conv_direct_forward(&j->g, j->x + b * in, j->w, j->y + b * out, oy0, oy1,
                                  j->accumulate);
    }
}

static void weight_rows(void *ctx, int64_t begin, int64_t end)
{
    const direct_job *j = ctx;
    int64_t Ho = j->g.Ho, in = j->g.H * j->g.W * j->g.C, out = Ho * j->g.Wo * j->g.cout;
    float *dw = j->dw_parts + cvis__parallel_index() * j->dw_n;
    for (int64_t b = begin / Ho; b * Ho < end; b++) {
        int64_t oy0 = begin > b * Ho ? begin - b * Ho : 0, oy1 = end - b * Ho < Ho ? end - b * Ho : Ho;
        cvis__conv_direct_weights(&j->g, j->x + b * in, j->dy + b * out, dw, oy0, oy1);
    }
}

static void data_images(void *ctx, int64_t begin, int64_t end)
{
    const direct_job *j = ctx;
    int64_t in = j->g.H * j->g.W * j->g.C, out = j->g.Ho * j->g.Wo * j->g.cout;
    for (int64_t b = begin; b < end; b++)
        cvis__conv_direct_data(&j->g, j->dy + b * out, j->wt, j->dx + b * in);
}

static cvis_status conv_forward(cvis__op_args *args)
{
    const cvis__conv_attr *a = args->attr;
    const cvis_tensor *x = args->in[0];
    const float *w = args->params[0]->data;
    geom g;
    cvis__shape xs = cvis__tensor_get_shape(x);
    CVIS_TRY(conv_geom(a, &xs, &g));
    float *ws;
    cvis__conv_geom dg = direct_geom(a, &g);
    cvis__wino_plan plan = {0};
    if (g.wino)
        plan = cvis__winograd_plan(&dg, g.B);
    int64_t scratch = g.wino ? plan.floats : col_floats(&g);
    CVIS_TRY(cvis__ws_get(args->ws, (size_t)(3 * a->cout + scratch), &ws));
    float *scale = ws, *shift = ws + a->cout, *pre = ws + 2 * a->cout, *col = ws + 3 * a->cout;
    float *y = args->out->data;
    int64_t M = g.Ho * g.Wo;
    epilogue_coeffs(a, args->params, pre, scale, shift);
    if (g.wino) {
        cvis__winograd_forward(&dg, &plan, x->data, w, y, 0, col);
    } else if (g.direct) {
        cvis__sgemm(CblasNoTrans, CblasNoTrans, (int)(g.B * M), a->cout, (int)g.C,
                    1.0f, x->data, (int)g.C, w, a->cout, 0.0f, y, a->cout);
    } else if (g.small) {
        direct_job j = {dg, x->data, w, NULL, NULL, y, NULL, NULL, 0, 0};
        cvis__parallel_for(g.B * g.Ho, ROW_GRAIN, forward_rows, &j);
    } else {
        for (int64_t b = 0; b < g.B; b += g.nb) {
            int64_t n = g.B - b < g.nb ? g.B - b : g.nb;
            const float *xb = x->data + b * g.H * g.W * g.C;
            float *yb = y + b * M * a->cout;
            for (int gr = 0; gr < a->groups; gr++) {
                im2col_par(a, &g, xb, n, gr * g.cg, col);
                cvis__sgemm(CblasNoTrans, CblasNoTrans, (int)(n * M), g.coutg, (int)g.K,
                            1.0f, col, (int)g.K, w + gr * g.coutg, a->cout, 0.0f,
                            yb + gr * g.coutg, a->cout);
            }
            /* while these images' outputs are still in cache */
            epilogue(a, args->drop_act, yb, n * M, pre, scale, shift);
        }
        return CVIS_OK;
    }
    epilogue(a, args->drop_act, y, g.B * M, pre, scale, shift);
    return CVIS_OK;
}

/* The geometry of the data gradient of a stride-1 convolution as a
 * forward convolution: dy (Ho x Wo x cout) in, the input's shape out, the
 * same kernel size and dilation, pads (k-1)*d - pad before. */
static void flip_geom(const cvis__conv_attr *a, const geom *g, int pt, int pl, geom *f)
{
    *f = *g;
    f->H = g->Ho;
    f->W = g->Wo;
    f->C = f->cg = g->cout;
    f->Ho = g->H;
    f->Wo = g->W;
    f->cout = f->coutg = (int)g->C;
    f->pt = pt;
    f->pl = pl;
    f->K = (int64_t)a->kh * a->kw * g->cout;
    f->direct = f->small = 0;
    int64_t per_image = f->Ho * f->Wo * f->K;
    f->nb = per_image >= COL_BATCH_FLOATS ? 1 : COL_BATCH_FLOATS / per_image;
    if (f->nb > f->B)
        f->nb = f->B > 0 ? f->B : 1;
}

/* The kernel (kh, kw, C, cout) flipped in both spatial axes and transposed
 * to (kh, kw, cout, Cp), zero for channels C..Cp-1; in blocks of 16 x 16 so
 * that both sides are read and written a cache line at a time. */
static void flip_kernel(const cvis__conv_attr *a, int64_t C, int64_t Cp, const float *w, float *wt)
{
    int64_t cout = a->cout, taps = (int64_t)a->kh * a->kw;
    for (int64_t t = 0; t < taps; t++) {
        const float *src = w + (taps - 1 - t) * C * cout; /* (C, cout) of the mirrored tap */
        float *dst = wt + t * cout * Cp;                 /* (cout, Cp) */
        for (int64_t c0 = 0; c0 < Cp; c0 += 16)
            for (int64_t o0 = 0; o0 < cout; o0 += 16)
                for (int64_t o = o0; o < o0 + 16 && o < cout; o++)
                    for (int64_t c = c0; c < c0 + 16 && c < Cp; c++)
                        dst[o * Cp + c] = c < C ? src[c * cout + o] : 0.0f;
    }
}

static cvis_status conv_backward(cvis__op_args *args)
{
    const cvis__conv_attr *a = args->attr;
    const cvis_tensor *x = args->in[0];
    const float *w = args->params[0]->data;
    geom g;
    cvis__shape xs = cvis__tensor_get_shape(x);
    CVIS_TRY(conv_geom(a, &xs, &g));
    float *dw = args->dparams ? args->dparams[0] : NULL;
    float *db = (args->dparams && a->has_bias) ? args->dparams[1] : NULL;
    if (args->dparams && a->has_bn)
        return cvis__fail(CVIS_E_UNSUPPORTED,
                          "weight gradients of a convolution with merged batch norm");
    int64_t M = g.Ho * g.Wo, n = args->out->size;
    /* Data gradients with stride 1 are a forward convolution of dy with the
     * flipped kernel: on the direct path (input channels padded to a
     * multiple of 8 through a scratch image when needed), and on the GEMM
     * path as im2col of dy + GEMM, which has no col2im to split between
     * threads (its channel ranges scale poorly).  Else, on the direct path,
     * the scatter kernel for whole vectors of channels; on the GEMM path,
     * GEMM + col2im. */
    int flip_pt = (a->kh - 1) * a->dh - g.pt, flip_pl = (a->kw - 1) * a->dw - g.pl;
    int stride1 = a->sh == 1 && a->sw == 1 && flip_pt >= 0 && flip_pl >= 0;
    int flip = g.small && stride1;
    /* the flipped kernel is transposed on every call: worth it while it is
     * small beside dy's columns (about C against B*H*W values per tap) */
    int gemm_flip = !g.small && !g.direct && a->groups == 1 && stride1 && args->din[0] &&
                    g.C * 8 <= g.B * g.H * g.W && g.B * g.H * g.W <= INT32_MAX &&
                    (int64_t)a->kh * a->kw * a->cout <= INT32_MAX;
    geom gf = {0};
    cvis__conv_geom fg = {0};
    cvis__wino_plan plan = {0};
    if (gemm_flip) {
        flip_geom(a, &g, flip_pt, flip_pl, &gf);
        gf.wino = winograd_fits(a->kh, a->kw, 1, 1, a->dh, a->dw, 1, &gf);
        fg = direct_geom(a, &gf);
        fg.sh = fg.sw = 1;
        if (gf.wino)
            plan = cvis__winograd_plan(&fg, g.B);
    }
    int direct_data = g.small && g.C % 8 == 0;
    int64_t Cp = flip ? (g.C + 7) / 8 * 8 : g.C; /* the flipped kernel's output channels */
    /* columns of x for the weight gradient (im2col path), and the data
     * gradient's scratch: columns for col2im, the flipped product's
     * columns or Winograd's; each only when it is used */
    int64_t cols = !g.small && dw ? col_floats(&g) : 0;
    int64_t dcols = g.small ? (!direct_data && !flip ? M * g.K : 0)
                    : gf.wino ? plan.floats
                    : gemm_flip ? col_floats(&gf)
                    : args->din[0] ? col_floats(&g)
                                   : 0;
    int64_t wt_n = flip || gemm_flip ? (int64_t)a->kh * a->kw * Cp * a->cout
                   : direct_data     ? (int64_t)a->kh * a->kw * g.C * a->cout
                                     : 0;
    int64_t tmp_n = flip && Cp != g.C ? g.H * g.W * Cp : 0;
    int64_t dw_n = (int64_t)a->kh * a->kw * g.C * a->cout;
    int ways = g.small && dw ? cvis__parallel_ways(g.B * g.Ho, ROW_GRAIN) : 0;
    float *ws;
    CVIS_TRY(cvis__ws_get(args->ws,
                          (size_t)(3 * a->cout + n + cols + dcols + wt_n + ways * dw_n + tmp_n),
                          &ws));
    float *scale = ws, *shift = ws + a->cout, *pre = ws + 2 * a->cout, *dconv = ws + 3 * a->cout;
    float *col = dconv + n, *dcol = col + cols, *wt = dcol + dcols, *dw_parts = wt + wt_n;
    float *tmp = dw_parts + ways * dw_n;
    /* d(pre-activation), then through the epilogue's scale */
    cvis__act_grad(args->drop_act ? CVIS_ACT_LINEAR : a->act, a->alpha, NULL, args->out->data,
                   args->dout, dconv, n, a->cout, args->relu_mode, 0);
    epilogue_coeffs(a, args->params, pre, scale, shift);
    if (a->has_bn)
        for (int64_t r = 0; r < g.B * M; r++)
            for (int c = 0; c < a->cout; c++)
                dconv[r * a->cout + c] *= scale[c];
    if (db)
        for (int64_t r = 0; r < g.B * M; r++)
            for (int c = 0; c < a->cout; c++)
                db[c] += dconv[r * a->cout + c];
    float *dx = args->din[0];
    if (g.direct) {
        if (dw)
            cvis__sgemm(CblasTrans, CblasNoTrans, (int)g.C, a->cout, (int)(g.B * M),
                        1.0f, x->data, (int)g.C, dconv, a->cout, 1.0f, dw, a->cout);
        if (dx)
            cvis__sgemm(CblasNoTrans, CblasTrans, (int)(g.B * M), (int)g.C, a->cout,
                        1.0f, dconv, a->cout, w, a->cout, 1.0f, dx, (int)g.C);
        return CVIS_OK;
    }
    if (g.small) {
        direct_job j = {direct_geom(a, &g), x->data, w, wt, dconv, NULL, dx, dw_parts, dw_n, 0};
        if (dw) {
            memset(dw_parts, 0, (size_t)(ways * dw_n) * sizeof(float));
            /* exactly the `ways` partial sums allocated above, even if the
             * thread count changes meanwhile */
            cvis__parallel_run(g.B * g.Ho, ways, weight_rows, &j);
            for (int p = 0; p < ways; p++)
                for (int64_t i = 0; i < dw_n; i++)
                    dw[i] += dw_parts[p * dw_n + i];
        }
        if (dx && flip) {
            flip_kernel(a, g.C, Cp, w, wt);
            direct_job f = {{g.Ho, g.Wo, a->cout, g.H, g.W, Cp, a->kh, a->kw, 1, 1, a->dh, a->dw,
                             flip_pt, flip_pl},
                            dconv, wt, NULL, NULL, dx, NULL, NULL, 0, 1};
            if (Cp == g.C) {
                cvis__parallel_for(g.B * g.H, ROW_GRAIN, forward_rows, &f);
            } else {
                /* one image at a time into the padded scratch, then added */
                f.accumulate = 0;
                f.y = tmp;
                for (int64_t b = 0; b < g.B; b++) {
                    f.x = dconv + b * M * a->cout;
                    cvis__parallel_for(g.H, ROW_GRAIN, forward_rows, &f);
                    float *dxb = dx + b * g.H * g.W * g.C;
                    for (int64_t p = 0; p < g.H * g.W; p++)
                        for (int64_t c = 0; c < g.C; c++)
                            dxb[p * g.C + c] += tmp[p * Cp + c];
                }
            }
        } else if (dx && direct_data) {
            /* the kernel per tap, transposed to (cout, C) */
            for (int64_t t = 0; t < (int64_t)a->kh * a->kw; t++)
                for (int64_t c = 0; c < g.C; c++)
                    for (int co = 0; co < a->cout; co++)
                        wt[(t * a->cout + co) * g.C + c] = w[(t * g.C + c) * a->cout + co];
            cvis__parallel_for(g.B, 1, data_images, &j);
        } else if (dx) {
            for (int64_t b = 0; b < g.B; b++) {
                cvis__sgemm(CblasNoTrans, CblasTrans, (int)M, (int)g.K, a->cout, 1.0f,
                            dconv + b * M * a->cout, a->cout, w, a->cout, 0.0f, dcol, (int)g.K);
                col2im_par(a, &g, dcol, 1, 0, dx + b * g.H * g.W * g.C);
            }
        }
        return CVIS_OK;
    }
    if (dx && gemm_flip) {
        flip_kernel(a, g.C, g.C, w, wt);
        if (gf.wino)
            cvis__winograd_forward(&fg, &plan, dconv, wt, dx, 1, dcol);
        for (int64_t b = 0; b < g.B && !gf.wino; b += gf.nb) {
            int64_t nimg = g.B - b < gf.nb ? g.B - b : gf.nb;
            im2col_par(a, &gf, dconv + b * M * a->cout, nimg, 0, dcol);
            cvis__sgemm(CblasNoTrans, CblasNoTrans, (int)(nimg * g.H * g.W), (int)g.C, (int)gf.K,
                        1.0f, dcol, (int)gf.K, wt, (int)g.C, 1.0f, dx + b * g.H * g.W * g.C,
                        (int)g.C);
        }
        dx = NULL;
    }
    for (int64_t b = 0; b < g.B; b += g.nb) {
        int64_t nimg = g.B - b < g.nb ? g.B - b : g.nb;
        const float *xb = x->data + b * g.H * g.W * g.C;
        const float *dyb = dconv + b * M * a->cout;
        for (int gr = 0; gr < a->groups; gr++) {
            if (dw) {
                im2col_par(a, &g, xb, nimg, gr * g.cg, col);
                cvis__sgemm(CblasTrans, CblasNoTrans, (int)g.K, g.coutg, (int)(nimg * M), 1.0f,
                            col, (int)g.K, dyb + gr * g.coutg, a->cout, 1.0f, dw + gr * g.coutg,
                            a->cout);
            }
            if (dx) {
                cvis__sgemm(CblasNoTrans, CblasTrans, (int)(nimg * M), (int)g.K, g.coutg, 1.0f,
                            dyb + gr * g.coutg, a->cout, w + gr * g.coutg, a->cout, 0.0f, dcol,
                            (int)g.K);
                col2im_par(a, &g, dcol, nimg, gr * g.cg, dx + b * g.H * g.W * g.C);
            }
        }
    }
    return CVIS_OK;
}

const cvis__op cvis__op_conv2d = {"conv2d", conv_shape, conv_forward, conv_backward, 0};
