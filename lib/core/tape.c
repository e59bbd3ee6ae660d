/* Reverse-mode tape: slots, entries, lazy gradient buffers. */
#include "tape.h"

#include <string.h>

#include "alloc.h"
#include "error.h"

typedef struct slot {
    cvis_tensor value;   /* view over buf, or over the aliased slot's buf */
    cvis_tensor grad_view;
    float *buf;
    size_t cap;          /* floats */
    float *grad;
    size_t gcap;
    int alias;           /* -1, or the slot whose buffers this one shares */
    int entry;           /* producing entry, or -1 for a leaf */
    int requires_grad;
    int reached;         /* a gradient flowed into it in this backward */
    int gready;          /* its gradient buffer is zeroed for this backward */
    int refs;            /* lean tapes: this slot and its aliases not yet released */
} slot;

typedef struct entry {
    const cvis__op *op;
    const void *attr;
    int n_in;
    int in[CVIS__MAX_OP_INPUTS];
    int n_params;
    const cvis_tensor *params[CVIS__MAX_OP_PARAMS];
    float *dparams[CVIS__MAX_OP_PARAMS];
    size_t dcap[CVIS__MAX_OP_PARAMS];
    int params_grad;
    int drop_act;
    int out;
} entry;

/* A buffer no slot holds (lean tapes). */
typedef struct spare {
    float *buf;
    size_t cap;
} spare;

struct cvis__tape {
    slot *slots;
    int n_slots, slot_cap;
    entry *entries;
    int n_entries, entry_cap;
    cvis__workspace ws;
    int lean;
    int input_grads_only; /* backward gives each layer's gradient back once used */
    spare *spares;
    int n_spares, spare_cap;
};

cvis_status cvis__tape_new(cvis__tape **out)
{
    cvis__tape *t = cvis__calloc(1, sizeof *t);
    if (!t)
        return cvis__fail(CVIS_E_NOMEM, "out of memory for a tape");
    *out = t;
    return CVIS_OK;
}

void cvis__tape_free(cvis__tape *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->slot_cap; i++) {
        cvis__free(t->slots[i].buf);
        cvis__free(t->slots[i].grad);
    }
    for (int i = 0; i < t->entry_cap; i++)
        for (int k = 0; k < CVIS__MAX_OP_PARAMS; k++)
            cvis__free(t->entries[i].dparams[k]);
    for (int i = 0; i < t->n_spares; i++)
        cvis__free(t->spares[i].buf);
    cvis__free(t->spares);
    cvis__free(t->slots);
    cvis__free(t->entries);
    cvis__ws_release(&t->ws);
    cvis__free(t);
}

static void put_spare(cvis__tape *t, slot *s);

void cvis__tape_reset(cvis__tape *t)
{
    /* lean: every value buffer becomes a spare, taken again by size */
    if (t->lean)
        for (int i = 0; i < t->slot_cap; i++)
            put_spare(t, &t->slots[i]);
    t->n_slots = 0;
    t->n_entries = 0;
}

void cvis__tape_set_lean(cvis__tape *t, int lean)
{
    t->lean = lean;
}

void cvis__tape_set_input_grads_only(cvis__tape *t, int on)
{
    t->input_grads_only = on;
}

/* Grows an array of structs, zero-filling the new part. */
static cvis_status grow(void **arr, int *cap, int need, size_t elem, const char *what)
{
    if (need <= *cap)
        return CVIS_OK;
    int ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *p;
    CVIS_TRY(cvis__realloc(*arr, (size_t)ncap * elem, what, &p));
    memset((char *)p + (size_t)*cap * elem, 0, (size_t)(ncap - *cap) * elem);
    *arr = p;
    *cap = ncap;
    return CVIS_OK;
}

/* Ensures *buf holds n floats, keeping an existing large enough buffer. */
static cvis_status ensure(float **buf, size_t *cap, size_t n, const char *what)
{
    if (n <= *cap && *buf)
        return CVIS_OK;
    float *p;
    CVIS_TRY(cvis__alloc((n ? n : 1) * sizeof(float), what, (void **)&p));
    cvis__free(*buf);
    *buf = p;
    *cap = n;
    return CVIS_OK;
}

static int root_of(const cvis__tape *t, int id);

/* Moves a buffer to the spares (freed if the list cannot grow). */
static void put_spare_buf(cvis__tape *t, float **buf, size_t *cap)
{
    if (!*buf)
        return;
    if (grow((void **)&t->spares, &t->spare_cap, t->n_spares + 1, sizeof(spare), "spare buffers") ==
        CVIS_OK)
        t->spares[t->n_spares++] = (spare){*buf, *cap};
    else
        cvis__free(*buf);
    *buf = NULL;
    *cap = 0;
}

static void put_spare(cvis__tape *t, slot *s)
{
    put_spare_buf(t, &s->buf, &s->cap);
}

/* Gives *buf (NULL) the smallest spare that holds n floats; when none
 * does, the largest spare (too small) is freed instead, so that the spares
 * never outnumber the buffers in use. */
static void take_spare(cvis__tape *t, size_t n, float **buf, size_t *cap)
{
    int best = -1, largest = -1;
    for (int i = 0; i < t->n_spares; i++) {
        if (t->spares[i].cap >= n && (best < 0 || t->spares[i].cap < t->spares[best].cap))
            best = i;
        if (largest < 0 || t->spares[i].cap > t->spares[largest].cap)
            largest = i;
    }
    int take = best >= 0 ? best : largest;
    if (take < 0)
        return;
    if (best >= 0) {
        *buf = t->spares[take].buf;
        *cap = t->spares[take].cap;
    } else {
        cvis__free(t->spares[take].buf);
    }
    t->spares[take] = t->spares[--t->n_spares];
}

/* A value buffer of n floats for slot s; lean tapes take it from the
 * spares. */
static cvis_status value_buffer(cvis__tape *t, slot *s, size_t n, const char *what)
{
    if (t->lean) {
        put_spare(t, s);
        take_spare(t, n, &s->buf, &s->cap);
    }
    return ensure(&s->buf, &s->cap, n, what);
}

/* The zeroed gradient buffer of root slot s for this backward; tapes that
 * give gradients back take it from the spares. */
static cvis_status grad_buffer(cvis__tape *t, slot *s)
{
    size_t n = (size_t)s->value.size;
    if (t->input_grads_only && !s->grad)
        take_spare(t, n, &s->grad, &s->gcap);
    CVIS_TRY(ensure(&s->grad, &s->gcap, n, "gradient"));
    memset(s->grad, 0, n * sizeof(float));
    s->gready = 1;
    return CVIS_OK;
}

void cvis__tape_release(cvis__tape *t, int id)
{
    if (!t->lean || id < 0 || id >= t->n_slots)
        return;
    slot *r = &t->slots[root_of(t, id)];
    if (--r->refs == 0)
        put_spare(t, r);
}

static cvis_status new_slot(cvis__tape *t, int *id)
{
    CVIS_TRY(grow((void **)&t->slots, &t->slot_cap, t->n_slots + 1, sizeof(slot), "tape slots"));
    slot *s = &t->slots[t->n_slots];
    s->alias = -1;
    s->entry = -1;
    s->requires_grad = 0;
    s->reached = 0;
    s->refs = 1;
    *id = t->n_slots++;
    return CVIS_OK;
}

static int root_of(const cvis__tape *t, int id)
{
    while (t->slots[id].alias >= 0)
        id = t->slots[id].alias;
    return id;
}

cvis_status cvis__tape_leaf(cvis__tape *t, const cvis_tensor *x, int requires_grad, int *slot_id)
{
    int id;
    CVIS_TRY(new_slot(t, &id));
    slot *s = &t->slots[id];
    cvis_status st = value_buffer(t, s, (size_t)x->size, "tape value");
    if (st != CVIS_OK) {
        t->n_slots--;
        return st;
    }
    if (x->size)
        memcpy(s->buf, x->data, (size_t)x->size * sizeof(float));
    cvis__tensor_view(&s->value, s->buf, x->ndim, x->shape);
    s->requires_grad = requires_grad;
    *slot_id = id;
    return CVIS_OK;
}

cvis_status cvis__tape_push(cvis__tape *t, const cvis__op *op, const void *attr, int n_in,
                            const int *in, int n_params, const cvis_tensor *const *params,
                            int params_grad, int drop_act, int *slot_id)
{
    if (n_in > CVIS__MAX_OP_INPUTS || n_params > CVIS__MAX_OP_PARAMS)
        return cvis__fail(CVIS_E_UNSUPPORTED, "%s: too many inputs or params", op->name);
    cvis__shape in_shapes[CVIS__MAX_OP_INPUTS];
    const cvis_tensor *in_vals[CVIS__MAX_OP_INPUTS];
    int rg = 0;
    for (int i = 0; i < n_in; i++) {
        if (in[i] < 0 || in[i] >= t->n_slots)
            return cvis__fail(CVIS_E_INTERNAL, "%s: input slot %d out of range", op->name, in[i]);
        in_vals[i] = &t->slots[in[i]].value;
        in_shapes[i] = cvis__tensor_get_shape(in_vals[i]);
        rg |= t->slots[in[i]].requires_grad;
    }
    cvis__shape os;
    memset(&os, 0, sizeof os);
    CVIS_TRY(op->shape(attr, n_in, in_shapes, &os));
    int64_t n;
    CVIS_TRY(cvis__shape_size(os.ndim, os.d, &n));
    CVIS_TRY(grow((void **)&t->entries, &t->entry_cap, t->n_entries + 1, sizeof(entry),
                  "tape entries"));
    int id;
    CVIS_TRY(new_slot(t, &id));
    /* new_slot may have moved the slots: point at the inputs again */
    for (int i = 0; i < n_in; i++)
        in_vals[i] = &t->slots[in[i]].value;
    slot *s = &t->slots[id];
    if (op->is_view) {
        s->alias = root_of(t, in[0]);
        t->slots[s->alias].refs++;
        if (t->lean)
            put_spare(t, s);
        cvis__tensor_view_shape(&s->value, t->slots[in[0]].value.data, &os);
    } else {
        cvis_status st = value_buffer(t, s, (size_t)n, "layer output");
        if (st != CVIS_OK) {
            t->n_slots--;
            return st;
        }
        cvis__tensor_view_shape(&s->value, s->buf, &os);
    }
    entry *e = &t->entries[t->n_entries];
    e->op = op;
    e->attr = attr;
    e->n_in = n_in;
    memcpy(e->in, in, (size_t)n_in * sizeof(int));
    e->n_params = n_params;
    for (int k = 0; k < n_params; k++)
        e->params[k] = params[k];
    e->params_grad = params_grad && n_params > 0;
    e->drop_act = drop_act;
    e->out = id;
    s->entry = t->n_entries;
    s->requires_grad = rg || e->params_grad;
    if (!op->is_view) {
        cvis__op_args a;
        memset(&a, 0, sizeof a);
        a.attr = attr;
        a.n_in = n_in;
        a.in = in_vals;
        a.n_params = n_params;
        a.params = params;
        a.out = &s->value;
        a.drop_act = drop_act;
        a.ws = &t->ws;
        cvis_status st = op->forward(&a);
        if (st != CVIS_OK) {
            t->n_slots--;
            return st;
        }
    }
    t->n_entries++;
    *slot_id = id;
    return CVIS_OK;
}

void cvis__tape_mark_grad(cvis__tape *t, int id)
{
    if (id >= 0 && id < t->n_slots)
        t->slots[root_of(t, id)].requires_grad = t->slots[id].requires_grad = 1;
}

const cvis_tensor *cvis__tape_value(const cvis__tape *t, int id)
{
    if (id < 0 || id >= t->n_slots)
        return NULL;
    return &t->slots[id].value;
}

int cvis__tape_slot_count(const cvis__tape *t)
{
    return t->n_slots;
}

int cvis__tape_requires_grad(const cvis__tape *t, int id)
{
    return id >= 0 && id < t->n_slots && t->slots[id].requires_grad;
}

cvis_status cvis__tape_backward(cvis__tape *t, int n_seeds, const int *seed_slots,
                                const float *const *seeds, cvis__relu_mode mode)
{
    /* Gradient buffers for every root slot that needs one, zeroed; when
     * only the input's gradient is wanted, a layer's buffer is taken when
     * a gradient first reaches it and given back once its producer has
     * used it (leaves keep theirs: they are the answer). */
    for (int i = 0; i < t->n_slots; i++) {
        slot *s = &t->slots[i];
        s->reached = 0;
        s->gready = 0;
        if (!s->requires_grad || s->alias >= 0)
            continue;
        if (t->input_grads_only && s->entry >= 0)
            put_spare_buf(t, &s->grad, &s->gcap);
        else
            CVIS_TRY(grad_buffer(t, s));
    }
    for (int i = 0; i < t->n_entries; i++) {
        entry *e = &t->entries[i];
        if (!e->params_grad)
            continue;
        for (int k = 0; k < e->n_params; k++) {
            size_t n = (size_t)e->params[k]->size;
            CVIS_TRY(ensure(&e->dparams[k], &e->dcap[k], n, "weight gradient"));
            memset(e->dparams[k], 0, n * sizeof(float));
        }
    }
    for (int i = 0; i < n_seeds; i++) {
        int id = seed_slots[i];
        if (id < 0 || id >= t->n_slots)
            return cvis__fail(CVIS_E_INTERNAL, "backward: seed slot %d out of range", id);
        if (!seeds[i] || !t->slots[id].requires_grad)
            continue;
        slot *r = &t->slots[root_of(t, id)];
        if (!r->gready)
            CVIS_TRY(grad_buffer(t, r));
        for (int64_t j = 0; j < r->value.size; j++)
            r->grad[j] += seeds[i][j];
        r->reached = 1;
    }
    float *din[CVIS__MAX_OP_INPUTS];
    const cvis_tensor *in_vals[CVIS__MAX_OP_INPUTS];
    for (int i = t->n_entries - 1; i >= 0; i--) {
        entry *e = &t->entries[i];
        slot *o = &t->slots[root_of(t, e->out)];
        if (!o->reached)
            continue;
        int any = e->params_grad;
        for (int k = 0; k < e->n_in; k++) {
            slot *s = &t->slots[root_of(t, e->in[k])];
            in_vals[k] = &t->slots[e->in[k]].value;
            din[k] = NULL;
            if (s->requires_grad) {
                if (!s->gready)
                    CVIS_TRY(grad_buffer(t, s));
                din[k] = s->grad;
                s->reached = 1;
                any = 1;
            }
        }
        if (!any || e->op->is_view)
            continue;
        cvis__op_args a;
        memset(&a, 0, sizeof a);
        a.attr = e->attr;
        a.n_in = e->n_in;
        a.in = in_vals;
        a.n_params = e->n_params;
        a.params = e->params;
        a.out = &t->slots[e->out].value;
        a.drop_act = e->drop_act;
        a.ws = &t->ws;
        a.dout = o->grad;
        a.din = din;
        a.dparams = e->params_grad ? e->dparams : NULL;
        a.relu_mode = mode;
        CVIS_TRY(e->op->backward(&a));
        /* every reader of this output came later and has run */
        if (t->input_grads_only && o == &t->slots[e->out]) {
            put_spare_buf(t, &o->grad, &o->gcap);
            o->gready = 0;
        }
    }
    return CVIS_OK;
}

const cvis_tensor *cvis__tape_grad(cvis__tape *t, int id)
{
    if (id < 0 || id >= t->n_slots || !t->slots[id].requires_grad)
        return NULL;
    slot *s = &t->slots[id];
    slot *r = &t->slots[root_of(t, id)];
    if (!r->grad)
        return NULL;
    cvis__tensor_view(&s->grad_view, r->grad, s->value.ndim, s->value.shape);
    return &s->grad_view;
}

const float *cvis__tape_param_grad(const cvis__tape *t, int id, int k)
{
    if (id < 0 || id >= t->n_slots || t->slots[id].entry < 0)
        return NULL;
    const entry *e = &t->entries[t->slots[id].entry];
    if (!e->params_grad || k < 0 || k >= e->n_params)
        return NULL;
    return e->dparams[k];
}
