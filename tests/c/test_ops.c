/* Every core op: forward against hand-computed values or a direct
 * reference, backward against central finite differences. */
#include "check.h"
#include "core/conv_direct.h"
#include "core/conv_winograd.h"
#include "core/isa.h"
#include "core/ops.h"
#include "gradcheck.h"

static cvis__rng rng;
/* which convolution path a failing case took, for its message */
static const char *conv_path = "";

static cvis_tensor *rand4(int64_t a, int64_t b, int64_t c, int64_t d, double lo, double hi)
{
    int64_t s[4] = {a, b, c, d};
    return tensor_rand(&rng, 4, s, lo, hi);
}

static cvis_tensor *rand1(int64_t n, double lo, double hi)
{
    return tensor_rand(&rng, 1, &n, lo, hi);
}

/* Direct convolution in double, as the definition reads. */
static double ref_conv_at(const cvis__conv_attr *a, const cvis_tensor *x, const cvis_tensor *w,
                          const float *bias, int pt, int pl, int64_t b, int64_t oy, int64_t ox,
                          int co)
{
    int64_t H = x->shape[1], W = x->shape[2], C = x->shape[3];
    int cg = (int)(C / a->groups), coutg = a->cout / a->groups, g = co / coutg;
    double s = bias ? bias[co] : 0;
    for (int ky = 0; ky < a->kh; ky++)
        for (int kx = 0; kx < a->kw; kx++)
            for (int c = 0; c < cg; c++) {
                int64_t iy = oy * a->sh - pt + ky * a->dh, ix = ox * a->sw - pl + kx * a->dw;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                    continue;
                s += (double)x->data[((b * H + iy) * W + ix) * C + g * cg + c] *
                     w->data[((ky * a->kw + kx) * cg + c) * a->cout + co];
            }
    return s;
}

static void test_conv_case(const char *label, cvis__conv_attr a, int64_t B, int64_t H, int64_t W,
                           int64_t C, int64_t Ho, int64_t Wo, int pt, int pl)
{
    opcase c = {0};
    c.op = &cvis__op_conv2d;
    c.attr = &a;
    c.n_in = 1;
    c.in[0] = rand4(B, H, W, C, -1, 1);
    int64_t ks[4] = {a.kh, a.kw, C / a.groups, a.cout};
    c.p[c.n_p++] = tensor_rand(&rng, 4, ks, -0.5, 0.5);
    if (a.has_bias)
        c.p[c.n_p++] = rand1(a.cout, -0.5, 0.5);
    if (a.has_bn) {
        c.p[c.n_p++] = rand1(a.cout, 0.5, 1.5);  /* gamma */
        c.p[c.n_p++] = rand1(a.cout, -0.5, 0.5); /* beta */
        c.p[c.n_p++] = rand1(a.cout, -0.2, 0.2); /* mean */
        c.p[c.n_p++] = rand1(a.cout, 0.5, 2.0);  /* var */
    }
    cvis__tape *t;
    const cvis_tensor *y = run_forward(&c, &t);
    CHECK(y != NULL);
    if (y) {
        CHECK(y->shape[1] == Ho && y->shape[2] == Wo && y->shape[3] == a.cout);
        double worst = 0;
        for (int64_t b = 0; b < B; b++)
            for (int64_t oy = 0; oy < Ho; oy++)
                for (int64_t ox = 0; ox < Wo; ox++)
                    for (int co = 0; co < a.cout; co++) {
                        double r = ref_conv_at(&a, c.in[0], c.p[0], a.has_bias ? c.p[1]->data : NULL,
                                               pt, pl, b, oy, ox, co);
                        if (a.has_bn) {
                            int k = a.has_bias ? 2 : 1;
                            double s = c.p[k]->data[co] / sqrt(c.p[k + 3]->data[co] + a.bn_eps);
                            r = (r - c.p[k + 2]->data[co]) * s + c.p[k + 1]->data[co];
                        }
                        if (a.act == CVIS_ACT_RELU && r < 0)
                            r = 0;
                        double d = fabs(r - y->data[((b * Ho + oy) * Wo + ox) * a.cout + co]);
                        worst = d > worst ? d : worst;
                    }
        if (worst > 1e-5)
            fprintf(stderr, "conv %s%s: forward differs by %g\n", label, conv_path, worst);
        CHECK(worst <= 1e-5);
    }
    cvis__tape_free(t);
    if (a.act == CVIS_ACT_LINEAR) {
        double rel = opcase_gradcheck(&c, 1e-2, !a.has_bn, 300);
        if (rel > 1e-3)
            fprintf(stderr, "conv %s%s: gradient relative error %g\n", label, conv_path, rel);
        CHECK(rel < 1e-3);
    }
    free_case(&c);
}

/* Several images in one im2col + GEMM (lib/core/conv2d.c, COL_BATCH_FLOATS):
 * 64x80 outputs of 3x3x16 columns are 737,280 floats an image, and the
 * data gradient's columns (3x3x20 of dy) 921,600, so in both two of the
 * three images share a product and the third is a product of its own.
 * Forward, input gradient and weight gradient against the definition, on
 * samples of every image (too large for finite differences). */
static void test_conv_shared_product(void)
{
    cvis__conv_attr a = {3, 3, 1, 1, 1, 1, 1, CVIS__PAD_SAME_UPPER, 0, 0, 0, 0, 20, 1, 0, 0,
                         CVIS_ACT_LINEAR, 0};
    const int64_t B = 3, H = 64, W = 80, C = 16;
    opcase c = {0};
    c.op = &cvis__op_conv2d;
    c.attr = &a;
    c.n_in = 1;
    c.in[0] = rand4(B, H, W, C, -1, 1);
    int64_t ks[4] = {3, 3, C, a.cout};
    c.p[c.n_p++] = tensor_rand(&rng, 4, ks, -0.5, 0.5);
    c.p[c.n_p++] = rand1(a.cout, -0.5, 0.5);
    cvis__tape *t = NULL;
    int in_slot, out_slot;
    CHECK_OK(cvis__tape_new(&t));
    CHECK_OK(cvis__tape_leaf(t, c.in[0], 1, &in_slot));
    CHECK_OK(cvis__tape_push(t, c.op, c.attr, 1, &in_slot, c.n_p, (const cvis_tensor *const *)c.p,
                             1, 0, &out_slot));
    const cvis_tensor *y = cvis__tape_value(t, out_slot);
    cvis_tensor *R = rand4(B, H, W, a.cout, -1, 1);
    const float *seed = R->data;
    CHECK_OK(cvis__tape_backward(t, 1, &out_slot, &seed, CVIS__RELU_NORMAL));
    const cvis_tensor *dx = cvis__tape_grad(t, in_slot);
    const float *dw = cvis__tape_param_grad(t, out_slot, 0);
    const float *w = c.p[0]->data;
    double worst_y = 0, worst_dx = 0, worst_dw = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < 400; k++) {
            int64_t oy = (k * 37 + b) % H, ox = (k * 53 + 7 * b) % W;
            int co = (int)(k % a.cout), ci = (int)(k % C);
            double r = ref_conv_at(&a, c.in[0], c.p[0], c.p[1]->data, 1, 1, b, oy, ox, co);
            double d = fabs(r - y->data[((b * H + oy) * W + ox) * a.cout + co]);
            worst_y = d > worst_y ? d : worst_y;
            /* dx at (oy, ox, ci): every output whose window covers it */
            double g = 0;
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++) {
                    int64_t py = oy + 1 - ky, px = ox + 1 - kx;
                    if (py < 0 || py >= H || px < 0 || px >= W)
                        continue;
                    for (int o = 0; o < a.cout; o++)
                        g += (double)R->data[((b * H + py) * W + px) * a.cout + o] *
                             w[((ky * 3 + kx) * C + ci) * a.cout + o];
                }
            d = fabs(g - dx->data[((b * H + oy) * W + ox) * C + ci]);
            worst_dx = d > worst_dx ? d : worst_dx;
        }
    /* a few weight gradients: sums over every image and position */
    for (int k = 0; k < 12; k++) {
        int ky = k % 3, kx = (k / 3) % 3, ci = (k * 5) % (int)C, co = (k * 7) % a.cout;
        double g = 0;
        for (int64_t b = 0; b < B; b++)
            for (int64_t oy = 0; oy < H; oy++)
                for (int64_t ox = 0; ox < W; ox++) {
                    int64_t iy = oy - 1 + ky, ix = ox - 1 + kx;
                    if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                        g += (double)c.in[0]->data[((b * H + iy) * W + ix) * C + ci] *
                             R->data[((b * H + oy) * W + ox) * a.cout + co];
                }
        double d = fabs(g - dw[((ky * 3 + kx) * C + ci) * a.cout + co]) / (1 + fabs(g));
        worst_dw = d > worst_dw ? d : worst_dw;
    }
    if (worst_y > 1e-4 || worst_dx > 1e-4 || worst_dw > 1e-4)
        fprintf(stderr, "conv shared product%s: forward %g, dx %g, dw %g\n", conv_path, worst_y,
                worst_dx, worst_dw);
    CHECK(worst_y <= 1e-4);
    CHECK(worst_dx <= 1e-4);
    CHECK(worst_dw <= 1e-4);
    cvis_tensor_free(R);
    cvis__tape_free(t);
    free_case(&c);
}

static void test_conv_direct_cases(void)
{
    test_conv_case("direct 8 from 3", (cvis__conv_attr){3, 3, 1, 1, 1, 1, 1, CVIS__PAD_VALID, 0, 0,
                                                        0, 0, 8, 1, 0, 0, CVIS_ACT_LINEAR, 0},
                   2, 9, 14, 3, 7, 12, 0, 0);
    test_conv_case("direct 16 from 8 same", (cvis__conv_attr){5, 3, 1, 1, 1, 1, 1, CVIS__PAD_SAME_UPPER,
                                                              0, 0, 0, 0, 16, 1, 0, 0,
                                                              CVIS_ACT_LINEAR, 0},
                   2, 7, 13, 8, 7, 13, 2, 1);
    test_conv_case("direct strided dilated", (cvis__conv_attr){3, 3, 2, 2, 2, 2, 1, CVIS__PAD_EXPLICIT,
                                                               2, 1, 1, 2, 8, 1, 0, 0,
                                                               CVIS_ACT_LINEAR, 0},
                   1, 15, 20, 8, 7, 10, 2, 1);
    test_conv_case("direct 8 from 5", (cvis__conv_attr){2, 4, 1, 1, 1, 1, 1, CVIS__PAD_SAME_UPPER, 0,
                                                        0, 0, 0, 8, 1, 0, 0, CVIS_ACT_LINEAR, 0},
                   1, 6, 11, 5, 6, 11, 0, 1);
    test_conv_case("direct relu", (cvis__conv_attr){3, 3, 1, 1, 1, 1, 1, CVIS__PAD_VALID, 0, 0, 0, 0,
                                                    8, 1, 0, 0, CVIS_ACT_RELU, 0},
                   2, 8, 12, 8, 6, 10, 0, 0);
}

static void test_conv_general_cases(void)
{
    /* kh,kw,sh,sw,dh,dw,groups,mode,pt,pl,pb,pr,cout,bias,bn,eps,act,alpha */
    test_conv_case("valid 3x3", (cvis__conv_attr){3, 3, 1, 1, 1, 1, 1, CVIS__PAD_VALID, 0, 0, 0, 0,
                                                  4, 1, 0, 0, CVIS_ACT_LINEAR, 0},
                   2, 7, 6, 3, 5, 4, 0, 0);
    test_conv_case("same stride 2", (cvis__conv_attr){3, 3, 2, 2, 1, 1, 1, CVIS__PAD_SAME_UPPER, 0,
                                                      0, 0, 0, 5, 1, 0, 0, CVIS_ACT_LINEAR, 0},
                   2, 8, 7, 3, 4, 4, 0, 1);
    test_conv_case("explicit pads", (cvis__conv_attr){3, 2, 1, 2, 1, 1, 1, CVIS__PAD_EXPLICIT, 1, 2,
                                                      0, 1, 3, 1, 0, 0, CVIS_ACT_LINEAR, 0},
                   1, 5, 6, 2, 4, 4, 1, 2);
    test_conv_case("dilation 2", (cvis__conv_attr){3, 3, 1, 1, 2, 2, 1, CVIS__PAD_VALID, 0, 0, 0, 0,
                                                   3, 0, 0, 0, CVIS_ACT_LINEAR, 0},
                   1, 9, 8, 2, 5, 4, 0, 0);
    test_conv_case("groups 2", (cvis__conv_attr){3, 3, 1, 1, 1, 1, 2, CVIS__PAD_SAME_UPPER, 0, 0, 0,
                                                 0, 6, 1, 0, 0, CVIS_ACT_LINEAR, 0},
                   2, 5, 5, 4, 5, 5, 1, 1);
    test_conv_case("depthwise", (cvis__conv_attr){3, 3, 2, 2, 1, 1, 4, CVIS__PAD_SAME_UPPER, 0, 0, 0,
                                                  0, 8, 1, 0, 0, CVIS_ACT_LINEAR, 0},
                   1, 6, 6, 4, 3, 3, 0, 0);
    test_conv_case("1x1 direct", (cvis__conv_attr){1, 1, 1, 1, 1, 1, 1, CVIS__PAD_VALID, 0, 0, 0, 0,
                                                   5, 1, 0, 0, CVIS_ACT_LINEAR, 0},
                   3, 4, 3, 6, 4, 3, 0, 0);
    test_conv_case("1x1 stride 2", (cvis__conv_attr){1, 1, 2, 2, 1, 1, 1, CVIS__PAD_VALID, 0, 0, 0,
                                                     0, 5, 1, 0, 0, CVIS_ACT_LINEAR, 0},
                   1, 5, 4, 3, 3, 2, 0, 0);
    test_conv_case("same lower", (cvis__conv_attr){2, 2, 1, 1, 1, 1, 1, CVIS__PAD_SAME_LOWER, 0, 0,
                                                   0, 0, 2, 1, 0, 0, CVIS_ACT_LINEAR, 0},
                   1, 4, 4, 2, 4, 4, 1, 1);
    test_conv_case("batch norm", (cvis__conv_attr){3, 3, 1, 1, 1, 1, 1, CVIS__PAD_SAME_UPPER, 0, 0,
                                                   0, 0, 4, 1, 1, 1e-5f, CVIS_ACT_LINEAR, 0},
                   2, 5, 5, 3, 5, 5, 1, 1);
    test_conv_case("relu", (cvis__conv_attr){3, 3, 1, 1, 1, 1, 1, CVIS__PAD_VALID, 0, 0, 0, 0, 4, 1,
                                             0, 0, CVIS_ACT_RELU, 0},
                   2, 6, 6, 3, 4, 4, 0, 0);
    /* Winograd's edges: odd output sizes (tiles cut by the edge), pads
     * of 0 and 2 (the flipped kernel's pads 2 and 0), one image row of
     * tiles, wide channels */
    test_conv_case("3x3 pads 2,0,1,2 odd", (cvis__conv_attr){3, 3, 1, 1, 1, 1, 1, CVIS__PAD_EXPLICIT,
                                                            2, 0, 1, 2, 6, 1, 0, 0,
                                                            CVIS_ACT_LINEAR, 0},
                   2, 7, 5, 5, 8, 5, 2, 0);
    test_conv_case("3x3 one row", (cvis__conv_attr){3, 3, 1, 1, 1, 1, 1, CVIS__PAD_VALID, 0, 0, 0,
                                                    0, 3, 0, 0, 0, CVIS_ACT_LINEAR, 0},
                   1, 3, 9, 2, 1, 7, 0, 0);
    /* more input channels than dy's pixels: the data gradient takes GEMM +
     * col2im, and the weight gradient im2col, beside a Winograd forward */
    test_conv_case("3x3 few pixels", (cvis__conv_attr){3, 3, 1, 1, 1, 1, 1, CVIS__PAD_SAME_UPPER,
                                                       0, 0, 0, 0, 3, 1, 0, 0, CVIS_ACT_LINEAR, 0},
                   1, 4, 5, 8, 4, 5, 1, 1);
    test_conv_case("3x3 bn relu wide", (cvis__conv_attr){3, 3, 1, 1, 1, 1, 1, CVIS__PAD_SAME_UPPER,
                                                         0, 0, 0, 0, 40, 1, 1, 1e-5f,
                                                         CVIS_ACT_RELU, 0},
                   2, 6, 5, 36, 6, 5, 1, 1);
}

static void test_conv(void)
{
    /* a hand-computed case: 3x3 input, 2x2 kernel of ones, bias 1 */
    {
        cvis__conv_attr a = {2, 2, 1, 1, 1, 1, 1, CVIS__PAD_VALID, 0, 0, 0, 0, 1, 1, 0, 0,
                             CVIS_ACT_LINEAR, 0};
        opcase c = {0};
        int64_t xs[4] = {1, 3, 3, 1}, ks[4] = {2, 2, 1, 1}, one = 1;
        c.op = &cvis__op_conv2d;
        c.attr = &a;
        c.n_in = 1;
        cvis_tensor_create(4, xs, &c.in[0]);
        for (int i = 0; i < 9; i++)
            c.in[0]->data[i] = (float)(i + 1);
        cvis_tensor_create(4, ks, &c.p[0]);
        for (int i = 0; i < 4; i++)
            c.p[0]->data[i] = 1;
        cvis_tensor_create(1, &one, &c.p[1]);
        c.p[1]->data[0] = 1;
        c.n_p = 2;
        cvis__tape *t;
        const cvis_tensor *y = run_forward(&c, &t);
        /* windows: 1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9, plus 1 */
        CHECK(y && y->size == 4);
        if (y) {
            CHECK_NEAR(y->data[0], 13, 0);
            CHECK_NEAR(y->data[1], 17, 0);
            CHECK_NEAR(y->data[2], 25, 0);
            CHECK_NEAR(y->data[3], 29, 0);
        }
        cvis__tape_free(t);
        free_case(&c);
    }
    /* every case through im2col + GEMM, then with each 3x3 stride-1
     * convolution of one group through Winograd (forward, and the data
     * gradient as a convolution of dy with the flipped kernel) */
    conv_path = " (im2col)";
    cvis__winograd_mode(CVIS__WINO_NEVER);
    test_conv_general_cases();
    cvis__winograd_mode(CVIS__WINO_ALWAYS);
    static const char *const wino_paths[] = {" (Winograd, generic)", " (Winograd, AVX2)",
                                             " (Winograd, AVX-512)"};
    for (int isa = CVIS__ISA_AVX512; isa >= CVIS__ISA_GENERIC; isa--) {
        conv_path = wino_paths[isa];
        cvis__isa_limit(isa);
        test_conv_general_cases();
    }
    cvis__isa_limit(CVIS__ISA_AVX512);
    conv_path = "";
    cvis__winograd_mode(CVIS__WINO_WHERE_IT_PAYS);
    /* few output channels: the direct kernels (all of forward, weights,
     * data), on every instruction set this CPU has */
    for (int isa = CVIS__ISA_AVX512; isa >= CVIS__ISA_GENERIC; isa--) {
        cvis__isa_limit(isa);
        test_conv_direct_cases();
    }
    cvis__isa_limit(CVIS__ISA_AVX512);
    /* a window larger than the input is an error, not a crash */
    {
        cvis__conv_attr a = {5, 5, 1, 1, 1, 1, 1, CVIS__PAD_VALID, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0};
        cvis__shape in = {4, {1, 3, 3, 1}}, out;
        CHECK_STATUS(cvis__op_conv2d.shape(&a, 1, &in, &out), CVIS_E_SHAPE);
    }
}

static void test_dense(void)
{
    cvis__dense_attr a = {3, 1, CVIS_ACT_LINEAR, 0};
    opcase c = {0};
    int64_t xs[2] = {2, 4}, ws[2] = {4, 3};
    c.op = &cvis__op_dense;
    c.attr = &a;
    c.n_in = 1;
    c.in[0] = tensor_rand(&rng, 2, xs, -1, 1);
    c.p[0] = tensor_rand(&rng, 2, ws, -1, 1);
    c.p[1] = rand1(3, -1, 1);
    c.n_p = 2;
    cvis__tape *t;
    const cvis_tensor *y = run_forward(&c, &t);
    CHECK(y != NULL);
    double worst = 0;
    for (int b = 0; y && b < 2; b++)
        for (int u = 0; u < 3; u++) {
            double s = c.p[1]->data[u];
            for (int i = 0; i < 4; i++)
                s += (double)c.in[0]->data[b * 4 + i] * c.p[0]->data[i * 3 + u];
            worst = fmax(worst, fabs(s - y->data[b * 3 + u]));
        }
    CHECK(worst < 1e-6);
    cvis__tape_free(t);
    CHECK(opcase_gradcheck(&c, 1e-2, 1, 100) < 1e-3);
    a.act = CVIS_ACT_SOFTMAX;
    y = run_forward(&c, &t);
    double sum = 0;
    for (int u = 0; y && u < 3; u++)
        sum += y->data[u];
    CHECK_NEAR(sum, 1.0, 1e-6);
    cvis__tape_free(t);
    CHECK(opcase_gradcheck(&c, 1e-2, 1, 100) < 1e-3);
    a.act = CVIS_ACT_SIGMOID;
    CHECK(opcase_gradcheck(&c, 1e-2, 1, 100) < 1e-3);
    free_case(&c);
}

static void test_activations(void)
{
    /* hand values at x = -2, -0.5, 0.5, 7 */
    const float xv[4] = {-2, -0.5f, 0.5f, 7};
    struct {
        int act;
        float y[4];
    } cases[] = {
        {CVIS_ACT_RELU, {0, 0, 0.5f, 7}},
        {CVIS_ACT_RELU6, {0, 0, 0.5f, 6}},
        {CVIS_ACT_LEAKY_RELU, {-0.02f, -0.005f, 0.5f, 7}},
        {CVIS_ACT_SIGMOID, {0.11920292f, 0.37754067f, 0.62245933f, 0.99908895f}},
        {CVIS_ACT_TANH, {-0.96402758f, -0.46211716f, 0.46211716f, 0.99999834f}},
        {CVIS_ACT_HARD_SIGMOID, {0.16666667f, 0.41666667f, 0.58333333f, 1}},
        {CVIS_ACT_HARD_SWISH, {-0.33333333f, -0.20833333f, 0.29166667f, 7}},
        {CVIS_ACT_LINEAR, {-2, -0.5f, 0.5f, 7}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        cvis__act_attr a = {cases[k].act, 0.01f};
        opcase c = {0};
        int64_t s[2] = {1, 4};
        c.op = &cvis__op_activation;
        c.attr = &a;
        c.n_in = 1;
        cvis_tensor_create(2, s, &c.in[0]);
        memcpy(c.in[0]->data, xv, sizeof xv);
        cvis__tape *t;
        const cvis_tensor *y = run_forward(&c, &t);
        for (int i = 0; y && i < 4; i++)
            CHECK_NEAR(y->data[i], cases[k].y[i], 1e-6);
        cvis__tape_free(t);
        /* away from kinks, the gradient matches finite differences */
        CHECK(opcase_gradcheck(&c, 1e-3, 0, 10) < 1e-3);
        free_case(&c);
    }
    /* softmax: hand value and gradient */
    cvis__act_attr a = {CVIS_ACT_SOFTMAX, 0};
    opcase c = {0};
    int64_t s[2] = {2, 3};
    c.op = &cvis__op_activation;
    c.attr = &a;
    c.n_in = 1;
    cvis_tensor_create(2, s, &c.in[0]);
    const float zv[6] = {1, 2, 3, 1000, 1000, 1000};
    memcpy(c.in[0]->data, zv, sizeof zv);
    cvis__tape *t;
    const cvis_tensor *y = run_forward(&c, &t);
    CHECK(y != NULL);
    if (y) {
        CHECK_NEAR(y->data[0], 0.09003057, 1e-6);
        CHECK_NEAR(y->data[2], 0.66524096, 1e-6);
        CHECK_NEAR(y->data[3], 1.0 / 3, 1e-6); /* no overflow at 1000 */
    }
    cvis__tape_free(t);
    c.in[0]->data[3] = 0.3f;
    c.in[0]->data[4] = -0.2f;
    c.in[0]->data[5] = 0.1f;
    CHECK(opcase_gradcheck(&c, 1e-2, 0, 10) < 1e-3);
    /* dropping the activation makes the op an identity */
    c.drop_act = 1;
    y = run_forward(&c, &t);
    CHECK(y && y->data[0] == 1.0f && y->data[5] == 0.1f);
    cvis__tape_free(t);
    free_case(&c);
}

static void test_guided_relu(void)
{
    float y[4] = {0, 2, 3, 0}, dy[4] = {1, -1, 2, -2}, dx[4];
    cvis__act_grad(CVIS_ACT_RELU, 0, NULL, y, dy, dx, 4, 4, CVIS__RELU_NORMAL, 0);
    CHECK(dx[0] == 0 && dx[1] == -1 && dx[2] == 2 && dx[3] == 0);
    cvis__act_grad(CVIS_ACT_RELU, 0, NULL, y, dy, dx, 4, 4, CVIS__RELU_GUIDED, 0);
    CHECK(dx[0] == 0 && dx[1] == 0 && dx[2] == 2 && dx[3] == 0);
    cvis__act_grad(CVIS_ACT_RELU, 0, NULL, y, dy, dx, 4, 4, CVIS__RELU_DECONV, 0);
    CHECK(dx[0] == 1 && dx[1] == 0 && dx[2] == 2 && dx[3] == 0);
}

static void test_pool(void)
{
    /* 4x4 ramp, 2x2 max and average */
    cvis__pool_attr a = {CVIS_POOL_MAX, 2, 2, 2, 2, CVIS__PAD_VALID, 0, 0, 0, 0, 0, 0};
    opcase c = {0};
    int64_t s[4] = {1, 4, 4, 1};
    c.op = &cvis__op_pool2d;
    c.attr = &a;
    c.n_in = 1;
    cvis_tensor_create(4, s, &c.in[0]);
    for (int i = 0; i < 16; i++)
        c.in[0]->data[i] = (float)i;
    cvis__tape *t;
    const cvis_tensor *y = run_forward(&c, &t);
    CHECK(y && y->size == 4 && y->data[0] == 5 && y->data[1] == 7 && y->data[2] == 13 &&
          y->data[3] == 15);
    cvis__tape_free(t);
    a.kind = CVIS_POOL_AVG;
    y = run_forward(&c, &t);
    CHECK(y && y->data[0] == 2.5f && y->data[3] == 12.5f);
    cvis__tape_free(t);
    /* padded average with and without counting pads: 3x3 window, pad 1, at the corner */
    a = (cvis__pool_attr){CVIS_POOL_AVG, 3, 3, 2, 2, CVIS__PAD_EXPLICIT, 1, 1, 1, 1, 0, 1};
    y = run_forward(&c, &t);
    CHECK(y && y->shape[1] == 2 && y->shape[2] == 2);
    if (y)
        CHECK_NEAR(y->data[0], (0 + 1 + 4 + 5) / 9.0, 1e-6);
    cvis__tape_free(t);
    a.count_include_pad = 0;
    y = run_forward(&c, &t);
    if (y)
        CHECK_NEAR(y->data[0], (0 + 1 + 4 + 5) / 4.0, 1e-6);
    cvis__tape_free(t);
    /* ceil mode: 4 -> (4 - 3 + 1)/2 rounded up + 1 = 2 with stride 2, window 3, no pad */
    a = (cvis__pool_attr){CVIS_POOL_MAX, 3, 3, 2, 2, CVIS__PAD_EXPLICIT, 0, 0, 0, 0, 1, 0};
    y = run_forward(&c, &t);
    CHECK(y && y->shape[1] == 2 && y->data[3] == 15);
    cvis__tape_free(t);
    a.ceil_mode = 0;
    y = run_forward(&c, &t);
    CHECK(y && y->shape[1] == 1 && y->data[0] == 10);
    cvis__tape_free(t);
    free_case(&c);
    /* ties: the first maximum in scan order takes the whole gradient, per
     * channel (channel 0 peaks at taps 1 and 3, channel 1 at all four) */
    {
        cvis__pool_attr m = {CVIS_POOL_MAX, 2, 2, 2, 2, CVIS__PAD_VALID, 0, 0, 0, 0, 0, 0};
        int64_t ts[4] = {1, 2, 2, 2};
        cvis_tensor *x = NULL;
        cvis__tape *tt = NULL;
        int xs, ys;
        CHECK_OK(cvis_tensor_create(4, ts, &x));
        const float vals[8] = {0, 5, 7, 5, 1, 5, 7, 5};
        memcpy(x->data, vals, sizeof vals);
        CHECK_OK(cvis__tape_new(&tt));
        CHECK_OK(cvis__tape_leaf(tt, x, 1, &xs));
        CHECK_OK(cvis__tape_push(tt, &cvis__op_pool2d, &m, 1, &xs, 0, NULL, 0, 0, &ys));
        const float seed[2] = {2, 3};
        const float *sp = seed;
        CHECK_OK(cvis__tape_backward(tt, 1, &ys, &sp, CVIS__RELU_NORMAL));
        const cvis_tensor *dx = cvis__tape_grad(tt, xs);
        const float want[8] = {0, 3, 2, 0, 0, 0, 0, 0};
        for (int i = 0; dx && i < 8; i++)
            CHECK_NEAR(dx->data[i], want[i], 0);
        cvis__tape_free(tt);
        cvis_tensor_free(x);
    }
    /* gradients on random inputs (no ties), several geometries */
    cvis__pool_attr geoms[] = {
        {CVIS_POOL_MAX, 2, 2, 2, 2, CVIS__PAD_VALID, 0, 0, 0, 0, 0, 0},
        {CVIS_POOL_MAX, 3, 3, 2, 2, CVIS__PAD_SAME_UPPER, 0, 0, 0, 0, 0, 0},
        {CVIS_POOL_MAX, 3, 3, 2, 2, CVIS__PAD_EXPLICIT, 1, 1, 1, 1, 1, 0},
        {CVIS_POOL_AVG, 3, 3, 1, 1, CVIS__PAD_SAME_UPPER, 0, 0, 0, 0, 0, 0},
        {CVIS_POOL_AVG, 3, 3, 2, 2, CVIS__PAD_EXPLICIT, 1, 1, 1, 1, 1, 1},
        {CVIS_POOL_AVG, 2, 2, 2, 2, CVIS__PAD_VALID, 0, 0, 0, 0, 0, 0},
    };
    for (size_t k = 0; k < sizeof geoms / sizeof geoms[0]; k++) {
        opcase g = {0};
        g.op = &cvis__op_pool2d;
        g.attr = &geoms[k];
        g.n_in = 1;
        g.in[0] = rand4(2, 7, 6, 3, -1, 1);
        /* distinct values 0.01 apart, shuffled: no near-ties for the max */
        for (int64_t i = 0; i < g.in[0]->size; i++)
            g.in[0]->data[i] = (float)(0.01 * (double)i - 1.0);
        for (int64_t i = g.in[0]->size - 1; i > 0; i--) {
            int64_t j = cvis__rng_int(&rng, 0, i);
            float tmp = g.in[0]->data[i];
            g.in[0]->data[i] = g.in[0]->data[j];
            g.in[0]->data[j] = tmp;
        }
        double rel = opcase_gradcheck(&g, 1e-3, 0, 300);
        if (rel >= 1e-3)
            fprintf(stderr, "pool geometry %zu: relative error %g\n", k, rel);
        CHECK(rel < 1e-3);
        free_case(&g);
    }
    /* global average */
    cvis__gap_attr ga = {0};
    opcase g = {0};
    g.op = &cvis__op_global_avg_pool;
    g.attr = &ga;
    g.n_in = 1;
    g.in[0] = rand4(2, 3, 4, 5, -1, 1);
    y = run_forward(&g, &t);
    double m = 0;
    for (int i = 0; i < 12; i++)
        m += g.in[0]->data[i * 5 + 2];
    CHECK(y && y->ndim == 2 && y->shape[1] == 5);
    if (y)
        CHECK_NEAR(y->data[2], m / 12, 1e-6);
    cvis__tape_free(t);
    CHECK(opcase_gradcheck(&g, 1e-2, 0, 200) < 1e-3);
    free_case(&g);
}

static void test_batch_norm(void)
{
    cvis__bn_attr a = {1e-3f};
    opcase c = {0};
    c.op = &cvis__op_batch_norm;
    c.attr = &a;
    c.n_in = 1;
    c.in[0] = rand4(2, 3, 3, 4, -1, 1);
    c.p[0] = rand1(4, 0.5, 1.5);
    c.p[1] = rand1(4, -1, 1);
    c.p[2] = rand1(4, -0.5, 0.5);
    c.p[3] = rand1(4, 0.5, 2);
    c.n_p = 4;
    cvis__tape *t;
    const cvis_tensor *y = run_forward(&c, &t);
    if (y) {
        int i = 7, ch = i % 4;
        double want = (c.in[0]->data[i] - c.p[2]->data[ch]) / sqrt(c.p[3]->data[ch] + 1e-3) *
                          c.p[0]->data[ch] + c.p[1]->data[ch];
        CHECK_NEAR(y->data[i], want, 1e-5);
    }
    CHECK(y != NULL);
    cvis__tape_free(t);
    /* gamma and beta get gradients; the moving statistics are not trained */
    opcase trained = c;
    trained.n_p = 4;
    CHECK(opcase_gradcheck(&trained, 1e-2, 0, 200) < 1e-3);
    free_case(&c);
}

static void test_views(void)
{
    char none = 0;
    opcase c = {0};
    c.op = &cvis__op_flatten;
    c.attr = &none;
    c.n_in = 1;
    c.in[0] = rand4(2, 3, 4, 5, -1, 1);
    cvis__tape *t;
    const cvis_tensor *y = run_forward(&c, &t);
    CHECK(y && y->ndim == 2 && y->shape[1] == 60 && y->data[61] == c.in[0]->data[61]);
    cvis__tape_free(t);
    CHECK(opcase_gradcheck(&c, 1e-2, 0, 50) < 1e-3);
    cvis__reshape_attr ra = {2, {-1, 6}};
    c.op = &cvis__op_reshape;
    c.attr = &ra;
    y = run_forward(&c, &t);
    CHECK(y && y->ndim == 3 && y->shape[1] == 10 && y->shape[2] == 6);
    cvis__tape_free(t);
    ra.shape[1] = 7;
    cvis__shape in = cvis__tensor_get_shape(c.in[0]), out;
    CHECK_STATUS(cvis__op_reshape.shape(&ra, 1, &in, &out), CVIS_E_SHAPE);
    free_case(&c);
}

static void test_binary(void)
{
    int kinds[4] = {CVIS__BIN_ADD, CVIS__BIN_SUB, CVIS__BIN_MUL, CVIS__BIN_DIV};
    for (int k = 0; k < 4; k++) {
        cvis__binary_attr a = {kinds[k]};
        /* same shapes, then (2,3,4,5) with (1,1,1,5), then (5) with (2,1,4,1) */
        int64_t sb1[4] = {1, 1, 1, 5}, sb2[4] = {2, 1, 4, 1}, s5 = 5;
        opcase cases[3] = {{0}};
        for (int j = 0; j < 3; j++) {
            cases[j].op = &cvis__op_binary;
            cases[j].attr = &a;
            cases[j].n_in = 2;
        }
        cases[0].in[0] = rand4(2, 3, 4, 5, 0.5, 1.5);
        cases[0].in[1] = rand4(2, 3, 4, 5, 0.5, 1.5);
        cases[1].in[0] = rand4(2, 3, 4, 5, 0.5, 1.5);
        cases[1].in[1] = tensor_rand(&rng, 4, sb1, 0.5, 1.5);
        cases[2].in[0] = tensor_rand(&rng, 1, &s5, 0.5, 1.5);
        cases[2].in[1] = tensor_rand(&rng, 4, sb2, 0.5, 1.5);
        for (int j = 0; j < 3; j++) {
            cvis__tape *t;
            const cvis_tensor *y = run_forward(&cases[j], &t);
            CHECK(y && y->ndim == 4 && y->shape[3] == 5);
            if (y && j == 0) {
                float av = cases[0].in[0]->data[37], bv = cases[0].in[1]->data[37];
                float want = k == 0 ? av + bv : k == 1 ? av - bv : k == 2 ? av * bv : av / bv;
                CHECK_NEAR(y->data[37], want, 1e-6);
            }
            if (y && j == 1) {
                float av = cases[1].in[0]->data[37], bv = cases[1].in[1]->data[37 % 5];
                float want = k == 0 ? av + bv : k == 1 ? av - bv : k == 2 ? av * bv : av / bv;
                CHECK_NEAR(y->data[37], want, 1e-6);
            }
            if (y && j == 2) {
                /* out[1,0,2,3] = a[3] op b[1,0,2,0] */
                float av = cases[2].in[0]->data[3], bv = cases[2].in[1]->data[4 + 2];
                float want = k == 0 ? av + bv : k == 1 ? av - bv : k == 2 ? av * bv : av / bv;
                CHECK_NEAR(y->data[((1 * 1 + 0) * 4 + 2) * 5 + 3], want, 1e-6);
            }
            cvis__tape_free(t);
            double rel = opcase_gradcheck(&cases[j], 1e-2, 0, 200);
            if (rel >= 1e-3)
                fprintf(stderr, "binary kind %d case %d: relative error %g\n", k, j, rel);
            CHECK(rel < 1e-3);
            free_case(&cases[j]);
        }
    }
    cvis__binary_attr a = {CVIS__BIN_ADD};
    cvis__shape s1 = {2, {2, 3}}, s2 = {2, {2, 4}}, out;
    cvis__shape both[2] = {s1, s2};
    CHECK_STATUS(cvis__op_binary.shape(&a, 2, both, &out), CVIS_E_SHAPE);
}

static void test_concat_pad(void)
{
    cvis__concat_attr a = {-1};
    opcase c = {0};
    c.op = &cvis__op_concat;
    c.attr = &a;
    c.n_in = 3;
    c.in[0] = rand4(2, 3, 3, 2, -1, 1);
    c.in[1] = rand4(2, 3, 3, 4, -1, 1);
    c.in[2] = rand4(2, 3, 3, 1, -1, 1);
    cvis__tape *t;
    const cvis_tensor *y = run_forward(&c, &t);
    CHECK(y && y->shape[3] == 7);
    if (y) {
        /* pixel 5: channels 0-1 from a, 2-5 from b, 6 from c */
        CHECK(y->data[5 * 7 + 1] == c.in[0]->data[5 * 2 + 1]);
        CHECK(y->data[5 * 7 + 4] == c.in[1]->data[5 * 4 + 2]);
        CHECK(y->data[5 * 7 + 6] == c.in[2]->data[5]);
    }
    cvis__tape_free(t);
    CHECK(opcase_gradcheck(&c, 1e-2, 0, 100) < 1e-3);
    a.axis = 1;
    cvis_tensor_free(c.in[1]);
    c.in[1] = rand4(2, 5, 3, 2, -1, 1);
    c.n_in = 2;
    y = run_forward(&c, &t);
    CHECK(y && y->shape[1] == 8 && y->shape[3] == 2);
    cvis__tape_free(t);
    CHECK(opcase_gradcheck(&c, 1e-2, 0, 100) < 1e-3);
    cvis_tensor_free(c.in[2]);
    free_case(&c);

    cvis__pad_attr p;
    memset(&p, 0, sizeof p);
    p.before[1] = 1;
    p.after[1] = 2;
    p.before[2] = 0;
    p.after[2] = 1;
    p.value = 0.5f;
    opcase d = {0};
    d.op = &cvis__op_pad;
    d.attr = &p;
    d.n_in = 1;
    d.in[0] = rand4(1, 2, 2, 3, -1, 1);
    y = run_forward(&d, &t);
    CHECK(y && y->shape[1] == 5 && y->shape[2] == 3);
    if (y) {
        CHECK(y->data[0] == 0.5f);
        CHECK(y->data[(1 * 3 + 0) * 3 + 2] == d.in[0]->data[2]);
        CHECK(y->data[(2 * 3 + 1) * 3 + 1] == d.in[0]->data[(1 * 2 + 1) * 3 + 1]);
        CHECK(y->data[(2 * 3 + 2) * 3 + 1] == 0.5f);
    }
    cvis__tape_free(t);
    CHECK(opcase_gradcheck(&d, 1e-2, 0, 100) < 1e-3);
    free_case(&d);
}

TEST_MAIN({
    cvis__rng_seed(&rng, 42);
    test_conv();
    /* the shared product's shapes take Winograd where it pays, forward in
     * three chunks of tiles */
    conv_path = " (im2col)";
    cvis__winograd_mode(CVIS__WINO_NEVER);
    test_conv_shared_product();
    conv_path = " (Winograd)";
    cvis__winograd_mode(CVIS__WINO_WHERE_IT_PAYS);
    test_conv_shared_product();
    conv_path = "";
    test_dense();
    test_activations();
    test_guided_relu();
    test_pool();
    test_batch_norm();
    test_views();
    test_binary();
    test_concat_pad();
})
