/* Deletion and insertion curves and their areas (RISE's measures).
 * Pixels ranked by the map (highest first, ties to the lower index) are
 * removed -- set to the baseline image -- k = ceil(step * H * W) at a time,
 * or inserted into the baseline from the image; the curve is the model's
 * confidence (the score on the softmax of its logits) after each step, and
 * its area is the trapezoid rule over the fractions of pixels reached. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "metrics.h"
#include "model/pass.h"

#define METRIC_BATCH 32 /* images per forward pass */

cvis_status cvis__metric_check(const cvis_model *m, const cvis_tensor *x, const cvis_score *score,
                               const cvis_tensor *maps)
{
    CVIS_CHECK_ARG(m && x && score && maps, "model, input, score or maps is NULL");
    if (m->n_out != 1)
        return cvis__fail(CVIS_E_UNSUPPORTED, "the measures need a model with one output, not %d",
                          m->n_out);
    CVIS_TRY(cvis__check_input(m, x));
    CVIS_TRY(cvis__score_check(score, x->shape[0]));
    if (maps->ndim != 3 || maps->shape[0] != x->shape[0] || maps->shape[1] != x->shape[1] ||
        maps->shape[2] != x->shape[2]) {
        char a[96], b[96];
        cvis__shape ms = cvis__tensor_get_shape(maps), xs = cvis__tensor_get_shape(x);
        return cvis__fail(CVIS_E_SHAPE, "the maps are %s; for the input %s they must be (B,H,W)",
                          cvis__shape_str(&ms, a, sizeof a), cvis__shape_str(&xs, b, sizeof b));
    }
    return cvis__check_finite(maps->data, maps->size, "the maps");
}

cvis_status cvis__confidence_new(const cvis_model *m, cvis__confidence *cf)
{
    cf->soft = NULL;
    CVIS_TRY(cvis__pass_new(m, &cf->pass));
    cvis_status st = cvis__pass_set(cf->pass, CVIS_PASS_LOGITS, 1);
    if (st == CVIS_OK)
        st = cvis__pass_set(cf->pass, CVIS_PASS_INPUT_GRAD, 0);
    if (st != CVIS_OK)
        cvis__pass_free(cf->pass);
    return st;
}

void cvis__confidence_free(cvis__confidence *cf)
{
    cvis__pass_free(cf->pass);
    cvis_tensor_free(cf->soft);
}

cvis_status cvis__confidence_eval(cvis__confidence *cf, const cvis_tensor *rows, const int *image_of,
                                  int64_t n_images, const cvis_score *score, float *out)
{
    CVIS_TRY(cvis__pass_forward(cf->pass, rows));
    const cvis_tensor *o = cvis__pass_output(cf->pass, 0);
    if (!cf->soft || cf->soft->size < o->size) {
        cvis_tensor_free(cf->soft);
        cf->soft = NULL;
        CVIS_TRY(cvis__tensor_new(o->ndim, o->shape, 0, &cf->soft));
    }
    cvis__tensor_view(cf->soft, cf->soft->data, o->ndim, o->shape);
    cf->soft->owns = 1;
    memcpy(cf->soft->data, o->data, (size_t)o->size * sizeof(float));
    cvis__act_apply(CVIS_ACT_SOFTMAX, 0, cf->soft->data, o->size, o->shape[o->ndim - 1]);
    return cvis__score_eval(score, cf->soft, image_of, n_images, out, NULL);
}

/* k pixels per step: ceil(step * n), a product within 1e-12 of an integer
 * counting as that integer (0.1 * 100 is 10, not 11). */
static int64_t per_step(int64_t n, double step)
{
    double k = ceil(step * (double)n * (1.0 - 1e-12));
    return k < 1 ? 1 : (int64_t)k;
}

CVIS_API int64_t cvis_metric_curve_points(int64_t pixels, double step)
{
    if (pixels < 1 || !(step > 0 && step <= 1))
        return 0;
    int64_t k = per_step(pixels, step);
    return (pixels + k - 1) / k + 1;
}

typedef struct ranked {
    float v;
    int64_t i;
} ranked;

static int by_rank(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    if (a->v != b->v)
        return a->v > b->v ? -1 : 1;
    return a->i < b->i ? -1 : (a->i > b->i);
}

static cvis_status curves(const cvis_model *m, const cvis_tensor *x, const cvis_score *score,
                          const cvis_tensor *maps, double step, cvis_baseline baseline,
                          double sigma, cvis_tensor *curve_out, cvis_tensor *auc_out, int insert)
{
    CVIS_TRY(cvis__metric_check(m, x, score, maps));
    if (!(step > 0 && step <= 1))
        return cvis__fail(CVIS_E_INVALID_ARG, "the step is a fraction of the pixels in (0, 1], not %g",
                          step);
    if (baseline != CVIS_BASELINE_ZERO && baseline != CVIS_BASELINE_BLUR &&
        baseline != CVIS_BASELINE_MEAN)
        return cvis__fail(CVIS_E_INVALID_ARG, "the baseline of deletion and insertion is ZERO, BLUR "
                                              "or MEAN, not %d",
                          (int)baseline);
    int64_t B = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    int64_t HW = H * W, per = HW * C, k = per_step(HW, step), P = cvis_metric_curve_points(HW, step);
    if (curve_out && (curve_out->ndim != 2 || curve_out->shape[0] != B || curve_out->shape[1] != P))
        return cvis__fail(CVIS_E_SHAPE, "the curves tensor must be (%lld, %lld)", (long long)B,
                          (long long)P);
    if (auc_out && (auc_out->ndim != 1 || auc_out->shape[0] != B))
        return cvis__fail(CVIS_E_SHAPE, "the AUC tensor must be (%lld)", (long long)B);
    int64_t bytes;
    CVIS_TRY(cvis__mul_size(METRIC_BATCH + 2, per, "deletion", &bytes));
    CVIS_TRY(cvis__mul_size(bytes + METRIC_BATCH + B * P, (int64_t)sizeof(float), "deletion", &bytes));
    char *mem;
    CVIS_TRY(cvis__alloc((size_t)bytes + (size_t)HW * sizeof(ranked) +
                             (size_t)(B * per) * sizeof(float) + METRIC_BATCH * sizeof(int),
                         "deletion", (void **)&mem));
    ranked *order = (ranked *)mem;
    float *base = (float *)(order + HW), *cur = base + B * per, *batch = cur + per;
    float *conf = batch + METRIC_BATCH * per, *ys = conf + METRIC_BATCH;
    int *image_of = (int *)(ys + B * P);
    cvis__confidence cf;
    cvis_status st = cvis__make_baseline(baseline, x, sigma, NULL, NULL, base);
    if (st == CVIS_OK)
        st = cvis__confidence_new(m, &cf);
    if (st != CVIS_OK) {
        cvis__free(mem);
        return st;
    }
    int64_t rows = 0, row_j[METRIC_BATCH];
    for (int64_t b = 0; st == CVIS_OK && b < B; b++) {
        const float *xb = x->data + b * per, *bb = base + b * per, *mb = maps->data + b * HW;
        for (int64_t i = 0; i < HW; i++) {
            order[i].v = mb[i];
            order[i].i = i;
        }
        qsort(order, (size_t)HW, sizeof *order, by_rank);
        /* the image after j steps; pixels change source one step at a time */
        memcpy(cur, insert ? bb : xb, (size_t)per * sizeof(float));
        const float *src = insert ? xb : bb;
        for (int64_t j = 0; st == CVIS_OK && j < P; j++) {
            if (j > 0)
                for (int64_t r = (j - 1) * k; r < j * k && r < HW; r++) {
                    int64_t q = order[r].i * C;
                    memcpy(cur + q, src + q, (size_t)C * sizeof(float));
                }
            memcpy(batch + rows * per, cur, (size_t)per * sizeof(float));
            image_of[rows] = (int)b;
            row_j[rows] = j;
            rows++;
            if (rows < METRIC_BATCH && !(b == B - 1 && j == P - 1))
                continue;
            cvis_tensor xt;
            int64_t shape[4] = {rows, H, W, C};
            cvis__tensor_view(&xt, batch, 4, shape);
            st = cvis__confidence_eval(&cf, &xt, image_of, B, score, conf);
            for (int64_t r = 0; st == CVIS_OK && r < rows; r++)
                ys[image_of[r] * P + row_j[r]] = conf[r];
            rows = 0;
        }
    }
    cvis__confidence_free(&cf);
    if (st == CVIS_OK) {
        if (curve_out)
            memcpy(curve_out->data, ys, (size_t)(B * P) * sizeof(float));
        for (int64_t b = 0; auc_out && b < B; b++) {
            double area = 0;
            for (int64_t j = 0; j + 1 < P; j++) {
                double f0 = (double)(j * k < HW ? j * k : HW) / (double)HW;
                double f1 = (double)((j + 1) * k < HW ? (j + 1) * k : HW) / (double)HW;
                area += (f1 - f0) * 0.5 * ((double)ys[b * P + j] + ys[b * P + j + 1]);
            }
            auc_out->data[b] = (float)area;
        }
    }
    cvis__free(mem);
    return st;
}

CVIS_API cvis_status cvis_metric_deletion(const cvis_model *m, const cvis_tensor *x,
                                          const cvis_score *score, const cvis_tensor *maps,
                                          double step, cvis_baseline baseline, double blur_sigma,
                                          cvis_tensor *curves_out, cvis_tensor *auc)
{
    return curves(m, x, score, maps, step, baseline, blur_sigma, curves_out, auc, 0);
}

CVIS_API cvis_status cvis_metric_insertion(const cvis_model *m, const cvis_tensor *x,
                                           const cvis_score *score, const cvis_tensor *maps,
                                           double step, cvis_baseline baseline, double blur_sigma,
                                           cvis_tensor *curves_out, cvis_tensor *auc)
{
    return curves(m, x, score, maps, step, baseline, blur_sigma, curves_out, auc, 1);
}
