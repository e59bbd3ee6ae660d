/*
 * cvis.h - libcvis, CNN visualization and attribution in C.
 *
 * QUICK TOUR
 *   A model is a graph of named layers. Build one (cvis_model_new +
 *   cvis_model_add_*), or load one (cvis_model_load_onnx for ONNX files
 *   exported by PyTorch or tf2onnx, cvis_model_load_npz for weights of a
 *   built model).  Feed it float32 tensors in NHWC layout (batch, height, width,
 *   channels): cvis_model_predict.  A cvis_pass runs the model forward and
 *   back, giving the gradient of any scalar with respect to the input and to
 *   any layer's output.
 *
 * ERRORS
 *   Every function that can fail returns a cvis_status (CVIS_OK == 0).  On
 *   failure cvis_last_error() gives a message for the calling thread; it stays
 *   valid until the next libcvis call on that thread.  The library never
 *   prints, exits or aborts.  A failed call leaves its output arguments
 *   untouched (or NULL) and allocates nothing.
 *
 * OWNERSHIP
 *   Each function says who owns what it returns.  "Caller frees with X" means
 *   exactly that; every X accepts NULL.  Strings returned as `const char *`
 *   belong to the object they came from and live as long as it does.
 *
 * THREADS
 *   There is no mutable global state except the allocation limit and the
 *   thread count, both set explicitly.  A model is read-only once built or
 *   loaded, and may be shared by any number of threads as long as none of
 *   them changes it (cvis_model_add_*, cvis_model_set_*, weight setters).
 *   Objects that compute (cvis_pass, cvis_explainer, cvis_optimizer) belong
 *   to one thread at a time: give each thread its own.
 *
 * LAYOUT
 *   Images and feature maps are NHWC.  Convolution filters are reported and
 *   set as (kh, kw, c_in / groups, c_out), dense kernels as (in, out): the
 *   Keras layout.
 *
 * ABI
 *   Only fixed-width scalars, pointers and opaque handles cross this
 *   interface.  Enumerations have explicit values and only grow at the end.
 *   New options are new keys, never new fields.
 */
#ifndef CVIS_H
#define CVIS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CVIS_BUILDING) && defined(__GNUC__)
#define CVIS_API __attribute__((visibility("default")))
#else
#define CVIS_API
#endif

/* ---------------------------------------------------------------- version */

#define CVIS_VERSION_MAJOR 1
#define CVIS_VERSION_MINOR 0
#define CVIS_VERSION_PATCH 0
#define CVIS_VERSION_NUMBER \
    (CVIS_VERSION_MAJOR * 10000 + CVIS_VERSION_MINOR * 100 + CVIS_VERSION_PATCH)

/* The version of the library actually linked, as MAJOR*10000+MINOR*100+PATCH. */
CVIS_API int cvis_version(void);
/* "MAJOR.MINOR.PATCH"; static storage. */
CVIS_API const char *cvis_version_string(void);

/* ----------------------------------------------------------------- errors */

typedef enum cvis_status {
    CVIS_OK = 0,
    CVIS_E_INVALID_ARG = 1,  /* a NULL pointer, a negative size, an unknown key */
    CVIS_E_NOMEM = 2,        /* an allocation failed */
    CVIS_E_IO = 3,           /* a file could not be opened, read or written */
    CVIS_E_FORMAT = 4,       /* a file is corrupt, truncated or not what it claims */
    CVIS_E_UNSUPPORTED = 5,  /* valid, but a feature libcvis does not implement */
    CVIS_E_SHAPE = 6,        /* tensor shapes do not fit together */
    CVIS_E_NOT_FOUND = 7,    /* no layer, weight or entry of that name */
    CVIS_E_RANGE = 8,        /* an index outside its valid range */
    CVIS_E_NONFINITE = 9,    /* NaN or infinity where finite values are needed */
    CVIS_E_CANCELLED = 10,   /* a callback asked to stop */
    CVIS_E_LIMIT = 11,       /* the request exceeds the allocation limit */
    CVIS_E_LAYER_KIND = 12,  /* the layer is not of the kind required */
    CVIS_E_STATE = 13,       /* the object is not in a state that allows the call */
    CVIS_E_CALLBACK = 14,    /* a user callback reported an error */
    CVIS_E_INTERNAL = 15     /* a bug in libcvis; please report it */
} cvis_status;

/* A fixed English name for a status ("CVIS_E_SHAPE: shape mismatch"); static storage. */
CVIS_API const char *cvis_status_string(cvis_status status);
/* The message of the last failed call on this thread ("" if none).  Owned by
 * the library; valid until the next libcvis call on the same thread. */
CVIS_API const char *cvis_last_error(void);

/* ------------------------------------------------------- process settings */

/* Number of threads that compute: libcvis's worker pool, which runs its
 * loops and cuts its matrix products into blocks; 0 = all cores.
 * Process-wide.  The default is OpenBLAS's thread count at libcvis's first
 * use (OPENBLAS_NUM_THREADS, or one per core); from then on libcvis keeps
 * OpenBLAS itself at one thread (openblas_set_num_threads(1)), so that its
 * pool and OpenBLAS's threads never compete for the cores. */
CVIS_API cvis_status cvis_set_num_threads(int n);
CVIS_API int cvis_get_num_threads(void);

/* Largest single allocation, and largest tensor, that libcvis will make, in
 * bytes.  Requests above it fail with CVIS_E_LIMIT before anything is
 * allocated; this is what keeps a hostile file from exhausting memory.
 * Default 8 GiB.  0 restores the default.  Process-wide. */
CVIS_API cvis_status cvis_set_alloc_limit(uint64_t bytes);
CVIS_API uint64_t cvis_get_alloc_limit(void);

/* ---------------------------------------------------------------- tensors */

#define CVIS_MAX_DIMS 8

typedef struct cvis_tensor cvis_tensor;

/* A new zero-filled float32 tensor.  Caller frees with cvis_tensor_free. */
CVIS_API cvis_status cvis_tensor_create(int ndim, const int64_t *shape, cvis_tensor **out);
/* A tensor over caller memory, without copying.  `data` must hold the
 * product of `shape` floats and outlive the tensor; the tensor never frees
 * it.  Caller frees the handle with cvis_tensor_free. */
CVIS_API cvis_status cvis_tensor_wrap(float *data, int ndim, const int64_t *shape,
                                      cvis_tensor **out);
/* A deep copy.  Caller frees with cvis_tensor_free. */
CVIS_API cvis_status cvis_tensor_clone(const cvis_tensor *t, cvis_tensor **out);
/* The element data, contiguous, row-major.  Owned by the tensor (or by the
 * caller, for a wrapped tensor).  NULL for NULL. */
CVIS_API float *cvis_tensor_data(const cvis_tensor *t);
CVIS_API int cvis_tensor_ndim(const cvis_tensor *t);
/* Size along `axis`; a negative axis counts from the end.  -1 if out of range. */
CVIS_API int64_t cvis_tensor_dim(const cvis_tensor *t, int axis);
/* Copies the ndim sizes into `shape` (room for CVIS_MAX_DIMS is always enough). */
CVIS_API cvis_status cvis_tensor_shape(const cvis_tensor *t, int64_t *shape);
/* Number of elements. */
CVIS_API int64_t cvis_tensor_size(const cvis_tensor *t);
CVIS_API void cvis_tensor_free(cvis_tensor *t);

/* ------------------------------------------------------------------ models */

typedef struct cvis_model cvis_model;

/* Activations that a convolution or dense layer (or an activation layer)
 * applies to its output. */
typedef enum cvis_activation {
    CVIS_ACT_LINEAR = 0,
    CVIS_ACT_RELU = 1,
    CVIS_ACT_RELU6 = 2,
    CVIS_ACT_LEAKY_RELU = 3,   /* slope 0.01 unless given (cvis_model_add_leaky_relu) */
    CVIS_ACT_SIGMOID = 4,
    CVIS_ACT_TANH = 5,
    CVIS_ACT_SOFTMAX = 6,      /* over the last axis */
    CVIS_ACT_HARD_SIGMOID = 7, /* max(0, min(1, x/6 + 1/2)) */
    CVIS_ACT_HARD_SWISH = 8    /* x * hard_sigmoid(x) */
} cvis_activation;

typedef enum cvis_padding {
    CVIS_PADDING_VALID = 0,    /* no padding */
    CVIS_PADDING_SAME = 1,     /* output = ceil(input / stride); extra pixel at the end */
    CVIS_PADDING_EXPLICIT = 2  /* the pads given */
} cvis_padding;

typedef enum cvis_pool {
    CVIS_POOL_MAX = 0,
    CVIS_POOL_AVG = 1
} cvis_pool;

/* Where a layer takes its input from, besides a layer index. */
#define CVIS_PREV (-1)  /* the layer added just before (the input for the first) */
#define CVIS_INPUT (-2) /* the model's input */

/* A new, empty model whose input is (batch, height, width, channels).
 * Caller frees with cvis_model_free. */
CVIS_API cvis_status cvis_model_new(int64_t height, int64_t width, int64_t channels,
                                    cvis_model **out);
CVIS_API void cvis_model_free(cvis_model *m);

/* Builders.  Each adds one layer fed by `input` (a layer index, CVIS_PREV or
 * CVIS_INPUT) and, when `out_layer` is not NULL, stores the new layer's
 * index there.  `name` may be NULL: a Keras-style name is made ("conv2d",
 * "conv2d_1", ...).  Names are unique within a model.  Weights start with
 * Glorot-uniform kernels and zero biases from the seed given by
 * cvis_model_init_weights (0 by default); batch norm starts as identity. */
CVIS_API cvis_status cvis_model_add_conv2d(cvis_model *m, const char *name, int input,
                                           int filters, int kernel_h, int kernel_w,
                                           int stride, cvis_padding padding,
                                           cvis_activation activation, int *out_layer);
/* The full convolution: strides, dilations, groups (groups == input
 * channels == filters / multiplier is a depthwise convolution), explicit
 * pads (used when padding is CVIS_PADDING_EXPLICIT) and an optional bias. */
CVIS_API cvis_status cvis_model_add_conv2d_ex(cvis_model *m, const char *name, int input,
                                              int filters, int kernel_h, int kernel_w,
                                              int stride_h, int stride_w,
                                              int dilation_h, int dilation_w, int groups,
                                              cvis_padding padding, int pad_top, int pad_left,
                                              int pad_bottom, int pad_right, int use_bias,
                                              cvis_activation activation, int *out_layer);
CVIS_API cvis_status cvis_model_add_dense(cvis_model *m, const char *name, int input,
                                          int units, cvis_activation activation,
                                          int *out_layer);
CVIS_API cvis_status cvis_model_add_activation(cvis_model *m, const char *name, int input,
                                               cvis_activation activation, int *out_layer);
CVIS_API cvis_status cvis_model_add_leaky_relu(cvis_model *m, const char *name, int input,
                                               float alpha, int *out_layer);
/* Pooling windows of pool_h x pool_w; padding VALID or SAME. */
CVIS_API cvis_status cvis_model_add_pool2d(cvis_model *m, const char *name, int input,
                                           cvis_pool kind, int pool_h, int pool_w,
                                           int stride_h, int stride_w, cvis_padding padding,
                                           int *out_layer);
/* Mean over height and width: (B,H,W,C) -> (B,C). */
CVIS_API cvis_status cvis_model_add_global_avg_pool(cvis_model *m, const char *name,
                                                    int input, int *out_layer);
/* Inference batch normalization over the last axis, with weights gamma,
 * beta, moving_mean, moving_variance. */
CVIS_API cvis_status cvis_model_add_batch_norm(cvis_model *m, const char *name, int input,
                                               float epsilon, int *out_layer);
CVIS_API cvis_status cvis_model_add_flatten(cvis_model *m, const char *name, int input,
                                            int *out_layer);
/* Identity at inference (libcvis does not sample dropout masks). */
CVIS_API cvis_status cvis_model_add_dropout(cvis_model *m, const char *name, int input,
                                            float rate, int *out_layer);
CVIS_API cvis_status cvis_model_add_zero_padding(cvis_model *m, const char *name, int input,
                                                 int top, int bottom, int left, int right,
                                                 int *out_layer);
/* Element-wise sum or product of two layers of the same shape. */
CVIS_API cvis_status cvis_model_add_add(cvis_model *m, const char *name, int input_a,
                                        int input_b, int *out_layer);
CVIS_API cvis_status cvis_model_add_multiply(cvis_model *m, const char *name, int input_a,
                                             int input_b, int *out_layer);
/* Concatenation along the channel (last) axis. */
CVIS_API cvis_status cvis_model_add_concat(cvis_model *m, const char *name, int n_inputs,
                                           const int *inputs, int *out_layer);

/* The model's outputs (by default, the last layer added). */
CVIS_API cvis_status cvis_model_set_outputs(cvis_model *m, int n, const int *layers);
/* Re-initializes every weight from `seed`: Glorot-uniform kernels, zero
 * biases, identity batch norm.  Same seed, same weights. */
CVIS_API cvis_status cvis_model_init_weights(cvis_model *m, uint64_t seed);

/* Enumeration.  The input is not a layer; layers are 0..count-1 in the
 * order they run.  Strings are owned by the model. */
CVIS_API int cvis_model_layer_count(const cvis_model *m);
CVIS_API const char *cvis_model_layer_name(const cvis_model *m, int layer);
/* "Conv2D", "Dense", "ReLU", "MaxPool2D", ... */
CVIS_API const char *cvis_model_layer_type(const cvis_model *m, int layer);
/* 1 for convolution-like layers (the ones CAM methods can use), else 0. */
CVIS_API int cvis_model_layer_is_conv(const cvis_model *m, int layer);
/* The layer's output shape without the batch axis, for the model's input
 * shape.  Writes up to CVIS_MAX_DIMS sizes and their count. */
CVIS_API cvis_status cvis_model_layer_output_shape(const cvis_model *m, int layer,
                                                   int *ndim, int64_t *shape);
/* The index of the layer called `name` (also answers to the names of
 * nodes merged into it on import).  A negative index counts from the end. */
CVIS_API cvis_status cvis_model_find_layer(const cvis_model *m, const char *name, int *layer);
/* The input shape (height, width, channels); -1 where the size is free. */
CVIS_API cvis_status cvis_model_input_shape(const cvis_model *m, int64_t *hwc);
CVIS_API int cvis_model_output_count(const cvis_model *m);
/* The layer index that output k is taken from. */
CVIS_API int cvis_model_output_layer(const cvis_model *m, int k);

/* Weights.  A layer has 0 or more named weight tensors: "kernel", "bias"
 * (convolution, dense), "gamma", "beta", "moving_mean", "moving_variance"
 * (batch norm). */
CVIS_API int cvis_model_weight_count(const cvis_model *m, int layer);
CVIS_API const char *cvis_model_weight_name(const cvis_model *m, int layer, int k);
/* A copy of weight k.  Caller frees with cvis_tensor_free. */
CVIS_API cvis_status cvis_model_get_weight(const cvis_model *m, int layer, int k,
                                           cvis_tensor **out);
/* Overwrites weight k with `value` (same shape; finite values only). */
CVIS_API cvis_status cvis_model_set_weight(cvis_model *m, int layer, int k,
                                           const cvis_tensor *value);
/* Convolution filters (kh, kw, c_in/groups, c_out) and bias (c_out), copied.
 * The layer must be a convolution.  Either output may be NULL.  A layer
 * without bias gives a zero bias.  Caller frees both with cvis_tensor_free. */
CVIS_API cvis_status cvis_model_get_filters(const cvis_model *m, int layer,
                                            cvis_tensor **filters, cvis_tensor **bias);

/* NPZ weights: one array per weight, keyed "<layer>/<weight>" (a trailing
 * ":0", as Keras variable names have, is accepted on load).  Loading is all
 * or nothing: every weight of the model must be present with its shape, no
 * unknown key may be present, and on any error the model is unchanged.
 * Stored and deflated archives, float32 and float64 arrays, C or Fortran
 * order are read; saving writes float32, deflated.
 * Also read: float16 arrays, .npy versions 1.0 to 3.0, ZIP64 records.
 * Load errors: CVIS_E_IO (file missing or unreadable), CVIS_E_FORMAT
 * (corrupt or truncated archive), CVIS_E_UNSUPPORTED (another dtype,
 * encryption, another compression method), CVIS_E_NOT_FOUND (a weight
 * without its key), CVIS_E_INVALID_ARG (an unknown or repeated key),
 * CVIS_E_SHAPE, CVIS_E_NONFINITE (NaN or infinity), CVIS_E_LIMIT; the
 * message names the key or member at fault.  Saving writes a temporary
 * file beside `path` and renames it: a failed save leaves `path` as it
 * was.  See docs/npz.md. */
CVIS_API cvis_status cvis_model_load_npz(cvis_model *m, const char *path);
CVIS_API cvis_status cvis_model_save_npz(const cvis_model *m, const char *path);

/* A tensor as a .npy file (float32, C order, version 1.0), written through a
 * temporary file so that a failed save leaves no partial file; and back:
 * float16/32/64, either byte order, C or Fortran order.  Caller frees the
 * loaded tensor with cvis_tensor_free. */
CVIS_API cvis_status cvis_tensor_save_npy(const cvis_tensor *t, const char *path);
CVIS_API cvis_status cvis_tensor_load_npy(const char *path, cvis_tensor **out);

/* A model that shares m's layers and weights but whose outputs are the
 * given layers (the feature-map submodel).  It holds a reference: m may be
 * freed first.  Weights changed through either handle are seen by both.
 * Caller frees with cvis_model_free. */
CVIS_API cvis_status cvis_model_submodel(const cvis_model *m, int n, const int *layers,
                                         cvis_model **out);

/* Runs the model on x (B,H,W,C) and returns output k (for a single-output
 * model, k = 0) as a new tensor.  Caller frees with cvis_tensor_free. */
CVIS_API cvis_status cvis_model_predict(const cvis_model *m, const cvis_tensor *x,
                                        cvis_tensor **out);
/* All outputs at once: outs[0..cvis_model_output_count-1] receive new
 * tensors.  Caller frees each with cvis_tensor_free. */
CVIS_API cvis_status cvis_model_predict_all(const cvis_model *m, const cvis_tensor *x,
                                            int n_outs, cvis_tensor **outs);

/* ------------------------------------------------------------------- ONNX */

/* Opens an ONNX model (opsets 7 to 18; exports of PyTorch, tf2onnx and
 * libcvis itself).  The file's NCHW input becomes the model's (B,H,W,C)
 * input, sizes the file leaves symbolic become free (-1 in
 * cvis_model_input_shape).  Layers are named after the ONNX nodes; a
 * convolution followed by its BatchNormalization and activation is one
 * convolution-like layer that answers to all three names.  An op libcvis
 * does not support fails with CVIS_E_UNSUPPORTED naming the op, the node
 * and the opset; a damaged file fails with CVIS_E_FORMAT.  Tensors stored
 * as external data are read from files beside `path`.  docs/onnx.md lists
 * the ops.  Caller frees with cvis_model_free. */
CVIS_API cvis_status cvis_model_load_onnx(const char *path, cvis_model **out);
/* The same from `size` bytes in memory (read during the call only);
 * external data is refused.  Caller frees with cvis_model_free. */
CVIS_API cvis_status cvis_model_load_onnx_memory(const void *data, size_t size,
                                                 cvis_model **out);
/* Saves the model as ONNX (NCHW input, opset 13, or 17 when it needs
 * LayerNormalization), loadable by cvis_model_load_onnx and other ONNX
 * tools.  Writes to a temporary file then renames it over `path`. */
CVIS_API cvis_status cvis_model_save_onnx(const cvis_model *m, const char *path);
/* The same into memory: *data receives `*size` bytes.  Caller frees *data
 * with cvis_free. */
CVIS_API cvis_status cvis_model_save_onnx_memory(const cvis_model *m, void **data,
                                                 size_t *size);
/* Frees memory that libcvis returned (cvis_model_save_onnx_memory).
 * Accepts NULL. */
CVIS_API void cvis_free(void *p);

/* ------------------------------------------------ forward and backward pass */

/* A pass runs a model forward on a batch, keeping what the backward pass
 * needs, then propagates d(scalar)/d(outputs) back to the input and to every
 * layer on the way.  It owns its buffers and reuses them from call to call;
 * give each thread its own pass.  The model must outlive the pass. */
typedef struct cvis_pass cvis_pass;

typedef enum cvis_pass_option {
    /* int: 1 = drop the output layers' activation (scores on logits).  An
     * output layer that also feeds another output keeps its activation. */
    CVIS_PASS_LOGITS = 0,
    /* int: 1 = also compute weight gradients (training). */
    CVIS_PASS_WEIGHT_GRADS = 1,
    /* int: 1 = compute the gradient with respect to the input (default 1). */
    CVIS_PASS_INPUT_GRAD = 2,
    /* int: layer index whose activation is dropped (-1: none); its output
     * is then the pre-activation value. */
    CVIS_PASS_DROP_ACTIVATION = 3,
    /* int: layer index from which gradients are kept even when the input
     * gradient is off (-1: none); backward then stops at that layer. */
    CVIS_PASS_GRAD_LAYER = 4,
    /* int: 1 = when no gradient is asked for (input gradient 0, no weight
     * gradients, no grad layer), a forward keeps only the outputs: each
     * layer's output is given back as soon as no later layer reads it, so
     * that memory holds the live values only.  Layer outputs are then NULL
     * and backward fails with CVIS_E_STATE.  Default 0. */
    CVIS_PASS_FORWARD_ONLY = 5
} cvis_pass_option;

/* Caller frees with cvis_pass_free. */
CVIS_API cvis_status cvis_pass_new(const cvis_model *m, cvis_pass **out);
CVIS_API void cvis_pass_free(cvis_pass *p);
CVIS_API cvis_status cvis_pass_set_int(cvis_pass *p, cvis_pass_option key, int64_t value);
/* Forward on x (B,H,W,C).  x is read during this call only. */
CVIS_API cvis_status cvis_pass_forward(cvis_pass *p, const cvis_tensor *x);
/* Output k of the last forward, or a layer's output: borrowed views owned
 * by the pass, valid until its next forward or free.  NULL if not computed. */
CVIS_API const cvis_tensor *cvis_pass_output(const cvis_pass *p, int k);
CVIS_API const cvis_tensor *cvis_pass_layer_output(const cvis_pass *p, int layer);
/* Backward from d(scalar)/d(output k) for every output (NULL entries count
 * as zero).  n must equal the model's output count. */
CVIS_API cvis_status cvis_pass_backward(cvis_pass *p, int n, const cvis_tensor *const *d_outputs);
/* Gradients after backward: borrowed views owned by the pass, valid until
 * its next forward or free.  NULL if not computed. */
CVIS_API const cvis_tensor *cvis_pass_input_grad(const cvis_pass *p);
CVIS_API const cvis_tensor *cvis_pass_layer_grad(const cvis_pass *p, int layer);
CVIS_API const cvis_tensor *cvis_pass_weight_grad(const cvis_pass *p, int layer, int k);

/* ------------------------------------------------------------- optimizers */

/* Small objects that step a tensor against its gradient (descent: the
 * caller negates the gradient to ascend).  Each keeps per-tensor state
 * keyed by the slot number the caller gives, so one optimizer can step all
 * the weights of a model. */
typedef struct cvis_optimizer cvis_optimizer;

typedef enum cvis_optimizer_kind {
    CVIS_OPTIMIZER_SGD = 0,     /* w -= lr * (g + momentum buffer) */
    CVIS_OPTIMIZER_RMSPROP = 1, /* Keras defaults: rho 0.9, epsilon 1e-7 */
    CVIS_OPTIMIZER_ADAM = 2     /* Keras defaults: beta_1 0.9, beta_2 0.999, epsilon 1e-7 */
} cvis_optimizer_kind;

typedef enum cvis_optimizer_option {
    CVIS_OPTIM_LEARNING_RATE = 0,
    CVIS_OPTIM_BETA_1 = 1,     /* Adam */
    CVIS_OPTIM_BETA_2 = 2,     /* Adam */
    CVIS_OPTIM_EPSILON = 3,    /* Adam, RMSprop */
    CVIS_OPTIM_RHO = 4,        /* RMSprop */
    CVIS_OPTIM_MOMENTUM = 5    /* SGD */
} cvis_optimizer_option;

/* Caller frees with cvis_optimizer_free. */
CVIS_API cvis_status cvis_optimizer_new(cvis_optimizer_kind kind, double learning_rate,
                                        cvis_optimizer **out);
CVIS_API void cvis_optimizer_free(cvis_optimizer *o);
CVIS_API cvis_status cvis_optimizer_set(cvis_optimizer *o, cvis_optimizer_option key,
                                        double value);
/* One step of `param` (n floats) against `grad`, with the state of `slot`. */
CVIS_API cvis_status cvis_optimizer_step(cvis_optimizer *o, int slot, float *param,
                                         const float *grad, int64_t n);
/* One step of every weight of m from the weight gradients of p (made with
 * CVIS_PASS_WEIGHT_GRADS).  Slots are assigned per weight. */
CVIS_API cvis_status cvis_optimizer_step_model(cvis_optimizer *o, cvis_model *m,
                                               const cvis_pass *p);

/* The same for one layer's weights only (layers may then learn at their
 * own rates, with one optimizer each, or be left frozen).  The slots used
 * are those cvis_optimizer_step_model would use for that layer. */
CVIS_API cvis_status cvis_optimizer_step_layer(cvis_optimizer *o, cvis_model *m,
                                               const cvis_pass *p, int layer);

/* Categorical cross-entropy of a softmax output against integer labels,
 * averaged over the batch, with its gradient with respect to the logits
 * written to d_logits (same shape as logits, may be NULL).  `logits` is
 * (B, classes) before softmax; `labels` holds B class indices. */
CVIS_API cvis_status cvis_softmax_cross_entropy(const cvis_tensor *logits, const int *labels,
                                                double *loss, cvis_tensor *d_logits);

/* ---------------------------------------------------------------- scores */

/* A score turns a model output into one number per image, s_b; methods
 * explain T = sum_b s_b.  Scores are immutable once made and may be shared
 * by threads.  Caller frees each with cvis_score_free. */
typedef struct cvis_score cvis_score;

/* s_b = mean over all non-batch axes of output[b, ..., idx_b].  n == 1: one
 * index for the whole batch; otherwise n must equal the batch size.  On a
 * convolution output (B,h,w,K) this is the spatial mean of channel idx_b:
 * how a filter is chosen. */
CVIS_API cvis_status cvis_score_categorical(int n, const int *indices, cvis_score **out);
/* For a (B,1) output: s_b = +y_b where target_b is true, -y_b where false.
 * n == 1 or n == B, targets 0 or 1. */
CVIS_API cvis_status cvis_score_binary(int n, const int *targets, cvis_score **out);
/* Score 0 and gradient 0: silences one output of a multi-output model. */
CVIS_API cvis_status cvis_score_inactive(cvis_score **out);
/* A score of your own.  Given the output (borrowed, valid during the call),
 * it writes one score per image into scores[0..B-1] and ds_b/d(output)
 * into d_output (same shape as output, zero-filled on entry).  Returns 0 on
 * success; anything else stops the method with CVIS_E_CALLBACK. */
typedef int (*cvis_score_fn)(void *user, const cvis_tensor *output, float *scores,
                             cvis_tensor *d_output);
CVIS_API cvis_status cvis_score_custom(cvis_score_fn fn, void *user, cvis_score **out);
CVIS_API void cvis_score_free(cvis_score *s);
/* Evaluates a score on an output: scores[0..B-1] and, if d_output is not
 * NULL, the gradient (same shape as output). */
CVIS_API cvis_status cvis_score_eval(const cvis_score *s, const cvis_tensor *output,
                                     float *scores, cvis_tensor *d_output);

/* ---------------------------------------------------------------- methods */

typedef enum cvis_method {
    CVIS_METHOD_SALIENCY = 0,          /* |dT/dX|, channel max (SmoothGrad when samples > 0) */
    CVIS_METHOD_SMOOTHGRAD = 1,        /* saliency with 20 samples of noise 0.2 by default */
    CVIS_METHOD_GRADCAM = 2,
    CVIS_METHOD_GRADCAM_PLUS_PLUS = 3,
    CVIS_METHOD_SCORECAM = 4,          /* Faster Score-CAM when CVIS_OPT_MAX_N is set */
    CVIS_METHOD_FASTER_SCORECAM = 5,   /* Score-CAM over min(10, K) channels by default */
    CVIS_METHOD_LAYERCAM = 6,
    CVIS_METHOD_ACTIVATION_MAXIMIZATION = 7,
    /* Methods beyond the tutorial (docs/methods.md). */
    CVIS_METHOD_INTEGRATED_GRADIENTS = 8, /* (X - X0) * integral of dT/dX along X0 -> X */
    CVIS_METHOD_INPUT_X_GRADIENT = 9,     /* X * dT/dX */
    CVIS_METHOD_GUIDED_BACKPROP = 10,     /* dT/dX, every ReLU passing dy*[dy>0]*[x>0] back */
    CVIS_METHOD_DECONVNET = 11,           /* dT/dX, every ReLU passing relu(dy) back */
    CVIS_METHOD_GUIDED_GRADCAM = 12,      /* guided backprop times the expanded Grad-CAM */
    CVIS_METHOD_XGRADCAM = 13,            /* w_k = sum g*A / sum A */
    CVIS_METHOD_HIRESCAM = 14,            /* relu(sum_k g_k * A_k), element-wise */
    CVIS_METHOD_EIGENCAM = 15,            /* first principal component of the activations */
    CVIS_METHOD_ABLATIONCAM = 16,         /* w_k = (s - s with channel k zeroed) / s */
    CVIS_METHOD_OCCLUSION = 17,           /* mean score drop of the windows over a pixel */
    CVIS_METHOD_RISE = 18                 /* scores of randomly masked copies, averaged */
} cvis_method;

/* How input-space maps (B,H,W,C) become (B,H,W) (CVIS_OPT_REDUCE). */
typedef enum cvis_reduce {
    CVIS_REDUCE_SUM = 0,     /* sum over channels, signed */
    CVIS_REDUCE_ABS_SUM = 1, /* |sum over channels| */
    CVIS_REDUCE_MAX_ABS = 2  /* max over channels of |a| (saliency's) */
} cvis_reduce;

/* Integrated Gradients' quadrature (CVIS_OPT_IG_RULE).  The Riemann rules
 * use Captum's nodes and weights. */
typedef enum cvis_ig_rule {
    CVIS_IG_GAUSS_LEGENDRE = 0,
    CVIS_IG_RIEMANN_LEFT = 1,
    CVIS_IG_RIEMANN_RIGHT = 2,
    CVIS_IG_RIEMANN_MIDDLE = 3,
    CVIS_IG_RIEMANN_TRAPEZOID = 4
} cvis_ig_rule;

/* Reference images: Integrated Gradients' baseline (CVIS_OPT_BASELINE) and
 * what deletion and insertion put in place of removed pixels. */
typedef enum cvis_baseline {
    CVIS_BASELINE_ZERO = 0,
    CVIS_BASELINE_BLUR = 1,    /* the image blurred (Gaussian, CVIS_OPT_BLUR_SIGMA) */
    CVIS_BASELINE_UNIFORM = 2, /* uniform noise within each image's value range, seeded */
    CVIS_BASELINE_MEAN = 3,    /* each channel's mean over the image */
    CVIS_BASELINE_TENSOR = 4   /* the caller's tensor (CVIS_OPT_BASELINE_TENSOR) */
} cvis_baseline;

/* The noise tunnel over a gradient method (CVIS_OPT_NT_TYPE): the method's
 * per-channel maps a_s of noisy copies X + N(0, stdev^2), s = 1..S. */
typedef enum cvis_noise_tunnel {
    CVIS_NT_NONE = 0,
    CVIS_NT_SMOOTHGRAD = 1,    /* mean a_s */
    CVIS_NT_SMOOTHGRAD_SQ = 2, /* mean a_s^2 */
    CVIS_NT_VARGRAD = 3        /* mean a_s^2 - (mean a_s)^2 */
} cvis_noise_tunnel;

/* Options, set by key.  Each says its type (int, float, string, tensor),
 * the methods it concerns and its default.  Keys a method does not use are
 * accepted and ignored. */
typedef enum cvis_option {
    /* int: scores on pre-activation outputs (the output layers' activation is
     * dropped; for activation maximization, the scored layer's).  Default 1. */
    CVIS_OPT_LOGITS = 0,
    /* int: the CAM layer, by index (negative from the end): where the search
     * for a convolution-like layer starts.  Default -1 (the last layer). */
    CVIS_OPT_LAYER = 1,
    /* string: the CAM layer by name, used exactly as named (no search). */
    CVIS_OPT_LAYER_NAME = 2,
    /* int: CAM methods walk back from CVIS_OPT_LAYER to the nearest
     * convolution-like layer.  Default 1. */
    CVIS_OPT_SEEK = 3,
    /* int: min-max normalize each map (constant maps become 0).  Default 1. */
    CVIS_OPT_NORMALIZE = 4,
    /* int: CAM methods: resize maps to the input size (1) or keep the
     * layer's size (0).  Default 1. */
    CVIS_OPT_EXPAND = 5,
    /* int: saliency keeps the channel axis: maps (B,H,W,C).  Default 0. */
    CVIS_OPT_KEEPDIMS = 6,
    /* int: SmoothGrad samples (0: vanilla saliency).  Default 0 (20 for
     * CVIS_METHOD_SMOOTHGRAD). */
    CVIS_OPT_SMOOTH_SAMPLES = 7,
    /* float: SmoothGrad noise, relative to each image's value range.  0.2. */
    CVIS_OPT_SMOOTH_NOISE = 8,
    /* int: seed of the call's random generator.  Default 0. */
    CVIS_OPT_SEED = 9,
    /* int: Faster Score-CAM's channel count, in [1, K]; -1 = all channels.
     * Default -1 (min(10, K) for CVIS_METHOD_FASTER_SCORECAM). */
    CVIS_OPT_MAX_N = 10,
    /* int: images per forward pass of the methods that run many: Score-CAM's
     * masked inputs, Integrated Gradients' interpolated images, Ablation-CAM,
     * Occlusion and RISE.  Default 32. */
    CVIS_OPT_BATCH_SIZE = 11,
    /* Activation maximization: */
    CVIS_OPT_STEPS = 12,          /* int, default 200 */
    CVIS_OPT_INPUT_MIN = 13,      /* float, default 0 */
    CVIS_OPT_INPUT_MAX = 14,      /* float, default 255 */
    CVIS_OPT_JITTER = 15,         /* int pixels, 0 = off; default 4 */
    CVIS_OPT_ROTATE = 16,         /* float degrees, 0 = off; default 1 */
    CVIS_OPT_SCALE_MIN = 17,      /* float zoom range; default 1 and 1 (off) */
    CVIS_OPT_SCALE_MAX = 18,
    CVIS_OPT_TV_WEIGHT = 19,      /* float TotalVariation2D weight, 0 = off; default 1 */
    CVIS_OPT_NORM_WEIGHT = 20,    /* float Norm weight, 0 = off; default 0.3 */
    CVIS_OPT_NORM_P = 21,         /* float Norm order p >= 1; default 1 */
    CVIS_OPT_OPTIMIZER = 22,      /* int cvis_optimizer_kind; default RMSPROP */
    CVIS_OPT_LEARNING_RATE = 23,  /* float, default 1 */
    CVIS_OPT_BETA_1 = 24,         /* float, Adam; default 0.9 */
    CVIS_OPT_BETA_2 = 25,         /* float, Adam's beta_2 or RMSprop's rho; default 0.999 */
    CVIS_OPT_BATCH = 26,          /* int: images optimized together without a seed input; 1 */
    /* int: score this layer's output instead of the model's outputs (the
     * reference's ExtractIntermediateLayer; how activation maximization
     * picks a filter's layer).  Index, negative from the end.  Default: unset. */
    CVIS_OPT_OUTPUT_LAYER = 27,
    /* string: the same by layer name. */
    CVIS_OPT_OUTPUT_LAYER_NAME = 28,
    /* int cvis_reduce: input-space methods' channel reduction (without
     * keepdims).  Default MAX_ABS for saliency, SUM for the others. */
    CVIS_OPT_REDUCE = 29,
    /* Integrated Gradients: */
    CVIS_OPT_IG_STEPS = 30,        /* int: nodes of the rule, >= 1 (>= 2 for Riemann); 50 */
    CVIS_OPT_IG_RULE = 31,         /* int cvis_ig_rule; default GAUSS_LEGENDRE */
    CVIS_OPT_BASELINE = 32,        /* int cvis_baseline (not MEAN); default ZERO */
    /* tensor (1,H,W,C) or (B,H,W,C), copied (cvis_explainer_set_tensor);
     * setting it sets CVIS_OPT_BASELINE to TENSOR, NULL clears it. */
    CVIS_OPT_BASELINE_TENSOR = 33,
    CVIS_OPT_BLUR_SIGMA = 34,      /* float > 0, pixels: the blurred baseline's; default 5 */
    /* The noise tunnel, over saliency, Integrated Gradients, Input x Gradient,
     * guided backprop, deconvnet and Guided Grad-CAM: */
    CVIS_OPT_NT_TYPE = 35,         /* int cvis_noise_tunnel; default NONE */
    CVIS_OPT_NT_SAMPLES = 36,      /* int >= 1; default 5 */
    CVIS_OPT_NT_STDEV = 37,        /* float >= 0, absolute (as Captum's); default 1 */
    /* Occlusion: square windows of WINDOW pixels every STRIDE pixels, set
     * to BASELINE_VALUE.  0 = automatic: window max(1, round(min(H,W)/8)),
     * stride max(1, window/2). */
    CVIS_OPT_WINDOW = 38,          /* int; default 0 */
    CVIS_OPT_STRIDE = 39,          /* int; default 0 */
    CVIS_OPT_BASELINE_VALUE = 40,  /* float; default 0 */
    /* RISE: */
    CVIS_OPT_RISE_MASKS = 41,      /* int N >= 1; default 1000 */
    CVIS_OPT_RISE_PROBABILITY = 42, /* float p in (0, 1]: a cell kept; default 0.5 */
    CVIS_OPT_RISE_CELL = 43        /* int: cell size in pixels, 0 = ceil(max(H,W)/7) */
} cvis_option;

/* Called during long runs.  Activation maximization: once per step, with
 * values = [score_0 .. score_{B-1}, total variation, norm] (the scores and
 * the weighted regularizer values of that step).  Score-CAM: once per
 * forward batch, values = NULL.  Return 0 to go on, anything else to stop
 * the run (it then fails with CVIS_E_CANCELLED). */
typedef int (*cvis_progress_fn)(void *user, int step, int total, int n_values,
                                const float *values);

/* An explainer applies one method to one model with its options.  It keeps
 * buffers across runs; give each thread its own (they may share the model
 * and the scores).  The model must outlive it.  Caller frees with
 * cvis_explainer_free. */
typedef struct cvis_explainer cvis_explainer;

CVIS_API cvis_status cvis_explainer_new(const cvis_model *m, cvis_method method,
                                        cvis_explainer **out);
CVIS_API void cvis_explainer_free(cvis_explainer *e);
CVIS_API cvis_status cvis_explainer_set_int(cvis_explainer *e, cvis_option key, int64_t value);
CVIS_API cvis_status cvis_explainer_set_float(cvis_explainer *e, cvis_option key, double value);
/* The string is copied. */
CVIS_API cvis_status cvis_explainer_set_string(cvis_explainer *e, cvis_option key,
                                               const char *value);
/* A tensor option (CVIS_OPT_BASELINE_TENSOR), copied: the caller keeps
 * and frees its own.  NULL clears the option. */
CVIS_API cvis_status cvis_explainer_set_tensor(cvis_explainer *e, cvis_option key,
                                               const cvis_tensor *value);
CVIS_API cvis_status cvis_explainer_set_progress(cvis_explainer *e, cvis_progress_fn fn,
                                                 void *user);
/* The shape of the maps a run on x will write: (B,H,W) for most methods,
 * (B,h,w) without expansion, (B,H,W,C) for saliency with keepdims and for
 * activation maximization.  x may be NULL for activation maximization. */
CVIS_API cvis_status cvis_explainer_output_shape(cvis_explainer *e, const cvis_tensor *x,
                                                 int *ndim, int64_t *shape);
/* Runs the method on the batch x (B,H,W,C) with one score per model output
 * and writes the maps into `out` (a tensor of cvis_explainer_output_shape).
 * On failure `out` is left untouched.  Activation maximization: x is the
 * seed image batch, or NULL for a seeded uniform start in the input range;
 * `out` receives the optimized images, clipped to the range. */
CVIS_API cvis_status cvis_explainer_run(cvis_explainer *e, const cvis_tensor *x, int n_scores,
                                        const cvis_score *const *scores, cvis_tensor *out);
/* The layer the last run explained (CAM methods: after the seek), or -1. */
CVIS_API int cvis_explainer_layer(const cvis_explainer *e);

/* Per-image figures of the last run, besides the maps. */
typedef enum cvis_info {
    /* Integrated Gradients: sum of the image's attributions minus
     * (s(X) - s(X0)): how far the quadrature is from completeness. */
    CVIS_INFO_COMPLETENESS_DELTA = 0,
    /* s(X), summed over outputs: Integrated Gradients, Ablation-CAM,
     * Occlusion. */
    CVIS_INFO_SCORE = 1,
    /* Integrated Gradients: s(X0). */
    CVIS_INFO_BASELINE_SCORE = 2
} cvis_info;

/* Copies the last run's value of `key` for each of its n images into
 * values[0..n-1]; n must be the batch of that run.  CVIS_E_STATE when the
 * last run did not compute it (another method, the noise tunnel, a failed
 * run, no run yet). */
CVIS_API cvis_status cvis_explainer_get_info(const cvis_explainer *e, cvis_info key, int64_t n,
                                             double *values);

/* One call with default options for a single-output model: a new tensor
 * with the maps.  Caller frees it with cvis_tensor_free. */
CVIS_API cvis_status cvis_explain(const cvis_model *m, cvis_method method, const cvis_tensor *x,
                                  const cvis_score *score, cvis_tensor **out);

/* The name of a method ("gradcam", "smoothgrad", ...) and back. */
CVIS_API const char *cvis_method_name(cvis_method method);
CVIS_API cvis_status cvis_method_from_name(const char *name, cvis_method *out);

/* ---------------------------------------- measures of faithfulness */

/* How faithful a map is to the model (docs/methods.md, "Measures").  Maps
 * are (B,H,W) for the batch x (B,H,W,C); higher values mean more
 * important pixels.  The model must have one output; the confidence that
 * the curves and drops follow is the score on the softmax of the model's
 * logits (the output layer's activation dropped, then softmax over the
 * last axis): the target's probability for a categorical score.  Nothing
 * is kept between calls; a model may be shared by threads calling these. */

/* The number of points of a deletion or insertion curve over `pixels`
 * pixels removed (or inserted) k = ceil(step * pixels) at a time:
 * ceil(pixels / k) + 1.  step in (0, 1]; 0 for bad arguments. */
CVIS_API int64_t cvis_metric_curve_points(int64_t pixels, double step);

/* Deletion: pixels ranked by map value (highest first, ties to the lower
 * index) are set, all channels at once, k at a time, to the baseline
 * image (ZERO, BLUR with blur_sigma pixels, or MEAN); the curve is the
 * confidence after 0, k, 2k, ... pixels (the last point: all of them).
 * Insertion: the same from the baseline, the ranked pixels revealed from
 * x.  `curves` (B, cvis_metric_curve_points(H*W, step)) and `auc` (B) are
 * the caller's tensors, either may be NULL; the AUC is the trapezoid rule
 * over the fractions of pixels reached.  A good map gives a low deletion
 * AUC and a high insertion AUC. */
CVIS_API cvis_status cvis_metric_deletion(const cvis_model *m, const cvis_tensor *x,
                                          const cvis_score *score, const cvis_tensor *maps,
                                          double step, cvis_baseline baseline,
                                          double blur_sigma, cvis_tensor *curves,
                                          cvis_tensor *auc);
CVIS_API cvis_status cvis_metric_insertion(const cvis_model *m, const cvis_tensor *x,
                                           const cvis_score *score, const cvis_tensor *maps,
                                           double step, cvis_baseline baseline,
                                           double blur_sigma, cvis_tensor *curves,
                                           cvis_tensor *auc);
/* Average drop and increase in confidence (Grad-CAM++'s measures): with
 * Y_b the confidence on x_b and O_b the confidence on x_b times its map
 * min-max normalized to [0,1] (only the explained region kept),
 * average_drop = 100 * mean_b max(0, Y_b - O_b) / Y_b and increase =
 * 100 * (share of images with O_b > Y_b).  Either output may be NULL;
 * `confidences` (B, 2), if not NULL, receives Y_b and O_b. */
CVIS_API cvis_status cvis_metric_average_drop(const cvis_model *m, const cvis_tensor *x,
                                              const cvis_score *score, const cvis_tensor *maps,
                                              double *average_drop, double *increase,
                                              cvis_tensor *confidences);
/* The pointing game: a hit when the map's maximum (the first in row-major
 * order) lies on the mask (B,H,W) (non-zero = object), or at a Euclidean
 * distance below `tolerance` pixels from a mask pixel (0 or 1: on the mask
 * itself).  `hits` (B) receives 1 or 0 and `accuracy` hits / B; either may
 * be NULL. */
CVIS_API cvis_status cvis_metric_pointing_game(const cvis_tensor *maps, const cvis_tensor *masks,
                                               int tolerance, cvis_tensor *hits,
                                               double *accuracy);
/* The same against one box per image: boxes holds n_boxes = B rows of
 * (top, left, bottom, right), bottom and right exclusive. */
CVIS_API cvis_status cvis_metric_pointing_game_box(const cvis_tensor *maps, int64_t n_boxes,
                                                   const int64_t *boxes, int tolerance,
                                                   cvis_tensor *hits, double *accuracy);

/* -------------------------------------------- filters and feature maps */

/* A convolution's filters (kh, kw, c_in/groups, c_out), min-max normalized
 * to [0, 1] over the whole layer, as the tutorial shows them.  Caller frees
 * with cvis_tensor_free. */
CVIS_API cvis_status cvis_model_get_filters_normalized(const cvis_model *m, int layer,
                                                       cvis_tensor **out);
/* The outputs of n layers for the batch x (a feature-map submodel run):
 * outs[i] receives a new (B, ...) tensor for layers[i].  Caller frees each
 * with cvis_tensor_free. */
CVIS_API cvis_status cvis_model_feature_maps(const cvis_model *m, const cvis_tensor *x, int n,
                                             const int *layers, cvis_tensor **outs);
/* ------------------------------------------------- images and pictures */

/* An 8-bit image: `height` rows of `width` pixels of `channels` bytes each
 * (1 = gray, 3 = RGB, 4 = RGBA), rows packed top to bottom.  Images are
 * what files are decoded into and what pictures are rendered as; tensors
 * are what models see.  An image may be read by several threads at once. */
typedef struct cvis_image cvis_image;

/* A new zero-filled (black) image; channels 1, 3 or 4.  Caller frees with
 * cvis_image_free. */
CVIS_API cvis_status cvis_image_new(int width, int height, int channels, cvis_image **out);
/* Decodes a JPEG, PNG, BMP, TGA or GIF (its first frame) file into an RGB
 * image (gray is repeated, alpha dropped).  The header is checked before any
 * pixel buffer is made: a damaged file gives CVIS_E_FORMAT, a missing one
 * CVIS_E_IO, one that declares more than 65536 pixels per side or more
 * memory than the allocation limit CVIS_E_LIMIT.  Caller frees with
 * cvis_image_free. */
CVIS_API cvis_status cvis_image_load(const char *path, cvis_image **out);
/* The same from `size` bytes in memory (read during the call only). */
CVIS_API cvis_status cvis_image_load_memory(const void *data, int64_t size, cvis_image **out);
/* Writes img as a PNG file (gray, RGB or RGBA as the image is). */
CVIS_API cvis_status cvis_image_save_png(const cvis_image *img, const char *path);
/* Size and pixels; 0 / NULL for NULL.  The data is owned by the image and
 * may be written through (width*height*channels bytes). */
CVIS_API int cvis_image_width(const cvis_image *img);
CVIS_API int cvis_image_height(const cvis_image *img);
CVIS_API int cvis_image_channels(const cvis_image *img);
CVIS_API uint8_t *cvis_image_data(const cvis_image *img);
CVIS_API void cvis_image_free(cvis_image *img);

typedef enum cvis_resize_filter {
    /* Antialiased resampling: Mitchell filter when shrinking, Catmull-Rom
     * when enlarging. */
    CVIS_RESIZE_SMOOTH = 0,
    /* The source pixel whose area holds the output pixel's centre, as
     * PIL's NEAREST (and so Keras's load_img default) picks it. */
    CVIS_RESIZE_NEAREST = 1,
    /* Triangle filter: bilinear when enlarging, averaging when shrinking. */
    CVIS_RESIZE_BILINEAR = 2
} cvis_resize_filter;

/* A resized copy with the same channels.  Caller frees with cvis_image_free. */
CVIS_API cvis_status cvis_image_resize(const cvis_image *img, int width, int height,
                                       cvis_resize_filter filter, cvis_image **out);

/* A batch tensor (n, height, width, 3) of float32 from n images, each
 * value v/255 in [0,1] (the tutorial's `img / 255`).  Images of another
 * size are resized with CVIS_RESIZE_SMOOTH (resize them yourself first to
 * choose the filter); gray images are repeated to RGB, alpha is dropped.
 * height = width = 0 takes the first image's size.  Caller frees with
 * cvis_tensor_free. */
CVIS_API cvis_status cvis_images_to_tensor(int n, const cvis_image *const *imgs, int height,
                                           int width, cvis_tensor **out);
/* The same with per-channel normalization: x = (v/255 - mean[c]) / std[c]
 * (torchvision's Normalize).  mean and std hold 3 floats; std must be
 * non-zero. */
CVIS_API cvis_status cvis_images_to_tensor_normalized(int n, const cvis_image *const *imgs,
                                                      int height, int width, const float *mean,
                                                      const float *std, cvis_tensor **out);
/* Image `index` of a batch x for display: x is (B,H,W,C) with C 1, 3 or 4,
 * or (B,H,W) for gray; values map linearly from [lo, hi] to 0..255, rounded
 * and clipped (NaN gives 0).  Caller frees with cvis_image_free. */
CVIS_API cvis_status cvis_tensor_to_image(const cvis_tensor *x, int64_t index, float lo,
                                          float hi, cvis_image **out);

/* Colormaps, as matplotlib defines them: a 256-entry table, value v in
 * [0,1] picks entry min(floor(256 v), 255); each channel is matplotlib's
 * value rounded to 8 bits (nearest, ties to even: numpy's round). */
typedef enum cvis_colormap {
    CVIS_CMAP_JET = 0,     /* blue - cyan - yellow - red, piecewise linear */
    CVIS_CMAP_VIRIDIS = 1, /* perceptually uniform, dark blue to yellow */
    CVIS_CMAP_INFERNO = 2, /* perceptually uniform, black to pale yellow */
    CVIS_CMAP_GRAY = 3     /* black to white */
} cvis_colormap;

/* An RGB picture of a height x width float map (row-major).  With
 * `normalize`, the map is first scaled by its own min and max (a constant
 * map becomes all zeros); otherwise values are clipped to [0,1].  Values
 * must be finite (CVIS_E_NONFINITE).  Caller frees with cvis_image_free. */
CVIS_API cvis_status cvis_map_to_image(const float *map, int64_t height, int64_t width,
                                       cvis_colormap cmap, int normalize, cvis_image **out);
/* A heatmap over a picture: out = (1 - alpha) * base + alpha * cmap(map),
 * rounded, RGB, of the base's size (the tutorial uses jet and alpha 0.5).
 * The mh x mw map is resized bilinearly (aligned corners) to the base's
 * size when the sizes differ; its values are clipped to [0,1] (normalize
 * it first if needed) and must be finite.  alpha in [0,1].  A gray base is
 * repeated to RGB, an RGBA base has its alpha dropped.  Caller frees with
 * cvis_image_free. */
CVIS_API cvis_status cvis_image_overlay(const cvis_image *base, const float *map, int64_t mh,
                                        int64_t mw, cvis_colormap cmap, float alpha,
                                        cvis_image **out);

/* Text, in a small built-in bitmap font (printable ASCII; other bytes are
 * shown as '?').  Glyphs are 12 * scale pixels high a line ('\n' starts a
 * new line), and the color is 0xRRGGBB.  Text may run past the image's
 * edges; what falls outside is clipped. */
CVIS_API cvis_status cvis_image_draw_text(cvis_image *img, int x, int y, const char *text,
                                          int scale, uint32_t rgb);
/* The width in pixels of the longest line of text at `scale`. */
CVIS_API int cvis_text_width(const char *text, int scale);

/* A grid of pictures with a title above each cell and a caption below, on
 * white: filters (rows = filters, columns = input channels), feature maps,
 * or one panel per image and method. */
typedef struct cvis_grid cvis_grid;

/* rows x cols cells of cell_width x cell_height pixels.  Caller frees with
 * cvis_grid_free. */
CVIS_API cvis_status cvis_grid_new(int rows, int cols, int cell_width, int cell_height,
                                   cvis_grid **out);
/* Puts a copy of img (scaled to fit the cell, aspect kept, centred) in a
 * cell, with an optional title (NULL: none).  Enlarging uses nearest
 * neighbour, so a 7x7 filter shows crisp pixels; shrinking averages.  The
 * grid keeps no reference to img or title. */
CVIS_API cvis_status cvis_grid_set(cvis_grid *g, int row, int col, const cvis_image *img,
                                   const char *title);
/* Text under the grid, wrapped to its width; NULL or "" for none. */
CVIS_API cvis_status cvis_grid_set_caption(cvis_grid *g, const char *text);
/* The picture (RGB).  Empty cells stay white.  Caller frees with
 * cvis_image_free. */
CVIS_API cvis_status cvis_grid_render(const cvis_grid *g, cvis_image **out);
CVIS_API void cvis_grid_free(cvis_grid *g);

/* A static HTML page that shows the pictures of a run with captions,
 * sections and tables: inline style, no script, nothing fetched from the
 * network; all text is escaped. */
typedef struct cvis_report cvis_report;

/* Caller frees with cvis_report_free. */
CVIS_API cvis_status cvis_report_new(const char *title, cvis_report **out);
/* A heading (may be NULL) and paragraphs of text (may be NULL; a blank line
 * separates paragraphs). */
CVIS_API cvis_status cvis_report_add_section(cvis_report *r, const char *heading,
                                             const char *text);
/* A picture by its path relative to the page (no scheme, no absolute
 * path: the page and its pictures travel together), with a caption. */
CVIS_API cvis_status cvis_report_add_image(cvis_report *r, const char *relative_path,
                                           const char *caption);
/* A picture embedded in the page itself (as PNG data), with a caption. */
CVIS_API cvis_status cvis_report_add_image_inline(cvis_report *r, const cvis_image *img,
                                                  const char *caption);
/* A table of rows x cols cells given row by row; the first row is the
 * header.  NULL cells are empty. */
CVIS_API cvis_status cvis_report_add_table(cvis_report *r, int rows, int cols,
                                           const char *const *cells);
/* Writes the page (UTF-8). */
CVIS_API cvis_status cvis_report_save(const cvis_report *r, const char *path);
CVIS_API void cvis_report_free(cvis_report *r);

#ifdef __cplusplus
}
#endif

#endif /* CVIS_H */
