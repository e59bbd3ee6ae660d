/* The libcvis side of `make bench`: a long-lived process that reads one
 * command per line on stdin and answers one line on stdout, so that
 * bench/run.py can interleave it with the torch side (bench/torch_ref.py)
 * call by call.  Commands:
 *
 *   load NAME PATH          an ONNX model, or PATH "tutorial": the tutorial's
 *                           network with seeded random weights
 *   threads N               cvis_set_num_threads(N)  (BLAS and the pool)
 *   run NAME KIND B H W     one timed call; answers the seconds it took.
 *                           KIND: fwd, fwdgrad, saliency, smoothgrad,
 *                           gradcam, gradcam++, scorecam, fasterscorecam,
 *                           actmax, scorecam64 (Score-CAM on 64 channels)
 *   sgemm N                 one N x N x N cblas_sgemm; answers seconds
 *   convflops NAME B H W    floating-point operations of the model's
 *                           convolutions in one forward pass
 *   chart PATH N            then N lines "ratio label": a bar chart (PNG)
 *   png PATH                a seeded random 224x224 RGB picture
 *   quit
 *
 * Every answer is "ok VALUE" or "error MESSAGE".  Inputs are seeded random
 * tensors, one per shape, made once. */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../examples/tutorial_model.h"
#include "cvis.h"

#define MAX_MODELS 8
#define MAX_INPUTS 32
#define MAX_PASSES 32
#define CVIS_TRY_BENCH(call)              \
    do {                                   \
        cvis_status st_ = (call);          \
        if (st_ != CVIS_OK)                \
            return st_;                    \
    } while (0)

typedef struct {
    char name[64];
    cvis_model *m;
} model_slot;

typedef struct {
    int64_t b, h, w;
    cvis_tensor *x;
} input_slot;

typedef struct {
    cvis_model *m;
    int grad;
    cvis_pass *p;
} pass_slot;

static model_slot models[MAX_MODELS];
static input_slot inputs[MAX_INPUTS];
static pass_slot passes[MAX_PASSES];
static int n_models, n_inputs, n_passes;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float uniform01(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)(rng_state >> 40) / (float)(1u << 24);
}

static cvis_model *find_model(const char *name)
{
    for (int i = 0; i < n_models; i++)
        if (!strcmp(models[i].name, name))
            return models[i].m;
    return NULL;
}

/* A seeded input in [0, 1) for this shape, made on first use.  With
 * BENCH_INPUT_DIR set it is also saved there as input_B_HxW.npy, which
 * bench/torch_ref.py reads: both sides then explain the same pictures (Faster
 * Score-CAM's work depends on them). */
static cvis_tensor *input_for(int64_t b, int64_t h, int64_t w)
{
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i].b == b && inputs[i].h == h && inputs[i].w == w)
            return inputs[i].x;
    if (n_inputs == MAX_INPUTS)
        return NULL;
    int64_t shape[4] = {b, h, w, 3};
    cvis_tensor *x;
    if (cvis_tensor_create(4, shape, &x) != CVIS_OK)
        return NULL;
    float *d = cvis_tensor_data(x);
    for (int64_t i = 0; i < cvis_tensor_size(x); i++)
        d[i] = uniform01();
    const char *dir = getenv("BENCH_INPUT_DIR");
    if (dir) {
        char path[1024];
        snprintf(path, sizeof path, "%s/input_%lld_%lldx%lld.npy", dir, (long long)b,
                 (long long)h, (long long)w);
        if (cvis_tensor_save_npy(x, path) != CVIS_OK) {
            cvis_tensor_free(x);
            return NULL;
        }
    }
    inputs[n_inputs++] = (input_slot){b, h, w, x};
    return x;
}

/* One pass per model and kind, kept: the library reuses its buffers across
 * calls (as torch's caching allocator does). */
static cvis_pass *pass_for(cvis_model *m, int grad)
{
    for (int i = 0; i < n_passes; i++)
        if (passes[i].m == m && passes[i].grad == grad)
            return passes[i].p;
    if (n_passes == MAX_PASSES)
        return NULL;
    cvis_pass *p;
    if (cvis_pass_new(m, &p) != CVIS_OK)
        return NULL;
    if (cvis_pass_set_int(p, CVIS_PASS_LOGITS, 1) != CVIS_OK ||
        cvis_pass_set_int(p, CVIS_PASS_INPUT_GRAD, grad) != CVIS_OK) {
        cvis_pass_free(p);
        return NULL;
    }
    /* forward only: values freed as soon as read, as under torch.no_grad()
     * (not checked: libcvis before 1.x's performance work lacks the key) */
    cvis_pass_set_int(p, CVIS_PASS_FORWARD_ONLY, !grad);
    passes[n_passes++] = (pass_slot){m, grad, p};
    return p;
}

/* Forward, and with grad the gradient of sum_b logit_b[0] w.r.t. the input. */
static cvis_status forward_grad(cvis_model *m, const cvis_tensor *x, int grad)
{
    cvis_pass *p = pass_for(m, grad);
    if (!p)
        return CVIS_E_NOMEM;
    cvis_status st = cvis_pass_forward(p, x);
    if (st != CVIS_OK || !grad)
        return st;
    const cvis_tensor *y = cvis_pass_output(p, 0);
    int64_t shape[8];
    cvis_tensor_shape(y, shape);
    cvis_tensor *dy;
    st = cvis_tensor_create(cvis_tensor_ndim(y), shape, &dy);
    if (st != CVIS_OK)
        return st;
    int64_t per = cvis_tensor_size(y) / shape[0];
    for (int64_t b = 0; b < shape[0]; b++)
        cvis_tensor_data(dy)[b * per] = 1.0f;
    const cvis_tensor *d[1] = {dy};
    st = cvis_pass_backward(p, 1, d);
    cvis_tensor_free(dy);
    return st;
}

/* One explainer per model and kind, kept across calls like the passes
 * (an application explaining image after image keeps it too). */
typedef struct {
    cvis_model *m;
    char kind[32];
    cvis_explainer *e;
} explainer_slot;

static explainer_slot explainers[MAX_PASSES];
static int n_explainers;

static cvis_status make_explainer(cvis_model *m, const char *kind, cvis_explainer **out)
{
    cvis_method method;
    int max_n = 0, samples = 0, steps = 0;
    if (!strcmp(kind, "saliency"))
        method = CVIS_METHOD_SALIENCY;
    else if (!strcmp(kind, "smoothgrad"))
        method = CVIS_METHOD_SMOOTHGRAD, samples = 20;
    else if (!strcmp(kind, "gradcam"))
        method = CVIS_METHOD_GRADCAM;
    else if (!strcmp(kind, "gradcam++"))
        method = CVIS_METHOD_GRADCAM_PLUS_PLUS;
    else if (!strcmp(kind, "scorecam"))
        method = CVIS_METHOD_SCORECAM;
    else if (!strcmp(kind, "scorecam64")) /* two batches per image: Score-CAM's peak memory */
        method = CVIS_METHOD_SCORECAM, max_n = 64;
    else if (!strcmp(kind, "fasterscorecam"))
        method = CVIS_METHOD_FASTER_SCORECAM, max_n = 10;
    else if (!strcmp(kind, "actmax"))
        method = CVIS_METHOD_ACTIVATION_MAXIMIZATION, steps = 100;
    else
        return CVIS_E_INVALID_ARG;
    cvis_explainer *e = NULL;
    cvis_status st = cvis_explainer_new(m, method, &e);
    if (st == CVIS_OK && samples)
        st = cvis_explainer_set_int(e, CVIS_OPT_SMOOTH_SAMPLES, samples);
    if (st == CVIS_OK && method == CVIS_METHOD_SCORECAM)
        st = cvis_explainer_set_int(e, CVIS_OPT_BATCH_SIZE, 32);
    if (st == CVIS_OK && max_n)
        st = cvis_explainer_set_int(e, CVIS_OPT_MAX_N, max_n);
    if (st == CVIS_OK && steps) {
        st = cvis_explainer_set_int(e, CVIS_OPT_STEPS, steps);
        if (st == CVIS_OK)
            st = cvis_explainer_set_float(e, CVIS_OPT_INPUT_MAX, 1.0);
    }
    if (st != CVIS_OK) {
        cvis_explainer_free(e);
        return st;
    }
    *out = e;
    return CVIS_OK;
}

static cvis_status run_method(cvis_model *m, const char *kind, const cvis_tensor *x)
{
    cvis_explainer *e = NULL;
    for (int i = 0; i < n_explainers; i++)
        if (explainers[i].m == m && !strcmp(explainers[i].kind, kind))
            e = explainers[i].e;
    if (!e) {
        if (n_explainers == MAX_PASSES)
            return CVIS_E_LIMIT;
        CVIS_TRY_BENCH(make_explainer(m, kind, &e));
        explainers[n_explainers].m = m;
        snprintf(explainers[n_explainers].kind, sizeof explainers[n_explainers].kind, "%s", kind);
        explainers[n_explainers++].e = e;
    }
    int b = (int)cvis_tensor_dim(x, 0);
    int classes[64];
    for (int i = 0; i < b && i < 64; i++)
        classes[i] = i;
    cvis_score *score = NULL;
    cvis_tensor *out = NULL;
    cvis_status st = cvis_score_categorical(b, classes, &score);
    int ndim;
    int64_t shape[8];
    if (st == CVIS_OK)
        st = cvis_explainer_output_shape(e, x, &ndim, shape);
    if (st == CVIS_OK)
        st = cvis_tensor_create(ndim, shape, &out);
    const cvis_score *scores[1] = {score};
    if (st == CVIS_OK)
        st = cvis_explainer_run(e, x, 1, scores, out);
    cvis_tensor_free(out);
    cvis_score_free(score);
    return st;
}

static double conv_flops(cvis_model *m, int64_t b, int64_t h, int64_t w)
{
    /* the output shapes are the model's own (its input size): scale the
     * spatial part to h x w */
    int64_t hwc[3];
    cvis_model_input_shape(m, hwc);
    double scale = hwc[0] > 0 && hwc[1] > 0 ? (double)(h * w) / (double)(hwc[0] * hwc[1]) : 1.0;
    double total = 0;
    for (int l = 0; l < cvis_model_layer_count(m); l++) {
        /* a convolution: its first weight is a (kh, kw, cin/groups, cout) kernel */
        cvis_tensor *k = NULL;
        if (cvis_model_weight_count(m, l) < 1 || cvis_model_get_weight(m, l, 0, &k) != CVIS_OK)
            continue;
        if (cvis_tensor_ndim(k) != 4) {
            cvis_tensor_free(k);
            continue;
        }
        int64_t out[8];
        int nd = 0;
        if (cvis_model_layer_output_shape(m, l, &nd, out) == CVIS_OK && nd == 3) {
            /* kernel (kh, kw, cin/groups, cout); output (h, w, cout) */
            double per_out = 2.0 * (double)(cvis_tensor_dim(k, 0) * cvis_tensor_dim(k, 1) *
                                            cvis_tensor_dim(k, 2));
            total += per_out * (double)(out[0] * out[1] * out[2]) * scale * (double)b;
        }
        cvis_tensor_free(k);
    }
    return total;
}

static double sgemm_seconds(int n)
{
    size_t nn = (size_t)n * (size_t)n;
    float *a = malloc(nn * sizeof(float)), *bm = malloc(nn * sizeof(float)),
          *c = malloc(nn * sizeof(float));
    if (!a || !bm || !c) {
        free(a), free(bm), free(c);
        return -1;
    }
    for (size_t i = 0; i < nn; i++)
        a[i] = uniform01(), bm[i] = uniform01(), c[i] = uniform01();
    /* OpenBLAS on the bench's thread count for this product (libcvis keeps
     * it at one and threads its own products); the second of two products
     * is timed: OpenBLAS's buffers and every page of C already there (a
     * first touch of C's pages costs a third more here) */
    int keep = openblas_get_num_threads();
    openblas_set_num_threads(cvis_get_num_threads());
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, bm, n, 0.0f, c, n);
    double t = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, bm, n, 0.0f, c, n);
    t = now() - t;
    openblas_set_num_threads(keep);
    free(a), free(bm), free(c);
    return t;
}

/* Horizontal bars of torch/libcvis ratios, a line at 1. */
static cvis_status chart(const char *path, int n)
{
    enum { ROW = 16, LEFT = 330, BAR = 360, RIGHT = 70 };
    double top = 0;
    double *ratio = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    char(*label)[128] = calloc((size_t)(n > 0 ? n : 1), sizeof *label);
    if (!ratio || !label) {
        free(ratio), free(label);
        return CVIS_E_NOMEM;
    }
    char line[256];
    for (int i = 0; i < n && fgets(line, sizeof line, stdin); i++) {
        char *rest = NULL;
        ratio[i] = strtod(line, &rest);
        while (rest && *rest == ' ')
            rest++;
        snprintf(label[i], sizeof label[i], "%s", rest ? rest : "");
        label[i][strcspn(label[i], "\n")] = 0;
        if (ratio[i] > top)
            top = ratio[i];
    }
    if (top < 2)
        top = 2;
    cvis_image *img = NULL;
    cvis_status st = cvis_image_new(LEFT + BAR + RIGHT, (n + 3) * ROW, 3, &img);
    if (st == CVIS_OK) {
        uint8_t *px = cvis_image_data(img);
        int W = cvis_image_width(img), H = cvis_image_height(img);
        memset(px, 255, (size_t)W * H * 3);
        cvis_image_draw_text(img, 4, 2, "torch time / libcvis time (right of the line: libcvis faster)",
                             1, 0x000000);
        for (int i = 0; i < n; i++) {
            int y0 = (i + 2) * ROW, len = (int)(BAR * (ratio[i] / top));
            uint32_t rgb = ratio[i] >= 1 ? 0x2E7D32 : 0xC62828;
            for (int y = y0 + 2; y < y0 + ROW - 3; y++)
                for (int x = LEFT; x < LEFT + len && x < W; x++) {
                    uint8_t *p = px + ((size_t)y * W + x) * 3;
                    p[0] = (uint8_t)(rgb >> 16), p[1] = (uint8_t)(rgb >> 8), p[2] = (uint8_t)rgb;
                }
            cvis_image_draw_text(img, 4, y0 + 2, label[i], 1, 0x000000);
            char v[32];
            snprintf(v, sizeof v, "%.2f", ratio[i]);
            cvis_image_draw_text(img, LEFT + len + 4, y0 + 2, v, 1, 0x000000);
        }
        int one = LEFT + (int)(BAR / top);
        for (int y = ROW; y < H; y++) {
            uint8_t *p = px + ((size_t)y * W + one) * 3;
            p[0] = p[1] = p[2] = 0;
        }
        st = cvis_image_save_png(img, path);
    }
    cvis_image_free(img);
    free(ratio), free(label);
    return st;
}

static cvis_status random_png(const char *path)
{
    cvis_image *img;
    cvis_status st = cvis_image_new(224, 224, 3, &img);
    if (st != CVIS_OK)
        return st;
    uint8_t *px = cvis_image_data(img);
    for (int i = 0; i < 224 * 224 * 3; i++)
        px[i] = (uint8_t)(uniform01() * 256);
    st = cvis_image_save_png(img, path);
    cvis_image_free(img);
    return st;
}

static void answer_status(cvis_status st, double value)
{
    if (st == CVIS_OK)
        printf("ok %.6g\n", value);
    else
        printf("error %s: %s\n", cvis_status_string(st), cvis_last_error());
    fflush(stdout);
}

int main(void)
{
    char line[1024];
    while (fgets(line, sizeof line, stdin)) {
        char cmd[32] = "", a1[512] = "", a2[512] = "";
        long long b = 0, h = 0, w = 0;
        sscanf(line, "%31s", cmd);
        if (!strcmp(cmd, "quit"))
            break;
        if (!strcmp(cmd, "load") && sscanf(line, "%*s %63s %511s", a1, a2) == 2) {
            cvis_model *m = NULL;
            cvis_status st;
            if (n_models == MAX_MODELS) {
                printf("error too many models\n");
                fflush(stdout);
                continue;
            }
            if (!strcmp(a2, "tutorial")) {
                st = tutorial_model(3, &m);
                if (st == CVIS_OK)
                    st = cvis_model_init_weights(m, 1);
            } else {
                st = cvis_model_load_onnx(a2, &m);
            }
            if (st == CVIS_OK) {
                snprintf(models[n_models].name, sizeof models[n_models].name, "%s", a1);
                models[n_models++].m = m;
            }
            answer_status(st, 0);
        } else if (!strcmp(cmd, "threads") && sscanf(line, "%*s %lld", &b) == 1) {
            cvis_status st = cvis_set_num_threads((int)b); /* then the count it set */
            answer_status(st, (double)cvis_get_num_threads());
        } else if (!strcmp(cmd, "run") &&
                   sscanf(line, "%*s %63s %31s %lld %lld %lld", a1, a2, &b, &h, &w) == 5) {
            cvis_model *m = find_model(a1);
            cvis_tensor *x = input_for(b, h, w);
            if (!m || !x) {
                printf("error no such model or no input\n");
                fflush(stdout);
                continue;
            }
            double t = now();
            cvis_status st;
            if (!strcmp(a2, "fwd") || !strcmp(a2, "fwdgrad"))
                st = forward_grad(m, x, !strcmp(a2, "fwdgrad"));
            else
                st = run_method(m, a2, x);
            answer_status(st, now() - t);
        } else if (!strcmp(cmd, "sgemm") && sscanf(line, "%*s %lld", &b) == 1) {
            double t = sgemm_seconds((int)b);
            answer_status(t < 0 ? CVIS_E_NOMEM : CVIS_OK, t);
        } else if (!strcmp(cmd, "convflops") &&
                   sscanf(line, "%*s %63s %lld %lld %lld", a1, &b, &h, &w) == 4) {
            cvis_model *m = find_model(a1);
            answer_status(m ? CVIS_OK : CVIS_E_NOT_FOUND, m ? conv_flops(m, b, h, w) : 0);
        } else if (!strcmp(cmd, "chart") && sscanf(line, "%*s %511s %lld", a1, &b) == 2) {
            answer_status(chart(a1, (int)b), 0);
        } else if (!strcmp(cmd, "png") && sscanf(line, "%*s %511s", a1) == 1) {
            answer_status(random_png(a1), 0);
        } else {
            printf("error unknown command\n");
            fflush(stdout);
        }
    }
    for (int i = 0; i < n_explainers; i++)
        cvis_explainer_free(explainers[i].e);
    for (int i = 0; i < n_passes; i++)
        cvis_pass_free(passes[i].p);
    for (int i = 0; i < n_inputs; i++)
        cvis_tensor_free(inputs[i].x);
    for (int i = 0; i < n_models; i++)
        cvis_model_free(models[i].m);
    return 0;
}
