/* The op interface: every op is one file with a shape function, a forward
 * and a backward, gathered in a const cvis__op.  The tape calls them. */
#ifndef CVIS_CORE_OP_H
#define CVIS_CORE_OP_H

#include <stddef.h>

#include "tensor.h"
#include "workspace.h"

#define CVIS__MAX_OP_INPUTS 64
#define CVIS__MAX_OP_PARAMS 8

/* How backward treats ReLU-like nonlinearities (for guided methods). */
typedef enum cvis__relu_mode {
    CVIS__RELU_NORMAL = 0,  /* the true gradient */
    CVIS__RELU_GUIDED = 1,  /* dy * [dy > 0] * [x > 0] */
    CVIS__RELU_DECONV = 2   /* relu(dy) */
} cvis__relu_mode;

typedef struct cvis__op_args {
    const void *attr;
    int n_in;
    const cvis_tensor *const *in;       /* input values */
    int n_params;
    const cvis_tensor *const *params;   /* weights, in the op's order */
    cvis_tensor *out;                   /* output value; shape already set */
    int drop_act;                       /* run without the op's activation */
    cvis__workspace *ws;                /* scratch, reused across calls */
    /* backward only */
    const float *dout;                  /* d(out); never NULL in backward */
    float **din;                        /* per input: accumulate here, or NULL */
    float **dparams;                    /* per param: accumulate here, or NULL */
    cvis__relu_mode relu_mode;
} cvis__op_args;

typedef struct cvis__op {
    const char *name;
    /* Output shape from input shapes (and params, which may be NULL when
     * only validating).  Returns a status with a message on mismatch. */
    cvis_status (*shape)(const void *attr, int n_in, const cvis__shape *in, cvis__shape *out);
    cvis_status (*forward)(cvis__op_args *a);
    /* Accumulates into a->din[i] and a->dparams[k] that are not NULL. */
    cvis_status (*backward)(cvis__op_args *a);
    /* 1: the output is input 0's data, reshaped (no copy; gradient shared). */
    int is_view;
} cvis__op;

#endif
