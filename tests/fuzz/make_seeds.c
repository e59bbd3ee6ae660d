/* Writes the seed corpora of the fuzz targets from valid files made here:
 *   DIR/onnx    ONNX models saved by libcvis (the onnx and model targets)
 *   DIR/npz     weight archives saved by libcvis (the npz target)
 *   DIR/image   PNG (gray, RGB, RGBA), BMP, TGA (plain and RLE), JPEG
 *               (baseline and progressive), GIF (two frames)
 * tests/fuzz/make_seeds.py adds files written by numpy, PIL and PyTorch.
 *
 *   make_seeds DIR */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cvis.h"
#include "gif_sample.h"
#include "jpeg_samples.h"
#include "seed_models.h"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#endif
#include <stb_image_write.h>

static const char *root;
static int failures;

static const char *path(const char *sub, const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s/%s", root, sub, name);
    return buf;
}

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "make_seeds: %s failed (%s)\n", what, cvis_last_error());
        failures++;
    }
}

static void write_bytes(const char *sub, const char *name, const void *data, size_t n)
{
    FILE *f = fopen(path(sub, name), "wb");
    check(f && fwrite(data, 1, n, f) == n && fclose(f) == 0, name);
}

static void save_model(cvis_model *m, const char *name)
{
    char file[256];
    check(m != NULL, name);
    if (!m)
        return;
    snprintf(file, sizeof file, "%s.onnx", name);
    check(cvis_model_save_onnx(m, path("onnx", file)) == CVIS_OK, file);
    snprintf(file, sizeof file, "%s.npz", name);
    check(cvis_model_save_npz(m, path("npz", file)) == CVIS_OK, file);
    cvis_model_free(m);
}

static void images(void)
{
    enum { W = 13, H = 9 };
    uint8_t rgba[H][W][4], rgb[H][W][3], gray[H][W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            rgba[y][x][0] = rgb[y][x][0] = (uint8_t)(x * 19);
            rgba[y][x][1] = rgb[y][x][1] = (uint8_t)(y * 27);
            rgba[y][x][2] = rgb[y][x][2] = (uint8_t)((x ^ y) * 16);
            rgba[y][x][3] = (uint8_t)(255 - x * y);
            gray[y][x] = (uint8_t)(x * y * 2);
        }
    check(stbi_write_png(path("image", "rgb.png"), W, H, 3, rgb, W * 3), "rgb.png");
    check(stbi_write_png(path("image", "rgba.png"), W, H, 4, rgba, W * 4), "rgba.png");
    check(stbi_write_png(path("image", "gray.png"), W, H, 1, gray, W), "gray.png");
    check(stbi_write_bmp(path("image", "rgb.bmp"), W, H, 3, rgb), "rgb.bmp");
    check(stbi_write_bmp(path("image", "rgba.bmp"), W, H, 4, rgba), "rgba.bmp");
    stbi_write_tga_with_rle = 0;
    check(stbi_write_tga(path("image", "rgb.tga"), W, H, 3, rgb), "rgb.tga");
    stbi_write_tga_with_rle = 1;
    check(stbi_write_tga(path("image", "rle.tga"), W, H, 4, rgba), "rle.tga");
    check(stbi_write_jpg(path("image", "stb.jpg"), W, H, 3, rgb, 90), "stb.jpg");
    check(stbi_write_jpg(path("image", "gray.jpg"), W, H, 1, gray, 50), "gray.jpg");
    write_bytes("image", "baseline.jpg", jpeg_baseline, sizeof jpeg_baseline);
    write_bytes("image", "progressive.jpg", jpeg_progressive, sizeof jpeg_progressive);

    uint8_t g[128];
    size_t n = make_gif(g);
    write_bytes("image", "two.gif", g, n);

    /* and one written by libcvis itself: a heatmap overlay */
    cvis_image *img = NULL, *over = NULL;
    float map[6] = {0, 0.2f, 0.4f, 0.6f, 0.8f, 1};
    check(cvis_image_new(W, H, 3, &img) == CVIS_OK, "image");
    if (img) {
        memcpy(cvis_image_data(img), rgb, sizeof rgb);
        check(cvis_image_overlay(img, map, 2, 3, CVIS_CMAP_JET, 0.5f, &over) == CVIS_OK,
              "overlay");
        check(over && cvis_image_save_png(over, path("image", "overlay.png")) == CVIS_OK,
              "overlay.png");
    }
    cvis_image_free(img);
    cvis_image_free(over);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR\n");
        return 2;
    }
    root = argv[1];
    const char *subs[] = {"onnx", "npz", "image"};
    for (int i = 0; i < 3; i++) {
        mkdir(root, 0755);
        mkdir(path(subs[i], ""), 0755);
    }
    save_model(seed_npz_model(), "npz_model");
    save_model(seed_tutorial_model(), "tutorial");
    save_model(seed_branchy_model(), "branchy");
    images();
    if (failures)
        return 1;
    printf("make_seeds: seeds written under %s\n", root);
    return 0;
}
