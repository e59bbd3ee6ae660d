/* Direct NHWC convolution for small channel counts (the tutorial's
 * 8-channel layers), vectorized over 8 output channels at a time.  There
 * im2col + GEMM is memory-bound: the column matrix is 49 to 147 times the
 * input, and GEMM with 8 columns is mostly packing.  Used for one group,
 * c_out a multiple of 8 up to 32: at 64 output channels im2col + GEMM is
 * faster (resnet18 at batch 8 took 0.77 of the time forward and 0.60 with
 * the input gradient once its 64-channel layers left this path).
 * Backward-data also needs c_in a multiple of 8.  Each kernel exists for
 * the baseline instruction set and AVX2+FMA (conv_direct_impl.h), the
 * forward also for AVX-512F (conv_direct_avx512.c); each call picks the
 * best that isa.h allows. */
#ifndef CVIS_CORE_CONV_DIRECT_H
#define CVIS_CORE_CONV_DIRECT_H

#include <stdint.h>

typedef struct cvis__conv_geom {
    int64_t H, W, C, Ho, Wo, cout;
    int kh, kw, sh, sw, dh, dw, pt, pl;
} cvis__conv_geom;

/* Rows [oy_begin, oy_end) of y (Ho,Wo,cout) = conv(x (H,W,C), w
 * (kh,kw,C,cout)), one image; added to y when `accumulate`. */
void cvis__conv_direct_forward(const cvis__conv_geom *g, const float *x, const float *w, float *y,
                               int64_t oy_begin, int64_t oy_end, int accumulate);
/* dw (kh,kw,C,cout) += correlation of x with rows [oy_begin, oy_end) of dy
 * (Ho,Wo,cout), one image. */
void cvis__conv_direct_weights(const cvis__conv_geom *g, const float *x, const float *dy, float *dw,
                               int64_t oy_begin, int64_t oy_end);
/* dx (H,W,C) += the transposed convolution of dy; wt is w transposed per
 * tap to (kh,kw,cout,C).  One image. */
void cvis__conv_direct_data(const cvis__conv_geom *g, const float *dy, const float *wt, float *dx);

/* The kernel rows [ky0, ky1) that fall inside the input for output row oy. */
void cvis__conv_direct_rows(const cvis__conv_geom *g, int64_t oy, int *ky0, int *ky1);
/* The range of ox whose taps all fall inside the input, [lo, hi). */
void cvis__conv_direct_interior(const cvis__conv_geom *g, int64_t *lo, int64_t *hi);
/* cvis__conv_direct_forward on AVX-512F (x86-64 only; the caller checks
 * the CPU).  Returns 0, having done nothing, for kernels too large for its
 * interleaved copy. */
int cvis__conv_direct_forward_avx512(const cvis__conv_geom *g, const float *x, const float *w,
                                     float *y, int64_t oy_begin, int64_t oy_end, int accumulate);

#endif
