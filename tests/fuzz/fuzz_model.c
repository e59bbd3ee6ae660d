/* Fuzz target: a whole explanation on a fuzzed ONNX model.  Loads it, and
 * when it is small enough to run quickly, predicts on a fixed input and
 * runs Grad-CAM with one categorical score per output.  Every step may
 * fail, but only cleanly, and what succeeds keeps its promises: outputs of
 * the shapes the model reported, maps finite and in [0, 1]. */
#include <math.h>
#include <string.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FREE_SIDE 8         /* height and width given to a free input size */
#define FREE_CHANNELS 3
#define MAX_SIDE 64
#define MAX_CHANNELS 16
#define WORK_BUDGET 2e7     /* rough multiply-adds of one forward pass */

/* How far inputs got, printed at exit when FUZZ_STATS is set: a fuzzer
 * whose inputs never reach Grad-CAM tests only the loader. */
static long n_inputs, n_loaded, n_run, n_predicted, n_explained;

static void print_stats(void)
{
    fprintf(stderr, "fuzz_model: %ld inputs, %ld loaded, %ld small enough to run, %ld predicted, "
            "%ld explained\n", n_inputs, n_loaded, n_run, n_predicted, n_explained);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_setup(256u << 20);
    if (getenv("FUZZ_STATS"))
        atexit(print_stats);
    return 0;
}

/* A rough count of one forward pass's multiply-adds: for each layer, its
 * output size times its weights per output channel.  Sizes the model
 * leaves free count as FREE_SIDE. */
static double forward_work(const cvis_model *m)
{
    double work = 0;
    for (int l = 0; l < cvis_model_layer_count(m); l++) {
        int ndim = 0;
        int64_t shape[CVIS_MAX_DIMS];
        if (cvis_model_layer_output_shape(m, l, &ndim, shape) != CVIS_OK)
            return INFINITY;
        double out = 1;
        for (int d = 0; d < ndim; d++)
            out *= shape[d] > 0 ? (double)shape[d] : FREE_SIDE;
        double weights = 0;
        for (int k = 0; k < cvis_model_weight_count(m, l); k++) {
            cvis_tensor *w = NULL;
            if (cvis_model_get_weight(m, l, k, &w) != CVIS_OK)
                return INFINITY;
            weights += (double)cvis_tensor_size(w);
            cvis_tensor_free(w);
        }
        double per_channel = ndim > 0 && shape[ndim - 1] > 0 ? weights / (double)shape[ndim - 1]
                                                             : weights;
        work += out * (per_channel > 1 ? per_channel : 1);
    }
    return work;
}

static void run(const cvis_model *m)
{
    int64_t hwc[3];
    FUZZ_EXPECT(cvis_model_input_shape(m, hwc) == CVIS_OK);
    int64_t shape[4] = {1, hwc[0] > 0 ? hwc[0] : FREE_SIDE, hwc[1] > 0 ? hwc[1] : FREE_SIDE,
                        hwc[2] > 0 ? hwc[2] : FREE_CHANNELS};
    if (shape[1] > MAX_SIDE || shape[2] > MAX_SIDE || shape[3] > MAX_CHANNELS)
        return;
    cvis_tensor *x = NULL;
    FUZZ_EXPECT(cvis_tensor_create(4, shape, &x) == CVIS_OK);
    float *xd = cvis_tensor_data(x);
    for (int64_t i = 0; i < cvis_tensor_size(x); i++)
        xd[i] = (float)((i * 37) % 101) / 100.0f;

    int n_out = cvis_model_output_count(m);
    cvis_tensor *outs[8] = {NULL};
    if (n_out <= 8) {
        cvis_status st = cvis_model_predict_all(m, x, n_out, outs);
        n_predicted += st == CVIS_OK;
        if (st != CVIS_OK) {
            FUZZ_EXPECT_FAILED_CLEANLY(st);
            for (int k = 0; k < n_out; k++)
                FUZZ_EXPECT(outs[k] == NULL);
        }
        for (int k = 0; k < n_out; k++)
            cvis_tensor_free(outs[k]);
    }

    cvis_explainer *e = NULL;
    cvis_score *score = NULL;
    FUZZ_EXPECT(cvis_explainer_new(m, CVIS_METHOD_GRADCAM, &e) == CVIS_OK);
    FUZZ_EXPECT(cvis_score_categorical(1, (int[]){0}, &score) == CVIS_OK);
    const cvis_score *scores[8];
    for (int k = 0; k < 8; k++)
        scores[k] = score;
    int ndim = 0;
    int64_t mshape[CVIS_MAX_DIMS];
    cvis_status st = cvis_explainer_output_shape(e, x, &ndim, mshape);
    if (st == CVIS_OK && n_out <= 8) {
        cvis_tensor *maps = NULL;
        FUZZ_EXPECT(cvis_tensor_create(ndim, mshape, &maps) == CVIS_OK);
        float *md = cvis_tensor_data(maps);
        for (int64_t i = 0; i < cvis_tensor_size(maps); i++)
            md[i] = -7.0f;
        st = cvis_explainer_run(e, x, n_out, scores, maps);
        if (st == CVIS_OK) {
            n_explained++;
            for (int64_t i = 0; i < cvis_tensor_size(maps); i++)
                FUZZ_EXPECT(isfinite(md[i]) && md[i] >= 0.0f && md[i] <= 1.0f);
            FUZZ_EXPECT(cvis_explainer_layer(e) >= 0);
        } else {
            FUZZ_EXPECT_FAILED_CLEANLY(st);
            for (int64_t i = 0; i < cvis_tensor_size(maps); i++)
                FUZZ_EXPECT(md[i] == -7.0f); /* a failed run leaves `out` untouched */
        }
        cvis_tensor_free(maps);
    } else if (st != CVIS_OK) {
        FUZZ_EXPECT_FAILED_CLEANLY(st);
    }
    cvis_score_free(score);
    cvis_explainer_free(e);
    cvis_tensor_free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cvis_model *m = NULL;
    n_inputs++;
    cvis_status st = cvis_model_load_onnx_memory(data, size, &m);
    if (st != CVIS_OK) {
        FUZZ_EXPECT_FAILED_CLEANLY(st);
        FUZZ_EXPECT(m == NULL);
        return 0;
    }
    n_loaded++;
    if (forward_work(m) <= WORK_BUDGET) {
        n_run++;
        run(m);
    }
    cvis_model_free(m);
    return 0;
}
