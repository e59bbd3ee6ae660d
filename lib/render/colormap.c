/* Colormaps and heatmap pictures of float maps. */
#include "colormap.h"

#include <math.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/tensor.h"
#include "image.h"

/* Jet as matplotlib defines it: each channel piecewise linear through
 * (position, value) points. */
typedef struct knot {
    double x, y;
} knot;

static const knot jet_red[] = {{0, 0}, {0.35, 0}, {0.66, 1}, {0.89, 1}, {1, 0.5}};
static const knot jet_green[] = {{0, 0}, {0.125, 0}, {0.375, 1}, {0.64, 1}, {0.91, 0}, {1, 0}};
static const knot jet_blue[] = {{0, 0.5}, {0.11, 1}, {0.34, 1}, {0.65, 0}, {1, 0}};

/* The channel's value at table entry i (of 256), computed as matplotlib
 * computes its table (positions scaled by 255, the distance within the
 * segment times its rise, plus its start), so that values falling on exact
 * halves of an 8-bit step round the same way. */
static double piecewise(const knot *k, int n, int i)
{
    double x = 255.0 * (i == 255 ? 1.0 : i * (1.0 / 255.0)); /* numpy's linspace */
    for (int j = 1; j < n; j++)
        if (x <= 255.0 * k[j].x) {
            double x0 = 255.0 * k[j - 1].x, x1 = 255.0 * k[j].x;
            return (x - x0) / (x1 - x0) * (k[j].y - k[j - 1].y) + k[j - 1].y;
        }
    return k[n - 1].y;
}

/* v in [0,1] to 8 bits: nearest, ties to even (numpy's round). */
static uint8_t to_byte(double v)
{
    if (!(v > 0))
        return 0;
    if (v >= 1)
        return 255;
    return (uint8_t)nearbyint(v * 255.0);
}

#define COUNT(a) ((int)(sizeof(a) / sizeof(a[0])))

cvis_status cvis__colormap_lut(cvis_colormap cmap, uint8_t lut[256][3])
{
    for (int i = 0; i < 256; i++) {
        double x = i / 255.0;
        switch (cmap) {
        case CVIS_CMAP_JET:
            lut[i][0] = to_byte(piecewise(jet_red, COUNT(jet_red), i));
            lut[i][1] = to_byte(piecewise(jet_green, COUNT(jet_green), i));
            lut[i][2] = to_byte(piecewise(jet_blue, COUNT(jet_blue), i));
            break;
        case CVIS_CMAP_VIRIDIS:
        case CVIS_CMAP_INFERNO: {
            const float(*t)[3] = cmap == CVIS_CMAP_VIRIDIS ? cvis__cmap_viridis : cvis__cmap_inferno;
            for (int c = 0; c < 3; c++)
                lut[i][c] = to_byte(t[i][c]);
            break;
        }
        case CVIS_CMAP_GRAY:
            lut[i][0] = lut[i][1] = lut[i][2] = to_byte(x);
            break;
        default:
            return cvis__fail(CVIS_E_INVALID_ARG, "unknown colormap %d", (int)cmap);
        }
    }
    return CVIS_OK;
}

/* Checks a map's arguments: finite values, a size that fits an image. */
static cvis_status check_map(const float *map, int64_t h, int64_t w)
{
    if (!map)
        return cvis__fail(CVIS_E_INVALID_ARG, "map is NULL");
    if (h <= 0 || w <= 0 || h > INT32_MAX || w > INT32_MAX)
        return cvis__fail(CVIS_E_INVALID_ARG, "map size %lld x %lld is empty or too large",
                          (long long)h, (long long)w);
    int64_t n;
    CVIS_TRY(cvis__mul_size(h, w, "map size", &n));
    return cvis__check_finite(map, n, "map");
}

CVIS_API cvis_status cvis_map_to_image(const float *map, int64_t height, int64_t width,
                                       cvis_colormap cmap, int normalize, cvis_image **out)
{
    CVIS_CHECK_ARG(out, "out is NULL");
    CVIS_TRY(check_map(map, height, width));
    uint8_t lut[256][3];
    CVIS_TRY(cvis__colormap_lut(cmap, lut));
    int64_t n = height * width;
    float lo = 0, scale = 1;
    if (normalize) {
        float mn = map[0], mx = map[0];
        for (int64_t i = 1; i < n; i++) {
            mn = map[i] < mn ? map[i] : mn;
            mx = map[i] > mx ? map[i] : mx;
        }
        lo = mn;
        scale = mx > mn ? (float)(1.0 / ((double)mx - mn)) : 0.0f; /* constant: all zeros */
    }
    cvis_image *img;
    CVIS_TRY(cvis__image_make((int)width, (int)height, 3, 0, &img));
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *rgb = lut[cvis__colormap_index((map[i] - lo) * scale)];
        img->data[i * 3 + 0] = rgb[0];
        img->data[i * 3 + 1] = rgb[1];
        img->data[i * 3 + 2] = rgb[2];
    }
    *out = img;
    return CVIS_OK;
}

CVIS_API cvis_status cvis_image_overlay(const cvis_image *base, const float *map, int64_t mh,
                                        int64_t mw, cvis_colormap cmap, float alpha,
                                        cvis_image **out)
{
    CVIS_TRY(cvis__image_check(base, "base image"));
    CVIS_CHECK_ARG(out, "out is NULL");
    if (!(alpha >= 0.0f && alpha <= 1.0f))
        return cvis__fail(CVIS_E_INVALID_ARG, "alpha %g outside [0, 1]", (double)alpha);
    CVIS_TRY(check_map(map, mh, mw));
    uint8_t lut[256][3];
    CVIS_TRY(cvis__colormap_lut(cmap, lut));
    int64_t H = base->height, W = base->width;
    int same = mh == H && mw == W;
    cvis_image *img;
    CVIS_TRY(cvis__image_make((int)W, (int)H, 3, 0, &img));
    for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++) {
            float v = same ? map[y * W + x] : cvis__map_sample(map, mh, mw, H, W, y, x);
            const uint8_t *heat = lut[cvis__colormap_index(v)];
            uint8_t rgb[3];
            cvis__image_rgb_at(base, x, y, 0, rgb);
            uint8_t *o = img->data + (y * W + x) * 3;
            for (int c = 0; c < 3; c++) {
                float b = (1.0f - alpha) * rgb[c] + alpha * heat[c];
                o[c] = b >= 255.0f ? 255 : (uint8_t)(b + 0.5f);
            }
        }
    *out = img;
    return CVIS_OK;
}
