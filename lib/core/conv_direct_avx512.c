/* The direct convolution's forward kernel for AVX-512 (conv_direct.c
 * calls it when the CPU has AVX-512F).  Its own file: the intrinsics
 * header stays away from conv_direct.c's AVX2 vector code. */
#include "conv_direct.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <string.h>

/* AVX-512: 16 lanes for 8 output channels by pairing inputs.  With unit
 * dilation, a kernel row's taps read kw * C adjacent input values (NHWC);
 * they are taken two at a time: lane 2j sums the even ones' products for
 * output channel j and lane 2j+1 the odd ones', and the halves are added
 * at the end.  One 64-bit broadcast then feeds a whole register.  Weights
 * are interleaved to match, per call, on the stack: layers whose
 * interleaved kernel is larger, and dilated ones, take the AVX2 path. */
#define PAIRED_WEIGHTS_MAX 4096 /* floats: 16 KiB of stack */

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

#define FMA8(load)                                                                         \
    a0 = _mm512_fmadd_ps(load(xc), wv, a0), a1 = _mm512_fmadd_ps(load(xc + step), wv, a1), \
    a2 = _mm512_fmadd_ps(load(xc + 2 * step), wv, a2),                                     \
    a3 = _mm512_fmadd_ps(load(xc + 3 * step), wv, a3),                                     \
    a4 = _mm512_fmadd_ps(load(xc + 4 * step), wv, a4),                                     \
    a5 = _mm512_fmadd_ps(load(xc + 5 * step), wv, a5),                                     \
    a6 = _mm512_fmadd_ps(load(xc + 6 * step), wv, a6),                                     \
    a7 = _mm512_fmadd_ps(load(xc + 7 * step), wv, a7)
#define ONE(p) _mm512_set1_ps(*(p))

__attribute__((target("avx512f"))) int cvis__conv_direct_forward_avx512(const cvis__conv_geom *g,
                                                             const float *x, const float *w,
                                                             float *y, int64_t oy_begin,
                                                             int64_t oy_end, int accumulate)
{
    const int64_t C = g->C, cout = g->cout, run = g->kw * C, full = run / 2;
    const int64_t pairs = (run + 1) / 2, blocks = cout / 8;
    if (g->dw != 1 || blocks * g->kh * pairs * 16 > PAIRED_WEIGHTS_MAX)
        return 0;
    /* wi[b][ky][q]: 16 floats for values 2q and 2q+1 of kernel row ky's run */
    float wi[PAIRED_WEIGHTS_MAX] __attribute__((aligned(64)));
    for (int64_t b = 0; b < blocks; b++)
        for (int64_t ky = 0; ky < g->kh; ky++)
            for (int64_t q = 0; q < pairs; q++) {
                float *d = wi + ((b * g->kh + ky) * pairs + q) * 16;
                const float *s0 = w + (ky * run + 2 * q) * cout + b * 8;
                for (int j = 0; j < 8; j++) {
                    d[2 * j] = s0[j];
                    d[2 * j + 1] = 2 * q + 1 < run ? s0[cout + j] : 0.0f;
                }
            }
    int64_t lo, hi;
    cvis__conv_direct_interior(g, &lo, &hi);
    const int64_t step = g->sw * C;
    for (int64_t oy = oy_begin; oy < oy_end; oy++) {
        int ky0, ky1;
        cvis__conv_direct_rows(g, oy, &ky0, &ky1);
        for (int64_t b = 0; b < blocks; b++) {
            /* eight interior pixels at a time; when the interior is not a
             * multiple of eight, the last block ends at its end and
             * stores only the pixels the previous block did not */
            int64_t done = lo;
            for (int64_t ox = lo; hi - lo >= 8 && done < hi; ox = ox + 16 <= hi ? ox + 8 : hi - 8) {
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0,
                       a6 = a0, a7 = a0;
                for (int ky = ky0; ky < ky1; ky++) {
                    int64_t iy = oy * g->sh - g->pt + (int64_t)ky * g->dh;
                    const float *x0 = x + (iy * g->W + ox * g->sw - g->pl) * C;
                    const float *wp = wi + (b * g->kh + ky) * pairs * 16;
                    for (int64_t q = 0; q < full; q++) {
                        __m512 wv = _mm512_load_ps(wp + q * 16);
                        const float *xc = x0 + 2 * q;
                        FMA8(pair_at);
                    }
                    if (run & 1) { /* the last value alone: its partner's weights are 0 */
                        __m512 wv = _mm512_load_ps(wp + full * 16);
                        const float *xc = x0 + 2 * full;
                        FMA8(ONE);
                    }
                }
                float *yp = y + (oy * g->Wo + ox) * cout + b * 8;
                __m512 acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
                for (int k = 0; k < 8; k++)
                    if (ox + k >= done)
                        pair_store(yp + k * cout, acc[k], accumulate);
                done = ox + 8;
            }
            /* the rest, one pixel and one value at a time with bounds
             * checks: value k of a run is lane half k % 2 of pair k / 2 */
            for (int64_t px = 0; px < g->Wo; px++) {
                if (px >= lo && px < done)
                    continue;
                __m512 a = _mm512_setzero_ps();
                for (int ky = ky0; ky < ky1; ky++) {
                    int64_t iy = oy * g->sh - g->pt + (int64_t)ky * g->dh;
                    const float *wp = wi + (b * g->kh + ky) * pairs * 16;
                    for (int kx = 0; kx < g->kw; kx++) {
                        int64_t ix = px * g->sw - g->pl + kx;
                        if (ix < 0 || ix >= g->W)
                            continue;
                        const float *xp = x + (iy * g->W + ix) * C;
                        for (int64_t c = 0; c < C; c++) {
                            int64_t k = kx * C + c;
                            a = _mm512_mask3_fmadd_ps(_mm512_set1_ps(xp[c]),
                                                      _mm512_load_ps(wp + (k / 2) * 16), a,
                                                      k % 2 ? 0xAAAA : 0x5555);
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
