/* The parts of stb_image, stb_image_resize and stb_image_write that libcvis
 * uses, behind functions that report through cvis_status.  The stb code is
 * compiled into libcvis (stb_impl.c) with static linkage: no stb symbol
 * leaves the library, and every allocation goes through core/alloc.h. */
#ifndef CVIS_RENDER_STB_CODEC_H
#define CVIS_RENDER_STB_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "buffer.h"
#include "cvis.h"

/* Largest width or height decoded. */
#define CVIS__IMAGE_MAX_SIDE 65536

/* Decodes a JPEG, PNG, BMP, TGA or GIF (first frame) held in memory into
 * `channels` 8-bit channels per pixel.  The header is read first and the
 * declared size checked against the allocation limit before any pixel
 * buffer is made.  *pixels is freed with cvis__free. */
cvis_status cvis__stb_decode(const uint8_t *data, size_t len, int channels, int *width,
                             int *height, uint8_t **pixels);

/* Resamples in (iw x ih) to out (ow x oh), both packed with `channels`
 * channels.  smooth = 1: stb's default filters (Mitchell when shrinking,
 * Catmull-Rom when enlarging); 0: the triangle (bilinear) filter, which
 * also averages when shrinking. */
cvis_status cvis__stb_resize(const uint8_t *in, int iw, int ih, uint8_t *out, int ow, int oh,
                             int channels, int smooth);

/* Appends the PNG encoding of packed pixels (channels 1..4) to `out`. */
cvis_status cvis__stb_png_encode(const uint8_t *pixels, int width, int height, int channels,
                                 cvis__buf *out);

#endif
