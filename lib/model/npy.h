/* .npy arrays: numpy's single-array format (versions 1.0, 2.0 and 3.0).
 * Reading gives a float32 tensor in C order from float16, float32 or
 * float64 data of either byte order and either memory order; writing gives
 * version 1.0, little-endian float32, C order. */
#ifndef CVIS_MODEL_NPY_H
#define CVIS_MODEL_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

/* numpy writes headers of a few hundred bytes; nothing legitimate for a
 * float array of at most CVIS_MAX_DIMS axes needs more. */
#define CVIS__NPY_MAX_HEADER 65536

typedef struct cvis__npy_header {
    int item_size;          /* 2, 4 or 8: float16, float32, float64 */
    int big_endian;
    int fortran_order;
    int ndim;
    int64_t shape[CVIS_MAX_DIMS];
    int64_t count;          /* elements */
    uint64_t data_bytes;    /* count * item_size */
} cvis__npy_header;

/* Parses the header text (the dictionary literal after the length field). */
cvis_status cvis__npy_parse_header(const char *text, size_t len, cvis__npy_header *h);

/* Where a .npy is read from: fills dst with exactly n bytes or fails. */
typedef cvis_status (*cvis__npy_read_fn)(void *ctx, void *dst, size_t n);

/* Reads one .npy that is exactly `size` bytes long.  The header must
 * account for every byte: header and data sizes that do not add up to
 * `size` are CVIS_E_FORMAT, found before anything large is allocated.
 * Caller frees *out with cvis_tensor_free. */
cvis_status cvis__npy_read(cvis__npy_read_fn read, void *ctx, uint64_t size, cvis_tensor **out);
/* The same from a buffer in memory. */
cvis_status cvis__npy_read_mem(const void *data, size_t size, cvis_tensor **out);

/* The bytes that precede the data of a float32 C-order array of this
 * shape (magic, version 1.0, header padded to a multiple of 64).  buf must
 * hold CVIS__NPY_WRITE_HEADER bytes. */
#define CVIS__NPY_WRITE_HEADER 384
cvis_status cvis__npy_write_header(int ndim, const int64_t *shape, unsigned char *buf,
                                   size_t *len);
/* Little-endian float32 bytes of x[0..n) into out (4n bytes). */
void cvis__npy_encode_f32(const float *x, size_t n, unsigned char *out);

#endif
