/* Internal face of cvis_pass, for the methods in lib/attr. */
#ifndef CVIS_MODEL_PASS_H
#define CVIS_MODEL_PASS_H

#include "core/op.h"
#include "cvis.h"

cvis_status cvis__pass_new(const cvis_model *m, cvis_pass **out);
void cvis__pass_free(cvis_pass *p);
cvis_status cvis__pass_set(cvis_pass *p, cvis_pass_option key, int64_t value);
/* How ReLUs pass gradients back (guided backprop, deconvnet). */
void cvis__pass_set_relu_mode(cvis_pass *p, cvis__relu_mode mode);
/* A function that may change a layer's output during forward, before any
 * later layer reads it (Ablation-CAM zeroes channels this way).  Layer -1
 * or fn NULL: none.  A forward with an edit is not for backward. */
typedef void (*cvis__pass_edit_fn)(void *ctx, cvis_tensor *value);
void cvis__pass_set_edit(cvis_pass *p, int layer, cvis__pass_edit_fn fn, void *ctx);
/* Forward-only passes (no input, layer or weight gradients): each layer's
 * output is given back once no later layer reads it, so that only the
 * model's outputs stay readable and memory holds the live values only. */
void cvis__pass_set_lean(cvis_pass *p, int lean);
/* Backward keeps the input's gradient only: each layer's gradient buffer
 * is given back once used (cvis__tape_set_input_grads_only), so that a
 * method that reads nothing else holds the live gradients only.  Layer
 * gradients are then NULL.  Off by default (the public API's passes keep
 * every layer's gradient). */
void cvis__pass_set_input_grads_only(cvis_pass *p, int on);
cvis_status cvis__pass_forward(cvis_pass *p, const cvis_tensor *x);
const cvis_tensor *cvis__pass_output(const cvis_pass *p, int k);
const cvis_tensor *cvis__pass_layer_output(const cvis_pass *p, int layer);
cvis_status cvis__pass_backward(cvis_pass *p, int n, const cvis_tensor *const *d_outputs);
const cvis_tensor *cvis__pass_input_grad(const cvis_pass *p);
const cvis_tensor *cvis__pass_layer_grad(const cvis_pass *p, int layer);
const cvis_tensor *cvis__pass_weight_grad(cvis_pass *p, int layer, int k);
/* The model the pass was made for. */
const cvis_model *cvis__pass_model(const cvis_pass *p);
/* 1 after a backward with weight gradients on, for the current model. */
int cvis__pass_has_weight_grads(const cvis_pass *p);
/* Checks a (B,H,W,C) batch against the model's input shape (and, for
 * cvis__check_input, that its values are finite). */
cvis_status cvis__check_input_shape(const cvis_model *m, const cvis_tensor *x);
cvis_status cvis__check_input(const cvis_model *m, const cvis_tensor *x);

#endif
