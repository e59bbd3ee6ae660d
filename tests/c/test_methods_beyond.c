/* The methods beyond the tutorial and the measures, through the public
 * API: hand-computed answers on tiny models (the ReLU rules of guided
 * backprop and deconvnet in fused and standalone ReLUs, Captum's
 * quadrature weights, occlusion windows, Eigen-CAM's component and sign),
 * option and argument checks, per-run figures, cancellation, and failing
 * allocations that leave nothing behind. */
#include "../../examples/tutorial_model.h"
#include "check.h"
#include "core/alloc.h"

static cvis_tensor *tensor4(int64_t b, int64_t h, int64_t w, int64_t c, const float *v)
{
    int64_t shape[4] = {b, h, w, c};
    cvis_tensor *t = NULL;
    CHECK_OK(cvis_tensor_create(4, shape, &t));
    if (t && v)
        memcpy(cvis_tensor_data(t), v, (size_t)cvis_tensor_size(t) * sizeof(float));
    return t;
}

static cvis_tensor *noise(int64_t b, int64_t h, int64_t w, int64_t c, unsigned seed)
{
    cvis_tensor *x = tensor4(b, h, w, c, NULL);
    for (int64_t i = 0; x && i < cvis_tensor_size(x); i++) {
        seed = seed * 1103515245u + 12345u;
        cvis_tensor_data(x)[i] = (float)((seed >> 8) & 0xffff) / 65535.0f;
    }
    return x;
}

static void set_weight(cvis_model *m, int layer, int k, const float *v)
{
    cvis_tensor *w = NULL;
    CHECK_OK(cvis_model_get_weight(m, layer, k, &w));
    memcpy(cvis_tensor_data(w), v, (size_t)cvis_tensor_size(w) * sizeof(float));
    CHECK_OK(cvis_model_set_weight(m, layer, k, w));
    cvis_tensor_free(w);
}

/* Runs `e` on x with score s into a new tensor (NULL on failure). */
static cvis_tensor *run(cvis_explainer *e, const cvis_tensor *x, const cvis_score *s,
                        cvis_status *status)
{
    int nd;
    int64_t shape[CVIS_MAX_DIMS];
    cvis_tensor *out = NULL;
    cvis_status st = cvis_explainer_output_shape(e, x, &nd, shape);
    if (st == CVIS_OK)
        st = cvis_tensor_create(nd, shape, &out);
    if (st == CVIS_OK)
        st = cvis_explainer_run(e, x, 1, &s, out);
    if (status)
        *status = st;
    if (st != CVIS_OK) {
        cvis_tensor_free(out);
        return NULL;
    }
    return out;
}

/* Raw per-channel maps of an input-space method (keepdims, no normalize). */
static cvis_tensor *raw_map(const cvis_model *m, cvis_method method, const cvis_tensor *x,
                            const cvis_score *s)
{
    cvis_explainer *e = NULL;
    CHECK_OK(cvis_explainer_new(m, method, &e));
    CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_KEEPDIMS, 1));
    CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_NORMALIZE, 0));
    cvis_tensor *out = run(e, x, s, NULL);
    CHECK(out != NULL);
    cvis_explainer_free(e);
    return out;
}

/* x = (1, 0.5) -> a layer of two ReLUs with pre-activations
 * h = (x0 + 2 x1, -x0 + x1) = (2, -0.5) -> y = -relu(h0) + relu(h1).
 * dy/dh = (-1, 1).  True gradient: (-1, 0) through the ReLUs, dx = (-1, -2).
 * Guided: dy * [dy > 0] * [h > 0] = (0, 0), dx = (0, 0).
 * Deconvnet: relu(dy) = (0, 1), dx = (-1, 1).
 * Built three ways: ReLU fused into a dense layer, into a 1x1 convolution,
 * and as a layer of its own. */
static void test_relu_rules(void)
{
    const float w1[4] = {1, -1, 2, 1}, w2[2] = {-1, 1}, zero2[2] = {0, 0}, zero1[1] = {0};
    const float xv[2] = {1, 0.5f};
    int idx = 0;
    cvis_score *s = NULL;
    CHECK_OK(cvis_score_categorical(1, &idx, &s));
    cvis_tensor *x = tensor4(1, 1, 1, 2, xv);
    for (int form = 0; form < 3; form++) {
        cvis_model *m = NULL;
        CHECK_OK(cvis_model_new(1, 1, 2, &m));
        int first;
        if (form == 0) {
            CHECK_OK(cvis_model_add_flatten(m, NULL, CVIS_PREV, NULL));
            CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 2, CVIS_ACT_RELU, &first));
        } else if (form == 1) {
            CHECK_OK(cvis_model_add_conv2d(m, NULL, CVIS_PREV, 2, 1, 1, 1, CVIS_PADDING_VALID,
                                           CVIS_ACT_RELU, &first));
            CHECK_OK(cvis_model_add_flatten(m, NULL, CVIS_PREV, NULL));
        } else {
            CHECK_OK(cvis_model_add_flatten(m, NULL, CVIS_PREV, NULL));
            CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 2, CVIS_ACT_LINEAR, &first));
            CHECK_OK(cvis_model_add_activation(m, NULL, CVIS_PREV, CVIS_ACT_RELU, NULL));
        }
        int last;
        CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 1, CVIS_ACT_LINEAR, &last));
        set_weight(m, first, 0, w1);
        set_weight(m, first, 1, zero2);
        set_weight(m, last, 0, w2);
        set_weight(m, last, 1, zero1);
        const float want[3][2] = {{-1, -2}, {0, 0}, {-1, 1}};
        const cvis_method ms[3] = {CVIS_METHOD_INPUT_X_GRADIENT, CVIS_METHOD_GUIDED_BACKPROP,
                                   CVIS_METHOD_DECONVNET};
        for (int k = 0; k < 3; k++) {
            cvis_tensor *g = raw_map(m, ms[k], x, s);
            /* input x gradient multiplies by x = (1, 0.5) */
            float f0 = k == 0 ? xv[0] : 1, f1 = k == 0 ? xv[1] : 1;
            CHECK(g && cvis_tensor_data(g)[0] == want[k][0] * f0 &&
                  cvis_tensor_data(g)[1] == want[k][1] * f1);
            cvis_tensor_free(g);
        }
        cvis_model_free(m);
    }
    cvis_tensor_free(x);
    cvis_score_free(s);
}

/* s = (w.x)^2 with w = (0.5, -1.5), x = (2, 1): w.x = -0.5, s = 0.25.  On
 * the path a x the gradient is 2 a (w.x) w, so Integrated Gradients with
 * nodes a_i and weights w_i is x * w * (w.x) * 2 sum_i w_i a_i.  Gauss-
 * Legendre and the middle rule integrate a exactly (factor 1); Captum's
 * left rule gives (n-1)/n, right (n+1)/n, trapezoid (weights 1/n, ends
 * halved, nodes i/(n-1)) (n-1)/n. */
static void test_integrated_gradients_rules(void)
{
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(1, 1, 2, &m));
    int d, sq;
    CHECK_OK(cvis_model_add_flatten(m, NULL, CVIS_PREV, NULL));
    CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 1, CVIS_ACT_LINEAR, &d));
    CHECK_OK(cvis_model_add_multiply(m, NULL, d, d, &sq));
    const float w[2] = {0.5f, -1.5f}, b[1] = {0}, xv[2] = {2, 1};
    set_weight(m, d, 0, w);
    set_weight(m, d, 1, b);
    cvis_tensor *x = tensor4(1, 1, 1, 2, xv);
    int idx = 0;
    cvis_score *s = NULL;
    CHECK_OK(cvis_score_categorical(1, &idx, &s));
    const int n = 5;
    const double factor[5] = {1, (n - 1.0) / n, (n + 1.0) / n, 1, (n - 1.0) / n};
    for (int rule = CVIS_IG_GAUSS_LEGENDRE; rule <= CVIS_IG_RIEMANN_TRAPEZOID; rule++) {
        for (int gl_n = 1; gl_n <= (rule == CVIS_IG_GAUSS_LEGENDRE ? 3 : 1); gl_n++) {
            cvis_explainer *e = NULL;
            CHECK_OK(cvis_explainer_new(m, CVIS_METHOD_INTEGRATED_GRADIENTS, &e));
            CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_IG_RULE, rule));
            CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_IG_STEPS,
                                            rule == CVIS_IG_GAUSS_LEGENDRE ? gl_n : n));
            CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_KEEPDIMS, 1));
            CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_NORMALIZE, 0));
            CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_BATCH_SIZE, 2));
            cvis_tensor *a = run(e, x, s, NULL);
            double f = factor[rule];
            CHECK(a != NULL);
            if (a) {
                CHECK_NEAR(cvis_tensor_data(a)[0], 2 * 0.5 * -0.5 * f, 1e-6);
                CHECK_NEAR(cvis_tensor_data(a)[1], 1 * -1.5 * -0.5 * f, 1e-6);
            }
            double delta, score, base;
            CHECK_OK(cvis_explainer_get_info(e, CVIS_INFO_COMPLETENESS_DELTA, 1, &delta));
            CHECK_OK(cvis_explainer_get_info(e, CVIS_INFO_SCORE, 1, &score));
            CHECK_OK(cvis_explainer_get_info(e, CVIS_INFO_BASELINE_SCORE, 1, &base));
            CHECK_NEAR(score, 0.25, 1e-7);
            CHECK_NEAR(base, 0, 1e-7);
            CHECK_NEAR(delta, 0.25 * (f - 1), 1e-6);
            CHECK_STATUS(cvis_explainer_get_info(e, CVIS_INFO_SCORE, 2, &score), CVIS_E_SHAPE);
            CHECK_STATUS(cvis_explainer_get_info(e, (cvis_info)7, 1, &score), CVIS_E_INVALID_ARG);
            cvis_tensor_free(a);
            cvis_explainer_free(e);
        }
    }
    /* a baseline given as a tensor: x0 = (1, 1), w.x0 = -1, s(x0) = 1 */
    const float ones[2] = {1, 1};
    cvis_tensor *x0 = tensor4(1, 1, 1, 2, ones);
    cvis_explainer *e = NULL;
    CHECK_OK(cvis_explainer_new(m, CVIS_METHOD_INTEGRATED_GRADIENTS, &e));
    CHECK_OK(cvis_explainer_set_tensor(e, CVIS_OPT_BASELINE_TENSOR, x0));
    cvis_tensor_free(x0); /* copied */
    CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_IG_STEPS, 2));
    cvis_tensor *a = run(e, x, s, NULL);
    double delta, base;
    CHECK_OK(cvis_explainer_get_info(e, CVIS_INFO_BASELINE_SCORE, 1, &base));
    CHECK_OK(cvis_explainer_get_info(e, CVIS_INFO_COMPLETENESS_DELTA, 1, &delta));
    CHECK_NEAR(base, 1.0, 1e-7);
    CHECK_NEAR(delta, 0, 1e-6); /* the integrand is linear in a: exact with 2 nodes */
    cvis_tensor_free(a);
    /* cleared, the baseline is zero again */
    CHECK_OK(cvis_explainer_set_tensor(e, CVIS_OPT_BASELINE_TENSOR, NULL));
    a = run(e, x, s, NULL);
    CHECK_OK(cvis_explainer_get_info(e, CVIS_INFO_BASELINE_SCORE, 1, &base));
    CHECK_NEAR(base, 0, 1e-7);
    cvis_tensor_free(a);
    /* the baseline kind TENSOR without a tensor, a tensor of another size */
    cvis_status st;
    CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_BASELINE, CVIS_BASELINE_TENSOR));
    CHECK(run(e, x, s, &st) == NULL && st == CVIS_E_STATE);
    CHECK_STATUS(cvis_explainer_get_info(e, CVIS_INFO_SCORE, 1, &base), CVIS_E_STATE);
    cvis_tensor *wrong = noise(1, 1, 1, 3, 1);
    CHECK_OK(cvis_explainer_set_tensor(e, CVIS_OPT_BASELINE_TENSOR, wrong));
    CHECK(run(e, x, s, &st) == NULL && st == CVIS_E_SHAPE);
    cvis_tensor_data(wrong)[0] = NAN;
    CHECK_STATUS(cvis_explainer_set_tensor(e, CVIS_OPT_BASELINE_TENSOR, wrong), CVIS_E_NONFINITE);
    CHECK_STATUS(cvis_explainer_set_tensor(e, CVIS_OPT_SEED, wrong), CVIS_E_INVALID_ARG);
    cvis_tensor_free(wrong);
    /* Riemann rules need two nodes */
    CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_BASELINE, CVIS_BASELINE_ZERO));
    CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_IG_RULE, CVIS_IG_RIEMANN_MIDDLE));
    CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_IG_STEPS, 1));
    CHECK(run(e, x, s, &st) == NULL && st == CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_explainer_set_int(e, CVIS_OPT_IG_STEPS, 0), CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_explainer_set_int(e, CVIS_OPT_IG_RULE, 5), CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_explainer_set_int(e, CVIS_OPT_BASELINE, 5), CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_explainer_set_float(e, CVIS_OPT_BLUR_SIGMA, 0), CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_explainer_set_int(e, CVIS_OPT_REDUCE, 3), CVIS_E_INVALID_ARG);
    cvis_explainer_free(e);
    cvis_tensor_free(x);
    cvis_score_free(s);
    cvis_model_free(m);
}

/* A linear model on a 4x4x1 image: s = sum w_p x_p.  Occlusion with a
 * window of 2 every 2 pixels: each pixel's window removes the sum of w x
 * over its 2x2 block, so the map is that block sum everywhere in it.  With
 * a window of 3 every 2: windows start at 0 and 2 (the last clipped to 2
 * pixels); a pixel in rows/columns 2 is covered by both. */
static void test_occlusion_windows(void)
{
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(4, 4, 1, &m));
    int d;
    CHECK_OK(cvis_model_add_flatten(m, NULL, CVIS_PREV, NULL));
    CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 1, CVIS_ACT_LINEAR, &d));
    float w[16], xv[16], b[1] = {0.25f};
    for (int i = 0; i < 16; i++) {
        w[i] = (float)((i * 7) % 5) - 2.0f;
        xv[i] = 0.5f + 0.125f * (float)(i % 3);
    }
    set_weight(m, d, 0, w);
    set_weight(m, d, 1, b);
    cvis_tensor *x = tensor4(1, 4, 4, 1, xv);
    int idx = 0;
    cvis_score *s = NULL;
    CHECK_OK(cvis_score_categorical(1, &idx, &s));
    for (int variant = 0; variant < 2; variant++) {
        int win = variant ? 3 : 2, stride = 2;
        cvis_explainer *e = NULL;
        CHECK_OK(cvis_explainer_new(m, CVIS_METHOD_OCCLUSION, &e));
        CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_WINDOW, win));
        CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_STRIDE, stride));
        CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_NORMALIZE, 0));
        CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_BATCH_SIZE, 3));
        cvis_tensor *map = run(e, x, s, NULL);
        CHECK(map && cvis_tensor_ndim(map) == 3 && cvis_tensor_dim(map, 1) == 4);
        int ok = map != NULL;
        for (int y = 0; map && y < 4; y++)
            for (int xx = 0; xx < 4; xx++) {
                double total = 0;
                int count = 0;
                for (int wy = 0; wy <= 2; wy += stride)
                    for (int wx = 0; wx <= 2; wx += stride) {
                        if (y < wy || y >= wy + win || xx < wx || xx >= wx + win)
                            continue;
                        double drop = 0;
                        for (int p = wy; p < wy + win && p < 4; p++)
                            for (int q = wx; q < wx + win && q < 4; q++)
                                drop += (double)w[p * 4 + q] * xv[p * 4 + q];
                        total += drop;
                        count++;
                    }
                ok &= fabs(cvis_tensor_data(map)[y * 4 + xx] - total / count) < 1e-5;
            }
        CHECK(ok);
        double score;
        CHECK_OK(cvis_explainer_get_info(e, CVIS_INFO_SCORE, 1, &score));
        cvis_tensor_free(map);
        /* a window larger than the image */
        CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_WINDOW, 5));
        cvis_status st;
        CHECK(run(e, x, s, &st) == NULL && st == CVIS_E_INVALID_ARG);
        cvis_explainer_free(e);
    }
    cvis_tensor_free(x);
    cvis_score_free(s);
    cvis_model_free(m);
}

/* Eigen-CAM on activations built by hand: a 1x1 identity convolution makes
 * A = x, and x_p = m + t_p v (plus nothing else) has its first principal
 * direction along v, the centred projection (t_p - mean t) |v|.  v has a
 * positive sum, so the sign that correlates with the channel sum is +:
 * the map is relu(t - mean t) normalized. */
static void test_eigencam_by_hand(void)
{
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(4, 4, 3, &m));
    int c;
    CHECK_OK(cvis_model_add_conv2d(m, NULL, CVIS_PREV, 3, 1, 1, 1, CVIS_PADDING_VALID,
                                   CVIS_ACT_LINEAR, &c));
    CHECK_OK(cvis_model_add_flatten(m, NULL, CVIS_PREV, NULL));
    CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 2, CVIS_ACT_SOFTMAX, NULL));
    const float eye[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, zero[3] = {0, 0, 0};
    set_weight(m, c, 0, eye);
    set_weight(m, c, 1, zero);
    const float mean[3] = {0.3f, 0.1f, 0.7f}, v[3] = {2, -1, 0.5f};
    float xv[48], t[16], tmean = 0;
    for (int p = 0; p < 16; p++) {
        t[p] = (float)((p * 5) % 7) / 7.0f - 0.2f;
        tmean += t[p] / 16;
    }
    for (int p = 0; p < 16; p++)
        for (int k = 0; k < 3; k++)
            xv[p * 3 + k] = mean[k] + t[p] * v[k];
    for (int flip = 0; flip < 2; flip++) {
        /* flipped: t -> -t; the map becomes relu(-(t - mean t)) */
        cvis_tensor *x = tensor4(1, 4, 4, 3, NULL);
        for (int p = 0; p < 16; p++)
            for (int k = 0; k < 3; k++)
                cvis_tensor_data(x)[p * 3 + k] = mean[k] + (flip ? -t[p] : t[p]) * v[k];
        cvis_explainer *e = NULL;
        CHECK_OK(cvis_explainer_new(m, CVIS_METHOD_EIGENCAM, &e));
        CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_EXPAND, 0));
        int idx = 0;
        cvis_score *s = NULL;
        CHECK_OK(cvis_score_categorical(1, &idx, &s));
        cvis_tensor *map = run(e, x, s, NULL);
        CHECK(map && cvis_tensor_dim(map, 1) == 4);
        float hi = 0;
        for (int p = 0; p < 16; p++)
            hi = (flip ? tmean - t[p] : t[p] - tmean) > hi ? (flip ? tmean - t[p] : t[p] - tmean) : hi;
        int ok = map != NULL;
        for (int p = 0; map && p < 16; p++) {
            float want = flip ? tmean - t[p] : t[p] - tmean;
            want = want > 0 ? want / hi : 0;
            ok &= fabsf(cvis_tensor_data(map)[p] - want) < 1e-4f;
        }
        CHECK(ok);
        CHECK(cvis_explainer_layer(e) == c);
        cvis_tensor_free(map);
        cvis_explainer_free(e);
        cvis_score_free(s);
        cvis_tensor_free(x);
    }
    (void)xv;
    cvis_model_free(m);
}

static int stop_at_2(void *user, int step, int total, int n, const float *values)
{
    (void)total;
    (void)n;
    (void)values;
    (*(int *)user)++;
    return step >= 2;
}

static cvis_model *tutorial(void)
{
    cvis_model *m = NULL;
    CHECK_OK(tutorial_model(3, &m));
    CHECK_OK(cvis_model_init_weights(m, 1));
    return m;
}

/* Every method has a name; long runs stop when asked and leave the output
 * untouched; seeds reproduce; zero weights give zero maps, never NaN. */
static void test_names_cancel_and_numerics(void)
{
    for (int k = CVIS_METHOD_SALIENCY; k <= CVIS_METHOD_RISE; k++) {
        const char *name = cvis_method_name((cvis_method)k);
        cvis_method back;
        CHECK(name != NULL);
        CHECK_OK(cvis_method_from_name(name ? name : "", &back));
        CHECK(back == (cvis_method)k);
    }
    CHECK(cvis_method_name((cvis_method)19) == NULL);
    cvis_model *m = tutorial();
    cvis_tensor *x = noise(2, 128, 128, 3, 3);
    int idx[2] = {0, 2};
    cvis_score *s = NULL;
    CHECK_OK(cvis_score_categorical(2, idx, &s));
    const cvis_method slow[4] = {CVIS_METHOD_INTEGRATED_GRADIENTS, CVIS_METHOD_ABLATIONCAM,
                                 CVIS_METHOD_OCCLUSION, CVIS_METHOD_RISE};
    for (int i = 0; i < 4; i++) {
        cvis_explainer *e = NULL;
        CHECK_OK(cvis_explainer_new(m, slow[i], &e));
        CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_BATCH_SIZE, 2));
        CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_RISE_MASKS, 10));
        int calls = 0;
        CHECK_OK(cvis_explainer_set_progress(e, stop_at_2, &calls));
        int nd;
        int64_t shape[CVIS_MAX_DIMS];
        cvis_tensor *out = NULL;
        CHECK_OK(cvis_explainer_output_shape(e, x, &nd, shape));
        CHECK_OK(cvis_tensor_create(nd, shape, &out));
        for (int64_t j = 0; j < cvis_tensor_size(out); j++)
            cvis_tensor_data(out)[j] = 5;
        CHECK_STATUS(cvis_explainer_run(e, x, 1, (const cvis_score *const *)&s, out),
                     CVIS_E_CANCELLED);
        CHECK(calls == 1 && cvis_tensor_data(out)[0] == 5 &&
              cvis_tensor_data(out)[cvis_tensor_size(out) - 1] == 5);
        cvis_tensor_free(out);
        cvis_explainer_free(e);
    }
    /* RISE and the noise tunnel: the same seed, the same maps */
    const cvis_method seeded[2] = {CVIS_METHOD_RISE, CVIS_METHOD_GUIDED_BACKPROP};
    for (int i = 0; i < 2; i++) {
        cvis_tensor *maps[3];
        for (int r = 0; r < 3; r++) {
            cvis_explainer *e = NULL;
            CHECK_OK(cvis_explainer_new(m, seeded[i], &e));
            CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_RISE_MASKS, 8));
            if (seeded[i] != CVIS_METHOD_RISE)
                CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_NT_TYPE, CVIS_NT_VARGRAD));
            CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_NT_SAMPLES, 2));
            CHECK_OK(cvis_explainer_set_float(e, CVIS_OPT_NT_STDEV, 0.1));
            CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_SEED, r == 2 ? 8 : 7));
            maps[r] = run(e, x, s, NULL);
            cvis_explainer_free(e);
        }
        size_t bytes = maps[0] ? (size_t)cvis_tensor_size(maps[0]) * sizeof(float) : 0;
        CHECK(maps[0] && maps[1] && maps[2]);
        if (maps[0] && maps[1] && maps[2]) {
            CHECK(memcmp(cvis_tensor_data(maps[0]), cvis_tensor_data(maps[1]), bytes) == 0);
            CHECK(memcmp(cvis_tensor_data(maps[0]), cvis_tensor_data(maps[2]), bytes) != 0);
        }
        for (int r = 0; r < 3; r++)
            cvis_tensor_free(maps[r]);
    }
    /* the noise tunnel over a method without per-channel maps */
    {
        cvis_explainer *e = NULL;
        cvis_status st;
        CHECK_OK(cvis_explainer_new(m, CVIS_METHOD_OCCLUSION, &e));
        CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_NT_TYPE, CVIS_NT_SMOOTHGRAD));
        CHECK(run(e, x, s, &st) == NULL && st == CVIS_E_INVALID_ARG);
        CHECK_STATUS(cvis_explainer_set_int(e, CVIS_OPT_NT_SAMPLES, 0), CVIS_E_INVALID_ARG);
        CHECK_STATUS(cvis_explainer_set_float(e, CVIS_OPT_NT_STDEV, -1), CVIS_E_INVALID_ARG);
        CHECK_STATUS(cvis_explainer_set_float(e, CVIS_OPT_RISE_PROBABILITY, 0), CVIS_E_INVALID_ARG);
        CHECK_STATUS(cvis_explainer_set_float(e, CVIS_OPT_RISE_PROBABILITY, 1.5), CVIS_E_INVALID_ARG);
        CHECK_STATUS(cvis_explainer_set_int(e, CVIS_OPT_RISE_MASKS, 0), CVIS_E_INVALID_ARG);
        CHECK_STATUS(cvis_explainer_set_int(e, CVIS_OPT_WINDOW, -1), CVIS_E_INVALID_ARG);
        cvis_explainer_free(e);
    }
    /* zero weights: every map constant, so all zeros */
    for (int layer = 0; layer < cvis_model_layer_count(m); layer++)
        for (int k = 0; k < cvis_model_weight_count(m, layer); k++) {
            cvis_tensor *w = NULL;
            CHECK_OK(cvis_model_get_weight(m, layer, k, &w));
            memset(cvis_tensor_data(w), 0, (size_t)cvis_tensor_size(w) * sizeof(float));
            CHECK_OK(cvis_model_set_weight(m, layer, k, w));
            cvis_tensor_free(w);
        }
    for (int k = CVIS_METHOD_INTEGRATED_GRADIENTS; k <= CVIS_METHOD_RISE; k++) {
        cvis_explainer *e = NULL;
        CHECK_OK(cvis_explainer_new(m, (cvis_method)k, &e));
        CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_IG_STEPS, 4));
        CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_RISE_MASKS, 4));
        CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_WINDOW, 64));
        cvis_tensor *map = run(e, x, s, NULL);
        int zeros = map != NULL;
        for (int64_t i = 0; map && i < cvis_tensor_size(map); i++)
            zeros &= cvis_tensor_data(map)[i] == 0.0f;
        CHECK(zeros);
        if (!zeros)
            fprintf(stderr, "  method %s\n", cvis_method_name((cvis_method)k));
        cvis_tensor_free(map);
        cvis_explainer_free(e);
    }
    cvis_score_free(s);
    cvis_tensor_free(x);
    cvis_model_free(m);
}

static void test_metric_arguments(void)
{
    cvis_model *m = tutorial();
    cvis_tensor *x = noise(2, 128, 128, 3, 4);
    int64_t mshape[3] = {2, 128, 128}, bad_shape[3] = {2, 64, 128}, cshape[2] = {2, 11};
    cvis_tensor *maps = NULL, *bad = NULL, *curves = NULL, *auc = NULL;
    CHECK_OK(cvis_tensor_create(3, mshape, &maps));
    CHECK_OK(cvis_tensor_create(3, bad_shape, &bad));
    CHECK_OK(cvis_tensor_create(2, cshape, &curves));
    CHECK_OK(cvis_tensor_create(1, cshape, &auc));
    int idx = 1;
    cvis_score *s = NULL;
    CHECK_OK(cvis_score_categorical(1, &idx, &s));
    CHECK(cvis_metric_curve_points(128 * 128, 0.1) == 11);
    CHECK_OK(cvis_metric_deletion(m, x, s, maps, 0.1, CVIS_BASELINE_ZERO, 0, curves, auc));
    CHECK_OK(cvis_metric_insertion(m, x, s, maps, 0.1, CVIS_BASELINE_BLUR, 3, NULL, auc));
    CHECK_STATUS(cvis_metric_deletion(NULL, x, s, maps, 0.1, CVIS_BASELINE_ZERO, 0, curves, auc),
                 CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_metric_deletion(m, x, NULL, maps, 0.1, CVIS_BASELINE_ZERO, 0, curves, auc),
                 CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_metric_deletion(m, x, s, bad, 0.1, CVIS_BASELINE_ZERO, 0, curves, auc),
                 CVIS_E_SHAPE);
    CHECK_STATUS(cvis_metric_deletion(m, x, s, maps, 0.2, CVIS_BASELINE_ZERO, 0, curves, auc),
                 CVIS_E_SHAPE); /* 6 points, not 11 */
    CHECK_STATUS(cvis_metric_deletion(m, x, s, maps, 0, CVIS_BASELINE_ZERO, 0, curves, auc),
                 CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_metric_deletion(m, x, s, maps, 0.1, CVIS_BASELINE_TENSOR, 0, curves, auc),
                 CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_metric_deletion(m, x, s, maps, 0.1, CVIS_BASELINE_BLUR, -1, curves, auc),
                 CVIS_E_INVALID_ARG);
    double drop = -1, inc = -1;
    CHECK_OK(cvis_metric_average_drop(m, x, s, maps, &drop, &inc, NULL));
    CHECK(drop >= 0 && drop <= 100 && inc >= 0 && inc <= 100);
    CHECK_STATUS(cvis_metric_average_drop(m, x, s, maps, &drop, &inc, curves), CVIS_E_SHAPE);
    double acc;
    CHECK_OK(cvis_metric_pointing_game(maps, maps, 3, NULL, &acc));
    CHECK(acc == 0); /* an all-zero mask is never hit */
    CHECK_STATUS(cvis_metric_pointing_game(maps, bad, 3, NULL, &acc), CVIS_E_SHAPE);
    CHECK_STATUS(cvis_metric_pointing_game(NULL, maps, 3, NULL, &acc), CVIS_E_INVALID_ARG);
    const int64_t boxes[8] = {0, 0, 128, 128, 10, 10, 20, 20};
    CHECK_OK(cvis_metric_pointing_game_box(maps, 2, boxes, 0, auc, &acc));
    /* both maps are zero: the first pixel, inside the first box only */
    CHECK(acc == 0.5 && cvis_tensor_data(auc)[0] == 1 && cvis_tensor_data(auc)[1] == 0);
    CHECK_STATUS(cvis_metric_pointing_game_box(maps, 1, boxes, 0, NULL, &acc), CVIS_E_SHAPE);
    CHECK_STATUS(cvis_metric_pointing_game_box(maps, 2, NULL, 0, NULL, &acc), CVIS_E_INVALID_ARG);
    cvis_tensor_free(maps);
    cvis_tensor_free(bad);
    cvis_tensor_free(curves);
    cvis_tensor_free(auc);
    cvis_tensor_free(x);
    cvis_score_free(s);
    cvis_model_free(m);
}

/* A small convolutional model for the allocation sweeps. */
static cvis_model *small_model(void)
{
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(12, 12, 2, &m));
    CHECK_OK(cvis_model_add_conv2d(m, NULL, CVIS_PREV, 4, 3, 3, 1, CVIS_PADDING_VALID,
                                   CVIS_ACT_RELU, NULL));
    CHECK_OK(cvis_model_add_flatten(m, NULL, CVIS_PREV, NULL));
    CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 3, CVIS_ACT_SOFTMAX, NULL));
    CHECK_OK(cvis_model_init_weights(m, 2));
    return m;
}

static cvis_status method_scenario(cvis_model *m, cvis_method method, const cvis_tensor *x,
                                   const cvis_score *s, int tunnel, int *untouched)
{
    cvis_explainer *e = NULL;
    cvis_status st = cvis_explainer_new(m, method, &e);
    if (st != CVIS_OK)
        return st;
    cvis_explainer_set_int(e, CVIS_OPT_IG_STEPS, 3);
    cvis_explainer_set_int(e, CVIS_OPT_BATCH_SIZE, 2);
    cvis_explainer_set_int(e, CVIS_OPT_RISE_MASKS, 3);
    cvis_explainer_set_int(e, CVIS_OPT_BASELINE, CVIS_BASELINE_BLUR);
    if (tunnel) {
        cvis_explainer_set_int(e, CVIS_OPT_NT_TYPE, CVIS_NT_SMOOTHGRAD_SQ);
        cvis_explainer_set_int(e, CVIS_OPT_NT_SAMPLES, 2);
    }
    int nd;
    int64_t shape[CVIS_MAX_DIMS];
    cvis_tensor *out = NULL;
    st = cvis_explainer_output_shape(e, x, &nd, shape);
    if (st == CVIS_OK)
        st = cvis_tensor_create(nd, shape, &out);
    if (st == CVIS_OK) {
        for (int64_t i = 0; i < cvis_tensor_size(out); i++)
            cvis_tensor_data(out)[i] = 7;
        st = cvis_explainer_run(e, x, 1, &s, out);
        if (st != CVIS_OK)
            for (int64_t i = 0; i < cvis_tensor_size(out); i++)
                *untouched &= cvis_tensor_data(out)[i] == 7;
    }
    cvis_tensor_free(out);
    cvis_explainer_free(e);
    return st;
}

static cvis_status metric_scenario(cvis_model *m, const cvis_tensor *x, const cvis_score *s)
{
    int64_t mshape[3] = {2, 12, 12};
    cvis_tensor *maps = NULL;
    cvis_status st = cvis_tensor_create(3, mshape, &maps);
    if (st != CVIS_OK)
        return st;
    for (int64_t i = 0; i < cvis_tensor_size(maps); i++)
        cvis_tensor_data(maps)[i] = (float)((i * 13) % 17);
    float aucs[2];
    int64_t one[1] = {2};
    cvis_tensor *auc = NULL;
    double drop, inc;
    st = cvis_tensor_wrap(aucs, 1, one, &auc);
    if (st == CVIS_OK)
        st = cvis_metric_deletion(m, x, s, maps, 0.25, CVIS_BASELINE_BLUR, 2, NULL, auc);
    if (st == CVIS_OK)
        st = cvis_metric_insertion(m, x, s, maps, 0.25, CVIS_BASELINE_MEAN, 2, NULL, auc);
    if (st == CVIS_OK)
        st = cvis_metric_average_drop(m, x, s, maps, &drop, &inc, NULL);
    if (st == CVIS_OK)
        st = cvis_metric_pointing_game(maps, maps, 2, auc, &drop);
    cvis_tensor_free(auc);
    cvis_tensor_free(maps);
    return st;
}

/* Every allocation of every method and measure fails in turn: each run
 * fails with CVIS_E_NOMEM and a message, leaves the output as it was, and
 * (under ASan) leaks nothing. */
static void test_allocation_failures(void)
{
    cvis_model *m = small_model();
    cvis_tensor *x = noise(2, 12, 12, 2, 6);
    int idx[2] = {0, 2};
    cvis_score *s = NULL;
    CHECK_OK(cvis_score_categorical(2, idx, &s));
    for (int k = CVIS_METHOD_INTEGRATED_GRADIENTS; k <= CVIS_METHOD_RISE + 1; k++) {
        /* the last round: the noise tunnel over guided Grad-CAM */
        cvis_method method = k <= CVIS_METHOD_RISE ? (cvis_method)k : CVIS_METHOD_GUIDED_GRADCAM;
        int tunnel = k > CVIS_METHOD_RISE, wrong = 0, untouched = 1;
        int64_t n;
        cvis_status st = CVIS_E_NOMEM;
        for (n = 1; n < 2000; n++) {
            cvis__alloc_fail_after(n);
            st = method_scenario(m, method, x, s, tunnel, &untouched);
            cvis__alloc_fail_after(0);
            if (st == CVIS_OK)
                break;
            if ((st != CVIS_E_NOMEM || !cvis_last_error()[0]) && wrong++ < 3)
                fprintf(stderr, "%s, allocation %lld failing: %s (%s)\n",
                        cvis_method_name(method), (long long)n, cvis_status_string(st),
                        cvis_last_error());
        }
        CHECK(st == CVIS_OK && wrong == 0 && untouched && n > 5);
    }
    int64_t n;
    int wrong = 0;
    cvis_status st = CVIS_E_NOMEM;
    for (n = 1; n < 2000; n++) {
        cvis__alloc_fail_after(n);
        st = metric_scenario(m, x, s);
        cvis__alloc_fail_after(0);
        if (st == CVIS_OK)
            break;
        if ((st != CVIS_E_NOMEM || !cvis_last_error()[0]) && wrong++ < 3)
            fprintf(stderr, "measures, allocation %lld failing: %s (%s)\n", (long long)n,
                    cvis_status_string(st), cvis_last_error());
    }
    CHECK(st == CVIS_OK && wrong == 0 && n > 10);
    cvis_score_free(s);
    cvis_tensor_free(x);
    cvis_model_free(m);
}

TEST_MAIN({
    test_relu_rules();
    test_integrated_gradients_rules();
    test_occlusion_windows();
    test_eigencam_by_hand();
    test_names_cancel_and_numerics();
    test_metric_arguments();
    test_allocation_failures();
})
