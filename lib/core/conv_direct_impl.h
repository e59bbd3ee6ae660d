/* The kernels of conv_direct.c, included once per instruction set with
 * SUFFIX and TARGET set.  v8f is 8 floats (one AVX register, two SSE). */

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define NAME(f) CAT(f, SUFFIX)

TARGET static inline v8f NAME(load8)(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

TARGET static inline void NAME(add8)(float *p, v8f v)
{
    v8f o;
    memcpy(&o, p, sizeof o);
    o += v;
    memcpy(p, &o, sizeof o);
}

TARGET static void NAME(forward)(const cvis__conv_geom *g, const float *x, const float *w, float *y,
                                 int64_t oy_begin, int64_t oy_end, int accumulate)
{
    const int64_t C = g->C, cout = g->cout;
    int64_t lo, hi;
    cvis__conv_direct_interior(g, &lo, &hi);
    for (int64_t oy = oy_begin; oy < oy_end; oy++) {
        int ky0, ky1;
        cvis__conv_direct_rows(g, oy, &ky0, &ky1);
        for (int64_t cb = 0; cb < cout; cb += 8) {
            int64_t ox = 0;
            /* four interior pixels at a time: each weight vector is loaded once */
            for (ox = lo; ox + 4 <= hi; ox += 4) {
                v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
                for (int ky = ky0; ky < ky1; ky++) {
                    int64_t iy = oy * g->sh - g->pt + (int64_t)ky * g->dh;
                    for (int kx = 0; kx < g->kw; kx++) {
                        int64_t ix = ox * g->sw - g->pl + (int64_t)kx * g->dw;
                        const float *x0 = x + (iy * g->W + ix) * C, *x1 = x0 + g->sw * C;
                        const float *x2 = x1 + g->sw * C, *x3 = x2 + g->sw * C;
                        const float *wp = w + ((int64_t)(ky * g->kw + kx) * C) * cout + cb;
                        for (int64_t c = 0; c < C; c++) {
                            v8f wv = NAME(load8)(wp + c * cout);
                            a0 += x0[c] * wv;
                            a1 += x1[c] * wv;
                            a2 += x2[c] * wv;
                            a3 += x3[c] * wv;
                        }
                    }
                }
                float *yp = y + (oy * g->Wo + ox) * cout + cb;
                if (accumulate) {
                    NAME(add8)(yp, a0);
                    NAME(add8)(yp + cout, a1);
                    NAME(add8)(yp + 2 * cout, a2);
                    NAME(add8)(yp + 3 * cout, a3);
                } else {
                    memcpy(yp, &a0, sizeof a0);
                    memcpy(yp + cout, &a1, sizeof a1);
                    memcpy(yp + 2 * cout, &a2, sizeof a2);
                    memcpy(yp + 3 * cout, &a3, sizeof a3);
                }
            }
            /* the rest, one pixel at a time with bounds checks */
            for (int64_t px = 0; px < g->Wo; px++) {
                if (px >= lo && px < ox)
                    continue;
                v8f a = {0};
                for (int ky = ky0; ky < ky1; ky++) {
                    int64_t iy = oy * g->sh - g->pt + (int64_t)ky * g->dh;
                    for (int kx = 0; kx < g->kw; kx++) {
                        int64_t ix = px * g->sw - g->pl + (int64_t)kx * g->dw;
                        if (ix < 0 || ix >= g->W)
                            continue;
                        const float *xp = x + (iy * g->W + ix) * C;
                        const float *wp = w + ((int64_t)(ky * g->kw + kx) * C) * cout + cb;
                        for (int64_t c = 0; c < C; c++)
                            a += xp[c] * NAME(load8)(wp + c * cout);
                    }
                }
                if (accumulate)
                    NAME(add8)(y + (oy * g->Wo + px) * cout + cb, a);
                else
                    memcpy(y + (oy * g->Wo + px) * cout + cb, &a, sizeof a);
            }
        }
    }
}

TARGET static void NAME(weights)(const cvis__conv_geom *g, const float *x, const float *dy, float *dw,
                                 int64_t oy_begin, int64_t oy_end)
{
    const int64_t C = g->C, cout = g->cout;
    for (int ky = 0; ky < g->kh; ky++)
        for (int kx = 0; kx < g->kw; kx++) {
            /* output pixels whose tap (ky,kx) falls inside the input */
            int64_t oy0 = oy_begin, oy1 = oy_end, ox0 = 0, ox1 = g->Wo;
            while (oy0 < oy_end && oy0 * g->sh - g->pt + (int64_t)ky * g->dh < 0)
                oy0++;
            while (oy1 > oy0 && (oy1 - 1) * g->sh - g->pt + (int64_t)ky * g->dh >= g->H)
                oy1--;
            while (ox0 < g->Wo && ox0 * g->sw - g->pl + (int64_t)kx * g->dw < 0)
                ox0++;
            while (ox1 > ox0 && (ox1 - 1) * g->sw - g->pl + (int64_t)kx * g->dw >= g->W)
                ox1--;
            for (int64_t cb = 0; cb < cout; cb += 8)
                for (int64_t c = 0; c < C; c += 4) {
                    int n = C - c < 4 ? (int)(C - c) : 4;
                    v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
                    for (int64_t oy = oy0; oy < oy1; oy++) {
                        int64_t iy = oy * g->sh - g->pt + (int64_t)ky * g->dh;
                        const float *dyr = dy + oy * g->Wo * cout + cb;
                        const float *xr = x + (iy * g->W) * C + c;
                        for (int64_t ox = ox0; ox < ox1; ox++) {
                            v8f d = NAME(load8)(dyr + ox * cout);
                            const float *xp = xr + (ox * g->sw - g->pl + (int64_t)kx * g->dw) * C;
                            a0 += xp[0] * d;
                            if (n > 1)
                                a1 += xp[1] * d;
                            if (n > 2)
                                a2 += xp[2] * d;
                            if (n > 3)
                                a3 += xp[3] * d;
                        }
                    }
                    float *dp = dw + ((int64_t)(ky * g->kw + kx) * C + c) * cout + cb;
                    NAME(add8)(dp, a0);
                    if (n > 1)
                        NAME(add8)(dp + cout, a1);
                    if (n > 2)
                        NAME(add8)(dp + 2 * cout, a2);
                    if (n > 3)
                        NAME(add8)(dp + 3 * cout, a3);
                }
        }
}

TARGET static void NAME(data)(const cvis__conv_geom *g, const float *dy, const float *wt, float *dx)
{
    const int64_t C = g->C, cout = g->cout;
    for (int64_t oy = 0; oy < g->Ho; oy++)
        for (int64_t ox = 0; ox < g->Wo; ox++) {
            const float *d = dy + (oy * g->Wo + ox) * cout;
            for (int ky = 0; ky < g->kh; ky++) {
                int64_t iy = oy * g->sh - g->pt + (int64_t)ky * g->dh;
                if (iy < 0 || iy >= g->H)
                    continue;
                for (int kx = 0; kx < g->kw; kx++) {
                    int64_t ix = ox * g->sw - g->pl + (int64_t)kx * g->dw;
                    if (ix < 0 || ix >= g->W)
                        continue;
                    const float *wp = wt + (int64_t)(ky * g->kw + kx) * cout * C;
                    float *xp = dx + (iy * g->W + ix) * C;
                    for (int64_t cb = 0; cb < C; cb += 8) {
                        v8f a = {0};
                        for (int64_t co = 0; co < cout; co++)
                            a += d[co] * NAME(load8)(wp + co * C + cb);
                        NAME(add8)(xp + cb, a);
                    }
                }
            }
        }
}

#undef NAME
#undef CAT
#undef CAT2
