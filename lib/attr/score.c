/* Scores: categorical, binary, inactive and custom. */
#include <string.h>

#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"

typedef enum score_kind { SCORE_CATEGORICAL, SCORE_BINARY, SCORE_INACTIVE, SCORE_CUSTOM } score_kind;

struct cvis_score {
    score_kind kind;
    int n;
    int *values;  /* indices or targets */
    cvis_score_fn fn;
    void *user;
};

static cvis_status score_new(score_kind kind, int n, const int *values, cvis_score **out)
{
    cvis_score *s = cvis__calloc(1, sizeof *s);
    if (!s)
        return cvis__fail(CVIS_E_NOMEM, "out of memory for a score");
    s->kind = kind;
    s->n = n;
    if (n > 0) {
        s->values = cvis__malloc((size_t)n * sizeof(int));
        if (!s->values) {
            cvis__free(s);
            return cvis__fail(CVIS_E_NOMEM, "out of memory for a score");
        }
        memcpy(s->values, values, (size_t)n * sizeof(int));
    }
    *out = s;
    return CVIS_OK;
}

CVIS_API cvis_status cvis_score_categorical(int n, const int *indices, cvis_score **out)
{
    CVIS_CHECK_ARG(out, "out is NULL");
    if (n < 1 || !indices)
        return cvis__fail(CVIS_E_INVALID_ARG, "a categorical score needs at least one index");
    for (int i = 0; i < n; i++)
        if (indices[i] < 0)
            return cvis__fail(CVIS_E_RANGE, "class index %d is negative", indices[i]);
    return score_new(SCORE_CATEGORICAL, n, indices, out);
}

CVIS_API cvis_status cvis_score_binary(int n, const int *targets, cvis_score **out)
{
    CVIS_CHECK_ARG(out, "out is NULL");
    if (n < 1 || !targets)
        return cvis__fail(CVIS_E_INVALID_ARG, "a binary score needs at least one target");
    for (int i = 0; i < n; i++)
        if (targets[i] != 0 && targets[i] != 1)
            return cvis__fail(CVIS_E_INVALID_ARG, "binary targets must be 0 or 1, not %d", targets[i]);
    return score_new(SCORE_BINARY, n, targets, out);
}

CVIS_API cvis_status cvis_score_inactive(cvis_score **out)
{
    CVIS_CHECK_ARG(out, "out is NULL");
    return score_new(SCORE_INACTIVE, 0, NULL, out);
}

CVIS_API cvis_status cvis_score_custom(cvis_score_fn fn, void *user, cvis_score **out)
{
    CVIS_CHECK_ARG(out && fn, "out or fn is NULL");
    CVIS_TRY(score_new(SCORE_CUSTOM, 0, NULL, out));
    (*out)->fn = fn;
    (*out)->user = user;
    return CVIS_OK;
}

CVIS_API void cvis_score_free(cvis_score *s)
{
    if (!s)
        return;
    cvis__free(s->values);
    cvis__free(s);
}

cvis_status cvis__score_check(const cvis_score *s, int64_t n_images)
{
    if (!s)
        return cvis__fail(CVIS_E_INVALID_ARG, "a score is NULL");
    if ((s->kind == SCORE_CATEGORICAL || s->kind == SCORE_BINARY) && s->n != 1 && s->n != n_images)
        return cvis__fail(CVIS_E_SHAPE, "the score has %d %s for a batch of %lld images", s->n,
                          s->kind == SCORE_CATEGORICAL ? "indices" : "targets", (long long)n_images);
    return CVIS_OK;
}

cvis_status cvis__score_eval(const cvis_score *s, const cvis_tensor *output, const int *image_of,
                             int64_t n_images, float *scores, float *grad)
{
    int64_t rows = output->ndim ? output->shape[0] : 0;
    if (rows < 1)
        return cvis__fail(CVIS_E_SHAPE, "a score needs an output with a batch axis");
    int64_t per = output->size / rows;
    if (grad)
        memset(grad, 0, (size_t)output->size * sizeof(float));
    switch (s->kind) {
    case SCORE_INACTIVE:
        for (int64_t r = 0; r < rows; r++)
            scores[r] = 0;
        return CVIS_OK;
    case SCORE_CATEGORICAL: {
        int64_t K = output->shape[output->ndim - 1];
        if (output->ndim < 2)
            return cvis__fail(CVIS_E_SHAPE, "a categorical score needs a (B, ..., classes) output");
        int64_t cells = per / K;
        for (int64_t r = 0; r < rows; r++) {
            int64_t img = image_of ? image_of[r] : r;
            int idx = s->values[s->n == 1 ? 0 : img];
            if (idx >= K)
                return cvis__fail(CVIS_E_RANGE, "class index %d out of range: the output has %lld",
                                  idx, (long long)K);
            const float *o = output->data + r * per;
            double sum = 0;
            for (int64_t c = 0; c < cells; c++)
                sum += o[c * K + idx];
            scores[r] = (float)(sum / (double)cells);
            if (grad)
                for (int64_t c = 0; c < cells; c++)
                    grad[r * per + c * K + idx] = (float)(1.0 / (double)cells);
        }
        (void)n_images;
        return CVIS_OK;
    }
    case SCORE_BINARY:
        if (per != 1)
            return cvis__fail(CVIS_E_SHAPE, "a binary score needs a (B, 1) output, not %lld values per image",
                              (long long)per);
        for (int64_t r = 0; r < rows; r++) {
            int64_t img = image_of ? image_of[r] : r;
            float sign = s->values[s->n == 1 ? 0 : img] ? 1.0f : -1.0f;
            scores[r] = sign * output->data[r];
            if (grad)
                grad[r] = sign;
        }
        return CVIS_OK;
    case SCORE_CUSTOM: {
        cvis_tensor g;
        float *tmp = NULL;
        if (!grad) {
            CVIS_TRY(cvis__alloc_zero((size_t)output->size * sizeof(float), "score gradient",
                                      (void **)&tmp));
        }
        cvis__tensor_view(&g, grad ? grad : tmp, output->ndim, output->shape);
        int rc = s->fn(s->user, output, scores, &g);
        cvis__free(tmp);
        if (rc != 0)
            return cvis__fail(CVIS_E_CALLBACK, "the custom score returned %d", rc);
        CVIS_TRY(cvis__check_finite(scores, rows, "the custom score's values"));
        if (grad)
            CVIS_TRY(cvis__check_finite(grad, output->size, "the custom score's gradient"));
        return CVIS_OK;
    }
    }
    return cvis__fail(CVIS_E_INTERNAL, "unknown score kind");
}

CVIS_API cvis_status cvis_score_eval(const cvis_score *s, const cvis_tensor *output, float *scores,
                                     cvis_tensor *d_output)
{
    CVIS_CHECK_ARG(s && output && scores, "score, output or scores is NULL");
    if (d_output && (d_output->size != output->size))
        return cvis__fail(CVIS_E_SHAPE, "d_output must have the output's shape");
    int64_t rows = output->ndim ? output->shape[0] : 0;
    CVIS_TRY(cvis__score_check(s, rows));
    return cvis__score_eval(s, output, NULL, rows, scores, d_output ? d_output->data : NULL);
}
