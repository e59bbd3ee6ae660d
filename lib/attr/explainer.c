/* The explainer: one method, one model, options by key.  Adding a method is
 * one file in lib/attr, one value of cvis_method and one row of the table
 * below. */
#include <math.h>
#include <string.h>

#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"
#include "model/pass.h"

static const struct {
    cvis_method id;
    const char *name;
    const cvis__method *impl;
} methods[] = {
    {CVIS_METHOD_SALIENCY, "saliency", &cvis__method_saliency},
    {CVIS_METHOD_SMOOTHGRAD, "smoothgrad", &cvis__method_saliency},
    {CVIS_METHOD_GRADCAM, "gradcam", &cvis__method_gradcam},
    {CVIS_METHOD_GRADCAM_PLUS_PLUS, "gradcam++", &cvis__method_gradcam_pp},
    {CVIS_METHOD_SCORECAM, "scorecam", &cvis__method_scorecam},
    {CVIS_METHOD_FASTER_SCORECAM, "faster-scorecam", &cvis__method_scorecam},
    {CVIS_METHOD_LAYERCAM, "layercam", &cvis__method_layercam},
    {CVIS_METHOD_ACTIVATION_MAXIMIZATION, "activation-maximization", &cvis__method_actmax},
    {CVIS_METHOD_INTEGRATED_GRADIENTS, "integrated-gradients", &cvis__method_intgrad},
    {CVIS_METHOD_INPUT_X_GRADIENT, "input-x-gradient", &cvis__method_input_x_gradient},
    {CVIS_METHOD_GUIDED_BACKPROP, "guided-backprop", &cvis__method_guided_backprop},
    {CVIS_METHOD_DECONVNET, "deconvnet", &cvis__method_deconvnet},
    {CVIS_METHOD_GUIDED_GRADCAM, "guided-gradcam", &cvis__method_guided_gradcam},
    {CVIS_METHOD_XGRADCAM, "xgradcam", &cvis__method_xgradcam},
    {CVIS_METHOD_HIRESCAM, "hirescam", &cvis__method_hirescam},
    {CVIS_METHOD_EIGENCAM, "eigencam", &cvis__method_eigencam},
    {CVIS_METHOD_ABLATIONCAM, "ablationcam", &cvis__method_ablationcam},
    {CVIS_METHOD_OCCLUSION, "occlusion", &cvis__method_occlusion},
    {CVIS_METHOD_RISE, "rise", &cvis__method_rise},
};
#define N_METHODS ((int)(sizeof methods / sizeof methods[0]))

struct cvis_explainer {
    cvis__explain_ctx c;
    const cvis__method *impl;
};

static int method_row(cvis_method m)
{
    for (int i = 0; i < N_METHODS; i++)
        if (methods[i].id == m)
            return i;
    return -1;
}

CVIS_API const char *cvis_method_name(cvis_method method)
{
    int i = method_row(method);
    return i < 0 ? NULL : methods[i].name;
}

CVIS_API cvis_status cvis_method_from_name(const char *name, cvis_method *out)
{
    CVIS_CHECK_ARG(name && out, "name or out is NULL");
    for (int i = 0; i < N_METHODS; i++)
        if (!strcmp(methods[i].name, name)) {
            *out = methods[i].id;
            return CVIS_OK;
        }
    return cvis__fail(CVIS_E_NOT_FOUND, "no method called \"%s\"", name);
}

/* The reference toolkit's defaults (SEMANTICS.md), except logits mode on. */
static void default_options(cvis__explain_opts *o, cvis_method m)
{
    memset(o, 0, sizeof *o);
    o->logits = 1;
    o->layer = -1;
    o->seek = 1;
    o->normalize = 1;
    o->expand = 1;
    o->smooth_samples = m == CVIS_METHOD_SMOOTHGRAD ? 20 : 0;
    o->smooth_noise = 0.2;
    o->max_n = -1;
    o->batch_size = 32;
    o->steps = 200;
    o->input_min = 0;
    o->input_max = 255;
    o->jitter = 4;
    o->rotate = 1;
    o->scale_min = o->scale_max = 1;
    o->tv_weight = 1.0;
    o->norm_weight = 0.3;
    o->norm_p = 1;
    o->optimizer = CVIS_OPTIMIZER_RMSPROP;
    o->learning_rate = 1.0;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->batch = 1;
    o->reduce = CVIS_REDUCE_SUM;
    o->ig_steps = 50;
    o->ig_rule = CVIS_IG_GAUSS_LEGENDRE;
    o->baseline = CVIS_BASELINE_ZERO;
    o->blur_sigma = 5.0;
    o->nt_type = CVIS_NT_NONE;
    o->nt_samples = 5;
    o->nt_stdev = 1.0;
    o->window = o->stride = 0;
    o->baseline_value = 0;
    o->rise_masks = 1000;
    o->rise_p = 0.5;
    o->rise_cell = 0;
}

CVIS_API cvis_status cvis_explainer_new(const cvis_model *m, cvis_method method,
                                        cvis_explainer **out)
{
    CVIS_CHECK_ARG(m && out, "model or out is NULL");
    int row = method_row(method);
    if (row < 0)
        return cvis__fail(CVIS_E_INVALID_ARG, "unknown method %d", (int)method);
    if (m->n_out < 1)
        return cvis__fail(CVIS_E_STATE, "the model has no layers");
    cvis_explainer *e = cvis__calloc(1, sizeof *e);
    if (!e)
        return cvis__fail(CVIS_E_NOMEM, "out of memory for an explainer");
    e->impl = methods[row].impl;
    e->c.impl = e->impl;
    e->c.model = e->c.target = m;
    e->c.method = method;
    e->c.layer = -1;
    default_options(&e->c.o, method);
    *out = e;
    return CVIS_OK;
}

CVIS_API void cvis_explainer_free(cvis_explainer *e)
{
    if (!e)
        return;
    cvis__pass_free(e->c.pass);
    cvis__pass_free(e->c.aux);
    for (int k = 0; k < 16; k++)
        cvis_tensor_free(e->c.seeds[k]);
    cvis_model_free(e->c.submodel);
    cvis__free(e->c.o.layer_name);
    cvis__free(e->c.o.output_layer_name);
    cvis_tensor_free(e->c.o.baseline_tensor);
    cvis__free(e->c.info_buf);
    cvis__free(e);
}

static cvis_status check_int_range(cvis_option key, int64_t v, int64_t lo, int64_t hi)
{
    if (v < lo || v > hi)
        return cvis__fail(CVIS_E_INVALID_ARG, "option %d: %lld outside [%lld, %lld]", (int)key,
                          (long long)v, (long long)lo, (long long)hi);
    return CVIS_OK;
}

CVIS_API cvis_status cvis_explainer_set_int(cvis_explainer *e, cvis_option key, int64_t v)
{
    CVIS_CHECK_ARG(e, "explainer is NULL");
    cvis__explain_opts *o = &e->c.o;
    switch (key) {
    case CVIS_OPT_LOGITS: o->logits = v != 0; return CVIS_OK;
    case CVIS_OPT_SEEK: o->seek = v != 0; return CVIS_OK;
    case CVIS_OPT_NORMALIZE: o->normalize = v != 0; return CVIS_OK;
    case CVIS_OPT_EXPAND: o->expand = v != 0; return CVIS_OK;
    case CVIS_OPT_KEEPDIMS: o->keepdims = v != 0; return CVIS_OK;
    case CVIS_OPT_SEED: o->seed = (uint64_t)v; return CVIS_OK;
    case CVIS_OPT_LAYER:
        CVIS_TRY(check_int_range(key, v, -(1 << 24), 1 << 24));
        o->layer = (int)v;
        cvis__free(o->layer_name);
        o->layer_name = NULL;
        return CVIS_OK;
    case CVIS_OPT_OUTPUT_LAYER:
        CVIS_TRY(check_int_range(key, v, -(1 << 24), 1 << 24));
        o->output_layer = (int)v;
        o->output_layer_set = 1;
        cvis__free(o->output_layer_name);
        o->output_layer_name = NULL;
        return CVIS_OK;
    case CVIS_OPT_SMOOTH_SAMPLES:
        CVIS_TRY(check_int_range(key, v, 0, 1 << 20));
        o->smooth_samples = (int)v;
        return CVIS_OK;
    case CVIS_OPT_MAX_N:
        CVIS_TRY(check_int_range(key, v, -(1 << 30), 1 << 30));
        o->max_n = (int)v;
        o->max_n_set = 1;
        return CVIS_OK;
    case CVIS_OPT_BATCH_SIZE:
        CVIS_TRY(check_int_range(key, v, 1, 1 << 16));
        o->batch_size = (int)v;
        return CVIS_OK;
    case CVIS_OPT_STEPS:
        CVIS_TRY(check_int_range(key, v, 1, 1 << 24));
        o->steps = (int)v;
        return CVIS_OK;
    case CVIS_OPT_JITTER:
        CVIS_TRY(check_int_range(key, v, 0, 1 << 16));
        o->jitter = (int)v;
        return CVIS_OK;
    case CVIS_OPT_BATCH:
        CVIS_TRY(check_int_range(key, v, 1, 1 << 16));
        o->batch = (int)v;
        return CVIS_OK;
    case CVIS_OPT_OPTIMIZER:
        if (v != CVIS_OPTIMIZER_SGD && v != CVIS_OPTIMIZER_RMSPROP && v != CVIS_OPTIMIZER_ADAM)
            return cvis__fail(CVIS_E_INVALID_ARG, "unknown optimizer %lld", (long long)v);
        o->optimizer = (int)v;
        return CVIS_OK;
    case CVIS_OPT_REDUCE:
        CVIS_TRY(check_int_range(key, v, CVIS_REDUCE_SUM, CVIS_REDUCE_MAX_ABS));
        o->reduce = (int)v;
        o->reduce_set = 1;
        return CVIS_OK;
    case CVIS_OPT_IG_STEPS:
        CVIS_TRY(check_int_range(key, v, 1, 1 << 16));
        o->ig_steps = (int)v;
        return CVIS_OK;
    case CVIS_OPT_IG_RULE:
        CVIS_TRY(check_int_range(key, v, CVIS_IG_GAUSS_LEGENDRE, CVIS_IG_RIEMANN_TRAPEZOID));
        o->ig_rule = (int)v;
        return CVIS_OK;
    case CVIS_OPT_BASELINE:
        CVIS_TRY(check_int_range(key, v, CVIS_BASELINE_ZERO, CVIS_BASELINE_TENSOR));
        o->baseline = (int)v;
        return CVIS_OK;
    case CVIS_OPT_NT_TYPE:
        CVIS_TRY(check_int_range(key, v, CVIS_NT_NONE, CVIS_NT_VARGRAD));
        o->nt_type = (int)v;
        return CVIS_OK;
    case CVIS_OPT_NT_SAMPLES:
        CVIS_TRY(check_int_range(key, v, 1, 1 << 20));
        o->nt_samples = (int)v;
        return CVIS_OK;
    case CVIS_OPT_WINDOW:
    case CVIS_OPT_STRIDE:
    case CVIS_OPT_RISE_CELL:
        CVIS_TRY(check_int_range(key, v, 0, 1 << 20));
        if (key == CVIS_OPT_WINDOW)
            o->window = (int)v;
        else if (key == CVIS_OPT_STRIDE)
            o->stride = (int)v;
        else
            o->rise_cell = (int)v;
        return CVIS_OK;
    case CVIS_OPT_RISE_MASKS:
        CVIS_TRY(check_int_range(key, v, 1, 1 << 24));
        o->rise_masks = (int)v;
        return CVIS_OK;
    default:
        return cvis__fail(CVIS_E_INVALID_ARG, "option %d is not an integer option", (int)key);
    }
}

CVIS_API cvis_status cvis_explainer_set_float(cvis_explainer *e, cvis_option key, double v)
{
    CVIS_CHECK_ARG(e, "explainer is NULL");
    if (!isfinite(v))
        return cvis__fail(CVIS_E_INVALID_ARG, "option %d must be finite", (int)key);
    cvis__explain_opts *o = &e->c.o;
    switch (key) {
    case CVIS_OPT_SMOOTH_NOISE:
        if (v < 0)
            return cvis__fail(CVIS_E_INVALID_ARG, "smooth noise must not be negative");
        o->smooth_noise = v;
        return CVIS_OK;
    case CVIS_OPT_INPUT_MIN: o->input_min = v; return CVIS_OK;
    case CVIS_OPT_INPUT_MAX: o->input_max = v; return CVIS_OK;
    case CVIS_OPT_ROTATE: o->rotate = fabs(v); return CVIS_OK;
    case CVIS_OPT_SCALE_MIN: o->scale_min = v; return CVIS_OK;
    case CVIS_OPT_SCALE_MAX: o->scale_max = v; return CVIS_OK;
    case CVIS_OPT_TV_WEIGHT: o->tv_weight = v; return CVIS_OK;
    case CVIS_OPT_NORM_WEIGHT: o->norm_weight = v; return CVIS_OK;
    case CVIS_OPT_NORM_P: o->norm_p = v; return CVIS_OK;
    case CVIS_OPT_LEARNING_RATE:
        if (!(v > 0))
            return cvis__fail(CVIS_E_INVALID_ARG, "learning rate must be positive");
        o->learning_rate = v;
        return CVIS_OK;
    case CVIS_OPT_BETA_1:
    case CVIS_OPT_BETA_2:
        if (v < 0 || v >= 1)
            return cvis__fail(CVIS_E_INVALID_ARG, "beta must lie in [0, 1)");
        if (key == CVIS_OPT_BETA_1)
            o->beta1 = v;
        else
            o->beta2 = v;
        return CVIS_OK;
    case CVIS_OPT_BLUR_SIGMA:
        if (!(v > 0))
            return cvis__fail(CVIS_E_INVALID_ARG, "the blur's sigma must be positive");
        o->blur_sigma = v;
        return CVIS_OK;
    case CVIS_OPT_NT_STDEV:
        if (v < 0)
            return cvis__fail(CVIS_E_INVALID_ARG, "the noise tunnel's stdev must not be negative");
        o->nt_stdev = v;
        return CVIS_OK;
    case CVIS_OPT_BASELINE_VALUE: o->baseline_value = v; return CVIS_OK;
    case CVIS_OPT_RISE_PROBABILITY:
        if (!(v > 0 && v <= 1))
            return cvis__fail(CVIS_E_INVALID_ARG, "RISE's keep probability must lie in (0, 1]");
        o->rise_p = v;
        return CVIS_OK;
    default:
        /* integer options may be given as floats too */
        if (v == floor(v) && fabs(v) < 9e15)
            return cvis_explainer_set_int(e, key, (int64_t)v);
        return cvis__fail(CVIS_E_INVALID_ARG, "option %d is not a number option", (int)key);
    }
}

CVIS_API cvis_status cvis_explainer_set_string(cvis_explainer *e, cvis_option key, const char *v)
{
    CVIS_CHECK_ARG(e && v, "explainer or value is NULL");
    char **slot;
    if (key == CVIS_OPT_LAYER_NAME)
        slot = &e->c.o.layer_name;
    else if (key == CVIS_OPT_OUTPUT_LAYER_NAME)
        slot = &e->c.o.output_layer_name;
    else
        return cvis__fail(CVIS_E_INVALID_ARG, "option %d is not a string option", (int)key);
    int l;
    CVIS_TRY(cvis_model_find_layer(e->c.model, v, &l));
    char *copy = cvis__strdup(v);
    if (!copy)
        return cvis__fail(CVIS_E_NOMEM, "out of memory for an option");
    cvis__free(*slot);
    *slot = copy;
    if (key == CVIS_OPT_OUTPUT_LAYER_NAME)
        e->c.o.output_layer_set = 1;
    return CVIS_OK;
}

CVIS_API cvis_status cvis_explainer_set_tensor(cvis_explainer *e, cvis_option key,
                                               const cvis_tensor *value)
{
    CVIS_CHECK_ARG(e, "explainer is NULL");
    if (key != CVIS_OPT_BASELINE_TENSOR)
        return cvis__fail(CVIS_E_INVALID_ARG, "option %d is not a tensor option", (int)key);
    cvis_tensor *copy = NULL;
    if (value) {
        if (value->ndim != 4 || value->shape[0] < 1)
            return cvis__fail(CVIS_E_SHAPE, "a baseline is a (1,H,W,C) or (B,H,W,C) tensor");
        CVIS_TRY(cvis__check_finite(value->data, value->size, "the baseline"));
        CVIS_TRY(cvis_tensor_clone(value, &copy));
    }
    cvis_tensor_free(e->c.o.baseline_tensor);
    e->c.o.baseline_tensor = copy;
    if (copy)
        e->c.o.baseline = CVIS_BASELINE_TENSOR;
    else if (e->c.o.baseline == CVIS_BASELINE_TENSOR)
        e->c.o.baseline = CVIS_BASELINE_ZERO;
    return CVIS_OK;
}

CVIS_API cvis_status cvis_explainer_get_info(const cvis_explainer *e, cvis_info key, int64_t n,
                                             double *values)
{
    CVIS_CHECK_ARG(e && values, "explainer or values is NULL");
    if ((int)key < 0 || (int)key >= CVIS__N_INFO)
        return cvis__fail(CVIS_E_INVALID_ARG, "unknown info key %d", (int)key);
    if (!e->c.info_valid[key])
        return cvis__fail(CVIS_E_STATE, "the last run did not compute info %d", (int)key);
    if (n != e->c.info_n)
        return cvis__fail(CVIS_E_SHAPE, "the last run had %lld images, not %lld",
                          (long long)e->c.info_n, (long long)n);
    memcpy(values, e->c.info_buf + (int64_t)key * e->c.info_cap, (size_t)n * sizeof(double));
    return CVIS_OK;
}

CVIS_API cvis_status cvis_explainer_set_progress(cvis_explainer *e, cvis_progress_fn fn, void *user)
{
    CVIS_CHECK_ARG(e, "explainer is NULL");
    e->c.o.progress = fn;
    e->c.o.progress_user = user;
    return CVIS_OK;
}

/* The input shape of a run: x's, or for activation maximization without a
 * seed, the model's input with the batch option. */
static cvis_status run_input_shape(cvis_explainer *e, const cvis_tensor *x, cvis__shape *s)
{
    if (x) {
        CVIS_TRY(cvis__check_input_shape(e->c.model, x));
        *s = cvis__tensor_get_shape(x);
        return CVIS_OK;
    }
    if (e->c.method != CVIS_METHOD_ACTIVATION_MAXIMIZATION)
        return cvis__fail(CVIS_E_INVALID_ARG, "the input is NULL");
    int64_t hwc[3];
    cvis_model_input_shape(e->c.model, hwc);
    if (hwc[0] < 1 || hwc[1] < 1 || hwc[2] < 1)
        return cvis__fail(CVIS_E_INVALID_ARG,
                          "the model's input size is free: give a seed image to set it");
    s->ndim = 4;
    s->d[0] = e->c.o.batch;
    s->d[1] = hwc[0];
    s->d[2] = hwc[1];
    s->d[3] = hwc[2];
    return CVIS_OK;
}

CVIS_API cvis_status cvis_explainer_output_shape(cvis_explainer *e, const cvis_tensor *x, int *ndim,
                                                 int64_t *shape)
{
    CVIS_CHECK_ARG(e && ndim && shape, "explainer, ndim or shape is NULL");
    cvis__shape xs, os;
    CVIS_TRY(run_input_shape(e, x, &xs));
    CVIS_TRY(cvis__explain_target(&e->c));
    memset(&os, 0, sizeof os);
    CVIS_TRY(e->impl->output_shape(&e->c, &xs, &os));
    *ndim = os.ndim;
    for (int i = 0; i < os.ndim; i++)
        shape[i] = os.d[i];
    return CVIS_OK;
}

CVIS_API cvis_status cvis_explainer_run(cvis_explainer *e, const cvis_tensor *x, int n_scores,
                                        const cvis_score *const *scores, cvis_tensor *out)
{
    CVIS_CHECK_ARG(e && out, "explainer or out is NULL");
    cvis__info_clear(&e->c);
    cvis__shape xs, os;
    CVIS_TRY(run_input_shape(e, x, &xs));
    if (x)
        CVIS_TRY(cvis__check_finite(x->data, x->size, "the input"));
    CVIS_TRY(cvis__explain_prepare(&e->c, x, n_scores, scores));
    if (e->c.o.nt_type != CVIS_NT_NONE && !e->impl->attribute)
        return cvis__fail(CVIS_E_INVALID_ARG,
                          "the noise tunnel works over saliency, Integrated Gradients, Input x "
                          "Gradient, guided backprop, deconvnet and Guided Grad-CAM, not %s",
                          cvis_method_name(e->c.method));
    memset(&os, 0, sizeof os);
    CVIS_TRY(e->impl->output_shape(&e->c, &xs, &os));
    cvis__shape have = cvis__tensor_get_shape(out);
    if (!cvis__shape_equal(&have, &os)) {
        char a[96], b[96];
        return cvis__fail(CVIS_E_SHAPE, "the output tensor is %s; this run writes %s",
                          cvis__shape_str(&have, a, sizeof a), cvis__shape_str(&os, b, sizeof b));
    }
    /* activation maximization without a seed starts from uniform noise */
    cvis_tensor *start = NULL;
    if (!x) {
        CVIS_TRY(cvis__tensor_new_shape(&xs, 0, &start));
        cvis__rng rng;
        cvis__rng_seed(&rng, e->c.o.seed);
        double lo = e->c.o.input_min, hi = e->c.o.input_max;
        for (int64_t i = 0; i < start->size; i++)
            start->data[i] = (float)(lo + (hi - lo) * cvis__rng_uniform(&rng));
        x = start;
    }
    /* compute into a private buffer: on failure the caller's stays untouched */
    float *maps;
    cvis_status st = cvis__alloc((size_t)out->size * sizeof(float), "maps", (void **)&maps);
    if (st == CVIS_OK) {
        e->c.layer = -1;
        st = e->impl->run(&e->c, x, n_scores, scores, maps);
        if (st == CVIS_OK)
            st = cvis__check_finite(maps, out->size, "the computed maps");
        if (st != CVIS_OK)
            cvis__info_clear(&e->c);
        if (st == CVIS_OK)
            memcpy(out->data, maps, (size_t)out->size * sizeof(float));
        cvis__free(maps);
    }
    cvis_tensor_free(start);
    return st;
}

CVIS_API int cvis_explainer_layer(const cvis_explainer *e)
{
    return e ? e->c.layer : -1;
}

CVIS_API cvis_status cvis_explain(const cvis_model *m, cvis_method method, const cvis_tensor *x,
                                  const cvis_score *score, cvis_tensor **out)
{
    CVIS_CHECK_ARG(m && score && out, "model, score or out is NULL");
    cvis_explainer *e;
    CVIS_TRY(cvis_explainer_new(m, method, &e));
    int ndim;
    int64_t shape[CVIS_MAX_DIMS];
    cvis_tensor *t = NULL;
    cvis_status st = cvis_explainer_output_shape(e, x, &ndim, shape);
    if (st == CVIS_OK)
        st = cvis__tensor_new(ndim, shape, 0, &t);
    if (st == CVIS_OK)
        st = cvis_explainer_run(e, x, 1, &score, t);
    cvis_explainer_free(e);
    if (st != CVIS_OK) {
        cvis_tensor_free(t);
        return st;
    }
    *out = t;
    return CVIS_OK;
}
