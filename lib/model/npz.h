/* NPZ archives (numpy's np.savez / np.savez_compressed): named arrays,
 * one .npy per ZIP member.  The memory entry points are what the model
 * loader uses and what a fuzzer can call directly. */
#ifndef CVIS_MODEL_NPZ_H
#define CVIS_MODEL_NPZ_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "zip.h"

typedef struct cvis__npz_array {
    char *key;              /* the member name without a trailing ".npy" */
    cvis_tensor *value;     /* float32, C order */
} cvis__npz_array;

typedef struct cvis__npz {
    cvis__npz_array *arrays;  /* in archive order */
    int64_t n;
} cvis__npz;

/* Reads every array of the archive in data[0..size).  All or nothing: on
 * failure *out is untouched, nothing is kept, and the message names the
 * member at fault.  Release with cvis__npz_release. */
cvis_status cvis__npz_read_mem(const void *data, size_t size, cvis__npz *out);
void cvis__npz_release(cvis__npz *z);

/* cvis_model_load_npz from an archive in memory (all or nothing). */
cvis_status cvis__model_load_npz_mem(cvis_model *m, const void *data, size_t size);

/* Appends value as member "<key>.npy" (.npy 1.0, little-endian float32,
 * C order, deflated). */
cvis_status cvis__npz_write_array(cvis__zip_writer *w, const char *key, const cvis_tensor *value);
/* A whole archive of n arrays in memory.  Caller frees *data with cvis__free. */
cvis_status cvis__npz_write_mem(int64_t n, const char *const *keys,
                                const cvis_tensor *const *values, void **data, size_t *size);

#endif
