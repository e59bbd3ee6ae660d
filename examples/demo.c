/* The whole tutorial in pictures, on the tutorial's network trained on the
 * shapes dataset: layers, filters, feature maps, activation maximization,
 * then every method on three test images of the three classes, and a
 * pointing game that scores each method against the objects' masks.
 * Writes PNG pictures and an HTML report (index.html) into a directory.
 *
 *   demo -w WEIGHTS.npz [-o DIR] [--steps N] [--pointing N] [--quiet]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cvis.h"
#define EXAMPLE_NAME "demo"
#include "example.h"
#include "shapes.h"
#include "tutorial_model.h"

#define TEST_SEED 1002 /* train_shapes's test images for its default seed */

typedef struct demo {
    cvis_model *m;
    const char *dir;
    cvis_report *report;
    int quiet;
} demo;

/* Saves a picture, adds it to the report with its caption, frees it. */
static void picture(demo *d, cvis_image *img, const char *file, const char *caption)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", d->dir, file);
    check(cvis_image_save_png(img, path), path);
    check(cvis_report_add_image(d->report, file, caption), "report");
    if (!d->quiet)
        printf("    %s\n", path);
    cvis_image_free(img);
}

static void text(demo *d, const char *heading, const char *body)
{
    check(cvis_report_add_section(d->report, heading, body), "report");
    if (!d->quiet && heading)
        printf("== %s\n", heading);
}

/* ------------------------------------------------------------ the layers */

static void layers(demo *d)
{
    char buf[4096];
    int n = cvis_model_layer_count(d->m), used = 0;
    const char *cells[4 * 16];
    static char store[16][3][64];
    cells[0] = "layer";
    cells[1] = "type";
    cells[2] = "output shape";
    cells[3] = "filters (kh, kw, c_in, c_out)";
    for (int i = 0; i < n && i < 15; i++) {
        int nd;
        int64_t s[CVIS_MAX_DIMS];
        cvis_model_layer_output_shape(d->m, i, &nd, s);
        int o = snprintf(store[i][0], 64, "(None");
        for (int k = 0; k < nd; k++)
            o += snprintf(store[i][0] + o, (size_t)(64 - o), ", %lld", (long long)s[k]);
        snprintf(store[i][0] + o, (size_t)(64 - o), ")");
        store[i][1][0] = 0;
        if (cvis_model_layer_is_conv(d->m, i)) {
            cvis_tensor *f;
            check(cvis_model_get_filters(d->m, i, &f, NULL), "filters");
            snprintf(store[i][1], 64, "(%lld, %lld, %lld, %lld)", (long long)cvis_tensor_dim(f, 0),
                     (long long)cvis_tensor_dim(f, 1), (long long)cvis_tensor_dim(f, 2),
                     (long long)cvis_tensor_dim(f, 3));
            cvis_tensor_free(f);
        }
        cells[4 * (i + 1)] = cvis_model_layer_name(d->m, i);
        cells[4 * (i + 1) + 1] = cvis_model_layer_type(d->m, i);
        cells[4 * (i + 1) + 2] = store[i][0];
        cells[4 * (i + 1) + 3] = store[i][1];
        used += snprintf(buf + used, sizeof buf - (size_t)used, "[*] layer %d: %-9s %-8s %s %s\n", i,
                         cells[4 * (i + 1)], cells[4 * (i + 1) + 1], store[i][0], store[i][1]);
    }
    text(d, "The model",
         "The tutorial's network: three convolutions of 8 filters (7x7, 5x5, 3x3, ReLU), a "
         "flatten, a dense layer of 128 and a softmax over 3 classes, on 128x128 RGB input, "
         "trained by libcvis on the shapes dataset (discs, squares and triangles of random "
         "colour and size, near the centre of cluttered, noisy backgrounds).");
    check(cvis_report_add_table(d->report, n + 1, 4, cells), "report");
    if (!d->quiet)
        fputs(buf, stdout);
}

/* ----------------------------------------------------------- the filters */

static void filters(demo *d)
{
    text(d, "Filters of the convolutional layers",
         "Each row is one filter, each column one of its input channels, min-max normalized over "
         "the whole layer and drawn in grayscale (the tutorial's Figures 4 to 6).");
    for (int i = 0; i < cvis_model_layer_count(d->m); i++) {
        if (!cvis_model_layer_is_conv(d->m, i))
            continue;
        cvis_tensor *f;
        check(cvis_model_get_filters_normalized(d->m, i, &f), "filters");
        int kh = (int)cvis_tensor_dim(f, 0), kw = (int)cvis_tensor_dim(f, 1);
        int cin = (int)cvis_tensor_dim(f, 2), cout = (int)cvis_tensor_dim(f, 3);
        cvis_grid *g;
        check(cvis_grid_new(cout, cin, 64, 64, &g), "grid");
        float *one = malloc(sizeof(float) * (size_t)(kh * kw));
        for (int o = 0; o < cout; o++)
            for (int c = 0; c < cin; c++) {
                for (int p = 0; p < kh * kw; p++)
                    one[p] = cvis_tensor_data(f)[(p * cin + c) * cout + o];
                cvis_image *img;
                check(cvis_map_to_image(one, kh, kw, CVIS_CMAP_GRAY, 0, &img), "filter");
                char title[32];
                snprintf(title, sizeof title, "in %d", c);
                check(cvis_grid_set(g, o, c, img, o == 0 ? title : NULL), "grid");
                cvis_image_free(img);
            }
        free(one);
        char caption[128], file[64];
        snprintf(caption, sizeof caption, "%s: filters 0-%d by row, input channels by column",
                 cvis_model_layer_name(d->m, i), cout - 1);
        check(cvis_grid_set_caption(g, caption), "grid");
        cvis_image *out;
        check(cvis_grid_render(g, &out), "grid");
        cvis_grid_free(g);
        snprintf(file, sizeof file, "filters_%s.png", cvis_model_layer_name(d->m, i));
        picture(d, out, file, caption);
        cvis_tensor_free(f);
    }
}

/* ------------------------------------------------------------ the images */

/* The first test image of each class, written as PNG and read back, as a
 * user's own pictures would be; masks kept for the report. */
static cvis_tensor *test_images(demo *d, cvis_image **originals)
{
    static float px[SHAPES_SIZE * SHAPES_SIZE * 3];
    int found = 0;
    for (uint64_t i = 0; found < SHAPES_CLASSES && i < 1000; i++) {
        int c = shapes_image(TEST_SEED, i, px, NULL);
        if (originals[c])
            continue;
        int64_t s[4] = {1, SHAPES_SIZE, SHAPES_SIZE, 3};
        cvis_tensor *t;
        check(cvis_tensor_wrap(px, 4, s, &t), "image");
        cvis_image *img;
        check(cvis_tensor_to_image(t, 0, 0, 1, &img), "image");
        cvis_tensor_free(t);
        char path[1024];
        snprintf(path, sizeof path, "%s/input_%s.png", d->dir, shapes_names[c]);
        check(cvis_image_save_png(img, path), path);
        cvis_image_free(img);
        check(cvis_image_load(path, &originals[c]), path);
        found++;
    }
    cvis_tensor *x;
    check(cvis_images_to_tensor(SHAPES_CLASSES, (const cvis_image *const *)originals, SHAPES_SIZE,
                                SHAPES_SIZE, &x),
          "images");
    cvis_grid *g;
    check(cvis_grid_new(1, SHAPES_CLASSES, 192, 192, &g), "grid");
    for (int c = 0; c < SHAPES_CLASSES; c++)
        check(cvis_grid_set(g, 0, c, originals[c], shapes_names[c]), "grid");
    check(cvis_grid_set_caption(g, "The three test images, one of each class"), "grid");
    cvis_image *out;
    check(cvis_grid_render(g, &out), "grid");
    cvis_grid_free(g);
    text(d, "Three test images", "Images the network never saw in training, read back from PNG.");
    picture(d, out, "inputs.png", "The three test images, one of each class");
    return x;
}

/* ---------------------------------------------------------- feature maps */

static void feature_map_grid(demo *d, const cvis_tensor *fm, const char *layer, const char *file)
{
    int h = (int)cvis_tensor_dim(fm, 1), w = (int)cvis_tensor_dim(fm, 2);
    int k = (int)cvis_tensor_dim(fm, 3);
    cvis_grid *g;
    int rows = (k + 3) / 4;
    check(cvis_grid_new(rows, 4, 160, 160, &g), "grid");
    float *one = malloc(sizeof(float) * (size_t)(h * w));
    for (int c = 0; c < k; c++) {
        for (int p = 0; p < h * w; p++)
            one[p] = cvis_tensor_data(fm)[(int64_t)p * k + c];
        cvis_image *img;
        check(cvis_map_to_image(one, h, w, CVIS_CMAP_GRAY, 1, &img), "map");
        char title[32];
        snprintf(title, sizeof title, "map %d", c);
        check(cvis_grid_set(g, c / 4, c % 4, img, title), "grid");
        cvis_image_free(img);
    }
    free(one);
    char caption[160];
    snprintf(caption, sizeof caption, "Feature maps of %s (%dx%dx%d) for the %s image", layer, h, w,
             k, shapes_names[0]);
    check(cvis_grid_set_caption(g, caption), "grid");
    cvis_image *out;
    check(cvis_grid_render(g, &out), "grid");
    cvis_grid_free(g);
    picture(d, out, file, caption);
}

static void feature_maps(demo *d, const cvis_tensor *x)
{
    text(d, "Feature maps",
         "The outputs of the convolutional layers for the first test image, each map in "
         "grayscale, 2 rows of 4 (the tutorial's Figures 9 to 12): first from a submodel whose "
         "output is the first layer, then from one whose outputs are all three.");
    int64_t one[4] = {1, SHAPES_SIZE, SHAPES_SIZE, 3};
    cvis_tensor *img, *fm[3];
    check(cvis_tensor_wrap(cvis_tensor_data(x), 4, one, &img), "image");
    int first = 0, all[3] = {0, 1, 2};
    check(cvis_model_feature_maps(d->m, img, 1, &first, fm), "feature maps");
    feature_map_grid(d, fm[0], cvis_model_layer_name(d->m, 0), "feature_maps_1.png");
    cvis_tensor_free(fm[0]);
    check(cvis_model_feature_maps(d->m, img, 3, all, fm), "feature maps");
    for (int k = 0; k < 3; k++) {
        char file[64];
        snprintf(file, sizeof file, "feature_maps_all_%d.png", k + 1);
        feature_map_grid(d, fm[k], cvis_model_layer_name(d->m, k), file);
        cvis_tensor_free(fm[k]);
    }
    cvis_tensor_free(img);
}

/* ----------------------------------------------- activation maximization */

typedef struct am_progress {
    int quiet;
    float first, last; /* the score at the first and the last step */
} am_progress;

static int am_bar(void *user, int step, int total, int n, const float *values)
{
    am_progress *p = user;
    if (step == 1)
        p->first = values[0];
    p->last = values[0];
    if (!p->quiet && isatty(2)) {
        int width = 30, done = width * step / total;
        fprintf(stderr, "\r    [%.*s%.*s] %3d/%d  score %.4g  tv %.4g  norm %.4g", done,
                "##############################", width - done, "..............................",
                step, total, values[0], values[n - 2], values[n - 1]);
        if (step == total)
            fprintf(stderr, "\n");
    }
    return 0;
}

static double filter_mean(cvis_model *m, const cvis_tensor *img, int layer, int filter)
{
    cvis_pass *p;
    check(cvis_pass_new(m, &p), "pass");
    check(cvis_pass_set_int(p, CVIS_PASS_INPUT_GRAD, 0), "pass");
    check(cvis_pass_set_int(p, CVIS_PASS_DROP_ACTIVATION, layer), "pass");
    check(cvis_pass_forward(p, img), "forward");
    const cvis_tensor *a = cvis_pass_layer_output(p, layer);
    int64_t k = cvis_tensor_dim(a, 3), n = cvis_tensor_size(a) / k;
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += cvis_tensor_data(a)[i * k + filter];
    cvis_pass_free(p);
    return s / (double)n;
}

static void maximization(demo *d, int steps)
{
    text(d, "Activation maximization",
         "An input optimized so that filter 7 of the third convolution responds as strongly as "
         "it can, from a seeded random start: 100 steps of Adam(1.0, 0.999) with Jitter(16), "
         "Rotate2D(1), TotalVariation2D(1.0) and Norm(0.3, p=1), the tutorial's settings, in "
         "the network's own input range [0, 1] (its images are divided by 255).  The tutorial "
         "left the range at the reference's default, 0 to 255: there the start is noise of "
         "large amplitude, which Rotate2D's resampling at every step smooths away faster than "
         "the ascent builds anything, and the filter's response falls.");
    int filter = 7, layer = 2;
    cvis_score *s;
    check(cvis_score_categorical(1, &filter, &s), "score");
    cvis_explainer *e;
    check(tutorial_maximization(d->m, layer, steps, &e), "explainer");
    check(cvis_explainer_set_float(e, CVIS_OPT_INPUT_MAX, 1.0), "option");
    am_progress prog = {d->quiet, 0, 0};
    check(cvis_explainer_set_progress(e, am_bar, &prog), "option");
    /* a seeded uniform start in the input range, made here so that the
     * filter's response to it can be reported */
    int64_t shape[4] = {1, SHAPES_SIZE, SHAPES_SIZE, 3};
    cvis_tensor *start, *act;
    check(cvis_tensor_create(4, shape, &start), "tensor");
    check(cvis_tensor_create(4, shape, &act), "tensor");
    shapes_rng rng = {42};
    for (int64_t i = 0; i < cvis_tensor_size(start); i++)
        cvis_tensor_data(start)[i] = (float)shapes_uniform(&rng);
    check(cvis_explainer_run(e, start, 1, (const cvis_score *const *)&s, act), "maximization");
    double start_mean = filter_mean(d->m, start, layer, filter);
    cvis_tensor_free(start);
    float lo = 1e30f, hi = -1e30f;
    for (int64_t i = 0; i < cvis_tensor_size(act); i++) {
        lo = cvis_tensor_data(act)[i] < lo ? cvis_tensor_data(act)[i] : lo;
        hi = cvis_tensor_data(act)[i] > hi ? cvis_tensor_data(act)[i] : hi;
    }
    double end_mean = filter_mean(d->m, act, layer, filter);
    char caption[256];
    snprintf(caption, sizeof caption,
             "Filter %d of %s: the score (its mean before the ReLU) rose from %.4g at the first "
             "step to %.4g at the last (x%.1f); on the result, clipped to [0, 1], %.4g against "
             "%.4g on the random start",
             filter, cvis_model_layer_name(d->m, layer), prog.first, prog.last,
             prog.first != 0 ? prog.last / prog.first : 0.0, end_mean, start_mean);
    if (!d->quiet)
        printf("    %s\n", caption);
    cvis_image *img, *big;
    check(cvis_tensor_to_image(act, 0, lo, hi > lo ? hi : lo + 1, &img), "image");
    check(cvis_image_resize(img, 384, 384, CVIS_RESIZE_NEAREST, &big), "resize");
    cvis_image_free(img);
    picture(d, big, "activation_maximization.png", caption);
    cvis_tensor_free(act);
    cvis_explainer_free(e);
    cvis_score_free(s);
}

/* --------------------------------------------------------------- methods */

typedef struct method_row {
    cvis_method method;
    const char *title;
    int overlay; /* CAMs over the image; saliency maps alone, in jet */
    int max_n;
} method_row;

static const method_row methods[] = {
    {CVIS_METHOD_SALIENCY, "Vanilla saliency", 0, 0},
    {CVIS_METHOD_SMOOTHGRAD, "SmoothGrad", 0, 0},
    {CVIS_METHOD_GRADCAM, "Grad-CAM", 1, 0},
    {CVIS_METHOD_GRADCAM_PLUS_PLUS, "Grad-CAM++", 1, 0},
    {CVIS_METHOD_SCORECAM, "Score-CAM", 1, 0},
    {CVIS_METHOD_FASTER_SCORECAM, "Faster Score-CAM", 1, 4},
    {CVIS_METHOD_LAYERCAM, "Layer-CAM", 1, 0},
};
#define N_METHODS ((int)(sizeof methods / sizeof methods[0]))

static cvis_explainer *make_explainer(cvis_model *m, const method_row *r)
{
    cvis_explainer *e;
    check(cvis_explainer_new(m, r->method, &e), r->title);
    if (r->max_n)
        check(cvis_explainer_set_int(e, CVIS_OPT_MAX_N, r->max_n), "max_N");
    return e;
}

static cvis_tensor *run(cvis_explainer *e, const cvis_tensor *x, const cvis_score *s, const char *what)
{
    int nd;
    int64_t shape[CVIS_MAX_DIMS];
    check(cvis_explainer_output_shape(e, x, &nd, shape), what);
    cvis_tensor *maps;
    check(cvis_tensor_create(nd, shape, &maps), what);
    check(cvis_explainer_run(e, x, 1, &s, maps), what);
    return maps;
}

static void explain_all(demo *d, const cvis_tensor *x, cvis_image **originals)
{
    text(d, "Why the network decides",
         "Each method on the three test images, scored on their true classes with logits "
         "(the tutorial's ReplaceToLinear).  Saliency maps are drawn in jet on their own; class "
         "activation maps over the image with alpha 0.5.");
    int classes[SHAPES_CLASSES] = {0, 1, 2};
    cvis_score *s;
    check(cvis_score_categorical(SHAPES_CLASSES, classes, &s), "score");
    cvis_tensor *probs;
    check(cvis_model_predict(d->m, x, &probs), "predict");
    for (int r = 0; r < N_METHODS; r++) {
        double t0 = now();
        cvis_explainer *e = make_explainer(d->m, &methods[r]);
        cvis_tensor *maps = run(e, x, s, methods[r].title);
        cvis_grid *g;
        check(cvis_grid_new(1, SHAPES_CLASSES, 192, 192, &g), "grid");
        int64_t H = cvis_tensor_dim(maps, 1), W = cvis_tensor_dim(maps, 2);
        for (int b = 0; b < SHAPES_CLASSES; b++) {
            const float *map = cvis_tensor_data(maps) + b * H * W;
            cvis_image *img;
            if (methods[r].overlay)
                check(cvis_image_overlay(originals[b], map, H, W, CVIS_CMAP_JET, 0.5f, &img),
                      "overlay");
            else
                check(cvis_map_to_image(map, H, W, CVIS_CMAP_JET, 0, &img), "map");
            char title[64];
            snprintf(title, sizeof title, "%s (p=%.2f)", shapes_names[b],
                     cvis_tensor_data(probs)[b * SHAPES_CLASSES + b]);
            check(cvis_grid_set(g, 0, b, img, title), "grid");
            cvis_image_free(img);
        }
        char caption[160], file[64];
        snprintf(caption, sizeof caption, "%s (%.2f s)", methods[r].title, now() - t0);
        check(cvis_grid_set_caption(g, methods[r].title), "grid");
        cvis_image *out;
        check(cvis_grid_render(g, &out), "grid");
        cvis_grid_free(g);
        snprintf(file, sizeof file, "%s.png", cvis_method_name(methods[r].method));
        for (char *c = file; *c; c++)
            if (*c == '+')
                *c = 'p';
        picture(d, out, file, caption);
        cvis_tensor_free(maps);
        cvis_explainer_free(e);
    }
    cvis_tensor_free(probs);
    cvis_score_free(s);
}

/* ---------------------------------------------------------- pointing game */

/* The mask grown by `tol` pixels (Chebyshev distance): the pointing game's
 * tolerance, as in its original form, since a convolution's features sit a
 * few pixels from what they respond to. */
static void dilate(const unsigned char *mask, int tol, unsigned char *out)
{
    const int S = SHAPES_SIZE;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            unsigned char v = 0;
            for (int dy = -tol; dy <= tol && !v; dy++)
                for (int dx = -tol; dx <= tol && !v; dx++) {
                    int yy = y + dy, xx = x + dx;
                    if (yy >= 0 && yy < S && xx >= 0 && xx < S)
                        v = mask[yy * S + xx];
                }
            out[y * S + x] = v;
        }
}

#define N_TOL 3
static const int tolerances[N_TOL] = {0, 4, 8};

static void pointing_game(demo *d, int n)
{
    static float px[SHAPES_SIZE * SHAPES_SIZE * 3];
    static unsigned char mask[SHAPES_SIZE * SHAPES_SIZE];
    const int64_t HW = SHAPES_SIZE * SHAPES_SIZE;
    int64_t shape[4] = {n, SHAPES_SIZE, SHAPES_SIZE, 3};
    cvis_tensor *x;
    check(cvis_tensor_create(4, shape, &x), "batch");
    unsigned char *masks = malloc((size_t)(N_TOL * n * HW));
    int *labels = malloc(sizeof(int) * (size_t)n);
    double area[N_TOL] = {0};
    for (int i = 0; i < n; i++) {
        labels[i] = shapes_image(TEST_SEED, (uint64_t)(1000 + i), px, mask);
        memcpy(cvis_tensor_data(x) + i * HW * 3, px, sizeof px);
        for (int t = 0; t < N_TOL; t++) {
            unsigned char *mt = masks + ((int64_t)t * n + i) * HW;
            dilate(mask, tolerances[t], mt);
            for (int64_t p = 0; p < HW; p++)
                area[t] += mt[p];
        }
    }
    for (int t = 0; t < N_TOL; t++)
        area[t] /= (double)n * HW;
    cvis_score *s;
    check(cvis_score_categorical(n, labels, &s), "score");
    static char store[N_METHODS + 2][N_TOL + 1][64];
    const char *cells[(N_METHODS + 2) * (N_TOL + 1)];
    cells[0] = "method";
    for (int t = 0; t < N_TOL; t++) {
        snprintf(store[N_METHODS + 1][t], 64, t ? "within %d px" : "on the object", tolerances[t]);
        cells[1 + t] = store[N_METHODS + 1][t];
    }
    char summary[1024];
    snprintf(summary, sizeof summary,
             "For %d test images, the share whose map has its maximum on the object (its mask is "
             "known), or within 4 or 8 pixels of it: the pointing game, with and without the "
             "tolerance it usually has.  The last row is the share of the image that the object "
             "(grown likewise) covers on average: what a map pointing at random would score.",
             n);
    text(d, "Pointing game", summary);
    if (!d->quiet)
        printf("    %-18s %-16s %-16s %-16s\n", "method", cells[1], cells[2], cells[3]);
    for (int r = 0; r < N_METHODS; r++) {
        cvis_explainer *e = make_explainer(d->m, &methods[r]);
        cvis_tensor *maps = run(e, x, s, methods[r].title);
        int hits[N_TOL] = {0};
        for (int i = 0; i < n; i++) {
            const float *map = cvis_tensor_data(maps) + i * HW;
            int64_t best = 0;
            for (int64_t p = 1; p < HW; p++)
                if (map[p] > map[best])
                    best = p;
            for (int t = 0; t < N_TOL; t++)
                hits[t] += masks[((int64_t)t * n + i) * HW + best];
        }
        snprintf(store[r][0], 64, "%s", methods[r].title);
        cells[(r + 1) * (N_TOL + 1)] = store[r][0];
        for (int t = 0; t < N_TOL; t++) {
            snprintf(store[r][t + 1], 64, "%.2f (%d/%d)", (double)hits[t] / n, hits[t], n);
            cells[(r + 1) * (N_TOL + 1) + t + 1] = store[r][t + 1];
        }
        if (!d->quiet)
            printf("    %-18s %-16s %-16s %-16s\n", store[r][0], store[r][1], store[r][2], store[r][3]);
        cvis_tensor_free(maps);
        cvis_explainer_free(e);
    }
    snprintf(store[N_METHODS][0], 64, "chance (area)");
    cells[(N_METHODS + 1) * (N_TOL + 1)] = store[N_METHODS][0];
    for (int t = 0; t < N_TOL; t++) {
        snprintf(store[N_METHODS][t + 1], 64, "%.2f", area[t]);
        cells[(N_METHODS + 1) * (N_TOL + 1) + t + 1] = store[N_METHODS][t + 1];
    }
    if (!d->quiet)
        printf("    %-18s %-16s %-16s %-16s\n", store[N_METHODS][0], store[N_METHODS][1],
               store[N_METHODS][2], store[N_METHODS][3]);
    check(cvis_report_add_table(d->report, N_METHODS + 2, N_TOL + 1, cells), "report");
    cvis_score_free(s);
    free(masks);
    free(labels);
    cvis_tensor_free(x);
}

int main(int argc, char **argv)
{
    const char *weights = NULL;
    demo d = {NULL, "build/demo", NULL, 0};
    int steps = 100, pointing = 100;
    for (int i = 1; i < argc; i++) {
        int more = i + 1 < argc;
        if (!strcmp(argv[i], "-w") && more)
            weights = argv[++i];
        else if (!strcmp(argv[i], "-o") && more)
            d.dir = argv[++i];
        else if (!strcmp(argv[i], "--steps") && more)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pointing") && more)
            pointing = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quiet"))
            d.quiet = 1;
        else {
            fprintf(stderr, "usage: demo -w WEIGHTS.npz [-o DIR] [--steps N] [--pointing N] "
                            "[--quiet]\n");
            return 2;
        }
    }
    if (!weights || steps < 1 || pointing < 1) {
        fprintf(stderr, "demo: give the trained weights with -w (see make demo)\n");
        return 2;
    }
    mkdir(d.dir, 0755);
    double t0 = now();
    check(tutorial_model(SHAPES_CLASSES, &d.m), "model");
    check(cvis_model_load_npz(d.m, weights), weights);
    check(cvis_report_new("libcvis: the tutorial, in pictures", &d.report), "report");
    layers(&d);
    filters(&d);
    cvis_image *originals[SHAPES_CLASSES] = {NULL};
    cvis_tensor *x = test_images(&d, originals);
    feature_maps(&d, x);
    maximization(&d, steps);
    explain_all(&d, x, originals);
    pointing_game(&d, pointing);
    char path[1024];
    snprintf(path, sizeof path, "%s/index.html", d.dir);
    check(cvis_report_save(d.report, path), path);
    printf("demo: %.1f s; pictures and the report are in %s/ (open %s)\n", now() - t0, d.dir, path);
    for (int c = 0; c < SHAPES_CLASSES; c++)
        cvis_image_free(originals[c]);
    cvis_tensor_free(x);
    cvis_report_free(d.report);
    cvis_model_free(d.m);
    return 0;
}
