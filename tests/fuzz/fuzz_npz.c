/* Fuzz target: the NPZ reader (ZIP container, deflate, .npy headers and
 * data) through cvis__npz_read_mem, then the same archive offered as the
 * weights of a small model, which must take it whole or not at all. */
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "model/npz.h"
#include "seed_models.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cvis_model *model;
static cvis_tensor *before[16];
static int n_before;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_setup(256u << 20);
    model = seed_npz_model();
    FUZZ_EXPECT(model != NULL);
    return 0;
}

/* Copies of every weight, to see that a refused load changed nothing. */
static void snapshot(void)
{
    n_before = 0;
    for (int l = 0; l < cvis_model_layer_count(model); l++)
        for (int k = 0; k < cvis_model_weight_count(model, l) && n_before < 16; k++)
            FUZZ_EXPECT(cvis_model_get_weight(model, l, k, &before[n_before++]) == CVIS_OK);
}

static int unchanged(void)
{
    int i = 0, same = 1;
    for (int l = 0; l < cvis_model_layer_count(model); l++)
        for (int k = 0; k < cvis_model_weight_count(model, l) && i < 16; k++, i++) {
            cvis_tensor *now = NULL;
            FUZZ_EXPECT(cvis_model_get_weight(model, l, k, &now) == CVIS_OK);
            same &= !memcmp(cvis_tensor_data(now), cvis_tensor_data(before[i]),
                            (size_t)cvis_tensor_size(now) * sizeof(float));
            cvis_tensor_free(now);
        }
    return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cvis__npz z;
    memset(&z, 0, sizeof z);
    cvis_status st = cvis__npz_read_mem(data, size, &z);
    if (st != CVIS_OK) {
        FUZZ_EXPECT_FAILED_CLEANLY(st);
        FUZZ_EXPECT(z.n == 0 && z.arrays == NULL);
    } else {
        for (int64_t i = 0; i < z.n; i++) {
            const cvis_tensor *t = z.arrays[i].value;
            FUZZ_EXPECT(z.arrays[i].key && t);
            int64_t count = 1;
            for (int d = 0; d < cvis_tensor_ndim(t); d++)
                count *= cvis_tensor_dim(t, d);
            FUZZ_EXPECT(count == cvis_tensor_size(t));
            /* every element is readable (AddressSanitizer watches) */
            volatile float sink = 0;
            for (int64_t e = 0; e < count; e++)
                sink += cvis_tensor_data(t)[e];
            (void)sink;
        }
        cvis__npz_release(&z);
    }

    snapshot();
    st = cvis__model_load_npz_mem(model, data, size);
    if (st != CVIS_OK) {
        FUZZ_EXPECT_FAILED_CLEANLY(st);
        FUZZ_EXPECT(unchanged());
    } else {
        /* loaded weights are finite */
        for (int l = 0; l < cvis_model_layer_count(model); l++)
            for (int k = 0; k < cvis_model_weight_count(model, l); k++) {
                cvis_tensor *w = NULL;
                FUZZ_EXPECT(cvis_model_get_weight(model, l, k, &w) == CVIS_OK);
                for (int64_t e = 0; e < cvis_tensor_size(w); e++)
                    FUZZ_EXPECT(isfinite(cvis_tensor_data(w)[e]));
                cvis_tensor_free(w);
            }
    }
    for (int i = 0; i < n_before; i++)
        cvis_tensor_free(before[i]);
    n_before = 0;
    return 0;
}
