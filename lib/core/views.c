/* Ops whose output is their input's data under another shape: flatten,
 * reshape and identity (dropout at inference).  The tape aliases their
 * values and gradients, so they cost nothing. */
#include "error.h"
#include "ops.h"

static cvis_status flatten_shape(const void *attr, int n_in, const cvis__shape *in,
                                 cvis__shape *out)
{
    (void)attr;
    if (n_in != 1 || in[0].ndim < 1)
        return cvis__fail(CVIS_E_SHAPE, "flatten expects one input with a batch axis");
    int64_t n = 1;
    for (int i = 1; i < in[0].ndim; i++)
        n *= in[0].d[i];
    out->ndim = 2;
    out->d[0] = in[0].d[0];
    out->d[1] = n;
    return CVIS_OK;
}

static cvis_status identity_shape(const void *attr, int n_in, const cvis__shape *in,
                                  cvis__shape *out)
{
    (void)attr;
    if (n_in != 1)
        return cvis__fail(CVIS_E_INTERNAL, "identity takes one input");
    *out = in[0];
    return CVIS_OK;
}

static cvis_status reshape_shape(const void *attr, int n_in, const cvis__shape *in,
                                 cvis__shape *out)
{
    const cvis__reshape_attr *a = attr;
    if (n_in != 1 || in[0].ndim < 1 || a->ndim + 1 > CVIS_MAX_DIMS)
        return cvis__fail(CVIS_E_SHAPE, "reshape expects one input with a batch axis");
    int64_t total = 1, known = 1;
    int free_axis = -1;
    for (int i = 1; i < in[0].ndim; i++)
        total *= in[0].d[i];
    out->ndim = a->ndim + 1;
    out->d[0] = in[0].d[0];
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] == -1) {
            if (free_axis >= 0)
                return cvis__fail(CVIS_E_SHAPE, "reshape with more than one inferred axis");
            free_axis = i + 1;
            continue;
        }
        int64_t size = a->shape[i];
        if (size <= -2) { /* the size of input axis -2-size */
            int64_t k = -2 - size;
            if (k >= in[0].ndim)
                return cvis__fail(CVIS_E_SHAPE, "reshape copies axis %lld of a rank-%d input",
                                  (long long)k, in[0].ndim);
            size = in[0].d[k];
        }
        if (size < 0)
            return cvis__fail(CVIS_E_SHAPE, "reshape to a negative size");
        out->d[i + 1] = size;
        known *= size;
    }
    if (free_axis >= 0) {
        if (known == 0 || total % known)
            return cvis__fail(CVIS_E_SHAPE, "reshape cannot infer an axis");
        out->d[free_axis] = total / known;
        known = total;
    }
    if (known != total)
        return cvis__fail(CVIS_E_SHAPE, "reshape of %lld values into %lld", (long long)total,
                          (long long)known);
    return CVIS_OK;
}

/* Never called: the tape aliases view ops instead of running them. */
static cvis_status view_noop(cvis__op_args *a)
{
    (void)a;
    return CVIS_OK;
}

const cvis__op cvis__op_flatten = {"flatten", flatten_shape, view_noop, view_noop, 1};
const cvis__op cvis__op_identity = {"identity", identity_shape, view_noop, view_noop, 1};
const cvis__op cvis__op_reshape = {"reshape", reshape_shape, view_noop, view_noop, 1};
