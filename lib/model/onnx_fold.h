/* Evaluation of ONNX nodes whose inputs are all constants (shape arithmetic,
 * Constant nodes, initializers passed through Identity, ...), done once at
 * load time.  Tensors follow ONNX's own layout (row-major, NCHW). */
#ifndef CVIS_MODEL_ONNX_FOLD_H
#define CVIS_MODEL_ONNX_FOLD_H

#include "onnx_read.h"

/* 1 if cvis__onnx_fold knows the op type. */
int cvis__onnx_foldable(const char *op_type);

/* Computes the node's outputs from its inputs (in[k] is NULL for an
 * omitted optional input).  out[0..n_out-1] are filled (names are not
 * set); on failure nothing is left allocated.  No output may have more
 * than max_elems values.  CVIS_E_UNSUPPORTED for what cannot be folded. */
cvis_status cvis__onnx_fold(const cvis__onnx_node *n, int64_t opset, int n_in,
                            const cvis__onnx_tensor *const *in, int n_out,
                            cvis__onnx_tensor *out, int64_t max_elems);

/* A deep copy (without the name).  Caller releases with
 * cvis__onnx_tensor_release. */
cvis_status cvis__onnx_tensor_copy(const cvis__onnx_tensor *src, cvis__onnx_tensor *dst);
/* 1 if both hold the same shape and values. */
int cvis__onnx_tensor_equal(const cvis__onnx_tensor *a, const cvis__onnx_tensor *b);
/* Element k as a double. */
double cvis__onnx_get(const cvis__onnx_tensor *t, int64_t k);
/* Element k as an integer (floats truncated and saturated, NaN as 0). */
int64_t cvis__onnx_get_int(const cvis__onnx_tensor *t, int64_t k);
/* A double as an int64, truncated and saturated (NaN as 0). */
int64_t cvis__onnx_to_int(double v);
/* Split's part sizes along an axis of length d: the ns sizes given (ns < 0:
 * none, so n_out parts of ceil(d / n_out), the last ones smaller), checked
 * to be n_out sizes, none negative, adding up to d (without overflowing). */
cvis_status cvis__onnx_split_sizes(int64_t d, int n_out, int ns, int64_t *sizes);
/* 1 for float16/32/64 and bfloat16. */
int cvis__onnx_is_float_type(int dtype);

#endif
