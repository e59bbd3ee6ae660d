/* Internal face of the methods: options, the method table, and the helpers
 * every method shares (scores, gradients, layer choice, resize, normalize). */
#ifndef CVIS_ATTR_ATTR_H
#define CVIS_ATTR_ATTR_H

#include "core/rng.h"
#include "core/tensor.h"
#include "model/model.h"

#define CVIS__EPS 1e-7

typedef struct cvis__explain_opts {
    int logits, layer, seek, normalize, expand, keepdims;
    char *layer_name;                 /* CAM layer by name, or NULL */
    int output_layer, output_layer_set;
    char *output_layer_name;
    int smooth_samples, smooth_samples_set;
    double smooth_noise;
    uint64_t seed;
    int max_n, max_n_set, batch_size;
    int steps, jitter, batch, optimizer;
    double input_min, input_max, rotate, scale_min, scale_max;
    double tv_weight, norm_weight, norm_p, learning_rate, beta1, beta2;
    int reduce, reduce_set;            /* cvis_reduce of input-space maps */
    int ig_steps, ig_rule, baseline;
    cvis_tensor *baseline_tensor;     /* owned copy, or NULL */
    double blur_sigma;
    int nt_type, nt_samples;
    double nt_stdev;
    int window, stride;
    double baseline_value;
    int rise_masks, rise_cell;
    double rise_p;
    cvis_progress_fn progress;
    void *progress_user;
} cvis__explain_opts;

typedef struct cvis__explain_ctx cvis__explain_ctx;

typedef struct cvis__method {
    const char *name;
    /* Map shape for input shape x (batch axis first). */
    cvis_status (*output_shape)(cvis__explain_ctx *c, const cvis__shape *x, cvis__shape *out);
    /* Writes the maps into out (the size output_shape gave). */
    cvis_status (*run)(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                       const cvis_score *const *scores, float *out);
    /* Input-space methods only (NULL for the others): the per-channel
     * attribution (B,H,W,C) of x before channel reduction and
     * normalization, what the noise tunnel averages.  Such methods use
     * cvis__input_output_shape and cvis__input_run. */
    cvis_status (*attribute)(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                             const cvis_score *const *scores, float *raw);
    int reduce; /* their default cvis_reduce */
} cvis__method;

/* The methods, one file each. */
extern const cvis__method cvis__method_saliency;
extern const cvis__method cvis__method_gradcam;
extern const cvis__method cvis__method_gradcam_pp;
extern const cvis__method cvis__method_scorecam;
extern const cvis__method cvis__method_layercam;
extern const cvis__method cvis__method_actmax;
extern const cvis__method cvis__method_intgrad;
extern const cvis__method cvis__method_input_x_gradient;
extern const cvis__method cvis__method_guided_backprop;
extern const cvis__method cvis__method_deconvnet;
extern const cvis__method cvis__method_guided_gradcam;
extern const cvis__method cvis__method_xgradcam;
extern const cvis__method cvis__method_hirescam;
extern const cvis__method cvis__method_eigencam;
extern const cvis__method cvis__method_ablationcam;
extern const cvis__method cvis__method_occlusion;
extern const cvis__method cvis__method_rise;

#define CVIS__N_INFO 3 /* the values of cvis_info */

struct cvis__explain_ctx {
    const cvis_model *model;   /* the explained model */
    const cvis_model *target;  /* model, or a submodel scoring CVIS_OPT_OUTPUT_LAYER */
    cvis_model *submodel;      /* owned when target != model */
    cvis_method method;
    cvis__explain_opts o;
    cvis_pass *pass;           /* main pass over target, reused */
    cvis_pass *aux;            /* second pass (Score-CAM's masked batches) */
    cvis_tensor *seeds[16];    /* d(score)/d(output), per output */
    int layer;                 /* CAM layer of the last run, or -1 */
    const cvis__method *impl;  /* the method's row of the table */
    /* per-image figures of the last run (cvis_info): info_buf holds
     * CVIS__N_INFO rows of info_cap doubles; info_valid says which rows
     * the last run filled, for info_n images */
    double *info_buf;
    int64_t info_cap, info_n;
    int info_valid[CVIS__N_INFO];
};

/* ------------------------------------------------------------ scores */

/* Scores of the rows of `output`.  image_of maps row -> image (for per-image
 * indices) or is NULL (row = image); n_images is the batch they index.
 * grad may be NULL. */
cvis_status cvis__score_eval(const cvis_score *s, const cvis_tensor *output, const int *image_of,
                             int64_t n_images, float *scores, float *grad);
/* Checks a score against a batch of n images before any work is done. */
cvis_status cvis__score_check(const cvis_score *s, int64_t n_images);

/* ----------------------------------------------------------- helpers */

/* The target model: the model, or a submodel ending at CVIS_OPT_OUTPUT_LAYER. */
cvis_status cvis__explain_target(cvis__explain_ctx *c);
/* Resolves and validates what every run needs: the target model (output
 * layer option) and the scores (one per target output). */
cvis_status cvis__explain_prepare(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                                  const cvis_score *const *scores);
/* The CAM layer: by name as named, else by index with the backward seek to
 * a convolution-like layer.  Its output must be (B,h,w,K). */
cvis_status cvis__explain_cam_layer(cvis__explain_ctx *c, int *layer);
/* Forward on x through `pass` (configured by the caller), the scores on the
 * outputs (into svals[B] summed over outputs, may be NULL) and backward. */
cvis_status cvis__explain_backward(cvis__explain_ctx *c, cvis_pass *pass, const cvis_tensor *x,
                                   int n_scores, const cvis_score *const *scores, float *svals);
/* The same for a batch of rows that belong to images of a batch of
 * n_images: image_of[r] is row r's image (NULL: row = image).  svals (one
 * per row, summed over outputs) may be NULL; backward only when asked. */
cvis_status cvis__explain_rows(cvis__explain_ctx *c, cvis_pass *pass, const cvis_tensor *rows,
                               const int *image_of, int64_t n_images, int n_scores,
                               const cvis_score *const *scores, float *svals, int backward);
/* Calls the progress callback, if any, with (done, total); CVIS_E_CANCELLED
 * naming `what` when it asks to stop. */
cvis_status cvis__explain_progress(cvis__explain_ctx *c, int64_t done, int64_t total,
                                   const char *what);

/* A row of per-image figures for this run (see cvis_explainer_get_info),
 * room for B values, marked as computed. */
cvis_status cvis__info_row(cvis__explain_ctx *c, cvis_info key, int64_t B, double **row);
/* Forgets every figure (at the start of a run, and after a failed one). */
void cvis__info_clear(cvis__explain_ctx *c);
/* A pass over the target model with the call's logits option; with the
 * input's gradient and no gradient layer, layers' gradients are given back
 * during backward (cvis__pass_set_input_grads_only). */
cvis_status cvis__explain_pass(cvis__explain_ctx *c, cvis_pass **slot, int input_grad,
                               int grad_layer);

/* CAM methods: forward and backward to the CAM layer (chosen per the
 * options, kept in c->layer); A and g = dT/dA are views owned by the pass. */
cvis_status cvis__cam_gradients(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                                const cvis_score *const *scores, float *svals,
                                const cvis_tensor **A, const cvis_tensor **g);

/* Per image min-max normalization over `per` values: (a-min)/(max-min+eps). */
void cvis__normalize(float *a, int64_t batch, int64_t per);
/* Bilinear resize of one (h,w) map to (H,W) with aligned corners and the
 * edge clamped. */
void cvis__resize_map(const float *src, int64_t h, int64_t w, float *dst, int64_t H, int64_t W);
/* CAM post-processing: maps (B,h,w) -> out (expanded and/or normalized per
 * the options). */
cvis_status cvis__finish_cam(cvis__explain_ctx *c, const float *cam, int64_t B, int64_t h,
                             int64_t w, int64_t H, int64_t W, float *out);
/* The output shape of CAM methods. */
cvis_status cvis__cam_output_shape(cvis__explain_ctx *c, const cvis__shape *x, cvis__shape *out);
/* Grad-CAM at the layer: relu(sum_k mean_hw(g_k) A_k) into cam (B,h,w). */
cvis_status cvis__gradcam_map(const cvis_tensor *A, const cvis_tensor *g, float *cam);
/* dT/dX (B,H,W,C) into raw with every ReLU's backward in `mode`, through
 * the pass in *slot (made when NULL). */
cvis_status cvis__modified_gradient(cvis__explain_ctx *c, cvis_pass **slot, cvis__relu_mode mode,
                                    const cvis_tensor *x, int n_scores,
                                    const cvis_score *const *scores, float *raw);
/* relu(sum_k w[b,k] A[b,:,:,k]) into cam (B,h,w); w is (B,K) in double. */
void cvis__cam_combine(const cvis_tensor *A, const double *w, float *cam);

/* --------------------------------------------- input-space methods */

/* (B,H,W), or (B,H,W,C) with keepdims. */
cvis_status cvis__input_output_shape(cvis__explain_ctx *c, const cvis__shape *x, cvis__shape *out);
/* The method's attribute(), through the noise tunnel when it is on, then
 * the channel reduction (unless keepdims) and normalization. */
cvis_status cvis__input_run(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                            const cvis_score *const *scores, float *out);
/* One (H,W) map per pixel from (n_pix, C) values, per cvis_reduce. */
void cvis__reduce_channels(const float *raw, int64_t n_pix, int64_t C, int reduce, float *out);
/* Per-pixel maps (B,H,W) of the perturbation methods: normalized per the
 * options. */
cvis_status cvis__pixel_output_shape(cvis__explain_ctx *c, const cvis__shape *x, cvis__shape *out);

/* ---------------------------------------------------- baselines */

/* Gaussian blur of one (H,W,C) image: a separable kernel of radius
 * ceil(3 sigma), normalized, edges reflected (half-sample symmetric).
 * tmp holds H*W*C floats. */
void cvis__gaussian_blur(const float *img, int64_t H, int64_t W, int64_t C, double sigma,
                         float *out, float *tmp);
/* The baseline image of each image of x (B,H,W,C) into out: ZERO, BLUR,
 * UNIFORM (from rng), MEAN, or TENSOR (t: (1,H,W,C) or (B,H,W,C)). */
cvis_status cvis__make_baseline(int kind, const cvis_tensor *x, double sigma, const cvis_tensor *t,
                                cvis__rng *rng, float *out);

#endif
