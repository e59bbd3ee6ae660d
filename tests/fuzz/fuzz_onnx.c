/* Fuzz target: the ONNX reader and importer (cvis_model_load_onnx_memory),
 * then every read-only question a caller may ask of the model it gives. */
#include <math.h>
#include <string.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_setup(256u << 20);
    return 0;
}

static void walk(const cvis_model *m)
{
    int n = cvis_model_layer_count(m);
    FUZZ_EXPECT(n >= 1);
    for (int l = 0; l < n; l++) {
        const char *name = cvis_model_layer_name(m, l), *type = cvis_model_layer_type(m, l);
        FUZZ_EXPECT(name && type && strlen(name) > 0);
        int found = -1;
        FUZZ_EXPECT(cvis_model_find_layer(m, name, &found) == CVIS_OK && found >= 0);
        int ndim = 0;
        int64_t shape[CVIS_MAX_DIMS];
        FUZZ_EXPECT(cvis_model_layer_output_shape(m, l, &ndim, shape) == CVIS_OK);
        FUZZ_EXPECT(ndim >= 0 && ndim < CVIS_MAX_DIMS);
        for (int k = 0; k < cvis_model_weight_count(m, l); k++) {
            FUZZ_EXPECT(cvis_model_weight_name(m, l, k) != NULL);
            cvis_tensor *w = NULL;
            cvis_status st = cvis_model_get_weight(m, l, k, &w);
            if (st == CVIS_OK) {
                /* weights of a loaded model are finite: loads refuse NaN */
                const float *d = cvis_tensor_data(w);
                for (int64_t i = 0; i < cvis_tensor_size(w); i++)
                    FUZZ_EXPECT(isfinite(d[i]));
            } else {
                FUZZ_EXPECT_FAILED_CLEANLY(st);
            }
            cvis_tensor_free(w);
        }
    }
    int64_t hwc[3];
    FUZZ_EXPECT(cvis_model_input_shape(m, hwc) == CVIS_OK);
    int outs = cvis_model_output_count(m);
    FUZZ_EXPECT(outs >= 1);
    for (int k = 0; k < outs; k++) {
        int l = cvis_model_output_layer(m, k);
        FUZZ_EXPECT(l >= 0 && l < n);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cvis_model *m = NULL;
    cvis_status st = cvis_model_load_onnx_memory(data, size, &m);
    if (st != CVIS_OK) {
        FUZZ_EXPECT_FAILED_CLEANLY(st);
        FUZZ_EXPECT(m == NULL);
        return 0;
    }
    walk(m);
    /* what was read can be written back */
    void *out = NULL;
    size_t out_size = 0;
    st = cvis_model_save_onnx_memory(m, &out, &out_size);
    if (st == CVIS_OK) {
        FUZZ_EXPECT(out && out_size > 0);
        /* and what libcvis writes, libcvis reads */
        cvis_model *back = NULL;
        st = cvis_model_load_onnx_memory(out, out_size, &back);
        FUZZ_EXPECT(st == CVIS_OK || st == CVIS_E_LIMIT || st == CVIS_E_NOMEM);
        if (back)
            FUZZ_EXPECT(cvis_model_layer_count(back) >= 1);
        cvis_model_free(back);
    } else {
        FUZZ_EXPECT_FAILED_CLEANLY(st);
    }
    cvis_free(out);
    cvis_model_free(m);
    return 0;
}
