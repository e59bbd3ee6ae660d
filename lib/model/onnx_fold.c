/* Constant folding: ONNX semantics on constant tensors, in double for
 * arithmetic (exact for the integers of shape computations) and stored
 * back as float32 or int64. */
#include "onnx_fold.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

int cvis__onnx_is_float_type(int dtype)
{
    return dtype == CVIS__ONNX_FLOAT || dtype == CVIS__ONNX_FLOAT16 ||
           dtype == CVIS__ONNX_DOUBLE || dtype == CVIS__ONNX_BFLOAT16;
}

double cvis__onnx_get(const cvis__onnx_tensor *t, int64_t k)
{
    return t->f ? (double)t->f[k] : t->i ? (double)t->i[k] : 0.0;
}

int64_t cvis__onnx_to_int(double v)
{
    if (!(v == v))
        return 0;
    if (v >= 9223372036854775807.0)
        return INT64_MAX;
    if (v <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)v;
}

int64_t cvis__onnx_get_int(const cvis__onnx_tensor *t, int64_t k)
{
    return t->i ? t->i[k] : cvis__onnx_to_int(cvis__onnx_get(t, k));
}

/* A new tensor of `dtype` (float types are held as float32, others as
 * int64) and shape; at most max_elems values. */
static cvis_status t_alloc(cvis__onnx_tensor *t, int dtype, int ndim, const int64_t *dims,
                           int64_t max_elems)
{
    memset(t, 0, sizeof *t);
    if (ndim < 0 || ndim > CVIS__ONNX_MAX_RANK)
        return cvis__fail(CVIS_E_UNSUPPORTED, "a folded tensor of rank %d", ndim);
    int64_t n = 1;
    for (int k = 0; k < ndim; k++) {
        if (dims[k] < 0)
            return cvis__fail(CVIS_E_FORMAT, "a folded tensor with negative size %lld",
                              (long long)dims[k]);
        if (cvis__mul_size(n, dims[k], "folded tensor", &n) != CVIS_OK || n > max_elems)
            return cvis__fail(CVIS_E_LIMIT,
                              "a constant computed at load time would have more than %lld values",
                              (long long)max_elems);
        t->dims[k] = dims[k];
    }
    t->ndim = ndim;
    t->count = n;
    t->dtype = dtype;
    if (n == 0)
        return CVIS_OK;
    if (cvis__onnx_is_float_type(dtype)) {
        t->dtype = CVIS__ONNX_FLOAT;
        return cvis__alloc((size_t)n * sizeof(float), "folded tensor", (void **)&t->f);
    }
    return cvis__alloc((size_t)n * sizeof(int64_t), "folded tensor", (void **)&t->i);
}

static void t_set(cvis__onnx_tensor *t, int64_t k, double v)
{
    if (t->f)
        t->f[k] = (float)v;
    else if (t->i)
        t->i[k] = cvis__onnx_to_int(v);
}

static int is_float(const cvis__onnx_tensor *t)
{
    return cvis__onnx_is_float_type(t->dtype);
}

cvis_status cvis__onnx_tensor_copy(const cvis__onnx_tensor *src, cvis__onnx_tensor *dst)
{
    CVIS_TRY(t_alloc(dst, src->dtype, src->ndim, src->dims, INT64_MAX));
    dst->dtype = src->dtype;
    if (src->count && src->f)
        memcpy(dst->f, src->f, (size_t)src->count * sizeof(float));
    if (src->count && src->i)
        memcpy(dst->i, src->i, (size_t)src->count * sizeof(int64_t));
    return CVIS_OK;
}

int cvis__onnx_tensor_equal(const cvis__onnx_tensor *a, const cvis__onnx_tensor *b)
{
    if (a == b)
        return 1;
    if (a->ndim != b->ndim || a->count != b->count || is_float(a) != is_float(b))
        return 0;
    for (int k = 0; k < a->ndim; k++)
        if (a->dims[k] != b->dims[k])
            return 0;
    if (!a->count)
        return 1;
    if (a->f && b->f)
        return !memcmp(a->f, b->f, (size_t)a->count * sizeof(float));
    if (a->i && b->i)
        return !memcmp(a->i, b->i, (size_t)a->count * sizeof(int64_t));
    return 0;
}

static const cvis__onnx_attr *attr(const cvis__onnx_node *n, const char *name)
{
    return cvis__onnx_attr_find(n, name);
}

static int64_t attr_int(const cvis__onnx_node *n, const char *name, int64_t def)
{
    const cvis__onnx_attr *a = attr(n, name);
    return a && a->type == CVIS__ONNX_ATTR_INT ? a->i : def;
}

/* Integers of a 1-D (or scalar) constant: an attribute list or an input. */
static cvis_status ints_of(const cvis__onnx_tensor *t, int64_t *v, int cap, int *n,
                           const char *what)
{
    if (t->ndim > 1 || t->count > cap)
        return cvis__fail(CVIS_E_UNSUPPORTED, "%s must be a list of at most %d values", what, cap);
    for (int64_t k = 0; k < t->count; k++)
        v[k] = cvis__onnx_get_int(t, k);
    *n = (int)t->count;
    return CVIS_OK;
}

static cvis_status attr_ints(const cvis__onnx_node *n, const char *name, int64_t *v, int cap,
                             int *count)
{
    const cvis__onnx_attr *a = attr(n, name);
    *count = -1;
    if (!a)
        return CVIS_OK;
    if (a->n > cap)
        return cvis__fail(CVIS_E_UNSUPPORTED, "attribute %s has more than %d values", name, cap);
    for (int k = 0; k < a->n; k++)
        v[k] = a->ints ? a->ints[k] : 0;
    *count = a->n;
    return CVIS_OK;
}

static cvis_status norm_axis(int64_t axis, int rank, int *out)
{
    *out = 0;
    if (axis < -rank || axis >= rank)
        return cvis__fail(CVIS_E_FORMAT, "axis %lld outside a rank-%d tensor", (long long)axis,
                          rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return CVIS_OK;
}

static void strides_of(int ndim, const int64_t *dims, int64_t *st)
{
    int64_t s = 1;
    for (int k = ndim - 1; k >= 0; k--) {
        st[k] = s;
        s *= dims[k];
    }
}

/* ------------------------------------------------------- element-wise */

typedef enum ew {
    EW_ADD, EW_SUB, EW_MUL, EW_DIV, EW_POW, EW_MOD, EW_MIN, EW_MAX, EW_EQ, EW_LT, EW_GT, EW_LE,
    EW_GE, EW_AND, EW_OR, EW_XOR, EW_WHERE,
    EW_NEG, EW_ABS, EW_SQRT, EW_FLOOR, EW_CEIL, EW_RECIP, EW_EXP, EW_LOG, EW_RELU, EW_SIGMOID,
    EW_TANH, EW_NOT, EW_ERF, EW_ROUND, EW_SIGN, EW_CLIP, EW_NONE
} ew;

static const struct {
    const char *name;
    ew kind;
} ew_ops[] = {
    {"Add", EW_ADD}, {"Sub", EW_SUB}, {"Mul", EW_MUL}, {"Div", EW_DIV}, {"Pow", EW_POW},
    {"Mod", EW_MOD}, {"Min", EW_MIN}, {"Max", EW_MAX}, {"Equal", EW_EQ}, {"Less", EW_LT},
    {"Greater", EW_GT}, {"LessOrEqual", EW_LE}, {"GreaterOrEqual", EW_GE}, {"And", EW_AND},
    {"Or", EW_OR}, {"Xor", EW_XOR}, {"Where", EW_WHERE}, {"Neg", EW_NEG}, {"Abs", EW_ABS},
    {"Sqrt", EW_SQRT}, {"Floor", EW_FLOOR}, {"Ceil", EW_CEIL}, {"Reciprocal", EW_RECIP},
    {"Exp", EW_EXP}, {"Log", EW_LOG}, {"Relu", EW_RELU}, {"Sigmoid", EW_SIGMOID},
    {"Tanh", EW_TANH}, {"Not", EW_NOT}, {"Erf", EW_ERF}, {"Round", EW_ROUND}, {"Sign", EW_SIGN},
    {"Clip", EW_CLIP},
};

static ew ew_kind(const char *op)
{
    for (size_t k = 0; k < sizeof ew_ops / sizeof ew_ops[0]; k++)
        if (!strcmp(ew_ops[k].name, op))
            return ew_ops[k].kind;
    return EW_NONE;
}

static double ew_apply(ew kind, const double *v, int ints, const cvis__onnx_node *n, int64_t opset)
{
    double a = v[0], b = v[1];
    switch (kind) {
    case EW_ADD: return a + b;
    case EW_SUB: return a - b;
    case EW_MUL: return a * b;
    case EW_DIV:
        if (ints)
            return b == 0 ? 0 : trunc(a / b);
        return a / b;
    case EW_POW: return pow(a, b);
    case EW_MOD:
        if (b == 0)
            return 0;
        if (attr_int(n, "fmod", 0))
            return fmod(a, b);
        return a - floor(a / b) * b;
    case EW_MIN: return a < b ? a : b;
    case EW_MAX: return a > b ? a : b;
    case EW_EQ: return a == b;
    case EW_LT: return a < b;
    case EW_GT: return a > b;
    case EW_LE: return a <= b;
    case EW_GE: return a >= b;
    case EW_AND: return a != 0 && b != 0;
    case EW_OR: return a != 0 || b != 0;
    case EW_XOR: return (a != 0) != (b != 0);
    case EW_WHERE: return v[0] != 0 ? v[1] : v[2];
    case EW_NEG: return -a;
    case EW_ABS: return fabs(a);
    case EW_SQRT: return sqrt(a);
    case EW_FLOOR: return floor(a);
    case EW_CEIL: return ceil(a);
    case EW_RECIP: return 1 / a;
    case EW_EXP: return exp(a);
    case EW_LOG: return log(a);
    case EW_RELU: return a > 0 ? a : 0;
    case EW_SIGMOID: return 1 / (1 + exp(-a));
    case EW_TANH: return tanh(a);
    case EW_NOT: return a == 0;
    case EW_ERF: return erf(a);
    case EW_ROUND: return nearbyint(a);
    case EW_SIGN: return (a > 0) - (a < 0);
    case EW_CLIP: {
        double lo = v[1], hi = v[2];
        if (opset < 11) {
            const cvis__onnx_attr *mn = attr(n, "min"), *mx = attr(n, "max");
            lo = mn ? mn->f : -INFINITY;
            hi = mx ? mx->f : INFINITY;
        }
        return a < lo ? lo : (a > hi ? hi : a);
    }
    default: return 0;
    }
}

static cvis_status fold_elementwise(const cvis__onnx_node *n, int64_t opset, ew kind, int n_in,
                                    const cvis__onnx_tensor *const *in, cvis__onnx_tensor *out,
                                    int64_t max_elems)
{
    const cvis__onnx_tensor *ops[3] = {NULL, NULL, NULL};
    int arity = kind == EW_WHERE || kind == EW_CLIP ? 3 : kind < EW_NEG ? 2 : 1;
    int variadic = kind == EW_MIN || kind == EW_MAX;
    if (variadic && n_in > 2)
        return cvis__fail(CVIS_E_UNSUPPORTED, "%s of more than two constants", n->op_type);
    if (variadic && n_in == 1)
        arity = 1;
    for (int k = 0; k < arity; k++) {
        ops[k] = k < n_in ? in[k] : NULL;
        if (!ops[k] && kind != EW_CLIP)
            return cvis__fail(CVIS_E_FORMAT, "%s needs %d inputs", n->op_type, arity);
    }
    if (kind == EW_CLIP && opset >= 11) {
        for (int k = 1; k < 3; k++)
            if (ops[k] && ops[k]->count != 1)
                return cvis__fail(CVIS_E_FORMAT, "Clip bounds must be scalars");
    }
    /* broadcast shape over the tensor operands (Clip's bounds are scalars) */
    int n_shape = kind == EW_CLIP ? 1 : arity;
    int nd = 0;
    for (int k = 0; k < n_shape; k++)
        nd = ops[k]->ndim > nd ? ops[k]->ndim : nd;
    int64_t dims[CVIS__ONNX_MAX_RANK];
    for (int i = 0; i < nd; i++) {
        dims[i] = 1;
        for (int k = 0; k < n_shape; k++) {
            int j = i - (nd - ops[k]->ndim);
            int64_t d = j >= 0 ? ops[k]->dims[j] : 1;
            if (d != 1 && dims[i] != 1 && d != dims[i])
                return cvis__fail(CVIS_E_SHAPE, "%s of constants whose shapes do not broadcast",
                                  n->op_type);
            if (d != 1)
                dims[i] = d;
        }
    }
    int ints = 1;
    for (int k = 0; k < n_shape; k++)
        if (is_float(ops[k]) && !(kind == EW_WHERE && k == 0))
            ints = 0;
    int dtype;
    if (kind >= EW_EQ && kind <= EW_XOR)
        dtype = CVIS__ONNX_BOOL;
    else if (kind == EW_NOT)
        dtype = CVIS__ONNX_BOOL;
    else if (kind == EW_WHERE)
        dtype = (is_float(ops[1]) || is_float(ops[2])) ? CVIS__ONNX_FLOAT : ops[1]->dtype;
    else if (kind == EW_SQRT || kind == EW_EXP || kind == EW_LOG || kind == EW_SIGMOID ||
             kind == EW_TANH || kind == EW_ERF || kind == EW_RECIP)
        dtype = ints ? ops[0]->dtype : CVIS__ONNX_FLOAT;
    else
        dtype = ints ? ops[0]->dtype : CVIS__ONNX_FLOAT;
    if (kind == EW_WHERE)
        ints = !cvis__onnx_is_float_type(dtype);
    CVIS_TRY(t_alloc(out, dtype, nd, dims, max_elems));
    int64_t st[3][CVIS__ONNX_MAX_RANK];
    for (int k = 0; k < n_shape; k++) {
        int off = nd - ops[k]->ndim;
        int64_t s = 1;
        for (int i = nd - 1; i >= 0; i--) {
            int j = i - off;
            int64_t d = j >= 0 ? ops[k]->dims[j] : 1;
            st[k][i] = d == 1 ? 0 : s;
            s *= d;
        }
    }
    int64_t idx[CVIS__ONNX_MAX_RANK] = {0}, off[3] = {0, 0, 0};
    for (int64_t e = 0; e < out->count; e++) {
        double v[3] = {0, 0, 0};
        for (int k = 0; k < arity; k++) {
            if (!ops[k])
                v[k] = k == 1 ? -INFINITY : INFINITY;
            else if (kind == EW_CLIP && k > 0)
                v[k] = cvis__onnx_get(ops[k], 0);
            else
                v[k] = cvis__onnx_get(ops[k], off[k]);
        }
        t_set(out, e, ew_apply(kind, v, ints, n, opset));
        for (int ax = nd - 1; ax >= 0; ax--) {
            idx[ax]++;
            for (int k = 0; k < n_shape; k++)
                off[k] += st[k][ax];
            if (idx[ax] < dims[ax])
                break;
            for (int k = 0; k < n_shape; k++)
                off[k] -= st[k][ax] * idx[ax];
            idx[ax] = 0;
        }
    }
    return CVIS_OK;
}

/* --------------------------------------------------------- shape ops */

/* Copies src's values into a tensor of another shape (same count). */
static cvis_status reshaped(const cvis__onnx_tensor *src, int ndim, const int64_t *dims,
                            cvis__onnx_tensor *out, int64_t max_elems)
{
    CVIS_TRY(t_alloc(out, src->dtype, ndim, dims, max_elems));
    if (out->count != src->count) {
        cvis__onnx_tensor_release(out);
        return cvis__fail(CVIS_E_SHAPE, "reshape of %lld values into %lld",
                          (long long)src->count, (long long)out->count);
    }
    out->dtype = src->dtype;
    if (src->count && src->f)
        memcpy(out->f, src->f, (size_t)src->count * sizeof(float));
    if (src->count && src->i)
        memcpy(out->i, src->i, (size_t)src->count * sizeof(int64_t));
    return CVIS_OK;
}

static cvis_status fold_reshape(const cvis__onnx_node *n, const cvis__onnx_tensor *x,
                                const cvis__onnx_tensor *shape, cvis__onnx_tensor *out,
                                int64_t max_elems)
{
    int64_t dims[CVIS__ONNX_MAX_RANK];
    int nd;
    CVIS_TRY(ints_of(shape, dims, CVIS__ONNX_MAX_RANK, &nd, "Reshape's shape"));
    int allowzero = (int)attr_int(n, "allowzero", 0), infer = -1;
    int64_t known = 1;
    for (int k = 0; k < nd; k++) {
        if (dims[k] == 0 && !allowzero) {
            if (k >= x->ndim)
                return cvis__fail(CVIS_E_SHAPE, "Reshape copies a missing axis");
            dims[k] = x->dims[k];
        }
        if (dims[k] == -1) {
            if (infer >= 0)
                return cvis__fail(CVIS_E_SHAPE, "Reshape with two inferred axes");
            infer = k;
            continue;
        }
        if (dims[k] < 0)
            return cvis__fail(CVIS_E_SHAPE, "Reshape to negative size %lld", (long long)dims[k]);
        if (cvis__mul_size(known, dims[k], "reshape", &known) != CVIS_OK)
            return cvis__fail(CVIS_E_SHAPE, "Reshape size overflows");
    }
    if (infer >= 0) {
        if (known == 0 || x->count % known)
            return cvis__fail(CVIS_E_SHAPE, "Reshape cannot infer an axis");
        dims[infer] = x->count / known;
    }
    return reshaped(x, nd, dims, out, max_elems);
}

static cvis_status fold_transpose(const cvis__onnx_node *n, const cvis__onnx_tensor *x,
                                  cvis__onnx_tensor *out, int64_t max_elems)
{
    int64_t perm[CVIS__ONNX_MAX_RANK];
    int np;
    CVIS_TRY(attr_ints(n, "perm", perm, CVIS__ONNX_MAX_RANK, &np));
    if (np < 0) {
        np = x->ndim;
        for (int k = 0; k < np; k++)
            perm[k] = np - 1 - k;
    }
    if (np != x->ndim)
        return cvis__fail(CVIS_E_FORMAT, "Transpose perm of %d axes for a rank-%d tensor", np,
                          x->ndim);
    int64_t dims[CVIS__ONNX_MAX_RANK], st[CVIS__ONNX_MAX_RANK], ost[CVIS__ONNX_MAX_RANK];
    unsigned seen = 0;
    for (int k = 0; k < np; k++) {
        if (perm[k] < 0 || perm[k] >= np || (seen & (1u << perm[k])))
            return cvis__fail(CVIS_E_FORMAT, "Transpose has an invalid perm");
        seen |= 1u << perm[k];
        dims[k] = x->dims[perm[k]];
    }
    CVIS_TRY(t_alloc(out, x->dtype, np, dims, max_elems));
    strides_of(x->ndim, x->dims, st);
    for (int k = 0; k < np; k++)
        ost[k] = st[perm[k]];
    int64_t idx[CVIS__ONNX_MAX_RANK] = {0}, off = 0;
    for (int64_t e = 0; e < out->count; e++) {
        t_set(out, e, cvis__onnx_get(x, off));
        for (int ax = np - 1; ax >= 0; ax--) {
            idx[ax]++;
            off += ost[ax];
            if (idx[ax] < dims[ax])
                break;
            off -= ost[ax] * idx[ax];
            idx[ax] = 0;
        }
    }
    return CVIS_OK;
}

static cvis_status fold_concat(const cvis__onnx_node *n, int n_in,
                               const cvis__onnx_tensor *const *in, cvis__onnx_tensor *out,
                               int64_t max_elems)
{
    if (n_in < 1 || !in[0])
        return cvis__fail(CVIS_E_FORMAT, "Concat without inputs");
    int rank = in[0]->ndim, ax;
    CVIS_TRY(norm_axis(attr_int(n, "axis", 0), rank, &ax));
    int64_t dims[CVIS__ONNX_MAX_RANK];
    memcpy(dims, in[0]->dims, sizeof dims);
    dims[ax] = 0;
    int fl = 0;
    for (int k = 0; k < n_in; k++) {
        if (!in[k] || in[k]->ndim != rank)
            return cvis__fail(CVIS_E_SHAPE, "Concat of tensors of different ranks");
        for (int i = 0; i < rank; i++)
            if (i != ax && in[k]->dims[i] != dims[i])
                return cvis__fail(CVIS_E_SHAPE, "Concat of tensors of different shapes");
        dims[ax] += in[k]->dims[ax];
        fl |= is_float(in[k]);
    }
    CVIS_TRY(t_alloc(out, fl ? CVIS__ONNX_FLOAT : in[0]->dtype, rank, dims, max_elems));
    int64_t outer = 1;
    for (int i = 0; i < ax; i++)
        outer *= dims[i];
    int64_t e = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < n_in; k++) {
            int64_t inner = outer ? in[k]->count / outer : 0;
            for (int64_t j = 0; j < inner; j++)
                t_set(out, e++, cvis__onnx_get(in[k], o * inner + j));
        }
    return CVIS_OK;
}

static cvis_status fold_gather(const cvis__onnx_node *n, const cvis__onnx_tensor *x,
                               const cvis__onnx_tensor *idx, cvis__onnx_tensor *out,
                               int64_t max_elems)
{
    int ax;
    CVIS_TRY(norm_axis(attr_int(n, "axis", 0), x->ndim, &ax));
    if (x->ndim + idx->ndim - 1 > CVIS__ONNX_MAX_RANK)
        return cvis__fail(CVIS_E_UNSUPPORTED, "Gather result of too many axes");
    int64_t dims[CVIS__ONNX_MAX_RANK];
    int nd = 0;
    for (int i = 0; i < ax; i++)
        dims[nd++] = x->dims[i];
    for (int i = 0; i < idx->ndim; i++)
        dims[nd++] = idx->dims[i];
    for (int i = ax + 1; i < x->ndim; i++)
        dims[nd++] = x->dims[i];
    CVIS_TRY(t_alloc(out, x->dtype, nd, dims, max_elems));
    int64_t outer = 1, inner = 1, d = x->dims[ax];
    for (int i = 0; i < ax; i++)
        outer *= x->dims[i];
    for (int i = ax + 1; i < x->ndim; i++)
        inner *= x->dims[i];
    int64_t e = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < idx->count; k++) {
            int64_t j = cvis__onnx_get_int(idx, k);
            if (j < -d || j >= d) {
                cvis__onnx_tensor_release(out);
                return cvis__fail(CVIS_E_RANGE, "Gather index %lld outside an axis of %lld",
                                  (long long)j, (long long)d);
            }
            if (j < 0)
                j += d;
            for (int64_t i = 0; i < inner; i++)
                t_set(out, e++, cvis__onnx_get(x, (o * d + j) * inner + i));
        }
    return CVIS_OK;
}

/* Axes of Squeeze/Unsqueeze/Reduce*: an attribute before `input_from`
 * opset, an input (index 1) after. */
static cvis_status axes_of(const cvis__onnx_node *n, int64_t opset, int64_t input_from, int n_in,
                           const cvis__onnx_tensor *const *in, int64_t *axes, int *na)
{
    if (opset >= input_from) {
        *na = -1;
        if (n_in > 1 && in[1])
            CVIS_TRY(ints_of(in[1], axes, CVIS__ONNX_MAX_RANK, na, "axes"));
        return CVIS_OK;
    }
    return attr_ints(n, "axes", axes, CVIS__ONNX_MAX_RANK, na);
}

static cvis_status fold_squeeze(const cvis__onnx_node *n, int64_t opset, int unsq, int n_in,
                                const cvis__onnx_tensor *const *in, cvis__onnx_tensor *out,
                                int64_t max_elems)
{
    const cvis__onnx_tensor *x = in[0];
    int64_t axes[CVIS__ONNX_MAX_RANK], dims[CVIS__ONNX_MAX_RANK];
    int na, nd = 0;
    CVIS_TRY(axes_of(n, opset, 13, n_in, in, axes, &na));
    if (unsq) {
        if (na < 0)
            return cvis__fail(CVIS_E_FORMAT, "Unsqueeze without axes");
        int rank = x->ndim + na;
        if (rank > CVIS__ONNX_MAX_RANK)
            return cvis__fail(CVIS_E_UNSUPPORTED, "Unsqueeze to more than %d axes",
                              CVIS__ONNX_MAX_RANK);
        unsigned mark = 0;
        for (int k = 0; k < na; k++) {
            int a;
            CVIS_TRY(norm_axis(axes[k], rank, &a));
            if (mark & (1u << a))
                return cvis__fail(CVIS_E_FORMAT, "Unsqueeze repeats an axis");
            mark |= 1u << a;
        }
        for (int i = 0, j = 0; i < rank; i++)
            dims[nd++] = (mark & (1u << i)) ? 1 : x->dims[j++];
    } else {
        unsigned mark = 0;
        for (int k = 0; k < na; k++) {
            int a;
            CVIS_TRY(norm_axis(axes[k], x->ndim, &a));
            if (x->dims[a] != 1)
                return cvis__fail(CVIS_E_SHAPE, "Squeeze of an axis of size %lld",
                                  (long long)x->dims[a]);
            mark |= 1u << a;
        }
        for (int i = 0; i < x->ndim; i++)
            if (!(na < 0 ? x->dims[i] == 1 : (mark & (1u << i)) != 0))
                dims[nd++] = x->dims[i];
    }
    return reshaped(x, nd, dims, out, max_elems);
}

static cvis_status fold_slice(const cvis__onnx_node *n, int64_t opset, int n_in,
                              const cvis__onnx_tensor *const *in, cvis__onnx_tensor *out,
                              int64_t max_elems)
{
    const cvis__onnx_tensor *x = in[0];
    int r = x->ndim;
    int64_t starts[CVIS__ONNX_MAX_RANK], ends[CVIS__ONNX_MAX_RANK], axes[CVIS__ONNX_MAX_RANK],
        steps[CVIS__ONNX_MAX_RANK];
    int ns, ne, na = -1, nst = -1;
    if (opset < 10) {
        CVIS_TRY(attr_ints(n, "starts", starts, r, &ns));
        CVIS_TRY(attr_ints(n, "ends", ends, r, &ne));
        CVIS_TRY(attr_ints(n, "axes", axes, r, &na));
    } else {
        if (n_in < 3 || !in[1] || !in[2])
            return cvis__fail(CVIS_E_FORMAT, "Slice needs starts and ends");
        CVIS_TRY(ints_of(in[1], starts, r, &ns, "Slice starts"));
        CVIS_TRY(ints_of(in[2], ends, r, &ne, "Slice ends"));
        if (n_in > 3 && in[3])
            CVIS_TRY(ints_of(in[3], axes, r, &na, "Slice axes"));
        if (n_in > 4 && in[4])
            CVIS_TRY(ints_of(in[4], steps, r, &nst, "Slice steps"));
    }
    if (ns < 0 || ns != ne || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
        return cvis__fail(CVIS_E_FORMAT, "Slice's starts, ends, axes and steps differ in length");
    int64_t first[CVIS__ONNX_MAX_RANK], step[CVIS__ONNX_MAX_RANK], dims[CVIS__ONNX_MAX_RANK];
    for (int i = 0; i < r; i++) {
        first[i] = 0;
        step[i] = 1;
        dims[i] = x->dims[i];
    }
    for (int k = 0; k < ns; k++) {
        int a;
        CVIS_TRY(norm_axis(na >= 0 ? axes[k] : k, r, &a));
        int64_t d = x->dims[a], s = nst >= 0 ? steps[k] : 1, b = starts[k], e = ends[k];
        if (s == 0)
            return cvis__fail(CVIS_E_FORMAT, "Slice with step 0");
        if (b < 0)
            b = b < -d ? 0 : b + d;
        if (e < 0)
            e = e < -d ? -1 : e + d;
        int64_t cnt;
        if (s > 0) {
            b = b > d ? d : b;
            e = e > d ? d : (e < 0 ? 0 : e);
            cnt = e > b ? (e - b - 1) / s + 1 : 0;
        } else {
            b = b > d - 1 ? d - 1 : b;
            e = e > d - 1 ? d - 1 : e;
            cnt = b > e ? (s == INT64_MIN ? 1 : (b - e - 1) / (-s) + 1) : 0;
        }
        first[a] = b;
        step[a] = s;
        dims[a] = cnt;
    }
    CVIS_TRY(t_alloc(out, x->dtype, r, dims, max_elems));
    int64_t st[CVIS__ONNX_MAX_RANK], idx[CVIS__ONNX_MAX_RANK] = {0};
    strides_of(r, x->dims, st);
    for (int64_t e = 0; e < out->count; e++) {
        int64_t off = 0;
        for (int i = 0; i < r; i++)
            off += (first[i] + idx[i] * step[i]) * st[i];
        t_set(out, e, cvis__onnx_get(x, off));
        for (int ax = r - 1; ax >= 0; ax--) {
            if (++idx[ax] < dims[ax])
                break;
            idx[ax] = 0;
        }
    }
    return CVIS_OK;
}

static cvis_status fold_reduce(const cvis__onnx_node *n, int64_t opset, int n_in,
                               const cvis__onnx_tensor *const *in, cvis__onnx_tensor *out,
                               int64_t max_elems)
{
    const cvis__onnx_tensor *x = in[0];
    const char *op = n->op_type;
    int kind = !strcmp(op, "ReduceSum") ? 0 : !strcmp(op, "ReduceMean") ? 1
               : !strcmp(op, "ReduceProd") ? 2 : !strcmp(op, "ReduceMax") ? 3 : 4;
    int64_t axes[CVIS__ONNX_MAX_RANK], dims[CVIS__ONNX_MAX_RANK];
    int na;
    CVIS_TRY(axes_of(n, opset, kind == 0 ? 13 : 18, n_in, in, axes, &na));
    unsigned mark = 0;
    if (na <= 0 && !(na == 0 && attr_int(n, "noop_with_empty_axes", 0)))
        mark = (1u << x->ndim) - 1;
    for (int k = 0; k < na; k++) {
        int a;
        CVIS_TRY(norm_axis(axes[k], x->ndim, &a));
        mark |= 1u << a;
    }
    int keep = (int)attr_int(n, "keepdims", 1), nd = 0;
    for (int i = 0; i < x->ndim; i++)
        if (!(mark & (1u << i)))
            dims[nd++] = x->dims[i];
        else if (keep)
            dims[nd++] = 1;
    CVIS_TRY(t_alloc(out, kind == 1 ? CVIS__ONNX_FLOAT : x->dtype, nd, dims, max_elems));
    double *acc;
    int64_t *cnt;
    cvis_status st = cvis__alloc((size_t)(out->count ? out->count : 1) * sizeof(double), "fold",
                                 (void **)&acc);
    if (st != CVIS_OK) {
        cvis__onnx_tensor_release(out);
        return st;
    }
    st = cvis__alloc((size_t)(out->count ? out->count : 1) * sizeof(int64_t), "fold",
                     (void **)&cnt);
    if (st != CVIS_OK) {
        cvis__free(acc);
        cvis__onnx_tensor_release(out);
        return st;
    }
    for (int64_t e = 0; e < out->count; e++) {
        acc[e] = kind == 2 ? 1 : kind == 3 ? -INFINITY : kind == 4 ? INFINITY : 0;
        cnt[e] = 0;
    }
    int64_t idx[CVIS__ONNX_MAX_RANK] = {0};
    for (int64_t e = 0; e < x->count; e++) {
        int64_t o = 0;
        for (int i = 0; i < x->ndim; i++)
            if (!(mark & (1u << i)))
                o = o * x->dims[i] + idx[i];
        double v = cvis__onnx_get(x, e);
        switch (kind) {
        case 0: case 1: acc[o] += v; break;
        case 2: acc[o] *= v; break;
        case 3: acc[o] = v > acc[o] ? v : acc[o]; break;
        default: acc[o] = v < acc[o] ? v : acc[o]; break;
        }
        cnt[o]++;
        for (int ax = x->ndim - 1; ax >= 0; ax--) {
            if (++idx[ax] < x->dims[ax])
                break;
            idx[ax] = 0;
        }
    }
    for (int64_t e = 0; e < out->count; e++)
        t_set(out, e, kind == 1 ? (cnt[e] ? acc[e] / (double)cnt[e] : NAN) : acc[e]);
    cvis__free(acc);
    cvis__free(cnt);
    return CVIS_OK;
}

static cvis_status fold_expand(const cvis__onnx_tensor *x, const cvis__onnx_tensor *shape,
                               cvis__onnx_tensor *out, int64_t max_elems)
{
    int64_t sd[CVIS__ONNX_MAX_RANK];
    int ns;
    CVIS_TRY(ints_of(shape, sd, CVIS__ONNX_MAX_RANK, &ns, "Expand's shape"));
    int nd = ns > x->ndim ? ns : x->ndim;
    int64_t dims[CVIS__ONNX_MAX_RANK];
    for (int i = 0; i < nd; i++) {
        int a = i - (nd - x->ndim), b = i - (nd - ns);
        int64_t da = a >= 0 ? x->dims[a] : 1, db = b >= 0 ? sd[b] : 1;
        if (da != db && da != 1 && db != 1)
            return cvis__fail(CVIS_E_SHAPE, "Expand to a shape that does not broadcast");
        dims[i] = da == 1 ? db : da;
    }
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        if (cvis__mul_size(n, dims[i], "Expand", &n) != CVIS_OK || n > max_elems)
            return cvis__fail(CVIS_E_LIMIT, "Expand to more than %lld values",
                              (long long)max_elems);
    CVIS_TRY(t_alloc(out, x->dtype, nd, dims, max_elems));
    int64_t st[CVIS__ONNX_MAX_RANK], idx[CVIS__ONNX_MAX_RANK] = {0}, off = 0, t = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int a = i - (nd - x->ndim);
        int64_t d = a >= 0 ? x->dims[a] : 1;
        st[i] = d == 1 ? 0 : t;
        t *= d;
    }
    for (int64_t e = 0; e < out->count; e++) {
        t_set(out, e, cvis__onnx_get(x, off));
        for (int ax = nd - 1; ax >= 0; ax--) {
            idx[ax]++;
            off += st[ax];
            if (idx[ax] < dims[ax])
                break;
            off -= st[ax] * idx[ax];
            idx[ax] = 0;
        }
    }
    return CVIS_OK;
}

static cvis_status fold_constant(const cvis__onnx_node *n, cvis__onnx_tensor *out,
                                 int64_t max_elems)
{
    const cvis__onnx_attr *a;
    if ((a = attr(n, "value")) && a->t)
        return cvis__onnx_tensor_copy(a->t, out);
    if ((a = attr(n, "value_float"))) {
        CVIS_TRY(t_alloc(out, CVIS__ONNX_FLOAT, 0, NULL, max_elems));
        out->f[0] = a->f;
        return CVIS_OK;
    }
    if ((a = attr(n, "value_int"))) {
        CVIS_TRY(t_alloc(out, CVIS__ONNX_INT64, 0, NULL, max_elems));
        out->i[0] = a->i;
        return CVIS_OK;
    }
    int64_t len;
    if ((a = attr(n, "value_floats"))) {
        len = a->n;
        CVIS_TRY(t_alloc(out, CVIS__ONNX_FLOAT, 1, &len, max_elems));
        for (int k = 0; k < a->n; k++)
            out->f[k] = a->floats ? a->floats[k] : 0;
        return CVIS_OK;
    }
    if ((a = attr(n, "value_ints"))) {
        len = a->n;
        CVIS_TRY(t_alloc(out, CVIS__ONNX_INT64, 1, &len, max_elems));
        for (int k = 0; k < a->n; k++)
            out->i[k] = a->ints ? a->ints[k] : 0;
        return CVIS_OK;
    }
    return cvis__fail(CVIS_E_UNSUPPORTED, "Constant without a numeric value");
}

static cvis_status fold_cast(const cvis__onnx_node *n, const cvis__onnx_tensor *x,
                             cvis__onnx_tensor *out, int64_t max_elems)
{
    int to = (int)attr_int(n, "to", 0);
    if (to == CVIS__ONNX_STRING || to == 0 || to > 16 || to == 14 || to == 15)
        return cvis__fail(CVIS_E_UNSUPPORTED, "Cast to data type %d", to);
    CVIS_TRY(t_alloc(out, to, x->ndim, x->dims, max_elems));
    for (int64_t e = 0; e < x->count; e++) {
        double v = cvis__onnx_get(x, e);
        if (to == CVIS__ONNX_BOOL)
            v = v != 0;
        else if (!cvis__onnx_is_float_type(to))
            v = isfinite(v) ? trunc(v) : 0;
        t_set(out, e, v);
    }
    return CVIS_OK;
}

static cvis_status fold_range(const cvis__onnx_tensor *const *in, cvis__onnx_tensor *out,
                              int64_t max_elems)
{
    for (int k = 0; k < 3; k++)
        if (!in[k] || in[k]->count != 1)
            return cvis__fail(CVIS_E_FORMAT, "Range takes three scalars");
    double start = cvis__onnx_get(in[0], 0), limit = cvis__onnx_get(in[1], 0),
           delta = cvis__onnx_get(in[2], 0);
    if (delta == 0 || !isfinite(start) || !isfinite(limit) || !isfinite(delta))
        return cvis__fail(CVIS_E_FORMAT, "Range with step 0 or non-finite bounds");
    double cnt = ceil((limit - start) / delta);
    if (cnt < 0)
        cnt = 0;
    if (cnt > (double)max_elems)
        return cvis__fail(CVIS_E_LIMIT, "Range of more than %lld values", (long long)max_elems);
    int64_t len = (int64_t)cnt;
    CVIS_TRY(t_alloc(out, in[0]->dtype, 1, &len, max_elems));
    for (int64_t e = 0; e < len; e++)
        t_set(out, e, start + (double)e * delta);
    return CVIS_OK;
}

static cvis_status fold_split(const cvis__onnx_node *n, int64_t opset, int n_in,
                              const cvis__onnx_tensor *const *in, int n_out,
                              cvis__onnx_tensor *out, int64_t max_elems)
{
    const cvis__onnx_tensor *x = in[0];
    int ax;
    CVIS_TRY(norm_axis(attr_int(n, "axis", 0), x->ndim, &ax));
    int64_t sizes[64];
    int ns = -1;
    if (n_out > 64)
        return cvis__fail(CVIS_E_UNSUPPORTED, "Split into more than 64 parts");
    if (opset >= 13) {
        if (n_in > 1 && in[1])
            CVIS_TRY(ints_of(in[1], sizes, 64, &ns, "Split sizes"));
    } else {
        CVIS_TRY(attr_ints(n, "split", sizes, 64, &ns));
    }
    CVIS_TRY(cvis__onnx_split_sizes(x->dims[ax], n_out, ns, sizes));
    int64_t begin = 0;
    for (int k = 0; k < n_out; k++) {
        int64_t sv = begin, ev = begin + sizes[k], av = ax;
        cvis__onnx_tensor ts = {0}, te = {0}, ta = {0};
        ts.dtype = te.dtype = ta.dtype = CVIS__ONNX_INT64;
        ts.ndim = te.ndim = ta.ndim = 1;
        ts.dims[0] = te.dims[0] = ta.dims[0] = 1;
        ts.count = te.count = ta.count = 1;
        ts.i = &sv;
        te.i = &ev;
        ta.i = &av;
        const cvis__onnx_tensor *sin[4] = {x, &ts, &te, &ta};
        cvis__onnx_node fake = *n;
        fake.n_attr = 0;
        cvis_status st = fold_slice(&fake, 13, 4, sin, &out[k], max_elems);
        if (st != CVIS_OK) {
            for (int j = 0; j < k; j++)
                cvis__onnx_tensor_release(&out[j]);
            return st;
        }
        begin += sizes[k];
    }
    return CVIS_OK;
}

cvis_status cvis__onnx_split_sizes(int64_t d, int n_out, int ns, int64_t *sizes)
{
    if (n_out < 1)
        return cvis__fail(CVIS_E_FORMAT, "Split with no outputs");
    if (ns < 0) {
        ns = n_out;
        int64_t part = d / n_out + (d % n_out != 0), left = d;
        for (int k = 0; k < n_out; k++) {
            sizes[k] = left < part ? left : part;
            left -= sizes[k];
        }
    }
    if (ns != n_out)
        return cvis__fail(CVIS_E_FORMAT, "Split gives %d sizes for %d outputs", ns, n_out);
    int64_t total = 0;
    for (int k = 0; k < ns; k++) {
        if (sizes[k] < 0)
            return cvis__fail(CVIS_E_FORMAT, "a negative Split size");
        if (sizes[k] > d - total) /* also keeps the sum from overflowing */
            return cvis__fail(CVIS_E_FORMAT, "Split sizes add up to more than the axis (%lld)",
                              (long long)d);
        total += sizes[k];
    }
    if (total != d)
        return cvis__fail(CVIS_E_FORMAT, "Split sizes add up to %lld, not the axis's %lld",
                          (long long)total, (long long)d);
    return CVIS_OK;
}

static const char *const other_ops[] = {
    "Constant", "Identity", "Dropout", "Cast", "Shape", "Size", "Gather", "Unsqueeze",
    "Squeeze", "Reshape", "Flatten", "Transpose", "Concat", "Slice", "Split", "Expand",
    "ConstantOfShape", "Range", "ReduceSum", "ReduceMean", "ReduceProd", "ReduceMax",
    "ReduceMin", NULL};

int cvis__onnx_foldable(const char *op)
{
    if (ew_kind(op) != EW_NONE)
        return 1;
    for (int k = 0; other_ops[k]; k++)
        if (!strcmp(other_ops[k], op))
            return 1;
    return 0;
}

cvis_status cvis__onnx_fold(const cvis__onnx_node *n, int64_t opset, int n_in,
                            const cvis__onnx_tensor *const *in, int n_out,
                            cvis__onnx_tensor *out, int64_t max_elems)
{
    const char *op = n->op_type;
    for (int k = 0; k < n_out; k++)
        memset(&out[k], 0, sizeof out[k]);
    if (n_out < 1)
        return cvis__fail(CVIS_E_FORMAT, "%s has no output", op);
    if (strcmp(op, "Constant") && strcmp(op, "ConstantOfShape") && (n_in < 1 || !in[0]) &&
        strcmp(op, "Range"))
        return cvis__fail(CVIS_E_FORMAT, "%s without its first input", op);
    if (strcmp(op, "Split") && n_out > 1 && strcmp(op, "Dropout"))
        return cvis__fail(CVIS_E_UNSUPPORTED, "%s with %d outputs", op, n_out);
    ew kind = ew_kind(op);
    if (kind != EW_NONE)
        return fold_elementwise(n, opset, kind, n_in, in, out, max_elems);
    if (!strcmp(op, "Constant"))
        return fold_constant(n, out, max_elems);
    if (!strcmp(op, "Identity"))
        return cvis__onnx_tensor_copy(in[0], out);
    if (!strcmp(op, "Dropout")) {
        if (n_out > 1)
            return cvis__fail(CVIS_E_UNSUPPORTED, "Dropout's mask output");
        return cvis__onnx_tensor_copy(in[0], out);
    }
    if (!strcmp(op, "Cast"))
        return fold_cast(n, in[0], out, max_elems);
    if (!strcmp(op, "Shape") || !strcmp(op, "Size")) {
        const cvis__onnx_tensor *x = in[0];
        if (!strcmp(op, "Size")) {
            CVIS_TRY(t_alloc(out, CVIS__ONNX_INT64, 0, NULL, max_elems));
            out->i[0] = x->count;
            return CVIS_OK;
        }
        int64_t b = attr_int(n, "start", 0), e = attr_int(n, "end", x->ndim), r = x->ndim;
        b = b < 0 ? (b + r < 0 ? 0 : b + r) : (b > r ? r : b);
        e = e < 0 ? (e + r < 0 ? 0 : e + r) : (e > r ? r : e);
        int64_t len = e > b ? e - b : 0;
        CVIS_TRY(t_alloc(out, CVIS__ONNX_INT64, 1, &len, max_elems));
        for (int64_t k = 0; k < len; k++)
            out->i[k] = x->dims[b + k];
        return CVIS_OK;
    }
    if (!strcmp(op, "Gather")) {
        if (n_in < 2 || !in[1])
            return cvis__fail(CVIS_E_FORMAT, "Gather without indices");
        return fold_gather(n, in[0], in[1], out, max_elems);
    }
    if (!strcmp(op, "Unsqueeze") || !strcmp(op, "Squeeze"))
        return fold_squeeze(n, opset, op[0] == 'U', n_in, in, out, max_elems);
    if (!strcmp(op, "Reshape")) {
        if (n_in < 2 || !in[1])
            return cvis__fail(CVIS_E_FORMAT, "Reshape without a shape");
        return fold_reshape(n, in[0], in[1], out, max_elems);
    }
    if (!strcmp(op, "Flatten")) {
        int ax;
        const cvis__onnx_tensor *x = in[0];
        int64_t a = attr_int(n, "axis", 1);
        if (a == x->ndim)
            ax = x->ndim;
        else
            CVIS_TRY(norm_axis(a, x->ndim, &ax));
        int64_t dims[2] = {1, 1};
        for (int i = 0; i < x->ndim; i++)
            dims[i >= ax] *= x->dims[i];
        return reshaped(x, 2, dims, out, max_elems);
    }
    if (!strcmp(op, "Transpose"))
        return fold_transpose(n, in[0], out, max_elems);
    if (!strcmp(op, "Concat"))
        return fold_concat(n, n_in, in, out, max_elems);
    if (!strcmp(op, "Slice"))
        return fold_slice(n, opset, n_in, in, out, max_elems);
    if (!strcmp(op, "Split"))
        return fold_split(n, opset, n_in, in, n_out, out, max_elems);
    if (!strcmp(op, "Expand")) {
        if (n_in < 2 || !in[1])
            return cvis__fail(CVIS_E_FORMAT, "Expand without a shape");
        return fold_expand(in[0], in[1], out, max_elems);
    }
    if (!strcmp(op, "ConstantOfShape")) {
        int64_t dims[CVIS__ONNX_MAX_RANK];
        int nd = 0;
        if (n_in > 0 && in[0])
            CVIS_TRY(ints_of(in[0], dims, CVIS__ONNX_MAX_RANK, &nd, "ConstantOfShape's shape"));
        const cvis__onnx_attr *a = attr(n, "value");
        int dtype = a && a->t ? a->t->dtype : CVIS__ONNX_FLOAT;
        double v = a && a->t && a->t->count ? cvis__onnx_get(a->t, 0) : 0.0;
        CVIS_TRY(t_alloc(out, dtype, nd, dims, max_elems));
        for (int64_t e = 0; e < out->count; e++)
            t_set(out, e, v);
        return CVIS_OK;
    }
    if (!strcmp(op, "Range"))
        return n_in < 3 ? cvis__fail(CVIS_E_FORMAT, "Range takes three inputs")
                        : fold_range(in, out, max_elems);
    if (!strncmp(op, "Reduce", 6) && cvis__onnx_foldable(op))
        return fold_reduce(n, opset, n_in, in, out, max_elems);
    return cvis__fail(CVIS_E_UNSUPPORTED, "%s cannot be computed at load time", op);
}
