/* Max and average pooling over height and width (NHWC), with pads, ceil
 * mode and the choice of counting pads in the average; global average
 * pooling. */
#include <float.h>
#include <string.h>

#include "error.h"
#include "ops.h"
#include "parallel.h"

typedef struct pgeom {
    int64_t B, H, W, C, Ho, Wo;
    int pt, pl, pb, pr;
} pgeom;

static cvis_status pool_geom(const cvis__pool_attr *a, const cvis__shape *x, pgeom *g)
{
    if (x->ndim != 4)
        return cvis__fail(CVIS_E_SHAPE, "pooling expects (B,H,W,C) input, got rank %d", x->ndim);
    g->B = x->d[0];
    g->H = x->d[1];
    g->W = x->d[2];
    g->C = x->d[3];
    CVIS_TRY(cvis__window(g->H, a->kh, a->sh, 1, a->pad_mode, a->pt, a->pb, a->ceil_mode, &g->Ho,
                          &g->pt, &g->pb));
    CVIS_TRY(cvis__window(g->W, a->kw, a->sw, 1, a->pad_mode, a->pl, a->pr, a->ceil_mode, &g->Wo,
                          &g->pl, &g->pr));
    return CVIS_OK;
}

static cvis_status pool_shape(const void *attr, int n_in, const cvis__shape *in, cvis__shape *out)
{
    pgeom g;
    if (n_in != 1)
        return cvis__fail(CVIS_E_INTERNAL, "pooling takes one input");
    CVIS_TRY(pool_geom(attr, &in[0], &g));
    out->ndim = 4;
    out->d[0] = g.B;
    out->d[1] = g.Ho;
    out->d[2] = g.Wo;
    out->d[3] = g.C;
    return CVIS_OK;
}

/* The window of output (oy,ox): clipped bounds and the average's divisor. */
static void window(const cvis__pool_attr *a, const pgeom *g, int64_t oy, int64_t ox, int64_t *y0,
                   int64_t *y1, int64_t *x0, int64_t *x1, float *divisor)
{
    int64_t hs = oy * a->sh - g->pt, ws = ox * a->sw - g->pl;
    int64_t he = hs + a->kh, we = ws + a->kw;
    int64_t hp = he < g->H + g->pb ? he : g->H + g->pb;
    int64_t wp = we < g->W + g->pr ? we : g->W + g->pr;
    int64_t padded = (hp - hs) * (wp - ws);
    *y0 = hs < 0 ? 0 : hs;
    *x0 = ws < 0 ? 0 : ws;
    *y1 = he < g->H ? he : g->H;
    *x1 = we < g->W ? we : g->W;
    int64_t inside = (*y1 - *y0) * (*x1 - *x0);
    *divisor = (float)(a->count_include_pad ? padded : inside);
}

typedef struct pool_job {
    const cvis__pool_attr *a;
    const pgeom *g;
    const float *x, *y, *dy;
    float *out; /* forward: y; backward: dx */
    int32_t *tap;
} pool_job;

/* Output rows [r0, r1) of the whole batch (row r: image r / Ho). */
static void forward_range(void *ctx, int64_t r0, int64_t r1)
{
    const pool_job *j = ctx;
    const cvis__pool_attr *a = j->a;
    const pgeom *g = j->g;
    for (int64_t r = r0; r < r1; r++) {
        int64_t b = r / g->Ho, oy = r % g->Ho;
        for (int64_t ox = 0; ox < g->Wo; ox++) {
            int64_t y0, y1, x0, x1;
            float div;
            window(a, g, oy, ox, &y0, &y1, &x0, &x1, &div);
            float *o = j->out + ((b * g->Ho + oy) * g->Wo + ox) * g->C;
            int empty = y1 <= y0 || x1 <= x0;
            for (int64_t c = 0; c < g->C; c++)
                o[c] = (a->kind == CVIS_POOL_MAX && !empty) ? -FLT_MAX : 0.0f;
            for (int64_t iy = y0; iy < y1; iy++)
                for (int64_t ix = x0; ix < x1; ix++) {
                    const float *v = j->x + ((b * g->H + iy) * g->W + ix) * g->C;
                    if (a->kind == CVIS_POOL_MAX) {
                        for (int64_t c = 0; c < g->C; c++)
                            o[c] = v[c] > o[c] ? v[c] : o[c];
                    } else {
                        for (int64_t c = 0; c < g->C; c++)
                            o[c] += v[c];
                    }
                }
            if (a->kind == CVIS_POOL_AVG && div > 0)
                for (int64_t c = 0; c < g->C; c++)
                    o[c] /= div;
        }
    }
}

static cvis_status pool_forward(cvis__op_args *args)
{
    pgeom g;
    cvis__shape xs = cvis__tensor_get_shape(args->in[0]);
    CVIS_TRY(pool_geom(args->attr, &xs, &g));
    pool_job j = {args->attr, &g, args->in[0]->data, NULL, NULL, args->out->data, NULL};
    cvis__parallel_for(g.B * g.Ho, 1 + 32768 / (g.Wo * g.C + 1), forward_range, &j);
    return CVIS_OK;
}

/* Channels [c0, c1) of every window: overlapping windows add to the same
 * input rows, so threads take channels, not rows.  Max: per channel, the
 * first tap in scan order that holds the maximum takes the gradient.  The
 * taps are scanned backwards with channels innermost (NHWC rows are
 * contiguous), so that a plain select keeps the earliest hit: a branch per
 * value would be mispredicted. */
static void backward_range(void *ctx, int64_t c0, int64_t c1)
{
    const pool_job *j = ctx;
    const cvis__pool_attr *a = j->a;
    const pgeom *g = j->g;
    float *dx = j->out;
    int32_t *tap = j->tap;
    for (int64_t b = 0; b < g->B; b++)
        for (int64_t oy = 0; oy < g->Ho; oy++)
            for (int64_t ox = 0; ox < g->Wo; ox++) {
                int64_t y0, y1, x0, x1;
                float div;
                window(a, g, oy, ox, &y0, &y1, &x0, &x1, &div);
                int64_t o = ((b * g->Ho + oy) * g->Wo + ox) * g->C, ww = x1 - x0;
                const float *yo = j->y + o, *dyo = j->dy + o;
                if (a->kind == CVIS_POOL_MAX) {
                    for (int64_t c = c0; c < c1; c++)
                        tap[c] = -1;
                    for (int64_t t = (y1 - y0) * ww - 1; t >= 0; t--) {
                        const float *v =
                            j->x + ((b * g->H + y0 + t / ww) * g->W + x0 + t % ww) * g->C;
                        int32_t t32 = (int32_t)t;
                        for (int64_t c = c0; c < c1; c++)
                            tap[c] = v[c] == yo[c] ? t32 : tap[c];
                    }
                    for (int64_t c = c0; c < c1; c++)
                        if (tap[c] >= 0)
                            dx[((b * g->H + y0 + tap[c] / ww) * g->W + x0 + tap[c] % ww) * g->C +
                               c] += dyo[c];
                } else if (div > 0) {
                    for (int64_t iy = y0; iy < y1; iy++)
                        for (int64_t ix = x0; ix < x1; ix++) {
                            float *d = dx + ((b * g->H + iy) * g->W + ix) * g->C;
                            for (int64_t c = c0; c < c1; c++)
                                d[c] += dyo[c] / div;
                        }
                }
            }
}

static cvis_status pool_backward(cvis__op_args *args)
{
    const cvis__pool_attr *a = args->attr;
    if (!args->din[0])
        return CVIS_OK;
    pgeom g;
    cvis__shape xs = cvis__tensor_get_shape(args->in[0]);
    CVIS_TRY(pool_geom(a, &xs, &g));
    int32_t *tap = NULL;
    if (a->kind == CVIS_POOL_MAX)
        CVIS_TRY(cvis__ws_get(args->ws, (size_t)g.C, (float **)&tap));
    pool_job j = {a, &g, args->in[0]->data, args->out->data, args->dout, args->din[0], tap};
    cvis__parallel_for(g.C, 16, backward_range, &j);
    return CVIS_OK;
}

const cvis__op cvis__op_pool2d = {"pool2d", pool_shape, pool_forward, pool_backward, 0};

static cvis_status gap_shape(const void *attr, int n_in, const cvis__shape *in, cvis__shape *out)
{
    const cvis__gap_attr *a = attr;
    if (n_in != 1 || in[0].ndim != 4)
        return cvis__fail(CVIS_E_SHAPE, "global average pooling expects (B,H,W,C) input");
    if (a->keepdims) {
        *out = in[0];
        out->d[1] = out->d[2] = 1;
    } else {
        out->ndim = 2;
        out->d[0] = in[0].d[0];
        out->d[1] = in[0].d[3];
    }
    return CVIS_OK;
}

static cvis_status gap_forward(cvis__op_args *args)
{
    const cvis_tensor *x = args->in[0];
    int64_t B = x->shape[0], HW = x->shape[1] * x->shape[2], C = x->shape[3];
    float *y = args->out->data;
    for (int64_t b = 0; b < B; b++) {
        float *o = y + b * C;
        for (int64_t c = 0; c < C; c++)
            o[c] = 0;
        for (int64_t p = 0; p < HW; p++) {
            const float *v = x->data + (b * HW + p) * C;
            for (int64_t c = 0; c < C; c++)
                o[c] += v[c];
        }
        for (int64_t c = 0; c < C; c++)
            o[c] = HW ? o[c] / (float)HW : 0;
    }
    return CVIS_OK;
}

static cvis_status gap_backward(cvis__op_args *args)
{
    const cvis_tensor *x = args->in[0];
    float *dx = args->din[0];
    if (!dx)
        return CVIS_OK;
    int64_t B = x->shape[0], HW = x->shape[1] * x->shape[2], C = x->shape[3];
    for (int64_t b = 0; b < B; b++)
        for (int64_t p = 0; p < HW; p++)
            for (int64_t c = 0; c < C; c++)
                dx[(b * HW + p) * C + c] += args->dout[b * C + c] / (float)HW;
    return CVIS_OK;
}

const cvis__op cvis__op_global_avg_pool = {"global_avg_pool", gap_shape, gap_forward,
                                           gap_backward, 0};
