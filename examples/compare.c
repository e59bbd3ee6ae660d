/* Every method on the trained example models, measured: deletion and
 * insertion AUC, average drop and increase in confidence, the pointing game
 * and the time per image.  The shapes model (train_shapes, the tutorial's
 * network) is scored on test images whose object masks are known; the
 * Fashion-MNIST model (train_fashion) on the first test images, with the
 * garment's silhouette (pixels above 0.1) as its mask.  Prints one
 * Markdown table per model (docs/comparison.md holds a run of it).
 *
 *   compare [--shapes WEIGHTS.npz] [--fashion WEIGHTS.npz] [--data DIR]
 *           [--n N] [--fashion-n N] [--step S] [--rise-masks N]
 *
 * --n: shapes images (default 32); --fashion-n: Fashion-MNIST images
 * (default: --n); --step: the share of pixels per deletion/insertion step
 * (0.05); --rise-masks: RISE's N (1000).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cvis.h"
#define EXAMPLE_NAME "compare"
#include "example.h"
#include "fashion.h"
#include "shapes.h"
#include "tutorial_model.h"

#define SHAPES_TEST_SEED 1002 /* train_shapes's test images for its default seed */

typedef struct row {
    cvis_method method; /* -1: a random map, the floor every method must beat */
    const char *title;
} row;

static const row rows[] = {
    {CVIS_METHOD_SALIENCY, "Vanilla saliency"},
    {CVIS_METHOD_SMOOTHGRAD, "SmoothGrad"},
    {CVIS_METHOD_INTEGRATED_GRADIENTS, "Integrated Gradients"},
    {CVIS_METHOD_INPUT_X_GRADIENT, "Input x Gradient"},
    {CVIS_METHOD_GUIDED_BACKPROP, "Guided backprop"},
    {CVIS_METHOD_DECONVNET, "Deconvnet"},
    {CVIS_METHOD_GRADCAM, "Grad-CAM"},
    {CVIS_METHOD_GUIDED_GRADCAM, "Guided Grad-CAM"},
    {CVIS_METHOD_GRADCAM_PLUS_PLUS, "Grad-CAM++"},
    {CVIS_METHOD_XGRADCAM, "XGrad-CAM"},
    {CVIS_METHOD_HIRESCAM, "HiRes-CAM"},
    {CVIS_METHOD_LAYERCAM, "Layer-CAM"},
    {CVIS_METHOD_SCORECAM, "Score-CAM"},
    {CVIS_METHOD_FASTER_SCORECAM, "Faster Score-CAM"},
    {CVIS_METHOD_ABLATIONCAM, "Ablation-CAM"},
    {CVIS_METHOD_EIGENCAM, "Eigen-CAM"},
    {CVIS_METHOD_OCCLUSION, "Occlusion"},
    {CVIS_METHOD_RISE, "RISE"},
    {(cvis_method)-1, "random map"},
};
#define N_ROWS ((int)(sizeof rows / sizeof rows[0]))

typedef struct settings {
    int n, fashion_n, rise_masks, tolerance;
    double step;
} settings;

/* A map of uniform noise per image (seeded): what a map that knows nothing
 * scores. */
static void random_maps(cvis_tensor *maps)
{
    uint64_t s = 12345;
    float *v = cvis_tensor_data(maps);
    for (int64_t i = 0; i < cvis_tensor_size(maps); i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        v[i] = (float)((s >> 40) * (1.0 / 16777216.0));
    }
}

/* Runs every method on x (true classes `labels`, object masks `masks`) and
 * prints the table. */
static void compare(const char *name, cvis_model *m, const cvis_tensor *x, const int *labels,
                    const cvis_tensor *masks, const settings *st)
{
    int64_t B = cvis_tensor_dim(x, 0), H = cvis_tensor_dim(x, 1), W = cvis_tensor_dim(x, 2);
    cvis_score *score;
    check(cvis_score_categorical((int)B, labels, &score), "score");
    cvis_tensor *probs, *auc, *hits;
    check(cvis_model_predict(m, x, &probs), "predict");
    int64_t K = cvis_tensor_dim(probs, 1), correct = 0;
    for (int64_t i = 0; i < B; i++) {
        const float *p = cvis_tensor_data(probs) + i * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (p[k] > p[best])
                best = k;
        correct += best == labels[i];
    }
    double area = 0;
    for (int64_t i = 0; i < cvis_tensor_size(masks); i++)
        area += cvis_tensor_data(masks)[i] != 0;
    area /= (double)cvis_tensor_size(masks);
    printf("\n### %s: %lld test images of %lldx%lld, %lld classified right\n\n", name,
           (long long)B, (long long)H, (long long)W, (long long)correct);
    printf("Scored on the true class.  Deletion: pixels set to 0, insertion: revealed on the "
           "image blurred (sigma 5), %g of the pixels per step; the pointing game within %d "
           "pixel%s of the mask (chance: the mask covers %.2f of the image).\n\n",
           st->step, st->tolerance, st->tolerance == 1 ? "" : "s", area);
    printf("| method | deletion AUC (lower is better) | insertion AUC (higher is better) | "
           "average drop %% | increase %% | pointing game | ms per image |\n");
    printf("|---|---|---|---|---|---|---|\n");
    int64_t one = B;
    check(cvis_tensor_create(1, &one, &auc), "auc");
    check(cvis_tensor_create(1, &one, &hits), "hits");
    for (int r = 0; r < N_ROWS; r++) {
        int64_t shape[3] = {B, H, W};
        cvis_tensor *maps;
        check(cvis_tensor_create(3, shape, &maps), "maps");
        double t0 = now();
        if ((int)rows[r].method < 0) {
            random_maps(maps);
        } else {
            cvis_explainer *e;
            check(cvis_explainer_new(m, rows[r].method, &e), rows[r].title);
            if (rows[r].method == CVIS_METHOD_RISE)
                check(cvis_explainer_set_int(e, CVIS_OPT_RISE_MASKS, st->rise_masks), "masks");
            check(cvis_explainer_run(e, x, 1, (const cvis_score *const *)&score, maps),
                  rows[r].title);
            cvis_explainer_free(e);
        }
        double ms = (now() - t0) * 1000.0 / (double)B;
        double del = 0, ins = 0, drop, inc, acc;
        check(cvis_metric_deletion(m, x, score, maps, st->step, CVIS_BASELINE_ZERO, 0, NULL, auc),
              "deletion");
        for (int64_t i = 0; i < B; i++)
            del += cvis_tensor_data(auc)[i] / (double)B;
        check(cvis_metric_insertion(m, x, score, maps, st->step, CVIS_BASELINE_BLUR, 5, NULL, auc),
              "insertion");
        for (int64_t i = 0; i < B; i++)
            ins += cvis_tensor_data(auc)[i] / (double)B;
        check(cvis_metric_average_drop(m, x, score, maps, &drop, &inc, NULL), "average drop");
        check(cvis_metric_pointing_game(maps, masks, st->tolerance, hits, &acc), "pointing");
        printf("| %s | %.3f | %.3f | %.1f | %.1f | %.2f | %.1f |\n", rows[r].title, del, ins, drop,
               inc, acc, ms);
        fflush(stdout);
        cvis_tensor_free(maps);
    }
    cvis_tensor_free(auc);
    cvis_tensor_free(hits);
    cvis_tensor_free(probs);
    cvis_score_free(score);
}

static void run_shapes(const char *weights, const settings *st)
{
    cvis_model *m;
    check(tutorial_model(SHAPES_CLASSES, &m), "model");
    check(cvis_model_load_npz(m, weights), weights);
    const int64_t S = SHAPES_SIZE, HW = S * S;
    int64_t xs[4] = {st->n, S, S, 3}, ms[3] = {st->n, S, S};
    cvis_tensor *x, *masks;
    check(cvis_tensor_create(4, xs, &x), "images");
    check(cvis_tensor_create(3, ms, &masks), "masks");
    float *px = xmalloc(sizeof(float) * (size_t)(HW * 3));
    unsigned char *mask = xmalloc((size_t)HW);
    int *labels = xmalloc(sizeof(int) * (size_t)st->n);
    for (int i = 0; i < st->n; i++) {
        /* the demo's pointing-game images */
        labels[i] = shapes_image(SHAPES_TEST_SEED, (uint64_t)(1000 + i), px, mask);
        memcpy(cvis_tensor_data(x) + i * HW * 3, px, sizeof(float) * (size_t)(HW * 3));
        for (int64_t p = 0; p < HW; p++)
            cvis_tensor_data(masks)[i * HW + p] = mask[p];
    }
    compare("Shapes (the tutorial's network, train_shapes)", m, x, labels, masks, st);
    free(px);
    free(mask);
    free(labels);
    cvis_tensor_free(x);
    cvis_tensor_free(masks);
    cvis_model_free(m);
}

static void run_fashion(const char *weights, const char *dir, const settings *st)
{
    cvis_model *m;
    check(fashion_model(&m), "model");
    check(cvis_model_load_npz(m, weights), weights);
    fashion_set test;
    char err[512];
    if (fashion_load(dir, "t10k", &test, err, sizeof err)) {
        fprintf(stderr, "compare: %s\n", err);
        exit(1);
    }
    int n = st->fashion_n < test.n ? st->fashion_n : test.n;
    const int64_t HW = FASHION_SIZE * FASHION_SIZE;
    int64_t xs[4] = {n, FASHION_SIZE, FASHION_SIZE, 1}, ms[3] = {n, FASHION_SIZE, FASHION_SIZE};
    cvis_tensor *x, *masks;
    check(cvis_tensor_create(4, xs, &x), "images");
    check(cvis_tensor_create(3, ms, &masks), "masks");
    int *labels = xmalloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) {
        for (int64_t p = 0; p < HW; p++) {
            float v = test.images[(size_t)i * HW + p] * (1.0f / 255.0f);
            cvis_tensor_data(x)[i * HW + p] = v;
            cvis_tensor_data(masks)[i * HW + p] = v > 0.1f;
        }
        labels[i] = test.labels[i];
    }
    settings fs = *st;
    fs.tolerance = 0; /* the silhouette already covers much of a 28x28 image */
    compare("Fashion-MNIST (train_fashion)", m, x, labels, masks, &fs);
    free(labels);
    fashion_free(&test);
    cvis_tensor_free(x);
    cvis_tensor_free(masks);
    cvis_model_free(m);
}

int main(int argc, char **argv)
{
    const char *shapes = NULL, *fashion = NULL, *dir = NULL;
    settings st = {32, 0, 1000, 4, 0.05};
    for (int i = 1; i < argc; i++) {
        int more = i + 1 < argc;
        if (!strcmp(argv[i], "--shapes") && more)
            shapes = argv[++i];
        else if (!strcmp(argv[i], "--fashion") && more)
            fashion = argv[++i];
        else if (!strcmp(argv[i], "--data") && more)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--n") && more)
            st.n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--fashion-n") && more)
            st.fashion_n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--step") && more)
            st.step = atof(argv[++i]);
        else if (!strcmp(argv[i], "--rise-masks") && more)
            st.rise_masks = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: compare [--shapes WEIGHTS.npz] [--fashion WEIGHTS.npz] "
                            "[--data DIR] [--n N] [--fashion-n N] [--step S] "
                            "[--rise-masks N]\n");
            return 2;
        }
    }
    if (st.fashion_n == 0)
        st.fashion_n = st.n;
    if ((!shapes && !fashion) || st.n < 1 || st.fashion_n < 1 || !(st.step > 0 && st.step <= 1) ||
        st.rise_masks < 1) {
        fprintf(stderr, "compare: give --shapes and/or --fashion weights, n >= 1, step in (0, 1], "
                        "rise masks >= 1\n");
        return 2;
    }
    double t0 = now();
    if (shapes)
        run_shapes(shapes, &st);
    if (fashion)
        run_fashion(fashion, dir, &st);
    printf("\ncompare: %.0f s\n", now() - t0);
    return 0;
}
