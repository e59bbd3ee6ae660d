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
} cvis__method;

/* The methods, one file each. */
extern const cvis__method cvis__method_saliency;
extern const cvis__method cvis__method_gradcam;
extern const cvis__method cvis__method_gradcam_pp;
extern const cvis__method cvis__method_scorecam;
extern const cvis__method cvis__method_layercam;
extern const cvis__method cvis__method_actmax;

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
/* A pass over the target model with the call's logits option. */
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

#endif
