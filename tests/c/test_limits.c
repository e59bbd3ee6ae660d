/* Limits and out-of-memory along a whole application path: an ONNX model
 * and a PNG image read from memory, the image turned into a batch, a
 * prediction, a Grad-CAM map and its overlay.
 *  - Every allocation of that path failing in turn (the Nth, for every N)
 *    gives CVIS_E_NOMEM with a message and no output; once no allocation
 *    fails the result equals an undisturbed run.  Leaks are left to
 *    `make check-asan` (LeakSanitizer) and `make check-valgrind`.
 *  - A model or an image that declares more than the caller's allocation
 *    limit is refused with CVIS_E_LIMIT before anything of that size is
 *    requested. */
#include "check.h"
#include "core/alloc.h"

#define SIDE 12

static cvis_model *small_model(void)
{
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(SIDE, SIDE, 3, &m));
    CHECK_OK(cvis_model_add_conv2d(m, "conv1", CVIS_PREV, 4, 3, 3, 1, CVIS_PADDING_SAME,
                                   CVIS_ACT_RELU, NULL));
    CHECK_OK(cvis_model_add_batch_norm(m, "bn", CVIS_PREV, 1e-3f, NULL));
    CHECK_OK(cvis_model_add_conv2d(m, "conv2", CVIS_PREV, 6, 3, 3, 2, CVIS_PADDING_SAME,
                                   CVIS_ACT_RELU, NULL));
    CHECK_OK(cvis_model_add_global_avg_pool(m, "gap", CVIS_PREV, NULL));
    CHECK_OK(cvis_model_add_dense(m, "logits", CVIS_PREV, 3, CVIS_ACT_SOFTMAX, NULL));
    CHECK_OK(cvis_model_init_weights(m, 5));
    return m;
}

/* A PNG of a colour pattern, encoded by the library itself. */
static uint8_t *pattern_png(size_t *size)
{
    cvis_image *img = NULL;
    CHECK_OK(cvis_image_new(SIDE + 5, SIDE + 3, 3, &img));
    uint8_t *p = cvis_image_data(img);
    for (int i = 0; i < (SIDE + 5) * (SIDE + 3) * 3; i++)
        p[i] = (uint8_t)(i * 29 % 251);
    const char *path = "build/tests/test_limits_pattern.png";
    CHECK_OK(cvis_image_save_png(img, path));
    cvis_image_free(img);
    FILE *f = fopen(path, "rb");
    uint8_t *data = malloc(1 << 16);
    *size = f ? fread(data, 1, 1 << 16, f) : 0;
    if (f)
        fclose(f);
    remove(path);
    return data;
}

/* The whole path.  On success *map receives the Grad-CAM map (caller
 * frees with free) and *overlay_sum a checksum of the overlay's pixels. */
static cvis_status load_and_explain(const void *onnx, size_t onnx_size, const uint8_t *png,
                                    size_t png_size, float **map, int64_t *n_map,
                                    uint64_t *overlay_sum)
{
    cvis_model *m = NULL;
    cvis_image *img = NULL, *over = NULL;
    cvis_tensor *x = NULL, *y = NULL, *maps = NULL;
    cvis_explainer *e = NULL;
    cvis_score *s = NULL;
    int nd;
    int64_t shape[CVIS_MAX_DIMS];
    int cls = 1;
    cvis_status st;
    if ((st = cvis_model_load_onnx_memory(onnx, onnx_size, &m)) ||
        (st = cvis_image_load_memory(png, (int64_t)png_size, &img)) ||
        (st = cvis_images_to_tensor(1, (const cvis_image *const *)&img, SIDE, SIDE, &x)) ||
        (st = cvis_model_predict(m, x, &y)) || (st = cvis_score_categorical(1, &cls, &s)) ||
        (st = cvis_explainer_new(m, CVIS_METHOD_GRADCAM, &e)) ||
        (st = cvis_explainer_output_shape(e, x, &nd, shape)) ||
        (st = cvis_tensor_create(nd, shape, &maps)) ||
        (st = cvis_explainer_run(e, x, 1, (const cvis_score *const *)&s, maps)) ||
        (st = cvis_image_overlay(img, cvis_tensor_data(maps), shape[1], shape[2],
                                 CVIS_CMAP_JET, 0.4f, &over)))
        goto done;
    *n_map = cvis_tensor_size(maps);
    *map = malloc((size_t)*n_map * sizeof(float));
    memcpy(*map, cvis_tensor_data(maps), (size_t)*n_map * sizeof(float));
    *overlay_sum = 0;
    for (int64_t i = 0; i < (int64_t)cvis_image_width(over) * cvis_image_height(over) * 3; i++)
        *overlay_sum = *overlay_sum * 31 + cvis_image_data(over)[i];
done:
    cvis_image_free(over);
    cvis_tensor_free(maps);
    cvis_explainer_free(e);
    cvis_score_free(s);
    cvis_tensor_free(y);
    cvis_tensor_free(x);
    cvis_image_free(img);
    cvis_model_free(m);
    return st;
}

static void test_allocation_failures(void)
{
    cvis_model *m = small_model();
    void *onnx = NULL;
    size_t onnx_size = 0, png_size = 0;
    CHECK_OK(cvis_model_save_onnx_memory(m, &onnx, &onnx_size));
    cvis_model_free(m);
    uint8_t *png = pattern_png(&png_size);

    float *ref = NULL;
    int64_t n_ref = 0;
    uint64_t ref_sum = 0;
    cvis__alloc_fail_after(0);
    CHECK_OK(load_and_explain(onnx, onnx_size, png, png_size, &ref, &n_ref, &ref_sum));
    int64_t total = cvis__alloc_attempts();

    int64_t tried = 0, wrong = 0;
    for (int64_t n = 1;; n++) {
        float *map = NULL;
        int64_t n_map = 0;
        uint64_t sum = 0;
        cvis__alloc_fail_after(n);
        cvis_status st = load_and_explain(onnx, onnx_size, png, png_size, &map, &n_map, &sum);
        int64_t attempts = cvis__alloc_attempts();
        cvis__alloc_fail_after(0);
        if (st == CVIS_OK) {
            /* no allocation failed: the path is through, as undisturbed */
            CHECK(attempts < n);
            CHECK(n_map == n_ref && map && memcmp(map, ref, (size_t)n_ref * sizeof(float)) == 0);
            CHECK(sum == ref_sum);
            free(map);
            break;
        }
        tried++;
        if (st != CVIS_E_NOMEM || !cvis_last_error()[0]) {
            if (!wrong++)
                fprintf(stderr, "allocation %lld failing: %s (%s)\n", (long long)n,
                        cvis_status_string(st), cvis_last_error());
        }
        if (n > 100000)
            break;
    }
    printf("test_limits: %lld allocation-failure points along load ONNX + PNG, predict, "
           "Grad-CAM, overlay (%lld allocations in an undisturbed run)\n",
           (long long)tried, (long long)total);
    CHECK(tried == total);
    CHECK(wrong == 0);
    free(ref);
    free(png);
    cvis_free(onnx);
}

/* A model with one 4 MB weight under a 1 MiB limit: CVIS_E_LIMIT, and no
 * request of the weight's size was ever made. */
static void test_declared_sizes(void)
{
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(8, 8, 3, &m));
    CHECK_OK(cvis_model_add_flatten(m, "flat", CVIS_PREV, NULL));
    CHECK_OK(cvis_model_add_dense(m, "big", CVIS_PREV, 5000, CVIS_ACT_LINEAR, NULL));
    void *onnx = NULL;
    size_t onnx_size = 0;
    CHECK_OK(cvis_model_save_onnx_memory(m, &onnx, &onnx_size));
    cvis_model_free(m);
    m = NULL;

    uint64_t old = cvis_get_alloc_limit();
    CHECK(old > ((uint64_t)1 << 30)); /* generous but finite by default */
    CHECK_OK(cvis_set_alloc_limit(1 << 20));
    cvis__alloc_fail_after(0);
    CHECK_STATUS(cvis_model_load_onnx_memory(onnx, onnx_size, &m), CVIS_E_LIMIT);
    CHECK(m == NULL);
    CHECK(cvis__alloc_largest() <= (1 << 20));
    CHECK(strstr(cvis_last_error(), "limit") != NULL);

    /* an image header declaring 20000 x 20000 pixels (1.2 GB of RGB) */
    static const uint8_t png_head[] = {
        0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
        0, 0, 0x4e, 0x20, 0, 0, 0x4e, 0x20, 8, 2, 0, 0, 0, 0x2a, 0x5b, 0x9e, 0x1d};
    cvis_image *img = NULL;
    cvis__alloc_fail_after(0);
    cvis_status st = cvis_image_load_memory(png_head, sizeof png_head, &img);
    CHECK(st == CVIS_E_LIMIT);
    CHECK(img == NULL);
    CHECK(cvis__alloc_largest() <= (1 << 20));
    CHECK_OK(cvis_set_alloc_limit(old));
    CHECK_OK(cvis_model_load_onnx_memory(onnx, onnx_size, &m));
    cvis_model_free(m);
    cvis_free(onnx);
}

TEST_MAIN(test_allocation_failures(); test_declared_sizes())
