/* The ops of libcvis and their attributes.  Each op lives in its own file;
 * this header is the list. */
#ifndef CVIS_CORE_OPS_H
#define CVIS_CORE_OPS_H

#include "op.h"

/* ------------------------------------------------------------ activation */

/* Applies activation `act` in place to n values; softmax works on rows of
 * `row` values. */
void cvis__act_apply(int act, float alpha, float *y, int64_t n, int64_t row);
/* dx = dy * act'(.) from the activation's output y (x only needed for
 * hard swish, which is not invertible; pass NULL otherwise).  Writes dx
 * (when accumulate is 0) or adds to it. */
void cvis__act_grad(int act, float alpha, const float *x, const float *y, const float *dy,
                    float *dx, int64_t n, int64_t row, cvis__relu_mode mode, int accumulate);
/* 1 if the activation's derivative follows from its output alone (so it
 * can be fused into a convolution or dense layer). */
int cvis__act_fusable(int act);
const char *cvis__act_name(int act);

typedef struct cvis__act_attr {
    int act;
    float alpha;
} cvis__act_attr;
extern const cvis__op cvis__op_activation;

/* ----------------------------------------------------------- convolution */

typedef enum cvis__pad_mode {
    CVIS__PAD_EXPLICIT = 0,
    CVIS__PAD_VALID = 1,
    CVIS__PAD_SAME_UPPER = 2, /* TensorFlow "same": the extra pixel at the end */
    CVIS__PAD_SAME_LOWER = 3
} cvis__pad_mode;

/* Output size and pads along one axis.  Returns an error if the window
 * does not fit.  ceil_mode: pooling's rounding up. */
cvis_status cvis__window(int64_t in, int k, int s, int d, int mode, int pad_before,
                         int pad_after, int ceil_mode, int64_t *out, int *before, int *after);

typedef struct cvis__conv_attr {
    int kh, kw, sh, sw, dh, dw, groups;
    int pad_mode; /* cvis__pad_mode */
    int pt, pl, pb, pr;
    int cout;
    int has_bias;
    int has_bn;   /* params continue with gamma, beta, mean, var */
    float bn_eps;
    int act;
    float alpha;
} cvis__conv_attr;
/* params: kernel (kh, kw, cin/groups, cout), [bias (cout)], [gamma, beta, mean, var] */
extern const cvis__op cvis__op_conv2d;

/* ----------------------------------------------------------------- dense */

typedef struct cvis__dense_attr {
    int units;
    int has_bias;
    int act;
    float alpha;
} cvis__dense_attr;
/* params: kernel (in, units), [bias (units)]; applies to the last axis */
extern const cvis__op cvis__op_dense;

/* --------------------------------------------------------------- pooling */

typedef struct cvis__pool_attr {
    int kind; /* cvis_pool */
    int kh, kw, sh, sw;
    int pad_mode;
    int pt, pl, pb, pr;
    int ceil_mode;
    int count_include_pad;
} cvis__pool_attr;
extern const cvis__op cvis__op_pool2d;

typedef struct cvis__gap_attr {
    int keepdims; /* 1: (B,1,1,C), 0: (B,C) */
} cvis__gap_attr;
extern const cvis__op cvis__op_global_avg_pool;

/* ------------------------------------------------------------ batch norm */

typedef struct cvis__bn_attr {
    float eps;
} cvis__bn_attr;
/* params: gamma, beta, mean, var (each C, the last axis) */
extern const cvis__op cvis__op_batch_norm;

/* ----------------------------------------------------- views (no copies) */

typedef struct cvis__reshape_attr {
    int ndim;                     /* without the batch axis */
    int64_t shape[CVIS_MAX_DIMS]; /* -1: inferred; -2-k: the size of input axis k
                                     (k counts the batch axis as 0), for sizes that
                                     follow the model's free input size */
} cvis__reshape_attr;
extern const cvis__op cvis__op_flatten;  /* (B, ...) -> (B, n); attr unused */
extern const cvis__op cvis__op_identity; /* dropout at inference; attr unused */
extern const cvis__op cvis__op_reshape;  /* keeps the batch axis */

/* ------------------------------------------------ element-wise, combined */

typedef enum cvis__binary_kind {
    CVIS__BIN_ADD = 0,
    CVIS__BIN_SUB = 1,
    CVIS__BIN_MUL = 2,
    CVIS__BIN_DIV = 3
} cvis__binary_kind;
typedef struct cvis__binary_attr {
    int kind;
} cvis__binary_attr;
/* numpy broadcasting of two inputs */
extern const cvis__op cvis__op_binary;

typedef struct cvis__concat_attr {
    int axis; /* negative counts from the end */
} cvis__concat_attr;
extern const cvis__op cvis__op_concat;

typedef struct cvis__pad_attr {
    int64_t before[CVIS_MAX_DIMS];
    int64_t after[CVIS_MAX_DIMS];
    float value;
} cvis__pad_attr;
/* constant padding on any axes */
extern const cvis__op cvis__op_pad;

/* ------------------------------------------- ops for imported graphs */

/* Any permutation of the axes: output axis i is input axis perm[i]. */
typedef struct cvis__transpose_attr {
    int ndim;
    int perm[CVIS_MAX_DIMS];
} cvis__transpose_attr;
extern const cvis__op cvis__op_transpose;

/* Strided slice of every axis, with ONNX Slice's rules: negative start
 * and end count from the end of the axis, both are clamped to it, step
 * may be negative (never 0).  An axis left whole has start 0, end
 * INT64_MAX, step 1. */
typedef struct cvis__slice_attr {
    int ndim;
    int64_t start[CVIS_MAX_DIMS], end[CVIS_MAX_DIMS], step[CVIS_MAX_DIMS];
} cvis__slice_attr;
extern const cvis__op cvis__op_slice;

/* Picks entries idx[0..n-1] along one axis (negative indices count from
 * the end).  The attribute is allocated with room for the n indices. */
typedef struct cvis__gather_attr {
    int axis;
    int64_t n;
    int64_t idx[];
} cvis__gather_attr;
extern const cvis__op cvis__op_gather;

/* Matrix product of the last two axes, (..., M, K) x (..., K, N), with
 * numpy broadcasting of the leading axes.  attr unused. */
extern const cvis__op cvis__op_matmul;

typedef enum cvis__reduce_kind {
    CVIS__REDUCE_MEAN = 0,
    CVIS__REDUCE_SUM = 1,
    CVIS__REDUCE_MAX = 2
} cvis__reduce_kind;
/* Reduction over the axes set in `axes` (bit k: axis k). */
typedef struct cvis__reduce_attr {
    int kind;
    int keepdims;
    unsigned axes;
} cvis__reduce_attr;
extern const cvis__op cvis__op_reduce;

typedef enum cvis__unary_kind {
    CVIS__UN_SQRT = 0,
    CVIS__UN_ERF = 1,
    CVIS__UN_POW = 2,          /* x^a */
    CVIS__UN_EXP = 3,
    CVIS__UN_LOG = 4,
    CVIS__UN_NEG = 5,
    CVIS__UN_ABS = 6,
    CVIS__UN_RECIPROCAL = 7,
    CVIS__UN_SILU = 8,         /* x * sigmoid(x) */
    CVIS__UN_GELU = 9,         /* x/2 * (1 + erf(x/sqrt(2))) */
    CVIS__UN_CLIP = 10,        /* min(max(x, a), b) */
    CVIS__UN_HARD_SIGMOID = 11,/* max(0, min(1, a*x + b)) */
    CVIS__UN_SOFTPLUS = 12,    /* log(1 + exp(x)) */
    CVIS__UN_ELU = 13          /* x > 0 ? x : a*(exp(x) - 1) */
} cvis__unary_kind;
/* Element-wise functions with up to two constant parameters a, b. */
typedef struct cvis__unary_attr {
    int kind;
    float a, b;
} cvis__unary_attr;
extern const cvis__op cvis__op_unary;
const char *cvis__unary_name(int kind);

/* Layer normalization over the last n_axes axes:
 * y = (x - mean) / sqrt(var + eps) * gamma + beta.
 * params: gamma, [beta], each with as many values as the normalized axes. */
typedef struct cvis__layer_norm_attr {
    int n_axes;
    float eps;
    int has_beta;
} cvis__layer_norm_attr;
extern const cvis__op cvis__op_layer_norm;

/* An element-wise operation between the input and a constant tensor (its
 * one param, broadcast with numpy's rules): x op c, or c op x when
 * const_first.  Kinds are cvis__binary_kind, plus CVIS__BINC_POW. */
#define CVIS__BINC_POW 4
typedef struct cvis__binary_const_attr {
    int kind;
    int const_first;
} cvis__binary_const_attr;
extern const cvis__op cvis__op_binary_const;

#endif
