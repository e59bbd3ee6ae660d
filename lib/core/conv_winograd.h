/* 3x3 stride-1 convolutions as Winograd F(2x2, 3x3): each 2x2 block of
 * outputs comes from a 4x4 tile of the input through 16 products of
 * (tiles x C) by (C x cout) in place of the 36 multiply-adds per channel
 * pair of the direct form, so about 2.25 times fewer multiply-adds for
 * the cost of transforming input, kernel and output (additions only, and
 * halves for the kernel).  NHWC, one group, unit dilation. */
#ifndef CVIS_CORE_CONV_WINOGRAD_H
#define CVIS_CORE_CONV_WINOGRAD_H

#include <stdint.h>

#include "conv_direct.h"

/* Whether Winograd beats im2col + GEMM for a layer of this many tiles
 * (2x2 output blocks, all images) and channels. */
int cvis__winograd_pays(int64_t tiles, int64_t C, int64_t cout);
/* For tests: CVIS__WINO_NEVER, CVIS__WINO_WHERE_IT_PAYS (the default), or
 * CVIS__WINO_ALWAYS for every 3x3 stride-1 convolution of one group. */
enum { CVIS__WINO_NEVER = 0, CVIS__WINO_WHERE_IT_PAYS = 1, CVIS__WINO_ALWAYS = 2 };
void cvis__winograd_mode(int mode);

/* How `images` images of geometry g (kernel 3x3, stride 1, dilation 1)
 * are cut into chunks of tiles, one thread per chunk, for the thread
 * count now; `floats` is the scratch cvis__winograd_forward needs. */
typedef struct cvis__wino_plan {
    int64_t tiles, tc, floats;
    int ways;
} cvis__wino_plan;
cvis__wino_plan cvis__winograd_plan(const cvis__conv_geom *g, int64_t images);
/* y (images,Ho,Wo,cout) = conv(x (images,H,W,C), w (3,3,C,cout)), or
 * added to y when `accumulate`; the pads before are g->pt and g->pl, the
 * rest of the window past the input reads zeros.  Work runs on the worker
 * pool; each output value is computed in the same order whatever the
 * thread count. */
void cvis__winograd_forward(const cvis__conv_geom *g, const cvis__wino_plan *plan, const float *x,
                            const float *w, float *y, int accumulate, float *scratch);

#endif
