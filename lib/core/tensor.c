/* Tensor creation, views and queries. */
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"

cvis_status cvis__shape_size(int ndim, const int64_t *shape, int64_t *size)
{
    if (ndim < 0 || ndim > CVIS_MAX_DIMS)
        return cvis__fail(CVIS_E_INVALID_ARG, "tensor rank %d outside 0..%d", ndim, CVIS_MAX_DIMS);
    if (ndim > 0 && !shape)
        return cvis__fail(CVIS_E_INVALID_ARG, "tensor shape is NULL");
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return cvis__fail(CVIS_E_INVALID_ARG, "tensor axis %d has negative size %lld", i,
                              (long long)shape[i]);
        CVIS_TRY(cvis__mul_size(n, shape[i], "tensor size", &n));
    }
    if ((uint64_t)n > UINT64_MAX / sizeof(float))
        return cvis__fail(CVIS_E_LIMIT, "tensor size overflows");
    *size = n;
    return CVIS_OK;
}

cvis_status cvis__tensor_new(int ndim, const int64_t *shape, int zero, cvis_tensor **out)
{
    int64_t n;
    CVIS_TRY(cvis__shape_size(ndim, shape, &n));
    cvis_tensor *t = cvis__calloc(1, sizeof *t);
    if (!t)
        return cvis__fail(CVIS_E_NOMEM, "out of memory for a tensor");
    cvis_status st = zero ? cvis__alloc_zero((size_t)n * sizeof(float), "tensor data", (void **)&t->data)
                          : cvis__alloc((size_t)n * sizeof(float), "tensor data", (void **)&t->data);
    if (st != CVIS_OK) {
        cvis__free(t);
        return st;
    }
    t->size = n;
    t->ndim = ndim;
    t->owns = 1;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    *out = t;
    return CVIS_OK;
}

cvis_status cvis__tensor_new_shape(const cvis__shape *s, int zero, cvis_tensor **out)
{
    return cvis__tensor_new(s->ndim, s->d, zero, out);
}

void cvis__tensor_view(cvis_tensor *t, float *data, int ndim, const int64_t *shape)
{
    memset(t, 0, sizeof *t);
    t->data = data;
    t->ndim = ndim;
    t->size = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->size *= shape[i];
    }
}

void cvis__tensor_view_shape(cvis_tensor *t, float *data, const cvis__shape *s)
{
    cvis__tensor_view(t, data, s->ndim, s->d);
}

cvis__shape cvis__tensor_get_shape(const cvis_tensor *t)
{
    cvis__shape s;
    memset(&s, 0, sizeof s);
    s.ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++)
        s.d[i] = t->shape[i];
    return s;
}

int cvis__shape_equal(const cvis__shape *a, const cvis__shape *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->d[i] != b->d[i])
            return 0;
    return 1;
}

int64_t cvis__shape_count(const cvis__shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->d[i];
    return n;
}

const char *cvis__shape_str(const cvis__shape *s, char *buf, int size)
{
    int used = snprintf(buf, (size_t)size, "(");
    for (int i = 0; i < s->ndim && used < size; i++)
        used += snprintf(buf + used, (size_t)(size - used), "%s%lld", i ? ", " : "",
                         (long long)s->d[i]);
    if (used < size)
        snprintf(buf + used, (size_t)(size - used), s->ndim == 1 ? ",)" : ")");
    return buf;
}

cvis_status cvis__check_finite(const float *x, int64_t n, const char *what)
{
    /* a NaN or an infinity has every exponent bit set; an OR over the
     * blocks vectorizes, and only a failing block is looked at closely */
    const int64_t block = 4096;
    int64_t first_bad = -1;
    for (int64_t b = 0; b < n && first_bad < 0; b += block) {
        int64_t e = b + block < n ? b + block : n;
        uint32_t bad = 0;
        for (int64_t i = b; i < e; i++) {
            uint32_t bits;
            memcpy(&bits, &x[i], sizeof bits);
            bad |= (bits & 0x7f800000u) == 0x7f800000u;
        }
        if (bad)
            first_bad = b;
    }
    if (first_bad < 0)
        return CVIS_OK;
    for (int64_t i = first_bad; i < n; i++)
        if (!isfinite(x[i]))
            return cvis__fail(CVIS_E_NONFINITE, "%s contains %s at element %lld", what,
                              isnan(x[i]) ? "NaN" : "infinity", (long long)i);
    return CVIS_OK;
}

/* ------------------------------------------------------------ public API */

CVIS_API cvis_status cvis_tensor_create(int ndim, const int64_t *shape, cvis_tensor **out)
{
    CVIS_CHECK_ARG(out, "out is NULL");
    return cvis__tensor_new(ndim, shape, 1, out);
}

CVIS_API cvis_status cvis_tensor_wrap(float *data, int ndim, const int64_t *shape,
                                      cvis_tensor **out)
{
    CVIS_CHECK_ARG(out, "out is NULL");
    int64_t n;
    CVIS_TRY(cvis__shape_size(ndim, shape, &n));
    CVIS_CHECK_ARG(data || n == 0, "data is NULL");
    cvis_tensor *t = cvis__calloc(1, sizeof *t);
    if (!t)
        return cvis__fail(CVIS_E_NOMEM, "out of memory for a tensor");
    cvis__tensor_view(t, data, ndim, shape);
    *out = t;
    return CVIS_OK;
}

CVIS_API cvis_status cvis_tensor_clone(const cvis_tensor *t, cvis_tensor **out)
{
    CVIS_CHECK_ARG(t && out, "tensor or out is NULL");
    cvis_tensor *c;
    CVIS_TRY(cvis__tensor_new(t->ndim, t->shape, 0, &c));
    if (t->size)
        memcpy(c->data, t->data, (size_t)t->size * sizeof(float));
    *out = c;
    return CVIS_OK;
}

CVIS_API float *cvis_tensor_data(const cvis_tensor *t)
{
    return t ? t->data : NULL;
}

CVIS_API int cvis_tensor_ndim(const cvis_tensor *t)
{
    return t ? t->ndim : 0;
}

CVIS_API int64_t cvis_tensor_dim(const cvis_tensor *t, int axis)
{
    if (!t)
        return -1;
    if (axis < 0)
        axis += t->ndim;
    if (axis < 0 || axis >= t->ndim)
        return -1;
    return t->shape[axis];
}

CVIS_API cvis_status cvis_tensor_shape(const cvis_tensor *t, int64_t *shape)
{
    CVIS_CHECK_ARG(t && shape, "tensor or shape is NULL");
    for (int i = 0; i < t->ndim; i++)
        shape[i] = t->shape[i];
    return CVIS_OK;
}

CVIS_API int64_t cvis_tensor_size(const cvis_tensor *t)
{
    return t ? t->size : 0;
}

CVIS_API void cvis_tensor_free(cvis_tensor *t)
{
    if (!t)
        return;
    if (t->owns)
        cvis__free(t->data);
    cvis__free(t);
}

void cvis__strided_gather(const cvis_tensor *y, const int64_t *st, int64_t off,
                          const float *from, float *to, int backward)
{
    int64_t idx[CVIS_MAX_DIMS] = {0};
    for (int64_t i = 0; i < y->size; i++) {
        if (backward)
            to[off] += from[i];
        else
            to[i] = from[off];
        for (int ax = y->ndim - 1; ax >= 0; ax--) {
            idx[ax]++;
            off += st[ax];
            if (idx[ax] < y->shape[ax])
                break;
            off -= st[ax] * idx[ax];
            idx[ax] = 0;
        }
    }
}
