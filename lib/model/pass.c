/* Forward and backward passes of a model over the tape, and prediction. */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/tape.h"
#include "model.h"
#include "pass.h"

struct cvis_pass {
    const cvis_model *m;
    cvis__tape *tape;
    int logits, weight_grads, input_grad, drop_layer, grad_layer;
    cvis__relu_mode relu_mode;
    int n_layers;
    int *slot;          /* per layer: its slot in the last forward, or -1 */
    unsigned char *needed;
    int in_slot;
    int forwarded;      /* a forward has run since the last change */
    unsigned version;   /* the model's version at that forward */
    int backwarded;
    int lean;           /* forward-only: values freed once read (cvis__pass_set_lean) */
    int lean_run;       /* the last forward was lean */
    int *last_use;      /* lean: per layer, the last needed layer reading it */
    cvis_tensor *wviews;   /* weight-gradient views, per layer and weight */
    int *wview_base;       /* index of a layer's first view */
    int edit_layer;        /* cvis__pass_set_edit */
    cvis__pass_edit_fn edit;
    void *edit_ctx;
};

cvis_status cvis__pass_new(const cvis_model *m, cvis_pass **out)
{
    cvis_pass *p = cvis__calloc(1, sizeof *p);
    if (!p)
        return cvis__fail(CVIS_E_NOMEM, "out of memory for a pass");
    int n = m->g->n_layers, nw = 0;
    for (int i = 0; i < n; i++)
        nw += m->g->layers[i].n_w;
    p->m = m;
    p->n_layers = n;
    p->input_grad = 1;
    p->drop_layer = -1;
    p->grad_layer = -1;
    p->edit_layer = -1;
    p->slot = cvis__calloc((size_t)n + 1, sizeof *p->slot);
    p->needed = cvis__calloc((size_t)n + 1, 1);
    p->last_use = cvis__calloc((size_t)n + 1, sizeof *p->last_use);
    p->wviews = cvis__calloc((size_t)nw + 1, sizeof *p->wviews);
    p->wview_base = cvis__calloc((size_t)n + 1, sizeof *p->wview_base);
    cvis_status st = CVIS_OK;
    if (!p->slot || !p->needed || !p->last_use || !p->wviews || !p->wview_base)
        st = cvis__fail(CVIS_E_NOMEM, "out of memory for a pass");
    else
        st = cvis__tape_new(&p->tape);
    if (st != CVIS_OK) {
        cvis__pass_free(p);
        return st;
    }
    for (int i = 0, base = 0; i < n; i++) {
        p->wview_base[i] = base;
        base += m->g->layers[i].n_w;
    }
    *out = p;
    return CVIS_OK;
}

void cvis__pass_free(cvis_pass *p)
{
    if (!p)
        return;
    cvis__tape_free(p->tape);
    cvis__free(p->slot);
    cvis__free(p->needed);
    cvis__free(p->last_use);
    cvis__free(p->wviews);
    cvis__free(p->wview_base);
    cvis__free(p);
}

void cvis__pass_set_edit(cvis_pass *p, int layer, cvis__pass_edit_fn fn, void *ctx)
{
    p->edit_layer = fn ? layer : -1;
    p->edit = fn;
    p->edit_ctx = ctx;
    p->forwarded = 0;
}

void cvis__pass_set_relu_mode(cvis_pass *p, cvis__relu_mode mode)
{
    p->relu_mode = mode;
}

cvis_status cvis__pass_set(cvis_pass *p, cvis_pass_option key, int64_t value)
{
    switch (key) {
    case CVIS_PASS_LOGITS: p->logits = value != 0; break;
    case CVIS_PASS_WEIGHT_GRADS: p->weight_grads = value != 0; break;
    case CVIS_PASS_FORWARD_ONLY: p->lean = value != 0; break;
    case CVIS_PASS_INPUT_GRAD: p->input_grad = value != 0; break;
    case CVIS_PASS_DROP_ACTIVATION:
    case CVIS_PASS_GRAD_LAYER: {
        int l = (int)value;
        if (value < -1 || value >= p->n_layers)
            return cvis__fail(CVIS_E_RANGE, "layer %lld out of range (the model has %d layers)",
                              (long long)value, p->n_layers);
        if (key == CVIS_PASS_DROP_ACTIVATION)
            p->drop_layer = l;
        else
            p->grad_layer = l;
        break;
    }
    default:
        return cvis__fail(CVIS_E_INVALID_ARG, "unknown pass option %d", (int)key);
    }
    p->forwarded = 0;
    return CVIS_OK;
}

/* Marks the layers that the outputs depend on. */
static void mark_needed(cvis_pass *p)
{
    const cvis__graph *g = p->m->g;
    memset(p->needed, 0, (size_t)p->n_layers);
    for (int k = 0; k < p->m->n_out; k++)
        p->needed[p->m->out[k]] = 1;
    for (int i = p->n_layers - 1; i >= 0; i--) {
        if (!p->needed[i])
            continue;
        for (int k = 0; k < g->layers[i].n_in; k++)
            if (g->layers[i].in[k] >= 0)
                p->needed[g->layers[i].in[k]] = 1;
    }
}

/* Logits mode drops the activation of output layers that no other needed
 * layer reads: an output that also feeds another output keeps it, so that
 * every output is what the model computes with only the heads changed. */
static int drops_activation(const cvis_pass *p, int layer)
{
    const cvis__graph *g = p->m->g;
    int is_out = 0;
    for (int k = 0; k < p->m->n_out; k++)
        is_out |= p->m->out[k] == layer;
    if (!is_out)
        return 0;
    for (int i = layer + 1; i < p->n_layers; i++) {
        if (!p->needed[i])
            continue;
        for (int k = 0; k < g->layers[i].n_in; k++)
            if (g->layers[i].in[k] == layer)
                return 0;
    }
    return 1;
}

cvis_status cvis__check_input_shape(const cvis_model *m, const cvis_tensor *x)
{
    if (x->ndim != 4 || x->shape[0] < 1)
        return cvis__fail(CVIS_E_SHAPE, "the input must be a (B,H,W,C) batch with B >= 1, not rank %d",
                          x->ndim);
    for (int i = 0; i < 3; i++) {
        int64_t want = m->g->in_shape[i];
        if (x->shape[i + 1] < 1 || (want >= 0 && x->shape[i + 1] != want))
            return cvis__fail(CVIS_E_SHAPE,
                              "the input is %lldx%lldx%lld, the model takes %lldx%lldx%lld",
                              (long long)x->shape[1], (long long)x->shape[2], (long long)x->shape[3],
                              (long long)m->g->in_shape[0], (long long)m->g->in_shape[1],
                              (long long)m->g->in_shape[2]);
    }
    return CVIS_OK;
}

cvis_status cvis__check_input(const cvis_model *m, const cvis_tensor *x)
{
    CVIS_TRY(cvis__check_input_shape(m, x));
    return cvis__check_finite(x->data, x->size, "the input");
}

void cvis__pass_set_lean(cvis_pass *p, int lean)
{
    p->lean = lean != 0;
    p->forwarded = 0;
}

void cvis__pass_set_input_grads_only(cvis_pass *p, int on)
{
    cvis__tape_set_input_grads_only(p->tape, on != 0);
    p->backwarded = 0;
}

/* Lean forward: for each needed layer, the last needed layer that reads
 * it (n_layers for outputs, kept); for the input, *input_last. */
static void plan_releases(cvis_pass *p, int *input_last)
{
    const cvis__graph *g = p->m->g;
    *input_last = -1;
    for (int i = 0; i < p->n_layers; i++)
        p->last_use[i] = -1;
    for (int j = 0; j < p->n_layers; j++) {
        if (!p->needed[j])
            continue;
        for (int k = 0; k < g->layers[j].n_in; k++) {
            int src = g->layers[j].in[k];
            if (src == CVIS_INPUT)
                *input_last = j;
            else if (src >= 0)
                p->last_use[src] = j;
        }
    }
    for (int k = 0; k < p->m->n_out; k++)
        p->last_use[p->m->out[k]] = p->n_layers;
}

cvis_status cvis__pass_forward(cvis_pass *p, const cvis_tensor *x)
{
    const cvis_model *m = p->m;
    const cvis__graph *g = m->g;
    if (g->n_layers != p->n_layers)
        return cvis__fail(CVIS_E_STATE, "the model changed since this pass was made");
    if (m->n_out < 1)
        return cvis__fail(CVIS_E_STATE, "the model has no layers");
    CVIS_TRY(cvis__check_input(m, x));
    p->forwarded = 0;
    p->backwarded = 0;
    mark_needed(p);
    /* lean only when nothing will be asked of the values but the outputs */
    int lean = p->lean && !p->input_grad && !p->weight_grads && p->grad_layer < 0;
    int input_last = -1;
    if (lean)
        plan_releases(p, &input_last);
    p->lean_run = lean;
    cvis__tape_set_lean(p->tape, lean);
    cvis__tape_reset(p->tape);
    CVIS_TRY(cvis__tape_leaf(p->tape, x, p->input_grad, &p->in_slot));
    for (int i = 0; i < p->n_layers; i++)
        p->slot[i] = -1;
    for (int i = 0; i < p->n_layers; i++) {
        if (!p->needed[i])
            continue;
        const cvis__layer *l = &g->layers[i];
        int in[CVIS__MAX_OP_INPUTS];
        for (int k = 0; k < l->n_in; k++)
            in[k] = l->in[k] == CVIS_INPUT ? p->in_slot : p->slot[l->in[k]];
        int drop = (p->logits && drops_activation(p, i)) || i == p->drop_layer;
        cvis_status st = cvis__tape_push(p->tape, l->op, l->attr, l->n_in, in, l->n_w,
                                         (const cvis_tensor *const *)l->w, p->weight_grads, drop,
                                         &p->slot[i]);
        if (st != CVIS_OK)
            return cvis__wrap_error(st, "layer %d \"%s\"", i, l->name);
        if (i == p->grad_layer)
            cvis__tape_mark_grad(p->tape, p->slot[i]);
        if (i == p->edit_layer)
            p->edit(p->edit_ctx, (cvis_tensor *)cvis__tape_value(p->tape, p->slot[i]));
        /* lean: values read for the last time give their buffers back
         * (each once, even when a layer reads the same value twice) */
        for (int k = 0; lean && k < l->n_in; k++) {
            int src = l->in[k];
            if (src == CVIS_INPUT && input_last == i) {
                cvis__tape_release(p->tape, p->in_slot);
                input_last = -1;
            } else if (src >= 0 && p->last_use[src] == i) {
                cvis__tape_release(p->tape, p->slot[src]);
                p->last_use[src] = -1;
                p->slot[src] = -1;
            }
        }
    }
    p->version = m->version;
    p->forwarded = 1;
    return CVIS_OK;
}

/* 1 when the last forward's results still describe the model: layers
 * added or outputs set since then make them stale. */
static int fresh(const cvis_pass *p)
{
    return p->forwarded && p->version == p->m->version;
}

const cvis_model *cvis__pass_model(const cvis_pass *p)
{
    return p->m;
}

int cvis__pass_has_weight_grads(const cvis_pass *p)
{
    return p->backwarded && p->weight_grads && fresh(p);
}

const cvis_tensor *cvis__pass_output(const cvis_pass *p, int k)
{
    if (!fresh(p) || k < 0 || k >= p->m->n_out)
        return NULL;
    return cvis__tape_value(p->tape, p->slot[p->m->out[k]]);
}

const cvis_tensor *cvis__pass_layer_output(const cvis_pass *p, int layer)
{
    if (!fresh(p) || layer < 0 || layer >= p->n_layers || p->slot[layer] < 0)
        return NULL;
    return cvis__tape_value(p->tape, p->slot[layer]);
}

cvis_status cvis__pass_backward(cvis_pass *p, int n, const cvis_tensor *const *d_outputs)
{
    if (!p->forwarded)
        return cvis__fail(CVIS_E_STATE, "backward needs a forward first");
    if (!fresh(p))
        return cvis__fail(CVIS_E_STATE, "the model's layers or outputs changed since the "
                                        "forward; run it again");
    if (p->lean_run)
        return cvis__fail(CVIS_E_STATE, "backward after a forward-only (lean) pass");
    if (n != p->m->n_out)
        return cvis__fail(CVIS_E_INVALID_ARG, "backward takes %d output gradients, not %d",
                          p->m->n_out, n);
    int slots[1024];
    const float *seeds[1024];
    for (int k = 0; k < n; k++) {
        slots[k] = p->slot[p->m->out[k]];
        const cvis_tensor *d = d_outputs ? d_outputs[k] : NULL;
        const cvis_tensor *o = cvis__tape_value(p->tape, slots[k]);
        if (d) {
            cvis__shape ds = cvis__tensor_get_shape(d), os = cvis__tensor_get_shape(o);
            if (!cvis__shape_equal(&ds, &os)) {
                char a[96], b[96];
                return cvis__fail(CVIS_E_SHAPE, "the gradient of output %d has shape %s, the output %s",
                                  k, cvis__shape_str(&ds, a, sizeof a),
                                  cvis__shape_str(&os, b, sizeof b));
            }
            CVIS_TRY(cvis__check_finite(d->data, d->size, "the output gradient"));
        }
        seeds[k] = d ? d->data : NULL;
    }
    p->backwarded = 0;
    CVIS_TRY(cvis__tape_backward(p->tape, n, slots, seeds, p->relu_mode));
    p->backwarded = 1;
    return CVIS_OK;
}

const cvis_tensor *cvis__pass_input_grad(const cvis_pass *p)
{
    if (!p->backwarded || !fresh(p) || !p->input_grad)
        return NULL;
    return cvis__tape_grad(p->tape, p->in_slot);
}

const cvis_tensor *cvis__pass_layer_grad(const cvis_pass *p, int layer)
{
    if (!p->backwarded || !fresh(p) || layer < 0 || layer >= p->n_layers || p->slot[layer] < 0)
        return NULL;
    return cvis__tape_grad(p->tape, p->slot[layer]);
}

const cvis_tensor *cvis__pass_weight_grad(cvis_pass *p, int layer, int k)
{
    if (!p->backwarded || !fresh(p) || !p->weight_grads || layer < 0 || layer >= p->n_layers ||
        p->slot[layer] < 0)
        return NULL;
    const cvis__layer *l = &p->m->g->layers[layer];
    if (k < 0 || k >= l->n_w)
        return NULL;
    const float *g = cvis__tape_param_grad(p->tape, p->slot[layer], k);
    if (!g)
        return NULL;
    cvis_tensor *v = &p->wviews[p->wview_base[layer] + k];
    cvis__tensor_view(v, (float *)g, l->w[k]->ndim, l->w[k]->shape);
    return v;
}

/* ------------------------------------------------------------ public API */

CVIS_API cvis_status cvis_pass_new(const cvis_model *m, cvis_pass **out)
{
    CVIS_CHECK_ARG(m && out, "model or out is NULL");
    return cvis__pass_new(m, out);
}

CVIS_API void cvis_pass_free(cvis_pass *p)
{
    cvis__pass_free(p);
}

CVIS_API cvis_status cvis_pass_set_int(cvis_pass *p, cvis_pass_option key, int64_t value)
{
    CVIS_CHECK_ARG(p, "pass is NULL");
    return cvis__pass_set(p, key, value);
}

CVIS_API cvis_status cvis_pass_forward(cvis_pass *p, const cvis_tensor *x)
{
    CVIS_CHECK_ARG(p && x, "pass or input is NULL");
    return cvis__pass_forward(p, x);
}

CVIS_API const cvis_tensor *cvis_pass_output(const cvis_pass *p, int k)
{
    return p ? cvis__pass_output(p, k) : NULL;
}

CVIS_API const cvis_tensor *cvis_pass_layer_output(const cvis_pass *p, int layer)
{
    if (!p)
        return NULL;
    if (layer < 0)
        layer += p->n_layers;
    return cvis__pass_layer_output(p, layer);
}

CVIS_API cvis_status cvis_pass_backward(cvis_pass *p, int n, const cvis_tensor *const *d_outputs)
{
    CVIS_CHECK_ARG(p, "pass is NULL");
    return cvis__pass_backward(p, n, d_outputs);
}

CVIS_API const cvis_tensor *cvis_pass_input_grad(const cvis_pass *p)
{
    return p ? cvis__pass_input_grad(p) : NULL;
}

CVIS_API const cvis_tensor *cvis_pass_layer_grad(const cvis_pass *p, int layer)
{
    if (!p)
        return NULL;
    if (layer < 0)
        layer += p->n_layers;
    return cvis__pass_layer_grad(p, layer);
}

CVIS_API const cvis_tensor *cvis_pass_weight_grad(const cvis_pass *p, int layer, int k)
{
    if (!p)
        return NULL;
    if (layer < 0)
        layer += p->n_layers;
    return cvis__pass_weight_grad((cvis_pass *)p, layer, k);
}

/* ------------------------------------------------------------- prediction */

CVIS_API cvis_status cvis_model_predict_all(const cvis_model *m, const cvis_tensor *x, int n_outs,
                                            cvis_tensor **outs)
{
    CVIS_CHECK_ARG(m && x && outs, "model, input or outs is NULL");
    if (n_outs != m->n_out)
        return cvis__fail(CVIS_E_INVALID_ARG, "the model has %d outputs, not %d", m->n_out, n_outs);
    cvis_pass *p;
    CVIS_TRY(cvis__pass_new(m, &p));
    p->input_grad = 0;
    p->lean = 1; /* only the outputs are read */
    cvis_status st = cvis__pass_forward(p, x);
    int made = 0;
    for (; st == CVIS_OK && made < n_outs; made++)
        st = cvis_tensor_clone(cvis__pass_output(p, made), &outs[made]);
    if (st != CVIS_OK)
        for (int k = 0; k < made - 1; k++) {
            cvis_tensor_free(outs[k]);
            outs[k] = NULL;
        }
    cvis__pass_free(p);
    return st;
}

CVIS_API cvis_status cvis_model_predict(const cvis_model *m, const cvis_tensor *x,
                                        cvis_tensor **out)
{
    CVIS_CHECK_ARG(m && x && out, "model, input or out is NULL");
    if (m->n_out < 1)
        return cvis__fail(CVIS_E_STATE, "the model has no layers");
    cvis_tensor *outs[1024];
    if (m->n_out == 1)
        return cvis_model_predict_all(m, x, 1, out);
    CVIS_TRY(cvis_model_predict_all(m, x, m->n_out, outs));
    *out = outs[0];
    for (int k = 1; k < m->n_out; k++)
        cvis_tensor_free(outs[k]);
    return CVIS_OK;
}
