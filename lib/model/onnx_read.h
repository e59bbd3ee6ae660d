/* A small in-memory form of an ONNX model: what onnx_read.c decodes from
 * the file and onnx_import.c turns into a libcvis model.  Only the fields
 * libcvis uses are kept.  Everything is owned by the cvis__onnx_model. */
#ifndef CVIS_MODEL_ONNX_READ_H
#define CVIS_MODEL_ONNX_READ_H

#include <stddef.h>
#include <stdint.h>

#include "cvis.h"

/* TensorProto.DataType values. */
enum {
    CVIS__ONNX_FLOAT = 1,
    CVIS__ONNX_UINT8 = 2,
    CVIS__ONNX_INT8 = 3,
    CVIS__ONNX_UINT16 = 4,
    CVIS__ONNX_INT16 = 5,
    CVIS__ONNX_INT32 = 6,
    CVIS__ONNX_INT64 = 7,
    CVIS__ONNX_STRING = 8,
    CVIS__ONNX_BOOL = 9,
    CVIS__ONNX_FLOAT16 = 10,
    CVIS__ONNX_DOUBLE = 11,
    CVIS__ONNX_UINT32 = 12,
    CVIS__ONNX_UINT64 = 13,
    CVIS__ONNX_BFLOAT16 = 16
};

/* AttributeProto.AttributeType values. */
enum {
    CVIS__ONNX_ATTR_FLOAT = 1,
    CVIS__ONNX_ATTR_INT = 2,
    CVIS__ONNX_ATTR_STRING = 3,
    CVIS__ONNX_ATTR_TENSOR = 4,
    CVIS__ONNX_ATTR_GRAPH = 5,
    CVIS__ONNX_ATTR_FLOATS = 6,
    CVIS__ONNX_ATTR_INTS = 7,
    CVIS__ONNX_ATTR_STRINGS = 8
};

#define CVIS__ONNX_MAX_RANK 8

/* A tensor with data: floating types are held as float32 in `f`, integer
 * and boolean types as int64 in `i` (exactly one of them is set, unless
 * count is 0). */
typedef struct cvis__onnx_tensor {
    char *name;
    int dtype;      /* as stored in the file */
    int ndim;
    int64_t dims[CVIS__ONNX_MAX_RANK];
    int64_t count;
    float *f;
    int64_t *i;
} cvis__onnx_tensor;

typedef struct cvis__onnx_attr {
    char *name;
    int type;
    float f;
    int64_t i;
    char *s;                 /* NUL-terminated copy of a string attribute */
    cvis__onnx_tensor *t;
    int n;                   /* number of floats or ints */
    float *floats;
    int64_t *ints;
} cvis__onnx_attr;

typedef struct cvis__onnx_node {
    char *name;
    char *op_type;
    char *domain;
    int n_in, n_out, n_attr;
    char **in;               /* "" for an omitted optional input */
    char **out;
    cvis__onnx_attr *attr;
} cvis__onnx_node;

/* A graph input or output.  dims[k] is -1 for a symbolic or unknown size;
 * ndim is -1 when the shape is not given. */
typedef struct cvis__onnx_value_info {
    char *name;
    int elem_type;
    int ndim;
    int64_t dims[CVIS__ONNX_MAX_RANK];
} cvis__onnx_value_info;

typedef struct cvis__onnx_model {
    int64_t ir_version;
    int64_t opset;           /* of the default domain; 1 if not given */
    char *producer;
    char *graph_name;
    int n_nodes, n_init, n_inputs, n_outputs;
    cvis__onnx_node *nodes;
    cvis__onnx_tensor *init;
    cvis__onnx_value_info *inputs;
    cvis__onnx_value_info *outputs;
} cvis__onnx_model;

/* Decodes a model from memory.  `dir` is the directory that external data
 * paths are relative to (NULL: external data is an error).  Caller frees
 * with cvis__onnx_free. */
cvis_status cvis__onnx_read(const void *data, size_t size, const char *dir,
                            cvis__onnx_model **out);
void cvis__onnx_free(cvis__onnx_model *m);
void cvis__onnx_tensor_release(cvis__onnx_tensor *t);

/* Attribute lookup: NULL if absent. */
const cvis__onnx_attr *cvis__onnx_attr_find(const cvis__onnx_node *n, const char *name);

#endif
