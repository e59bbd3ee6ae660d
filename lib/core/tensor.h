/* float32 tensors: contiguous, row-major, up to CVIS_MAX_DIMS axes. */
#ifndef CVIS_CORE_TENSOR_H
#define CVIS_CORE_TENSOR_H

#include <stdint.h>

#include "cvis.h"

struct cvis_tensor {
    float *data;
    int64_t size;  /* number of elements */
    int ndim;
    int owns;      /* 1: data is freed with the tensor */
    int64_t shape[CVIS_MAX_DIMS];
};

/* A shape without data, for shape inference. */
typedef struct cvis__shape {
    int ndim;
    int64_t d[CVIS_MAX_DIMS];
} cvis__shape;

/* Checks ndim/shape and computes the element count (overflow-checked). */
cvis_status cvis__shape_size(int ndim, const int64_t *shape, int64_t *size);
/* New owned tensor; zero-filled when `zero`. Caller frees with cvis_tensor_free. */
cvis_status cvis__tensor_new(int ndim, const int64_t *shape, int zero, cvis_tensor **out);
cvis_status cvis__tensor_new_shape(const cvis__shape *s, int zero, cvis_tensor **out);
/* Fills a non-owning view (a struct the caller owns) over `data`. */
void cvis__tensor_view(cvis_tensor *t, float *data, int ndim, const int64_t *shape);
void cvis__tensor_view_shape(cvis_tensor *t, float *data, const cvis__shape *s);
cvis__shape cvis__tensor_get_shape(const cvis_tensor *t);
int cvis__shape_equal(const cvis__shape *a, const cvis__shape *b);
int64_t cvis__shape_count(const cvis__shape *s);
/* "(2, 3, 4)" into buf. */
const char *cvis__shape_str(const cvis__shape *s, char *buf, int size);
/* CVIS_E_NONFINITE if any element is NaN or infinite (message names `what`). */
cvis_status cvis__check_finite(const float *x, int64_t n, const char *what);

/* A gather through strides: y's elements in order read from[off], where off
 * starts at `off` and moves by st[ax] along y's axis ax (slices,
 * transposes).  With `backward`, its gradient: to[off] += from[i]. */
void cvis__strided_gather(const cvis_tensor *y, const int64_t *st, int64_t off,
                          const float *from, float *to, int backward);

#endif
