/* Batched matrix product (..., M, K) x (..., K, N) -> (..., M, N), with the
 * leading axes broadcast as numpy does, one SGEMM per matrix pair. */
#include <string.h>

#include "error.h"
#include "gemm.h"
#include "ops.h"

static cvis_status matmul_shape(const void *attr, int n_in, const cvis__shape *in,
                                cvis__shape *out)
{
    (void)attr;
    if (n_in != 2 || in[0].ndim < 2 || in[1].ndim < 2)
        return cvis__fail(CVIS_E_SHAPE, "matmul needs two inputs of rank 2 or more");
    const cvis__shape *a = &in[0], *b = &in[1];
    if (a->d[a->ndim - 1] != b->d[b->ndim - 2]) {
        char sa[96], sb[96];
        return cvis__fail(CVIS_E_SHAPE, "matmul of %s and %s", cvis__shape_str(a, sa, sizeof sa),
                          cvis__shape_str(b, sb, sizeof sb));
    }
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    out->ndim = nd;
    for (int i = 0; i < nd - 2; i++) {
        int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
        int64_t da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return cvis__fail(CVIS_E_SHAPE, "matmul: leading axes do not broadcast");
        out->d[i] = da == 1 ? db : da;
    }
    out->d[nd - 2] = a->d[a->ndim - 2];
    out->d[nd - 1] = b->d[b->ndim - 1];
    return CVIS_OK;
}

/* Offset (in matrices) of operand t's matrix for output batch index `flat`. */
static int64_t batch_offset(const cvis_tensor *t, const cvis_tensor *y, int64_t flat)
{
    int nb = y->ndim - 2, off = nb - (t->ndim - 2);
    int64_t o = 0, stride = 1;
    for (int i = nb - 1; i >= 0; i--) {
        int64_t idx = flat % y->shape[i];
        flat /= y->shape[i];
        int j = i - off;
        if (j < 0)
            continue;
        int64_t d = t->shape[j];
        if (d != 1)
            o += idx * stride;
        stride *= d;
    }
    return o;
}

static void dims(const cvis_tensor *a, const cvis_tensor *b, const cvis_tensor *y, int64_t *M,
                 int64_t *K, int64_t *N, int64_t *batches)
{
    *M = a->shape[a->ndim - 2];
    *K = a->shape[a->ndim - 1];
    *N = b->shape[b->ndim - 1];
    *batches = 1;
    for (int i = 0; i < y->ndim - 2; i++)
        *batches *= y->shape[i];
}

static cvis_status matmul_forward(cvis__op_args *args)
{
    const cvis_tensor *a = args->in[0], *b = args->in[1];
    int64_t M, K, N, nb;
    dims(a, b, args->out, &M, &K, &N, &nb);
    for (int64_t t = 0; t < nb; t++) {
        const float *pa = a->data + batch_offset(a, args->out, t) * M * K;
        const float *pb = b->data + batch_offset(b, args->out, t) * K * N;
        float *py = args->out->data + t * M * N;
        if (K == 0) {
            memset(py, 0, (size_t)(M * N) * sizeof(float));
            continue;
        }
        cvis__sgemm(CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, pa,
                    (int)K, pb, (int)N, 0.0f, py, (int)N);
    }
    return CVIS_OK;
}

static cvis_status matmul_backward(cvis__op_args *args)
{
    const cvis_tensor *a = args->in[0], *b = args->in[1];
    int64_t M, K, N, nb;
    dims(a, b, args->out, &M, &K, &N, &nb);
    if (K == 0 || M == 0 || N == 0)
        return CVIS_OK;
    for (int64_t t = 0; t < nb; t++) {
        int64_t oa = batch_offset(a, args->out, t) * M * K, ob = batch_offset(b, args->out, t) * K * N;
        const float *dy = args->dout + t * M * N;
        /* dA += dY B^T, dB += A^T dY; broadcast operands accumulate */
        if (args->din[0])
            cvis__sgemm(CblasNoTrans, CblasTrans, (int)M, (int)K, (int)N, 1.0f, dy,
                        (int)N, b->data + ob, (int)N, 1.0f, args->din[0] + oa, (int)K);
        if (args->din[1])
            cvis__sgemm(CblasTrans, CblasNoTrans, (int)K, (int)N, (int)M, 1.0f,
                        a->data + oa, (int)K, dy, (int)N, 1.0f, args->din[1] + ob, (int)N);
    }
    return CVIS_OK;
}

const cvis__op cvis__op_matmul = {"matmul", matmul_shape, matmul_forward, matmul_backward, 0};
