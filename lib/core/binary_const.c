/* An element-wise operation between a layer's input and a constant (a
 * weight of the layer), with numpy broadcasting: the scales, shifts and
 * divisors of imported graphs.  The constant's gradient is kept when
 * weight gradients are asked for. */
#include <math.h>
#include <string.h>

#include "error.h"
#include "ops.h"

static cvis_status bc_shape(const void *attr, int n_in, const cvis__shape *in, cvis__shape *out)
{
    (void)attr;
    if (n_in != 1)
        return cvis__fail(CVIS_E_INTERNAL, "a constant operation takes one input");
    /* the constant must broadcast to the input's shape; it is only known
     * with the params, so forward checks it */
    *out = in[0];
    return CVIS_OK;
}

/* Strides of t seen through shape `out` (0 on broadcast axes). */
static int bcast_strides(const cvis_tensor *t, const cvis_tensor *out, int64_t *st)
{
    int off = out->ndim - t->ndim;
    if (off < 0)
        return 0;
    int64_t s = 1;
    for (int i = out->ndim - 1; i >= 0; i--) {
        int j = i - off;
        int64_t d = j >= 0 ? t->shape[j] : 1;
        if (d != 1 && d != out->shape[i])
            return 0;
        st[i] = d == 1 ? 0 : s;
        s *= d;
    }
    return 1;
}

static float apply(int kind, float a, float b)
{
    switch (kind) {
    case CVIS__BIN_ADD: return a + b;
    case CVIS__BIN_SUB: return a - b;
    case CVIS__BIN_MUL: return a * b;
    case CVIS__BIN_DIV: return a / b;
    default: return b == 2.0f ? a * a : powf(a, b);
    }
}

#define FOR_EACH_C(out, sc, BODY)                                               \
    do {                                                                        \
        int64_t idx_[CVIS_MAX_DIMS] = {0}, ic = 0;                              \
        for (int64_t i = 0; i < (out)->size; i++) {                             \
            BODY;                                                               \
            for (int ax = (out)->ndim - 1; ax >= 0; ax--) {                     \
                idx_[ax]++;                                                     \
                ic += sc[ax];                                                   \
                if (idx_[ax] < (out)->shape[ax])                                \
                    break;                                                      \
                ic -= sc[ax] * idx_[ax];                                        \
                idx_[ax] = 0;                                                   \
            }                                                                   \
        }                                                                       \
    } while (0)

static cvis_status strides_of(const cvis__op_args *args, int64_t *sc)
{
    if (args->n_params != 1 || !bcast_strides(args->params[0], args->out, sc)) {
        char a[96], b[96];
        cvis__shape cs = cvis__tensor_get_shape(args->params[0]);
        cvis__shape os = cvis__tensor_get_shape(args->out);
        return cvis__fail(CVIS_E_SHAPE, "a constant of shape %s does not broadcast to %s",
                          cvis__shape_str(&cs, a, sizeof a), cvis__shape_str(&os, b, sizeof b));
    }
    return CVIS_OK;
}

static cvis_status bc_forward(cvis__op_args *args)
{
    const cvis__binary_const_attr *at = args->attr;
    int64_t sc[CVIS_MAX_DIMS];
    CVIS_TRY(strides_of(args, sc));
    const float *x = args->in[0]->data, *c = args->params[0]->data;
    float *y = args->out->data;
    if (at->const_first)
        FOR_EACH_C(args->out, sc, y[i] = apply(at->kind, c[ic], x[i]));
    else
        FOR_EACH_C(args->out, sc, y[i] = apply(at->kind, x[i], c[ic]));
    return CVIS_OK;
}

/* d(a op b)/da and d(a op b)/db at (a, b) with result y. */
static void partials(int kind, float a, float b, float y, float *da, float *db)
{
    switch (kind) {
    case CVIS__BIN_ADD: *da = 1; *db = 1; break;
    case CVIS__BIN_SUB: *da = 1; *db = -1; break;
    case CVIS__BIN_MUL: *da = b; *db = a; break;
    case CVIS__BIN_DIV: *da = 1 / b; *db = -a / (b * b); break;
    default:
        *da = b == 2.0f ? 2 * a : b * powf(a, b - 1);
        *db = a > 0 ? y * logf(a) : 0;
        break;
    }
}

static cvis_status bc_backward(cvis__op_args *args)
{
    const cvis__binary_const_attr *at = args->attr;
    int64_t sc[CVIS_MAX_DIMS];
    CVIS_TRY(strides_of(args, sc));
    const float *x = args->in[0]->data, *c = args->params[0]->data, *y = args->out->data;
    const float *dy = args->dout;
    float *dx = args->din[0], *dc = args->dparams ? args->dparams[0] : NULL;
    FOR_EACH_C(args->out, sc, {
        float pa;
        float pb;
        if (at->const_first) {
            partials(at->kind, c[ic], x[i], y[i], &pb, &pa);
        } else {
            partials(at->kind, x[i], c[ic], y[i], &pa, &pb);
        }
        if (dx)
            dx[i] += dy[i] * pa;
        if (dc)
            dc[ic] += dy[i] * pb;
    });
    return CVIS_OK;
}

const cvis__op cvis__op_binary_const = {"binary_const", bc_shape, bc_forward, bc_backward, 0};
