/* Element-wise add, subtract, multiply and divide with numpy broadcasting. */
#include <string.h>

#include "error.h"
#include "ops.h"
#include "parallel.h"

static cvis_status binary_shape(const void *attr, int n_in, const cvis__shape *in,
                                cvis__shape *out)
{
    (void)attr;
    if (n_in != 2)
        return cvis__fail(CVIS_E_INTERNAL, "element-wise op takes two inputs");
    int nd = in[0].ndim > in[1].ndim ? in[0].ndim : in[1].ndim;
    out->ndim = nd;
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - in[0].ndim), ib = i - (nd - in[1].ndim);
        int64_t da = ia >= 0 ? in[0].d[ia] : 1, db = ib >= 0 ? in[1].d[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[96], sb[96];
            return cvis__fail(CVIS_E_SHAPE, "shapes %s and %s do not broadcast",
                              cvis__shape_str(&in[0], sa, sizeof sa),
                              cvis__shape_str(&in[1], sb, sizeof sb));
        }
        out->d[i] = da == 1 ? db : da;
    }
    return CVIS_OK;
}

/* Strides of an input seen through the output's shape (0 on broadcast axes). */
static void bcast_strides(const cvis_tensor *t, const cvis_tensor *out, int64_t *st)
{
    int off = out->ndim - t->ndim;
    int64_t s = 1;
    for (int i = out->ndim - 1; i >= 0; i--) {
        int j = i - off;
        int64_t d = j >= 0 ? t->shape[j] : 1;
        st[i] = d == 1 ? 0 : s;
        s *= d;
    }
}

static float apply(int kind, float a, float b)
{
    switch (kind) {
    case CVIS__BIN_ADD: return a + b;
    case CVIS__BIN_SUB: return a - b;
    case CVIS__BIN_MUL: return a * b;
    default: return a / b;
    }
}

/* Calls visit(i, ia, ib) for every output element with its input offsets. */
#define FOR_EACH_BROADCAST(out, sa, sb, BODY)                                  \
    do {                                                                       \
        int64_t idx_[CVIS_MAX_DIMS] = {0}, ia = 0, ib = 0;                      \
        for (int64_t i = 0; i < (out)->size; i++) {                            \
            BODY;                                                              \
            for (int ax = (out)->ndim - 1; ax >= 0; ax--) {                    \
                idx_[ax]++;                                                    \
                ia += sa[ax];                                                  \
                ib += sb[ax];                                                  \
                if (idx_[ax] < (out)->shape[ax])                               \
                    break;                                                     \
                ia -= sa[ax] * idx_[ax];                                       \
                ib -= sb[ax] * idx_[ax];                                       \
                idx_[ax] = 0;                                                  \
            }                                                                  \
        }                                                                      \
    } while (0)

/* Inputs of the output's shape (a residual connection): one vectorizable
 * loop per kind, without the broadcast index arithmetic, on the worker
 * pool. */
typedef struct same_job {
    int kind;
    const float *x, *z; /* forward: the inputs; backward: x is dy */
    float *y, *dz;      /* forward: y is the output; backward: y, dz are da, db */
    float sign;
} same_job;

#define SAME_GRAIN 32768

static void same_forward(void *ctx, int64_t b, int64_t e)
{
    const same_job *j = ctx;
    const float *x = j->x, *z = j->z;
    float *y = j->y;
    switch (j->kind) {
    case CVIS__BIN_ADD:
        for (int64_t i = b; i < e; i++)
            y[i] = x[i] + z[i];
        break;
    case CVIS__BIN_SUB:
        for (int64_t i = b; i < e; i++)
            y[i] = x[i] - z[i];
        break;
    case CVIS__BIN_MUL:
        for (int64_t i = b; i < e; i++)
            y[i] = x[i] * z[i];
        break;
    default:
        for (int64_t i = b; i < e; i++)
            y[i] = x[i] / z[i];
        break;
    }
}

/* the gradients of an addition or a subtraction (sign -1) */
static void same_backward(void *ctx, int64_t b, int64_t e)
{
    const same_job *j = ctx;
    const float *dy = j->x;
    if (j->y)
        for (int64_t i = b; i < e; i++)
            j->y[i] += dy[i];
    if (j->dz)
        for (int64_t i = b; i < e; i++)
            j->dz[i] += j->sign * dy[i];
}

static cvis_status binary_forward(cvis__op_args *args)
{
    const cvis__binary_attr *at = args->attr;
    const cvis_tensor *a = args->in[0], *b = args->in[1];
    float *y = args->out->data;
    if (a->size == args->out->size && b->size == args->out->size) {
        same_job j = {at->kind, a->data, b->data, y, NULL, 0};
        cvis__parallel_for(a->size, SAME_GRAIN, same_forward, &j);
        return CVIS_OK;
    }
    int64_t sa[CVIS_MAX_DIMS], sb[CVIS_MAX_DIMS];
    bcast_strides(a, args->out, sa);
    bcast_strides(b, args->out, sb);
    FOR_EACH_BROADCAST(args->out, sa, sb, y[i] = apply(at->kind, a->data[ia], b->data[ib]));
    return CVIS_OK;
}

static cvis_status binary_backward(cvis__op_args *args)
{
    const cvis__binary_attr *at = args->attr;
    const cvis_tensor *a = args->in[0], *b = args->in[1];
    float *da = args->din[0], *db = args->din[1];
    const float *dy = args->dout;
    int64_t sa[CVIS_MAX_DIMS], sb[CVIS_MAX_DIMS];
    bcast_strides(a, args->out, sa);
    bcast_strides(b, args->out, sb);
    int same = a->size == args->out->size && b->size == args->out->size;
    switch (at->kind) {
    case CVIS__BIN_ADD:
    case CVIS__BIN_SUB: {
        float sign = at->kind == CVIS__BIN_SUB ? -1.0f : 1.0f;
        if (same) {
            same_job j = {at->kind, dy, NULL, da, db, sign};
            cvis__parallel_for(args->out->size, SAME_GRAIN, same_backward, &j);
            break;
        }
        FOR_EACH_BROADCAST(args->out, sa, sb, {
            if (da)
                da[ia] += dy[i];
            if (db)
                db[ib] += sign * dy[i];
        });
        break;
    }
    case CVIS__BIN_MUL:
        FOR_EACH_BROADCAST(args->out, sa, sb, {
            if (da)
                da[ia] += dy[i] * b->data[ib];
            if (db)
                db[ib] += dy[i] * a->data[ia];
        });
        break;
    default:
        FOR_EACH_BROADCAST(args->out, sa, sb, {
            float bv = b->data[ib];
            if (da)
                da[ia] += dy[i] / bv;
            if (db)
                db[ib] -= dy[i] * a->data[ia] / (bv * bv);
        });
        break;
    }
    return CVIS_OK;
}

const cvis__op cvis__op_binary = {"binary", binary_shape, binary_forward, binary_backward, 0};
