/* Saving models as ONNX.  The graph takes an NCHW image, like the ones
 * PyTorch exports.  Each layer's output is written in one of two layouts:
 * channel-first (CF: the cvis channel axis, last, moved to ONNX axis 1,
 * which for images is NCHW) for convolutions, pooling and batch norm, or
 * identical to the cvis order (ID) for dense layers, reshapes and the
 * like; element-wise layers keep their input's layout.  A Transpose node is
 * added where a consumer needs the other layout.  Node names are the layer
 * names, so that loading the file back gives the same layers. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "model.h"
#include "onnx_read.h"
#include "protobuf.h"

enum { CF = 0, ID = 1 };

typedef struct lval {
    char *name[2];   /* the value in each layout, once written */
    int rank;
} lval;

typedef struct writer {
    const cvis_model *m;
    const cvis__graph *g;
    cvis__pbw *w;     /* the GraphProto being written */
    lval *v;          /* per layer, then the input at index n_layers */
    int n;
    int64_t opset;
    int counter;      /* for helper value names */
    cvis_status st;
} writer;

/* ------------------------------------------------------------ helpers */

static int fail(writer *wr, cvis_status st)
{
    if (wr->st == CVIS_OK)
        wr->st = st;
    return 0;
}

static char *fmt_name(writer *wr, const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 24;
    char *s = cvis__malloc(n);
    if (!s) {
        fail(wr, cvis__fail(CVIS_E_NOMEM, "out of memory saving ONNX"));
        return NULL;
    }
    snprintf(s, n, "%s/%s_%d", a, b, wr->counter++);
    return s;
}

/* CF order: ONNX axis j holds cvis axis cf[j] (the last cvis axis second). */
static void cf_perm(int r, int64_t *p)
{
    if (r <= 2) {
        for (int i = 0; i < r; i++)
            p[i] = i;
        return;
    }
    p[0] = 0;
    p[1] = r - 1;
    for (int i = 2; i < r; i++)
        p[i] = i - 1;
}

/* ONNX axis of cvis axis a in `layout`. */
static int onnx_axis(int layout, int r, int a)
{
    if (layout == ID || r <= 2)
        return a;
    int64_t p[CVIS_MAX_DIMS];
    cf_perm(r, p);
    for (int j = 0; j < r; j++)
        if (p[j] == a)
            return j;
    return a;
}

/* ----------------------------------------------------- protobuf pieces */

static void attr_int(writer *wr, const char *name, int64_t v)
{
    size_t m = cvis__pbw_begin(wr->w, 5);
    cvis__pbw_string(wr->w, 1, name);
    cvis__pbw_varint(wr->w, 20, CVIS__ONNX_ATTR_INT);
    cvis__pbw_sint(wr->w, 3, v);
    cvis__pbw_end(wr->w, m);
}

static void attr_float(writer *wr, const char *name, float v)
{
    size_t m = cvis__pbw_begin(wr->w, 5);
    cvis__pbw_string(wr->w, 1, name);
    cvis__pbw_varint(wr->w, 20, CVIS__ONNX_ATTR_FLOAT);
    cvis__pbw_float(wr->w, 2, v);
    cvis__pbw_end(wr->w, m);
}

static void attr_ints(writer *wr, const char *name, const int64_t *v, int n)
{
    size_t m = cvis__pbw_begin(wr->w, 5);
    cvis__pbw_string(wr->w, 1, name);
    cvis__pbw_varint(wr->w, 20, CVIS__ONNX_ATTR_INTS);
    for (int k = 0; k < n; k++)
        cvis__pbw_sint(wr->w, 8, v[k]);
    cvis__pbw_end(wr->w, m);
}

static void attr_string(writer *wr, const char *name, const char *v)
{
    size_t m = cvis__pbw_begin(wr->w, 5);
    cvis__pbw_string(wr->w, 1, name);
    cvis__pbw_varint(wr->w, 20, CVIS__ONNX_ATTR_STRING);
    cvis__pbw_string(wr->w, 4, v);
    cvis__pbw_end(wr->w, m);
}

/* Opens a NodeProto; attributes follow; node_end closes it. */
static size_t node_begin(writer *wr, const char *op, const char *name, int n_in,
                         const char *const *in, const char *out)
{
    size_t m = cvis__pbw_begin(wr->w, 1);
    for (int k = 0; k < n_in; k++)
        cvis__pbw_string(wr->w, 1, in[k] ? in[k] : "");
    cvis__pbw_string(wr->w, 2, out);
    cvis__pbw_string(wr->w, 3, name);
    cvis__pbw_string(wr->w, 4, op);
    return m;
}

static void node_end(writer *wr, size_t m)
{
    cvis__pbw_end(wr->w, m);
}

static void simple_node(writer *wr, const char *op, const char *name, int n_in,
                        const char *const *in, const char *out)
{
    node_end(wr, node_begin(wr, op, name, n_in, in, out));
}

static void float_init(writer *wr, const char *name, int ndim, const int64_t *dims,
                       const float *data, int64_t count)
{
    size_t m = cvis__pbw_begin(wr->w, 5);
    for (int k = 0; k < ndim; k++)
        cvis__pbw_sint(wr->w, 1, dims[k]);
    cvis__pbw_varint(wr->w, 2, CVIS__ONNX_FLOAT);
    cvis__pbw_string(wr->w, 8, name);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    cvis__pbw_bytes(wr->w, 9, data, (size_t)count * sizeof(float));
#else
    cvis__pbw_packed_float(wr->w, 4, data, (size_t)count);
#endif
    cvis__pbw_end(wr->w, m);
}

static void int_init(writer *wr, const char *name, int ndim, const int64_t *dims,
                     const int64_t *data, int64_t count)
{
    size_t m = cvis__pbw_begin(wr->w, 5);
    for (int k = 0; k < ndim; k++)
        cvis__pbw_sint(wr->w, 1, dims[k]);
    cvis__pbw_varint(wr->w, 2, CVIS__ONNX_INT64);
    cvis__pbw_string(wr->w, 8, name);
    cvis__pbw_packed_int64(wr->w, 7, data, (size_t)count);
    cvis__pbw_end(wr->w, m);
}

/* A scalar or 1-D constant initializer with a fresh name. */
static char *const_floats(writer *wr, const char *owner, const char *what, int ndim,
                          const float *v, int64_t n)
{
    char *name = fmt_name(wr, owner, what);
    if (name)
        float_init(wr, name, ndim, &n, v, n);
    return name;
}

static char *const_ints(writer *wr, const char *owner, const char *what, const int64_t *v,
                        int64_t n)
{
    char *name = fmt_name(wr, owner, what);
    if (name)
        int_init(wr, name, 1, &n, v, n);
    return name;
}

static void value_info(writer *wr, uint32_t field, const char *name, int rank, const int64_t *dims,
                       const char *const *params)
{
    size_t m = cvis__pbw_begin(wr->w, field);
    cvis__pbw_string(wr->w, 1, name);
    size_t t = cvis__pbw_begin(wr->w, 2);
    size_t tt = cvis__pbw_begin(wr->w, 1);
    cvis__pbw_varint(wr->w, 1, CVIS__ONNX_FLOAT);
    size_t sh = cvis__pbw_begin(wr->w, 2);
    for (int k = 0; k < rank; k++) {
        size_t d = cvis__pbw_begin(wr->w, 1);
        if (dims[k] >= 0)
            cvis__pbw_sint(wr->w, 1, dims[k]);
        else
            cvis__pbw_string(wr->w, 2, params[k]);
        cvis__pbw_end(wr->w, d);
    }
    cvis__pbw_end(wr->w, sh);
    cvis__pbw_end(wr->w, tt);
    cvis__pbw_end(wr->w, t);
    cvis__pbw_end(wr->w, m);
}

/* --------------------------------------------------------- layouts */

static lval *val_of(writer *wr, int layer)
{
    return &wr->v[layer == CVIS_INPUT ? wr->n : layer];
}

/* The name of a layer's output in `layout`, adding a Transpose if needed. */
static const char *get(writer *wr, int layer, int layout)
{
    lval *v = val_of(wr, layer);
    if (v->rank <= 2)
        return v->name[ID] ? v->name[ID] : v->name[CF];
    if (v->name[layout])
        return v->name[layout];
    int other = 1 - layout;
    if (!v->name[other]) {
        fail(wr, cvis__fail(CVIS_E_INTERNAL, "a layer output was not written"));
        return "";
    }
    int64_t p[CVIS_MAX_DIMS], perm[CVIS_MAX_DIMS];
    cf_perm(v->rank, p);
    if (layout == CF) {
        for (int j = 0; j < v->rank; j++)
            perm[j] = p[j];
    } else {
        for (int j = 0; j < v->rank; j++)
            perm[p[j]] = j;
    }
    char *name = fmt_name(wr, v->name[other], layout == CF ? "nchw" : "nhwc");
    if (!name)
        return "";
    size_t m = node_begin(wr, "Transpose", name, 1, (const char *const *)&v->name[other], name);
    attr_ints(wr, "perm", perm, v->rank);
    node_end(wr, m);
    v->name[layout] = name;
    return name;
}

/* The layout a layer's input is in already (CF when both exist). */
static int layout_of(writer *wr, int layer)
{
    lval *v = val_of(wr, layer);
    return v->rank <= 2 ? ID : v->name[CF] ? CF : ID;
}

/* Records the layer's output value under `layout`. */
static void set_out(writer *wr, int layer, int layout, const char *name)
{
    lval *v = &wr->v[layer];
    char *copy = cvis__strdup(name);
    if (!copy) {
        fail(wr, cvis__fail(CVIS_E_NOMEM, "out of memory saving ONNX"));
        return;
    }
    v->name[v->rank <= 2 ? ID : layout] = copy;
}

/* ------------------------------------------------------- activations */

/* Writes activation `act` of x into `out` (nodes named after `name`). */
static void write_act(writer *wr, int act, float alpha, int layout, int rank, const char *name,
                      const char *x, const char *out)
{
    const char *in[3] = {x, NULL, NULL};
    switch (act) {
    case CVIS_ACT_RELU: simple_node(wr, "Relu", name, 1, in, out); break;
    case CVIS_ACT_SIGMOID: simple_node(wr, "Sigmoid", name, 1, in, out); break;
    case CVIS_ACT_TANH: simple_node(wr, "Tanh", name, 1, in, out); break;
    case CVIS_ACT_RELU6: {
        float lo = 0, hi = 6;
        char *a = const_floats(wr, name, "min", 0, &lo, 1), *b = const_floats(wr, name, "max", 0, &hi, 1);
        in[1] = a;
        in[2] = b;
        if (a && b)
            simple_node(wr, "Clip", name, 3, in, out);
        cvis__free(a);
        cvis__free(b);
        break;
    }
    case CVIS_ACT_LEAKY_RELU: {
        size_t m = node_begin(wr, "LeakyRelu", name, 1, in, out);
        attr_float(wr, "alpha", alpha);
        node_end(wr, m);
        break;
    }
    case CVIS_ACT_SOFTMAX: {
        size_t m = node_begin(wr, "Softmax", name, 1, in, out);
        attr_int(wr, "axis", onnx_axis(layout, rank, rank - 1));
        node_end(wr, m);
        break;
    }
    case CVIS_ACT_HARD_SIGMOID:
    case CVIS_ACT_HARD_SWISH: {
        char *hs = act == CVIS_ACT_HARD_SWISH ? fmt_name(wr, name, "gate") : NULL;
        const char *gate_out = hs ? hs : out;
        char *gate_name = hs ? fmt_name(wr, name, "HardSigmoid") : NULL;
        size_t m = node_begin(wr, "HardSigmoid", gate_name ? gate_name : name, 1, in, gate_out);
        attr_float(wr, "alpha", 1.0f / 6.0f);
        attr_float(wr, "beta", 0.5f);
        node_end(wr, m);
        if (hs) { /* x * hard_sigmoid(x) */
            in[1] = hs;
            simple_node(wr, "Mul", name, 2, in, out);
        }
        cvis__free(hs);
        cvis__free(gate_name);
        break;
    }
    default:
        simple_node(wr, "Identity", name, 1, in, out);
        break;
    }
}

/* ------------------------------------------------------------ layers */

static void write_conv(writer *wr, int li, const cvis__layer *l)
{
    const cvis__conv_attr *a = l->attr;
    const char *x = get(wr, l->in[0], CF);
    const cvis_tensor *k = l->w[0];
    int64_t kh = k->shape[0], kw = k->shape[1], cg = k->shape[2], cout = k->shape[3];
    /* kernel (kh, kw, cin/groups, cout) -> ONNX (cout, cin/groups, kh, kw) */
    float *wt;
    cvis_status st = cvis__alloc((size_t)k->size * sizeof(float), "ONNX weights", (void **)&wt);
    if (st != CVIS_OK) {
        fail(wr, st);
        return;
    }
    for (int64_t o = 0; o < cout; o++)
        for (int64_t c = 0; c < cg; c++)
            for (int64_t y = 0; y < kh; y++)
                for (int64_t xx = 0; xx < kw; xx++)
                    wt[((o * cg + c) * kh + y) * kw + xx] = k->data[((y * kw + xx) * cg + c) * cout + o];
    char *wname = fmt_name(wr, l->name, "kernel");
    if (wname)
        float_init(wr, wname, 4, (int64_t[]){cout, cg, kh, kw}, wt, k->size);
    cvis__free(wt);
    char *bname = a->has_bias ? const_floats(wr, l->name, "bias", 1, l->w[1]->data, cout) : NULL;
    int after_conv = a->has_bn || a->act != CVIS_ACT_LINEAR;
    char *conv_out = after_conv ? fmt_name(wr, l->name, "conv") : NULL;
    const char *in[3] = {x, wname, bname};
    size_t m = node_begin(wr, "Conv", l->name, a->has_bias ? 3 : 2, in,
                          conv_out ? conv_out : l->name);
    attr_ints(wr, "kernel_shape", (int64_t[]){a->kh, a->kw}, 2);
    attr_ints(wr, "strides", (int64_t[]){a->sh, a->sw}, 2);
    attr_ints(wr, "dilations", (int64_t[]){a->dh, a->dw}, 2);
    attr_int(wr, "group", a->groups);
    if (a->pad_mode == CVIS__PAD_EXPLICIT)
        attr_ints(wr, "pads", (int64_t[]){a->pt, a->pl, a->pb, a->pr}, 4);
    else
        attr_string(wr, "auto_pad", a->pad_mode == CVIS__PAD_VALID ? "VALID"
                                    : a->pad_mode == CVIS__PAD_SAME_UPPER ? "SAME_UPPER"
                                                                          : "SAME_LOWER");
    node_end(wr, m);
    cvis__free(wname);
    cvis__free(bname);
    const char *cur = conv_out;
    int alias = 0;
    char *bn_out = NULL;
    if (a->has_bn) {
        int b0 = a->has_bias ? 2 : 1;
        char *p[4];
        static const char *what[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
        for (int q = 0; q < 4; q++)
            p[q] = const_floats(wr, l->name, what[q], 1, l->w[b0 + q]->data, cout);
        bn_out = a->act != CVIS_ACT_LINEAR ? fmt_name(wr, l->name, "bn") : NULL;
        char *bn_name = alias < l->n_aliases ? NULL : fmt_name(wr, l->name, "BatchNormalization");
        const char *bin[5] = {cur, p[0], p[1], p[2], p[3]};
        size_t mb = node_begin(wr, "BatchNormalization",
                               bn_name ? bn_name : l->aliases[alias], 5, bin,
                               bn_out ? bn_out : l->name);
        attr_float(wr, "epsilon", a->bn_eps);
        node_end(wr, mb);
        alias++;
        for (int q = 0; q < 4; q++)
            cvis__free(p[q]);
        cvis__free(bn_name);
        cur = bn_out;
    }
    if (a->act != CVIS_ACT_LINEAR) {
        char *act_name = alias < l->n_aliases ? NULL : fmt_name(wr, l->name, cvis__act_name(a->act));
        write_act(wr, a->act, a->alpha, CF, 4, act_name ? act_name : l->aliases[alias], cur,
                  l->name);
        cvis__free(act_name);
    }
    cvis__free(conv_out);
    cvis__free(bn_out);
    set_out(wr, li, CF, l->name);
}

static void write_dense(writer *wr, int li, const cvis__layer *l)
{
    const cvis__dense_attr *a = l->attr;
    const char *x = get(wr, l->in[0], ID);
    const cvis_tensor *k = l->w[0];
    int rank = wr->v[li].rank;
    char *wname = fmt_name(wr, l->name, "kernel");
    if (wname)
        float_init(wr, wname, 2, k->shape, k->data, k->size);
    char *bname = a->has_bias ? const_floats(wr, l->name, "bias", 1, l->w[1]->data, a->units) : NULL;
    char *pre = a->act != CVIS_ACT_LINEAR ? fmt_name(wr, l->name, "pre") : NULL;
    const char *out = pre ? pre : l->name;
    if (rank == 2) {
        const char *in[3] = {x, wname, bname};
        simple_node(wr, "Gemm", l->name, a->has_bias ? 3 : 2, in, out);
    } else {
        char *mm = a->has_bias ? fmt_name(wr, l->name, "matmul") : NULL;
        const char *in[2] = {x, wname};
        simple_node(wr, "MatMul", l->name, 2, in, mm ? mm : out);
        if (mm) {
            char *add = fmt_name(wr, l->name, "Add");
            const char *ain[2] = {mm, bname};
            if (add)
                simple_node(wr, "Add", add, 2, ain, out);
            cvis__free(add);
        }
        cvis__free(mm);
    }
    if (pre) {
        char *act_name = l->n_aliases ? NULL : fmt_name(wr, l->name, cvis__act_name(a->act));
        write_act(wr, a->act, a->alpha, ID, rank, act_name ? act_name : l->aliases[0], pre,
                  l->name);
        cvis__free(act_name);
    }
    cvis__free(wname);
    cvis__free(bname);
    cvis__free(pre);
    set_out(wr, li, ID, l->name);
}

static void write_pool(writer *wr, int li, const cvis__layer *l)
{
    const cvis__pool_attr *a = l->attr;
    const char *in[1] = {get(wr, l->in[0], CF)};
    size_t m = node_begin(wr, a->kind == CVIS_POOL_MAX ? "MaxPool" : "AveragePool", l->name, 1,
                          in, l->name);
    attr_ints(wr, "kernel_shape", (int64_t[]){a->kh, a->kw}, 2);
    attr_ints(wr, "strides", (int64_t[]){a->sh, a->sw}, 2);
    if (a->pad_mode == CVIS__PAD_EXPLICIT)
        attr_ints(wr, "pads", (int64_t[]){a->pt, a->pl, a->pb, a->pr}, 4);
    else
        attr_string(wr, "auto_pad", a->pad_mode == CVIS__PAD_VALID ? "VALID"
                                    : a->pad_mode == CVIS__PAD_SAME_UPPER ? "SAME_UPPER"
                                                                          : "SAME_LOWER");
    attr_int(wr, "ceil_mode", a->ceil_mode);
    if (a->kind == CVIS_POOL_AVG)
        attr_int(wr, "count_include_pad", a->count_include_pad);
    node_end(wr, m);
    set_out(wr, li, CF, l->name);
}

static void write_gap(writer *wr, int li, const cvis__layer *l)
{
    const cvis__gap_attr *a = l->attr;
    const char *in[1] = {get(wr, l->in[0], CF)};
    if (a->keepdims) {
        simple_node(wr, "GlobalAveragePool", l->name, 1, in, l->name);
        set_out(wr, li, CF, l->name);
        return;
    }
    /* without the unit axes: the mean over H and W in one node */
    size_t m = node_begin(wr, "ReduceMean", l->name, 1, in, l->name);
    attr_ints(wr, "axes", (int64_t[]){2, 3}, 2);
    attr_int(wr, "keepdims", 0);
    node_end(wr, m);
    set_out(wr, li, ID, l->name);
}

static void write_batch_norm(writer *wr, int li, const cvis__layer *l)
{
    const cvis__bn_attr *a = l->attr;
    const char *in[5] = {get(wr, l->in[0], CF)};
    static const char *what[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
    char *p[4];
    for (int q = 0; q < 4; q++) {
        p[q] = const_floats(wr, l->name, what[q], 1, l->w[q]->data, l->w[q]->size);
        in[q + 1] = p[q];
    }
    size_t m = node_begin(wr, "BatchNormalization", l->name, 5, in, l->name);
    attr_float(wr, "epsilon", a->eps);
    node_end(wr, m);
    for (int q = 0; q < 4; q++)
        cvis__free(p[q]);
    set_out(wr, li, CF, l->name);
}

/* Element-wise layers keep their input's layout. */
static void write_activation(writer *wr, int li, const cvis__layer *l)
{
    const cvis__act_attr *a = l->attr;
    int layout = layout_of(wr, l->in[0]);
    write_act(wr, a->act, a->alpha, layout, wr->v[li].rank, l->name, get(wr, l->in[0], layout),
              l->name);
    set_out(wr, li, layout, l->name);
}

static void write_unary(writer *wr, int li, const cvis__layer *l)
{
    const cvis__unary_attr *u = l->attr;
    int layout = layout_of(wr, l->in[0]);
    const char *x = get(wr, l->in[0], layout);
    const char *in[3] = {x, NULL, NULL};
    static const struct {
        int kind;
        const char *op;
    } plain[] = {{CVIS__UN_SQRT, "Sqrt"}, {CVIS__UN_ERF, "Erf"}, {CVIS__UN_EXP, "Exp"},
                 {CVIS__UN_LOG, "Log"}, {CVIS__UN_NEG, "Neg"}, {CVIS__UN_ABS, "Abs"},
                 {CVIS__UN_RECIPROCAL, "Reciprocal"}, {CVIS__UN_SOFTPLUS, "Softplus"}};
    for (size_t k = 0; k < sizeof plain / sizeof plain[0]; k++)
        if (plain[k].kind == u->kind) {
            simple_node(wr, plain[k].op, l->name, 1, in, l->name);
            set_out(wr, li, layout, l->name);
            return;
        }
    switch (u->kind) {
    case CVIS__UN_POW: {
        char *e = const_floats(wr, l->name, "exponent", 0, &u->a, 1);
        in[1] = e;
        simple_node(wr, "Pow", l->name, 2, in, l->name);
        cvis__free(e);
        break;
    }
    case CVIS__UN_CLIP: {
        float lo = isinf(u->a) ? -3.4028235e38f : u->a, hi = isinf(u->b) ? 3.4028235e38f : u->b;
        char *a = const_floats(wr, l->name, "min", 0, &lo, 1);
        char *b = const_floats(wr, l->name, "max", 0, &hi, 1);
        in[1] = a;
        in[2] = b;
        simple_node(wr, "Clip", l->name, 3, in, l->name);
        cvis__free(a);
        cvis__free(b);
        break;
    }
    case CVIS__UN_HARD_SIGMOID: {
        size_t m = node_begin(wr, "HardSigmoid", l->name, 1, in, l->name);
        attr_float(wr, "alpha", u->a);
        attr_float(wr, "beta", u->b);
        node_end(wr, m);
        break;
    }
    case CVIS__UN_ELU: {
        size_t m = node_begin(wr, "Elu", l->name, 1, in, l->name);
        attr_float(wr, "alpha", u->a);
        node_end(wr, m);
        break;
    }
    case CVIS__UN_SILU: { /* x * sigmoid(x) */
        char *s = fmt_name(wr, l->name, "sigmoid"), *sn = fmt_name(wr, l->name, "Sigmoid");
        if (s && sn) {
            simple_node(wr, "Sigmoid", sn, 1, in, s);
            in[1] = s;
            simple_node(wr, "Mul", l->name, 2, in, l->name);
        }
        cvis__free(s);
        cvis__free(sn);
        break;
    }
    case CVIS__UN_GELU: { /* x * (erf(x / sqrt 2) + 1) / 2 */
        float c[3] = {(float)M_SQRT2, 1.0f, 0.5f};
        char *k0 = const_floats(wr, l->name, "sqrt2", 0, &c[0], 1);
        char *k1 = const_floats(wr, l->name, "one", 0, &c[1], 1);
        char *k2 = const_floats(wr, l->name, "half", 0, &c[2], 1);
        char *t[4], *nm[4];
        static const char *ops[4] = {"Div", "Erf", "Add", "Mul"};
        for (int q = 0; q < 4; q++) {
            t[q] = fmt_name(wr, l->name, "gelu");
            nm[q] = fmt_name(wr, l->name, ops[q]);
        }
        if (k0 && k1 && k2 && t[0] && t[1] && t[2] && t[3] && nm[0] && nm[1] && nm[2] && nm[3]) {
            const char *a0[2] = {x, k0}, *a1[1] = {t[0]}, *a2[2] = {t[1], k1}, *a3[2] = {x, t[2]},
                       *a4[2] = {t[3], k2};
            simple_node(wr, "Div", nm[0], 2, a0, t[0]);
            simple_node(wr, "Erf", nm[1], 1, a1, t[1]);
            simple_node(wr, "Add", nm[2], 2, a2, t[2]);
            simple_node(wr, "Mul", nm[3], 2, a3, t[3]);
            simple_node(wr, "Mul", l->name, 2, a4, l->name);
        }
        for (int q = 0; q < 4; q++) {
            cvis__free(t[q]);
            cvis__free(nm[q]);
        }
        cvis__free(k0);
        cvis__free(k1);
        cvis__free(k2);
        break;
    }
    default:
        fail(wr, cvis__fail(CVIS_E_UNSUPPORTED, "layer \"%s\": function %d has no ONNX form",
                            l->name, u->kind));
        return;
    }
    set_out(wr, li, layout, l->name);
}

static const char *binary_op(int kind)
{
    switch (kind) {
    case CVIS__BIN_ADD: return "Add";
    case CVIS__BIN_SUB: return "Sub";
    case CVIS__BIN_MUL: return "Mul";
    case CVIS__BIN_DIV: return "Div";
    default: return "Pow";
    }
}

static void write_binary(writer *wr, int li, const cvis__layer *l)
{
    const cvis__binary_attr *a = l->attr;
    lval *x = val_of(wr, l->in[0]), *y = val_of(wr, l->in[1]);
    int layout = x->rank == y->rank ? layout_of(wr, l->in[0]) : ID;
    const char *in[2] = {get(wr, l->in[0], layout), get(wr, l->in[1], layout)};
    simple_node(wr, binary_op(a->kind), l->name, 2, in, l->name);
    set_out(wr, li, layout, l->name);
}

static void write_binary_const(writer *wr, int li, const cvis__layer *l)
{
    const cvis__binary_const_attr *a = l->attr;
    const cvis_tensor *c = l->w[0];
    int r = wr->v[li].rank;
    int layout = c->ndim == r ? layout_of(wr, l->in[0]) : ID;
    /* the constant in the same layout as the input */
    float *data;
    cvis_status st = cvis__alloc((size_t)(c->size ? c->size : 1) * sizeof(float), "ONNX weights",
                                 (void **)&data);
    if (st != CVIS_OK) {
        fail(wr, st);
        return;
    }
    int64_t dims[CVIS_MAX_DIMS], p[CVIS_MAX_DIMS], cst[CVIS_MAX_DIMS], s = 1;
    if (layout == CF)
        cf_perm(r, p);
    else
        for (int i = 0; i < c->ndim; i++)
            p[i] = i;
    for (int i = c->ndim - 1; i >= 0; i--) {
        cst[i] = s;
        s *= c->shape[i];
    }
    for (int j = 0; j < c->ndim; j++)
        dims[j] = c->shape[p[j]];
    int64_t idx[CVIS_MAX_DIMS] = {0};
    for (int64_t e = 0; e < c->size; e++) {
        int64_t off = 0;
        for (int j = 0; j < c->ndim; j++)
            off += idx[j] * cst[p[j]];
        data[e] = c->data[off];
        for (int j = c->ndim - 1; j >= 0; j--) {
            if (++idx[j] < dims[j])
                break;
            idx[j] = 0;
        }
    }
    char *cname = fmt_name(wr, l->name, "value");
    if (cname)
        float_init(wr, cname, c->ndim, dims, data, c->size);
    cvis__free(data);
    const char *x = get(wr, l->in[0], layout);
    const char *in[2] = {a->const_first ? cname : x, a->const_first ? x : cname};
    simple_node(wr, binary_op(a->kind), l->name, 2, in, l->name);
    cvis__free(cname);
    set_out(wr, li, layout, l->name);
}

static void write_concat(writer *wr, int li, const cvis__layer *l)
{
    const cvis__concat_attr *a = l->attr;
    int layout = layout_of(wr, l->in[0]), r = wr->v[li].rank;
    const char *in[CVIS__MAX_OP_INPUTS];
    for (int k = 0; k < l->n_in; k++)
        in[k] = get(wr, l->in[k], layout);
    size_t m = node_begin(wr, "Concat", l->name, l->n_in, in, l->name);
    int ax = a->axis < 0 ? a->axis + r : a->axis;
    attr_int(wr, "axis", onnx_axis(layout, r, ax));
    node_end(wr, m);
    set_out(wr, li, layout, l->name);
}

static void write_pad(writer *wr, int li, const cvis__layer *l)
{
    const cvis__pad_attr *a = l->attr;
    int layout = layout_of(wr, l->in[0]), r = wr->v[li].rank;
    int64_t pads[2 * CVIS_MAX_DIMS];
    for (int i = 0; i < r; i++) {
        int j = onnx_axis(layout, r, i);
        pads[j] = a->before[i];
        pads[r + j] = a->after[i];
    }
    char *pn = const_ints(wr, l->name, "pads", pads, 2 * r);
    char *vn = const_floats(wr, l->name, "value", 0, &a->value, 1);
    const char *in[3] = {get(wr, l->in[0], layout), pn, vn};
    size_t m = node_begin(wr, "Pad", l->name, 3, in, l->name);
    attr_string(wr, "mode", "constant");
    node_end(wr, m);
    cvis__free(pn);
    cvis__free(vn);
    set_out(wr, li, layout, l->name);
}

/* Flatten and reshape: in cvis order; sizes that follow the input must
 * stay on their axis (ONNX's 0 copies the size of the same axis). */
static void write_reshape(writer *wr, int li, const cvis__layer *l)
{
    const char *in[2] = {get(wr, l->in[0], ID), NULL};
    if (l->op == &cvis__op_flatten) {
        size_t m = node_begin(wr, "Flatten", l->name, 1, in, l->name);
        attr_int(wr, "axis", 1);
        node_end(wr, m);
        set_out(wr, li, ID, l->name);
        return;
    }
    const cvis__reshape_attr *a = l->attr;
    int64_t shape[CVIS_MAX_DIMS + 1];
    shape[0] = 0;
    for (int i = 0; i < a->ndim; i++) {
        int64_t s = a->shape[i];
        if (s <= -2) {
            if (-2 - s != i + 1) {
                fail(wr, cvis__fail(CVIS_E_UNSUPPORTED, "layer \"%s\": a reshape that moves a "
                                    "size following the input to another axis", l->name));
                return;
            }
            s = 0;
        }
        shape[i + 1] = s;
    }
    char *sn = const_ints(wr, l->name, "shape", shape, a->ndim + 1);
    in[1] = sn;
    simple_node(wr, "Reshape", l->name, 2, in, l->name);
    cvis__free(sn);
    set_out(wr, li, ID, l->name);
}

static void write_transpose(writer *wr, int li, const cvis__layer *l)
{
    const cvis__transpose_attr *a = l->attr;
    const char *in[1] = {get(wr, l->in[0], ID)};
    int64_t p[CVIS_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++)
        p[i] = a->perm[i];
    size_t m = node_begin(wr, "Transpose", l->name, 1, in, l->name);
    attr_ints(wr, "perm", p, a->ndim);
    node_end(wr, m);
    set_out(wr, li, ID, l->name);
}

static void write_slice(writer *wr, int li, const cvis__layer *l)
{
    const cvis__slice_attr *a = l->attr;
    int layout = layout_of(wr, l->in[0]), r = a->ndim, n = 0;
    int64_t st[CVIS_MAX_DIMS], en[CVIS_MAX_DIMS], ax[CVIS_MAX_DIMS], sp[CVIS_MAX_DIMS];
    for (int i = 0; i < r; i++) {
        if (a->start[i] == 0 && a->end[i] == INT64_MAX && a->step[i] == 1)
            continue;
        st[n] = a->start[i];
        en[n] = a->end[i];
        sp[n] = a->step[i];
        ax[n++] = onnx_axis(layout, r, i);
    }
    char *c[4] = {const_ints(wr, l->name, "starts", st, n), const_ints(wr, l->name, "ends", en, n),
                  const_ints(wr, l->name, "axes", ax, n), const_ints(wr, l->name, "steps", sp, n)};
    const char *in[5] = {get(wr, l->in[0], layout), c[0], c[1], c[2], c[3]};
    simple_node(wr, "Slice", l->name, 5, in, l->name);
    for (int q = 0; q < 4; q++)
        cvis__free(c[q]);
    set_out(wr, li, layout, l->name);
}

static void write_gather(writer *wr, int li, const cvis__layer *l)
{
    const cvis__gather_attr *a = l->attr;
    int layout = layout_of(wr, l->in[0]), r = wr->v[li].rank;
    char *ix = const_ints(wr, l->name, "indices", a->idx, a->n);
    const char *in[2] = {get(wr, l->in[0], layout), ix};
    size_t m = node_begin(wr, "Gather", l->name, 2, in, l->name);
    attr_int(wr, "axis", onnx_axis(layout, r, a->axis));
    node_end(wr, m);
    cvis__free(ix);
    set_out(wr, li, layout, l->name);
}

static void write_reduce(writer *wr, int li, const cvis__layer *l)
{
    const cvis__reduce_attr *a = l->attr;
    int r = val_of(wr, l->in[0])->rank, n = 0;
    int64_t axes[CVIS_MAX_DIMS];
    for (int i = 0; i < r; i++)
        if (a->axes & (1u << i))
            axes[n++] = i;
    const char *in[2] = {get(wr, l->in[0], ID), NULL};
    const char *op = a->kind == CVIS__REDUCE_MEAN ? "ReduceMean"
                     : a->kind == CVIS__REDUCE_SUM ? "ReduceSum" : "ReduceMax";
    char *an = NULL;
    if (a->kind == CVIS__REDUCE_SUM) { /* axes are an input since opset 13 */
        an = const_ints(wr, l->name, "axes", axes, n);
        in[1] = an;
    }
    size_t m = node_begin(wr, op, l->name, an ? 2 : 1, in, l->name);
    if (!an)
        attr_ints(wr, "axes", axes, n);
    attr_int(wr, "keepdims", a->keepdims);
    node_end(wr, m);
    cvis__free(an);
    set_out(wr, li, ID, l->name);
}

static void write_matmul(writer *wr, int li, const cvis__layer *l)
{
    const char *in[2] = {get(wr, l->in[0], ID), get(wr, l->in[1], ID)};
    simple_node(wr, "MatMul", l->name, 2, in, l->name);
    set_out(wr, li, ID, l->name);
}

static void write_layer_norm(writer *wr, int li, const cvis__layer *l)
{
    const cvis__layer_norm_attr *a = l->attr;
    char *g = fmt_name(wr, l->name, "gamma"), *b = NULL;
    if (g)
        float_init(wr, g, l->w[0]->ndim, l->w[0]->shape, l->w[0]->data, l->w[0]->size);
    if (a->has_beta && (b = fmt_name(wr, l->name, "beta")))
        float_init(wr, b, l->w[1]->ndim, l->w[1]->shape, l->w[1]->data, l->w[1]->size);
    const char *in[3] = {get(wr, l->in[0], ID), g, b};
    size_t m = node_begin(wr, "LayerNormalization", l->name, a->has_beta ? 3 : 2, in, l->name);
    attr_int(wr, "axis", -a->n_axes);
    attr_float(wr, "epsilon", a->eps);
    node_end(wr, m);
    cvis__free(g);
    cvis__free(b);
    set_out(wr, li, ID, l->name);
}

static void write_identity(writer *wr, int li, const cvis__layer *l)
{
    int layout = layout_of(wr, l->in[0]);
    const char *in[1] = {get(wr, l->in[0], layout)};
    simple_node(wr, strcmp(l->type, "Dropout") ? "Identity" : "Dropout", l->name, 1, in, l->name);
    set_out(wr, li, layout, l->name);
}

static void write_layer(writer *wr, int li)
{
    const cvis__layer *l = &wr->g->layers[li];
    const cvis__op *op = l->op;
    if (op == &cvis__op_conv2d) write_conv(wr, li, l);
    else if (op == &cvis__op_dense) write_dense(wr, li, l);
    else if (op == &cvis__op_pool2d) write_pool(wr, li, l);
    else if (op == &cvis__op_global_avg_pool) write_gap(wr, li, l);
    else if (op == &cvis__op_batch_norm) write_batch_norm(wr, li, l);
    else if (op == &cvis__op_activation) write_activation(wr, li, l);
    else if (op == &cvis__op_unary) write_unary(wr, li, l);
    else if (op == &cvis__op_binary) write_binary(wr, li, l);
    else if (op == &cvis__op_binary_const) write_binary_const(wr, li, l);
    else if (op == &cvis__op_concat) write_concat(wr, li, l);
    else if (op == &cvis__op_pad) write_pad(wr, li, l);
    else if (op == &cvis__op_flatten || op == &cvis__op_reshape) write_reshape(wr, li, l);
    else if (op == &cvis__op_transpose) write_transpose(wr, li, l);
    else if (op == &cvis__op_slice) write_slice(wr, li, l);
    else if (op == &cvis__op_gather) write_gather(wr, li, l);
    else if (op == &cvis__op_reduce) write_reduce(wr, li, l);
    else if (op == &cvis__op_matmul) write_matmul(wr, li, l);
    else if (op == &cvis__op_layer_norm) write_layer_norm(wr, li, l);
    else if (op == &cvis__op_identity) write_identity(wr, li, l);
    else
        fail(wr, cvis__fail(CVIS_E_UNSUPPORTED, "layer \"%s\" (%s) has no ONNX form", l->name,
                            l->type));
}

/* ------------------------------------------------------------- model */

static cvis_status write_model(const cvis_model *m, cvis__pbw *out)
{
    const cvis__graph *g = m->g;
    writer wr;
    memset(&wr, 0, sizeof wr);
    wr.m = m;
    wr.g = g;
    wr.w = out;
    wr.n = g->n_layers;
    wr.opset = 13;
    if (g->n_layers < 1 || m->n_out < 1)
        return cvis__fail(CVIS_E_STATE, "the model has no layers");
    for (int i = 0; i < g->n_layers; i++)
        if (g->layers[i].op == &cvis__op_layer_norm)
            wr.opset = 17;
    wr.v = cvis__calloc((size_t)g->n_layers + 1, sizeof *wr.v);
    if (!wr.v)
        return cvis__fail(CVIS_E_NOMEM, "out of memory saving ONNX");
    for (int i = 0; i < g->n_layers; i++)
        wr.v[i].rank = g->layers[i].out_shape.ndim;
    wr.v[wr.n].rank = 4;
    wr.v[wr.n].name[CF] = cvis__strdup("input");
    if (!wr.v[wr.n].name[CF])
        wr.st = cvis__fail(CVIS_E_NOMEM, "out of memory saving ONNX");

    cvis__pbw_varint(out, 1, 8); /* ir_version */
    cvis__pbw_string(out, 2, "libcvis");
    char version[32];
    snprintf(version, sizeof version, "%d.%d.%d", CVIS_VERSION_MAJOR, CVIS_VERSION_MINOR,
             CVIS_VERSION_PATCH);
    cvis__pbw_string(out, 3, version);
    size_t os = cvis__pbw_begin(out, 8);
    cvis__pbw_string(out, 1, "");
    cvis__pbw_varint(out, 2, (uint64_t)wr.opset);
    cvis__pbw_end(out, os);
    size_t gm = cvis__pbw_begin(out, 7);
    cvis__pbw_string(out, 2, "libcvis");
    /* the input, NCHW; free sizes are named */
    int64_t dims[4] = {-1, g->in_shape[2], g->in_shape[0], g->in_shape[1]};
    const char *params[4] = {"batch", "channels", "height", "width"};
    value_info(&wr, 11, "input", 4, dims, params);
    for (int i = 0; i < g->n_layers && wr.st == CVIS_OK; i++)
        write_layer(&wr, i);
    /* outputs: feature maps NCHW, others in cvis order */
    for (int k = 0; k < m->n_out && wr.st == CVIS_OK; k++) {
        int li = m->out[k];
        const cvis__shape *s = &g->layers[li].out_shape;
        const char *name = get(&wr, li, s->ndim == 4 ? CF : ID);
        int64_t od[CVIS_MAX_DIMS], p[CVIS_MAX_DIMS];
        const char *op[CVIS_MAX_DIMS];
        char pnames[CVIS_MAX_DIMS][24];
        if (s->ndim == 4)
            cf_perm(4, p);
        for (int j = 0; j < s->ndim; j++) {
            int a = s->ndim == 4 ? (int)p[j] : j;
            od[j] = j == 0 ? -1 : s->d[a];
            snprintf(pnames[j], sizeof pnames[j], j ? "%s_%d" : "batch", "size", j);
            op[j] = pnames[j];
        }
        value_info(&wr, 12, name, s->ndim, od, op);
    }
    cvis__pbw_end(out, gm);
    for (int i = 0; i <= wr.n; i++) {
        cvis__free(wr.v[i].name[0]);
        cvis__free(wr.v[i].name[1]);
    }
    cvis__free(wr.v);
    if (wr.st != CVIS_OK)
        return wr.st;
    return out->st;
}

CVIS_API cvis_status cvis_model_save_onnx_memory(const cvis_model *m, void **data, size_t *size)
{
    CVIS_CHECK_ARG(m && data && size, "model, data or size is NULL");
    cvis__pbw w;
    cvis__pbw_init(&w);
    cvis_status st = write_model(m, &w);
    if (st != CVIS_OK) {
        cvis__pbw_release(&w);
        return cvis__wrap_error(st, "saving ONNX");
    }
    *data = w.buf;
    *size = w.len;
    return CVIS_OK;
}

CVIS_API cvis_status cvis_model_save_onnx(const cvis_model *m, const char *path)
{
    CVIS_CHECK_ARG(m && path, "model or path is NULL");
    cvis__pbw w;
    cvis__pbw_init(&w);
    cvis_status st = write_model(m, &w);
    if (st != CVIS_OK) {
        cvis__pbw_release(&w);
        return cvis__wrap_error(st, "saving \"%s\"", path);
    }
    size_t n = strlen(path) + 16;
    char *tmp = cvis__malloc(n);
    if (!tmp) {
        cvis__pbw_release(&w);
        return cvis__fail(CVIS_E_NOMEM, "out of memory saving \"%s\"", path);
    }
    snprintf(tmp, n, "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        st = cvis__fail(CVIS_E_IO, "cannot create \"%s\"", tmp);
    } else {
        int ok = fwrite(w.buf, 1, w.len, fp) == w.len;
        ok &= fclose(fp) == 0;
        if (!ok)
            st = cvis__fail(CVIS_E_IO, "writing \"%s\" failed", tmp);
        else if (rename(tmp, path) != 0)
            st = cvis__fail(CVIS_E_IO, "cannot rename \"%s\" to \"%s\"", tmp, path);
        if (st != CVIS_OK)
            remove(tmp);
    }
    cvis__free(tmp);
    cvis__pbw_release(&w);
    return st;
}
