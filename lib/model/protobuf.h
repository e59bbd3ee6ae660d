/* The protobuf wire format, as much of it as ONNX files need: a reader
 * that checks every length against what is left of its buffer and bounds
 * the nesting depth, and a writer into a growing buffer.  Field numbers
 * and message meanings belong to the callers (onnx_read.c, onnx_write.c). */
#ifndef CVIS_MODEL_PROTOBUF_H
#define CVIS_MODEL_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

#include "cvis.h"

/* Wire types. */
enum {
    CVIS__PB_VARINT = 0,
    CVIS__PB_FIXED64 = 1,
    CVIS__PB_BYTES = 2,
    CVIS__PB_FIXED32 = 5
};

/* Deeper nesting than this is refused (ONNX needs about ten levels). */
#define CVIS__PB_MAX_DEPTH 32

/* A message being read: the bytes [p, end) not yet consumed. */
typedef struct cvis__pb {
    const uint8_t *p, *end;
    int depth;
    const char *what;  /* the message's name, for error messages */
} cvis__pb;

/* One field.  For VARINT, FIXED32 and FIXED64, `u` holds the value; for
 * BYTES, `data` and `len` the payload (inside the parent's buffer). */
typedef struct cvis__pb_field {
    uint32_t number;
    int wire;
    uint64_t u;
    const uint8_t *data;
    size_t len;
} cvis__pb_field;

void cvis__pb_init(cvis__pb *r, const void *data, size_t size, const char *what);
/* Reads the next field.  *more is 0 at the end of the message (then f is
 * untouched).  CVIS_E_FORMAT on a truncated or malformed field. */
cvis_status cvis__pb_next(cvis__pb *r, cvis__pb_field *f, int *more);
/* A reader over a BYTES field's payload as an embedded message, one level
 * deeper; CVIS_E_FORMAT past CVIS__PB_MAX_DEPTH or for another wire type. */
cvis_status cvis__pb_sub(const cvis__pb *parent, const cvis__pb_field *f, const char *what,
                         cvis__pb *sub);
/* Decodes one varint from [*p, end), advancing *p. */
cvis_status cvis__pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v);
/* Number of varints in a packed payload (checked to end exactly). */
cvis_status cvis__pb_count_varints(const uint8_t *data, size_t len, size_t *n);

/* Checks the wire type of a field that must be a scalar or a packed list
 * of them: 1 = one value in f->u, 2 = packed payload, with a message on a
 * wrong wire type. */
cvis_status cvis__pb_expect(const cvis__pb_field *f, int wire, const char *what);

/* Reinterpretations of the fixed-width payloads. */
float cvis__pb_float(uint64_t u);
double cvis__pb_double(uint64_t u);
/* Little-endian loads from unaligned bytes. */
uint16_t cvis__pb_le16(const uint8_t *p);
uint32_t cvis__pb_le32(const uint8_t *p);
uint64_t cvis__pb_le64(const uint8_t *p);

/* ------------------------------------------------------------- writer */

/* A growing output buffer.  The first failure sticks in `st` (with its
 * message) and turns every later call into a no-op, so that callers
 * check once at the end. */
typedef struct cvis__pbw {
    uint8_t *buf;
    size_t len, cap;
    cvis_status st;
} cvis__pbw;

void cvis__pbw_init(cvis__pbw *w);
void cvis__pbw_release(cvis__pbw *w);
void cvis__pbw_varint(cvis__pbw *w, uint32_t field, uint64_t v);
void cvis__pbw_sint(cvis__pbw *w, uint32_t field, int64_t v); /* int64 as two's complement varint */
void cvis__pbw_float(cvis__pbw *w, uint32_t field, float v);
void cvis__pbw_bytes(cvis__pbw *w, uint32_t field, const void *data, size_t n);
void cvis__pbw_string(cvis__pbw *w, uint32_t field, const char *s);
/* Packed repeated fields. */
void cvis__pbw_packed_int64(cvis__pbw *w, uint32_t field, const int64_t *v, size_t n);
void cvis__pbw_packed_float(cvis__pbw *w, uint32_t field, const float *v, size_t n);
/* An embedded message: begin returns a mark, end writes its length. */
size_t cvis__pbw_begin(cvis__pbw *w, uint32_t field);
void cvis__pbw_end(cvis__pbw *w, size_t mark);

#endif
