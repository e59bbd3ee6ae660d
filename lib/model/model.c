/* Model graphs: creation, the layer builders, enumeration and weights. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"

/* Free spatial sizes are inferred with these stand-ins; an axis whose size
 * differs between the two depends on the input and is reported as -1. */
#define FREE_SIZE_A 224
#define FREE_SIZE_B 320

static void layer_release(cvis__layer *l)
{
    cvis__free(l->name);
    for (int i = 0; i < l->n_aliases; i++)
        cvis__free(l->aliases[i]);
    cvis__free(l->aliases);
    cvis__free(l->type);
    cvis__free(l->attr);
    cvis__free(l->in);
    /* a layer that failed half-built may have n_w set but no arrays yet */
    for (int i = 0; i < l->n_w; i++) {
        cvis_tensor_free(l->w ? l->w[i] : NULL);
        cvis__free(l->w_names ? l->w_names[i] : NULL);
    }
    cvis__free(l->w);
    cvis__free(l->w_names);
    cvis__free(l->w_trainable);
    memset(l, 0, sizeof *l);
}

static void graph_unref(cvis__graph *g)
{
    if (!g || atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    for (int i = 0; i < g->n_layers; i++)
        layer_release(&g->layers[i]);
    cvis__free(g->layers);
    cvis__free(g);
}

cvis_status cvis__model_new(int64_t h, int64_t w, int64_t c, cvis_model **out)
{
    cvis_model *m = cvis__calloc(1, sizeof *m);
    cvis__graph *g = cvis__calloc(1, sizeof *g);
    if (!m || !g) {
        cvis__free(m);
        cvis__free(g);
        return cvis__fail(CVIS_E_NOMEM, "out of memory for a model");
    }
    atomic_init(&g->refs, 1);
    g->in_shape[0] = h;
    g->in_shape[1] = w;
    g->in_shape[2] = c;
    m->g = g;
    m->outputs_follow_last = 1;
    *out = m;
    return CVIS_OK;
}

CVIS_API cvis_status cvis_model_new(int64_t height, int64_t width, int64_t channels,
                                    cvis_model **out)
{
    CVIS_CHECK_ARG(out, "out is NULL");
    if (height < 1 || width < 1 || channels < 1 || height > (1 << 20) || width > (1 << 20) ||
        channels > (1 << 20))
        return cvis__fail(CVIS_E_INVALID_ARG,
                          "cvis_model_new: input size %lldx%lldx%lld must be positive",
                          (long long)height, (long long)width, (long long)channels);
    return cvis__model_new(height, width, channels, out);
}

CVIS_API void cvis_model_free(cvis_model *m)
{
    if (!m)
        return;
    graph_unref(m->g);
    cvis__free(m->out);
    cvis__free(m);
}

/* ------------------------------------------------------------- names */

static int name_taken(const cvis__graph *g, const char *name)
{
    for (int i = 0; i < g->n_layers; i++) {
        if (!strcmp(g->layers[i].name, name))
            return 1;
        for (int k = 0; k < g->layers[i].n_aliases; k++)
            if (!strcmp(g->layers[i].aliases[k], name))
                return 1;
    }
    return 0;
}

/* Keras-style automatic names: prefix, prefix_1, prefix_2, ... */
static void auto_name(const cvis__graph *g, const char *prefix, char *buf, size_t size)
{
    snprintf(buf, size, "%s", prefix);
    for (int k = 1; name_taken(g, buf); k++)
        snprintf(buf, size, "%s_%d", prefix, k);
}

/* ------------------------------------------------------------- shapes */

/* The model input's shape for stand-in set `which` (0 or 1). */
static cvis__shape input_shape(const cvis__graph *g, int which)
{
    cvis__shape s;
    memset(&s, 0, sizeof s);
    s.ndim = 4;
    s.d[0] = 1;
    for (int i = 0; i < 3; i++)
        s.d[i + 1] = g->in_shape[i] >= 0 ? g->in_shape[i] : (which ? FREE_SIZE_B : FREE_SIZE_A);
    return s;
}

/* Shapes for both stand-in sets are kept in scratch arrays during a call. */
static cvis_status layer_shapes(const cvis__graph *g, const cvis__op *op, const void *attr,
                                int n_in, const int *in, const cvis__shape *shapes_a,
                                const cvis__shape *shapes_b, cvis__shape *out_a,
                                cvis__shape *out_b)
{
    cvis__shape ia[CVIS__MAX_OP_INPUTS], ib[CVIS__MAX_OP_INPUTS];
    for (int i = 0; i < n_in; i++) {
        ia[i] = in[i] == CVIS_INPUT ? input_shape(g, 0) : shapes_a[in[i]];
        ib[i] = in[i] == CVIS_INPUT ? input_shape(g, 1) : shapes_b[in[i]];
    }
    memset(out_a, 0, sizeof *out_a);
    memset(out_b, 0, sizeof *out_b);
    CVIS_TRY(op->shape(attr, n_in, ia, out_a));
    CVIS_TRY(op->shape(attr, n_in, ib, out_b));
    return CVIS_OK;
}

/* Recomputes every layer's shape; the stand-in shapes live only here. */
static cvis_status infer_all_shapes(cvis__graph *g, const cvis__op *extra_op,
                                    const void *extra_attr, int extra_n_in, const int *extra_in,
                                    cvis__shape *extra_out)
{
    int n = g->n_layers + 1;
    cvis__shape *sa = cvis__calloc((size_t)n, sizeof *sa), *sb = cvis__calloc((size_t)n, sizeof *sb);
    if (!sa || !sb) {
        cvis__free(sa);
        cvis__free(sb);
        return cvis__fail(CVIS_E_NOMEM, "out of memory inferring shapes");
    }
    cvis_status st = CVIS_OK;
    for (int i = 0; i < g->n_layers && st == CVIS_OK; i++) {
        const cvis__layer *l = &g->layers[i];
        st = layer_shapes(g, l->op, l->attr, l->n_in, l->in, sa, sb, &sa[i], &sb[i]);
    }
    if (st == CVIS_OK && extra_op) {
        st = layer_shapes(g, extra_op, extra_attr, extra_n_in, extra_in, sa, sb,
                          &sa[g->n_layers], &sb[g->n_layers]);
        if (st == CVIS_OK) {
            *extra_out = sa[g->n_layers];
            for (int d = 0; d < extra_out->ndim; d++)
                if (sb[g->n_layers].d[d] != extra_out->d[d] || sb[g->n_layers].ndim != extra_out->ndim)
                    extra_out->d[d] = -1;
        }
    }
    cvis__free(sa);
    cvis__free(sb);
    return st;
}

/* ------------------------------------------------------------- layers */

cvis_status cvis__model_add_layer(cvis_model *m, const char *name, const char *name_prefix,
                                  const char *type, const cvis__op *op, void *attr, int n_in,
                                  const int *in, int n_w, cvis_tensor **w,
                                  const char *const *w_names, const unsigned char *trainable,
                                  int conv_like, int *out_layer)
{
    cvis__graph *g = m->g;
    cvis_status st = CVIS_OK;
    cvis__layer l;
    memset(&l, 0, sizeof l);
    l.attr = attr;
    char auto_buf[256];
    int *ins = NULL;
    if (atomic_load(&g->refs) > 1) {
        st = cvis__fail(CVIS_E_STATE, "the model shares its layers with a submodel; "
                                      "add layers before making submodels");
        goto fail;
    }
    if (n_in < 1 || n_in > CVIS__MAX_OP_INPUTS) {
        st = cvis__fail(CVIS_E_INVALID_ARG, "a layer takes 1 to %d inputs, not %d",
                        CVIS__MAX_OP_INPUTS, n_in);
        goto fail;
    }
    ins = cvis__malloc((size_t)n_in * sizeof *ins);
    if (!ins) {
        st = cvis__fail(CVIS_E_NOMEM, "out of memory adding a layer");
        goto fail;
    }
    for (int i = 0; i < n_in; i++) {
        int v = in[i];
        if (v == CVIS_PREV)
            v = g->n_layers > 0 ? g->n_layers - 1 : CVIS_INPUT;
        if (v != CVIS_INPUT && (v < 0 || v >= g->n_layers)) {
            st = cvis__fail(CVIS_E_RANGE, "input layer %d does not exist (the model has %d layers)",
                            in[i], g->n_layers);
            goto fail;
        }
        ins[i] = v;
    }
    if (name) {
        if (!*name || strlen(name) > 200) {
            st = cvis__fail(CVIS_E_INVALID_ARG, "a layer name must have 1 to 200 characters");
            goto fail;
        }
        if (name_taken(g, name)) {
            st = cvis__fail(CVIS_E_INVALID_ARG, "a layer called \"%s\" already exists", name);
            goto fail;
        }
    } else {
        auto_name(g, name_prefix, auto_buf, sizeof auto_buf);
        name = auto_buf;
    }
    st = infer_all_shapes(g, op, attr, n_in, ins, &l.out_shape);
    if (st != CVIS_OK) {
        cvis__wrap_error(st, "layer \"%s\"", name);
        goto fail;
    }
    if (g->n_layers == g->cap) {
        int ncap = g->cap ? 2 * g->cap : 16;
        void *p;
        st = cvis__realloc(g->layers, (size_t)ncap * sizeof(cvis__layer), "layers", &p);
        if (st != CVIS_OK)
            goto fail;
        g->layers = p;
        g->cap = ncap;
    }
    l.name = cvis__strdup(name);
    l.type = cvis__strdup(type);
    l.in = ins;
    ins = NULL;
    l.n_in = n_in;
    l.op = op;
    l.conv_like = conv_like;
    if (n_w) {
        l.w = cvis__calloc((size_t)n_w, sizeof *l.w);
        l.w_names = cvis__calloc((size_t)n_w, sizeof *l.w_names);
        l.w_trainable = cvis__calloc((size_t)n_w, 1);
        if (l.w)
            l.n_w = n_w; /* layer_release walks l.w up to n_w */
    }
    if (!l.name || !l.type || (n_w && (!l.w || !l.w_names || !l.w_trainable))) {
        st = cvis__fail(CVIS_E_NOMEM, "out of memory adding a layer");
        goto fail;
    }
    for (int i = 0; i < n_w; i++) {
        l.w[i] = w[i];
        w[i] = NULL;
        l.w_trainable[i] = trainable ? trainable[i] : 1;
        l.w_names[i] = cvis__strdup(w_names[i]);
        if (!l.w_names[i]) {
            st = cvis__fail(CVIS_E_NOMEM, "out of memory adding a layer");
            goto fail;
        }
    }
    g->layers[g->n_layers] = l;
    if (out_layer)
        *out_layer = g->n_layers;
    g->n_layers++;
    m->version++;
    if (m->outputs_follow_last) {
        if (!m->out) {
            m->out = cvis__malloc(sizeof *m->out);
            if (!m->out) {
                g->n_layers--;
                layer_release(&g->layers[g->n_layers]);
                return cvis__fail(CVIS_E_NOMEM, "out of memory adding a layer");
            }
        }
        m->n_out = 1;
        m->out[0] = g->n_layers - 1;
    }
    return CVIS_OK;
fail:
    cvis__free(ins);
    for (int i = 0; i < n_w; i++)
        if (w[i])
            cvis_tensor_free(w[i]);
    layer_release(&l);  /* frees attr and whatever was copied */
    return st;
}

cvis_status cvis__model_add_alias(cvis_model *m, int layer, const char *alias)
{
    cvis__layer *l = &m->g->layers[layer];
    if (name_taken(m->g, alias))
        return CVIS_OK;
    char *copy = cvis__strdup(alias);
    char **p = copy ? cvis__malloc((size_t)(l->n_aliases + 1) * sizeof *p) : NULL;
    if (!p) {
        cvis__free(copy);
        return cvis__fail(CVIS_E_NOMEM, "out of memory naming a layer");
    }
    if (l->n_aliases)
        memcpy(p, l->aliases, (size_t)l->n_aliases * sizeof *p);
    cvis__free(l->aliases);
    p[l->n_aliases++] = copy;
    l->aliases = p;
    return CVIS_OK;
}

/* ---------------------------------------------------------- weights init */

/* Glorot-uniform for kernels (Keras's fan computation), zeros for biases,
 * identity for batch norm. */
static void init_layer_weights(cvis__layer *l, int index, uint64_t seed)
{
    cvis__rng r;
    cvis__rng_seed(&r, seed ^ (0x9E3779B97F4A7C15ULL * (uint64_t)(index + 1)));
    for (int k = 0; k < l->n_w; k++) {
        cvis_tensor *t = l->w[k];
        const char *nm = l->w_names[k];
        if (!strcmp(nm, "kernel")) {
            double fan_in, fan_out;
            if (t->ndim == 4) {
                double rf = (double)t->shape[0] * t->shape[1];
                fan_in = rf * t->shape[2];
                fan_out = rf * t->shape[3];
            } else {
                fan_in = (double)t->shape[0];
                fan_out = (double)t->shape[t->ndim - 1];
            }
            double limit = sqrt(6.0 / (fan_in + fan_out));
            for (int64_t i = 0; i < t->size; i++)
                t->data[i] = (float)((2 * cvis__rng_uniform(&r) - 1) * limit);
        } else {
            float v = (!strcmp(nm, "gamma") || !strcmp(nm, "moving_variance")) ? 1.0f : 0.0f;
            for (int64_t i = 0; i < t->size; i++)
                t->data[i] = v;
        }
    }
}

CVIS_API cvis_status cvis_model_init_weights(cvis_model *m, uint64_t seed)
{
    CVIS_CHECK_ARG(m, "model is NULL");
    for (int i = 0; i < m->g->n_layers; i++)
        init_layer_weights(&m->g->layers[i], i, seed);
    return CVIS_OK;
}

/* --------------------------------------------------------------- builders */

/* Allocates an attribute struct and copies `src` into it. */
static cvis_status dup_attr(const void *src, size_t size, void **out)
{
    void *p = cvis__malloc(size);
    if (!p)
        return cvis__fail(CVIS_E_NOMEM, "out of memory adding a layer");
    memcpy(p, src, size);
    *out = p;
    return CVIS_OK;
}

/* The shape of input `in` of the layer being added (batch axis included). */
static cvis_status input_shape_of(const cvis_model *m, int in, cvis__shape *s)
{
    if (in == CVIS_PREV)
        in = m->g->n_layers > 0 ? m->g->n_layers - 1 : CVIS_INPUT;
    if (in == CVIS_INPUT) {
        *s = input_shape(m->g, 0);
        for (int i = 0; i < 3; i++)
            if (m->g->in_shape[i] < 0)
                s->d[i + 1] = -1;
        return CVIS_OK;
    }
    if (in < 0 || in >= m->g->n_layers)
        return cvis__fail(CVIS_E_RANGE, "input layer %d does not exist (the model has %d layers)",
                          in, m->g->n_layers);
    *s = m->g->layers[in].out_shape;
    return CVIS_OK;
}

/* Creates n weight tensors of the given shapes (each up to 4 axes). */
static cvis_status make_weights(int n, const int *ndims, const int64_t (*shapes)[4],
                                cvis_tensor **w)
{
    for (int i = 0; i < n; i++) {
        cvis_status st = cvis__tensor_new(ndims[i], shapes[i], 1, &w[i]);
        if (st != CVIS_OK) {
            for (int k = 0; k < i; k++)
                cvis_tensor_free(w[k]);
            return st;
        }
    }
    return CVIS_OK;
}

static cvis_status add_with_weights(cvis_model *m, const char *name, const char *prefix,
                                    const char *type, const cvis__op *op, const void *attr,
                                    size_t attr_size, int n_in, const int *in, int n_w,
                                    const int *ndims, const int64_t (*shapes)[4],
                                    const char *const *w_names, const unsigned char *trainable,
                                    int conv_like, int *out_layer)
{
    void *a = NULL;
    cvis_tensor *w[CVIS__MAX_OP_PARAMS] = {0};
    CVIS_TRY(dup_attr(attr, attr_size, &a));
    cvis_status st = make_weights(n_w, ndims, shapes, w);
    if (st != CVIS_OK) {
        cvis__free(a);
        return st;
    }
    int idx;
    CVIS_TRY(cvis__model_add_layer(m, name, prefix, type, op, a, n_in, in, n_w, w, w_names,
                                   trainable, conv_like, &idx));
    init_layer_weights(&m->g->layers[idx], idx, 0);
    if (out_layer)
        *out_layer = idx;
    return CVIS_OK;
}

static cvis_status check_activation(int act, int fused)
{
    if (!cvis__act_name(act))
        return cvis__fail(CVIS_E_INVALID_ARG, "unknown activation %d", act);
    if (fused && !cvis__act_fusable(act))
        return cvis__fail(CVIS_E_UNSUPPORTED,
                          "%s cannot be fused into a layer; add it as its own activation layer",
                          cvis__act_name(act));
    return CVIS_OK;
}

CVIS_API cvis_status cvis_model_add_conv2d_ex(cvis_model *m, const char *name, int input,
                                              int filters, int kernel_h, int kernel_w,
                                              int stride_h, int stride_w, int dilation_h,
                                              int dilation_w, int groups, cvis_padding padding,
                                              int pad_top, int pad_left, int pad_bottom,
                                              int pad_right, int use_bias,
                                              cvis_activation activation, int *out_layer)
{
    CVIS_CHECK_ARG(m, "model is NULL");
    if (filters < 1 || kernel_h < 1 || kernel_w < 1 || stride_h < 1 || stride_w < 1 ||
        dilation_h < 1 || dilation_w < 1 || groups < 1 || filters > (1 << 20) ||
        kernel_h > 4096 || kernel_w > 4096)
        return cvis__fail(CVIS_E_INVALID_ARG,
                          "convolution: filters, kernel, stride, dilation and groups must be positive");
    if (padding != CVIS_PADDING_VALID && padding != CVIS_PADDING_SAME &&
        padding != CVIS_PADDING_EXPLICIT)
        return cvis__fail(CVIS_E_INVALID_ARG, "unknown padding %d", (int)padding);
    CVIS_TRY(check_activation(activation, 1));
    cvis__shape xs;
    CVIS_TRY(input_shape_of(m, input, &xs));
    if (xs.ndim != 4)
        return cvis__fail(CVIS_E_SHAPE, "convolution needs a (H,W,C) input, its input has rank %d",
                          xs.ndim - 1);
    int64_t cin = xs.d[3];
    if (cin < 1 || cin % groups || filters % groups)
        return cvis__fail(CVIS_E_SHAPE, "convolution: %d groups must divide %lld input and %d output channels",
                          groups, (long long)cin, filters);
    cvis__conv_attr a = {kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w, groups,
                         padding == CVIS_PADDING_SAME ? CVIS__PAD_SAME_UPPER
                         : padding == CVIS_PADDING_VALID ? CVIS__PAD_VALID : CVIS__PAD_EXPLICIT,
                         pad_top, pad_left, pad_bottom, pad_right, filters, use_bias ? 1 : 0, 0, 0,
                         activation, 0.01f};
    int ndims[2] = {4, 1};
    int64_t shapes[2][4] = {{kernel_h, kernel_w, cin / groups, filters}, {filters}};
    const char *names[2] = {"kernel", "bias"};
    int depthwise = groups > 1 && groups == cin;
    return add_with_weights(m, name, depthwise ? "depthwise_conv2d" : "conv2d",
                            depthwise ? "DepthwiseConv2D" : "Conv2D", &cvis__op_conv2d, &a,
                            sizeof a, 1, &input, use_bias ? 2 : 1, ndims, shapes, names, NULL, 1,
                            out_layer);
}

CVIS_API cvis_status cvis_model_add_conv2d(cvis_model *m, const char *name, int input,
                                           int filters, int kernel_h, int kernel_w, int stride,
                                           cvis_padding padding, cvis_activation activation,
                                           int *out_layer)
{
    if (padding == CVIS_PADDING_EXPLICIT)
        return cvis__fail(CVIS_E_INVALID_ARG,
                          "cvis_model_add_conv2d takes VALID or SAME; use _ex for explicit pads");
    return cvis_model_add_conv2d_ex(m, name, input, filters, kernel_h, kernel_w, stride, stride, 1,
                                    1, 1, padding, 0, 0, 0, 0, 1, activation, out_layer);
}

CVIS_API cvis_status cvis_model_add_dense(cvis_model *m, const char *name, int input, int units,
                                          cvis_activation activation, int *out_layer)
{
    CVIS_CHECK_ARG(m, "model is NULL");
    if (units < 1 || units > (1 << 24))
        return cvis__fail(CVIS_E_INVALID_ARG, "dense: units must be positive");
    CVIS_TRY(check_activation(activation, 1));
    cvis__shape xs;
    CVIS_TRY(input_shape_of(m, input, &xs));
    int64_t in = xs.d[xs.ndim - 1];
    if (xs.ndim < 2 || in < 1)
        return cvis__fail(CVIS_E_SHAPE, "dense needs an input with a known feature axis");
    cvis__dense_attr a = {units, 1, activation, 0.01f};
    int ndims[2] = {2, 1};
    int64_t shapes[2][4] = {{in, units}, {units}};
    const char *names[2] = {"kernel", "bias"};
    return add_with_weights(m, name, "dense", "Dense", &cvis__op_dense, &a, sizeof a, 1, &input, 2,
                            ndims, shapes, names, NULL, 0, out_layer);
}

static cvis_status add_plain(cvis_model *m, const char *name, const char *prefix, const char *type,
                             const cvis__op *op, const void *attr, size_t attr_size, int n_in,
                             const int *in, int *out_layer)
{
    CVIS_CHECK_ARG(m, "model is NULL");
    return add_with_weights(m, name, prefix, type, op, attr, attr_size, n_in, in, 0, NULL, NULL,
                            NULL, NULL, 0, out_layer);
}

CVIS_API cvis_status cvis_model_add_activation(cvis_model *m, const char *name, int input,
                                               cvis_activation activation, int *out_layer)
{
    CVIS_TRY(check_activation(activation, 0));
    cvis__act_attr a = {activation, 0.01f};
    const char *prefix = "activation", *type = "Activation";
    if (activation == CVIS_ACT_RELU) {
        prefix = "re_lu";
        type = "ReLU";
    } else if (activation == CVIS_ACT_SOFTMAX) {
        prefix = "softmax";
        type = "Softmax";
    }
    return add_plain(m, name, prefix, type, &cvis__op_activation, &a, sizeof a, 1, &input, out_layer);
}

CVIS_API cvis_status cvis_model_add_leaky_relu(cvis_model *m, const char *name, int input,
                                               float alpha, int *out_layer)
{
    if (!isfinite(alpha) || alpha <= 0)
        return cvis__fail(CVIS_E_INVALID_ARG, "leaky relu: alpha must be positive and finite");
    cvis__act_attr a = {CVIS_ACT_LEAKY_RELU, alpha};
    return add_plain(m, name, "leaky_re_lu", "LeakyReLU", &cvis__op_activation, &a, sizeof a, 1,
                     &input, out_layer);
}

CVIS_API cvis_status cvis_model_add_pool2d(cvis_model *m, const char *name, int input,
                                           cvis_pool kind, int pool_h, int pool_w, int stride_h,
                                           int stride_w, cvis_padding padding, int *out_layer)
{
    if (kind != CVIS_POOL_MAX && kind != CVIS_POOL_AVG)
        return cvis__fail(CVIS_E_INVALID_ARG, "unknown pooling kind %d", (int)kind);
    if (padding != CVIS_PADDING_VALID && padding != CVIS_PADDING_SAME)
        return cvis__fail(CVIS_E_INVALID_ARG, "pooling padding must be VALID or SAME");
    if (pool_h < 1 || pool_w < 1 || stride_h < 1 || stride_w < 1)
        return cvis__fail(CVIS_E_INVALID_ARG, "pooling window and strides must be positive");
    cvis__pool_attr a = {kind, pool_h, pool_w, stride_h, stride_w,
                         padding == CVIS_PADDING_SAME ? CVIS__PAD_SAME_UPPER : CVIS__PAD_VALID,
                         0, 0, 0, 0, 0, 0};
    int mx = kind == CVIS_POOL_MAX;
    return add_plain(m, name, mx ? "max_pooling2d" : "average_pooling2d",
                     mx ? "MaxPooling2D" : "AveragePooling2D", &cvis__op_pool2d, &a, sizeof a, 1,
                     &input, out_layer);
}

CVIS_API cvis_status cvis_model_add_global_avg_pool(cvis_model *m, const char *name, int input,
                                                    int *out_layer)
{
    cvis__gap_attr a = {0};
    return add_plain(m, name, "global_average_pooling2d", "GlobalAveragePooling2D",
                     &cvis__op_global_avg_pool, &a, sizeof a, 1, &input, out_layer);
}

CVIS_API cvis_status cvis_model_add_batch_norm(cvis_model *m, const char *name, int input,
                                               float epsilon, int *out_layer)
{
    CVIS_CHECK_ARG(m, "model is NULL");
    if (!(epsilon > 0) || !isfinite(epsilon))
        return cvis__fail(CVIS_E_INVALID_ARG, "batch norm: epsilon must be positive");
    cvis__shape xs;
    CVIS_TRY(input_shape_of(m, input, &xs));
    int64_t c = xs.d[xs.ndim - 1];
    if (xs.ndim < 2 || c < 1)
        return cvis__fail(CVIS_E_SHAPE, "batch norm needs an input with a known channel axis");
    cvis__bn_attr a = {epsilon};
    int ndims[4] = {1, 1, 1, 1};
    int64_t shapes[4][4] = {{c}, {c}, {c}, {c}};
    const char *names[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
    const unsigned char trainable[4] = {1, 1, 0, 0};
    return add_with_weights(m, name, "batch_normalization", "BatchNormalization",
                            &cvis__op_batch_norm, &a, sizeof a, 1, &input, 4, ndims, shapes, names,
                            trainable, 0, out_layer);
}

CVIS_API cvis_status cvis_model_add_flatten(cvis_model *m, const char *name, int input,
                                            int *out_layer)
{
    char none = 0;
    return add_plain(m, name, "flatten", "Flatten", &cvis__op_flatten, &none, 1, 1, &input,
                     out_layer);
}

CVIS_API cvis_status cvis_model_add_dropout(cvis_model *m, const char *name, int input, float rate,
                                            int *out_layer)
{
    if (!(rate >= 0 && rate < 1))
        return cvis__fail(CVIS_E_INVALID_ARG, "dropout rate must lie in [0, 1)");
    char none = 0;
    return add_plain(m, name, "dropout", "Dropout", &cvis__op_identity, &none, 1, 1, &input,
                     out_layer);
}

CVIS_API cvis_status cvis_model_add_zero_padding(cvis_model *m, const char *name, int input,
                                                 int top, int bottom, int left, int right,
                                                 int *out_layer)
{
    if (top < 0 || bottom < 0 || left < 0 || right < 0)
        return cvis__fail(CVIS_E_INVALID_ARG, "padding must not be negative");
    cvis__pad_attr a;
    memset(&a, 0, sizeof a);
    a.before[1] = top;
    a.after[1] = bottom;
    a.before[2] = left;
    a.after[2] = right;
    cvis__shape xs;
    CVIS_CHECK_ARG(m, "model is NULL");
    CVIS_TRY(input_shape_of(m, input, &xs));
    if (xs.ndim != 4)
        return cvis__fail(CVIS_E_SHAPE, "zero padding needs a (H,W,C) input");
    return add_plain(m, name, "zero_padding2d", "ZeroPadding2D", &cvis__op_pad, &a, sizeof a, 1,
                     &input, out_layer);
}

static cvis_status add_binary(cvis_model *m, const char *name, int kind, int a_in, int b_in,
                              int *out_layer)
{
    cvis__binary_attr a = {kind};
    int in[2] = {a_in, b_in};
    int add = kind == CVIS__BIN_ADD;
    /* Same shapes only: the op would broadcast, and a rank-2 input against
     * a rank-4 one would mix the images of a batch. */
    cvis__shape sa, sb;
    CVIS_CHECK_ARG(m, "model is NULL");
    CVIS_TRY(input_shape_of(m, a_in, &sa));
    CVIS_TRY(input_shape_of(m, b_in, &sb));
    if (!cvis__shape_equal(&sa, &sb)) {
        char ba[96], bb[96];
        sa.d[0] = sb.d[0] = -1; /* the batch axis, printed as None */
        return cvis__fail(CVIS_E_SHAPE, "%s: the inputs have shapes %s and %s; they must be equal",
                          add ? "add" : "multiply", cvis__shape_str(&sa, ba, sizeof ba),
                          cvis__shape_str(&sb, bb, sizeof bb));
    }
    return add_plain(m, name, add ? "add" : "multiply", add ? "Add" : "Multiply", &cvis__op_binary,
                     &a, sizeof a, 2, in, out_layer);
}

CVIS_API cvis_status cvis_model_add_add(cvis_model *m, const char *name, int input_a, int input_b,
                                        int *out_layer)
{
    return add_binary(m, name, CVIS__BIN_ADD, input_a, input_b, out_layer);
}

CVIS_API cvis_status cvis_model_add_multiply(cvis_model *m, const char *name, int input_a,
                                             int input_b, int *out_layer)
{
    return add_binary(m, name, CVIS__BIN_MUL, input_a, input_b, out_layer);
}

CVIS_API cvis_status cvis_model_add_concat(cvis_model *m, const char *name, int n_inputs,
                                           const int *inputs, int *out_layer)
{
    CVIS_CHECK_ARG(inputs || n_inputs == 0, "inputs is NULL");
    cvis__concat_attr a = {-1};
    return add_plain(m, name, "concatenate", "Concatenate", &cvis__op_concat, &a, sizeof a,
                     n_inputs, inputs, out_layer);
}

/* ---------------------------------------------------------------- outputs */

CVIS_API cvis_status cvis_model_set_outputs(cvis_model *m, int n, const int *layers)
{
    CVIS_CHECK_ARG(m && layers, "model or layers is NULL");
    if (n < 1 || n > 1024)
        return cvis__fail(CVIS_E_INVALID_ARG, "a model needs 1 to 1024 outputs, not %d", n);
    int *out = cvis__malloc((size_t)n * sizeof *out);
    if (!out)
        return cvis__fail(CVIS_E_NOMEM, "out of memory setting outputs");
    for (int i = 0; i < n; i++) {
        int l = layers[i];
        cvis_status st = cvis__model_check_layer(m, &l);
        if (st != CVIS_OK) {
            cvis__free(out);
            return st;
        }
        out[i] = l;
    }
    cvis__free(m->out);
    m->out = out;
    m->n_out = n;
    m->outputs_follow_last = 0;
    m->version++;
    return CVIS_OK;
}

/* ---------------------------------------------------------------- queries */

cvis_status cvis__model_check_layer(const cvis_model *m, int *layer)
{
    int n = m->g->n_layers, l = *layer;
    if (l < 0)
        l += n;
    if (l < 0 || l >= n)
        return cvis__fail(CVIS_E_RANGE, "layer %d out of range (the model has %d layers)", *layer, n);
    *layer = l;
    return CVIS_OK;
}

const cvis__layer *cvis__model_layer(const cvis_model *m, int layer)
{
    return &m->g->layers[layer];
}

const cvis__shape *cvis__model_layer_shape(const cvis_model *m, int layer)
{
    return &m->g->layers[layer].out_shape;
}

int cvis__layer_has_activation(const cvis__layer *l)
{
    return l->op == &cvis__op_conv2d || l->op == &cvis__op_dense || l->op == &cvis__op_activation;
}

/* Resolves `layer` for a query, NULL when the model or index is bad. */
static const cvis__layer *query_layer(const cvis_model *m, int layer)
{
    if (!m)
        return NULL;
    int n = m->g->n_layers;
    if (layer < 0)
        layer += n;
    if (layer < 0 || layer >= n)
        return NULL;
    return &m->g->layers[layer];
}

CVIS_API int cvis_model_layer_count(const cvis_model *m)
{
    return m ? m->g->n_layers : 0;
}

CVIS_API const char *cvis_model_layer_name(const cvis_model *m, int layer)
{
    const cvis__layer *l = query_layer(m, layer);
    return l ? l->name : NULL;
}

CVIS_API const char *cvis_model_layer_type(const cvis_model *m, int layer)
{
    const cvis__layer *l = query_layer(m, layer);
    return l ? l->type : NULL;
}

CVIS_API int cvis_model_layer_is_conv(const cvis_model *m, int layer)
{
    const cvis__layer *l = query_layer(m, layer);
    return l ? l->conv_like : 0;
}

CVIS_API cvis_status cvis_model_layer_output_shape(const cvis_model *m, int layer, int *ndim,
                                                   int64_t *shape)
{
    CVIS_CHECK_ARG(m && ndim && shape, "model, ndim or shape is NULL");
    CVIS_TRY(cvis__model_check_layer(m, &layer));
    const cvis__shape *s = &m->g->layers[layer].out_shape;
    *ndim = s->ndim - 1;
    for (int i = 1; i < s->ndim; i++)
        shape[i - 1] = s->d[i];
    return CVIS_OK;
}

CVIS_API cvis_status cvis_model_find_layer(const cvis_model *m, const char *name, int *layer)
{
    CVIS_CHECK_ARG(m && name && layer, "model, name or layer is NULL");
    const cvis__graph *g = m->g;
    for (int i = 0; i < g->n_layers; i++) {
        if (!strcmp(g->layers[i].name, name)) {
            *layer = i;
            return CVIS_OK;
        }
    }
    for (int i = 0; i < g->n_layers; i++)
        for (int k = 0; k < g->layers[i].n_aliases; k++)
            if (!strcmp(g->layers[i].aliases[k], name)) {
                *layer = i;
                return CVIS_OK;
            }
    return cvis__fail(CVIS_E_NOT_FOUND, "no layer called \"%s\"", name);
}

CVIS_API cvis_status cvis_model_input_shape(const cvis_model *m, int64_t *hwc)
{
    CVIS_CHECK_ARG(m && hwc, "model or hwc is NULL");
    for (int i = 0; i < 3; i++)
        hwc[i] = m->g->in_shape[i];
    return CVIS_OK;
}

CVIS_API int cvis_model_output_count(const cvis_model *m)
{
    return m ? m->n_out : 0;
}

CVIS_API int cvis_model_output_layer(const cvis_model *m, int k)
{
    if (!m || k < 0 || k >= m->n_out)
        return -1;
    return m->out[k];
}

/* ---------------------------------------------------------------- weights */

CVIS_API int cvis_model_weight_count(const cvis_model *m, int layer)
{
    const cvis__layer *l = query_layer(m, layer);
    return l ? l->n_w : 0;
}

CVIS_API const char *cvis_model_weight_name(const cvis_model *m, int layer, int k)
{
    const cvis__layer *l = query_layer(m, layer);
    return (l && k >= 0 && k < l->n_w) ? l->w_names[k] : NULL;
}

static cvis_status weight_ref(const cvis_model *m, int layer, int k, cvis_tensor **w)
{
    CVIS_CHECK_ARG(m, "model is NULL");
    CVIS_TRY(cvis__model_check_layer(m, &layer));
    const cvis__layer *l = &m->g->layers[layer];
    if (k < 0 || k >= l->n_w)
        return cvis__fail(CVIS_E_RANGE, "layer \"%s\" has %d weights; %d is out of range", l->name,
                          l->n_w, k);
    *w = l->w[k];
    return CVIS_OK;
}

CVIS_API cvis_status cvis_model_get_weight(const cvis_model *m, int layer, int k, cvis_tensor **out)
{
    CVIS_CHECK_ARG(out, "out is NULL");
    cvis_tensor *w;
    CVIS_TRY(weight_ref(m, layer, k, &w));
    return cvis_tensor_clone(w, out);
}

CVIS_API cvis_status cvis_model_set_weight(cvis_model *m, int layer, int k, const cvis_tensor *value)
{
    CVIS_CHECK_ARG(value, "value is NULL");
    cvis_tensor *w;
    CVIS_TRY(weight_ref(m, layer, k, &w));
    cvis__shape ws = cvis__tensor_get_shape(w), vs = cvis__tensor_get_shape(value);
    if (!cvis__shape_equal(&ws, &vs)) {
        char a[96], b[96];
        return cvis__fail(CVIS_E_SHAPE, "weight %s of layer %d has shape %s, the value %s",
                          m->g->layers[layer < 0 ? layer + m->g->n_layers : layer].w_names[k],
                          layer, cvis__shape_str(&ws, a, sizeof a), cvis__shape_str(&vs, b, sizeof b));
    }
    CVIS_TRY(cvis__check_finite(value->data, value->size, "the weight value"));
    if (w->size)
        memcpy(w->data, value->data, (size_t)w->size * sizeof(float));
    return CVIS_OK;
}

CVIS_API cvis_status cvis_model_get_filters(const cvis_model *m, int layer, cvis_tensor **filters,
                                            cvis_tensor **bias)
{
    CVIS_CHECK_ARG(m, "model is NULL");
    CVIS_TRY(cvis__model_check_layer(m, &layer));
    const cvis__layer *l = &m->g->layers[layer];
    if (l->op != &cvis__op_conv2d)
        return cvis__fail(CVIS_E_LAYER_KIND, "layer \"%s\" (%s) is not a convolution", l->name,
                          l->type);
    const cvis__conv_attr *a = l->attr;
    cvis_tensor *f = NULL, *b = NULL;
    if (filters)
        CVIS_TRY(cvis_tensor_clone(l->w[0], &f));
    if (bias) {
        cvis_status st = a->has_bias ? cvis_tensor_clone(l->w[1], &b)
                                     : cvis__tensor_new(1, (int64_t[]){a->cout}, 1, &b);
        if (st != CVIS_OK) {
            cvis_tensor_free(f);
            return st;
        }
    }
    if (filters)
        *filters = f;
    if (bias)
        *bias = b;
    return CVIS_OK;
}

/* --------------------------------------------------------------- submodel */

CVIS_API cvis_status cvis_model_submodel(const cvis_model *m, int n, const int *layers,
                                         cvis_model **out)
{
    CVIS_CHECK_ARG(m && layers && out, "model, layers or out is NULL");
    cvis_model *s = cvis__calloc(1, sizeof *s);
    if (!s)
        return cvis__fail(CVIS_E_NOMEM, "out of memory for a submodel");
    s->g = m->g;
    atomic_fetch_add(&m->g->refs, 1);
    cvis_status st = cvis_model_set_outputs(s, n, layers);
    if (st != CVIS_OK) {
        cvis_model_free(s);
        return st;
    }
    *out = s;
    return CVIS_OK;
}
