/* SGD (with momentum), RMSprop and Adam, with Keras's update rules and
 * defaults.  State is kept per slot so that one optimizer can step many
 * tensors. */
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "optimizer.h"
#include "parallel.h"
#include "tensor.h"

typedef struct slot_state {
    float *m, *v;  /* first and second moments (or velocity) */
    int64_t n;
    int64_t t;     /* steps taken */
} slot_state;

struct cvis_optimizer {
    cvis_optimizer_kind kind;
    double lr, beta1, beta2, eps, rho, momentum;
    slot_state *slots;
    int n_slots;
};

cvis_status cvis__optimizer_new(cvis_optimizer_kind kind, double lr, cvis_optimizer **out)
{
    if (kind != CVIS_OPTIMIZER_SGD && kind != CVIS_OPTIMIZER_RMSPROP && kind != CVIS_OPTIMIZER_ADAM)
        return cvis__fail(CVIS_E_INVALID_ARG, "unknown optimizer kind %d", (int)kind);
    if (!(lr > 0) || !isfinite(lr))
        return cvis__fail(CVIS_E_INVALID_ARG, "learning rate must be positive and finite");
    cvis_optimizer *o = cvis__calloc(1, sizeof *o);
    if (!o)
        return cvis__fail(CVIS_E_NOMEM, "out of memory for an optimizer");
    o->kind = kind;
    o->lr = lr;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-7;
    o->rho = 0.9;
    o->momentum = 0.0;
    *out = o;
    return CVIS_OK;
}

void cvis__optimizer_free(cvis_optimizer *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->n_slots; i++) {
        cvis__free(o->slots[i].m);
        cvis__free(o->slots[i].v);
    }
    cvis__free(o->slots);
    cvis__free(o);
}

cvis_status cvis__optimizer_set(cvis_optimizer *o, cvis_optimizer_option key, double value)
{
    if (!isfinite(value))
        return cvis__fail(CVIS_E_INVALID_ARG, "optimizer option must be finite");
    switch (key) {
    case CVIS_OPTIM_LEARNING_RATE:
        if (!(value > 0))
            return cvis__fail(CVIS_E_INVALID_ARG, "learning rate must be positive");
        o->lr = value;
        return CVIS_OK;
    case CVIS_OPTIM_BETA_1:
    case CVIS_OPTIM_BETA_2:
    case CVIS_OPTIM_RHO:
    case CVIS_OPTIM_MOMENTUM:
        if (value < 0 || value >= 1)
            return cvis__fail(CVIS_E_INVALID_ARG, "decay rates must lie in [0, 1)");
        if (key == CVIS_OPTIM_BETA_1)
            o->beta1 = value;
        else if (key == CVIS_OPTIM_BETA_2)
            o->beta2 = value;
        else if (key == CVIS_OPTIM_RHO)
            o->rho = value;
        else
            o->momentum = value;
        return CVIS_OK;
    case CVIS_OPTIM_EPSILON:
        if (!(value > 0))
            return cvis__fail(CVIS_E_INVALID_ARG, "epsilon must be positive");
        o->eps = value;
        return CVIS_OK;
    }
    return cvis__fail(CVIS_E_INVALID_ARG, "unknown optimizer option %d", (int)key);
}

static cvis_status get_slot(cvis_optimizer *o, int slot, int64_t n, slot_state **out)
{
    if (slot < 0 || slot > 1 << 20)
        return cvis__fail(CVIS_E_RANGE, "optimizer slot %d out of range", slot);
    if (slot >= o->n_slots) {
        slot_state *p;
        CVIS_TRY(cvis__realloc(o->slots, (size_t)(slot + 1) * sizeof *p, "optimizer state",
                               (void **)&p));
        memset(p + o->n_slots, 0, (size_t)(slot + 1 - o->n_slots) * sizeof *p);
        o->slots = p;
        o->n_slots = slot + 1;
    }
    slot_state *s = &o->slots[slot];
    if (s->m && s->n != n)
        return cvis__fail(CVIS_E_SHAPE, "optimizer slot %d was used for %lld values, now %lld",
                          slot, (long long)s->n, (long long)n);
    if (!s->m) {
        float *m, *v;
        CVIS_TRY(cvis__alloc_zero((size_t)n * sizeof(float), "optimizer state", (void **)&m));
        if (cvis__alloc_zero((size_t)n * sizeof(float), "optimizer state", (void **)&v) != CVIS_OK) {
            cvis__free(m);
            return CVIS_E_NOMEM;
        }
        s->m = m;
        s->v = v;
        s->n = n;
    }
    *out = s;
    return CVIS_OK;
}

/* One step over a range of elements, run on the worker pool: each element
 * is updated by exactly one thread, so results do not depend on threads. */
typedef struct step_job {
    const cvis_optimizer *o;
    slot_state *s;
    float *w;
    const float *g;
    float lr_t; /* Adam's bias-corrected rate */
} step_job;

static void step_range(void *ctx, int64_t begin, int64_t end)
{
    const step_job *j = ctx;
    const cvis_optimizer *o = j->o;
    float *w = j->w, *m = j->s->m, *v = j->s->v;
    const float *g = j->g;
    switch (o->kind) {
    case CVIS_OPTIMIZER_SGD: {
        float lr = (float)o->lr, mom = (float)o->momentum;
        if (mom == 0) {
            for (int64_t i = begin; i < end; i++)
                w[i] -= lr * g[i];
        } else {
            for (int64_t i = begin; i < end; i++) {
                m[i] = mom * m[i] - lr * g[i];
                w[i] += m[i];
            }
        }
        break;
    }
    case CVIS_OPTIMIZER_RMSPROP: {
        float rho = (float)o->rho, lr = (float)o->lr, eps = (float)o->eps;
        for (int64_t i = begin; i < end; i++) {
            v[i] = rho * v[i] + (1 - rho) * g[i] * g[i];
            w[i] -= lr * g[i] / (sqrtf(v[i]) + eps);
        }
        break;
    }
    case CVIS_OPTIMIZER_ADAM: {
        float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps, lr_t = j->lr_t;
        for (int64_t i = begin; i < end; i++) {
            m[i] = b1 * m[i] + (1 - b1) * g[i];
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
            w[i] -= lr_t * m[i] / (sqrtf(v[i]) + eps);
        }
        break;
    }
    }
}

cvis_status cvis__optimizer_step(cvis_optimizer *o, int slot, float *w, const float *g, int64_t n)
{
    slot_state *s = NULL;
    /* a NaN step would spread into the weights and every later output */
    CVIS_TRY(cvis__check_finite(g, n, "the gradient"));
    CVIS_TRY(get_slot(o, slot, n, &s));
    s->t++;
    step_job j = {o, s, w, g, 0};
    if (o->kind == CVIS_OPTIMIZER_ADAM) {
        double t = (double)s->t;
        j.lr_t = (float)(o->lr * sqrt(1 - pow(o->beta2, t)) / (1 - pow(o->beta1, t)));
    }
    cvis__parallel_for(n, 1 << 16, step_range, &j);
    return CVIS_OK;
}

/* ------------------------------------------------------------ public API */

CVIS_API cvis_status cvis_optimizer_new(cvis_optimizer_kind kind, double learning_rate,
                                        cvis_optimizer **out)
{
    CVIS_CHECK_ARG(out, "out is NULL");
    return cvis__optimizer_new(kind, learning_rate, out);
}

CVIS_API void cvis_optimizer_free(cvis_optimizer *o)
{
    cvis__optimizer_free(o);
}

CVIS_API cvis_status cvis_optimizer_set(cvis_optimizer *o, cvis_optimizer_option key, double value)
{
    CVIS_CHECK_ARG(o, "optimizer is NULL");
    return cvis__optimizer_set(o, key, value);
}

CVIS_API cvis_status cvis_optimizer_step(cvis_optimizer *o, int slot, float *param,
                                         const float *grad, int64_t n)
{
    CVIS_CHECK_ARG(o && param && grad, "optimizer, param or grad is NULL");
    CVIS_CHECK_ARG(n >= 0, "negative size");
    return cvis__optimizer_step(o, slot, param, grad, n);
}
