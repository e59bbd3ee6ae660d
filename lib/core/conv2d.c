/* 2-D convolution in NHWC: im2col + SGEMM (1x1 stride-1 convolutions use
 * the input directly), with the bias, an optional inference batch norm and
 * the activation fused into the output.  Backward-data is GEMM + col2im,
 * backward-weights is im2col + GEMM. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "error.h"
#include "ops.h"

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
} geom;

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

/* Rows (oy,ox), columns (ky,kx,c) for channels [c0, c0+cg) of one image. */
static void im2col(const cvis__conv_attr *a, const geom *g, const float *x, int c0, float *col)
{
    for (int64_t oy = 0; oy < g->Ho; oy++)
        for (int64_t ox = 0; ox < g->Wo; ox++) {
            float *row = col + (oy * g->Wo + ox) * g->K;
            for (int ky = 0; ky < a->kh; ky++) {
                int64_t iy = oy * a->sh - g->pt + (int64_t)ky * a->dh;
                for (int kx = 0; kx < a->kw; kx++) {
                    int64_t ix = ox * a->sw - g->pl + (int64_t)kx * a->dw;
                    float *dst = row + ((int64_t)ky * a->kw + kx) * g->cg;
                    if (iy < 0 || iy >= g->H || ix < 0 || ix >= g->W)
                        memset(dst, 0, (size_t)g->cg * sizeof(float));
                    else
                        memcpy(dst, x + (iy * g->W + ix) * g->C + c0, (size_t)g->cg * sizeof(float));
                }
            }
        }
}

/* The adjoint of im2col: adds the columns back into the image gradient. */
static void col2im(const cvis__conv_attr *a, const geom *g, const float *col, int c0, float *dx)
{
    for (int64_t oy = 0; oy < g->Ho; oy++)
        for (int64_t ox = 0; ox < g->Wo; ox++) {
            const float *row = col + (oy * g->Wo + ox) * g->K;
            for (int ky = 0; ky < a->kh; ky++) {
                int64_t iy = oy * a->sh - g->pt + (int64_t)ky * a->dh;
                if (iy < 0 || iy >= g->H)
                    continue;
                for (int kx = 0; kx < a->kw; kx++) {
                    int64_t ix = ox * a->sw - g->pl + (int64_t)kx * a->dw;
                    if (ix < 0 || ix >= g->W)
                        continue;
                    const float *src = row + ((int64_t)ky * a->kw + kx) * g->cg;
                    float *dst = dx + (iy * g->W + ix) * g->C + c0;
                    for (int c = 0; c < g->cg; c++)
                        dst[c] += src[c];
                }
            }
        }
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

static int64_t col_floats(const geom *g)
{
    return g->direct ? 0 : g->Ho * g->Wo * g->K;
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
    CVIS_TRY(cvis__ws_get(args->ws, (size_t)(3 * a->cout + col_floats(&g)), &ws));
    float *scale = ws, *shift = ws + a->cout, *pre = ws + 2 * a->cout, *col = ws + 3 * a->cout;
    float *y = args->out->data;
    int64_t M = g.Ho * g.Wo;
    if (g.direct) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(g.B * M), a->cout, (int)g.C,
                    1.0f, x->data, (int)g.C, w, a->cout, 0.0f, y, a->cout);
    } else {
        for (int64_t b = 0; b < g.B; b++) {
            const float *xb = x->data + b * g.H * g.W * g.C;
            float *yb = y + b * M * a->cout;
            for (int gr = 0; gr < a->groups; gr++) {
                im2col(a, &g, xb, gr * g.cg, col);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, g.coutg, (int)g.K,
                            1.0f, col, (int)g.K, w + gr * g.coutg, a->cout, 0.0f,
                            yb + gr * g.coutg, a->cout);
            }
        }
    }
    epilogue_coeffs(a, args->params, pre, scale, shift);
    int64_t rows = g.B * M;
    for (int64_t r = 0; r < rows; r++) {
        float *v = y + r * a->cout;
        if (a->has_bn)
            for (int c = 0; c < a->cout; c++)
                v[c] = (v[c] + pre[c]) * scale[c] + shift[c];
        else
            for (int c = 0; c < a->cout; c++)
                v[c] = v[c] + shift[c];
    }
    if (!args->drop_act)
        cvis__act_apply(a->act, a->alpha, y, args->out->size, a->cout);
    return CVIS_OK;
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
    float *ws;
    CVIS_TRY(cvis__ws_get(args->ws, (size_t)(3 * a->cout + n + 2 * col_floats(&g)), &ws));
    float *scale = ws, *shift = ws + a->cout, *pre = ws + 2 * a->cout, *dconv = ws + 3 * a->cout;
    float *col = dconv + n, *dcol = col + col_floats(&g);
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
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g.C, a->cout, (int)(g.B * M),
                        1.0f, x->data, (int)g.C, dconv, a->cout, 1.0f, dw, a->cout);
        if (dx)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(g.B * M), (int)g.C, a->cout,
                        1.0f, dconv, a->cout, w, a->cout, 1.0f, dx, (int)g.C);
        return CVIS_OK;
    }
    for (int64_t b = 0; b < g.B; b++) {
        const float *xb = x->data + b * g.H * g.W * g.C;
        const float *dyb = dconv + b * M * a->cout;
        for (int gr = 0; gr < a->groups; gr++) {
            if (dw) {
                im2col(a, &g, xb, gr * g.cg, col);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g.K, g.coutg, (int)M, 1.0f,
                            col, (int)g.K, dyb + gr * g.coutg, a->cout, 1.0f, dw + gr * g.coutg,
                            a->cout);
            }
            if (dx) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)g.K, g.coutg, 1.0f,
                            dyb + gr * g.coutg, a->cout, w + gr * g.coutg, a->cout, 0.0f, dcol,
                            (int)g.K);
                col2im(a, &g, dcol, gr * g.cg, dx + b * g.H * g.W * g.C);
            }
        }
    }
    return CVIS_OK;
}

const cvis__op cvis__op_conv2d = {"conv2d", conv_shape, conv_forward, conv_backward, 0};
