/* Shared pieces of the measures of faithfulness (metrics*.c): argument
 * checks and the confidence of a batch of images. */
#ifndef CVIS_ATTR_METRICS_H
#define CVIS_ATTR_METRICS_H

#include "attr.h"

/* A pass over the model with the output layer's activation dropped, and a
 * buffer for the softmax of its output. */
typedef struct cvis__confidence {
    cvis_pass *pass;
    cvis_tensor *soft;
} cvis__confidence;

/* Checks the model (one output), x, the score against x's batch and the
 * maps (B,H,W) against x. */
cvis_status cvis__metric_check(const cvis_model *m, const cvis_tensor *x, const cvis_score *score,
                               const cvis_tensor *maps);
cvis_status cvis__confidence_new(const cvis_model *m, cvis__confidence *cf);
void cvis__confidence_free(cvis__confidence *cf);
/* out[r] = the score on softmax(logits) of row r of `rows`, whose image
 * in the batch of n_images is image_of[r] (NULL: row = image). */
cvis_status cvis__confidence_eval(cvis__confidence *cf, const cvis_tensor *rows, const int *image_of,
                                  int64_t n_images, const cvis_score *score, float *out);

#endif
