/* 8-bit images: create, load (stb_image), save (PNG), resize, and the
 * conversions between images and float tensors. */
#include "image.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "buffer.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/tensor.h"
#include "stb_codec.h"

cvis_status cvis__image_make(int width, int height, int channels, int zero, cvis_image **out)
{
    if (width <= 0 || height <= 0)
        return cvis__fail(CVIS_E_INVALID_ARG, "image size %d x %d: both sides must be positive",
                          width, height);
    if (channels != 1 && channels != 3 && channels != 4)
        return cvis__fail(CVIS_E_INVALID_ARG, "images have 1, 3 or 4 channels, not %d", channels);
    int64_t n;
    CVIS_TRY(cvis__mul_size(width, height, "image size", &n));
    CVIS_TRY(cvis__mul_size(n, channels, "image size", &n));
    cvis_image *img = cvis__malloc(sizeof *img);
    if (!img)
        return cvis__fail(CVIS_E_NOMEM, "out of memory allocating an image");
    void *data;
    cvis_status st = zero ? cvis__alloc_zero((size_t)n, "image pixels", &data)
                          : cvis__alloc((size_t)n, "image pixels", &data);
    if (st != CVIS_OK) {
        cvis__free(img);
        return st;
    }
    img->width = width;
    img->height = height;
    img->channels = channels;
    img->data = data;
    *out = img;
    return CVIS_OK;
}

cvis_status cvis__image_check(const cvis_image *img, const char *what)
{
    if (!img || !img->data)
        return cvis__fail(CVIS_E_INVALID_ARG, "%s is NULL", what);
    return CVIS_OK;
}

cvis_status cvis__image_to_rgb(const cvis_image *img, int over_white, cvis_image **out)
{
    cvis_image *rgb;
    CVIS_TRY(cvis__image_make(img->width, img->height, 3, 0, &rgb));
    for (int64_t y = 0; y < img->height; y++)
        for (int64_t x = 0; x < img->width; x++)
            cvis__image_rgb_at(img, x, y, over_white, rgb->data + (y * img->width + x) * 3);
    *out = rgb;
    return CVIS_OK;
}

float cvis__map_sample(const float *map, int64_t h, int64_t w, int64_t oh, int64_t ow,
                       int64_t oy, int64_t ox)
{
    double sy = oh > 1 ? (double)oy * (double)(h - 1) / (double)(oh - 1) : 0.0;
    double sx = ow > 1 ? (double)ox * (double)(w - 1) / (double)(ow - 1) : 0.0;
    int64_t y0 = (int64_t)sy, x0 = (int64_t)sx;
    if (y0 > h - 1)
        y0 = h - 1;
    if (x0 > w - 1)
        x0 = w - 1;
    int64_t y1 = y0 + 1 < h ? y0 + 1 : h - 1, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
    double fy = sy - (double)y0, fx = sx - (double)x0;
    double top = map[y0 * w + x0] * (1 - fx) + map[y0 * w + x1] * fx;
    double bot = map[y1 * w + x0] * (1 - fx) + map[y1 * w + x1] * fx;
    return (float)(top * (1 - fy) + bot * fy);
}

/* ------------------------------------------------------------ public API */

CVIS_API cvis_status cvis_image_new(int width, int height, int channels, cvis_image **out)
{
    CVIS_CHECK_ARG(out, "out is NULL");
    return cvis__image_make(width, height, channels, 1, out);
}

CVIS_API int cvis_image_width(const cvis_image *img)
{
    return img ? img->width : 0;
}

CVIS_API int cvis_image_height(const cvis_image *img)
{
    return img ? img->height : 0;
}

CVIS_API int cvis_image_channels(const cvis_image *img)
{
    return img ? img->channels : 0;
}

CVIS_API uint8_t *cvis_image_data(const cvis_image *img)
{
    return img ? img->data : NULL;
}

CVIS_API void cvis_image_free(cvis_image *img)
{
    if (!img)
        return;
    cvis__free(img->data);
    cvis__free(img);
}

CVIS_API cvis_status cvis_image_load_memory(const void *data, int64_t size, cvis_image **out)
{
    CVIS_CHECK_ARG(data || size == 0, "data is NULL");
    CVIS_CHECK_ARG(size >= 0, "size is negative");
    CVIS_CHECK_ARG(out, "out is NULL");
    int w, h;
    uint8_t *pixels;
    CVIS_TRY(cvis__stb_decode(data, (size_t)size, 3, &w, &h, &pixels));
    cvis_image *img = cvis__malloc(sizeof *img);
    if (!img) {
        cvis__free(pixels);
        return cvis__fail(CVIS_E_NOMEM, "out of memory allocating an image");
    }
    img->width = w;
    img->height = h;
    img->channels = 3;
    img->data = pixels;
    *out = img;
    return CVIS_OK;
}

static const char *errno_text(int e)
{
    switch (e) {
    case ENOENT: return "no such file or directory";
    case EACCES: return "permission denied";
    case EISDIR: return "is a directory";
    case ENOTDIR: return "a component of the path is not a directory";
    case ENOSPC: return "no space left on device";
    case EROFS: return "read-only file system";
    default: return "system error";
    }
}

/* Reads a whole regular file, refusing one larger than the allocation
 * limit before allocating. */
static cvis_status read_whole_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cvis__fail(CVIS_E_IO, "cannot open '%s': %s (errno %d)", path, errno_text(errno),
                          errno);
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return cvis__fail(CVIS_E_IO, "'%s' is not a regular file", path);
    }
    if (sb.st_size == 0) {
        fclose(f);
        return cvis__fail(CVIS_E_FORMAT, "'%s' is empty (0 bytes)", path);
    }
    cvis_status st = cvis__check_limit((uint64_t)sb.st_size, "reading an image file");
    void *buf = NULL;
    if (st == CVIS_OK)
        st = cvis__alloc((size_t)sb.st_size, "image file contents", &buf);
    if (st != CVIS_OK) {
        fclose(f);
        return cvis__wrap_error(st, "'%s'", path);
    }
    size_t got = fread(buf, 1, (size_t)sb.st_size, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != (size_t)sb.st_size) {
        cvis__free(buf);
        return cvis__fail(CVIS_E_IO, "reading '%s' failed after %zu of %lld bytes", path, got,
                          (long long)sb.st_size);
    }
    *data = buf;
    *len = got;
    return CVIS_OK;
}

CVIS_API cvis_status cvis_image_load(const char *path, cvis_image **out)
{
    CVIS_CHECK_ARG(path, "path is NULL");
    CVIS_CHECK_ARG(out, "out is NULL");
    uint8_t *bytes = NULL;
    size_t len = 0;
    CVIS_TRY(read_whole_file(path, &bytes, &len));
    cvis_status st = cvis_image_load_memory(bytes, (int64_t)len, out);
    cvis__free(bytes);
    if (st != CVIS_OK)
        return cvis__wrap_error(st, "loading '%s'", path);
    return CVIS_OK;
}

CVIS_API cvis_status cvis_image_save_png(const cvis_image *img, const char *path)
{
    CVIS_TRY(cvis__image_check(img, "image"));
    CVIS_CHECK_ARG(path, "path is NULL");
    cvis__buf png = {0};
    CVIS_TRY(cvis__stb_png_encode(img->data, img->width, img->height, img->channels, &png));
    FILE *f = fopen(path, "wb");
    if (!f) {
        int e = errno;
        cvis__buf_free(&png);
        return cvis__fail(CVIS_E_IO, "cannot create '%s': %s (errno %d)", path, errno_text(e), e);
    }
    size_t put = fwrite(png.data, 1, png.len, f);
    int bad = put != png.len;
    bad |= fclose(f) != 0;
    cvis__buf_free(&png);
    if (bad)
        return cvis__fail(CVIS_E_IO, "writing '%s' failed", path);
    return CVIS_OK;
}

/* Source index of each output pixel for nearest-neighbour resizing, as
 * PIL's NEAREST computes it (and so Keras's load_img): the centre of output
 * pixel i maps to (i + 0.5) * in / out, accumulated by repeated addition in
 * double precision and truncated.  The accumulation matters: at exact
 * halves (128 -> 40 has one at i = 7) its rounding picks the lower pixel,
 * and we pick the same one. */
static void nearest_indices(int64_t in, int64_t out, int64_t *idx)
{
    double step = (double)in / (double)out, pos = step * 0.5;
    for (int64_t i = 0; i < out; i++) {
        int64_t k = (int64_t)pos;
        idx[i] = k < 0 ? 0 : k > in - 1 ? in - 1 : k;
        pos += step;
    }
}

static cvis_status resize_nearest(const cvis_image *in, cvis_image *out)
{
    int64_t *xs, *ys;
    CVIS_TRY(cvis__alloc(sizeof *xs * (size_t)out->width, "resize indices", (void **)&xs));
    cvis_status st = cvis__alloc(sizeof *ys * (size_t)out->height, "resize indices", (void **)&ys);
    if (st != CVIS_OK) {
        cvis__free(xs);
        return st;
    }
    nearest_indices(in->width, out->width, xs);
    nearest_indices(in->height, out->height, ys);
    int c = in->channels;
    for (int64_t y = 0; y < out->height; y++)
        for (int64_t x = 0; x < out->width; x++)
            memcpy(out->data + (y * out->width + x) * c, in->data + (ys[y] * in->width + xs[x]) * c,
                   (size_t)c);
    cvis__free(xs);
    cvis__free(ys);
    return CVIS_OK;
}

CVIS_API cvis_status cvis_image_resize(const cvis_image *img, int width, int height,
                                       cvis_resize_filter filter, cvis_image **out)
{
    CVIS_TRY(cvis__image_check(img, "image"));
    CVIS_CHECK_ARG(out, "out is NULL");
    if (filter != CVIS_RESIZE_SMOOTH && filter != CVIS_RESIZE_NEAREST &&
        filter != CVIS_RESIZE_BILINEAR)
        return cvis__fail(CVIS_E_INVALID_ARG, "unknown resize filter %d", (int)filter);
    cvis_image *r;
    CVIS_TRY(cvis__image_make(width, height, img->channels, 0, &r));
    cvis_status st = CVIS_OK;
    if (filter == CVIS_RESIZE_NEAREST)
        st = resize_nearest(img, r);
    else
        st = cvis__stb_resize(img->data, img->width, img->height, r->data, width, height,
                              img->channels, filter == CVIS_RESIZE_SMOOTH);
    if (st != CVIS_OK) {
        cvis_image_free(r);
        return st;
    }
    *out = r;
    return CVIS_OK;
}

CVIS_API cvis_status cvis_images_to_tensor_normalized(int n, const cvis_image *const *imgs,
                                                      int height, int width, const float *mean,
                                                      const float *std, cvis_tensor **out)
{
    CVIS_CHECK_ARG(n > 0, "n must be positive");
    CVIS_CHECK_ARG(imgs, "imgs is NULL");
    CVIS_CHECK_ARG(out, "out is NULL");
    CVIS_CHECK_ARG(height >= 0 && width >= 0, "negative size");
    CVIS_CHECK_ARG((height == 0) == (width == 0), "height and width must both be 0 or both set");
    for (int i = 0; i < n; i++)
        if (!imgs[i] || !imgs[i]->data)
            return cvis__fail(CVIS_E_INVALID_ARG, "image %d of the batch is NULL", i);
    float m[3] = {0, 0, 0}, s[3] = {1, 1, 1};
    for (int c = 0; c < 3; c++) {
        if (mean)
            m[c] = mean[c];
        if (std)
            s[c] = std[c];
        if (!isfinite(m[c]) || !isfinite(s[c]) || s[c] == 0.0f)
            return cvis__fail(CVIS_E_INVALID_ARG,
                              "mean and std must be finite and std non-zero (channel %d)", c);
    }
    if (height == 0) {
        height = imgs[0]->height;
        width = imgs[0]->width;
    }
    int64_t shape[4] = {n, height, width, 3};
    cvis_tensor *t;
    CVIS_TRY(cvis__tensor_new(4, shape, 0, &t));
    int64_t plane = (int64_t)height * width * 3;
    for (int i = 0; i < n; i++) {
        const cvis_image *img = imgs[i];
        cvis_image *sized = NULL;
        if (img->width != width || img->height != height) {
            cvis_status st = cvis_image_resize(img, width, height, CVIS_RESIZE_SMOOTH, &sized);
            if (st != CVIS_OK) {
                cvis_tensor_free(t);
                return cvis__wrap_error(st, "image %d of the batch", i);
            }
            img = sized;
        }
        float *dst = t->data + i * plane;
        for (int64_t y = 0; y < height; y++)
            for (int64_t x = 0; x < width; x++) {
                uint8_t rgb[3];
                cvis__image_rgb_at(img, x, y, 0, rgb);
                for (int c = 0; c < 3; c++)
                    *dst++ = ((float)rgb[c] / 255.0f - m[c]) / s[c];
            }
        cvis_image_free(sized);
    }
    *out = t;
    return CVIS_OK;
}

CVIS_API cvis_status cvis_images_to_tensor(int n, const cvis_image *const *imgs, int height,
                                           int width, cvis_tensor **out)
{
    return cvis_images_to_tensor_normalized(n, imgs, height, width, NULL, NULL, out);
}

CVIS_API cvis_status cvis_tensor_to_image(const cvis_tensor *x, int64_t index, float lo,
                                          float hi, cvis_image **out)
{
    CVIS_CHECK_ARG(x, "x is NULL");
    CVIS_CHECK_ARG(out, "out is NULL");
    if (!isfinite(lo) || !isfinite(hi) || !(hi > lo))
        return cvis__fail(CVIS_E_INVALID_ARG, "display range [%g, %g] is empty or not finite",
                          (double)lo, (double)hi);
    int64_t channels;
    if (x->ndim == 4 && (x->shape[3] == 1 || x->shape[3] == 3 || x->shape[3] == 4))
        channels = x->shape[3];
    else if (x->ndim == 3)
        channels = 1;
    else
        return cvis__fail(CVIS_E_SHAPE,
                          "an image batch is (B,H,W) or (B,H,W,C) with C 1, 3 or 4; got rank %d",
                          x->ndim);
    if (index < 0 || index >= x->shape[0])
        return cvis__fail(CVIS_E_RANGE, "image %lld of a batch of %lld", (long long)index,
                          (long long)x->shape[0]);
    if (x->shape[1] > INT32_MAX || x->shape[2] > INT32_MAX)
        return cvis__fail(CVIS_E_LIMIT, "image too large");
    cvis_image *img;
    CVIS_TRY(cvis__image_make((int)x->shape[2], (int)x->shape[1], (int)channels, 0, &img));
    int64_t n = x->shape[1] * x->shape[2] * channels;
    const float *src = x->data + index * n;
    double scale = 255.0 / ((double)hi - (double)lo);
    for (int64_t i = 0; i < n; i++) {
        double v = ((double)src[i] - lo) * scale;
        img->data[i] = !(v > 0) ? 0 : v >= 255 ? 255 : (uint8_t)(v + 0.5);
    }
    *out = img;
    return CVIS_OK;
}
