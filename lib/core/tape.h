/* The reverse-mode tape.  Forward: values are pushed as slots, each op
 * application as an entry that reads earlier slots and writes a new one.
 * Backward: entries are replayed in reverse, each op accumulating the
 * gradients of its inputs (and of its params when asked).  A tape keeps its
 * buffers across reset, so the same sequence of ops allocates only once. */
#ifndef CVIS_CORE_TAPE_H
#define CVIS_CORE_TAPE_H

#include "op.h"

typedef struct cvis__tape cvis__tape;

cvis_status cvis__tape_new(cvis__tape **out);
void cvis__tape_free(cvis__tape *t);
/* Forgets slots and entries; keeps every buffer for reuse. */
void cvis__tape_reset(cvis__tape *t);

/* Lean tapes are for forward passes that no backward follows: a value
 * released with cvis__tape_release gives its buffer back for later slots
 * to reuse, so that memory holds only the values still to be read (as a
 * framework's inference mode does).  Set before cvis__tape_reset. */
void cvis__tape_set_lean(cvis__tape *t, int lean);
/* Lean tapes: no later op reads this slot (the buffer is shared with its
 * views, and goes back when they are released too).  Otherwise nothing. */
void cvis__tape_release(cvis__tape *t, int slot);

/* Backward then keeps the gradients of leaves only: every other slot's
 * buffer is taken when a gradient first reaches it and given back to the
 * spares once the op that produced the slot has used it, as a framework
 * frees gradients during backward.  cvis__tape_grad is then NULL for
 * them.  Off by default. */
void cvis__tape_set_input_grads_only(cvis__tape *t, int on);

/* A leaf slot holding a copy of x. */
cvis_status cvis__tape_leaf(cvis__tape *t, const cvis_tensor *x, int requires_grad, int *slot);
/* Applies op to the input slots and params and records it; *slot receives
 * the output slot.  params_grad: keep gradients for the params. */
cvis_status cvis__tape_push(cvis__tape *t, const cvis__op *op, const void *attr, int n_in,
                            const int *in, int n_params, const cvis_tensor *const *params,
                            int params_grad, int drop_act, int *slot);

/* Makes a slot (and what is computed from it later) require gradients:
 * backward then reaches it even when the leaves do not require them. */
void cvis__tape_mark_grad(cvis__tape *t, int slot);

const cvis_tensor *cvis__tape_value(const cvis__tape *t, int slot);
int cvis__tape_slot_count(const cvis__tape *t);
int cvis__tape_requires_grad(const cvis__tape *t, int slot);

/* Backward from seeds: d(scalar)/d(slot) for each seed slot (n floats each,
 * matching the slot's value).  A NULL seed counts as zero. */
cvis_status cvis__tape_backward(cvis__tape *t, int n_seeds, const int *slots,
                                const float *const *seeds, cvis__relu_mode mode);
/* Gradient of a slot after backward, viewed with the slot's shape; NULL if
 * the slot does not require gradients. The view belongs to the tape. */
const cvis_tensor *cvis__tape_grad(cvis__tape *t, int slot);
/* Gradient of param k of the entry that produced `slot`; NULL if none. */
const float *cvis__tape_param_grad(const cvis__tape *t, int slot, int k);

#endif
