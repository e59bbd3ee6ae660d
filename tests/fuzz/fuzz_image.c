/* Fuzz target: the image loader (JPEG, PNG, BMP, TGA, GIF through stb_image
 * behind libcvis's own header checks), then what an application does next
 * with a decoded image: read every pixel, resize it, turn it into a model
 * input, and draw a heatmap over it. */
#include <math.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_setup(64u << 20);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cvis_image *img = NULL;
    cvis_status st = cvis_image_load_memory(data, (int64_t)size, &img);
    if (st != CVIS_OK) {
        FUZZ_EXPECT_FAILED_CLEANLY(st);
        FUZZ_EXPECT(img == NULL);
        FUZZ_EXPECT(st == CVIS_E_FORMAT || st == CVIS_E_LIMIT || st == CVIS_E_NOMEM);
        return 0;
    }
    int w = cvis_image_width(img), h = cvis_image_height(img);
    FUZZ_EXPECT(w > 0 && h > 0 && cvis_image_channels(img) == 3);
    const uint8_t *p = cvis_image_data(img);
    volatile unsigned sum = 0;
    for (int64_t i = 0; i < (int64_t)w * h * 3; i++)
        sum += p[i];
    (void)sum;

    cvis_image *small = NULL;
    st = cvis_image_resize(img, 9, 7, CVIS_RESIZE_SMOOTH, &small);
    if (st == CVIS_OK) {
        FUZZ_EXPECT(cvis_image_width(small) == 9 && cvis_image_height(small) == 7);
        cvis_tensor *x = NULL;
        const cvis_image *one[1] = {small};
        FUZZ_EXPECT(cvis_images_to_tensor(1, one, 0, 0, &x) == CVIS_OK);
        for (int64_t i = 0; i < cvis_tensor_size(x); i++)
            FUZZ_EXPECT(cvis_tensor_data(x)[i] >= 0.0f && cvis_tensor_data(x)[i] <= 1.0f);
        cvis_tensor_free(x);
        float map[4] = {0.0f, 0.25f, 0.5f, 1.0f};
        cvis_image *over = NULL;
        FUZZ_EXPECT(cvis_image_overlay(small, map, 2, 2, CVIS_CMAP_JET, 0.5f, &over) == CVIS_OK);
        cvis_image_free(over);
    } else {
        FUZZ_EXPECT_FAILED_CLEANLY(st);
    }
    cvis_image_free(small);
    cvis_image_free(img);
    return 0;
}
