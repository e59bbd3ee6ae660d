/* Element-wise functions of one input with up to two constant parameters
 * (square root, erf, power, SiLU, GELU, clip, ...).  The derivative is
 * taken from the input, which the tape keeps. */
#include <math.h>
#include <string.h>

#include "error.h"
#include "ops.h"

const char *cvis__unary_name(int kind)
{
    switch (kind) {
    case CVIS__UN_SQRT: return "sqrt";
    case CVIS__UN_ERF: return "erf";
    case CVIS__UN_POW: return "pow";
    case CVIS__UN_EXP: return "exp";
    case CVIS__UN_LOG: return "log";
    case CVIS__UN_NEG: return "neg";
    case CVIS__UN_ABS: return "abs";
    case CVIS__UN_RECIPROCAL: return "reciprocal";
    case CVIS__UN_SILU: return "silu";
    case CVIS__UN_GELU: return "gelu";
    case CVIS__UN_CLIP: return "clip";
    case CVIS__UN_HARD_SIGMOID: return "hard_sigmoid";
    case CVIS__UN_SOFTPLUS: return "softplus";
    case CVIS__UN_ELU: return "elu";
    }
    return NULL;
}

static float sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

static float unary_value(const cvis__unary_attr *u, float x)
{
    switch (u->kind) {
    case CVIS__UN_SQRT: return sqrtf(x);
    case CVIS__UN_ERF: return erff(x);
    case CVIS__UN_POW: return u->a == 2.0f ? x * x : powf(x, u->a);
    case CVIS__UN_EXP: return expf(x);
    case CVIS__UN_LOG: return logf(x);
    case CVIS__UN_NEG: return -x;
    case CVIS__UN_ABS: return fabsf(x);
    case CVIS__UN_RECIPROCAL: return 1.0f / x;
    case CVIS__UN_SILU: return x * sigmoid(x);
    case CVIS__UN_GELU: /* in the order of the ONNX form Div, Erf, Add, Mul, Mul */
        return x * (erff(x / (float)M_SQRT2) + 1.0f) * 0.5f;
    case CVIS__UN_CLIP: return x < u->a ? u->a : (x > u->b ? u->b : x);
    case CVIS__UN_HARD_SIGMOID: {
        float v = u->a * x + u->b;
        return v < 0 ? 0 : (v > 1 ? 1 : v);
    }
    case CVIS__UN_SOFTPLUS: return x > 20 ? x : log1pf(expf(x));
    case CVIS__UN_ELU: return x > 0 ? x : u->a * expm1f(x);
    }
    return x;
}

static float unary_derivative(const cvis__unary_attr *u, float x, float y)
{
    switch (u->kind) {
    case CVIS__UN_SQRT: return 0.5f / y;
    case CVIS__UN_ERF: return (float)M_2_SQRTPI * expf(-x * x);
    case CVIS__UN_POW: return u->a == 2.0f ? 2 * x : u->a * powf(x, u->a - 1);
    case CVIS__UN_EXP: return y;
    case CVIS__UN_LOG: return 1.0f / x;
    case CVIS__UN_NEG: return -1.0f;
    case CVIS__UN_ABS: return x > 0 ? 1.0f : (x < 0 ? -1.0f : 0.0f);
    case CVIS__UN_RECIPROCAL: return -y * y;
    case CVIS__UN_SILU: {
        float s = sigmoid(x);
        return s + x * s * (1 - s);
    }
    case CVIS__UN_GELU:
        return 0.5f * (1.0f + erff(x * (float)M_SQRT1_2)) +
               x * expf(-0.5f * x * x) * (float)(M_2_SQRTPI * M_SQRT1_2 * 0.5);
    case CVIS__UN_CLIP: return (x >= u->a && x <= u->b) ? 1.0f : 0.0f;
    case CVIS__UN_HARD_SIGMOID: {
        float v = u->a * x + u->b;
        return (v > 0 && v < 1) ? u->a : 0.0f;
    }
    case CVIS__UN_SOFTPLUS: return sigmoid(x);
    case CVIS__UN_ELU: return x > 0 ? 1.0f : y + u->a;
    }
    return 1.0f;
}

static cvis_status unary_shape(const void *attr, int n_in, const cvis__shape *in,
                               cvis__shape *out)
{
    const cvis__unary_attr *u = attr;
    if (n_in != 1)
        return cvis__fail(CVIS_E_INTERNAL, "unary op takes one input");
    if (!cvis__unary_name(u->kind))
        return cvis__fail(CVIS_E_INVALID_ARG, "unknown element-wise function %d", u->kind);
    *out = in[0];
    return CVIS_OK;
}

static cvis_status unary_forward(cvis__op_args *args)
{
    const cvis__unary_attr *u = args->attr;
    const float *x = args->in[0]->data;
    float *y = args->out->data;
    for (int64_t i = 0; i < args->out->size; i++)
        y[i] = unary_value(u, x[i]);
    return CVIS_OK;
}

static cvis_status unary_backward(cvis__op_args *args)
{
    const cvis__unary_attr *u = args->attr;
    float *dx = args->din[0];
    if (!dx)
        return CVIS_OK;
    const float *x = args->in[0]->data, *y = args->out->data, *dy = args->dout;
    for (int64_t i = 0; i < args->out->size; i++)
        dx[i] += dy[i] * unary_derivative(u, x[i], y[i]);
    return CVIS_OK;
}

const cvis__op cvis__op_unary = {"unary", unary_shape, unary_forward, unary_backward, 0};
