/* Concurrency: 8 threads share one model, one score and two images, each
 * running a different method (or a prediction, or feature maps) 100 times
 * with its own explainer.  Every result must equal, bit for bit, the one a
 * serial run gave before the threads started.  `make check-tsan` runs this
 * under ThreadSanitizer.  THREAD_ITERATIONS in the environment overrides
 * the count. */
#include <pthread.h>

#include "check.h"

#define N_THREADS 8
#define SIDE 16

enum task {
    TASK_SALIENCY,
    TASK_SMOOTHGRAD,
    TASK_GRADCAM,
    TASK_GRADCAM_PP,
    TASK_SCORECAM,
    TASK_LAYERCAM,
    TASK_ACTMAX,
    TASK_PREDICT_AND_FEATURES,
    N_TASKS
};

static const char *task_names[N_TASKS] = {"saliency", "smoothgrad", "gradcam", "gradcam++",
                                          "faster scorecam", "layercam", "actmax",
                                          "predict + feature maps"};

/* What every thread shares, read-only while they run. */
static cvis_model *model;
static cvis_image *images[2];
static cvis_score *score;

/* A small CNN: two convolutions, pooling, a dense head of 4 classes. */
static cvis_model *small_model(void)
{
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(SIDE, SIDE, 3, &m));
    CHECK_OK(cvis_model_add_conv2d(m, "conv1", CVIS_PREV, 6, 3, 3, 1, CVIS_PADDING_SAME,
                                   CVIS_ACT_RELU, NULL));
    CHECK_OK(cvis_model_add_conv2d(m, "conv2", CVIS_PREV, 8, 3, 3, 1, CVIS_PADDING_SAME,
                                   CVIS_ACT_RELU, NULL));
    CHECK_OK(cvis_model_add_pool2d(m, "pool", CVIS_PREV, CVIS_POOL_MAX, 2, 2, 2, 2,
                                   CVIS_PADDING_VALID, NULL));
    CHECK_OK(cvis_model_add_flatten(m, "flatten", CVIS_PREV, NULL));
    CHECK_OK(cvis_model_add_dense(m, "logits", CVIS_PREV, 4, CVIS_ACT_SOFTMAX, NULL));
    CHECK_OK(cvis_model_init_weights(m, 7));
    return m;
}

static cvis_image *pattern_image(unsigned seed)
{
    cvis_image *img = NULL;
    CHECK_OK(cvis_image_new(SIDE + 4, SIDE + 2, 3, &img));
    uint8_t *p = cvis_image_data(img);
    for (int i = 0; i < (SIDE + 4) * (SIDE + 2) * 3; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
    return img;
}

static cvis_method task_method(enum task t)
{
    switch (t) {
    case TASK_SALIENCY: return CVIS_METHOD_SALIENCY;
    case TASK_SMOOTHGRAD: return CVIS_METHOD_SMOOTHGRAD;
    case TASK_GRADCAM: return CVIS_METHOD_GRADCAM;
    case TASK_GRADCAM_PP: return CVIS_METHOD_GRADCAM_PLUS_PLUS;
    case TASK_SCORECAM: return CVIS_METHOD_FASTER_SCORECAM;
    case TASK_LAYERCAM: return CVIS_METHOD_LAYERCAM;
    default: return CVIS_METHOD_ACTIVATION_MAXIMIZATION;
    }
}

/* One run of a task: its results, concatenated, in a new float array of
 * *n values; NULL on any failure (with the status in *st). */
static float *run_task(enum task t, cvis_explainer *e, cvis_status *st, int64_t *n)
{
    const cvis_image *both[2] = {images[0], images[1]};
    cvis_tensor *x = NULL, *outs[2] = {NULL, NULL};
    float *result = NULL;
    *n = 0;
    /* The shared images become the batch, resized to the model's input. */
    if ((*st = cvis_images_to_tensor(2, both, SIDE, SIDE, &x)) != CVIS_OK)
        return NULL;
    if (t == TASK_PREDICT_AND_FEATURES) {
        int layers[1] = {1};
        if ((*st = cvis_model_predict(model, x, &outs[0])) == CVIS_OK)
            *st = cvis_model_feature_maps(model, x, 1, layers, &outs[1]);
    } else {
        int nd;
        int64_t shape[CVIS_MAX_DIMS];
        const cvis_tensor *in = t == TASK_ACTMAX ? NULL : x;
        if ((*st = cvis_explainer_output_shape(e, in, &nd, shape)) == CVIS_OK &&
            (*st = cvis_tensor_create(nd, shape, &outs[0])) == CVIS_OK) {
            const cvis_score *s = score;
            *st = cvis_explainer_run(e, in, 1, &s, outs[0]);
        }
    }
    if (*st == CVIS_OK) {
        for (int k = 0; k < 2; k++)
            *n += outs[k] ? cvis_tensor_size(outs[k]) : 0;
        result = malloc((size_t)*n * sizeof(float));
        int64_t at = 0;
        for (int k = 0; result && k < 2; k++)
            if (outs[k]) {
                memcpy(result + at, cvis_tensor_data(outs[k]),
                       (size_t)cvis_tensor_size(outs[k]) * sizeof(float));
                at += cvis_tensor_size(outs[k]);
            }
    }
    cvis_tensor_free(outs[0]);
    cvis_tensor_free(outs[1]);
    cvis_tensor_free(x);
    return result;
}

static cvis_explainer *task_explainer(enum task t)
{
    cvis_explainer *e = NULL;
    if (t == TASK_PREDICT_AND_FEATURES)
        return NULL;
    if (cvis_explainer_new(model, task_method(t), &e) != CVIS_OK)
        return NULL;
    /* kept short: the point is many runs side by side, not long ones */
    cvis_explainer_set_int(e, CVIS_OPT_SMOOTH_SAMPLES, t == TASK_SMOOTHGRAD ? 4 : 0);
    cvis_explainer_set_int(e, CVIS_OPT_SEED, 11);
    cvis_explainer_set_int(e, CVIS_OPT_MAX_N, 4);
    cvis_explainer_set_int(e, CVIS_OPT_STEPS, 5);
    cvis_explainer_set_float(e, CVIS_OPT_INPUT_MAX, 1.0);
    if (t == TASK_ACTMAX)
        cvis_explainer_set_int(e, CVIS_OPT_LOGITS, 1);
    return e;
}

struct worker {
    enum task task;
    int iterations;
    const float *expected;
    int64_t n_expected;
    int runs, mismatches, failures;
    char first_error[160];
};

static void *work(void *arg)
{
    struct worker *w = arg;
    cvis_explainer *e = task_explainer(w->task);
    for (int i = 0; i < w->iterations; i++) {
        cvis_status st;
        int64_t n;
        float *got = run_task(w->task, e, &st, &n);
        w->runs++;
        if (!got) {
            if (!w->failures++)
                snprintf(w->first_error, sizeof w->first_error, "%s", cvis_last_error());
        } else if (n != w->n_expected || memcmp(got, w->expected, (size_t)n * sizeof(float))) {
            w->mismatches++;
        }
        free(got);
    }
    cvis_explainer_free(e);
    return NULL;
}

static void test_shared_model(void)
{
    const char *env = getenv("THREAD_ITERATIONS");
    int iterations = env ? atoi(env) : 100;
    model = small_model();
    images[0] = pattern_image(1);
    images[1] = pattern_image(2);
    int idx = 2;
    CHECK_OK(cvis_score_categorical(1, &idx, &score));

    /* serial reference runs */
    float *expected[N_TASKS];
    int64_t n_expected[N_TASKS];
    for (int t = 0; t < N_TASKS; t++) {
        cvis_explainer *e = task_explainer((enum task)t);
        cvis_status st;
        expected[t] = run_task((enum task)t, e, &st, &n_expected[t]);
        if (!expected[t])
            fprintf(stderr, "%s: %s\n", task_names[t], cvis_last_error());
        CHECK(expected[t] != NULL && n_expected[t] > 0);
        cvis_explainer_free(e);
    }

    struct worker workers[N_THREADS];
    pthread_t threads[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        enum task t = (enum task)(i % N_TASKS);
        workers[i] = (struct worker){t, iterations, expected[t], n_expected[t], 0, 0, 0, ""};
        CHECK(pthread_create(&threads[i], NULL, work, &workers[i]) == 0);
    }
    int runs = 0;
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(threads[i], NULL);
        runs += workers[i].runs;
        if (workers[i].failures || workers[i].mismatches)
            fprintf(stderr, "thread %d (%s): %d failures, %d results unlike the serial one %s\n",
                    i, task_names[workers[i].task], workers[i].failures, workers[i].mismatches,
                    workers[i].first_error);
        CHECK(workers[i].runs == iterations);
        CHECK(workers[i].failures == 0);
        CHECK(workers[i].mismatches == 0);
    }
    printf("test_threads: %d threads, %d runs in all, each equal to its serial run\n", N_THREADS,
           runs);
    for (int t = 0; t < N_TASKS; t++)
        free(expected[t]);
    cvis_score_free(score);
    cvis_image_free(images[0]);
    cvis_image_free(images[1]);
    cvis_model_free(model);
}

TEST_MAIN(test_shared_model())
