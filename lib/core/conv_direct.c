/* Direct convolution kernels, compiled for AVX2+FMA and for the baseline
 * instruction set (and conv_direct_avx512.c's forward kernel); each call
 * picks by what the CPU supports. */
#include "conv_direct.h"

#include <string.h>

#include "isa.h"

typedef float v8f __attribute__((vector_size(32)));

/* v8f values only live inside these static functions, so the ABI note
 * about passing AVX vectors without AVX does not concern any caller. */
#if defined(__GNUC__) /* clang too: it reads GCC pragmas and has -Wpsabi */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

void cvis__conv_direct_rows(const cvis__conv_geom *g, int64_t oy, int *ky0, int *ky1)
{
    int a = 0, b = g->kh;
    while (a < g->kh && oy * g->sh - g->pt + (int64_t)a * g->dh < 0)
        a++;
    while (b > a && oy * g->sh - g->pt + (int64_t)(b - 1) * g->dh >= g->H)
        b--;
    *ky0 = a;
    *ky1 = b;
}

void cvis__conv_direct_interior(const cvis__conv_geom *g, int64_t *lo, int64_t *hi)
{
    int64_t a = (g->pl + g->sw - 1) / g->sw;
    int64_t last = g->W - 1 - (int64_t)(g->kw - 1) * g->dw + g->pl; /* ox*sw <= last */
    int64_t b = last < 0 ? -1 : last / g->sw;
    *lo = a < g->Wo ? a : g->Wo;
    *hi = b + 1 < g->Wo ? b + 1 : g->Wo;
    if (*hi < *lo)
        *hi = *lo;
}


#define SUFFIX _generic
#define TARGET
#include "conv_direct_impl.h"
#undef SUFFIX
#undef TARGET

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_AVX2_KERNELS 1
#define SUFFIX _avx2
#define TARGET __attribute__((target("avx2,fma")))
#include "conv_direct_impl.h"
#undef SUFFIX
#undef TARGET
#endif

#ifdef HAVE_AVX2_KERNELS
static int use_avx2(void)
{
    return cvis__isa() >= CVIS__ISA_AVX2;
}

static int use_avx512(void)
{
    return cvis__isa() >= CVIS__ISA_AVX512;
}
#endif

void cvis__conv_direct_forward(const cvis__conv_geom *g, const float *x, const float *w, float *y,
                               int64_t oy_begin, int64_t oy_end, int accumulate)
{
#ifdef HAVE_AVX2_KERNELS
    if (use_avx512() && cvis__conv_direct_forward_avx512(g, x, w, y, oy_begin, oy_end, accumulate))
        return;
    if (use_avx2()) {
        forward_avx2(g, x, w, y, oy_begin, oy_end, accumulate);
        return;
    }
#endif
    forward_generic(g, x, w, y, oy_begin, oy_end, accumulate);
}

void cvis__conv_direct_weights(const cvis__conv_geom *g, const float *x, const float *dy, float *dw,
                               int64_t oy_begin, int64_t oy_end)
{
#ifdef HAVE_AVX2_KERNELS
    if (use_avx2()) {
        weights_avx2(g, x, dy, dw, oy_begin, oy_end);
        return;
    }
#endif
    weights_generic(g, x, dy, dw, oy_begin, oy_end);
}

void cvis__conv_direct_data(const cvis__conv_geom *g, const float *dy, const float *wt, float *dx)
{
#ifdef HAVE_AVX2_KERNELS
    if (use_avx2()) {
        data_avx2(g, dy, wt, dx);
        return;
    }
#endif
    data_generic(g, dy, wt, dx);
}
