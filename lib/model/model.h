/* Models: a graph of named layers over the core ops.  A cvis_model is a
 * handle on a shared, reference-counted graph plus its list of outputs, so
 * that submodels share layers and weights. */
#ifndef CVIS_MODEL_MODEL_H
#define CVIS_MODEL_MODEL_H

#include <stdatomic.h>

#include "core/ops.h"
#include "core/tensor.h"

typedef struct cvis__layer {
    char *name;
    char **aliases;         /* names of nodes merged into this layer on import */
    int n_aliases;
    char *type;             /* "Conv2D", "Dense", ... */
    const cvis__op *op;
    void *attr;             /* op attributes, owned */
    int n_in;
    int *in;                /* producer layer indices, or CVIS_INPUT */
    int n_w;
    cvis_tensor **w;        /* weights, owned, in the op's param order */
    char **w_names;
    unsigned char *w_trainable;
    int conv_like;
    cvis__shape out_shape;  /* without batch is derived: d[0] is the batch (1) */
} cvis__layer;

typedef struct cvis__graph {
    atomic_int refs;
    cvis__layer *layers;
    int n_layers, cap;
    int64_t in_shape[3];    /* H, W, C; -1 where free */
} cvis__graph;

struct cvis_model {
    cvis__graph *g;
    int n_out;
    int *out;
    int outputs_follow_last;  /* outputs are "the last layer" until set */
    unsigned version;         /* bumped when layers or outputs change */
};

/* A new model with its own empty graph. */
cvis_status cvis__model_new(int64_t h, int64_t w, int64_t c, cvis_model **out);

/* Adds a layer.  Takes ownership of attr (allocated with cvis__malloc) and
 * of the weights in w[] (and frees them on failure too).  Names are
 * copied.  w_names/trainable may be NULL when n_w == 0; trainable NULL
 * means all trainable. */
cvis_status cvis__model_add_layer(cvis_model *m, const char *name, const char *name_prefix,
                                  const char *type, const cvis__op *op, void *attr, int n_in,
                                  const int *in, int n_w, cvis_tensor **w,
                                  const char *const *w_names, const unsigned char *trainable,
                                  int conv_like, int *out_layer);
/* Adds another name the layer answers to. */
cvis_status cvis__model_add_alias(cvis_model *m, int layer, const char *alias);

/* Resolves a layer index (negative from the end) with a message on error. */
cvis_status cvis__model_check_layer(const cvis_model *m, int *layer);
/* The shape a layer outputs for the model's input (batch axis first = 1). */
const cvis__shape *cvis__model_layer_shape(const cvis_model *m, int layer);
const cvis__layer *cvis__model_layer(const cvis_model *m, int layer);
/* 1 if the layer's op can drop its activation (conv, dense, activation). */
int cvis__layer_has_activation(const cvis__layer *l);

#endif
