/* The tutorial, step by step, in C: the layers and their filters, feature
 * maps of one and of three layers, activation maximization of filter 7 of
 * the third convolution, then vanilla saliency, SmoothGrad, Grad-CAM,
 * Grad-CAM++, Score-CAM, Faster Score-CAM and Layer-CAM on three images.
 * Every result is written as a .npy file (load it with numpy.load).
 *
 *   tutorial [-w WEIGHTS.npz] [-o DIR] [--steps N]
 *
 * Without weights the network has seeded random weights; the three images
 * are made by the program (a disc, a square and a triangle on noise). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cvis.h"
#include "tutorial_model.h"

static const char *out_dir = "tutorial_out";

static int check(cvis_status st, const char *what)
{
    if (st != CVIS_OK) {
        fprintf(stderr, "tutorial: %s: %s\n", what, cvis_last_error());
        exit(1);
    }
    return 0;
}

static void print_shape(const cvis_tensor *t, int none_batch)
{
    printf("(");
    for (int i = 0; i < cvis_tensor_ndim(t); i++) {
        if (i == 0 && none_batch)
            printf("None");
        else
            printf("%lld", (long long)cvis_tensor_dim(t, i));
        printf("%s", i + 1 < cvis_tensor_ndim(t) ? ", " : (cvis_tensor_ndim(t) == 1 ? "," : ""));
    }
    printf(")");
}

static void save(const cvis_tensor *t, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.npy", out_dir, name);
    check(cvis_tensor_save_npy(t, path), path);
    printf("    -> %s\n", path);
}

/* Three 128x128 RGB images in [0,1]: a disc, a square, a triangle. */
static cvis_tensor *make_images(void)
{
    int64_t shape[4] = {3, 128, 128, 3};
    cvis_tensor *x;
    check(cvis_tensor_create(4, shape, &x), "images");
    float *d = cvis_tensor_data(x);
    unsigned s = 7;
    for (int b = 0; b < 3; b++)
        for (int y = 0; y < 128; y++)
            for (int xx = 0; xx < 128; xx++) {
                int in;
                float dy = y - 64.0f, dx = xx - 64.0f;
                if (b == 0)
                    in = dx * dx + dy * dy < 30 * 30;
                else if (b == 1)
                    in = fabsf(dx) < 27 && fabsf(dy) < 27;
                else
                    in = dy > -30 && dy < 30 && fabsf(dx) < (dy + 30) * 0.6f;
                for (int c = 0; c < 3; c++) {
                    s = s * 1103515245u + 12345u;
                    float noise = ((s >> 9) & 0xff) / 255.0f * 0.3f;
                    float color = c == b ? 0.9f : 0.2f;
                    d[((b * 128 + y) * 128 + xx) * 3 + c] = in ? color : noise;
                }
            }
    return x;
}

static int progress(void *user, int step, int total, int n, const float *values)
{
    (void)user;
    int width = 30, done = width * step / total;
    fprintf(stderr, "\r[%.*s%.*s] %3d/%d", done, "##############################", width - done,
            "..............................", step, total);
    if (n >= 3)
        fprintf(stderr, "  score %.4g  tv %.4g  norm %.4g", values[0], values[n - 2], values[n - 1]);
    if (step == total)
        fprintf(stderr, "\n");
    return 0;
}

static void explain(cvis_model *m, cvis_method method, const char *name, const cvis_tensor *x,
                    const cvis_score *score, int max_n)
{
    cvis_explainer *e;
    check(cvis_explainer_new(m, method, &e), name);
    if (max_n > 0)
        check(cvis_explainer_set_int(e, CVIS_OPT_MAX_N, max_n), "max_N");
    int nd;
    int64_t shape[CVIS_MAX_DIMS];
    check(cvis_explainer_output_shape(e, x, &nd, shape), name);
    cvis_tensor *maps;
    check(cvis_tensor_create(nd, shape, &maps), name);
    check(cvis_explainer_run(e, x, 1, &score, maps), name);
    printf("[*] %s: ", name);
    print_shape(maps, 0);
    if (cvis_explainer_layer(e) >= 0)
        printf(" at layer %s", cvis_model_layer_name(m, cvis_explainer_layer(e)));
    printf("\n");
    save(maps, name);
    cvis_tensor_free(maps);
    cvis_explainer_free(e);
}

int main(int argc, char **argv)
{
    const char *weights = NULL;
    int steps = 100;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-w") && i + 1 < argc)
            weights = argv[++i];
        else if (!strcmp(argv[i], "-o") && i + 1 < argc)
            out_dir = argv[++i];
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: tutorial [-w WEIGHTS.npz] [-o DIR] [--steps N]\n");
            return 2;
        }
    }
    mkdir(out_dir, 0755);
    cvis_model *m;
    check(tutorial_model(3, &m), "building the model");
    if (weights)
        check(cvis_model_load_npz(m, weights), weights);

    printf("== Filters of the convolutional layers\n");
    for (int i = 0; i < cvis_model_layer_count(m); i++) {
        const char *name = cvis_model_layer_name(m, i);
        printf("[*] layer: %s (%s)", name, cvis_model_layer_type(m, i));
        if (!strstr(name, "conv")) {
            printf(" No\n");
            continue;
        }
        cvis_tensor *f, *b, *norm;
        check(cvis_model_get_filters(m, i, &f, &b), "filters");
        check(cvis_model_get_filters_normalized(m, i, &norm), "filters");
        int64_t os[CVIS_MAX_DIMS];
        int ond;
        cvis_model_layer_output_shape(m, i, &ond, os);
        printf("\n[**] id: %d, layer.name: %s, filters_weights.shape: ", i, name);
        print_shape(f, 0);
        printf(", biases_weights.shape: ");
        print_shape(b, 0);
        printf("\n[**] layer.output.shape: (None, %lld, %lld, %lld)\n", (long long)os[0],
               (long long)os[1], (long long)os[2]);
        char file[256];
        snprintf(file, sizeof file, "filters_%s", name);
        save(norm, file);
        cvis_tensor_free(f);
        cvis_tensor_free(b);
        cvis_tensor_free(norm);
    }

    cvis_tensor *x = make_images();
    printf("== Feature maps\n");
    {
        int64_t one[4] = {1, 128, 128, 3};
        cvis_tensor *img, *fm[3];
        check(cvis_tensor_wrap(cvis_tensor_data(x), 4, one, &img), "image");
        int first = 0, all[3] = {0, 1, 2};
        check(cvis_model_feature_maps(m, img, 1, &first, fm), "feature maps");
        printf("[*] feature_maps_1.shape: ");
        print_shape(fm[0], 0);
        printf("\n");
        save(fm[0], "feature_maps_1");
        cvis_tensor_free(fm[0]);
        check(cvis_model_feature_maps(m, img, 3, all, fm), "feature maps");
        for (int k = 0; k < 3; k++) {
            char file[64];
            snprintf(file, sizeof file, "feature_maps_2_%d", k);
            printf("[*] feature_maps_2[%d].shape: ", k);
            print_shape(fm[k], 0);
            printf("\n");
            save(fm[k], file);
            cvis_tensor_free(fm[k]);
        }
        cvis_tensor_free(img);
    }

    printf("== Activation maximization: filter 7 of layer 2 (%s)\n", cvis_model_layer_name(m, 2));
    {
        int filter = 7;
        cvis_score *s;
        check(cvis_score_categorical(1, &filter, &s), "score");
        cvis_explainer *e;
        check(tutorial_maximization(m, 2, steps, &e), "explainer");
        check(cvis_explainer_set_progress(e, progress, NULL), "progress");
        int nd;
        int64_t shape[CVIS_MAX_DIMS];
        check(cvis_explainer_output_shape(e, NULL, &nd, shape), "shape");
        cvis_tensor *act;
        check(cvis_tensor_create(nd, shape, &act), "activations");
        check(cvis_explainer_run(e, NULL, 1, (const cvis_score *const *)&s, act), "maximization");
        printf("[*] activations.shape: ");
        print_shape(act, 0);
        printf("\n");
        save(act, "activations");
        cvis_tensor_free(act);
        cvis_explainer_free(e);
        cvis_score_free(s);
    }

    printf("== Why: three images, classes 0, 1, 2\n");
    int classes[3] = {0, 1, 2};
    cvis_score *score;
    check(cvis_score_categorical(3, classes, &score), "score");
    explain(m, CVIS_METHOD_SALIENCY, "vanilla_saliency", x, score, 0);
    explain(m, CVIS_METHOD_SMOOTHGRAD, "smoothgrad", x, score, 0);
    explain(m, CVIS_METHOD_GRADCAM, "gradcam", x, score, 0);
    explain(m, CVIS_METHOD_GRADCAM_PLUS_PLUS, "gradcam_plus_plus", x, score, 0);
    explain(m, CVIS_METHOD_SCORECAM, "scorecam", x, score, 0);
    explain(m, CVIS_METHOD_FASTER_SCORECAM, "faster_scorecam", x, score, 8);
    explain(m, CVIS_METHOD_LAYERCAM, "layercam", x, score, 0);
    cvis_score_free(score);
    cvis_tensor_free(x);
    cvis_model_free(m);
    printf("done: every result is a .npy file under %s/\n", out_dir);
    return 0;
}
