/* Trains a small CNN on Fashion-MNIST (examples/fashion.h reads Debian's
 * dataset-fashion-mnist package) with libcvis's own passes and Adam, and
 * saves the weights as NPZ.
 *
 *   train_fashion [--data DIR] [-o WEIGHTS.npz] [--train N] [--test N]
 *                 [--epochs E] [--batch B] [--lr LR] [--seed S] [--quiet]
 *
 * The network, on 28x28x1 images scaled to [0,1]:
 *   Conv2D(16,3,relu,same) MaxPool2 Conv2D(32,3,relu,same) MaxPool2
 *   Flatten Dense(64,relu) Dense(10,softmax)
 *
 * Prints, per epoch, the mean loss, the training accuracy (of the batches
 * as they were trained), the test accuracy and the time since the start;
 * the last line is "test accuracy: X".  A missing or corrupt data file
 * gives a one-line message and exit status 1; bad options give status 2. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cvis.h"
#define EXAMPLE_NAME "train_fashion"
#include "example.h"
#include "fashion.h"

/* splitmix64, for the shuffle */
static uint64_t next_random(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Images idx[0..n) of s as floats in [0,1] into x, their labels into labels. */
static void fill_batch(const fashion_set *s, const int *idx, int n, float *x, int *labels)
{
    const int per = FASHION_SIZE * FASHION_SIZE;
    for (int i = 0; i < n; i++) {
        const uint8_t *src = s->images + (size_t)idx[i] * per;
        for (int j = 0; j < per; j++)
            x[(size_t)i * per + j] = src[j] * (1.0f / 255.0f);
        labels[i] = s->labels[idx[i]];
    }
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* Accuracy of m on the first n images of s, in batches of `batch`. */
static double evaluate(const cvis_model *m, const fashion_set *s, int n, int batch)
{
    float *x = xmalloc(sizeof *x * (size_t)batch * FASHION_SIZE * FASHION_SIZE);
    int *idx = xmalloc(sizeof *idx * (size_t)batch), *labels = xmalloc(sizeof *labels * (size_t)batch);
    int correct = 0;
    for (int start = 0; start < n; start += batch) {
        int k = n - start < batch ? n - start : batch;
        for (int i = 0; i < k; i++)
            idx[i] = start + i;
        fill_batch(s, idx, k, x, labels);
        int64_t shape[4] = {k, FASHION_SIZE, FASHION_SIZE, 1};
        cvis_tensor *xb, *p;
        check(cvis_tensor_wrap(x, 4, shape, &xb), "test batch");
        check(cvis_model_predict(m, xb, &p), "predict");
        for (int i = 0; i < k; i++)
            correct += argmax(cvis_tensor_data(p) + i * FASHION_CLASSES, FASHION_CLASSES) == labels[i];
        cvis_tensor_free(p);
        cvis_tensor_free(xb);
    }
    free(x);
    free(idx);
    free(labels);
    return (double)correct / n;
}

/* A positive int option, or exit 2. */
static int positive(const char *opt, const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 1 || n > 100000000) {
        fprintf(stderr, "train_fashion: %s wants a positive integer, not '%s'\n", opt, v);
        exit(2);
    }
    return (int)n;
}

static double positive_real(const char *opt, const char *v)
{
    char *end;
    double x = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || !(x > 0) || x > 1e6) {
        fprintf(stderr, "train_fashion: %s wants a positive number, not '%s'\n", opt, v);
        exit(2);
    }
    return x;
}

static uint64_t seed_value(const char *opt, const char *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end != '\0' || errno) {
        fprintf(stderr, "train_fashion: %s wants a non-negative integer, not '%s'\n", opt, v);
        exit(2);
    }
    return (uint64_t)x;
}

int main(int argc, char **argv)
{
    const char *out = "fashion_model.npz", *dir = NULL;
    int n_train = 0, n_test = 0, epochs = 2, batch = 32, quiet = 0;
    double lr = 1e-3;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "-o") && more)
            out = argv[++i];
        else if (!strcmp(a, "--data") && more)
            dir = argv[++i];
        else if (!strcmp(a, "--train") && more)
            n_train = positive(a, argv[++i]);
        else if (!strcmp(a, "--test") && more)
            n_test = positive(a, argv[++i]);
        else if (!strcmp(a, "--epochs") && more)
            epochs = positive(a, argv[++i]);
        else if (!strcmp(a, "--batch") && more)
            batch = positive(a, argv[++i]);
        else if (!strcmp(a, "--lr") && more)
            lr = positive_real(a, argv[++i]);
        else if (!strcmp(a, "--seed") && more)
            seed = seed_value(a, argv[++i]);
        else if (!strcmp(a, "--quiet"))
            quiet = 1;
        else {
            fprintf(stderr, "usage: train_fashion [--data DIR] [-o WEIGHTS.npz] [--train N] "
                            "[--test N] [--epochs E] [--batch B] [--lr LR] [--seed S] [--quiet]\n"
                            "  DIR defaults to %s\n", FASHION_DEFAULT_DIR);
            return 2;
        }
    }
    char err[4400];
    /* where the data comes from when it is not there */
    const char *hint = dir ? "" : " (Debian's dataset-fashion-mnist package: make test-deps)";
    fashion_set train, test;
    if (fashion_load(dir, "train", &train, err, sizeof err)) {
        fprintf(stderr, "train_fashion: %s%s\n", err, hint);
        return 1;
    }
    if (fashion_load(dir, "t10k", &test, err, sizeof err)) {
        fprintf(stderr, "train_fashion: %s%s\n", err, hint);
        fashion_free(&train);
        return 1;
    }
    if (n_train == 0 || n_train > train.n)
        n_train = train.n;
    if (n_test == 0 || n_test > test.n)
        n_test = test.n;

    cvis_model *m;
    check(fashion_model(&m), "model");
    check(cvis_model_init_weights(m, seed), "weights");
    cvis_pass *p;
    check(cvis_pass_new(m, &p), "pass");
    check(cvis_pass_set_int(p, CVIS_PASS_LOGITS, 1), "pass");
    check(cvis_pass_set_int(p, CVIS_PASS_WEIGHT_GRADS, 1), "pass");
    check(cvis_pass_set_int(p, CVIS_PASS_INPUT_GRAD, 0), "pass");
    cvis_optimizer *opt;
    check(cvis_optimizer_new(CVIS_OPTIMIZER_ADAM, lr, &opt), "optimizer");

    float *xbuf = xmalloc(sizeof *xbuf * (size_t)batch * FASHION_SIZE * FASHION_SIZE);
    float *dbuf = xmalloc(sizeof *dbuf * (size_t)batch * FASHION_CLASSES);
    int *labels = xmalloc(sizeof *labels * (size_t)batch);
    int *order = xmalloc(sizeof *order * (size_t)n_train);
    for (int i = 0; i < n_train; i++)
        order[i] = i;
    uint64_t rng = seed * 7919 + 17;

    double t0 = now(), acc = 0;
    printf("training a small CNN on %d Fashion-MNIST images (test on %d), %d epochs, batch %d, "
           "Adam %.3g\n", n_train, n_test, epochs, batch, lr);
    fflush(stdout);
    for (int ep = 1; ep <= epochs; ep++) {
        for (int i = n_train - 1; i > 0; i--) {
            int j = (int)(next_random(&rng) % (uint64_t)(i + 1));
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        double loss_sum = 0;
        int seen = 0, correct = 0, batches = 0;
        /* every image once per epoch: the last batch may be smaller */
        for (int start = 0; start < n_train; start += batch) {
            int k = n_train - start < batch ? n_train - start : batch;
            fill_batch(&train, order + start, k, xbuf, labels);
            int64_t xs[4] = {k, FASHION_SIZE, FASHION_SIZE, 1}, ds[2] = {k, FASHION_CLASSES};
            cvis_tensor *x, *d;
            check(cvis_tensor_wrap(xbuf, 4, xs, &x), "batch");
            check(cvis_tensor_wrap(dbuf, 2, ds, &d), "batch");
            check(cvis_pass_forward(p, x), "forward");
            const cvis_tensor *logits = cvis_pass_output(p, 0);
            double loss;
            check(cvis_softmax_cross_entropy(logits, labels, &loss, d), "loss");
            for (int i = 0; i < k; i++)
                correct += argmax(cvis_tensor_data(logits) + i * FASHION_CLASSES, FASHION_CLASSES) ==
                           labels[i];
            const cvis_tensor *dd = d;
            check(cvis_pass_backward(p, 1, &dd), "backward");
            check(cvis_optimizer_step_model(opt, m, p), "step");
            cvis_tensor_free(x);
            cvis_tensor_free(d);
            loss_sum += loss * k;
            seen += k;
            if (!quiet && (++batches % 50 == 0 || seen == n_train))
                fprintf(stderr, "\repoch %d: %5d/%d images, loss %.4f, %.1f s", ep, seen, n_train,
                        loss_sum / seen, now() - t0);
        }
        if (!quiet)
            fprintf(stderr, "\n");
        acc = evaluate(m, &test, n_test, 250);
        printf("epoch %d: loss %.4f, train accuracy %.4f, test accuracy %.4f (%.1f s)\n", ep,
               loss_sum / seen, (double)correct / seen, acc, now() - t0);
        fflush(stdout);
    }
    check(cvis_model_save_npz(m, out), out);
    printf("saved %s\ntest accuracy: %.4f\n", out, acc);

    free(xbuf);
    free(dbuf);
    free(labels);
    free(order);
    cvis_optimizer_free(opt);
    cvis_pass_free(p);
    cvis_model_free(m);
    fashion_free(&train);
    fashion_free(&test);
    return 0;
}
