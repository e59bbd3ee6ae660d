/* Trains the tutorial's network (Conv2D 8x7, 8x5, 8x3, Dense 128, Dense 3)
 * on the shapes dataset (examples/shapes.h) with libcvis's own autodiff and
 * Adam, and saves the weights as NPZ and the model as ONNX (the same path
 * with .onnx).
 *
 *   train_shapes [-o WEIGHTS.npz] [--train N] [--test N] [--epochs E]
 *                [--batch B] [--lr LR] [--seed S] [--quiet]
 *
 * Prints, per epoch, the mean loss, the training accuracy and the test
 * accuracy; the last line is "test accuracy: X". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cvis.h"
#define EXAMPLE_NAME "train_shapes"
#include "example.h"
#include "shapes.h"
#include "tutorial_model.h"

/* Fills x (n images) with images idx[0..n) of dataset `seed`; labels too. */
static void fill_batch(uint64_t seed, const uint64_t *idx, int n, cvis_tensor *x, int *labels)
{
    const int64_t per = SHAPES_SIZE * SHAPES_SIZE * 3;
    for (int i = 0; i < n; i++)
        labels[i] = shapes_image(seed, idx[i], cvis_tensor_data(x) + i * per, NULL);
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* Accuracy of m on images [0, n) of dataset `seed`. */
static double evaluate(cvis_model *m, uint64_t seed, int n, int batch)
{
    int64_t shape[4] = {batch, SHAPES_SIZE, SHAPES_SIZE, 3};
    cvis_tensor *x;
    check(cvis_tensor_create(4, shape, &x), "batch");
    uint64_t *idx = malloc(sizeof *idx * (size_t)batch);
    int *labels = malloc(sizeof *labels * (size_t)batch), correct = 0;
    for (int start = 0; start < n; start += batch) {
        int k = n - start < batch ? n - start : batch;
        for (int i = 0; i < k; i++)
            idx[i] = (uint64_t)(start + i);
        fill_batch(seed, idx, k, x, labels);
        cvis_tensor *xb, *p;
        int64_t s[4] = {k, SHAPES_SIZE, SHAPES_SIZE, 3};
        check(cvis_tensor_wrap(cvis_tensor_data(x), 4, s, &xb), "batch");
        check(cvis_model_predict(m, xb, &p), "predict");
        for (int i = 0; i < k; i++)
            correct += argmax(cvis_tensor_data(p) + i * SHAPES_CLASSES, SHAPES_CLASSES) == labels[i];
        cvis_tensor_free(p);
        cvis_tensor_free(xb);
    }
    free(idx);
    free(labels);
    cvis_tensor_free(x);
    return (double)correct / n;
}

int main(int argc, char **argv)
{
    const char *out = "tutorial_model.npz";
    /* fresh images, each seen once, in small batches: measured to reach 96%
     * on the test images (see docs/training.md) */
    int n_train = 8000, n_test = 600, epochs = 1, batch = 8, quiet = 0;
    double lr = 5e-4;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "-o") && more)
            out = argv[++i];
        else if (!strcmp(a, "--train") && more)
            n_train = atoi(argv[++i]);
        else if (!strcmp(a, "--test") && more)
            n_test = atoi(argv[++i]);
        else if (!strcmp(a, "--epochs") && more)
            epochs = atoi(argv[++i]);
        else if (!strcmp(a, "--batch") && more)
            batch = atoi(argv[++i]);
        else if (!strcmp(a, "--lr") && more)
            lr = atof(argv[++i]);
        else if (!strcmp(a, "--seed") && more)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--quiet"))
            quiet = 1;
        else {
            fprintf(stderr, "usage: train_shapes [-o WEIGHTS.npz] [--train N] [--test N] "
                            "[--epochs E] [--batch B] [--lr LR] [--seed S] [--quiet]\n");
            return 2;
        }
    }
    if (n_train < 1 || n_test < 1 || epochs < 1 || batch < 1) {
        fprintf(stderr, "train_shapes: sizes must be positive\n");
        return 2;
    }
    cvis_model *m;
    check(tutorial_model(SHAPES_CLASSES, &m), "model");
    check(cvis_model_init_weights(m, seed), "weights");
    cvis_pass *p;
    check(cvis_pass_new(m, &p), "pass");
    check(cvis_pass_set_int(p, CVIS_PASS_LOGITS, 1), "pass");
    check(cvis_pass_set_int(p, CVIS_PASS_WEIGHT_GRADS, 1), "pass");
    check(cvis_pass_set_int(p, CVIS_PASS_INPUT_GRAD, 0), "pass");
    cvis_optimizer *opt;
    check(cvis_optimizer_new(CVIS_OPTIMIZER_ADAM, lr, &opt), "optimizer");
    int64_t xs[4] = {batch, SHAPES_SIZE, SHAPES_SIZE, 3}, ds[2] = {batch, SHAPES_CLASSES};
    cvis_tensor *x, *d;
    check(cvis_tensor_create(4, xs, &x), "batch");
    check(cvis_tensor_create(2, ds, &d), "batch");
    uint64_t *order = malloc(sizeof *order * (size_t)n_train);
    int *labels = malloc(sizeof *labels * (size_t)batch);
    for (int i = 0; i < n_train; i++)
        order[i] = (uint64_t)i;
    shapes_rng shuffle = {seed * 7919};
    uint64_t train_seed = seed * 1000 + 1, test_seed = seed * 1000 + 2;
    double t0 = now();
    printf("training the tutorial network on %d shapes images, %d epoch%s, batch %d, Adam %.3g\n",
           n_train, epochs, epochs == 1 ? "" : "s", batch, lr);
    for (int ep = 1; ep <= epochs; ep++) {
        for (int i = n_train - 1; i > 0; i--) {
            int j = (int)(shapes_uniform(&shuffle) * (i + 1));
            uint64_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        double loss_sum = 0;
        int seen = 0, correct = 0;
        for (int start = 0; start + batch <= n_train; start += batch) {
            fill_batch(train_seed, order + start, batch, x, labels);
            check(cvis_pass_forward(p, x), "forward");
            const cvis_tensor *logits = cvis_pass_output(p, 0);
            double loss;
            check(cvis_softmax_cross_entropy(logits, labels, &loss, d), "loss");
            for (int i = 0; i < batch; i++)
                correct += argmax(cvis_tensor_data(logits) + i * SHAPES_CLASSES, SHAPES_CLASSES) ==
                           labels[i];
            const cvis_tensor *dd = d;
            check(cvis_pass_backward(p, 1, &dd), "backward");
            check(cvis_optimizer_step_model(opt, m, p), "step");
            loss_sum += loss * batch;
            seen += batch;
            if (!quiet)
                fprintf(stderr, "\repoch %d: %5d/%d images, loss %.4f, accuracy %.3f, %.1f s", ep,
                        seen, n_train, loss_sum / seen, (double)correct / seen, now() - t0);
        }
        if (!quiet)
            fprintf(stderr, "\n");
        double test = evaluate(m, test_seed, n_test, batch);
        printf("epoch %d: loss %.4f, train accuracy %.3f, test accuracy %.3f (%.1f s)\n", ep,
               loss_sum / seen, (double)correct / seen, test, now() - t0);
        fflush(stdout);
    }
    double acc = evaluate(m, test_seed, n_test, batch);
    /* the weights as NPZ, and the whole model as ONNX beside them, for the
     * cvis command and any other tool */
    char onnx[4096];
    size_t len = strlen(out);
    if (len > 4 && !strcmp(out + len - 4, ".npz"))
        len -= 4;
    snprintf(onnx, sizeof onnx, "%.*s.onnx", (int)len, out);
    check(cvis_model_save_npz(m, out), out);
    check(cvis_model_save_onnx(m, onnx), onnx);
    printf("saved %s and %s\ntest accuracy: %.4f\n", out, onnx, acc);
    free(order);
    free(labels);
    cvis_tensor_free(x);
    cvis_tensor_free(d);
    cvis_optimizer_free(opt);
    cvis_pass_free(p);
    cvis_model_free(m);
    return 0;
}
