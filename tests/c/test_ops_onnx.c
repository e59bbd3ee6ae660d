/* The ops added for imported graphs: transpose, slice, gather, matmul,
 * reduce, element-wise functions, layer norm, operations with a constant,
 * and reshape's copied sizes.  Forward against hand values or a direct
 * reference in double, backward against finite differences. */
#include <stdint.h>

#include "check.h"
#include "core/alloc.h"
#include "core/ops.h"
#include "gradcheck.h"

static cvis__rng rng;

static cvis_tensor *from_values(int ndim, const int64_t *shape, const float *v)
{
    cvis_tensor *t = NULL;
    cvis_tensor_create(ndim, shape, &t);
    for (int64_t i = 0; i < t->size; i++)
        t->data[i] = v[i];
    return t;
}

static cvis_tensor *randt(int ndim, const int64_t *shape, double lo, double hi)
{
    return tensor_rand(&rng, ndim, shape, lo, hi);
}

/* Row-major offset of index idx in a tensor of shape s. */
static int64_t offset_of(const cvis_tensor *t, const int64_t *idx)
{
    int64_t o = 0;
    for (int i = 0; i < t->ndim; i++)
        o = o * t->shape[i] + idx[i];
    return o;
}

/* Advances a multi-index over shape; returns 0 after the last one. */
static int next_index(int ndim, const int64_t *shape, int64_t *idx)
{
    for (int ax = ndim - 1; ax >= 0; ax--) {
        if (++idx[ax] < shape[ax])
            return 1;
        idx[ax] = 0;
    }
    return 0;
}

static void test_transpose(void)
{
    /* (2,3) -> (3,2) by hand */
    {
        cvis__transpose_attr a = {2, {1, 0}};
        opcase c = {0};
        int64_t s[2] = {2, 3};
        const float v[6] = {1, 2, 3, 4, 5, 6};
        c.op = &cvis__op_transpose;
        c.attr = &a;
        c.n_in = 1;
        c.in[0] = from_values(2, s, v);
        cvis__tape *t;
        const cvis_tensor *y = run_forward(&c, &t);
        const float want[6] = {1, 4, 2, 5, 3, 6};
        CHECK(y && y->shape[0] == 3 && y->shape[1] == 2);
        for (int i = 0; y && i < 6; i++)
            CHECK(y->data[i] == want[i]);
        cvis__tape_free(t);
        free_case(&c);
    }
    /* rank 5, every element against the definition, and the gradient */
    cvis__transpose_attr a = {5, {0, 3, 4, 2, 1}};
    opcase c = {0};
    int64_t s[5] = {2, 3, 2, 4, 3};
    c.op = &cvis__op_transpose;
    c.attr = &a;
    c.n_in = 1;
    c.in[0] = randt(5, s, -1, 1);
    cvis__tape *t;
    const cvis_tensor *y = run_forward(&c, &t);
    CHECK(y && y->shape[1] == 4 && y->shape[2] == 3 && y->shape[3] == 2 && y->shape[4] == 3);
    int bad = 0;
    int64_t oi[5] = {0};
    do {
        int64_t ii[5];
        for (int k = 0; k < 5; k++)
            ii[a.perm[k]] = oi[k];
        if (y && y->data[offset_of(y, oi)] != c.in[0]->data[offset_of(c.in[0], ii)])
            bad++;
    } while (y && next_index(5, y->shape, oi));
    CHECK(bad == 0);
    cvis__tape_free(t);
    CHECK(opcase_gradcheck(&c, 1e-2, 0, 200) < 1e-3);
    /* an invalid permutation is an error */
    cvis__transpose_attr dup = {2, {0, 0}};
    cvis__shape in = {2, {2, 3}}, out;
    CHECK_STATUS(cvis__op_transpose.shape(&dup, 1, &in, &out), CVIS_E_SHAPE);
    free_case(&c);
}

static void test_slice(void)
{
    int64_t s1 = 10;
    float v[10];
    for (int i = 0; i < 10; i++)
        v[i] = (float)i;
    struct {
        int64_t start, end, step;
        int n;
        float want[10];
    } cases[] = {
        {1, 8, 3, 3, {1, 4, 7}},
        {-1, INT64_MIN, -2, 5, {9, 7, 5, 3, 1}},
        {-3, INT64_MAX, 1, 3, {7, 8, 9}},
        {2, -20, -1, 3, {2, 1, 0}},
        {5, 2, 1, 0, {0}},
        {-100, 2, 1, 2, {0, 1}},
        {3, INT64_MAX, INT64_MAX, 1, {3}},     /* steps too large to add to anything */
        {3, INT64_MIN, INT64_MIN, 1, {3}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        cvis__slice_attr a = {1, {cases[k].start}, {cases[k].end}, {cases[k].step}};
        opcase c = {0};
        c.op = &cvis__op_slice;
        c.attr = &a;
        c.n_in = 1;
        c.in[0] = from_values(1, &s1, v);
        cvis__tape *t;
        const cvis_tensor *y = run_forward(&c, &t);
        CHECK(y && y->size == cases[k].n);
        for (int i = 0; y && i < cases[k].n && i < y->size; i++)
            CHECK(y->data[i] == cases[k].want[i]);
        cvis__tape_free(t);
        free_case(&c);
    }
    /* three axes at once, with the gradient */
    cvis__slice_attr a = {4, {0, 1, -1, 0}, {INT64_MAX, 4, INT64_MIN, INT64_MAX}, {1, 2, -2, 1}};
    opcase c = {0};
    int64_t s[4] = {2, 5, 5, 3};
    c.op = &cvis__op_slice;
    c.attr = &a;
    c.n_in = 1;
    c.in[0] = randt(4, s, -1, 1);
    cvis__tape *t;
    const cvis_tensor *y = run_forward(&c, &t);
    CHECK(y && y->shape[1] == 2 && y->shape[2] == 3 && y->shape[3] == 3);
    if (y) /* y[1,1,2,0] = x[1, 1+2*1, 4-2*2, 0] */
        CHECK(y->data[offset_of(y, (int64_t[]){1, 1, 2, 0})] ==
              c.in[0]->data[offset_of(c.in[0], (int64_t[]){1, 3, 0, 0})]);
    cvis__tape_free(t);
    CHECK(opcase_gradcheck(&c, 1e-2, 0, 200) < 1e-3);
    free_case(&c);
    cvis__slice_attr zero = {1, {0}, {1}, {0}};
    cvis__shape in = {1, {4}}, out;
    CHECK_STATUS(cvis__op_slice.shape(&zero, 1, &in, &out), CVIS_E_SHAPE);
}

static void test_gather(void)
{
    cvis__gather_attr *a = NULL;
    cvis__alloc(sizeof *a + 4 * sizeof(int64_t), "test", (void **)&a);
    a->axis = 1;
    a->n = 4;
    a->idx[0] = 2;
    a->idx[1] = 0;
    a->idx[2] = -1;
    a->idx[3] = 0; /* repeated: its gradient adds up */
    opcase c = {0};
    int64_t s[3] = {2, 4, 3};
    c.op = &cvis__op_gather;
    c.attr = a;
    c.n_in = 1;
    c.in[0] = randt(3, s, -1, 1);
    cvis__tape *t;
    const cvis_tensor *y = run_forward(&c, &t);
    CHECK(y && y->shape[1] == 4);
    if (y) {
        CHECK(y->data[offset_of(y, (int64_t[]){1, 0, 2})] ==
              c.in[0]->data[offset_of(c.in[0], (int64_t[]){1, 2, 2})]);
        CHECK(y->data[offset_of(y, (int64_t[]){0, 2, 1})] ==
              c.in[0]->data[offset_of(c.in[0], (int64_t[]){0, 3, 1})]);
    }
    cvis__tape_free(t);
    CHECK(opcase_gradcheck(&c, 1e-2, 0, 200) < 1e-3);
    a->idx[2] = 4;
    cvis__shape in = {3, {2, 4, 3}}, out;
    CHECK_STATUS(cvis__op_gather.shape(a, 1, &in, &out), CVIS_E_RANGE);
    free_case(&c);
    cvis__free(a);
}

static void test_matmul(void)
{
    {
        opcase c = {0};
        int64_t s[2] = {2, 2};
        const float av[4] = {1, 2, 3, 4}, bv[4] = {5, 6, 7, 8};
        c.op = &cvis__op_matmul;
        c.n_in = 2;
        c.in[0] = from_values(2, s, av);
        c.in[1] = from_values(2, s, bv);
        cvis__tape *t;
        const cvis_tensor *y = run_forward(&c, &t);
        const float want[4] = {19, 22, 43, 50};
        for (int i = 0; y && i < 4; i++)
            CHECK(y->data[i] == want[i]);
        cvis__tape_free(t);
        free_case(&c);
    }
    /* (2,1,3,4) x (5,4,2) -> (2,5,3,2) */
    opcase c = {0};
    int64_t sa[4] = {2, 1, 3, 4}, sb[3] = {5, 4, 2};
    c.op = &cvis__op_matmul;
    c.n_in = 2;
    c.in[0] = randt(4, sa, -1, 1);
    c.in[1] = randt(3, sb, -1, 1);
    cvis__tape *t;
    const cvis_tensor *y = run_forward(&c, &t);
    CHECK(y && y->ndim == 4 && y->shape[0] == 2 && y->shape[1] == 5 && y->shape[2] == 3 &&
          y->shape[3] == 2);
    double worst = 0;
    for (int i = 0; y && i < 2; i++)
        for (int j = 0; j < 5; j++)
            for (int m = 0; m < 3; m++)
                for (int n = 0; n < 2; n++) {
                    double r = 0;
                    for (int k = 0; k < 4; k++)
                        r += (double)c.in[0]->data[(i * 3 + m) * 4 + k] *
                             c.in[1]->data[(j * 4 + k) * 2 + n];
                    worst = fmax(worst, fabs(r - y->data[((i * 5 + j) * 3 + m) * 2 + n]));
                }
    CHECK(worst < 1e-6);
    cvis__tape_free(t);
    CHECK(opcase_gradcheck(&c, 1e-2, 0, 200) < 1e-3);
    cvis__shape bad[2] = {{2, {2, 3}}, {2, {4, 2}}}, out;
    CHECK_STATUS(cvis__op_matmul.shape(NULL, 2, bad, &out), CVIS_E_SHAPE);
    free_case(&c);
}

static void test_reduce(void)
{
    int64_t s[4] = {1, 2, 2, 3};
    const float v[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    struct {
        int kind, keep;
        unsigned axes;
        int ndim;
        float want[3];
    } cases[] = {
        {CVIS__REDUCE_MEAN, 1, 6u, 4, {5.5f, 6.5f, 7.5f}},
        {CVIS__REDUCE_SUM, 0, 6u, 2, {22, 26, 30}},
        {CVIS__REDUCE_MAX, 0, 6u, 2, {10, 11, 12}},
        {CVIS__REDUCE_MEAN, 0, 8u, 3, {2, 5, 8}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        cvis__reduce_attr a = {cases[k].kind, cases[k].keep, cases[k].axes};
        opcase c = {0};
        c.op = &cvis__op_reduce;
        c.attr = &a;
        c.n_in = 1;
        c.in[0] = from_values(4, s, v);
        cvis__tape *t;
        const cvis_tensor *y = run_forward(&c, &t);
        CHECK(y && y->ndim == cases[k].ndim);
        for (int i = 0; y && i < 3; i++)
            CHECK_NEAR(y->data[i], cases[k].want[i], 1e-6);
        cvis__tape_free(t);
        free_case(&c);
    }
    for (int kind = 0; kind < 3; kind++) {
        cvis__reduce_attr a = {kind, kind == 1, 5u};
        opcase c = {0};
        int64_t s2[3] = {3, 4, 5};
        c.op = &cvis__op_reduce;
        c.attr = &a;
        c.n_in = 1;
        c.in[0] = randt(3, s2, -1, 1);
        CHECK(opcase_gradcheck(&c, 1e-3, 0, 100) < 1e-3);
        free_case(&c);
    }
}

/* The functions in double, as their definitions read. */
static double ref_unary(const cvis__unary_attr *u, double x)
{
    switch (u->kind) {
    case CVIS__UN_SQRT: return sqrt(x);
    case CVIS__UN_ERF: return erf(x);
    case CVIS__UN_POW: return pow(x, u->a);
    case CVIS__UN_EXP: return exp(x);
    case CVIS__UN_LOG: return log(x);
    case CVIS__UN_NEG: return -x;
    case CVIS__UN_ABS: return fabs(x);
    case CVIS__UN_RECIPROCAL: return 1 / x;
    case CVIS__UN_SILU: return x / (1 + exp(-x));
    case CVIS__UN_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case CVIS__UN_CLIP: return fmin(fmax(x, u->a), u->b);
    case CVIS__UN_HARD_SIGMOID: return fmin(1, fmax(0, u->a * x + u->b));
    case CVIS__UN_SOFTPLUS: return log(1 + exp(x));
    default: return x > 0 ? x : u->a * (exp(x) - 1);
    }
}

static void test_unary(void)
{
    struct {
        cvis__unary_attr a;
        double lo, hi;
    } cases[] = {
        {{CVIS__UN_SQRT, 0, 0}, 0.5, 3},       {{CVIS__UN_ERF, 0, 0}, -2, 2},
        {{CVIS__UN_POW, 2, 0}, -2, 2},         {{CVIS__UN_POW, 1.5f, 0}, 0.5, 2},
        {{CVIS__UN_EXP, 0, 0}, -2, 2},         {{CVIS__UN_LOG, 0, 0}, 0.5, 3},
        {{CVIS__UN_NEG, 0, 0}, -2, 2},         {{CVIS__UN_ABS, 0, 0}, -2, 2},
        {{CVIS__UN_RECIPROCAL, 0, 0}, 0.5, 2}, {{CVIS__UN_SILU, 0, 0}, -4, 4},
        {{CVIS__UN_GELU, 0, 0}, -3, 3},        {{CVIS__UN_CLIP, -0.5f, 0.7f}, -2, 2},
        {{CVIS__UN_HARD_SIGMOID, 0.2f, 0.5f}, -4, 4},
        {{CVIS__UN_SOFTPLUS, 0, 0}, -3, 3},    {{CVIS__UN_ELU, 1.3f, 0}, -2, 2},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        opcase c = {0};
        int64_t s[2] = {3, 7};
        c.op = &cvis__op_unary;
        c.attr = &cases[k].a;
        c.n_in = 1;
        c.in[0] = randt(2, s, cases[k].lo, cases[k].hi);
        /* keep the kinks of clip, abs and hard sigmoid away from the samples */
        for (int64_t i = 0; i < c.in[0]->size; i++) {
            float *x = &c.in[0]->data[i];
            if (fabsf(*x) < 0.05f || fabsf(*x + 0.5f) < 0.05f || fabsf(*x - 0.7f) < 0.05f ||
                fabsf(*x + 2.5f) < 0.05f || fabsf(*x - 2.5f) < 0.05f)
                *x += 0.11f;
        }
        cvis__tape *t;
        const cvis_tensor *y = run_forward(&c, &t);
        double worst = 0;
        for (int64_t i = 0; y && i < y->size; i++) {
            double r = ref_unary(&cases[k].a, c.in[0]->data[i]);
            worst = fmax(worst, fabs(r - y->data[i]) / fmax(1, fabs(r)));
        }
        if (worst > 2e-6)
            fprintf(stderr, "unary %s: forward differs by %g\n", cvis__unary_name(cases[k].a.kind),
                    worst);
        CHECK(y && worst <= 2e-6);
        cvis__tape_free(t);
        double rel = opcase_gradcheck(&c, 1e-3, 0, 100);
        if (rel > 2e-3)
            fprintf(stderr, "unary %s: gradient relative error %g\n",
                    cvis__unary_name(cases[k].a.kind), rel);
        CHECK(rel <= 2e-3);
        free_case(&c);
    }
    cvis__unary_attr bad = {99, 0, 0};
    cvis__shape in = {1, {3}}, out;
    CHECK_STATUS(cvis__op_unary.shape(&bad, 1, &in, &out), CVIS_E_INVALID_ARG);
}

static void test_layer_norm(void)
{
    {
        cvis__layer_norm_attr a = {1, 0.0f, 1};
        opcase c = {0};
        int64_t s[2] = {1, 4}, p = 4;
        const float v[4] = {1, 2, 3, 4}, g[4] = {1, 1, 2, 1}, b[4] = {0, 0, 0, 1};
        c.op = &cvis__op_layer_norm;
        c.attr = &a;
        c.n_in = 1;
        c.in[0] = from_values(2, s, v);
        c.p[0] = from_values(1, &p, g);
        c.p[1] = from_values(1, &p, b);
        c.n_p = 2;
        cvis__tape *t;
        const cvis_tensor *y = run_forward(&c, &t);
        /* mean 2.5, variance 1.25 */
        double sd = sqrt(1.25);
        CHECK(y != NULL);
        if (y) {
            CHECK_NEAR(y->data[0], -1.5 / sd, 1e-6);
            CHECK_NEAR(y->data[2], 2 * 0.5 / sd, 1e-6);
            CHECK_NEAR(y->data[3], 1.5 / sd + 1, 1e-6);
        }
        cvis__tape_free(t);
        free_case(&c);
    }
    cvis__layer_norm_attr a = {2, 1e-5f, 1};
    opcase c = {0};
    int64_t s[3] = {2, 3, 4}, p[2] = {3, 4};
    c.op = &cvis__op_layer_norm;
    c.attr = &a;
    c.n_in = 1;
    c.in[0] = randt(3, s, -1, 1);
    c.p[0] = randt(2, p, 0.5, 1.5);
    c.p[1] = randt(2, p, -0.5, 0.5);
    c.n_p = 2;
    CHECK(opcase_gradcheck(&c, 1e-3, 1, 100) < 2e-3);
    free_case(&c);
}

static void test_binary_const(void)
{
    /* x (2,2) op c (2,): hand values for each kind and side */
    int64_t sx[2] = {2, 2}, sc = 2;
    const float xv[4] = {1, 2, 3, 4}, cv[2] = {2, 0.5f};
    struct {
        int kind, first;
        float want[4];
    } cases[] = {
        {CVIS__BIN_ADD, 0, {3, 2.5f, 5, 4.5f}},
        {CVIS__BIN_SUB, 0, {-1, 1.5f, 1, 3.5f}},
        {CVIS__BIN_SUB, 1, {1, -1.5f, -1, -3.5f}},
        {CVIS__BIN_MUL, 0, {2, 1, 6, 2}},
        {CVIS__BIN_DIV, 0, {0.5f, 4, 1.5f, 8}},
        {CVIS__BIN_DIV, 1, {2, 0.25f, 2.0f / 3, 0.125f}},
        {CVIS__BINC_POW, 0, {1, 1.41421356f, 9, 2}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        cvis__binary_const_attr a = {cases[k].kind, cases[k].first};
        opcase c = {0};
        c.op = &cvis__op_binary_const;
        c.attr = &a;
        c.n_in = 1;
        c.in[0] = from_values(2, sx, xv);
        c.p[0] = from_values(1, &sc, cv);
        c.n_p = 1;
        cvis__tape *t;
        const cvis_tensor *y = run_forward(&c, &t);
        for (int i = 0; y && i < 4; i++)
            CHECK_NEAR(y->data[i], cases[k].want[i], 1e-6);
        CHECK(y != NULL);
        cvis__tape_free(t);
        free_case(&c);
    }
    /* (2,3,3,4) with a (1,1,4) constant, gradients of both */
    for (int kind = 0; kind <= CVIS__BINC_POW; kind++)
        for (int first = 0; first < 2; first++) {
            cvis__binary_const_attr a = {kind, first};
            opcase c = {0};
            int64_t s[4] = {2, 3, 3, 4}, p[3] = {1, 1, 4};
            c.op = &cvis__op_binary_const;
            c.attr = &a;
            c.n_in = 1;
            c.in[0] = randt(4, s, 0.5, 1.5);
            c.p[0] = randt(3, p, 0.5, 1.5);
            c.n_p = 1;
            double rel = opcase_gradcheck(&c, 1e-3, 1, 100);
            if (rel > 2e-3)
                fprintf(stderr, "binary_const kind %d first %d: gradient error %g\n", kind, first,
                        rel);
            CHECK(rel <= 2e-3);
            free_case(&c);
        }
    /* a constant larger than the input is a shape error */
    cvis__binary_const_attr a = {CVIS__BIN_ADD, 0};
    opcase c = {0};
    int64_t s[2] = {2, 1}, p[2] = {2, 3};
    c.op = &cvis__op_binary_const;
    c.attr = &a;
    c.n_in = 1;
    c.in[0] = randt(2, s, -1, 1);
    c.p[0] = randt(2, p, -1, 1);
    c.n_p = 1;
    cvis__tape *t;
    const cvis_tensor *y = run_forward(&c, &t);
    CHECK(y == NULL);
    cvis__tape_free(t);
    free_case(&c);
}

static void test_reshape_copy(void)
{
    /* (1, 5, 7, 12) -> (1, 5, 7, 3, 4) with the spatial sizes copied */
    cvis__reshape_attr a = {4, {-3, -4, 3, -1}};
    cvis__shape in = {4, {1, 5, 7, 12}}, out;
    CHECK_OK(cvis__op_reshape.shape(&a, 1, &in, &out));
    CHECK(out.ndim == 5 && out.d[1] == 5 && out.d[2] == 7 && out.d[3] == 3 && out.d[4] == 4);
    cvis__reshape_attr bad = {1, {-9}};
    CHECK_STATUS(cvis__op_reshape.shape(&bad, 1, &in, &out), CVIS_E_SHAPE);
}

/* A convolution with merged batch norm gives, bit for bit, the convolution
 * followed by a batch-norm op (ONNX import merges the two). */
static void test_conv_bn_merge_exact(void)
{
    int64_t xs[4] = {2, 5, 6, 3}, ks[4] = {3, 3, 3, 4}, c4 = 4;
    cvis_tensor *x = randt(4, xs, -1, 1), *k = randt(4, ks, -1, 1), *b = randt(1, &c4, -1, 1);
    cvis_tensor *g = randt(1, &c4, 0.5, 1.5), *be = randt(1, &c4, -1, 1);
    cvis_tensor *mu = randt(1, &c4, -1, 1), *var = randt(1, &c4, 0.5, 2);
    cvis__conv_attr plain = {3, 3, 1, 1, 1, 1, 1, CVIS__PAD_SAME_UPPER, 0, 0, 0, 0, 4, 1, 0, 0,
                             CVIS_ACT_RELU, 0};
    cvis__conv_attr merged = plain;
    merged.has_bn = 1;
    merged.bn_eps = 1e-3f;
    plain.act = CVIS_ACT_LINEAR;
    cvis__bn_attr bn = {1e-3f};
    cvis__act_attr relu = {CVIS_ACT_RELU, 0};
    cvis__tape *t;
    cvis__tape_new(&t);
    int in, a, c, d, e;
    cvis__tape_leaf(t, x, 0, &in);
    const cvis_tensor *pm[6] = {k, b, g, be, mu, var}, *pp[2] = {k, b}, *pb[4] = {g, be, mu, var};
    CHECK_OK(cvis__tape_push(t, &cvis__op_conv2d, &merged, 1, &in, 6, pm, 0, 0, &a));
    CHECK_OK(cvis__tape_push(t, &cvis__op_conv2d, &plain, 1, &in, 2, pp, 0, 0, &c));
    CHECK_OK(cvis__tape_push(t, &cvis__op_batch_norm, &bn, 1, &c, 4, pb, 0, 0, &d));
    CHECK_OK(cvis__tape_push(t, &cvis__op_activation, &relu, 1, &d, 0, NULL, 0, 0, &e));
    const cvis_tensor *ya = cvis__tape_value(t, a), *ye = cvis__tape_value(t, e);
    CHECK(ya->size == ye->size && !memcmp(ya->data, ye->data, (size_t)ya->size * sizeof(float)));
    cvis__tape_free(t);
    cvis_tensor *all[7] = {x, k, b, g, be, mu, var};
    for (int i = 0; i < 7; i++)
        cvis_tensor_free(all[i]);
}

TEST_MAIN({
    test_conv_bn_merge_exact();
    cvis__rng_seed(&rng, 7);
    test_transpose();
    test_slice();
    test_gather();
    test_matmul();
    test_reduce();
    test_unary();
    test_layer_norm();
    test_binary_const();
    test_reshape_copy();
})
