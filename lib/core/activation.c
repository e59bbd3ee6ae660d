/* Activations: applied in place (fused into conv/dense or as their own
 * layer), and their gradients, mostly from the output alone. */
#include <math.h>
#include <string.h>

#include "error.h"
#include "ops.h"
#include "parallel.h"

const char *cvis__act_name(int act)
{
    switch (act) {
    case CVIS_ACT_LINEAR: return "linear";
    case CVIS_ACT_RELU: return "relu";
    case CVIS_ACT_RELU6: return "relu6";
    case CVIS_ACT_LEAKY_RELU: return "leaky_relu";
    case CVIS_ACT_SIGMOID: return "sigmoid";
    case CVIS_ACT_TANH: return "tanh";
    case CVIS_ACT_SOFTMAX: return "softmax";
    case CVIS_ACT_HARD_SIGMOID: return "hard_sigmoid";
    case CVIS_ACT_HARD_SWISH: return "hard_swish";
    }
    return NULL;
}

int cvis__act_fusable(int act)
{
    return cvis__act_name(act) != NULL && act != CVIS_ACT_HARD_SWISH;
}

static void softmax_rows(float *y, int64_t n, int64_t row)
{
    for (int64_t r = 0; r + row <= n; r += row) {
        float *v = y + r;
        float mx = v[0];
        for (int64_t i = 1; i < row; i++)
            mx = v[i] > mx ? v[i] : mx;
        double sum = 0;
        for (int64_t i = 0; i < row; i++) {
            v[i] = expf(v[i] - mx);
            sum += v[i];
        }
        float inv = (float)(1.0 / sum);
        for (int64_t i = 0; i < row; i++)
            v[i] *= inv;
    }
}

static void act_apply_serial(int act, float alpha, float *y, int64_t n, int64_t row)
{
    switch (act) {
    case CVIS_ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = y[i] > 0 ? y[i] : 0;
        break;
    case CVIS_ACT_RELU6:
        for (int64_t i = 0; i < n; i++)
            y[i] = y[i] > 0 ? (y[i] < 6 ? y[i] : 6) : 0;
        break;
    case CVIS_ACT_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = y[i] > 0 ? y[i] : alpha * y[i];
        break;
    case CVIS_ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            y[i] = 1.0f / (1.0f + expf(-y[i]));
        break;
    case CVIS_ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            y[i] = tanhf(y[i]);
        break;
    case CVIS_ACT_SOFTMAX:
        softmax_rows(y, n, row);
        break;
    case CVIS_ACT_HARD_SIGMOID:
        for (int64_t i = 0; i < n; i++) {
            float v = y[i] / 6.0f + 0.5f;
            y[i] = v < 0 ? 0 : (v > 1 ? 1 : v);
        }
        break;
    case CVIS_ACT_HARD_SWISH:
        for (int64_t i = 0; i < n; i++) {
            float v = y[i] / 6.0f + 0.5f;
            y[i] *= v < 0 ? 0 : (v > 1 ? 1 : v);
        }
        break;
    default:
        break;
    }
}

/* The ReLU gradient, with the guided and deconvnet variants. */
static float relu_grad(float pos, float dy, cvis__relu_mode mode)
{
    switch (mode) {
    case CVIS__RELU_GUIDED: return (pos > 0 && dy > 0) ? dy : 0;
    case CVIS__RELU_DECONV: return dy > 0 ? dy : 0;
    default: return pos > 0 ? dy : 0;
    }
}

static void act_grad_serial(int act, float alpha, const float *x, const float *y,
                            const float *dy, float *dx, int64_t n, int64_t row,
                            cvis__relu_mode mode, int accumulate)
{
#define EMIT(i, v)                \
    do {                          \
        if (accumulate)           \
            dx[i] += (v);         \
        else                      \
            dx[i] = (v);          \
    } while (0)
    switch (act) {
    case CVIS_ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            EMIT(i, relu_grad(y[i], dy[i], mode));
        break;
    case CVIS_ACT_RELU6:
        for (int64_t i = 0; i < n; i++)
            EMIT(i, (y[i] > 0 && y[i] < 6) ? dy[i] : 0);
        break;
    case CVIS_ACT_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++)
            EMIT(i, y[i] > 0 ? dy[i] : alpha * dy[i]);
        break;
    case CVIS_ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            EMIT(i, dy[i] * y[i] * (1 - y[i]));
        break;
    case CVIS_ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            EMIT(i, dy[i] * (1 - y[i] * y[i]));
        break;
    case CVIS_ACT_SOFTMAX:
        for (int64_t r = 0; r + row <= n; r += row) {
            double dot = 0;
            for (int64_t i = 0; i < row; i++)
                dot += (double)dy[r + i] * y[r + i];
            for (int64_t i = 0; i < row; i++)
                EMIT(r + i, y[r + i] * (float)(dy[r + i] - dot));
        }
        break;
    case CVIS_ACT_HARD_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            EMIT(i, (y[i] > 0 && y[i] < 1) ? dy[i] / 6.0f : 0);
        break;
    case CVIS_ACT_HARD_SWISH:
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            float g = v < -3 ? 0 : (v > 3 ? 1 : (2 * v + 3) / 6.0f);
            EMIT(i, dy[i] * g);
        }
        break;
    default:
        for (int64_t i = 0; i < n; i++)
            EMIT(i, dy[i]);
        break;
    }
#undef EMIT
}

/* Both run on the worker pool by whole rows (softmax's unit); each value
 * is computed as on one thread. */
typedef struct act_job {
    int act;
    float alpha;
    const float *x, *y, *dy;
    float *out;
    int64_t row;
    cvis__relu_mode mode;
    int accumulate;
} act_job;

#define ACT_GRAIN_VALUES 32768

static int64_t act_grain(int64_t row)
{
    return row >= ACT_GRAIN_VALUES ? 1 : ACT_GRAIN_VALUES / row;
}

static void act_apply_range(void *ctx, int64_t r0, int64_t r1)
{
    const act_job *j = ctx;
    act_apply_serial(j->act, j->alpha, j->out + r0 * j->row, (r1 - r0) * j->row, j->row);
}

static void act_grad_range(void *ctx, int64_t r0, int64_t r1)
{
    const act_job *j = ctx;
    int64_t o = r0 * j->row;
    act_grad_serial(j->act, j->alpha, j->x ? j->x + o : NULL, j->y + o, j->dy + o, j->out + o,
                    (r1 - r0) * j->row, j->row, j->mode, j->accumulate);
}

void cvis__act_apply(int act, float alpha, float *y, int64_t n, int64_t row)
{
    if (act == CVIS_ACT_LINEAR)
        return;
    if (row < 1 || n % row || n < 2 * ACT_GRAIN_VALUES) {
        act_apply_serial(act, alpha, y, n, row);
        return;
    }
    act_job j = {act, alpha, NULL, NULL, NULL, y, row, CVIS__RELU_NORMAL, 0};
    cvis__parallel_for(n / row, act_grain(row), act_apply_range, &j);
}

void cvis__act_grad(int act, float alpha, const float *x, const float *y, const float *dy,
                    float *dx, int64_t n, int64_t row, cvis__relu_mode mode, int accumulate)
{
    if (row < 1 || n % row || n < 2 * ACT_GRAIN_VALUES) {
        act_grad_serial(act, alpha, x, y, dy, dx, n, row, mode, accumulate);
        return;
    }
    act_job j = {act, alpha, x, y, dy, dx, row, mode, accumulate};
    cvis__parallel_for(n / row, act_grain(row), act_grad_range, &j);
}

static cvis_status act_shape(const void *attr, int n_in, const cvis__shape *in, cvis__shape *out)
{
    const cvis__act_attr *a = attr;
    if (n_in != 1)
        return cvis__fail(CVIS_E_INTERNAL, "activation takes one input");
    if (!cvis__act_name(a->act))
        return cvis__fail(CVIS_E_INVALID_ARG, "unknown activation %d", a->act);
    if (a->act == CVIS_ACT_SOFTMAX && in[0].ndim < 1)
        return cvis__fail(CVIS_E_SHAPE, "softmax needs at least one axis");
    *out = in[0];
    return CVIS_OK;
}

static int64_t last_axis(const cvis_tensor *t)
{
    return t->ndim ? t->shape[t->ndim - 1] : 1;
}

static cvis_status act_forward(cvis__op_args *a)
{
    const cvis__act_attr *at = a->attr;
    const cvis_tensor *x = a->in[0];
    if (x->size)
        memcpy(a->out->data, x->data, (size_t)x->size * sizeof(float));
    if (!a->drop_act)
        cvis__act_apply(at->act, at->alpha, a->out->data, x->size, last_axis(x));
    return CVIS_OK;
}

static cvis_status act_backward(cvis__op_args *a)
{
    const cvis__act_attr *at = a->attr;
    if (!a->din[0])
        return CVIS_OK;
    int act = a->drop_act ? CVIS_ACT_LINEAR : at->act;
    cvis__act_grad(act, at->alpha, a->in[0]->data, a->out->data, a->dout, a->din[0],
                   a->out->size, last_axis(a->out), a->relu_mode, 1);
    return CVIS_OK;
}

const cvis__op cvis__op_activation = {"activation", act_shape, act_forward, act_backward, 0};
