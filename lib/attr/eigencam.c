/* Eigen-CAM: per image, the activations as an (h*w, K) matrix with each
 * channel centred on its spatial mean, projected on their first principal
 * direction v (the first right singular vector).  v is the top eigenvector
 * of the K x K matrix Ac^T Ac, so no (h*w) x (h*w) matrix is ever formed.
 * The singular vector's sign is arbitrary: it is chosen so that the
 * projection correlates positively with the channel sum of the
 * activations.  Then relu, expand, normalize.  No gradients, no scores. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"
#include "model/pass.h"

/* LAPACK's symmetric eigensolver (OpenBLAS carries LAPACK).  The trailing
 * lengths are the Fortran hidden lengths of the three character
 * arguments. */
extern void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n, double *a,
                    const int *lda, const double *vl, const double *vu, const int *il,
                    const int *iu, const double *abstol, int *m, double *w, double *z,
                    const int *ldz, int *isuppz, double *work, const int *lwork, int *iwork,
                    const int *liwork, int *info, size_t, size_t, size_t);

/* The eigenvector of the largest eigenvalue of the symmetric K x K g
 * (destroyed) into v.  LAPACK may write all K entries of the eigenvalue
 * array even when one eigenvalue is asked for, so it gets K of them. */
static cvis_status top_eigenvector(double *g, int K, double *v)
{
    int il = K, iu = K, m = 0, info = 0, lwork = -1, liwork = -1, isuppz[2], iq;
    double vl = 0, vu = 0, abstol = 0, wq, evq[1];
    dsyevr_("V", "I", "U", &K, g, &K, &vl, &vu, &il, &iu, &abstol, &m, evq, v, &K, isuppz, &wq,
            &lwork, &iq, &liwork, &info, 1, 1, 1);
    if (info != 0)
        return cvis__fail(CVIS_E_INTERNAL, "eigen-cam: workspace query failed (%d)", info);
    lwork = (int)wq;
    liwork = iq;
    double *work;
    CVIS_TRY(cvis__alloc(((size_t)lwork + (size_t)K) * sizeof(double) +
                             (size_t)liwork * sizeof(int),
                         "eigen-cam", (void **)&work));
    double *ev = work + lwork;
    dsyevr_("V", "I", "U", &K, g, &K, &vl, &vu, &il, &iu, &abstol, &m, ev, v, &K, isuppz, work,
            &lwork, (int *)(ev + K), &liwork, &info, 1, 1, 1);
    cvis__free(work);
    if (info != 0 || m != 1)
        return cvis__fail(CVIS_E_INTERNAL, "eigen-cam: the eigensolver failed (%d)", info);
    return CVIS_OK;
}

static cvis_status eigencam_run(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                                const cvis_score *const *scores, float *out)
{
    int l;
    CVIS_TRY(cvis__explain_cam_layer(c, &l));
    c->layer = l;
    CVIS_TRY(cvis__explain_pass(c, &c->pass, 0, -1));
    CVIS_TRY(cvis__pass_forward(c->pass, x));
    const cvis_tensor *A = cvis__pass_layer_output(c->pass, l);
    int64_t B = A->shape[0], h = A->shape[1], w = A->shape[2], K = A->shape[3], hw = h * w;
    if (K > 46340)
        return cvis__fail(CVIS_E_LIMIT, "eigen-cam: %lld channels are too many", (long long)K);
    int64_t n;
    CVIS_TRY(cvis__mul_size(hw + K + 1, K, "eigen-cam", &n));
    CVIS_TRY(cvis__mul_size(n + hw, (int64_t)sizeof(double), "eigen-cam", &n));
    double *ac, *g, *v, *proj;
    float *cam;
    CVIS_TRY(cvis__alloc((size_t)n + (size_t)(B * hw) * sizeof(float), "eigen-cam", (void **)&ac));
    g = ac + hw * K;
    v = g + K * K;
    proj = v + K;
    cam = (float *)(proj + hw);
    cvis_status st = CVIS_OK;
    for (int64_t b = 0; b < B && st == CVIS_OK; b++) {
        const float *ab = A->data + b * hw * K;
        for (int64_t k = 0; k < K; k++) {
            double m = 0;
            for (int64_t p = 0; p < hw; p++)
                m += ab[p * K + k];
            m /= (double)hw;
            for (int64_t p = 0; p < hw; p++)
                ac[p * K + k] = ab[p * K + k] - m;
        }
        /* upper triangle of Ac^T Ac, column-major as LAPACK reads it */
        cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, (int)K, (int)hw, 1.0, ac, (int)K, 0.0,
                    g, (int)K);
        st = top_eigenvector(g, (int)K, v);
        if (st != CVIS_OK)
            break;
        double corr = 0;
        for (int64_t p = 0; p < hw; p++) {
            double s = 0, sum = 0;
            for (int64_t k = 0; k < K; k++) {
                s += ac[p * K + k] * v[k];
                sum += ab[p * K + k];
            }
            proj[p] = s;
            corr += s * sum; /* the projection has zero mean: this is the covariance */
        }
        double sign = corr < 0 ? -1.0 : 1.0;
        for (int64_t p = 0; p < hw; p++) {
            double s = sign * proj[p];
            cam[b * hw + p] = s > 0 ? (float)s : 0.0f;
        }
    }
    if (st == CVIS_OK)
        st = cvis__finish_cam(c, cam, B, h, w, x->shape[1], x->shape[2], out);
    cvis__free(ac);
    (void)n_scores;
    (void)scores;
    return st;
}

const cvis__method cvis__method_eigencam = {"eigencam", cvis__cam_output_shape, eigencam_run, NULL, 0};
