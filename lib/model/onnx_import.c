/* ONNX graphs into libcvis models.
 *
 * Every ONNX value is either a constant (initializers, Constant nodes and
 * whatever is computed from constants only, folded at load time) or a
 * variable produced by a libcvis layer.  A variable keeps its ONNX rank and
 * a permutation `perm`: cvis axis i holds ONNX axis perm[i].  Images enter
 * as NHWC, so a 4-D feature map normally has perm (0,2,3,1); Transpose
 * nodes only change perm, and a real transpose layer is added only where a
 * consumer needs another order.  The batch is always ONNX axis 0 and cvis
 * axis 0.
 *
 * Input sizes that the file leaves symbolic are followed with two stand-in
 * sizes (A and B): every value has a cvis shape for each, and constants
 * computed from shapes (Shape -> Gather -> Concat -> Reshape) have a value
 * for each.  A size that differs between A and B follows the input. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/error.h"
#include "model.h"
#include "onnx_fold.h"
#include "onnx_read.h"

#define STAND_A 224
#define STAND_B 320
#define MAX_NODES (1 << 16)
#define MAX_NAME 200

/* -------------------------------------------------------- name maps */

typedef struct namemap {
    const char **keys;
    int *vals;
    size_t cap, n;
} namemap;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static cvis_status map_init(namemap *m, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 16)
        cap *= 2;
    m->keys = cvis__calloc(cap, sizeof *m->keys);
    m->vals = cvis__calloc(cap, sizeof *m->vals);
    m->cap = cap;
    m->n = 0;
    if (!m->keys || !m->vals)
        return cvis__fail(CVIS_E_NOMEM, "out of memory importing a model");
    return CVIS_OK;
}

static void map_release(namemap *m)
{
    cvis__free(m->keys);
    cvis__free(m->vals);
    memset(m, 0, sizeof *m);
}

static int map_get(const namemap *m, const char *key)
{
    size_t i = (size_t)hash_str(key) & (m->cap - 1);
    while (m->keys[i]) {
        if (!strcmp(m->keys[i], key))
            return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}

/* The key must outlive the map.  Grows when half full. */
static cvis_status map_put(namemap *m, const char *key, int val)
{
    if (2 * (m->n + 1) > m->cap) {
        namemap bigger;
        CVIS_TRY(map_init(&bigger, m->cap));
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i])
                map_put(&bigger, m->keys[i], m->vals[i]);
        map_release(m);
        *m = bigger;
    }
    size_t i = (size_t)hash_str(key) & (m->cap - 1);
    while (m->keys[i]) {
        if (!strcmp(m->keys[i], key)) {
            m->vals[i] = val;
            return CVIS_OK;
        }
        i = (i + 1) & (m->cap - 1);
    }
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
    return CVIS_OK;
}

/* ------------------------------------------------------------ values */

enum { V_NONE = 0, V_CONST = 1, V_VAR = 2 };

typedef struct val {
    int kind;
    /* constants: the value under stand-ins A and B (often the same) */
    cvis__onnx_tensor *c[2];
    unsigned char own[2];
    unsigned char from_init;
    /* variables */
    int layer;                   /* producing layer, or CVIS_INPUT */
    int rank;
    int perm[CVIS_MAX_DIMS];     /* cvis axis i holds ONNX axis perm[i] */
    cvis__shape s[2];            /* cvis shapes under stand-ins A and B */
    /* A flattened value whose features are in cvis order: the ONNX dims
     * and perm of what was flattened give the order (see flat_order). */
    int flat;
    int flat_rank;
    int64_t flat_dims[CVIS_MAX_DIMS];
    int flat_perm[CVIS_MAX_DIMS];
    /* the last layout conversion made for a consumer, reused */
    int conv_layer;
    int conv_perm[CVIS_MAX_DIMS];
} val;

typedef struct imp {
    const cvis__onnx_model *om;
    cvis_model *m;
    int64_t opset;
    int64_t max_fold;
    val *v;
    int nv;
    namemap vmap;               /* value name -> index */
    int *cons_start, *cons;     /* consumers (node indices) of each value */
    unsigned char *is_output;   /* value is a graph output */
    unsigned char *done;        /* node merged into an earlier layer */
    int *order;                 /* nodes in topological order */
    cvis__shape (*lsh)[2];      /* shapes of each layer under A and B */
    int lsh_cap;
    cvis__shape in_sh[2];
    namemap names;              /* names given to layers and aliases */
    char **name_store;
    int n_names, names_cap;
    const cvis__onnx_node *cur; /* node being imported, for layer names */
} imp;

static void val_release(val *v)
{
    for (int k = 0; k < 2; k++)
        if (v->own[k] && v->c[k] && (k == 0 || v->c[1] != v->c[0])) {
            cvis__onnx_tensor_release(v->c[k]);
            cvis__free(v->c[k]);
        }
    memset(v, 0, sizeof *v);
}

static void imp_release(imp *im)
{
    for (int i = 0; i < im->nv; i++)
        val_release(&im->v[i]);
    cvis__free(im->v);
    map_release(&im->vmap);
    map_release(&im->names);
    for (int i = 0; i < im->n_names; i++)
        cvis__free(im->name_store[i]);
    cvis__free(im->name_store);
    cvis__free(im->cons_start);
    cvis__free(im->cons);
    cvis__free(im->is_output);
    cvis__free(im->done);
    cvis__free(im->order);
    cvis__free(im->lsh);
}

static int value_index(const imp *im, const char *name)
{
    return name && name[0] ? map_get(&im->vmap, name) : -1;
}

static const char *node_label(const cvis__onnx_node *n)
{
    return n->name[0] ? n->name : n->n_out > 0 && n->out[0][0] ? n->out[0] : n->op_type;
}

/* ------------------------------------------------------------ helpers */

static int64_t attr_i(const cvis__onnx_node *n, const char *name, int64_t def)
{
    const cvis__onnx_attr *a = cvis__onnx_attr_find(n, name);
    return a && a->type == CVIS__ONNX_ATTR_INT ? a->i : def;
}

static float attr_f(const cvis__onnx_node *n, const char *name, float def)
{
    const cvis__onnx_attr *a = cvis__onnx_attr_find(n, name);
    return a && a->type == CVIS__ONNX_ATTR_FLOAT ? a->f : def;
}

static const char *attr_s(const cvis__onnx_node *n, const char *name, const char *def)
{
    const cvis__onnx_attr *a = cvis__onnx_attr_find(n, name);
    return a && a->type == CVIS__ONNX_ATTR_STRING && a->s ? a->s : def;
}

/* An int list attribute into v (at most cap); *n = -1 when absent. */
static cvis_status attr_ints(const cvis__onnx_node *n, const char *name, int64_t *v, int cap,
                             int *count)
{
    const cvis__onnx_attr *a = cvis__onnx_attr_find(n, name);
    *count = -1;
    if (!a)
        return CVIS_OK;
    if (a->type != CVIS__ONNX_ATTR_INTS || a->n > cap)
        return cvis__fail(CVIS_E_UNSUPPORTED, "attribute %s must be a list of at most %d integers",
                          name, cap);
    for (int k = 0; k < a->n; k++)
        v[k] = a->ints[k];
    *count = a->n;
    return CVIS_OK;
}

static val *input_val(imp *im, const cvis__onnx_node *n, int k)
{
    if (k >= n->n_in || !n->in[k][0])
        return NULL;
    int i = value_index(im, n->in[k]);
    return i >= 0 ? &im->v[i] : NULL;
}

static int is_const(const val *v)
{
    return v && v->kind == V_CONST;
}

static int is_var(const val *v)
{
    return v && v->kind == V_VAR;
}

/* A constant input that must not depend on the input size. */
static cvis_status static_const(imp *im, const cvis__onnx_node *n, int k, const char *what,
                                const cvis__onnx_tensor **out)
{
    val *v = input_val(im, n, k);
    if (!is_const(v))
        return cvis__fail(CVIS_E_UNSUPPORTED, "%s (input %d) must be a constant", what, k);
    if (!cvis__onnx_tensor_equal(v->c[0], v->c[1]))
        return cvis__fail(CVIS_E_UNSUPPORTED, "%s depends on the input size", what);
    *out = v->c[0];
    return CVIS_OK;
}

static cvis_status const_floats(const cvis__onnx_tensor *t, const char *what)
{
    if (!cvis__onnx_is_float_type(t->dtype) && t->count && !t->i)
        return cvis__fail(CVIS_E_FORMAT, "%s has no values", what);
    if (t->f) /* integers are always finite */
        return cvis__check_finite(t->f, t->count, what);
    return CVIS_OK;
}

/* ONNX dims of a variable under stand-in `w`. */
static void onnx_dims(const val *v, int w, int64_t *dims)
{
    for (int i = 0; i < v->rank; i++)
        dims[v->perm[i]] = v->s[w].d[i];
}

/* cvis position of ONNX axis a. */
static int pos_of(const val *v, int a)
{
    for (int i = 0; i < v->rank; i++)
        if (v->perm[i] == a)
            return i;
    return -1;
}

static int perm_equal(const int *a, const int *b, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static void perm_identity(int *p, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = i;
}

static cvis_status norm_axis(int64_t axis, int rank, int *out)
{
    *out = 0;
    if (axis < -rank || axis >= rank)
        return cvis__fail(CVIS_E_FORMAT, "axis %lld outside a rank-%d tensor", (long long)axis,
                          rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return CVIS_OK;
}

static const cvis__shape *layer_shape(const imp *im, int layer, int w)
{
    return layer == CVIS_INPUT ? &im->in_sh[w] : &im->lsh[layer][w];
}

/* ---------------------------------------------------------- layers */

static cvis_status remember_name(imp *im, const char *name)
{
    if (im->n_names == im->names_cap) {
        int cap = im->names_cap ? 2 * im->names_cap : 64;
        void *p;
        CVIS_TRY(cvis__realloc(im->name_store, (size_t)cap * sizeof(char *), "layer names", &p));
        im->name_store = p;
        im->names_cap = cap;
    }
    char *copy = cvis__strdup(name);
    if (!copy)
        return cvis__fail(CVIS_E_NOMEM, "out of memory naming layers");
    im->name_store[im->n_names++] = copy;
    return map_put(&im->names, copy, 1);
}

/* A free layer name made of base (and suffix), cut to MAX_NAME bytes. */
static void make_name(const imp *im, const char *base, const char *suffix, char *buf)
{
    char stem[MAX_NAME + 1];
    if (suffix)
        snprintf(stem, sizeof stem, "%.150s/%s", base, suffix);
    else
        snprintf(stem, sizeof stem, "%s", base);
    snprintf(buf, MAX_NAME + 1, "%s", stem);
    for (int k = 1; map_get(&im->names, buf) >= 0; k++) {
        char tail[16];
        int t = snprintf(tail, sizeof tail, "_%d", k);
        snprintf(buf, MAX_NAME + 1, "%.*s%s", MAX_NAME - t, stem, tail);
    }
}

static cvis_status add_alias(imp *im, int layer, const char *name)
{
    if (layer < 0 || !name[0] || strlen(name) > MAX_NAME || map_get(&im->names, name) >= 0)
        return CVIS_OK;
    CVIS_TRY(cvis__model_add_alias(im->m, layer, name));
    return remember_name(im, name);
}

/* Adds a layer fed by layers in[] (ownership of attr and w[] passes on,
 * even on failure).  It is named after the current node, with `suffix`
 * for helper layers. */
static cvis_status emit(imp *im, const char *suffix, const char *type, const cvis__op *op,
                        void *attr, int n_in, const int *in, int n_w, cvis_tensor **w,
                        const char *const *w_names, const unsigned char *trainable,
                        int conv_like, int *out_layer)
{
    cvis__shape sh[2], ins[2][CVIS__MAX_OP_INPUTS];
    cvis_status st = CVIS_OK;
    if (n_in < 1 || n_in > CVIS__MAX_OP_INPUTS)
        st = cvis__fail(CVIS_E_UNSUPPORTED, "a layer with %d inputs", n_in);
    /* Finite constants can still make infinite weights (Gemm's alpha times
     * its matrix, a scalar bias times beta); a model never holds one. */
    for (int k = 0; k < n_w && st == CVIS_OK; k++)
        if (w[k])
            st = cvis__check_finite(w[k]->data, w[k]->size, "a weight computed from its constants");
    for (int s = 0; s < 2 && st == CVIS_OK; s++) {
        for (int k = 0; k < n_in; k++)
            ins[s][k] = *layer_shape(im, in[k], s);
        memset(&sh[s], 0, sizeof sh[s]);
        st = op->shape(attr, n_in, ins[s], &sh[s]);
        /* every value's size fits in int64, so later products cannot overflow */
        int64_t count;
        if (st == CVIS_OK && cvis__shape_size(sh[s].ndim, sh[s].d, &count) != CVIS_OK)
            st = cvis__fail(CVIS_E_LIMIT, "a layer output of more values than libcvis can count");
    }
    int n_layers = im->m->g->n_layers;
    if (st == CVIS_OK && n_layers >= im->lsh_cap) {
        int cap = im->lsh_cap ? 2 * im->lsh_cap : 64;
        void *p;
        st = cvis__realloc(im->lsh, (size_t)cap * sizeof *im->lsh, "layer shapes", &p);
        if (st == CVIS_OK) {
            im->lsh = p;
            im->lsh_cap = cap;
        }
    }
    if (st != CVIS_OK) {
        cvis__free(attr);
        for (int k = 0; k < n_w; k++)
            cvis_tensor_free(w[k]);
        return st;
    }
    char name[MAX_NAME + 1];
    make_name(im, node_label(im->cur), suffix, name);
    int idx;
    CVIS_TRY(cvis__model_add_layer(im->m, name, NULL, type, op, attr, n_in, in, n_w, w, w_names,
                                   trainable, conv_like, &idx));
    im->lsh[idx][0] = sh[0];
    im->lsh[idx][1] = sh[1];
    CVIS_TRY(remember_name(im, name));
    *out_layer = idx;
    return CVIS_OK;
}

/* A copy of a small attribute struct for a layer (which takes ownership). */
static cvis_status dup_attr(const void *a, size_t size, void **out)
{
    void *p;
    CVIS_TRY(cvis__alloc(size, "layer attributes", &p));
    memcpy(p, a, size);
    *out = p;
    return CVIS_OK;
}

static cvis_status emit_plain(imp *im, const char *suffix, const char *type, const cvis__op *op,
                              const void *attr, size_t attr_size, int n_in, const int *in,
                              int *out_layer)
{
    void *a;
    CVIS_TRY(dup_attr(attr, attr_size, &a));
    return emit(im, suffix, type, op, a, n_in, in, 0, NULL, NULL, NULL, 0, out_layer);
}

/* Makes value `vi` a variable produced by `layer` with ONNX order `perm`. */
static void set_var(imp *im, int vi, int layer, const int *perm)
{
    if (vi < 0)
        return;
    val *v = &im->v[vi];
    val_release(v);
    v->kind = V_VAR;
    v->layer = layer;
    v->s[0] = *layer_shape(im, layer, 0);
    v->s[1] = *layer_shape(im, layer, 1);
    v->rank = v->s[0].ndim;
    memcpy(v->perm, perm, (size_t)v->rank * sizeof(int));
    v->conv_layer = -2;
}

static void set_output(imp *im, const cvis__onnx_node *n, int k, int layer, const int *perm)
{
    if (k < n->n_out)
        set_var(im, value_index(im, n->out[k]), layer, perm);
}

/* The layer holding value v with ONNX axes in order `want`, adding a
 * transpose layer when the order differs. */
static cvis_status to_perm(imp *im, val *v, const int *want, int *layer)
{
    if (perm_equal(v->perm, want, v->rank)) {
        *layer = v->layer;
        return CVIS_OK;
    }
    if (v->conv_layer != -2 && perm_equal(v->conv_perm, want, v->rank)) {
        *layer = v->conv_layer;
        return CVIS_OK;
    }
    cvis__transpose_attr t;
    memset(&t, 0, sizeof t);
    t.ndim = v->rank;
    int inv[CVIS_MAX_DIMS];
    for (int j = 0; j < v->rank; j++)
        inv[v->perm[j]] = j;
    for (int i = 0; i < v->rank; i++)
        t.perm[i] = inv[want[i]];
    CVIS_TRY(emit_plain(im, "transpose", "Transpose", &cvis__op_transpose, &t, sizeof t, 1,
                        &v->layer, layer));
    v->conv_layer = *layer;
    memcpy(v->conv_perm, want, (size_t)v->rank * sizeof(int));
    return CVIS_OK;
}

static const int NHWC[4] = {0, 2, 3, 1};

/* Feature order of a flattened value: order[k] is the ONNX position of
 * the feature at cvis position k. */
static cvis_status flat_order(const val *v, int64_t **out)
{
    int r = v->flat_rank;
    int64_t n = 1;
    for (int i = 1; i < r; i++)
        n *= v->flat_dims[i];
    int64_t *order;
    CVIS_TRY(cvis__alloc((size_t)(n ? n : 1) * sizeof *order, "feature order", (void **)&order));
    int64_t cd[CVIS_MAX_DIMS], idx[CVIS_MAX_DIMS] = {0}, ost[CVIS_MAX_DIMS], s = 1;
    for (int a = r - 1; a >= 1; a--) {
        ost[a] = s;
        s *= v->flat_dims[a];
    }
    for (int i = 1; i < r; i++)
        cd[i] = v->flat_dims[v->flat_perm[i]];
    for (int64_t k = 0; k < n; k++) {
        int64_t f = 0;
        for (int i = 1; i < r; i++)
            f += idx[i] * ost[v->flat_perm[i]];
        order[k] = f;
        for (int i = r - 1; i >= 1; i--) {
            if (++idx[i] < cd[i])
                break;
            idx[i] = 0;
        }
    }
    *out = order;
    return CVIS_OK;
}

/* Puts a flattened value's features in ONNX order: viewed with the axes
 * it was flattened from, transposed to ONNX order, flattened again (no
 * table as long as the features). */
static cvis_status materialize(imp *im, val *v)
{
    if (!v->flat)
        return CVIS_OK;
    int r = v->flat_rank, layer;
    cvis__reshape_attr unflat, flat;
    memset(&unflat, 0, sizeof unflat);
    memset(&flat, 0, sizeof flat);
    unflat.ndim = r - 1;
    for (int i = 1; i < r; i++)
        unflat.shape[i - 1] = v->flat_dims[v->flat_perm[i]];
    flat.ndim = 1;
    flat.shape[0] = v->s[0].d[1];
    cvis__transpose_attr t;
    memset(&t, 0, sizeof t);
    t.ndim = r;
    for (int i = 0; i < r; i++)
        for (int j = 0; j < r; j++)
            if (v->flat_perm[j] == i)
                t.perm[i] = j;
    CVIS_TRY(emit_plain(im, "unflatten", "Reshape", &cvis__op_reshape, &unflat, sizeof unflat, 1,
                        &v->layer, &layer));
    CVIS_TRY(emit_plain(im, "reorder", "Transpose", &cvis__op_transpose, &t, sizeof t, 1, &layer,
                        &layer));
    CVIS_TRY(emit_plain(im, "flatten", "Flatten", &cvis__op_reshape, &flat, sizeof flat, 1,
                        &layer, &layer));
    v->layer = layer;
    v->flat = 0;
    v->conv_layer = -2;
    return CVIS_OK;
}

static cvis_status need_var(imp *im, const cvis__onnx_node *n, int k, val **out)
{
    val *v = input_val(im, n, k);
    *out = NULL;
    if (!is_var(v))
        return cvis__fail(CVIS_E_UNSUPPORTED, "input %d must be computed from the image", k);
    *out = v;
    return CVIS_OK;
}

/* Consumers of value vi (node indices). */
static int n_consumers(const imp *im, int vi)
{
    return vi < 0 ? 0 : im->cons_start[vi + 1] - im->cons_start[vi];
}

static const cvis__onnx_node *sole_consumer(const imp *im, int vi)
{
    if (vi < 0 || im->is_output[vi] || n_consumers(im, vi) != 1)
        return NULL;
    int ni = im->cons[im->cons_start[vi]];
    return im->done[ni] ? NULL : &im->om->nodes[ni];
}

static int node_index(const imp *im, const cvis__onnx_node *n)
{
    return (int)(n - im->om->nodes);
}

/* Extra outputs of a node that something reads. */
static int extra_outputs_used(const imp *im, const cvis__onnx_node *n)
{
    for (int k = 1; k < n->n_out; k++) {
        int vi = value_index(im, n->out[k]);
        if (vi >= 0 && (n_consumers(im, vi) || im->is_output[vi]))
            return 1;
    }
    return 0;
}

/* ------------------------------------------------------- activations */

typedef struct actinfo {
    int kind;               /* 0: not an activation, 1: cvis activation, 2: unary op */
    int act;
    float alpha;
    cvis__unary_attr un;
} actinfo;

/* A scalar bound of Clip (an input since opset 11); *has = 0 if absent. */
static cvis_status clip_bound(imp *im, const cvis__onnx_node *n, int k, const char *attr_name,
                              float *v, int *has)
{
    *has = 0;
    if (im->opset < 11) {
        const cvis__onnx_attr *a = cvis__onnx_attr_find(n, attr_name);
        if (a) {
            *v = a->f;
            *has = 1;
        }
        return CVIS_OK;
    }
    if (k >= n->n_in || !n->in[k][0])
        return CVIS_OK;
    const cvis__onnx_tensor *t;
    CVIS_TRY(static_const(im, n, k, "a Clip bound", &t));
    if (t->count != 1)
        return cvis__fail(CVIS_E_FORMAT, "Clip bounds must be scalars");
    *v = (float)cvis__onnx_get(t, 0);
    *has = 1;
    return CVIS_OK;
}

/* What an element-wise activation node computes. */
static cvis_status activation_of(imp *im, const cvis__onnx_node *n, actinfo *a)
{
    const char *op = n->op_type;
    memset(a, 0, sizeof *a);
    a->kind = 1;
    if (!strcmp(op, "Relu")) {
        a->act = CVIS_ACT_RELU;
    } else if (!strcmp(op, "LeakyRelu")) {
        a->act = CVIS_ACT_LEAKY_RELU;
        a->alpha = attr_f(n, "alpha", 0.01f);
    } else if (!strcmp(op, "Sigmoid")) {
        a->act = CVIS_ACT_SIGMOID;
    } else if (!strcmp(op, "Tanh")) {
        a->act = CVIS_ACT_TANH;
    } else if (!strcmp(op, "HardSwish")) {
        a->act = CVIS_ACT_HARD_SWISH;
    } else if (!strcmp(op, "HardSigmoid")) {
        float al = attr_f(n, "alpha", 0.2f), be = attr_f(n, "beta", 0.5f);
        if (fabsf(al - 1.0f / 6.0f) < 1e-6f && be == 0.5f) {
            a->act = CVIS_ACT_HARD_SIGMOID;
        } else {
            a->kind = 2;
            a->un = (cvis__unary_attr){CVIS__UN_HARD_SIGMOID, al, be};
        }
    } else if (!strcmp(op, "Clip")) {
        float lo = -INFINITY, hi = INFINITY;
        int has_lo, has_hi;
        CVIS_TRY(clip_bound(im, n, 1, "min", &lo, &has_lo));
        CVIS_TRY(clip_bound(im, n, 2, "max", &hi, &has_hi));
        if (has_lo && lo == 0 && has_hi && hi == 6) {
            a->act = CVIS_ACT_RELU6;
        } else if (has_lo && lo == 0 && (!has_hi || isinf(hi))) {
            a->act = CVIS_ACT_RELU;
        } else {
            a->kind = 2;
            a->un = (cvis__unary_attr){CVIS__UN_CLIP, has_lo ? lo : -INFINITY,
                                       has_hi ? hi : INFINITY};
        }
    } else {
        static const struct {
            const char *op;
            int kind;
        } un[] = {{"Sqrt", CVIS__UN_SQRT}, {"Erf", CVIS__UN_ERF}, {"Exp", CVIS__UN_EXP},
                  {"Log", CVIS__UN_LOG}, {"Neg", CVIS__UN_NEG}, {"Abs", CVIS__UN_ABS},
                  {"Reciprocal", CVIS__UN_RECIPROCAL}, {"Softplus", CVIS__UN_SOFTPLUS},
                  {"Elu", CVIS__UN_ELU}, {"Gelu", CVIS__UN_GELU}};
        a->kind = 0;
        for (size_t k = 0; k < sizeof un / sizeof un[0]; k++)
            if (!strcmp(op, un[k].op)) {
                a->kind = 2;
                a->un = (cvis__unary_attr){un[k].kind, attr_f(n, "alpha", 1.0f), 0};
            }
        if (!strcmp(op, "Gelu") && strcmp(attr_s(n, "approximate", "none"), "none"))
            return cvis__fail(CVIS_E_UNSUPPORTED, "Gelu with tanh approximation");
    }
    return CVIS_OK;
}

/* x * gate(x) written as two nodes (Sigmoid or HardSigmoid(1/6, 1/2) and
 * Mul): the Mul node, or NULL. */
static const cvis__onnx_node *gate_mul(imp *im, const cvis__onnx_node *gate)
{
    int is_sig = !strcmp(gate->op_type, "Sigmoid");
    if (!is_sig && (strcmp(gate->op_type, "HardSigmoid") ||
                    fabsf(attr_f(gate, "alpha", 0.2f) - 1.0f / 6.0f) >= 1e-6f ||
                    attr_f(gate, "beta", 0.5f) != 0.5f))
        return NULL;
    if (gate->n_in < 1 || gate->n_out < 1)
        return NULL;
    const cvis__onnx_node *mul = sole_consumer(im, value_index(im, gate->out[0]));
    if (!mul || strcmp(mul->op_type, "Mul") || mul->n_in != 2)
        return NULL;
    const char *x = gate->in[0], *g = gate->out[0];
    if ((!strcmp(mul->in[0], x) && !strcmp(mul->in[1], g)) ||
        (!strcmp(mul->in[1], x) && !strcmp(mul->in[0], g)))
        return mul;
    return NULL;
}

/* Emits one activation layer for node n on `in_layer`; act->kind != 0. */
static cvis_status emit_activation(imp *im, const actinfo *a, const char *type, int in_layer,
                                   int conv_like, int *layer)
{
    if (a->kind == 1) {
        cvis__act_attr at = {a->act, a->alpha};
        void *p;
        CVIS_TRY(dup_attr(&at, sizeof at, &p));
        return emit(im, NULL, type, &cvis__op_activation, p, 1, &in_layer, 0, NULL, NULL, NULL,
                    conv_like, layer);
    }
    void *p;
    CVIS_TRY(dup_attr(&a->un, sizeof a->un, &p));
    return emit(im, NULL, type, &cvis__op_unary, p, 1, &in_layer, 0, NULL, NULL, NULL, conv_like,
                layer);
}

/* What follows value vi as its only consumer, for fusion: an activation
 * node (*act_node, with *mul for the x*gate(x) forms), or nothing. */
static cvis_status following_activation(imp *im, int vi, const cvis__onnx_node **act_node,
                                        const cvis__onnx_node **mul, actinfo *a)
{
    *act_node = NULL;
    *mul = NULL;
    memset(a, 0, sizeof *a);
    if (vi < 0 || im->is_output[vi])
        return CVIS_OK;
    int nc = n_consumers(im, vi);
    if (nc == 1) {
        const cvis__onnx_node *c = sole_consumer(im, vi);
        if (!c || c->n_in < 1 || value_index(im, c->in[0]) != vi || extra_outputs_used(im, c))
            return CVIS_OK;
        actinfo t;
        if (activation_of(im, c, &t) != CVIS_OK || t.kind == 0)
            return CVIS_OK;
        if (t.kind == 2 && (t.un.kind != CVIS__UN_CLIP && t.un.kind != CVIS__UN_HARD_SIGMOID &&
                            t.un.kind != CVIS__UN_ELU && t.un.kind != CVIS__UN_SOFTPLUS))
            return CVIS_OK;
        *act_node = c;
        *a = t;
        return CVIS_OK;
    }
    if (nc == 2) {
        for (int k = 0; k < 2; k++) {
            int ni = im->cons[im->cons_start[vi] + k];
            const cvis__onnx_node *g = &im->om->nodes[ni];
            if (im->done[ni] || g->n_in < 1 || value_index(im, g->in[0]) != vi)
                continue;
            const cvis__onnx_node *m = gate_mul(im, g);
            if (m && value_index(im, m->out[0]) >= 0) {
                *act_node = g;
                *mul = m;
                a->kind = !strcmp(g->op_type, "Sigmoid") ? 2 : 1;
                a->act = CVIS_ACT_HARD_SWISH;
                a->un = (cvis__unary_attr){CVIS__UN_SILU, 0, 0};
                return CVIS_OK;
            }
        }
    }
    return CVIS_OK;
}

/* ------------------------------------------------------------ weights */

static cvis_status new_weight(int ndim, const int64_t *shape, cvis_tensor **out)
{
    return cvis__tensor_new(ndim, shape, 0, out);
}

static void free_weights(cvis_tensor **w, int n)
{
    for (int k = 0; k < n; k++)
        cvis_tensor_free(w[k]);
}

/* A vector weight of n values from a constant with n values. */
static cvis_status vector_weight(const cvis__onnx_tensor *t, int64_t n, float scale,
                                 const char *what, cvis_tensor **out)
{
    if (t->count != n)
        return cvis__fail(CVIS_E_SHAPE, "%s has %lld values, expected %lld", what,
                          (long long)t->count, (long long)n);
    CVIS_TRY(const_floats(t, what));
    CVIS_TRY(new_weight(1, &n, out));
    for (int64_t k = 0; k < n; k++)
        (*out)->data[k] = (float)(scale * cvis__onnx_get(t, k));
    return CVIS_OK;
}

/* ---------------------------------------------------------- handlers */

static cvis_status set_alias_outputs(imp *im, const cvis__onnx_node *n, val *src)
{
    int vi = value_index(im, n->out[0]);
    if (vi < 0)
        return CVIS_OK;
    val copy = *src;
    copy.c[0] = copy.c[1] = NULL;
    copy.own[0] = copy.own[1] = 0;
    val_release(&im->v[vi]);
    im->v[vi] = copy;
    return add_alias(im, src->layer, n->name);
}

static cvis_status h_identity(imp *im, const cvis__onnx_node *n)
{
    val *x;
    CVIS_TRY(need_var(im, n, 0, &x));
    if (extra_outputs_used(im, n))
        return cvis__fail(CVIS_E_UNSUPPORTED, "its second output is used");
    if (!strcmp(n->op_type, "Cast")) {
        int to = (int)attr_i(n, "to", 0);
        if (!cvis__onnx_is_float_type(to))
            return cvis__fail(CVIS_E_UNSUPPORTED, "a cast of image data to type %d", to);
    }
    return set_alias_outputs(im, n, x);
}

static cvis_status h_conv(imp *im, const cvis__onnx_node *n)
{
    val *x;
    const cvis__onnx_tensor *W, *B = NULL;
    CVIS_TRY(need_var(im, n, 0, &x));
    CVIS_TRY(static_const(im, n, 1, "Conv's weight", &W));
    if (n->n_in > 2 && n->in[2][0])
        CVIS_TRY(static_const(im, n, 2, "Conv's bias", &B));
    if (W->ndim != 4 || x->rank != 4)
        return cvis__fail(CVIS_E_UNSUPPORTED, "only 2-D convolutions are supported (weight of "
                          "rank %d, input of rank %d)", W->ndim, x->rank);
    CVIS_TRY(const_floats(W, "Conv's weight"));
    int64_t xd[2][CVIS_MAX_DIMS];
    onnx_dims(x, 0, xd[0]);
    onnx_dims(x, 1, xd[1]);
    int64_t group = attr_i(n, "group", 1), cout = W->dims[0], cg = W->dims[1];
    int64_t kh = W->dims[2], kw = W->dims[3];
    if (group < 1 || group > (1 << 24) || xd[0][1] != xd[1][1] || cg * group != xd[0][1] ||
        cout % group ||
        cout < 1 || kh < 1 || kw < 1 || cout > (1 << 24) || kh > 4096 || kw > 4096)
        return cvis__fail(CVIS_E_SHAPE, "Conv weight (%lld, %lld, %lld, %lld) with %lld groups "
                          "does not fit %lld input channels", (long long)cout, (long long)cg,
                          (long long)kh, (long long)kw, (long long)group, (long long)xd[0][1]);
    int64_t ks[4], st[4], dl[4], pads[8];
    int nks, nst, ndl, npd;
    CVIS_TRY(attr_ints(n, "kernel_shape", ks, 4, &nks));
    CVIS_TRY(attr_ints(n, "strides", st, 4, &nst));
    CVIS_TRY(attr_ints(n, "dilations", dl, 4, &ndl));
    CVIS_TRY(attr_ints(n, "pads", pads, 8, &npd));
    if ((nks >= 0 && (nks != 2 || ks[0] != kh || ks[1] != kw)) || (nst >= 0 && nst != 2) ||
        (ndl >= 0 && ndl != 2) || (npd >= 0 && npd != 4))
        return cvis__fail(CVIS_E_FORMAT, "Conv attributes do not describe a 2-D convolution");
    cvis__conv_attr a;
    memset(&a, 0, sizeof a);
    a.kh = (int)kh;
    a.kw = (int)kw;
    a.sh = nst >= 0 ? (int)st[0] : 1;
    a.sw = nst >= 0 ? (int)st[1] : 1;
    a.dh = ndl >= 0 ? (int)dl[0] : 1;
    a.dw = ndl >= 0 ? (int)dl[1] : 1;
    if (nst >= 0 && (st[0] < 1 || st[1] < 1 || st[0] > 4096 || st[1] > 4096))
        return cvis__fail(CVIS_E_FORMAT, "Conv strides must be positive");
    if (ndl >= 0 && (dl[0] < 1 || dl[1] < 1 || dl[0] > 4096 || dl[1] > 4096))
        return cvis__fail(CVIS_E_FORMAT, "Conv dilations must be positive");
    a.groups = (int)group;
    a.cout = (int)cout;
    const char *ap = attr_s(n, "auto_pad", "NOTSET");
    if (!strcmp(ap, "NOTSET")) {
        a.pad_mode = CVIS__PAD_EXPLICIT;
        if (npd >= 0) {
            for (int k = 0; k < 4; k++)
                if (pads[k] < 0 || pads[k] > 65536)
                    return cvis__fail(CVIS_E_UNSUPPORTED, "Conv pads must lie in 0..65536");
            a.pt = (int)pads[0];
            a.pl = (int)pads[1];
            a.pb = (int)pads[2];
            a.pr = (int)pads[3];
        }
    } else if (!strcmp(ap, "VALID")) {
        a.pad_mode = CVIS__PAD_VALID;
    } else if (!strcmp(ap, "SAME_UPPER")) {
        a.pad_mode = CVIS__PAD_SAME_UPPER;
    } else if (!strcmp(ap, "SAME_LOWER")) {
        a.pad_mode = CVIS__PAD_SAME_LOWER;
    } else {
        return cvis__fail(CVIS_E_FORMAT, "Conv auto_pad \"%s\"", ap);
    }
    a.has_bias = B != NULL;
    a.act = CVIS_ACT_LINEAR;
    int in_layer;
    CVIS_TRY(to_perm(im, x, NHWC, &in_layer));
    /* BatchNormalization and an activation that follow as only consumers
     * join the convolution */
    int vi = value_index(im, n->out[0]);
    const cvis__onnx_node *bn = sole_consumer(im, vi), *act_node = NULL, *mul = NULL;
    const cvis__onnx_tensor *bnp[4];
    if (bn && (strcmp(bn->op_type, "BatchNormalization") || bn->n_in < 5 ||
               value_index(im, bn->in[0]) != vi || extra_outputs_used(im, bn) ||
               attr_i(bn, "training_mode", 0)))
        bn = NULL;
    for (int k = 0; bn && k < 4; k++) {
        val *p = input_val(im, bn, k + 1);
        if (!is_const(p) || !cvis__onnx_tensor_equal(p->c[0], p->c[1]) || p->c[0]->count != cout)
            bn = NULL;
        else
            bnp[k] = p->c[0];
    }
    if (bn) {
        a.has_bn = 1;
        a.bn_eps = attr_f(bn, "epsilon", 1e-5f);
        vi = value_index(im, bn->out[0]);
    }
    actinfo act;
    CVIS_TRY(following_activation(im, vi, &act_node, &mul, &act));
    int fused = act_node && !mul && act.kind == 1 && cvis__act_fusable(act.act);
    if (fused) {
        a.act = act.act;
        a.alpha = act.alpha;
    }
    /* weights: kernel (kh, kw, cin/groups, cout), bias, batch norm */
    cvis_tensor *w[6] = {0};
    const char *names[6];
    unsigned char trainable[6];
    int nw = 0;
    cvis_status s = new_weight(4, (int64_t[]){kh, kw, cg, cout}, &w[nw]);
    if (s == CVIS_OK) {
        /* (cout, cg, kh, kw) to (kh, kw, cg, cout), 16 output channels at a
         * time: 16 sequential reads and one cache line of writes per step */
        float *k = w[nw]->data;
        int64_t per_o = cg * kh * kw;
        for (int64_t o0 = 0; o0 < cout; o0 += 16) {
            int64_t o1 = o0 + 16 < cout ? o0 + 16 : cout;
            for (int64_t c = 0; c < cg; c++)
                for (int64_t y = 0; y < kh; y++)
                    for (int64_t xx = 0; xx < kw; xx++) {
                        int64_t from = (c * kh + y) * kw + xx;
                        float *to = k + ((y * kw + xx) * cg + c) * cout;
                        for (int64_t o = o0; o < o1; o++)
                            to[o] = W->f ? W->f[o * per_o + from]
                                         : (float)cvis__onnx_get(W, o * per_o + from);
                    }
        }
        names[nw] = "kernel";
        trainable[nw++] = 1;
    }
    if (s == CVIS_OK && B) {
        s = vector_weight(B, cout, 1.0f, "Conv's bias", &w[nw]);
        names[nw] = "bias";
        trainable[nw++] = 1;
    }
    static const char *bn_names[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
    for (int k = 0; s == CVIS_OK && bn && k < 4; k++) {
        s = vector_weight(bnp[k], cout, 1.0f, "BatchNormalization's parameters", &w[nw]);
        names[nw] = bn_names[k];
        trainable[nw++] = k < 2;
    }
    if (s == CVIS_OK && bn)
        for (int64_t c = 0; c < cout; c++)
            if (!(w[nw - 1]->data[c] + a.bn_eps > 0))
                s = cvis__fail(CVIS_E_FORMAT, "BatchNormalization variance is negative");
    if (s != CVIS_OK) {
        free_weights(w, nw);
        return s;
    }
    void *attr;
    if ((s = dup_attr(&a, sizeof a, &attr)) != CVIS_OK) {
        free_weights(w, nw);
        return s;
    }
    int layer;
    CVIS_TRY(emit(im, NULL, "Conv", &cvis__op_conv2d, attr, 1, &in_layer, nw, w, names,
                  trainable, 1, &layer));
    if (bn) {
        im->done[node_index(im, bn)] = 1;
        CVIS_TRY(add_alias(im, layer, bn->name));
    }
    if (fused) {
        im->done[node_index(im, act_node)] = 1;
        CVIS_TRY(add_alias(im, layer, act_node->name));
        vi = value_index(im, act_node->out[0]);
    }
    set_var(im, vi, layer, NHWC);
    if (act_node && !fused) {
        /* an activation that needs its input (hard swish, SiLU) stays a
         * layer of its own, convolution-like so that its output is what
         * the CAM methods find */
        const cvis__onnx_node *last = mul ? mul : act_node;
        const cvis__onnx_node *keep = im->cur;
        im->cur = last;
        int al;
        /* x * HardSigmoid(x) is the HardSwish op of later opsets; SiLU has
         * no ONNX op and is named after its Mul */
        const char *type = !mul ? act_node->op_type
                           : act.kind == 1 ? "HardSwish" : "Mul";
        s = emit_activation(im, &act, type, layer, 1, &al);
        im->cur = keep;
        CVIS_TRY(s);
        im->done[node_index(im, act_node)] = 1;
        if (mul) {
            im->done[node_index(im, mul)] = 1;
            CVIS_TRY(add_alias(im, al, act_node->name));
        }
        set_var(im, value_index(im, last->out[0]), al, NHWC);
    }
    return CVIS_OK;
}

/* Standalone activations (and element-wise functions of one input). */
static cvis_status h_activation(imp *im, const cvis__onnx_node *n)
{
    val *x;
    CVIS_TRY(need_var(im, n, 0, &x));
    actinfo a;
    CVIS_TRY(activation_of(im, n, &a));
    const cvis__onnx_node *mul = gate_mul(im, n);
    const char *type = n->op_type;
    if (mul) {
        if (!strcmp(n->op_type, "Sigmoid")) {
            a.kind = 2;
            a.un = (cvis__unary_attr){CVIS__UN_SILU, 0, 0};
            type = "Mul";
        } else {
            a.kind = 1;
            a.act = CVIS_ACT_HARD_SWISH;
            type = "HardSwish";
        }
    }
    int layer;
    const cvis__onnx_node *keep = im->cur;
    if (mul)
        im->cur = mul;
    cvis_status st = emit_activation(im, &a, type, x->layer, 0, &layer);
    im->cur = keep;
    CVIS_TRY(st);
    const cvis__onnx_node *last = n;
    if (mul) {
        im->done[node_index(im, mul)] = 1;
        CVIS_TRY(add_alias(im, layer, n->name));
        last = mul;
    }
    int vi = value_index(im, last->out[0]);
    val src = *x;
    set_var(im, vi, layer, src.perm);
    if (vi >= 0 && src.flat) { /* element-wise: the feature order is kept */
        val *o = &im->v[vi];
        o->flat = 1;
        o->flat_rank = src.flat_rank;
        memcpy(o->flat_dims, src.flat_dims, sizeof o->flat_dims);
        memcpy(o->flat_perm, src.flat_perm, sizeof o->flat_perm);
    }
    return CVIS_OK;
}

/* Softmax (and LogSoftmax as softmax then log) over one axis. */
static cvis_status h_softmax(imp *im, const cvis__onnx_node *n)
{
    val *x;
    CVIS_TRY(need_var(im, n, 0, &x));
    CVIS_TRY(materialize(im, x));
    int r = x->rank, ax;
    CVIS_TRY(norm_axis(attr_i(n, "axis", im->opset >= 13 ? -1 : 1), r, &ax));
    if (ax == 0)
        return cvis__fail(CVIS_E_UNSUPPORTED, "softmax over the batch axis");
    if (im->opset < 13) { /* over the flattened axes from `axis` on */
        int64_t d[2][CVIS_MAX_DIMS];
        onnx_dims(x, 0, d[0]);
        onnx_dims(x, 1, d[1]);
        for (int k = ax + 1; k < r; k++)
            if (d[0][k] != 1 || d[1][k] != 1)
                return cvis__fail(CVIS_E_UNSUPPORTED, "softmax over several axes (opset %lld)",
                                  (long long)im->opset);
    }
    /* the axis goes last, the others keep their order */
    int want[CVIS_MAX_DIMS], j = 0;
    for (int i = 0; i < r; i++)
        if (x->perm[i] != ax)
            want[j++] = x->perm[i];
    want[j] = ax;
    int in_layer, layer;
    CVIS_TRY(to_perm(im, x, want, &in_layer));
    cvis__act_attr a = {CVIS_ACT_SOFTMAX, 0};
    CVIS_TRY(emit_plain(im, NULL, n->op_type, &cvis__op_activation, &a, sizeof a, 1, &in_layer,
                        &layer));
    if (!strcmp(n->op_type, "LogSoftmax")) {
        cvis__unary_attr u = {CVIS__UN_LOG, 0, 0};
        CVIS_TRY(emit_plain(im, "log", "LogSoftmax", &cvis__op_unary, &u, sizeof u, 1, &layer,
                            &layer));
    }
    set_output(im, n, 0, layer, want);
    return CVIS_OK;
}

/* Dense weights from an ONNX (K, N) matrix (transposed when transB),
 * rows reordered for a flattened input. */
static cvis_status dense_kernel(const cvis__onnx_tensor *B, int transB, float alpha,
                                const val *a, int64_t *units, cvis_tensor **out)
{
    if (B->ndim != 2)
        return cvis__fail(CVIS_E_UNSUPPORTED, "a weight matrix of rank %d", B->ndim);
    CVIS_TRY(const_floats(B, "the weight matrix"));
    int64_t K = transB ? B->dims[1] : B->dims[0], N = transB ? B->dims[0] : B->dims[1];
    int64_t in = a->s[0].d[a->rank - 1];
    if (K != in || in != a->s[1].d[a->rank - 1] || N < 1)
        return cvis__fail(CVIS_E_SHAPE, "a (%lld, %lld) weight matrix for %lld input features",
                          (long long)K, (long long)N, (long long)in);
    int64_t *order = NULL;
    if (a->flat)
        CVIS_TRY(flat_order(a, &order));
    cvis_status st = new_weight(2, (int64_t[]){K, N}, out);
    if (st != CVIS_OK) {
        cvis__free(order);
        return st;
    }
    float *k = (*out)->data;
    for (int64_t r = 0; r < K; r++) {
        int64_t src = order ? order[r] : r;
        for (int64_t c = 0; c < N; c++)
            k[r * N + c] = alpha * (float)cvis__onnx_get(B, transB ? c * K + src : src * N + c);
    }
    cvis__free(order);
    *units = N;
    return CVIS_OK;
}

/* Gemm and MatMul with a constant weight matrix: a dense layer, with a
 * following bias Add and activation merged into it. */
static cvis_status emit_dense(imp *im, const cvis__onnx_node *n, val *x,
                              const cvis__onnx_tensor *B, int transB, float alpha,
                              const cvis__onnx_tensor *C, float beta)
{
    if (x->rank < 2)
        return cvis__fail(CVIS_E_UNSUPPORTED, "a matrix product of a rank-%d input", x->rank);
    int in_layer = x->layer;
    val xv = *x;
    if (x->perm[x->rank - 1] != x->rank - 1) { /* features must be the last cvis axis */
        int want[CVIS_MAX_DIMS], j = 0;
        for (int i = 0; i < x->rank; i++)
            if (x->perm[i] != x->rank - 1)
                want[j++] = x->perm[i];
        want[j] = x->rank - 1;
        CVIS_TRY(to_perm(im, x, want, &in_layer));
        memcpy(xv.perm, want, sizeof want);
        xv.s[0] = *layer_shape(im, in_layer, 0);
        xv.s[1] = *layer_shape(im, in_layer, 1);
        xv.layer = in_layer;
    }
    if (xv.flat && xv.rank != 2) {
        CVIS_TRY(materialize(im, x));
        xv = *x;
        in_layer = x->layer;
    }
    x = &xv;
    cvis_tensor *w[2] = {0};
    int64_t units;
    CVIS_TRY(dense_kernel(B, transB, alpha, x, &units, &w[0]));
    int vi = value_index(im, n->out[0]);
    const cvis__onnx_node *add = NULL;
    if (!C) { /* MatMul then Add of a bias vector */
        const cvis__onnx_node *c = sole_consumer(im, vi);
        if (c && !strcmp(c->op_type, "Add") && c->n_in == 2) {
            int other = value_index(im, c->in[0]) == vi ? 1 : 0;
            val *b = input_val(im, c, other);
            if (value_index(im, c->in[1 - other]) == vi && is_const(b) &&
                cvis__onnx_tensor_equal(b->c[0], b->c[1]) && b->c[0]->count == units &&
                b->c[0]->ndim >= 1 && b->c[0]->dims[b->c[0]->ndim - 1] == units &&
                b->c[0]->ndim <= x->rank) {
                add = c;
                C = b->c[0];
                beta = 1.0f;
                vi = value_index(im, c->out[0]);
            }
        }
    }
    cvis_status st = CVIS_OK;
    if (C) {
        if (C->count == 1 && units > 1) {
            st = new_weight(1, &units, &w[1]);
            if (st == CVIS_OK) {
                float v = (float)(beta * cvis__onnx_get(C, 0));
                for (int64_t u = 0; u < units; u++)
                    w[1]->data[u] = v;
            }
        } else {
            st = vector_weight(C, units, beta, "the bias", &w[1]);
        }
        if (st == CVIS_OK && C->ndim == 2 && C->dims[0] != 1)
            st = cvis__fail(CVIS_E_UNSUPPORTED, "a bias that differs per batch row");
    }
    if (st != CVIS_OK) {
        free_weights(w, 2);
        return st;
    }
    cvis__dense_attr a = {(int)units, C != NULL, CVIS_ACT_LINEAR, 0};
    const cvis__onnx_node *act_node, *mul;
    actinfo act;
    CVIS_TRY(following_activation(im, vi, &act_node, &mul, &act));
    if (act_node && !mul && act.kind == 1 && cvis__act_fusable(act.act)) {
        a.act = act.act;
        a.alpha = act.alpha;
    } else {
        act_node = NULL;
        /* a Softmax over the features as the only consumer */
        const cvis__onnx_node *c = sole_consumer(im, vi);
        if (c && !strcmp(c->op_type, "Softmax") && x->rank == 2) {
            int64_t ax = attr_i(c, "axis", im->opset >= 13 ? -1 : 1);
            if (ax == 1 || ax == -1) {
                a.act = CVIS_ACT_SOFTMAX;
                act_node = c;
            }
        }
    }
    void *attr;
    if ((st = dup_attr(&a, sizeof a, &attr)) != CVIS_OK) {
        free_weights(w, 2);
        return st;
    }
    static const char *names[2] = {"kernel", "bias"};
    int layer;
    CVIS_TRY(emit(im, NULL, n->op_type, &cvis__op_dense, attr, 1, &in_layer, C ? 2 : 1, w, names,
                  NULL, 0, &layer));
    if (add) {
        im->done[node_index(im, add)] = 1;
        CVIS_TRY(add_alias(im, layer, add->name));
    }
    if (act_node) {
        im->done[node_index(im, act_node)] = 1;
        CVIS_TRY(add_alias(im, layer, act_node->name));
        vi = value_index(im, act_node->out[0]);
    }
    int perm[CVIS_MAX_DIMS];
    memcpy(perm, x->perm, sizeof perm);
    set_var(im, vi, layer, perm);
    return CVIS_OK;
}

static cvis_status h_gemm(imp *im, const cvis__onnx_node *n)
{
    val *x;
    const cvis__onnx_tensor *B, *C = NULL;
    CVIS_TRY(need_var(im, n, 0, &x));
    if (attr_i(n, "transA", 0))
        return cvis__fail(CVIS_E_UNSUPPORTED, "Gemm with transA on image data");
    if (x->rank != 2)
        return cvis__fail(CVIS_E_FORMAT, "Gemm of a rank-%d input", x->rank);
    CVIS_TRY(static_const(im, n, 1, "Gemm's B", &B));
    if (n->n_in > 2 && n->in[2][0])
        CVIS_TRY(static_const(im, n, 2, "Gemm's C", &C));
    return emit_dense(im, n, x, B, (int)attr_i(n, "transB", 0), attr_f(n, "alpha", 1.0f), C,
                      attr_f(n, "beta", 1.0f));
}

static cvis_status h_matmul(imp *im, const cvis__onnx_node *n)
{
    val *a = input_val(im, n, 0), *b = input_val(im, n, 1);
    if (is_var(a) && is_const(b)) {
        const cvis__onnx_tensor *B;
        CVIS_TRY(static_const(im, n, 1, "MatMul's weight", &B));
        if (B->ndim != 2)
            return cvis__fail(CVIS_E_UNSUPPORTED, "MatMul with a rank-%d constant", B->ndim);
        return emit_dense(im, n, a, B, 0, 1.0f, NULL, 1.0f);
    }
    if (!is_var(a) || !is_var(b))
        return cvis__fail(CVIS_E_UNSUPPORTED, "MatMul with a constant first operand");
    if (a->rank < 2 || a->rank != b->rank)
        return cvis__fail(CVIS_E_UNSUPPORTED, "MatMul of ranks %d and %d", a->rank, b->rank);
    CVIS_TRY(materialize(im, a));
    CVIS_TRY(materialize(im, b));
    int id[CVIS_MAX_DIMS], in[2], layer;
    perm_identity(id, a->rank);
    CVIS_TRY(to_perm(im, a, id, &in[0]));
    CVIS_TRY(to_perm(im, b, id, &in[1]));
    char none = 0;
    CVIS_TRY(emit_plain(im, NULL, "MatMul", &cvis__op_matmul, &none, 1, 2, in, &layer));
    set_output(im, n, 0, layer, id);
    return CVIS_OK;
}

/* A constant operand in the layout of variable x: padded to x's rank with
 * leading ones and permuted like x.  It must broadcast to x's shape. */
static cvis_status const_like(const val *x, const cvis__onnx_tensor *c, cvis_tensor **out)
{
    int r = x->rank;
    if (c->ndim > r)
        return cvis__fail(CVIS_E_UNSUPPORTED, "a rank-%d constant against a rank-%d input",
                          c->ndim, r);
    CVIS_TRY(const_floats(c, "the constant operand"));
    int64_t cd[CVIS_MAX_DIMS] = {1}, xd[2][CVIS_MAX_DIMS];
    onnx_dims(x, 0, xd[0]);
    onnx_dims(x, 1, xd[1]);
    for (int i = 0; i < r; i++) {
        int j = i - (r - c->ndim);
        cd[i] = j >= 0 ? c->dims[j] : 1;
        if (cd[i] != 1 && (cd[i] != xd[0][i] || cd[i] != xd[1][i]))
            return cvis__fail(CVIS_E_UNSUPPORTED,
                              "a constant of %lld on axis %d does not broadcast to the input",
                              (long long)cd[i], i);
    }
    if (cd[0] != 1)
        return cvis__fail(CVIS_E_UNSUPPORTED, "a constant that differs along the batch axis");
    int64_t shape[CVIS_MAX_DIMS], st[CVIS_MAX_DIMS], s = 1;
    for (int i = r - 1; i >= 0; i--) {
        st[i] = s;
        s *= cd[i];
    }
    for (int i = 0; i < r; i++)
        shape[i] = cd[x->perm[i]];
    CVIS_TRY(new_weight(r, shape, out));
    int64_t idx[CVIS_MAX_DIMS] = {0};
    for (int64_t e = 0; e < (*out)->size; e++) {
        int64_t off = 0;
        for (int i = 0; i < r; i++)
            off += idx[i] * st[x->perm[i]];
        (*out)->data[e] = (float)cvis__onnx_get(c, off);
        for (int i = r - 1; i >= 0; i--) {
            if (++idx[i] < shape[i])
                break;
            idx[i] = 0;
        }
    }
    return CVIS_OK;
}

static int binary_kind(const char *op)
{
    return !strcmp(op, "Add") ? CVIS__BIN_ADD : !strcmp(op, "Sub") ? CVIS__BIN_SUB
           : !strcmp(op, "Mul") ? CVIS__BIN_MUL : !strcmp(op, "Div") ? CVIS__BIN_DIV
                                                  : CVIS__BINC_POW;
}

static void copy_flat(val *dst, const val *src)
{
    dst->flat = 1;
    dst->flat_rank = src->flat_rank;
    memcpy(dst->flat_dims, src->flat_dims, sizeof dst->flat_dims);
    memcpy(dst->flat_perm, src->flat_perm, sizeof dst->flat_perm);
}

/* A constant scalar input k of node n equal to v (as float32). */
static int scalar_input_is(imp *im, const cvis__onnx_node *n, int k, float v)
{
    val *c = input_val(im, n, k);
    return is_const(c) && c->c[0] == c->c[1] && c->c[0]->count == 1 &&
           (float)cvis__onnx_get(c->c[0], 0) == v;
}

/* The other input of a two-input node, given one input's value index. */
static int other_input(imp *im, const cvis__onnx_node *n, int vi)
{
    if (n->n_in != 2)
        return -1;
    if (value_index(im, n->in[0]) == vi)
        return 1;
    return value_index(im, n->in[1]) == vi ? 0 : -1;
}

/* GELU as PyTorch exports it: Div(x, sqrt 2), Erf, Add 1, Mul x, Mul 1/2,
 * each the only consumer of the one before.  The last Mul, or NULL. */
static const cvis__onnx_node *gelu_chain(imp *im, const cvis__onnx_node *div,
                                         const cvis__onnx_node **mid)
{
    int x = value_index(im, div->in[0]);
    if (div->n_in != 2 || !scalar_input_is(im, div, 1, (float)M_SQRT2))
        return NULL;
    const cvis__onnx_node *erf = sole_consumer(im, value_index(im, div->out[0]));
    if (!erf || strcmp(erf->op_type, "Erf"))
        return NULL;
    int e = value_index(im, erf->out[0]);
    const cvis__onnx_node *add = sole_consumer(im, e);
    int k = add && !strcmp(add->op_type, "Add") ? other_input(im, add, e) : -1;
    if (k < 0 || !scalar_input_is(im, add, k, 1.0f))
        return NULL;
    int a = value_index(im, add->out[0]);
    const cvis__onnx_node *mul = sole_consumer(im, a);
    if (!mul || strcmp(mul->op_type, "Mul") || other_input(im, mul, a) < 0 ||
        value_index(im, mul->in[other_input(im, mul, a)]) != x)
        return NULL;
    int m = value_index(im, mul->out[0]);
    const cvis__onnx_node *half = sole_consumer(im, m);
    k = half && !strcmp(half->op_type, "Mul") ? other_input(im, half, m) : -1;
    if (k < 0 || !scalar_input_is(im, half, k, 0.5f))
        return NULL;
    mid[0] = erf;
    mid[1] = add;
    mid[2] = mul;
    return half;
}

static cvis_status h_binary(imp *im, const cvis__onnx_node *n)
{
    const cvis__onnx_node *mid[3], *last;
    if (!strcmp(n->op_type, "Div") && is_var(input_val(im, n, 0)) &&
        (last = gelu_chain(im, n, mid))) {
        /* one GELU layer, named after the last node */
        val *x = input_val(im, n, 0);
        cvis__unary_attr u = {CVIS__UN_GELU, 0, 0};
        const cvis__onnx_node *keep = im->cur;
        int layer;
        im->cur = last;
        cvis_status st = emit_plain(im, NULL, "Gelu", &cvis__op_unary, &u, sizeof u, 1, &x->layer,
                                    &layer);
        im->cur = keep;
        CVIS_TRY(st);
        CVIS_TRY(add_alias(im, layer, n->name));
        for (int k = 0; k < 3; k++) {
            im->done[node_index(im, mid[k])] = 1;
            CVIS_TRY(add_alias(im, layer, mid[k]->name));
        }
        im->done[node_index(im, last)] = 1;
        val src = *x;
        int vi = value_index(im, last->out[0]);
        set_var(im, vi, layer, src.perm);
        if (src.flat && vi >= 0)
            copy_flat(&im->v[vi], &src);
        return CVIS_OK;
    }
    val *a = input_val(im, n, 0), *b = input_val(im, n, 1);
    int kind = binary_kind(n->op_type), layer;
    if (n->n_in != 2 || !a || !b)
        return cvis__fail(CVIS_E_FORMAT, "%s takes two inputs", n->op_type);
    if (is_var(a) && is_var(b)) {
        if (kind == CVIS__BINC_POW)
            return cvis__fail(CVIS_E_UNSUPPORTED, "Pow with a computed exponent");
        if (a->rank != b->rank)
            return cvis__fail(CVIS_E_UNSUPPORTED, "%s of inputs of ranks %d and %d", n->op_type,
                              a->rank, b->rank);
        int keep_flat = a->flat && b->flat && a->flat_rank == b->flat_rank &&
                        perm_equal(a->flat_perm, b->flat_perm, a->flat_rank) &&
                        !memcmp(a->flat_dims, b->flat_dims, sizeof a->flat_dims);
        if (!keep_flat) {
            CVIS_TRY(materialize(im, a));
            CVIS_TRY(materialize(im, b));
        }
        int in[2] = {a->layer, 0};
        CVIS_TRY(to_perm(im, b, a->perm, &in[1]));
        cvis__binary_attr at = {kind};
        CVIS_TRY(emit_plain(im, NULL, n->op_type, &cvis__op_binary, &at, sizeof at, 2, in,
                            &layer));
        val src = *a;
        int vi = value_index(im, n->out[0]);
        set_var(im, vi, layer, src.perm);
        if (keep_flat && vi >= 0)
            copy_flat(&im->v[vi], &src);
        return CVIS_OK;
    }
    int first = is_const(a);
    val *x = first ? b : a;
    const cvis__onnx_tensor *c;
    CVIS_TRY(static_const(im, n, first ? 0 : 1, "the constant operand", &c));
    if (c->count == 1 && kind == CVIS__BINC_POW && !first) { /* x^p */
        cvis__unary_attr u = {CVIS__UN_POW, (float)cvis__onnx_get(c, 0), 0};
        if (!isfinite(u.a))
            return cvis__fail(CVIS_E_NONFINITE, "Pow exponent is not finite");
        CVIS_TRY(emit_plain(im, NULL, n->op_type, &cvis__op_unary, &u, sizeof u, 1, &x->layer,
                            &layer));
    } else {
        if (c->count != 1)
            CVIS_TRY(materialize(im, x));
        cvis_tensor *w;
        CVIS_TRY(const_like(x, c, &w));
        cvis__binary_const_attr at = {kind, first};
        void *p;
        cvis_status st = dup_attr(&at, sizeof at, &p);
        if (st != CVIS_OK) {
            cvis_tensor_free(w);
            return st;
        }
        int idx = first ? 0 : 1;
        val *cv = input_val(im, n, idx);
        unsigned char trainable = cv->from_init && c->count > 1;
        static const char *names[1] = {"value"};
        CVIS_TRY(emit(im, NULL, n->op_type, &cvis__op_binary_const, p, 1, &x->layer, 1, &w, names,
                      &trainable, 0, &layer));
    }
    val src = *x;
    int vi = value_index(im, n->out[0]);
    set_var(im, vi, layer, src.perm);
    if (src.flat && vi >= 0)
        copy_flat(&im->v[vi], &src);
    return CVIS_OK;
}

/* Shared by MaxPool and AveragePool: the window attributes. */
static cvis_status pool_attr(const cvis__onnx_node *n, cvis__pool_attr *a)
{
    int64_t ks[4], st[4], pads[8], dl[4];
    int nks, nst, npd, ndl;
    CVIS_TRY(attr_ints(n, "kernel_shape", ks, 4, &nks));
    CVIS_TRY(attr_ints(n, "strides", st, 4, &nst));
    CVIS_TRY(attr_ints(n, "pads", pads, 8, &npd));
    CVIS_TRY(attr_ints(n, "dilations", dl, 4, &ndl));
    if (nks != 2 || (nst >= 0 && nst != 2) || (npd >= 0 && npd != 4))
        return cvis__fail(CVIS_E_UNSUPPORTED, "only 2-D pooling is supported");
    if (ndl >= 0 && (ndl != 2 || dl[0] != 1 || dl[1] != 1))
        return cvis__fail(CVIS_E_UNSUPPORTED, "pooling with dilations");
    for (int k = 0; k < 2; k++)
        if (ks[k] < 1 || ks[k] > 65536 || (nst >= 0 && (st[k] < 1 || st[k] > 65536)))
            return cvis__fail(CVIS_E_FORMAT, "pooling window and strides must be positive");
    for (int k = 0; npd >= 0 && k < 4; k++)
        if (pads[k] < 0 || pads[k] >= ks[k % 2])
            return cvis__fail(CVIS_E_FORMAT, "pooling pads must be smaller than the window");
    memset(a, 0, sizeof *a);
    a->kind = !strcmp(n->op_type, "MaxPool") ? CVIS_POOL_MAX : CVIS_POOL_AVG;
    a->kh = (int)ks[0];
    a->kw = (int)ks[1];
    a->sh = nst >= 0 ? (int)st[0] : 1;
    a->sw = nst >= 0 ? (int)st[1] : 1;
    const char *ap = attr_s(n, "auto_pad", "NOTSET");
    if (!strcmp(ap, "NOTSET")) {
        a->pad_mode = CVIS__PAD_EXPLICIT;
        if (npd >= 0) {
            a->pt = (int)pads[0];
            a->pl = (int)pads[1];
            a->pb = (int)pads[2];
            a->pr = (int)pads[3];
        }
    } else if (!strcmp(ap, "VALID")) {
        a->pad_mode = CVIS__PAD_VALID;
    } else if (!strcmp(ap, "SAME_UPPER")) {
        a->pad_mode = CVIS__PAD_SAME_UPPER;
    } else if (!strcmp(ap, "SAME_LOWER")) {
        a->pad_mode = CVIS__PAD_SAME_LOWER;
    } else {
        return cvis__fail(CVIS_E_FORMAT, "auto_pad \"%s\"", ap);
    }
    a->ceil_mode = (int)attr_i(n, "ceil_mode", 0) != 0;
    a->count_include_pad = (int)attr_i(n, "count_include_pad", 0) != 0;
    return CVIS_OK;
}

static cvis_status h_pool(imp *im, const cvis__onnx_node *n)
{
    val *x;
    CVIS_TRY(need_var(im, n, 0, &x));
    if (x->rank != 4)
        return cvis__fail(CVIS_E_UNSUPPORTED, "pooling of a rank-%d input", x->rank);
    if (extra_outputs_used(im, n))
        return cvis__fail(CVIS_E_UNSUPPORTED, "MaxPool's indices output");
    cvis__pool_attr a;
    CVIS_TRY(pool_attr(n, &a));
    int in_layer, layer;
    CVIS_TRY(to_perm(im, x, NHWC, &in_layer));
    CVIS_TRY(emit_plain(im, NULL, n->op_type, &cvis__op_pool2d, &a, sizeof a, 1, &in_layer,
                        &layer));
    set_output(im, n, 0, layer, NHWC);
    return CVIS_OK;
}

/* Reductions over ONNX axes `mask` (never the batch). */
static cvis_status emit_reduce(imp *im, const cvis__onnx_node *n, val *x, int kind,
                               unsigned mask, int keep)
{
    CVIS_TRY(materialize(im, x));
    if (mask & 1u)
        return cvis__fail(CVIS_E_UNSUPPORTED, "a reduction over the batch axis");
    int layer, perm[CVIS_MAX_DIMS], r = x->rank;
    if (kind == CVIS__REDUCE_MEAN && r == 4 && mask == 12u) { /* over H and W */
        int in_layer;
        CVIS_TRY(to_perm(im, x, NHWC, &in_layer));
        cvis__gap_attr g = {keep};
        CVIS_TRY(emit_plain(im, NULL, n->op_type, &cvis__op_global_avg_pool, &g, sizeof g, 1,
                            &in_layer, &layer));
        if (keep)
            memcpy(perm, NHWC, sizeof NHWC);
        else
            perm_identity(perm, 2);
        set_output(im, n, 0, layer, perm);
        return CVIS_OK;
    }
    cvis__reduce_attr a = {kind, keep, 0};
    for (int i = 0; i < r; i++)
        if (mask & (1u << x->perm[i]))
            a.axes |= 1u << i;
    CVIS_TRY(emit_plain(im, NULL, n->op_type, &cvis__op_reduce, &a, sizeof a, 1, &x->layer,
                        &layer));
    /* the kept ONNX axes, renumbered, in cvis order */
    int j = 0;
    for (int i = 0; i < r; i++) {
        int o = x->perm[i];
        if (mask & (1u << o)) {
            if (keep)
                perm[j++] = o;
            continue;
        }
        int below = 0;
        for (int k = 0; k < o; k++)
            below += keep || !(mask & (1u << k));
        perm[j++] = keep ? o : below;
    }
    set_output(im, n, 0, layer, perm);
    return CVIS_OK;
}

static cvis_status h_reduce(imp *im, const cvis__onnx_node *n)
{
    val *x;
    CVIS_TRY(need_var(im, n, 0, &x));
    const char *op = n->op_type;
    int r = x->rank;
    unsigned mask = 0;
    int keep = 1, kind;
    if (!strncmp(op, "Global", 6)) {
        kind = !strcmp(op, "GlobalMaxPool") ? CVIS__REDUCE_MAX : CVIS__REDUCE_MEAN;
        if (r < 3)
            return cvis__fail(CVIS_E_FORMAT, "%s of a rank-%d input", op, r);
        for (int i = 2; i < r; i++)
            mask |= 1u << i;
    } else {
        kind = !strcmp(op, "ReduceMean") ? CVIS__REDUCE_MEAN
               : !strcmp(op, "ReduceSum") ? CVIS__REDUCE_SUM : CVIS__REDUCE_MAX;
        keep = attr_i(n, "keepdims", 1) != 0;
        int64_t axes[CVIS_MAX_DIMS];
        int na = -1;
        int64_t from = kind == CVIS__REDUCE_SUM ? 13 : 18;
        if (im->opset >= from) {
            if (n->n_in > 1 && n->in[1][0]) {
                const cvis__onnx_tensor *t;
                CVIS_TRY(static_const(im, n, 1, "the axes", &t));
                if (t->ndim > 1 || t->count > CVIS_MAX_DIMS)
                    return cvis__fail(CVIS_E_FORMAT, "the axes must be a short list");
                na = (int)t->count;
                for (int k = 0; k < na; k++)
                    axes[k] = cvis__onnx_get_int(t, k);
            }
        } else {
            CVIS_TRY(attr_ints(n, "axes", axes, CVIS_MAX_DIMS, &na));
        }
        if (na <= 0) {
            if (na == 0 && attr_i(n, "noop_with_empty_axes", 0))
                return h_identity(im, n);
            mask = (1u << r) - 1;
        }
        for (int k = 0; k < na; k++) {
            int ax;
            CVIS_TRY(norm_axis(axes[k], r, &ax));
            mask |= 1u << ax;
        }
    }
    return emit_reduce(im, n, x, kind, mask, keep);
}

/* ------------------------------------------------------------ reshapes */

/* Reshapes variable x to ONNX dims tA (stand-in A) / tB (B) of rank ro.
 * Axes are grouped so that each group of input axes becomes a group of
 * output axes with the same number of values; when every group is laid
 * out in ONNX order in x's cvis layout, the reshape is a view, otherwise
 * a transpose comes first (or, for a flatten of static sizes into the
 * features of a dense layer, the dense weights are reordered instead). */
static cvis_status do_reshape(imp *im, const cvis__onnx_node *n, val *x, int ro,
                              const int64_t *tA, const int64_t *tB, const char *type)
{
    CVIS_TRY(materialize(im, x));
    val xv = *x; /* the layout read from; a transpose may change it */
    int ri = x->rank;
    int64_t iA[CVIS_MAX_DIMS], iB[CVIS_MAX_DIMS];
    onnx_dims(x, 0, iA);
    onnx_dims(x, 1, iB);
    if (ro < 1 || ro > CVIS_MAX_DIMS)
        return cvis__fail(CVIS_E_UNSUPPORTED, "a reshape to rank %d", ro);
    if (tA[0] != iA[0] || tB[0] != iB[0])
        return cvis__fail(CVIS_E_UNSUPPORTED, "a reshape that changes the batch axis");
    int gi[CVIS_MAX_DIMS + 1][2], go[CVIS_MAX_DIMS + 1][2], ng = 0;
    int i = 1, j = 1;
    gi[0][0] = 0, gi[0][1] = 1, go[0][0] = 0, go[0][1] = 1;
    ng = 1;
    while (i < ri || j < ro) {
        int i0 = i, j0 = j;
        int64_t pi = 1, pj = 1;
        if (i < ri)
            pi *= iA[i++];
        if (j < ro)
            pj *= tA[j++];
        while (pi != pj) {
            if (pi == 0 || pj == 0)
                return cvis__fail(CVIS_E_UNSUPPORTED, "a reshape of empty axes");
            if (pi < pj) {
                if (i >= ri)
                    return cvis__fail(CVIS_E_SHAPE, "a reshape that changes the number of values");
                pi *= iA[i++];
            } else {
                if (j >= ro)
                    return cvis__fail(CVIS_E_SHAPE, "a reshape that changes the number of values");
                pj *= tA[j++];
            }
        }
        /* the same grouping must hold for stand-in B */
        int64_t qi = 1, qj = 1;
        for (int k = i0; k < i; k++)
            qi *= iB[k];
        for (int k = j0; k < j; k++)
            qj *= tB[k];
        if (qi != qj)
            return cvis__fail(CVIS_E_UNSUPPORTED, "a reshape whose grouping of axes depends on "
                              "the input size");
        gi[ng][0] = i0, gi[ng][1] = i, go[ng][0] = j0, go[ng][1] = j;
        ng++;
    }
    /* an axis is trivial when its size is 1 for both stand-ins */
    unsigned trivial = 0;
    for (int k = 0; k < ri; k++)
        if (iA[k] == 1 && iB[k] == 1)
            trivial |= 1u << k;
    /* is each group's non-trivial axes in order, adjacent but for trivial ones? */
    int direct = 1, key[CVIS_MAX_DIMS + 1];
    for (int g = 0; g < ng; g++) {
        int last = -1;
        key[g] = 1000 + g;
        for (int a = gi[g][0]; a < gi[g][1]; a++) {
            if (trivial & (1u << a))
                continue;
            int p = pos_of(x, a);
            if (last >= 0) {
                if (p < last)
                    direct = 0;
                for (int q = last + 1; q < p; q++)
                    if (!(trivial & (1u << x->perm[q])))
                        direct = 0;
            }
            if (key[g] >= 1000 || p < key[g])
                key[g] = p;
            last = p;
        }
    }
    int in_layer = x->layer;
    if (!direct) {
        int all_static = 1;
        for (int k = 0; k < ri; k++)
            all_static &= iA[k] == iB[k];
        if (ro == 2 && ng == 2 && all_static && !strcmp(type, "Flatten")) {
            /* features stay in cvis order; a dense layer reorders its rows */
            cvis__reshape_attr ra;
            memset(&ra, 0, sizeof ra);
            ra.ndim = 1;
            ra.shape[0] = tA[1];
            int layer, id[2] = {0, 1};
            CVIS_TRY(emit_plain(im, NULL, type, &cvis__op_reshape, &ra, sizeof ra, 1, &x->layer,
                                &layer));
            val src = *x;
            int vi = value_index(im, n->out[0]);
            set_var(im, vi, layer, id);
            if (vi >= 0) {
                val *o = &im->v[vi];
                o->flat = 1;
                o->flat_rank = src.rank;
                memcpy(o->flat_dims, iA, sizeof iA);
                memcpy(o->flat_perm, src.perm, sizeof src.perm);
            }
            return CVIS_OK;
        }
        /* transpose so that groups are contiguous, in ONNX order inside */
        int order[CVIS_MAX_DIMS + 1];
        for (int g = 0; g < ng; g++)
            order[g] = g;
        for (int a = 1; a < ng; a++) /* insertion sort by key; the batch stays first */
            for (int b = a; b > 1 && key[order[b]] < key[order[b - 1]]; b--) {
                int t = order[b];
                order[b] = order[b - 1];
                order[b - 1] = t;
            }
        int want[CVIS_MAX_DIMS], w = 0;
        for (int g = 0; g < ng; g++)
            for (int a = gi[order[g]][0]; a < gi[order[g]][1]; a++)
                want[w++] = a;
        CVIS_TRY(to_perm(im, x, want, &in_layer));
        memcpy(xv.perm, want, sizeof want);
        xv.s[0] = *layer_shape(im, in_layer, 0);
        xv.s[1] = *layer_shape(im, in_layer, 1);
        xv.layer = in_layer;
        /* groups now sit where their axes were put */
        for (int g = 0; g < ng; g++) {
            key[g] = 1000 + g;
            for (int k = ri - 1; k >= 0; k--)
                if (want[k] >= gi[g][0] && want[k] < gi[g][1] && !(trivial & (1u << want[k])))
                    key[g] = k;
        }
    }
    /* output layout: groups ordered by where their input axes sit */
    int order[CVIS_MAX_DIMS + 1];
    for (int g = 0; g < ng; g++)
        order[g] = g;
    for (int a = 1; a < ng; a++)
        for (int b = a; b > 1 && key[order[b]] < key[order[b - 1]]; b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    int operm[CVIS_MAX_DIMS], w = 0, inferred = 0;
    cvis__reshape_attr ra;
    memset(&ra, 0, sizeof ra);
    ra.ndim = ro - 1;
    for (int g = 0; g < ng; g++) {
        int G = order[g];
        for (int b = go[G][0]; b < go[G][1]; b++) {
            operm[w] = b;
            if (w > 0) {
                int64_t size = tA[b];
                if (tA[b] != tB[b]) {
                    /* a size that follows the input: copied from a lone
                     * input axis, or inferred (once) */
                    int nin = 0, src = -1;
                    for (int a = gi[G][0]; a < gi[G][1]; a++)
                        if (!(trivial & (1u << a))) {
                            nin++;
                            src = a;
                        }
                    int nout = 0;
                    for (int c = go[G][0]; c < go[G][1]; c++)
                        nout += !(tA[c] == 1 && tB[c] == 1);
                    if (nin == 1 && nout == 1 && iA[src] == tA[b] && iB[src] == tB[b]) {
                        size = -2 - pos_of(&xv, src);
                    } else if (!inferred) {
                        size = -1;
                        inferred = 1;
                    } else {
                        return cvis__fail(CVIS_E_UNSUPPORTED, "a reshape with several sizes "
                                          "that depend on the input size");
                    }
                }
                ra.shape[w - 1] = size;
            }
            w++;
        }
    }
    int layer;
    CVIS_TRY(emit_plain(im, NULL, type, &cvis__op_reshape, &ra, sizeof ra, 1, &in_layer, &layer));
    /* the layer's shapes must be the ONNX target, permuted */
    for (int s = 0; s < 2; s++) {
        const cvis__shape *ls = layer_shape(im, layer, s);
        const int64_t *t = s ? tB : tA;
        for (int k = 0; k < ro; k++)
            if (ls->ndim != ro || ls->d[k] != t[operm[k]])
                return cvis__fail(CVIS_E_INTERNAL, "reshape layout mismatch");
    }
    set_output(im, n, 0, layer, operm);
    return CVIS_OK;
}

static cvis_status h_flatten(imp *im, const cvis__onnx_node *n)
{
    val *x;
    CVIS_TRY(need_var(im, n, 0, &x));
    int r = x->rank;
    int64_t axis = attr_i(n, "axis", 1);
    if (axis < 0)
        axis += r;
    if (axis < 1 || axis > r)
        return cvis__fail(CVIS_E_UNSUPPORTED, "Flatten at axis %lld (the batch must stay first)",
                          (long long)attr_i(n, "axis", 1));
    int64_t d[2][CVIS_MAX_DIMS], t[2][2];
    onnx_dims(x, 0, d[0]);
    onnx_dims(x, 1, d[1]);
    for (int s = 0; s < 2; s++) {
        t[s][0] = t[s][1] = 1;
        for (int k = 0; k < r; k++)
            t[s][k >= axis] *= d[s][k];
    }
    if (x->flat && r == 2) /* already flat */
        return set_alias_outputs(im, n, x);
    return do_reshape(im, n, x, 2, t[0], t[1], "Flatten");
}

static cvis_status h_reshape(imp *im, const cvis__onnx_node *n)
{
    val *x, *sv = input_val(im, n, 1);
    CVIS_TRY(need_var(im, n, 0, &x));
    if (!is_const(sv))
        return cvis__fail(CVIS_E_UNSUPPORTED, "a target shape that is not a constant");
    int64_t t[2][CVIS_MAX_DIMS], d[2][CVIS_MAX_DIMS];
    int ro = -1;
    onnx_dims(x, 0, d[0]);
    onnx_dims(x, 1, d[1]);
    for (int s = 0; s < 2; s++) {
        const cvis__onnx_tensor *c = sv->c[s];
        if (c->ndim != 1 || c->count < 1 || c->count > CVIS_MAX_DIMS || cvis__onnx_is_float_type(c->dtype))
            return cvis__fail(CVIS_E_UNSUPPORTED, "a target shape of %lld integers",
                              (long long)c->count);
        ro = (int)c->count;
        int64_t total = 1, known = 1;
        int infer = -1;
        for (int k = 0; k < x->rank; k++)
            total *= d[s][k];
        for (int k = 0; k < ro; k++) {
            int64_t v = c->i[k];
            if (v == 0 && !attr_i(n, "allowzero", 0)) {
                if (k >= x->rank)
                    return cvis__fail(CVIS_E_FORMAT, "Reshape copies a missing axis");
                v = d[s][k];
            }
            if (v == -1) {
                if (infer >= 0)
                    return cvis__fail(CVIS_E_FORMAT, "Reshape with two inferred axes");
                infer = k;
                continue;
            }
            if (v < 1)
                return cvis__fail(CVIS_E_UNSUPPORTED, "Reshape to size %lld", (long long)v);
            if (cvis__mul_size(known, v, "Reshape", &known) != CVIS_OK)
                return cvis__fail(CVIS_E_FORMAT, "Reshape sizes overflow");
            t[s][k] = v;
        }
        if (infer >= 0) {
            if (total % known)
                return cvis__fail(CVIS_E_SHAPE, "Reshape of %lld values cannot infer an axis",
                                  (long long)total);
            t[s][infer] = total / known;
        } else if (known != total) {
            return cvis__fail(CVIS_E_SHAPE, "Reshape of %lld values into %lld",
                              (long long)total, (long long)known);
        }
    }
    return do_reshape(im, n, x, ro, t[0], t[1], "Reshape");
}

static cvis_status h_squeeze(imp *im, const cvis__onnx_node *n)
{
    val *x;
    CVIS_TRY(need_var(im, n, 0, &x));
    int unsq = n->op_type[0] == 'U', r = x->rank, na = -1;
    int64_t axes[CVIS_MAX_DIMS];
    if (im->opset >= 13) {
        if (n->n_in > 1 && n->in[1][0]) {
            const cvis__onnx_tensor *t;
            CVIS_TRY(static_const(im, n, 1, "the axes", &t));
            if (t->ndim > 1 || t->count > CVIS_MAX_DIMS)
                return cvis__fail(CVIS_E_FORMAT, "the axes must be a short list");
            na = (int)t->count;
            for (int k = 0; k < na; k++)
                axes[k] = cvis__onnx_get_int(t, k);
        }
    } else {
        CVIS_TRY(attr_ints(n, "axes", axes, CVIS_MAX_DIMS, &na));
    }
    int64_t d[2][CVIS_MAX_DIMS], t[2][CVIS_MAX_DIMS];
    onnx_dims(x, 0, d[0]);
    onnx_dims(x, 1, d[1]);
    unsigned mark = 0;
    int ro;
    if (unsq) {
        if (na < 1)
            return cvis__fail(CVIS_E_FORMAT, "Unsqueeze without axes");
        ro = r + na;
        if (ro > CVIS_MAX_DIMS)
            return cvis__fail(CVIS_E_UNSUPPORTED, "more than %d axes", CVIS_MAX_DIMS);
        for (int k = 0; k < na; k++) {
            int a;
            CVIS_TRY(norm_axis(axes[k], ro, &a));
            mark |= 1u << a;
        }
        if (mark & 1u)
            return cvis__fail(CVIS_E_UNSUPPORTED, "a new axis before the batch axis");
        for (int s = 0; s < 2; s++)
            for (int k = 0, j = 0; k < ro; k++)
                t[s][k] = (mark & (1u << k)) ? 1 : d[s][j++];
    } else {
        for (int k = 0; k < na; k++) {
            int a;
            CVIS_TRY(norm_axis(axes[k], r, &a));
            mark |= 1u << a;
        }
        if (na < 0)
            for (int k = 1; k < r; k++)
                if (d[0][k] == 1 && d[1][k] == 1)
                    mark |= 1u << k;
        if (mark & 1u)
            return cvis__fail(CVIS_E_UNSUPPORTED, "removing the batch axis");
        ro = 0;
        for (int k = 0; k < r; k++) {
            if (mark & (1u << k)) {
                if (d[0][k] != 1 || d[1][k] != 1)
                    return cvis__fail(CVIS_E_SHAPE, "Squeeze of an axis that is not 1");
                continue;
            }
            t[0][ro] = d[0][k];
            t[1][ro] = d[1][k];
            ro++;
        }
    }
    return do_reshape(im, n, x, ro, t[0], t[1], n->op_type);
}

static cvis_status h_transpose(imp *im, const cvis__onnx_node *n)
{
    val *x;
    CVIS_TRY(need_var(im, n, 0, &x));
    CVIS_TRY(materialize(im, x));
    int64_t p[CVIS_MAX_DIMS];
    int np, r = x->rank;
    CVIS_TRY(attr_ints(n, "perm", p, CVIS_MAX_DIMS, &np));
    if (np < 0) {
        np = r;
        for (int k = 0; k < r; k++)
            p[k] = r - 1 - k;
    }
    unsigned seen = 0;
    if (np != r)
        return cvis__fail(CVIS_E_FORMAT, "a perm of %d axes for a rank-%d input", np, r);
    for (int k = 0; k < r; k++) {
        if (p[k] < 0 || p[k] >= r || (seen & (1u << p[k])))
            return cvis__fail(CVIS_E_FORMAT, "an invalid perm");
        seen |= 1u << p[k];
    }
    if (p[0] != 0)
        return cvis__fail(CVIS_E_UNSUPPORTED, "a transpose that moves the batch axis");
    /* no data moves: only the ONNX names of the cvis axes change */
    int inv[CVIS_MAX_DIMS];
    for (int k = 0; k < r; k++)
        inv[p[k]] = k;
    val out = *x;
    for (int i = 0; i < r; i++)
        out.perm[i] = inv[x->perm[i]];
    out.conv_layer = -2;
    CVIS_TRY(set_alias_outputs(im, n, &out));
    return CVIS_OK;
}

static cvis_status h_concat(imp *im, const cvis__onnx_node *n)
{
    if (n->n_in < 1 || n->n_in > CVIS__MAX_OP_INPUTS)
        return cvis__fail(CVIS_E_UNSUPPORTED, "Concat of %d inputs", n->n_in);
    val *first;
    CVIS_TRY(need_var(im, n, 0, &first));
    CVIS_TRY(materialize(im, first));
    int r = first->rank, ax, in[CVIS__MAX_OP_INPUTS];
    CVIS_TRY(norm_axis(attr_i(n, "axis", 1), r, &ax));
    if (ax == 0)
        return cvis__fail(CVIS_E_UNSUPPORTED, "Concat along the batch axis");
    int perm[CVIS_MAX_DIMS];
    memcpy(perm, first->perm, sizeof perm);
    for (int k = 0; k < n->n_in; k++) {
        val *v;
        CVIS_TRY(need_var(im, n, k, &v));
        if (v->rank != r)
            return cvis__fail(CVIS_E_SHAPE, "Concat of inputs of ranks %d and %d", r, v->rank);
        CVIS_TRY(materialize(im, v));
        CVIS_TRY(to_perm(im, v, perm, &in[k]));
    }
    int p = 0;
    while (perm[p] != ax)
        p++;
    cvis__concat_attr a = {p};
    int layer;
    CVIS_TRY(emit_plain(im, NULL, "Concat", &cvis__op_concat, &a, sizeof a, n->n_in, in, &layer));
    set_output(im, n, 0, layer, perm);
    return CVIS_OK;
}

/* A slice layer of one cvis axis; the other axes whole. */
static cvis_status emit_slice_axis(imp *im, val *x, const char *suffix, const char *type, int p,
                                   int64_t start, int64_t end, int64_t step, int *layer)
{
    cvis__slice_attr a;
    memset(&a, 0, sizeof a);
    a.ndim = x->rank;
    for (int i = 0; i < x->rank; i++) {
        a.start[i] = 0;
        a.end[i] = INT64_MAX;
        a.step[i] = 1;
    }
    a.start[p] = start;
    a.end[p] = end;
    a.step[p] = step;
    return emit_plain(im, suffix, type, &cvis__op_slice, &a, sizeof a, 1, &x->layer, layer);
}

static cvis_status h_split(imp *im, const cvis__onnx_node *n)
{
    val *x;
    CVIS_TRY(need_var(im, n, 0, &x));
    CVIS_TRY(materialize(im, x));
    int ax, r = x->rank;
    CVIS_TRY(norm_axis(attr_i(n, "axis", 0), r, &ax));
    if (ax == 0)
        return cvis__fail(CVIS_E_UNSUPPORTED, "Split along the batch axis");
    int64_t dA[CVIS_MAX_DIMS], dB[CVIS_MAX_DIMS], sizes[64];
    onnx_dims(x, 0, dA);
    onnx_dims(x, 1, dB);
    if (dA[ax] != dB[ax])
        return cvis__fail(CVIS_E_UNSUPPORTED, "Split of an axis whose size follows the input");
    int ns = -1, no = n->n_out;
    if (no < 1 || no > 64)
        return cvis__fail(CVIS_E_UNSUPPORTED, "Split into %d parts", no);
    if (im->opset >= 13) {
        if (n->n_in > 1 && n->in[1][0]) {
            const cvis__onnx_tensor *t;
            CVIS_TRY(static_const(im, n, 1, "the split sizes", &t));
            if (t->count > 64)
                return cvis__fail(CVIS_E_UNSUPPORTED, "Split into %lld parts", (long long)t->count);
            ns = (int)t->count;
            for (int k = 0; k < ns; k++)
                sizes[k] = cvis__onnx_get_int(t, k);
        }
    } else {
        CVIS_TRY(attr_ints(n, "split", sizes, 64, &ns));
    }
    CVIS_TRY(cvis__onnx_split_sizes(dA[ax], no, ns, sizes));
    int p = pos_of(x, ax);
    val src = *x;
    int64_t begin = 0;
    for (int k = 0; k < no; k++) {
        char suffix[16];
        snprintf(suffix, sizeof suffix, "%d", k);
        int layer;
        if (n->out[k][0]) {
            CVIS_TRY(emit_slice_axis(im, &src, k ? suffix : NULL, "Split", p, begin,
                                     begin + sizes[k], 1, &layer));
            set_output(im, n, k, layer, src.perm);
        }
        begin += sizes[k];
    }
    return CVIS_OK;
}

static cvis_status h_slice(imp *im, const cvis__onnx_node *n)
{
    val *x;
    CVIS_TRY(need_var(im, n, 0, &x));
    CVIS_TRY(materialize(im, x));
    int r = x->rank, ns, na = -1, nst = -1;
    int64_t starts[CVIS_MAX_DIMS], ends[CVIS_MAX_DIMS], axes[CVIS_MAX_DIMS], steps[CVIS_MAX_DIMS];
    if (im->opset < 10) {
        int ne;
        CVIS_TRY(attr_ints(n, "starts", starts, CVIS_MAX_DIMS, &ns));
        CVIS_TRY(attr_ints(n, "ends", ends, CVIS_MAX_DIMS, &ne));
        CVIS_TRY(attr_ints(n, "axes", axes, CVIS_MAX_DIMS, &na));
        if (ns < 0 || ne != ns)
            return cvis__fail(CVIS_E_FORMAT, "Slice's starts and ends differ");
    } else {
        const cvis__onnx_tensor *t[4] = {NULL, NULL, NULL, NULL};
        static const char *what[4] = {"starts", "ends", "axes", "steps"};
        for (int k = 0; k < 4; k++)
            if (n->n_in > k + 1 && n->in[k + 1][0]) {
                CVIS_TRY(static_const(im, n, k + 1, what[k], &t[k]));
                if (t[k]->ndim > 1 || t[k]->count > CVIS_MAX_DIMS ||
                    cvis__onnx_is_float_type(t[k]->dtype))
                    return cvis__fail(CVIS_E_FORMAT, "Slice's %s must be a short integer list",
                                      what[k]);
            }
        if (!t[0] || !t[1] || t[0]->count != t[1]->count ||
            (t[2] && t[2]->count != t[0]->count) || (t[3] && t[3]->count != t[0]->count))
            return cvis__fail(CVIS_E_FORMAT, "Slice's starts, ends, axes and steps differ");
        ns = (int)t[0]->count;
        for (int k = 0; k < ns; k++) {
            starts[k] = t[0]->i[k];
            ends[k] = t[1]->i[k];
            if (t[2])
                axes[k] = t[2]->i[k];
            if (t[3])
                steps[k] = t[3]->i[k];
        }
        na = t[2] ? ns : -1;
        nst = t[3] ? ns : -1;
    }
    cvis__slice_attr a;
    memset(&a, 0, sizeof a);
    a.ndim = r;
    for (int i = 0; i < r; i++) {
        a.start[i] = 0;
        a.end[i] = INT64_MAX;
        a.step[i] = 1;
    }
    for (int k = 0; k < ns; k++) {
        int ax;
        CVIS_TRY(norm_axis(na >= 0 ? axes[k] : k, r, &ax));
        int64_t step = nst >= 0 ? steps[k] : 1;
        if (step == 0)
            return cvis__fail(CVIS_E_FORMAT, "Slice with step 0");
        if (ax == 0) {
            if (starts[k] == 0 && step == 1 && ends[k] >= (int64_t)INT32_MAX)
                continue;
            return cvis__fail(CVIS_E_UNSUPPORTED, "a slice of the batch axis");
        }
        int p = pos_of(x, ax);
        a.start[p] = starts[k];
        a.end[p] = ends[k];
        a.step[p] = step;
    }
    int layer;
    CVIS_TRY(emit_plain(im, NULL, "Slice", &cvis__op_slice, &a, sizeof a, 1, &x->layer, &layer));
    int perm[CVIS_MAX_DIMS];
    memcpy(perm, x->perm, sizeof perm);
    set_output(im, n, 0, layer, perm);
    return CVIS_OK;
}

static cvis_status h_gather(imp *im, const cvis__onnx_node *n)
{
    val *x;
    const cvis__onnx_tensor *idx;
    CVIS_TRY(need_var(im, n, 0, &x));
    CVIS_TRY(materialize(im, x));
    CVIS_TRY(static_const(im, n, 1, "Gather's indices", &idx));
    int r = x->rank, ax;
    CVIS_TRY(norm_axis(attr_i(n, "axis", 0), r, &ax));
    if (ax == 0)
        return cvis__fail(CVIS_E_UNSUPPORTED, "Gather along the batch axis");
    if (idx->ndim > 1 || cvis__onnx_is_float_type(idx->dtype) || idx->count < 1)
        return cvis__fail(CVIS_E_UNSUPPORTED, "Gather with indices of rank %d", idx->ndim);
    cvis__gather_attr *g;
    CVIS_TRY(cvis__alloc(sizeof *g + (size_t)idx->count * sizeof(int64_t), "layer attributes",
                         (void **)&g));
    g->axis = pos_of(x, ax);
    g->n = idx->count;
    for (int64_t k = 0; k < idx->count; k++)
        g->idx[k] = idx->i[k];
    int layer;
    CVIS_TRY(emit(im, idx->ndim == 0 ? "gather" : NULL, "Gather", &cvis__op_gather, g, 1,
                  &x->layer, 0, NULL, NULL, NULL, 0, &layer));
    int perm[CVIS_MAX_DIMS];
    memcpy(perm, x->perm, sizeof perm);
    if (idx->ndim == 1) {
        set_output(im, n, 0, layer, perm);
        return CVIS_OK;
    }
    /* a scalar index drops the axis */
    val t = *x;
    t.layer = layer;
    t.s[0] = *layer_shape(im, layer, 0);
    t.s[1] = *layer_shape(im, layer, 1);
    t.conv_layer = -2;
    int64_t d[2][CVIS_MAX_DIMS], o[2][CVIS_MAX_DIMS];
    onnx_dims(&t, 0, d[0]);
    onnx_dims(&t, 1, d[1]);
    for (int s = 0; s < 2; s++)
        for (int k = 0, j = 0; k < r; k++)
            if (k != ax)
                o[s][j++] = d[s][k];
    return do_reshape(im, n, &t, r - 1, o[0], o[1], "Gather");
}

static cvis_status h_pad(imp *im, const cvis__onnx_node *n)
{
    val *x;
    CVIS_TRY(need_var(im, n, 0, &x));
    CVIS_TRY(materialize(im, x));
    if (strcmp(attr_s(n, "mode", "constant"), "constant"))
        return cvis__fail(CVIS_E_UNSUPPORTED, "Pad mode \"%s\" (only constant)",
                          attr_s(n, "mode", ""));
    int r = x->rank, np = -1;
    int64_t pads[2 * CVIS_MAX_DIMS], axes[CVIS_MAX_DIMS];
    float value = 0;
    int na = -1;
    if (im->opset < 11) {
        CVIS_TRY(attr_ints(n, "pads", pads, 2 * CVIS_MAX_DIMS, &np));
        value = attr_f(n, "value", 0.0f);
    } else {
        const cvis__onnx_tensor *t;
        CVIS_TRY(static_const(im, n, 1, "the pads", &t));
        if (t->ndim != 1 || t->count > 2 * CVIS_MAX_DIMS || cvis__onnx_is_float_type(t->dtype))
            return cvis__fail(CVIS_E_FORMAT, "pads must be a list of integers");
        np = (int)t->count;
        for (int k = 0; k < np; k++)
            pads[k] = t->i[k];
        if (n->n_in > 2 && n->in[2][0]) {
            const cvis__onnx_tensor *v;
            CVIS_TRY(static_const(im, n, 2, "the pad value", &v));
            if (v->count != 1)
                return cvis__fail(CVIS_E_FORMAT, "the pad value must be a scalar");
            value = (float)cvis__onnx_get(v, 0);
        }
        if (n->n_in > 3 && n->in[3][0]) {
            const cvis__onnx_tensor *v;
            CVIS_TRY(static_const(im, n, 3, "the pad axes", &v));
            if (v->ndim != 1 || v->count > CVIS_MAX_DIMS)
                return cvis__fail(CVIS_E_FORMAT, "pad axes must be a short list");
            na = (int)v->count;
            for (int k = 0; k < na; k++)
                axes[k] = cvis__onnx_get_int(v, k);
        }
    }
    int64_t before[CVIS_MAX_DIMS] = {0}, after[CVIS_MAX_DIMS] = {0};
    int nax = na >= 0 ? na : r;
    if (np != 2 * nax)
        return cvis__fail(CVIS_E_FORMAT, "%d pads for %d axes", np, nax);
    for (int k = 0; k < nax; k++) {
        int ax = k;
        if (na >= 0)
            CVIS_TRY(norm_axis(axes[k], r, &ax));
        before[ax] = pads[k];
        after[ax] = pads[k + nax];
    }
    int zero = 1;
    for (int k = 0; k < r; k++) {
        if (before[k] < 0 || after[k] < 0 || before[k] > 65536 || after[k] > 65536)
            return cvis__fail(CVIS_E_UNSUPPORTED, "pads outside 0..65536 (cropping)");
        if (k == 0 && (before[k] || after[k]))
            return cvis__fail(CVIS_E_UNSUPPORTED, "padding the batch axis");
        zero &= !before[k] && !after[k];
    }
    if (zero)
        return set_alias_outputs(im, n, x);
    cvis__pad_attr a;
    memset(&a, 0, sizeof a);
    for (int i = 0; i < r; i++) {
        a.before[i] = before[x->perm[i]];
        a.after[i] = after[x->perm[i]];
    }
    a.value = value;
    int layer, perm[CVIS_MAX_DIMS];
    memcpy(perm, x->perm, sizeof perm);
    CVIS_TRY(emit_plain(im, NULL, "Pad", &cvis__op_pad, &a, sizeof a, 1, &x->layer, &layer));
    set_output(im, n, 0, layer, perm);
    return CVIS_OK;
}

static cvis_status h_batch_norm(imp *im, const cvis__onnx_node *n)
{
    val *x;
    CVIS_TRY(need_var(im, n, 0, &x));
    CVIS_TRY(materialize(im, x));
    if (attr_i(n, "training_mode", 0) || extra_outputs_used(im, n))
        return cvis__fail(CVIS_E_UNSUPPORTED, "BatchNormalization in training mode");
    if (x->rank < 2 || n->n_in < 5)
        return cvis__fail(CVIS_E_FORMAT, "BatchNormalization of a rank-%d input", x->rank);
    int64_t d[2][CVIS_MAX_DIMS];
    onnx_dims(x, 0, d[0]);
    onnx_dims(x, 1, d[1]);
    if (d[0][1] != d[1][1])
        return cvis__fail(CVIS_E_UNSUPPORTED, "a channel count that follows the input");
    /* channels (ONNX axis 1) last in cvis order */
    int want[CVIS_MAX_DIMS], j = 0;
    for (int i = 0; i < x->rank; i++)
        if (x->perm[i] != 1)
            want[j++] = x->perm[i];
    want[j] = 1;
    cvis_tensor *w[4] = {0};
    static const char *names[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
    const unsigned char trainable[4] = {1, 1, 0, 0};
    cvis__bn_attr a = {attr_f(n, "epsilon", 1e-5f)};
    cvis_status st = CVIS_OK;
    for (int k = 0; k < 4 && st == CVIS_OK; k++) {
        const cvis__onnx_tensor *t;
        st = static_const(im, n, k + 1, "BatchNormalization's parameters", &t);
        if (st == CVIS_OK)
            st = vector_weight(t, d[0][1], 1.0f, "BatchNormalization's parameters", &w[k]);
    }
    for (int64_t c = 0; st == CVIS_OK && c < d[0][1]; c++)
        if (!(w[3]->data[c] + a.eps > 0))
            st = cvis__fail(CVIS_E_FORMAT, "BatchNormalization variance is negative");
    if (st != CVIS_OK) {
        free_weights(w, 4);
        return st;
    }
    int in_layer, layer;
    st = to_perm(im, x, want, &in_layer);
    void *p = NULL;
    if (st == CVIS_OK)
        st = dup_attr(&a, sizeof a, &p);
    if (st != CVIS_OK) {
        free_weights(w, 4);
        return st;
    }
    CVIS_TRY(emit(im, NULL, "BatchNormalization", &cvis__op_batch_norm, p, 1, &in_layer, 4, w,
                  names, trainable, 0, &layer));
    set_output(im, n, 0, layer, want);
    return CVIS_OK;
}

static cvis_status h_layer_norm(imp *im, const cvis__onnx_node *n)
{
    val *x;
    const cvis__onnx_tensor *S, *B = NULL;
    CVIS_TRY(need_var(im, n, 0, &x));
    CVIS_TRY(materialize(im, x));
    if (extra_outputs_used(im, n))
        return cvis__fail(CVIS_E_UNSUPPORTED, "LayerNormalization's mean and deviation outputs");
    CVIS_TRY(static_const(im, n, 1, "the scale", &S));
    if (n->n_in > 2 && n->in[2][0])
        CVIS_TRY(static_const(im, n, 2, "the bias", &B));
    int r = x->rank, ax;
    CVIS_TRY(norm_axis(attr_i(n, "axis", -1), r, &ax));
    if (ax == 0)
        return cvis__fail(CVIS_E_UNSUPPORTED, "normalization over the batch axis");
    int64_t d[2][CVIS_MAX_DIMS];
    onnx_dims(x, 0, d[0]);
    onnx_dims(x, 1, d[1]);
    int64_t count = 1;
    for (int k = ax; k < r; k++) {
        if (d[0][k] != d[1][k])
            return cvis__fail(CVIS_E_UNSUPPORTED, "normalization over an axis whose size follows "
                              "the input");
        count *= d[0][k];
    }
    /* the normalized axes last, in ONNX order */
    int want[CVIS_MAX_DIMS], j = 0;
    for (int i = 0; i < r; i++)
        if (x->perm[i] < ax)
            want[j++] = x->perm[i];
    for (int k = ax; k < r; k++)
        want[j++] = k;
    /* scale and bias broadcast to the normalized shape */
    cvis_tensor *w[2] = {0};
    int nw = B ? 2 : 1;
    cvis_status st = CVIS_OK;
    for (int k = 0; k < nw && st == CVIS_OK; k++) {
        const cvis__onnx_tensor *t = k ? B : S;
        int tr = t->ndim, nr = r - ax;
        if (tr > nr) {
            st = cvis__fail(CVIS_E_SHAPE, "LayerNormalization scale of rank %d", tr);
            break;
        }
        st = const_floats(t, "LayerNormalization's scale and bias");
        int64_t shape[CVIS_MAX_DIMS];
        for (int i = 0; i < nr; i++)
            shape[i] = d[0][ax + i];
        if (st == CVIS_OK)
            st = new_weight(nr, shape, &w[k]);
        for (int64_t e = 0; st == CVIS_OK && e < count; e++) {
            /* element e of the normalized shape, read through broadcasting */
            int64_t rem = e, off = 0, stride = 1;
            for (int i = nr - 1; i >= 0; i--) {
                int64_t c = rem % shape[i];
                rem /= shape[i];
                int jt = i - (nr - tr);
                if (jt >= 0) {
                    if (t->dims[jt] != 1 && t->dims[jt] != shape[i]) {
                        st = cvis__fail(CVIS_E_SHAPE, "LayerNormalization scale does not fit");
                        break;
                    }
                    if (t->dims[jt] != 1)
                        off += c * stride;
                    stride *= t->dims[jt];
                }
            }
            if (st == CVIS_OK)
                w[k]->data[e] = (float)cvis__onnx_get(t, off);
        }
    }
    if (st != CVIS_OK) {
        free_weights(w, 2);
        return st;
    }
    cvis__layer_norm_attr a = {r - ax, attr_f(n, "epsilon", 1e-5f), B != NULL};
    int in_layer, layer;
    void *p = NULL;
    st = to_perm(im, x, want, &in_layer);
    if (st == CVIS_OK)
        st = dup_attr(&a, sizeof a, &p);
    if (st != CVIS_OK) {
        free_weights(w, 2);
        return st;
    }
    static const char *names[2] = {"gamma", "beta"};
    CVIS_TRY(emit(im, NULL, "LayerNormalization", &cvis__op_layer_norm, p, 1, &in_layer, nw, w,
                  names, NULL, 0, &layer));
    set_output(im, n, 0, layer, want);
    return CVIS_OK;
}

/* Shape and Size of a variable: constants, one per stand-in. */
static cvis_status h_shape(imp *im, const cvis__onnx_node *n)
{
    val *x;
    CVIS_TRY(need_var(im, n, 0, &x));
    int vi = value_index(im, n->out[0]);
    if (vi < 0)
        return CVIS_OK;
    cvis__onnx_tensor *t[2] = {NULL, NULL};
    cvis_status st = CVIS_OK;
    for (int s = 0; s < 2 && st == CVIS_OK; s++) {
        int64_t d[CVIS_MAX_DIMS];
        onnx_dims(x, s, d);
        int64_t r = x->rank, b = 0, e = r;
        if (!strcmp(n->op_type, "Shape")) {
            b = attr_i(n, "start", 0);
            e = attr_i(n, "end", r);
            b = b < 0 ? (b + r < 0 ? 0 : b + r) : (b > r ? r : b);
            e = e < 0 ? (e + r < 0 ? 0 : e + r) : (e > r ? r : e);
        }
        t[s] = cvis__calloc(1, sizeof *t[s]);
        if (!t[s]) {
            st = cvis__fail(CVIS_E_NOMEM, "out of memory");
            break;
        }
        t[s]->dtype = CVIS__ONNX_INT64;
        int64_t len = e > b ? e - b : 0;
        if (!strcmp(n->op_type, "Size")) {
            t[s]->ndim = 0;
            t[s]->count = 1;
        } else {
            t[s]->ndim = 1;
            t[s]->dims[0] = t[s]->count = len;
        }
        st = cvis__alloc((size_t)(t[s]->count ? t[s]->count : 1) * sizeof(int64_t), "shape",
                         (void **)&t[s]->i);
        if (st == CVIS_OK && t[s]->ndim == 0) {
            int64_t p = 1;
            for (int k = 0; k < r; k++)
                p *= d[k];
            t[s]->i[0] = p;
        } else if (st == CVIS_OK) {
            for (int64_t k = 0; k < len; k++)
                t[s]->i[k] = d[b + k];
        }
    }
    if (st != CVIS_OK) {
        for (int s = 0; s < 2; s++)
            if (t[s]) {
                cvis__onnx_tensor_release(t[s]);
                cvis__free(t[s]);
            }
        return st;
    }
    val *o = &im->v[vi];
    val_release(o);
    o->kind = V_CONST;
    o->c[0] = t[0];
    o->own[0] = 1;
    if (cvis__onnx_tensor_equal(t[0], t[1])) {
        cvis__onnx_tensor_release(t[1]);
        cvis__free(t[1]);
        o->c[1] = t[0];
    } else {
        o->c[1] = t[1];
        o->own[1] = 1;
    }
    return CVIS_OK;
}

/* A node whose inputs are all constants: computed now, for each stand-in. */
static cvis_status fold_node(imp *im, const cvis__onnx_node *n)
{
    if (!cvis__onnx_foldable(n->op_type))
        return cvis__fail(CVIS_E_UNSUPPORTED, "op %s on constants only", n->op_type);
    if (n->n_in > 16 || n->n_out > 64)
        return cvis__fail(CVIS_E_UNSUPPORTED, "a folded node with too many inputs or outputs");
    int dual = 0;
    for (int k = 0; k < n->n_in; k++) {
        val *v = input_val(im, n, k);
        if (v && v->c[0] != v->c[1] && !cvis__onnx_tensor_equal(v->c[0], v->c[1]))
            dual = 1;
    }
    cvis__onnx_tensor *res[2] = {NULL, NULL};
    cvis_status st = CVIS_OK;
    for (int s = 0; s <= dual && st == CVIS_OK; s++) {
        const cvis__onnx_tensor *in[16];
        for (int k = 0; k < n->n_in; k++) {
            val *v = input_val(im, n, k);
            in[k] = v ? v->c[s] : NULL;
        }
        res[s] = cvis__calloc((size_t)n->n_out, sizeof *res[s]);
        if (!res[s])
            st = cvis__fail(CVIS_E_NOMEM, "out of memory folding constants");
        else if ((st = cvis__onnx_fold(n, im->opset, n->n_in, in, n->n_out, res[s],
                                       im->max_fold)) != CVIS_OK) {
            cvis__free(res[s]);
            res[s] = NULL;
        }
    }
    if (st != CVIS_OK) {
        if (res[0]) {
            for (int k = 0; k < n->n_out; k++)
                cvis__onnx_tensor_release(&res[0][k]);
            cvis__free(res[0]);
        }
        return st;
    }
    /* each output's tensors move into their value (or are dropped) */
    for (int k = 0; k < n->n_out; k++) {
        int vi = value_index(im, n->out[k]);
        cvis__onnx_tensor *t[2] = {NULL, NULL};
        int keep_b = dual && !cvis__onnx_tensor_equal(&res[0][k], &res[1][k]);
        for (int s = 0; s <= keep_b && vi >= 0 && st == CVIS_OK; s++) {
            t[s] = cvis__malloc(sizeof *t[s]);
            if (!t[s])
                st = cvis__fail(CVIS_E_NOMEM, "out of memory folding constants");
            else
                *t[s] = res[s][k];
        }
        if (st != CVIS_OK || vi < 0) {
            for (int s = 0; s < 2; s++)
                if (t[s]) {
                    memset(&res[s][k], 0, sizeof res[s][k]);
                    cvis__onnx_tensor_release(t[s]);
                    cvis__free(t[s]);
                }
            cvis__onnx_tensor_release(&res[0][k]);
            if (dual)
                cvis__onnx_tensor_release(&res[1][k]);
            continue;
        }
        if (dual && !keep_b)
            cvis__onnx_tensor_release(&res[1][k]);
        val *o = &im->v[vi];
        val_release(o);
        o->kind = V_CONST;
        o->c[0] = t[0];
        o->own[0] = 1;
        o->c[1] = keep_b ? t[1] : t[0];
        o->own[1] = (unsigned char)keep_b;
        /* an initializer passed through Identity is still a parameter */
        val *src = input_val(im, n, 0);
        o->from_init = src && src->from_init && !strcmp(n->op_type, "Identity");
    }
    for (int s = 0; s < 2; s++)
        cvis__free(res[s]);
    return st;
}

/* ------------------------------------------------------------ dispatch */

typedef cvis_status (*handler)(imp *, const cvis__onnx_node *);

static const struct {
    const char *op;
    handler fn;
} handlers[] = {
    {"Conv", h_conv}, {"Gemm", h_gemm}, {"MatMul", h_matmul},
    {"Relu", h_activation}, {"LeakyRelu", h_activation}, {"Sigmoid", h_activation},
    {"Tanh", h_activation}, {"Clip", h_activation}, {"HardSigmoid", h_activation},
    {"HardSwish", h_activation}, {"Sqrt", h_activation}, {"Erf", h_activation},
    {"Exp", h_activation}, {"Log", h_activation}, {"Neg", h_activation}, {"Abs", h_activation},
    {"Reciprocal", h_activation}, {"Softplus", h_activation}, {"Elu", h_activation},
    {"Gelu", h_activation},
    {"Softmax", h_softmax}, {"LogSoftmax", h_softmax},
    {"Add", h_binary}, {"Sub", h_binary}, {"Mul", h_binary}, {"Div", h_binary}, {"Pow", h_binary},
    {"MaxPool", h_pool}, {"AveragePool", h_pool},
    {"GlobalAveragePool", h_reduce}, {"GlobalMaxPool", h_reduce}, {"ReduceMean", h_reduce},
    {"ReduceSum", h_reduce}, {"ReduceMax", h_reduce},
    {"BatchNormalization", h_batch_norm}, {"LayerNormalization", h_layer_norm},
    {"Flatten", h_flatten}, {"Reshape", h_reshape}, {"Squeeze", h_squeeze},
    {"Unsqueeze", h_squeeze}, {"Transpose", h_transpose}, {"Concat", h_concat},
    {"Split", h_split}, {"Slice", h_slice}, {"Gather", h_gather}, {"Pad", h_pad},
    {"Identity", h_identity}, {"Dropout", h_identity}, {"Cast", h_identity},
    {"Shape", h_shape}, {"Size", h_shape},
};

static handler find_handler(const char *op)
{
    for (size_t k = 0; k < sizeof handlers / sizeof handlers[0]; k++)
        if (!strcmp(handlers[k].op, op))
            return handlers[k].fn;
    return NULL;
}

static cvis_status import_node(imp *im, const cvis__onnx_node *n)
{
    int any_var = 0;
    for (int k = 0; k < n->n_in; k++) {
        if (!n->in[k][0])
            continue;
        val *v = input_val(im, n, k);
        if (!v || v->kind == V_NONE)
            return cvis__fail(CVIS_E_INTERNAL, "input \"%s\" was not computed", n->in[k]);
        any_var |= is_var(v);
    }
    /* nodes of constants only are computed now */
    if (!any_var)
        return fold_node(im, n);
    handler h = find_handler(n->op_type);
    if (!h)
        return cvis__fail(CVIS_E_UNSUPPORTED, "unsupported op");
    return h(im, n);
}

/* -------------------------------------------------------- graph setup */

static cvis_status add_value(imp *im, const char *name, int *index)
{
    int i = map_get(&im->vmap, name);
    if (i >= 0) {
        *index = i;
        return CVIS_OK;
    }
    CVIS_TRY(map_put(&im->vmap, name, im->nv));
    *index = im->nv++;
    return CVIS_OK;
}

/* Values, producers, consumers and a topological order of the nodes. */
static cvis_status build_graph(imp *im)
{
    const cvis__onnx_model *om = im->om;
    size_t nv = (size_t)om->n_init + (size_t)om->n_inputs;
    for (int i = 0; i < om->n_nodes; i++)
        nv += (size_t)om->nodes[i].n_out;
    CVIS_TRY(map_init(&im->vmap, nv));
    im->v = cvis__calloc(nv + 1, sizeof *im->v);
    int *producer = cvis__malloc((nv + 1) * sizeof(int));
    if (!im->v || !producer) {
        cvis__free(producer);
        return cvis__fail(CVIS_E_NOMEM, "out of memory importing a model");
    }
    cvis_status st = CVIS_OK;
    int vi;
    for (int i = 0; i < om->n_init && st == CVIS_OK; i++) {
        if ((st = add_value(im, om->init[i].name, &vi)) != CVIS_OK)
            break;
        val *v = &im->v[vi];
        v->kind = V_CONST;
        v->c[0] = v->c[1] = (cvis__onnx_tensor *)&om->init[i];
        v->from_init = 1;
        producer[vi] = -1;
    }
    for (int i = 0; i < om->n_inputs && st == CVIS_OK; i++) {
        if (map_get(&im->vmap, om->inputs[i].name) >= 0)
            continue; /* an initializer listed as an input (old files) */
        if ((st = add_value(im, om->inputs[i].name, &vi)) == CVIS_OK)
            producer[vi] = -1;
    }
    for (int i = 0; i < om->n_nodes && st == CVIS_OK; i++) {
        const cvis__onnx_node *n = &om->nodes[i];
        for (int k = 0; k < n->n_out && st == CVIS_OK; k++) {
            if (!n->out[k][0])
                continue;
            if (map_get(&im->vmap, n->out[k]) >= 0) {
                st = cvis__fail(CVIS_E_FORMAT, "value \"%s\" is produced twice (node \"%s\")",
                                n->out[k], node_label(n));
                break;
            }
            if ((st = add_value(im, n->out[k], &vi)) == CVIS_OK)
                producer[vi] = i;
        }
    }
    /* consumers, in-degrees */
    int *indeg = NULL, *fill = NULL;
    if (st == CVIS_OK) {
        im->cons_start = cvis__calloc((size_t)im->nv + 2, sizeof(int));
        im->is_output = cvis__calloc((size_t)im->nv + 1, 1);
        im->done = cvis__calloc((size_t)om->n_nodes + 1, 1);
        im->order = cvis__calloc((size_t)om->n_nodes + 1, sizeof(int));
        indeg = cvis__calloc((size_t)om->n_nodes + 1, sizeof(int));
        fill = cvis__calloc((size_t)im->nv + 1, sizeof(int));
        if (!im->cons_start || !im->is_output || !im->done || !im->order || !indeg || !fill)
            st = cvis__fail(CVIS_E_NOMEM, "out of memory importing a model");
    }
    size_t n_edges = 0;
    for (int i = 0; i < om->n_nodes && st == CVIS_OK; i++) {
        const cvis__onnx_node *n = &om->nodes[i];
        for (int k = 0; k < n->n_in; k++) {
            if (!n->in[k][0])
                continue;
            int u = map_get(&im->vmap, n->in[k]);
            if (u < 0) {
                st = cvis__fail(CVIS_E_FORMAT, "node \"%s\" (%s) reads \"%s\", which no node, "
                                "initializer or graph input produces", node_label(n),
                                n->op_type, n->in[k]);
                break;
            }
            im->cons_start[u + 1]++;
            n_edges++;
            if (producer[u] >= 0)
                indeg[i]++;
        }
    }
    if (st == CVIS_OK) {
        for (int u = 0; u < im->nv; u++)
            im->cons_start[u + 1] += im->cons_start[u];
        im->cons = cvis__malloc((n_edges + 1) * sizeof(int));
        if (!im->cons)
            st = cvis__fail(CVIS_E_NOMEM, "out of memory importing a model");
    }
    for (int i = 0; i < om->n_nodes && st == CVIS_OK; i++) {
        const cvis__onnx_node *n = &om->nodes[i];
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k][0]) {
                int u = map_get(&im->vmap, n->in[k]);
                im->cons[im->cons_start[u] + fill[u]++] = i;
            }
    }
    /* Kahn's algorithm; nodes that do not depend on the input first, so
     * that constants are known before the layers that use them */
    if (st == CVIS_OK) {
        unsigned char *dep = cvis__calloc((size_t)om->n_nodes + 1, 1);
        int *queue = cvis__malloc(((size_t)om->n_nodes + 1) * sizeof(int));
        if (!dep || !queue) {
            st = cvis__fail(CVIS_E_NOMEM, "out of memory importing a model");
        } else {
            /* dependence on a graph input, propagated in a first ordering */
            int head = 0, tail = 0, done = 0;
            int *deg2 = fill; /* reuse: copy of in-degrees */
            for (int i = 0; i < om->n_nodes; i++) {
                deg2[i] = indeg[i];
                if (!deg2[i])
                    queue[tail++] = i;
            }
            while (head < tail) {
                int i = queue[head++];
                const cvis__onnx_node *n = &om->nodes[i];
                for (int k = 0; k < n->n_in; k++) {
                    int u = n->in[k][0] ? map_get(&im->vmap, n->in[k]) : -1;
                    if (u >= 0 && ((producer[u] < 0 && im->v[u].kind != V_CONST) ||
                                   (producer[u] >= 0 && dep[producer[u]])))
                        dep[i] = 1;
                }
                for (int k = 0; k < n->n_out; k++) {
                    int u = n->out[k][0] ? map_get(&im->vmap, n->out[k]) : -1;
                    if (u < 0)
                        continue;
                    for (int c = im->cons_start[u]; c < im->cons_start[u + 1]; c++)
                        if (--deg2[im->cons[c]] == 0)
                            queue[tail++] = im->cons[c];
                }
            }
            if (tail != om->n_nodes) {
                int culprit = 0;
                for (int i = 0; i < om->n_nodes; i++)
                    if (deg2[i] > 0) {
                        culprit = i;
                        break;
                    }
                st = cvis__fail(CVIS_E_FORMAT, "the graph has a cycle through node \"%s\" (%s)",
                                node_label(&om->nodes[culprit]), om->nodes[culprit].op_type);
            } else {
                /* The file's own order when it is topological (ONNX asks for
                 * it; layers then come in the order Netron shows), else
                 * Kahn's.  Nodes that do not depend on the input go first. */
                int sorted = 1;
                for (int i = 0; i < om->n_nodes && sorted; i++)
                    for (int k = 0; k < om->nodes[i].n_in; k++) {
                        int u = om->nodes[i].in[k][0] ? map_get(&im->vmap, om->nodes[i].in[k]) : -1;
                        if (u >= 0 && producer[u] >= i)
                            sorted = 0;
                    }
                if (sorted)
                    for (int i = 0; i < om->n_nodes; i++)
                        queue[i] = i;
                for (int k = 0; k < tail; k++)
                    if (!dep[queue[k]])
                        im->order[done++] = queue[k];
                for (int k = 0; k < tail; k++)
                    if (dep[queue[k]])
                        im->order[done++] = queue[k];
            }
        }
        cvis__free(dep);
        cvis__free(queue);
    }
    for (int i = 0; i < om->n_outputs && st == CVIS_OK; i++) {
        int u = map_get(&im->vmap, om->outputs[i].name);
        if (u < 0)
            st = cvis__fail(CVIS_E_FORMAT, "graph output \"%s\" is never produced",
                            om->outputs[i].name);
        else
            im->is_output[u] = 1;
    }
    cvis__free(indeg);
    cvis__free(fill);
    cvis__free(producer);
    return st;
}

/* The image input: exactly one graph input that is not an initializer. */
static cvis_status setup_input(imp *im)
{
    const cvis__onnx_model *om = im->om;
    const cvis__onnx_value_info *in = NULL;
    int n_real = 0;
    for (int i = 0; i < om->n_inputs; i++) {
        int u = map_get(&im->vmap, om->inputs[i].name);
        if (u >= 0 && im->v[u].kind == V_CONST)
            continue;
        if (u >= 0 && im->cons_start[u + 1] == im->cons_start[u] && !im->is_output[u])
            continue; /* unused */
        n_real++;
        in = &om->inputs[i];
    }
    if (n_real != 1)
        return cvis__fail(CVIS_E_UNSUPPORTED, "libcvis models take one image input; this graph "
                          "has %d", n_real);
    /* libcvis computes in float32 whatever float type the file declares */
    if (!cvis__onnx_is_float_type(in->elem_type) && in->elem_type != 0)
        return cvis__fail(CVIS_E_UNSUPPORTED, "input \"%s\" has element type %d, not a float "
                          "type", in->name, in->elem_type);
    if (in->ndim != 4)
        return cvis__fail(CVIS_E_UNSUPPORTED, "input \"%s\" must be a batch of images (rank 4), "
                          "not %s", in->name, in->ndim < 0 ? "of unknown rank" : "this rank");
    int u = map_get(&im->vmap, in->name);
    /* NHWC files (tf2onnx) transpose their input to NCHW first */
    int nhwc = im->cons_start[u + 1] > im->cons_start[u];
    for (int c = im->cons_start[u]; c < im->cons_start[u + 1]; c++) {
        const cvis__onnx_node *n = &om->nodes[im->cons[c]];
        int64_t p[CVIS_MAX_DIMS];
        int np;
        if (strcmp(n->op_type, "Transpose") || attr_ints(n, "perm", p, CVIS_MAX_DIMS, &np) ||
            np != 4 || p[0] != 0 || p[1] != 3 || p[2] != 1 || p[3] != 2)
            nhwc = 0;
    }
    int64_t hwc[3];
    static const int from_nchw[3] = {2, 3, 1}, from_nhwc[3] = {1, 2, 3};
    for (int k = 0; k < 3; k++) {
        hwc[k] = in->dims[nhwc ? from_nhwc[k] : from_nchw[k]];
        if (hwc[k] > (1 << 20) || hwc[k] == 0)
            return cvis__fail(CVIS_E_UNSUPPORTED, "input \"%s\" has size %lld", in->name,
                              (long long)hwc[k]);
    }
    if (hwc[2] < 1)
        return cvis__fail(CVIS_E_UNSUPPORTED, "input \"%s\" has no fixed channel count",
                          in->name);
    CVIS_TRY(cvis__model_new(hwc[0], hwc[1], hwc[2], &im->m));
    for (int s = 0; s < 2; s++) {
        cvis__shape *sh = &im->in_sh[s];
        memset(sh, 0, sizeof *sh);
        sh->ndim = 4;
        sh->d[0] = 1;
        for (int k = 0; k < 3; k++)
            sh->d[k + 1] = hwc[k] >= 0 ? hwc[k] : (s ? STAND_B : STAND_A);
    }
    val *v = &im->v[u];
    v->kind = V_VAR;
    v->layer = CVIS_INPUT;
    v->rank = 4;
    v->s[0] = im->in_sh[0];
    v->s[1] = im->in_sh[1];
    v->conv_layer = -2;
    if (nhwc)
        perm_identity(v->perm, 4);
    else
        memcpy(v->perm, NHWC, sizeof NHWC);
    return CVIS_OK;
}

/* Graph outputs become model outputs, as NHWC feature maps or in ONNX
 * order for other ranks. */
static cvis_status setup_outputs(imp *im)
{
    const cvis__onnx_model *om = im->om;
    if (om->n_outputs < 1 || om->n_outputs > 1024)
        return cvis__fail(CVIS_E_UNSUPPORTED, "a graph with %d outputs", om->n_outputs);
    int *layers = cvis__malloc((size_t)om->n_outputs * sizeof(int));
    if (!layers)
        return cvis__fail(CVIS_E_NOMEM, "out of memory importing a model");
    cvis_status st = CVIS_OK;
    static const cvis__onnx_node out_node = {"output", "Output", NULL, 0, 0, 0, NULL, NULL, NULL};
    im->cur = &out_node;
    for (int i = 0; i < om->n_outputs && st == CVIS_OK; i++) {
        val *v = &im->v[map_get(&im->vmap, om->outputs[i].name)];
        if (v->kind != V_VAR) {
            st = cvis__fail(CVIS_E_UNSUPPORTED, "graph output \"%s\" does not depend on the "
                            "input", om->outputs[i].name);
            break;
        }
        if ((st = materialize(im, v)) != CVIS_OK)
            break;
        int want[CVIS_MAX_DIMS];
        if (v->rank == 4)
            memcpy(want, NHWC, sizeof NHWC);
        else
            perm_identity(want, v->rank);
        if ((st = to_perm(im, v, want, &layers[i])) != CVIS_OK)
            break;
        if (layers[i] == CVIS_INPUT) {
            char none = 0;
            int id = CVIS_INPUT;
            st = emit_plain(im, NULL, "Identity", &cvis__op_identity, &none, 1, 1, &id,
                            &layers[i]);
        }
    }
    if (st == CVIS_OK)
        st = cvis_model_set_outputs(im->m, om->n_outputs, layers);
    cvis__free(layers);
    return st;
}

static cvis_status import_model(const cvis__onnx_model *om, size_t file_size, cvis_model **out)
{
    imp im;
    memset(&im, 0, sizeof im);
    im.om = om;
    im.opset = om->opset;
    im.max_fold = (int64_t)(1 << 20) + (int64_t)(file_size / 4);
    if (om->opset < 7 || om->opset > 18)
        return cvis__fail(CVIS_E_UNSUPPORTED, "opset %lld (libcvis reads opsets 7 to 18)",
                          (long long)om->opset);
    if (om->n_nodes > MAX_NODES)
        return cvis__fail(CVIS_E_UNSUPPORTED, "a graph of %d nodes (at most %d)", om->n_nodes,
                          MAX_NODES);
    for (int i = 0; i < om->n_nodes; i++) {
        const char *d = om->nodes[i].domain;
        if (d && d[0] && strcmp(d, "ai.onnx"))
            return cvis__fail(CVIS_E_UNSUPPORTED,
                              "unsupported op %s of domain \"%s\" (node \"%s\", opset %lld)",
                              om->nodes[i].op_type, d, node_label(&om->nodes[i]),
                              (long long)om->opset);
    }
    cvis_status st = build_graph(&im);
    if (st == CVIS_OK)
        st = map_init(&im.names, 64);
    if (st == CVIS_OK)
        st = setup_input(&im);
    for (int k = 0; k < om->n_nodes && st == CVIS_OK; k++) {
        int ni = im.order[k];
        if (im.done[ni])
            continue;
        const cvis__onnx_node *n = &om->nodes[ni];
        im.cur = n;
        st = import_node(&im, n);
        if (st != CVIS_OK) {
            if (st == CVIS_E_UNSUPPORTED && !strcmp(cvis_last_error(), "unsupported op"))
                st = cvis__fail(CVIS_E_UNSUPPORTED, "unsupported op %s (node \"%s\", opset %lld)",
                                n->op_type, node_label(n), (long long)im.opset);
            else
                cvis__wrap_error(st, "node \"%s\" (%s, opset %lld)", node_label(n), n->op_type,
                                 (long long)im.opset);
        }
    }
    if (st == CVIS_OK)
        st = setup_outputs(&im);
    if (st == CVIS_OK && cvis_model_layer_count(im.m) == 0)
        st = cvis__fail(CVIS_E_UNSUPPORTED, "the graph computes nothing from its input");
    if (st == CVIS_OK) {
        *out = im.m;
        im.m = NULL;
    }
    cvis_model_free(im.m);
    imp_release(&im);
    return st;
}

/* ------------------------------------------------------------ public API */

static cvis_status load_memory(const void *data, size_t size, const char *dir, cvis_model **out)
{
    cvis__onnx_model *om;
    CVIS_TRY(cvis__onnx_read(data, size, dir, &om));
    cvis_status st = import_model(om, size, out);
    cvis__onnx_free(om);
    return st;
}

CVIS_API cvis_status cvis_model_load_onnx_memory(const void *data, size_t size, cvis_model **out)
{
    CVIS_CHECK_ARG(out, "out is NULL");
    CVIS_CHECK_ARG(data || size == 0, "data is NULL");
    cvis_status st = load_memory(data, size, NULL, out);
    if (st != CVIS_OK)
        cvis__wrap_error(st, "loading an ONNX model from memory");
    return st;
}

CVIS_API cvis_status cvis_model_load_onnx(const char *path, cvis_model **out)
{
    CVIS_CHECK_ARG(path && out, "path or out is NULL");
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return cvis__fail(CVIS_E_IO, "cannot open \"%s\"", path);
    struct stat sb;
    cvis_status st = CVIS_OK;
    uint8_t *buf = NULL;
    size_t size = 0;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = cvis__fail(CVIS_E_IO, "\"%s\" is not a regular file", path);
    } else if ((uint64_t)sb.st_size > SIZE_MAX - 1) {
        st = cvis__fail(CVIS_E_LIMIT, "\"%s\" is too large", path);
    } else {
        size = (size_t)sb.st_size;
        st = cvis__alloc(size ? size : 1, "the ONNX file", (void **)&buf);
        if (st == CVIS_OK && size && fread(buf, 1, size, fp) != size)
            st = cvis__fail(CVIS_E_IO, "reading \"%s\" failed", path);
    }
    fclose(fp);
    char *dir = NULL;
    if (st == CVIS_OK) { /* external data lives beside the model */
        const char *slash = strrchr(path, '/');
        size_t dl = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
        st = cvis__alloc(dl + 1, "a path", (void **)&dir);
        if (st == CVIS_OK) {
            memcpy(dir, !slash ? "." : slash == path ? "/" : path, dl);
            dir[dl] = 0;
        }
    }
    /* the file's bytes go as soon as they are decoded: weights are large */
    cvis__onnx_model *om = NULL;
    if (st == CVIS_OK)
        st = cvis__onnx_read(buf, size, dir, &om);
    cvis__free(buf);
    if (st == CVIS_OK)
        st = import_model(om, size, out);
    cvis__onnx_free(om);
    cvis__free(dir);
    if (st != CVIS_OK)
        cvis__wrap_error(st, "loading \"%s\"", path);
    return st;
}
