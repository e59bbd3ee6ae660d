/* The direct convolution's forward kernel for AVX-512 (conv_direct.c
 * calls it when the CPU has AVX-512F).  Its own file: the intrinsics
 * header stays away from conv_direct.c's AVX2 vector code. */
#include "conv_direct.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <string.h>

/* AVX-512: 16 lanes for 8 output channels by pairing input channels.
 * Lane 2j sums input channels 0, 2, 4, ... of output channel j and lane
 * 2j+1 channels 1, 3, 5, ...: an input pair (c, c+1) is adjacent in NHWC,
 * so one 64-bit broadcast feeds a whole register, and the two halves are
 * added at the end.  Weights are interleaved to match, per call, on the
 * stack: layers whose interleaved kernel is larger take the AVX2 path. */
#define PAIRED_WEIGHTS_MAX 8192

__attribute__((target("avx512f"))) static inline __m512 pair_at(const float *p)
{
    double d;
    memcpy(&d, p, sizeof d);
    return _mm512_castpd_ps(_mm512_set1_pd(d));
}

/* out[j] = lane 2j + lane 2j+1, as 8 floats */
__attribute__((target("avx512f"))) static inline __m256 pair_sum(__m512 a)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    __m512 s = _mm512_add_ps(a, _mm512_permute_ps(a, 0xB1));
    return _mm512_castps512_ps256(_mm512_permutexvar_ps(even, s));
}

__attribute__((target("avx512f"))) static inline void pair_store(float *y, __m512 a, int accumulate)
{
    __m256 r = pair_sum(a);
    if (accumulate)
        r = _mm256_add_ps(r, _mm256_loadu_ps(y));
    _mm256_storeu_ps(y, r);
}

__attribute__((target("avx512f"))) int cvis__conv_direct_forward_avx512(const cvis__conv_geom *g,
                                                             const float *x, const float *w,
                                                             float *y, int64_t oy_begin,
                                                             int64_t oy_end, int accumulate)
{
    const int64_t C = g->C, cout = g->cout, full = C / 2, pairs = (C + 1) / 2;
    const int64_t taps = (int64_t)g->kh * g->kw, blocks = cout / 8;
    if (taps * blocks * pairs * 16 > PAIRED_WEIGHTS_MAX)
        return 0;
    float wi[PAIRED_WEIGHTS_MAX] __attribute__((aligned(64)));
    for (int64_t t = 0; t < taps; t++)
        for (int64_t b = 0; b < blocks; b++)
            for (int64_t p = 0; p < pairs; p++) {
                float *d = wi + ((t * blocks + b) * pairs + p) * 16;
                const float *s0 = w + (t * C + 2 * p) * cout + b * 8;
                for (int j = 0; j < 8; j++) {
                    d[2 * j] = s0[j];
                    d[2 * j + 1] = 2 * p + 1 < C ? s0[cout + j] : 0.0f;
                }
            }
    int64_t lo, hi;
    cvis__conv_direct_interior(g, &lo, &hi);
    const int64_t step = g->sw * C;
    for (int64_t oy = oy_begin; oy < oy_end; oy++) {
        int ky0 = 0, ky1 = g->kh;
        while (ky0 < g->kh && oy * g->sh - g->pt + (int64_t)ky0 * g->dh < 0)
            ky0++;
        while (ky1 > ky0 && oy * g->sh - g->pt + (int64_t)(ky1 - 1) * g->dh >= g->H)
            ky1--;
        for (int64_t b = 0; b < blocks; b++) {
            int64_t ox;
            /* eight interior pixels at a time */
            for (ox = lo; ox + 8 <= hi; ox += 8) {
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0,
                       a6 = a0, a7 = a0;
                for (int ky = ky0; ky < ky1; ky++) {
                    int64_t iy = oy * g->sh - g->pt + (int64_t)ky * g->dh;
                    for (int kx = 0; kx < g->kw; kx++) {
                        int64_t ix = ox * g->sw - g->pl + (int64_t)kx * g->dw;
                        const float *x0 = x + (iy * g->W + ix) * C;
                        const float *wp = wi + (((int64_t)ky * g->kw + kx) * blocks + b) * pairs * 16;
                        for (int64_t p = 0; p < pairs; p++) {
                            __m512 wv = _mm512_load_ps(wp + p * 16);
                            const float *xc = x0 + 2 * p;
                            if (p < full) {
                                a0 = _mm512_fmadd_ps(pair_at(xc), wv, a0);
                                a1 = _mm512_fmadd_ps(pair_at(xc + step), wv, a1);
                                a2 = _mm512_fmadd_ps(pair_at(xc + 2 * step), wv, a2);
                                a3 = _mm512_fmadd_ps(pair_at(xc + 3 * step), wv, a3);
                                a4 = _mm512_fmadd_ps(pair_at(xc + 4 * step), wv, a4);
                                a5 = _mm512_fmadd_ps(pair_at(xc + 5 * step), wv, a5);
                                a6 = _mm512_fmadd_ps(pair_at(xc + 6 * step), wv, a6);
                                a7 = _mm512_fmadd_ps(pair_at(xc + 7 * step), wv, a7);
                            } else { /* the odd last channel: its partner's weights are 0 */
                                a0 = _mm512_fmadd_ps(_mm512_set1_ps(xc[0]), wv, a0);
                                a1 = _mm512_fmadd_ps(_mm512_set1_ps(xc[step]), wv, a1);
                                a2 = _mm512_fmadd_ps(_mm512_set1_ps(xc[2 * step]), wv, a2);
                                a3 = _mm512_fmadd_ps(_mm512_set1_ps(xc[3 * step]), wv, a3);
                                a4 = _mm512_fmadd_ps(_mm512_set1_ps(xc[4 * step]), wv, a4);
                                a5 = _mm512_fmadd_ps(_mm512_set1_ps(xc[5 * step]), wv, a5);
                                a6 = _mm512_fmadd_ps(_mm512_set1_ps(xc[6 * step]), wv, a6);
                                a7 = _mm512_fmadd_ps(_mm512_set1_ps(xc[7 * step]), wv, a7);
                            }
                        }
                    }
                }
                float *yp = y + (oy * g->Wo + ox) * cout + b * 8;
                pair_store(yp, a0, accumulate);
                pair_store(yp + cout, a1, accumulate);
                pair_store(yp + 2 * cout, a2, accumulate);
                pair_store(yp + 3 * cout, a3, accumulate);
                pair_store(yp + 4 * cout, a4, accumulate);
                pair_store(yp + 5 * cout, a5, accumulate);
                pair_store(yp + 6 * cout, a6, accumulate);
                pair_store(yp + 7 * cout, a7, accumulate);
            }
            /* the rest, one pixel at a time with bounds checks */
            for (int64_t px = 0; px < g->Wo; px++) {
                if (px >= lo && px < ox)
                    continue;
                __m512 a = _mm512_setzero_ps();
                for (int ky = ky0; ky < ky1; ky++) {
                    int64_t iy = oy * g->sh - g->pt + (int64_t)ky * g->dh;
                    for (int kx = 0; kx < g->kw; kx++) {
                        int64_t ix = px * g->sw - g->pl + (int64_t)kx * g->dw;
                        if (ix < 0 || ix >= g->W)
                            continue;
                        const float *xp = x + (iy * g->W + ix) * C;
                        const float *wp = wi + (((int64_t)ky * g->kw + kx) * blocks + b) * pairs * 16;
                        for (int64_t p = 0; p < pairs; p++) {
                            __m512 xv = p < full ? pair_at(xp + 2 * p) : _mm512_set1_ps(xp[2 * p]);
                            a = _mm512_fmadd_ps(xv, _mm512_load_ps(wp + p * 16), a);
                        }
                    }
                }
                pair_store(y + (oy * g->Wo + px) * cout + b * 8, a, accumulate);
            }
        }
    }
    return 1;
}
#endif
