/* Integrated Gradients: a = (X - X0) * sum_i w_i dT/dX at X0 + a_i (X - X0),
 * the path integral from the baseline X0 to X by a quadrature rule on
 * [0, 1]: Gauss-Legendre, or Captum's Riemann rules (left, right, middle,
 * trapezoid, with Captum's nodes and weights exactly: its trapezoid weights
 * are 1/n with both ends halved).  The B * n interpolated images run in
 * batches of CVIS_OPT_BATCH_SIZE rows.  Per image, the completeness delta
 * sum(a) - (s(X) - s(X0)) says how well the rule integrated. */
#include <math.h>
#include <string.h>

#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"
#include "model/pass.h"

/* Gauss-Legendre nodes (ascending) and weights on [0, 1]: the roots of the
 * Legendre polynomial P_n by Newton's method from Tricomi's estimates,
 * weights 2 / ((1 - x^2) P_n'(x)^2), mapped from [-1, 1]. */
static void gauss_legendre(int n, double *a, double *w)
{
    for (int i = 0; i < (n + 1) / 2; i++) {
        double z = cos(M_PI * (i + 0.75) / (n + 0.5)), p1 = 1, p2 = 0, dp = 1;
        for (int iter = 0; iter < 100; iter++) {
            p1 = 1;
            p2 = 0;
            for (int j = 1; j <= n; j++) {
                double p3 = p2;
                p2 = p1;
                p1 = ((2.0 * j - 1.0) * z * p2 - (j - 1.0) * p3) / j;
            }
            dp = n * (z * p1 - p2) / (z * z - 1.0);
            double dz = p1 / dp;
            z -= dz;
            if (fabs(dz) < 1e-16)
                break;
        }
        /* P_n' at the converged root, for the weight */
        p1 = 1;
        p2 = 0;
        for (int j = 1; j <= n; j++) {
            double p3 = p2;
            p2 = p1;
            p1 = ((2.0 * j - 1.0) * z * p2 - (j - 1.0) * p3) / j;
        }
        dp = n * (z * p1 - p2) / (z * z - 1.0);
        double weight = 2.0 / ((1.0 - z * z) * dp * dp);
        a[n - 1 - i] = 0.5 * (1.0 + z);
        a[i] = 0.5 * (1.0 - z);
        w[n - 1 - i] = w[i] = 0.5 * weight;
    }
    if (n % 2)
        a[n / 2] = 0.5; /* the middle root is 0 exactly */
}

/* numpy's linspace(start, stop, n), which Captum's Riemann nodes use. */
static void linspace(double start, double stop, int n, double *a)
{
    double step = (stop - start) / (n - 1);
    for (int i = 0; i < n; i++)
        a[i] = start + i * step;
    a[n - 1] = stop;
}

static cvis_status ig_rule(int rule, int n, double *a, double *w)
{
    if (rule == CVIS_IG_GAUSS_LEGENDRE) {
        gauss_legendre(n, a, w);
        return CVIS_OK;
    }
    if (n < 2)
        return cvis__fail(CVIS_E_INVALID_ARG, "the Riemann rules need at least 2 steps, not %d", n);
    for (int i = 0; i < n; i++)
        w[i] = 1.0 / n;
    switch (rule) {
    case CVIS_IG_RIEMANN_LEFT: linspace(0, 1 - 1.0 / n, n, a); break;
    case CVIS_IG_RIEMANN_RIGHT: linspace(1.0 / n, 1, n, a); break;
    case CVIS_IG_RIEMANN_MIDDLE: linspace(1.0 / (2 * n), 1 - 1.0 / (2 * n), n, a); break;
    default:
        linspace(0, 1, n, a);
        w[0] /= 2;
        w[n - 1] /= 2;
        break;
    }
    return CVIS_OK;
}

static cvis_status ig_attribute(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                                const cvis_score *const *scores, float *raw)
{
    int64_t B = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    int64_t per = H * W * C, n = c->o.ig_steps, bs = c->o.batch_size, total = B * n;
    int64_t bytes, rows_bytes;
    CVIS_TRY(cvis__mul_size(B, per, "integrated gradients", &bytes));
    CVIS_TRY(cvis__mul_size(bs, per, "integrated gradients batch", &rows_bytes));
    CVIS_TRY(cvis__mul_size(bytes * 3 + rows_bytes + bs + B, (int64_t)sizeof(float),
                            "integrated gradients", &bytes));
    char *mem;
    CVIS_TRY(cvis__alloc((size_t)bytes + (size_t)(2 * n) * sizeof(double) +
                             (size_t)(2 * bs) * sizeof(int),
                         "integrated gradients", (void **)&mem));
    /* doubles first: acc (B*per, as two floats each), nodes, weights */
    double *acc = (double *)mem, *alpha = acc + B * per, *weight = alpha + n;
    float *x0 = (float *)(weight + n), *batch = x0 + B * per, *sv = batch + bs * per;
    int *image_of = (int *)(sv + (bs > B ? bs : B)), *step_of = image_of + bs;
    memset(acc, 0, (size_t)(B * per) * sizeof(double));
    cvis__rng rng;
    cvis__rng_seed(&rng, c->o.seed);
    cvis_status st = ig_rule(c->o.ig_rule, (int)n, alpha, weight);
    if (st == CVIS_OK)
        st = cvis__make_baseline(c->o.baseline, x, c->o.blur_sigma, c->o.baseline_tensor, &rng, x0);
    if (st == CVIS_OK)
        st = cvis__explain_pass(c, &c->pass, 1, -1);
    int64_t rows = 0;
    for (int64_t item = 0; st == CVIS_OK && item < total; item++) {
        int64_t b = item / n, i = item % n;
        const float *xb = x->data + b * per, *x0b = x0 + b * per;
        float *dst = batch + rows * per, ai = (float)alpha[i];
        for (int64_t q = 0; q < per; q++)
            dst[q] = x0b[q] + ai * (xb[q] - x0b[q]);
        image_of[rows] = (int)b;
        step_of[rows] = (int)i;
        rows++;
        if (rows < bs && item < total - 1)
            continue;
        cvis_tensor xt;
        int64_t shape[4] = {rows, H, W, C};
        cvis__tensor_view(&xt, batch, 4, shape);
        st = cvis__explain_rows(c, c->pass, &xt, image_of, B, n_scores, scores, NULL, 1);
        if (st == CVIS_OK) {
            const float *g = cvis__pass_input_grad(c->pass)->data;
            for (int64_t r = 0; r < rows; r++) {
                double wi = weight[step_of[r]];
                double *ab = acc + (int64_t)image_of[r] * per;
                for (int64_t q = 0; q < per; q++)
                    ab[q] += wi * g[r * per + q];
            }
            st = cvis__explain_progress(c, item + 1, total, "integrated gradients");
        }
        rows = 0;
    }
    for (int64_t q = 0; st == CVIS_OK && q < B * per; q++)
        raw[q] = (float)(((double)x->data[q] - x0[q]) * acc[q]);
    /* completeness: the scores at both ends of the path */
    double *delta = NULL, *s_x = NULL, *s_x0 = NULL;
    if (st == CVIS_OK)
        st = cvis__info_row(c, CVIS_INFO_SCORE, B, &s_x);
    if (st == CVIS_OK)
        st = cvis__info_row(c, CVIS_INFO_BASELINE_SCORE, B, &s_x0);
    if (st == CVIS_OK)
        st = cvis__info_row(c, CVIS_INFO_COMPLETENESS_DELTA, B, &delta);
    if (st == CVIS_OK)
        st = cvis__explain_rows(c, c->pass, x, NULL, B, n_scores, scores, sv, 0);
    for (int64_t b = 0; st == CVIS_OK && b < B; b++)
        s_x[b] = sv[b];
    if (st == CVIS_OK) {
        cvis_tensor xt;
        cvis__tensor_view(&xt, x0, 4, x->shape);
        st = cvis__explain_rows(c, c->pass, &xt, NULL, B, n_scores, scores, sv, 0);
    }
    for (int64_t b = 0; st == CVIS_OK && b < B; b++) {
        double sum = 0;
        for (int64_t q = 0; q < per; q++)
            sum += raw[b * per + q];
        s_x0[b] = sv[b];
        delta[b] = sum - (s_x[b] - s_x0[b]);
    }
    if (st != CVIS_OK)
        cvis__info_clear(c);
    cvis__free(mem);
    return st;
}

const cvis__method cvis__method_intgrad = {"integrated-gradients", cvis__input_output_shape,
                                           cvis__input_run, ig_attribute, CVIS_REDUCE_SUM};
