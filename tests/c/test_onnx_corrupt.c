/* Damaged and hostile ONNX files: a model saved by libcvis, truncated at
 * many offsets, with bits flipped, with allocations failing one by one;
 * and hand-made protobufs with lengths past the end, huge or negative
 * sizes, cycles, missing producers, missing external data, unsupported
 * ops.  Each must give a clear error (or a working model), never a crash
 * or a leak (run under `make check-asan`). */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/alloc.h"
#include "core/rng.h"
#include "model/model.h"
#include "model/protobuf.h"

/* ------------------------------------------------- a small saved model */

static cvis_model *small_model(void)
{
    cvis_model *m = NULL;
    int a, b, c;
    CHECK_OK(cvis_model_new(12, 12, 3, &m));
    CHECK_OK(cvis_model_add_conv2d(m, "conv", CVIS_PREV, 6, 3, 3, 1, CVIS_PADDING_SAME, CVIS_ACT_LINEAR, &a));
    CHECK_OK(cvis_model_add_batch_norm(m, "bn", a, 1e-3f, &a));
    CHECK_OK(cvis_model_add_activation(m, "relu", a, CVIS_ACT_RELU, &a));
    CHECK_OK(cvis_model_add_conv2d_ex(m, "dw", a, 6, 3, 3, 2, 2, 1, 1, 6, CVIS_PADDING_SAME, 0, 0, 0, 0, 1, CVIS_ACT_RELU6, &b));
    CHECK_OK(cvis_model_add_pool2d(m, "pool", a, CVIS_POOL_AVG, 2, 2, 2, 2, CVIS_PADDING_VALID, &c));
    CHECK_OK(cvis_model_add_concat(m, "cat", 2, (int[]){b, c}, &a));
    CHECK_OK(cvis_model_add_flatten(m, "flat", a, NULL));
    CHECK_OK(cvis_model_add_dense(m, "fc", CVIS_PREV, 4, CVIS_ACT_SOFTMAX, NULL));
    CHECK_OK(cvis_model_init_weights(m, 1));
    return m;
}

/* Adds a layer from an attribute copy and weights of the given shapes
 * (seeded values, positive where they scale). */
static int add(cvis_model *m, const char *type, const cvis__op *op, const void *attr, size_t size,
               int n_in, const int *in, int n_w, const int64_t (*shapes)[4], const int *ndims,
               const char *const *names)
{
    void *a = cvis__malloc(size);
    memcpy(a, attr, size);
    cvis_tensor *w[4] = {NULL, NULL, NULL, NULL};
    for (int k = 0; k < n_w; k++) {
        cvis_tensor_create(ndims[k], shapes[k], &w[k]);
        for (int64_t i = 0; i < cvis_tensor_size(w[k]); i++)
            cvis_tensor_data(w[k])[i] = 0.5f + 0.01f * (float)((i * 7 + k) % 13);
    }
    int idx = -1;
    CHECK_OK(cvis__model_add_layer(m, NULL, type, type, op, a, n_in, in, n_w, w, names, NULL, 0,
                                   &idx));
    return idx;
}

/* A model through the ops that the builders do not offer. */
static cvis_model *kitchen_sink(void)
{
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(8, 8, 3, &m));
    int c0, t, r, ln, g, t2, mm, red, sl, ga, bc, mx, cat;
    CHECK_OK(cvis_model_add_conv2d(m, "conv", CVIS_PREV, 8, 3, 3, 1, CVIS_PADDING_SAME, CVIS_ACT_LINEAR, &c0));
    cvis__transpose_attr ta = {4, {0, 3, 1, 2}};
    t = add(m, "transpose", &cvis__op_transpose, &ta, sizeof ta, 1, &c0, 0, NULL, NULL, NULL);
    cvis__reshape_attr ra = {2, {-3, 64}};
    r = add(m, "reshape", &cvis__op_reshape, &ra, sizeof ra, 1, &t, 0, NULL, NULL, NULL);
    cvis__layer_norm_attr la = {1, 1e-5f, 1};
    const int64_t lns[2][4] = {{64}, {64}};
    const int lnd[2] = {1, 1};
    const char *lnn[2] = {"gamma", "beta"};
    ln = add(m, "layer_norm", &cvis__op_layer_norm, &la, sizeof la, 1, &r, 2, lns, lnd, lnn);
    cvis__unary_attr ua = {CVIS__UN_GELU, 0, 0};
    g = add(m, "gelu", &cvis__op_unary, &ua, sizeof ua, 1, &ln, 0, NULL, NULL, NULL);
    cvis__transpose_attr tb = {3, {0, 2, 1}};
    t2 = add(m, "transpose_b", &cvis__op_transpose, &tb, sizeof tb, 1, &g, 0, NULL, NULL, NULL);
    char none = 0;
    mm = add(m, "matmul", &cvis__op_matmul, &none, 1, 2, (int[]){g, t2}, 0, NULL, NULL, NULL);
    cvis__reduce_attr rd = {CVIS__REDUCE_MEAN, 0, 4u};
    red = add(m, "mean", &cvis__op_reduce, &rd, sizeof rd, 1, &mm, 0, NULL, NULL, NULL);
    cvis__slice_attr sa = {4, {0, 0, 0, 0}, {INT64_MAX, INT64_MAX, INT64_MAX, 4}, {1, 1, 1, 1}};
    sl = add(m, "slice", &cvis__op_slice, &sa, sizeof sa, 1, &c0, 0, NULL, NULL, NULL);
    struct {
        cvis__gather_attr g;
        int64_t idx[2];
    } gat = {{3, 2}, {3, 1}};
    ga = add(m, "gather", &cvis__op_gather, &gat, sizeof gat, 1, &sl, 0, NULL, NULL, NULL);
    cvis__binary_const_attr bca = {CVIS__BIN_MUL, 0};
    const int64_t bcs[1][4] = {{1, 1, 2}};
    const int bcd[1] = {3};
    const char *bcn[1] = {"value"};
    bc = add(m, "scale", &cvis__op_binary_const, &bca, sizeof bca, 1, &ga, 1, bcs, bcd, bcn);
    cvis__reduce_attr rm = {CVIS__REDUCE_MAX, 0, 6u};
    mx = add(m, "max", &cvis__op_reduce, &rm, sizeof rm, 1, &bc, 0, NULL, NULL, NULL);
    cvis__concat_attr ca = {-1};
    cat = add(m, "concat", &cvis__op_concat, &ca, sizeof ca, 2, (int[]){red, mx}, 0, NULL, NULL, NULL);
    CHECK_OK(cvis_model_add_dense(m, "head", cat, 3, CVIS_ACT_SOFTMAX, NULL));
    return m;
}

/* Loads bytes; on success runs the model once.  Returns the status. */
static cvis_status try_load(const uint8_t *data, size_t size, int run)
{
    cvis_model *m = NULL;
    cvis_status st = cvis_model_load_onnx_memory(data, size, &m);
    if (st != CVIS_OK) {
        if (!cvis_last_error()[0]) {
            fprintf(stderr, "a failed load left no message (status %d)\n", (int)st);
            CHECK(0);
        }
        CHECK(m == NULL);
        return st;
    }
    if (run) {
        int64_t hwc[3];
        cvis_model_input_shape(m, hwc);
        int64_t shape[4] = {1, hwc[0] > 0 && hwc[0] <= 64 ? hwc[0] : 12,
                            hwc[1] > 0 && hwc[1] <= 64 ? hwc[1] : 12,
                            hwc[2] > 0 && hwc[2] <= 16 ? hwc[2] : 3};
        cvis_tensor *x = NULL, *y = NULL;
        if (cvis_tensor_create(4, shape, &x) == CVIS_OK) {
            for (int64_t i = 0; i < cvis_tensor_size(x); i++)
                cvis_tensor_data(x)[i] = (float)((i % 7) - 3) * 0.1f;
            cvis_model_predict(m, x, &y); /* may fail; must not crash */
        }
        cvis_tensor_free(x);
        cvis_tensor_free(y);
    }
    cvis_model_free(m);
    return CVIS_OK;
}

static void test_truncated(const uint8_t *data, size_t size)
{
    int failed = 0, tried = 0;
    /* every offset of the first 2 KiB and of the last 1 KiB, then a spread */
    for (size_t n = 0; n < size; n++) {
        if (!(n < 2048 || n + 1024 > size || n % 97 == 0 || size < 8192))
            continue;
        tried++;
        failed += try_load(data, n, 0) != CVIS_OK;
    }
    if (failed != tried)
        fprintf(stderr, "%d of %d truncated files loaded\n", tried - failed, tried);
    CHECK(failed == tried);
    CHECK_OK(try_load(data, size, 1));
}

static void test_bit_flips(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size);
    cvis__rng r;
    cvis__rng_seed(&r, 2024);
    int loaded = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(buf, data, size);
        int flips = 1 + (int)cvis__rng_int(&r, 0, 3);
        for (int f = 0; f < flips; f++) {
            /* half the flips in the first and last 4 KiB, where the
             * structure is, the rest anywhere */
            size_t pos = (size_t)cvis__rng_int(&r, 0, (int64_t)size - 1);
            if (it % 2 && size > 8192)
                pos = f % 2 ? (size_t)cvis__rng_int(&r, 0, 4095)
                            : size - 1 - (size_t)cvis__rng_int(&r, 0, 4095);
            buf[pos] ^= (uint8_t)(1u << cvis__rng_int(&r, 0, 7));
        }
        loaded += try_load(buf, size, 1) == CVIS_OK;
    }
    printf("bit flips: %d of 3000 damaged files still loaded (and ran)\n", loaded);
    CHECK(loaded < 3000);
    free(buf);
}

/* Every allocation of a load failing in turn: an error each time, no leak. */
static void test_alloc_failures(const uint8_t *data, size_t size)
{
    cvis__alloc_fail_after(0);
    cvis_model *m = NULL;
    cvis__alloc_fail_after(1 << 30);
    CHECK_OK(cvis_model_load_onnx_memory(data, size, &m));
    int64_t total = cvis__alloc_attempts();
    cvis__alloc_fail_after(0);
    cvis_model_free(m);
    CHECK(total > 10);
    int bad = 0;
    for (int64_t k = 1; k <= total; k++) {
        m = NULL;
        cvis__alloc_fail_after(k);
        cvis_status st = cvis_model_load_onnx_memory(data, size, &m);
        cvis__alloc_fail_after(0);
        if (st != CVIS_E_NOMEM || m != NULL) {
            fprintf(stderr, "allocation %lld failing: status %d (%s)\n", (long long)k, (int)st,
                    cvis_last_error());
            bad++;
        }
        cvis_model_free(m);
    }
    CHECK(bad == 0);
    /* and saving */
    CHECK_OK(cvis_model_load_onnx_memory(data, size, &m));
    cvis__alloc_fail_after(1 << 30);
    void *out = NULL;
    size_t n = 0;
    CHECK_OK(cvis_model_save_onnx_memory(m, &out, &n));
    total = cvis__alloc_attempts();
    cvis__alloc_fail_after(0);
    cvis_free(out);
    bad = 0;
    for (int64_t k = 1; k <= total; k++) {
        out = NULL;
        cvis__alloc_fail_after(k);
        cvis_status st = cvis_model_save_onnx_memory(m, &out, &n);
        cvis__alloc_fail_after(0);
        if (st != CVIS_E_NOMEM) {
            bad++;
            if (st == CVIS_OK)
                cvis_free(out);
        }
    }
    CHECK(bad == 0);
    cvis_model_free(m);
}

/* -------------------------------------------------- hand-made protobufs */

/* Parts of a hand-made model; the test changes one at a time. */
typedef struct spec {
    int64_t ir, opset;
    int64_t in_dims[4];
    int conv_w_dims[4];      /* the Conv weight's dims */
    int64_t bad_dim;         /* if set, replaces the weight's first dim */
    int raw_extra;           /* bytes added to (or removed from) raw_data */
    const char *relu_in;     /* what the Relu reads */
    int cycle;               /* a second Relu feeding the first */
    const char *op;          /* the op type of the middle node */
    int external;            /* 1: weight in "w.bin", 2: "../w.bin" */
    int no_graph;
    int dup_output;
} spec;

static spec base_spec(void)
{
    spec s;
    memset(&s, 0, sizeof s);
    s.ir = 8;
    s.opset = 13;
    s.in_dims[0] = 1;
    s.in_dims[1] = 3;
    s.in_dims[2] = 8;
    s.in_dims[3] = 8;
    s.conv_w_dims[0] = 4;
    s.conv_w_dims[1] = 3;
    s.conv_w_dims[2] = 3;
    s.conv_w_dims[3] = 3;
    s.relu_in = "c";
    s.op = "Relu";
    return s;
}

static void str_node(cvis__pbw *w, const char *op, const char *name, const char *in0,
                     const char *in1, const char *out)
{
    size_t m = cvis__pbw_begin(w, 1);
    cvis__pbw_string(w, 1, in0);
    if (in1)
        cvis__pbw_string(w, 1, in1);
    cvis__pbw_string(w, 2, out);
    cvis__pbw_string(w, 3, name);
    cvis__pbw_string(w, 4, op);
    cvis__pbw_end(w, m);
}

static void value_info(cvis__pbw *w, uint32_t field, const char *name, int rank,
                       const int64_t *dims)
{
    size_t m = cvis__pbw_begin(w, field);
    cvis__pbw_string(w, 1, name);
    size_t t = cvis__pbw_begin(w, 2), tt = cvis__pbw_begin(w, 1);
    cvis__pbw_varint(w, 1, 1);
    size_t sh = cvis__pbw_begin(w, 2);
    for (int k = 0; k < rank; k++) {
        size_t d = cvis__pbw_begin(w, 1);
        cvis__pbw_sint(w, 1, dims[k]);
        cvis__pbw_end(w, d);
    }
    cvis__pbw_end(w, sh);
    cvis__pbw_end(w, tt);
    cvis__pbw_end(w, t);
    cvis__pbw_end(w, m);
}

/* input x (1,3,8,8) -> Conv(w) -> c -> Relu -> r (the graph output) */
static void build(const spec *s, cvis__pbw *w)
{
    cvis__pbw_init(w);
    cvis__pbw_varint(w, 1, (uint64_t)s->ir);
    size_t os = cvis__pbw_begin(w, 8);
    cvis__pbw_varint(w, 2, (uint64_t)s->opset);
    cvis__pbw_end(w, os);
    if (s->no_graph)
        return;
    size_t g = cvis__pbw_begin(w, 7);
    value_info(w, 11, "x", 4, s->in_dims);
    /* the weight */
    size_t t = cvis__pbw_begin(w, 5);
    int64_t count = 1;
    for (int k = 0; k < 4; k++) {
        int64_t d = k == 0 && s->bad_dim ? s->bad_dim : s->conv_w_dims[k];
        cvis__pbw_sint(w, 1, d);
        count *= s->conv_w_dims[k];
    }
    cvis__pbw_varint(w, 2, 1);
    cvis__pbw_string(w, 8, "w");
    if (s->external) {
        cvis__pbw_varint(w, 14, 1);
        size_t e = cvis__pbw_begin(w, 13);
        cvis__pbw_string(w, 1, "location");
        cvis__pbw_string(w, 2, s->external == 2 ? "../w.bin" : "w.bin");
        cvis__pbw_end(w, e);
    } else {
        size_t bytes = (size_t)(count * 4 + s->raw_extra);
        uint8_t *raw = calloc(bytes + 1, 1);
        for (size_t i = 0; i + 3 < bytes; i += 4)
            raw[i + 3] = 0x3c; /* small positive floats */
        cvis__pbw_bytes(w, 9, raw, bytes);
        free(raw);
    }
    cvis__pbw_end(w, t);
    str_node(w, "Conv", "the_conv", "x", "w", "c");
    str_node(w, s->op, "the_middle", s->relu_in, NULL, "r");
    if (s->cycle) /* the_middle reads q, which is computed from its own output */
        str_node(w, "Relu", "loop_back", "r", NULL, "q");
    if (s->dup_output)
        str_node(w, "Relu", "again", "c", NULL, "r");
    int64_t od[4] = {1, 4, 6, 6};
    value_info(w, 12, "r", 4, od);
    cvis__pbw_end(w, g);
}

/* Loads a hand-made model; checks the status and that the message holds
 * every word of `words` (|-separated). */
static void expect(const spec *s, cvis_status want, const char *words)
{
    cvis__pbw w;
    build(s, &w);
    CHECK(w.st == CVIS_OK);
    cvis_model *m = NULL;
    cvis_status st = cvis_model_load_onnx_memory(w.buf, w.len, &m);
    int ok = st == want && (want == CVIS_OK ? m != NULL : m == NULL);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", words ? words : "");
    for (char *tok = strtok(buf, "|"); ok && tok; tok = strtok(NULL, "|"))
        if (!strstr(cvis_last_error(), tok))
            ok = 0;
    if (!ok)
        fprintf(stderr, "expected status %d with \"%s\", got %d: %s\n", (int)want, words,
                (int)st, cvis_last_error());
    CHECK(ok);
    cvis_model_free(m);
    cvis__pbw_release(&w);
}

/* IR 8, opset 13, and a graph with the input x: returns the graph's mark
 * (nodes and initializers follow; cvis__pbw_end closes it). */
static size_t begin_graph(cvis__pbw *w, const int64_t *in_dims)
{
    cvis__pbw_varint(w, 1, 8);
    size_t os = cvis__pbw_begin(w, 8);
    cvis__pbw_varint(w, 2, 13);
    cvis__pbw_end(w, os);
    size_t g = cvis__pbw_begin(w, 7);
    value_info(w, 11, "x", 4, in_dims);
    return g;
}

/* A constant that would be huge once computed: refused at load time. */
static void test_constant_bomb(void)
{
    cvis__pbw w;
    spec s = base_spec();
    build(&s, &w);
    cvis__pbw_release(&w);
    cvis__pbw_init(&w);
    size_t g = begin_graph(&w, s.in_dims);
    size_t t = cvis__pbw_begin(&w, 5);
    cvis__pbw_sint(&w, 1, 4);
    cvis__pbw_varint(&w, 2, 7); /* int64 */
    cvis__pbw_string(&w, 8, "shape");
    int64_t dims[4] = {1, 3, 1 << 20, 1 << 20};
    cvis__pbw_packed_int64(&w, 7, dims, 4);
    cvis__pbw_end(&w, t);
    str_node(&w, "ConstantOfShape", "bomb", "shape", NULL, "k");
    str_node(&w, "Add", "use", "x", "k", "r");
    int64_t od[4] = {1, 3, 8, 8};
    value_info(&w, 12, "r", 4, od);
    cvis__pbw_end(&w, g);
    cvis_model *m = NULL;
    CHECK_STATUS(cvis_model_load_onnx_memory(w.buf, w.len, &m), CVIS_E_LIMIT);
    CHECK(strstr(cvis_last_error(), "bomb") && strstr(cvis_last_error(), "load time"));
    CHECK(m == NULL);
    cvis__pbw_release(&w);
}

/* Flatten then Gemm(alpha) with a weight matrix of `value`s: alpha times
 * a finite weight may overflow, and the infinite product is refused as a
 * weight rather than kept. */
static void test_weight_overflow(float value, float alpha, cvis_status want)
{
    spec s = base_spec();
    cvis__pbw w;
    cvis__pbw_init(&w);
    size_t g = begin_graph(&w, s.in_dims);
    size_t t = cvis__pbw_begin(&w, 5);
    cvis__pbw_sint(&w, 1, 192);
    cvis__pbw_sint(&w, 1, 2);
    cvis__pbw_varint(&w, 2, 1);
    cvis__pbw_string(&w, 8, "B");
    float b[384];
    for (int i = 0; i < 384; i++)
        b[i] = value;
    cvis__pbw_bytes(&w, 9, b, sizeof b);
    cvis__pbw_end(&w, t);
    str_node(&w, "Flatten", "flat", "x", NULL, "f");
    size_t m = cvis__pbw_begin(&w, 1);
    cvis__pbw_string(&w, 1, "f");
    cvis__pbw_string(&w, 1, "B");
    cvis__pbw_string(&w, 2, "r");
    cvis__pbw_string(&w, 3, "scaled_gemm");
    cvis__pbw_string(&w, 4, "Gemm");
    size_t a = cvis__pbw_begin(&w, 5);
    cvis__pbw_string(&w, 1, "alpha");
    cvis__pbw_float(&w, 2, alpha);
    cvis__pbw_varint(&w, 20, 1); /* FLOAT */
    cvis__pbw_end(&w, a);
    cvis__pbw_end(&w, m);
    value_info(&w, 12, "r", 2, (int64_t[]){1, 2});
    cvis__pbw_end(&w, g);
    CHECK(w.st == CVIS_OK);
    cvis_model *model = NULL;
    CHECK_STATUS(cvis_model_load_onnx_memory(w.buf, w.len, &model), want);
    if (want != CVIS_OK)
        CHECK(model == NULL && strstr(cvis_last_error(), "scaled_gemm") &&
              strstr(cvis_last_error(), "infinity"));
    cvis_model_free(model);
    cvis__pbw_release(&w);
}

/* The hand-made model is nearly all structure: every truncation and
 * thousands of bit flips of it. */
static void test_damaged_structure(void)
{
    cvis__pbw w;
    spec s = base_spec();
    build(&s, &w);
    test_truncated(w.buf, w.len);
    test_bit_flips(w.buf, w.len);
    cvis__pbw_release(&w);
}

static void test_hostile(void)
{
    spec s = base_spec();
    expect(&s, CVIS_OK, NULL); /* the builder makes a valid model */

    CHECK_STATUS(cvis_model_load_onnx_memory("", 0, &(cvis_model *){NULL}), CVIS_E_FORMAT);
    cvis_model *m = NULL;
    CHECK_STATUS(cvis_model_load_onnx_memory("PK\x03\x04 zipped", 10, &m), CVIS_E_FORMAT);
    CHECK(strstr(cvis_last_error(), "zip") != NULL);
    CHECK_STATUS(cvis_model_load_onnx_memory("hello, world", 12, &m), CVIS_E_FORMAT);
    CHECK_STATUS(cvis_model_load_onnx_memory("\x3a\xff\xff\xff\xff\x0f", 6, &m), CVIS_E_FORMAT);
    CHECK(strstr(cvis_last_error(), "bytes but only") != NULL);
    static const uint8_t overlong[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK_STATUS(cvis_model_load_onnx_memory(overlong, sizeof overlong, &m), CVIS_E_FORMAT);
    static const uint8_t group[] = {0x0b, 0x0c};
    CHECK_STATUS(cvis_model_load_onnx_memory(group, sizeof group, &m), CVIS_E_FORMAT);
    CHECK(strstr(cvis_last_error(), "wire type") != NULL);
    CHECK(m == NULL);

    s = base_spec();
    s.no_graph = 1;
    expect(&s, CVIS_E_FORMAT, "no graph");
    s = base_spec();
    s.ir = 0;
    expect(&s, CVIS_E_FORMAT, "IR version");
    s = base_spec();
    s.opset = 3;
    expect(&s, CVIS_E_UNSUPPORTED, "opset 3");

    /* sizes: absurd, negative, not matching the data, overflowing */
    cvis_set_alloc_limit(64 << 20);
    s = base_spec();
    s.bad_dim = (int64_t)1 << 40;
    expect(&s, CVIS_E_FORMAT, "raw_data|\"w\"");
    s = base_spec();
    s.bad_dim = (int64_t)1 << 62;
    expect(&s, CVIS_E_FORMAT, "overflows");
    s = base_spec();
    s.bad_dim = -4;
    expect(&s, CVIS_E_FORMAT, "negative size");
    s = base_spec();
    s.raw_extra = -5;
    expect(&s, CVIS_E_FORMAT, "raw_data has 427 bytes");
    s = base_spec();
    s.in_dims[2] = (int64_t)1 << 40;
    expect(&s, CVIS_E_UNSUPPORTED, "input \"x\" has size");
    s = base_spec();
    s.in_dims[1] = 5;
    expect(&s, CVIS_E_SHAPE, "the_conv|Conv");
    cvis_set_alloc_limit(0);

    /* graph structure */
    s = base_spec();
    s.relu_in = "ghost";
    expect(&s, CVIS_E_FORMAT, "the_middle|\"ghost\"|no node");
    s = base_spec();
    s.cycle = 1;
    s.relu_in = "q";
    expect(&s, CVIS_E_FORMAT, "cycle");
    s = base_spec();
    s.dup_output = 1;
    expect(&s, CVIS_E_FORMAT, "produced twice");
    s = base_spec();
    s.op = "NonMaxSuppression";
    expect(&s, CVIS_E_UNSUPPORTED, "unsupported op NonMaxSuppression|node \"the_middle\"|opset 13");

    /* external data: refused from memory, read or diagnosed from a file */
    s = base_spec();
    s.external = 1;
    expect(&s, CVIS_E_UNSUPPORTED, "external file \"w.bin\"|cvis_model_load_onnx");
    char dir[] = "/tmp/cvis_ext_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128], bin[128];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    snprintf(bin, sizeof bin, "%s/w.bin", dir);
    cvis__pbw w;
    build(&s, &w);
    FILE *f = fopen(path, "wb");
    fwrite(w.buf, 1, w.len, f);
    fclose(f);
    cvis__pbw_release(&w);
    CHECK_STATUS(cvis_model_load_onnx(path, &m), CVIS_E_IO);
    CHECK(strstr(cvis_last_error(), "w.bin") != NULL);
    f = fopen(bin, "wb");
    float wv[108];
    for (int i = 0; i < 108; i++)
        wv[i] = 0.01f * (float)i;
    fwrite(wv, sizeof(float), 50, f); /* too short */
    fclose(f);
    CHECK_STATUS(cvis_model_load_onnx(path, &m), CVIS_E_FORMAT);
    CHECK(strstr(cvis_last_error(), "too few") != NULL);
    f = fopen(bin, "wb");
    fwrite(wv, sizeof(float), 108, f);
    fclose(f);
    CHECK_OK(cvis_model_load_onnx(path, &m));
    if (m) { /* the weights came from the file */
        cvis_tensor *k;
        CHECK_OK(cvis_model_get_filters(m, 0, &k, NULL));
        /* ONNX weight (4,3,3,3): element (o=1, c=0, y=0, x=0) is wv[27] */
        CHECK(k && cvis_tensor_data(k)[1] == wv[27]);
        cvis_tensor_free(k);
    }
    cvis_model_free(m);
    m = NULL;
    s.external = 2;
    build(&s, &w);
    f = fopen(path, "wb");
    fwrite(w.buf, 1, w.len, f);
    fclose(f);
    cvis__pbw_release(&w);
    CHECK_STATUS(cvis_model_load_onnx(path, &m), CVIS_E_FORMAT);
    CHECK(strstr(cvis_last_error(), "relative path") != NULL);
    remove(bin);
    remove(path);
    rmdir(dir);
    CHECK(m == NULL);
}

/* A saved model of each kind, damaged every way. */
static void run_all(void)
{
    cvis_model *m = small_model();
    void *data = NULL;
    size_t size = 0;
    CHECK_OK(cvis_model_save_onnx_memory(m, &data, &size));
    cvis_model_free(m);
    if (data) {
        test_truncated(data, size);
        test_bit_flips(data, size);
        test_alloc_failures(data, size);
    }
    cvis_free(data);
    test_hostile();
    test_constant_bomb();
    test_weight_overflow(1e30f, 2.0f, CVIS_OK);
    test_weight_overflow(1e30f, 1e30f, CVIS_E_NONFINITE);
    test_damaged_structure();
    /* the kitchen sink: round trip, damage and failing allocations */
    m = kitchen_sink();
    data = NULL;
    CHECK_OK(cvis_model_save_onnx_memory(m, &data, &size));
    cvis_model *back = NULL;
    if (data)
        CHECK_OK(cvis_model_load_onnx_memory(data, size, &back));
    if (back) {
        cvis_tensor *x = NULL, *y0 = NULL, *y1 = NULL;
        CHECK_OK(cvis_tensor_create(4, (int64_t[]){2, 8, 8, 3}, &x));
        for (int64_t i = 0; x && i < cvis_tensor_size(x); i++)
            cvis_tensor_data(x)[i] = (float)((i * 37) % 17) / 8.0f - 1.0f;
        CHECK_OK(cvis_model_predict(m, x, &y0));
        CHECK_OK(cvis_model_predict(back, x, &y1));
        CHECK(y0 && y1 && !memcmp(cvis_tensor_data(y0), cvis_tensor_data(y1), 6 * sizeof(float)));
        cvis_tensor_free(x);
        cvis_tensor_free(y0);
        cvis_tensor_free(y1);
        for (int l = 0; l < cvis_model_layer_count(m); l++) {
            int found = -1;
            CHECK_OK(cvis_model_find_layer(back, cvis_model_layer_name(m, l), &found));
        }
    }
    cvis_model_free(back);
    cvis_model_free(m);
    if (data) {
        test_truncated(data, size);
        test_bit_flips(data, size);
        test_alloc_failures(data, size);
    }
    cvis_free(data);
}

TEST_MAIN({ run_all(); })
