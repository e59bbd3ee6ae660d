/* Optimizers (public type cvis_optimizer), for training and for
 * activation maximization. */
#ifndef CVIS_CORE_OPTIMIZER_H
#define CVIS_CORE_OPTIMIZER_H

#include "cvis.h"

cvis_status cvis__optimizer_new(cvis_optimizer_kind kind, double lr, cvis_optimizer **out);
void cvis__optimizer_free(cvis_optimizer *o);
cvis_status cvis__optimizer_set(cvis_optimizer *o, cvis_optimizer_option key, double value);
/* Descends: param -= step(grad). */
cvis_status cvis__optimizer_step(cvis_optimizer *o, int slot, float *param, const float *grad,
                                 int64_t n);

#endif
