/* RISE: N random binary grids of (gh+1) x (gw+1) cells, each cell kept
 * with probability p (gh = ceil(H/c), gw = ceil(W/c) for a cell of c
 * pixels), upsampled bilinearly to cells of c x c pixels (half-pixel
 * centres, edges clamped) and shifted by (dy, dx) drawn from [0, c-1]:
 * mask[y][x] = up[y + dy][x + dx].  map = sum_i score(X * mask_i) mask_i /
 * (N p).  Draws, from the call's generator: for each mask its cells in
 * row-major order (uniform < p), then dy, then dx.  The same masks serve
 * every image of the batch.  Maps (B,H,W). */
#include <math.h>
#include <string.h>

#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"

typedef struct grid_set {
    int64_t gh, gw, cell;
    unsigned char *cells; /* N x (gh+1) x (gw+1) */
    int *shift;           /* N x 2: dy, dx */
} grid_set;

/* One mask (H,W) from grid i. */
static void make_mask(const grid_set *g, int64_t i, int64_t H, int64_t W, float *mask)
{
    const unsigned char *cells = g->cells + i * (g->gh + 1) * (g->gw + 1);
    int64_t dy = g->shift[2 * i], dx = g->shift[2 * i + 1], gw1 = g->gw + 1;
    for (int64_t y = 0; y < H; y++) {
        double sy = ((double)(y + dy) + 0.5) / (double)g->cell - 0.5;
        double fy0 = floor(sy), fy = sy - fy0;
        int64_t y0 = (int64_t)fy0, y1 = y0 + 1;
        y0 = y0 < 0 ? 0 : (y0 > g->gh ? g->gh : y0);
        y1 = y1 < 0 ? 0 : (y1 > g->gh ? g->gh : y1);
        for (int64_t x = 0; x < W; x++) {
            double sx = ((double)(x + dx) + 0.5) / (double)g->cell - 0.5;
            double fx0 = floor(sx), fx = sx - fx0;
            int64_t x0 = (int64_t)fx0, x1 = x0 + 1;
            x0 = x0 < 0 ? 0 : (x0 > g->gw ? g->gw : x0);
            x1 = x1 < 0 ? 0 : (x1 > g->gw ? g->gw : x1);
            double top = cells[y0 * gw1 + x0] * (1 - fx) + cells[y0 * gw1 + x1] * fx;
            double bot = cells[y1 * gw1 + x0] * (1 - fx) + cells[y1 * gw1 + x1] * fx;
            mask[y * W + x] = (float)(top * (1 - fy) + bot * fy);
        }
    }
}

static cvis_status rise_run(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                            const cvis_score *const *scores, float *out)
{
    int64_t B = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    int64_t HW = H * W, per = HW * C, N = c->o.rise_masks, bs = c->o.batch_size;
    double p = c->o.rise_p;
    grid_set g;
    g.cell = c->o.rise_cell ? c->o.rise_cell : (int64_t)ceil((double)(H > W ? H : W) / 7.0);
    g.gh = (H + g.cell - 1) / g.cell;
    g.gw = (W + g.cell - 1) / g.cell;
    int64_t n_cells, bytes;
    CVIS_TRY(cvis__mul_size((g.gh + 1) * (g.gw + 1), N, "RISE masks", &n_cells));
    CVIS_TRY(cvis__mul_size(bs, per + HW, "RISE batch", &bytes));
    CVIS_TRY(cvis__mul_size(bytes + bs, (int64_t)sizeof(float), "RISE batch", &bytes));
    CVIS_TRY(cvis__explain_pass(c, &c->pass, 0, -1));
    char *mem;
    CVIS_TRY(cvis__alloc((size_t)(B * HW) * sizeof(double) + (size_t)bytes +
                             (size_t)(2 * N + bs) * sizeof(int) + (size_t)n_cells,
                         "RISE", (void **)&mem));
    double *acc = (double *)mem;
    float *masks = (float *)(acc + B * HW), *batch = masks + bs * HW, *sv = batch + bs * per;
    g.shift = (int *)(sv + bs);
    int *image_of = g.shift + 2 * N;
    g.cells = (unsigned char *)(image_of + bs);
    memset(acc, 0, (size_t)(B * HW) * sizeof(double));
    cvis__rng rng;
    cvis__rng_seed(&rng, c->o.seed);
    for (int64_t i = 0; i < N; i++) {
        unsigned char *cells = g.cells + i * (g.gh + 1) * (g.gw + 1);
        for (int64_t k = 0; k < (g.gh + 1) * (g.gw + 1); k++)
            cells[k] = cvis__rng_uniform(&rng) < p;
        g.shift[2 * i] = (int)cvis__rng_int(&rng, 0, g.cell - 1);
        g.shift[2 * i + 1] = (int)cvis__rng_int(&rng, 0, g.cell - 1);
    }
    cvis_status st = CVIS_OK;
    int64_t done = 0;
    for (int64_t first = 0; st == CVIS_OK && first < N; first += bs) {
        int64_t n = N - first < bs ? N - first : bs;
        for (int64_t i = 0; i < n; i++)
            make_mask(&g, first + i, H, W, masks + i * HW);
        for (int64_t b = 0; st == CVIS_OK && b < B; b++) {
            const float *xb = x->data + b * per;
            for (int64_t i = 0; i < n; i++)
                for (int64_t q = 0; q < HW; q++)
                    for (int64_t k = 0; k < C; k++)
                        batch[i * per + q * C + k] = xb[q * C + k] * masks[i * HW + q];
            cvis_tensor xt;
            int64_t shape[4] = {n, H, W, C};
            cvis__tensor_view(&xt, batch, 4, shape);
            for (int64_t i = 0; i < n; i++)
                image_of[i] = (int)b;
            st = cvis__explain_rows(c, c->pass, &xt, image_of, B, n_scores, scores, sv, 0);
            for (int64_t i = 0; st == CVIS_OK && i < n; i++)
                for (int64_t q = 0; q < HW; q++)
                    acc[b * HW + q] += (double)sv[i] * masks[i * HW + q];
            done += n;
            if (st == CVIS_OK)
                st = cvis__explain_progress(c, done, N * B, "RISE");
        }
    }
    if (st == CVIS_OK) {
        for (int64_t q = 0; q < B * HW; q++)
            out[q] = (float)(acc[q] / ((double)N * p));
        if (c->o.normalize)
            cvis__normalize(out, B, HW);
    }
    cvis__free(mem);
    return st;
}

const cvis__method cvis__method_rise = {"rise", cvis__pixel_output_shape, rise_run, NULL, 0};
