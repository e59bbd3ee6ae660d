/* 8-bit images: the struct behind the public cvis_image handle and the
 * conversions that rendering code shares. */
#ifndef CVIS_RENDER_IMAGE_H
#define CVIS_RENDER_IMAGE_H

#include <stdint.h>

#include "cvis.h"

struct cvis_image {
    int width;
    int height;
    int channels; /* 1 (gray), 3 (RGB) or 4 (RGBA) */
    uint8_t *data; /* height rows of width*channels bytes, owned */
};

/* A new image; zero-filled when `zero`.  Sizes checked against overflow
 * and the allocation limit.  Caller frees with cvis_image_free. */
cvis_status cvis__image_make(int width, int height, int channels, int zero, cvis_image **out);

/* The RGB color of pixel (x, y): gray is repeated, and an RGBA pixel is
 * either blended over white (`over_white`) or has its alpha dropped. */
static inline void cvis__image_rgb_at(const cvis_image *img, int64_t x, int64_t y,
                                      int over_white, uint8_t rgb[3])
{
    const uint8_t *p = img->data + ((int64_t)y * img->width + x) * img->channels;
    if (img->channels == 1) {
        rgb[0] = rgb[1] = rgb[2] = p[0];
    } else {
        rgb[0] = p[0];
        rgb[1] = p[1];
        rgb[2] = p[2];
        if (img->channels == 4 && over_white)
            for (int c = 0; c < 3; c++)
                rgb[c] = (uint8_t)((p[c] * p[3] + 255 * (255 - p[3]) + 127) / 255);
    }
}

/* A new RGB copy of img (see cvis__image_rgb_at).  Caller frees. */
cvis_status cvis__image_to_rgb(const cvis_image *img, int over_white, cvis_image **out);

/* Checks that img is a usable image handle ("what" names it in messages). */
cvis_status cvis__image_check(const cvis_image *img, const char *what);

/* Bilinear sample, aligned corners, edge clamp (the resize that maps use),
 * of an h x w float map at output pixel (oy, ox) of an oh x ow grid. */
float cvis__map_sample(const float *map, int64_t h, int64_t w, int64_t oh, int64_t ow,
                       int64_t oy, int64_t ox);

#endif
