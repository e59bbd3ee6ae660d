/* Protobuf wire format: a bounds-checked reader and a buffer writer. */
#include "protobuf.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

void cvis__pb_init(cvis__pb *r, const void *data, size_t size, const char *what)
{
    r->p = data;
    r->end = r->p + size;
    r->depth = 0;
    r->what = what;
}

cvis_status cvis__pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    const uint8_t *q = *p;
    for (int shift = 0; shift < 64; shift += 7) {
        if (q >= end)
            return cvis__fail(CVIS_E_FORMAT, "truncated varint");
        uint8_t b = *q++;
        /* the tenth byte may only carry the top bit */
        if (shift == 63 && (b & 0xFE))
            return cvis__fail(CVIS_E_FORMAT, "varint longer than 64 bits");
        x |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *p = q;
            *v = x;
            return CVIS_OK;
        }
    }
    return cvis__fail(CVIS_E_FORMAT, "varint longer than 10 bytes");
}

uint16_t cvis__pb_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t cvis__pb_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

uint64_t cvis__pb_le64(const uint8_t *p)
{
    return (uint64_t)cvis__pb_le32(p) | ((uint64_t)cvis__pb_le32(p + 4) << 32);
}

float cvis__pb_float(uint64_t u)
{
    uint32_t b = (uint32_t)u;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

double cvis__pb_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

cvis_status cvis__pb_next(cvis__pb *r, cvis__pb_field *f, int *more)
{
    if (r->p >= r->end) {
        *more = 0;
        return CVIS_OK;
    }
    const char *what = r->what ? r->what : "message";
    uint64_t key;
    if (cvis__pb_varint(&r->p, r->end, &key) != CVIS_OK)
        return cvis__fail(CVIS_E_FORMAT, "%s: truncated field key", what);
    uint64_t number = key >> 3;
    int wire = (int)(key & 7);
    if (number == 0 || number > 536870911u)
        return cvis__fail(CVIS_E_FORMAT, "%s: invalid field number %llu", what,
                          (unsigned long long)number);
    f->number = (uint32_t)number;
    f->wire = wire;
    f->u = 0;
    f->data = NULL;
    f->len = 0;
    size_t left = (size_t)(r->end - r->p);
    switch (wire) {
    case CVIS__PB_VARINT:
        if (cvis__pb_varint(&r->p, r->end, &f->u) != CVIS_OK)
            return cvis__fail(CVIS_E_FORMAT, "%s: field %u: truncated varint", what, f->number);
        break;
    case CVIS__PB_FIXED64:
        if (left < 8)
            return cvis__fail(CVIS_E_FORMAT, "%s: field %u: truncated 64-bit value", what,
                              f->number);
        f->u = cvis__pb_le64(r->p);
        r->p += 8;
        break;
    case CVIS__PB_FIXED32:
        if (left < 4)
            return cvis__fail(CVIS_E_FORMAT, "%s: field %u: truncated 32-bit value", what,
                              f->number);
        f->u = cvis__pb_le32(r->p);
        r->p += 4;
        break;
    case CVIS__PB_BYTES: {
        uint64_t n;
        if (cvis__pb_varint(&r->p, r->end, &n) != CVIS_OK)
            return cvis__fail(CVIS_E_FORMAT, "%s: field %u: truncated length", what, f->number);
        left = (size_t)(r->end - r->p);
        if (n > left)
            return cvis__fail(CVIS_E_FORMAT,
                              "%s: field %u claims %llu bytes but only %zu are left", what,
                              f->number, (unsigned long long)n, left);
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        break;
    }
    default:
        return cvis__fail(CVIS_E_FORMAT, "%s: field %u has unsupported wire type %d", what,
                          f->number, wire);
    }
    *more = 1;
    return CVIS_OK;
}

cvis_status cvis__pb_sub(const cvis__pb *parent, const cvis__pb_field *f, const char *what,
                         cvis__pb *sub)
{
    if (f->wire != CVIS__PB_BYTES)
        return cvis__fail(CVIS_E_FORMAT, "%s: field %u should hold a %s message (wire type %d)",
                          parent->what ? parent->what : "message", f->number, what, f->wire);
    if (parent->depth + 1 > CVIS__PB_MAX_DEPTH)
        return cvis__fail(CVIS_E_FORMAT, "%s: messages nested deeper than %d levels", what,
                          CVIS__PB_MAX_DEPTH);
    sub->p = f->data;
    sub->end = f->data + f->len;
    sub->depth = parent->depth + 1;
    sub->what = what;
    return CVIS_OK;
}

cvis_status cvis__pb_count_varints(const uint8_t *data, size_t len, size_t *n)
{
    const uint8_t *p = data, *end = data + len;
    size_t k = 0;
    while (p < end) {
        uint64_t v;
        CVIS_TRY(cvis__pb_varint(&p, end, &v));
        k++;
    }
    *n = k;
    return CVIS_OK;
}

cvis_status cvis__pb_expect(const cvis__pb_field *f, int wire, const char *what)
{
    if (f->wire == wire)
        return CVIS_OK;
    if (f->wire == CVIS__PB_BYTES)
        return CVIS_OK; /* packed */
    return cvis__fail(CVIS_E_FORMAT, "%s has wire type %d, expected %d", what, f->wire, wire);
}

/* ------------------------------------------------------------- writer */

void cvis__pbw_init(cvis__pbw *w)
{
    memset(w, 0, sizeof *w);
}

void cvis__pbw_release(cvis__pbw *w)
{
    cvis__free(w->buf);
    memset(w, 0, sizeof *w);
}

static int reserve(cvis__pbw *w, size_t extra)
{
    if (w->st != CVIS_OK)
        return 0;
    if (extra > SIZE_MAX - w->len) {
        w->st = cvis__fail(CVIS_E_LIMIT, "ONNX output too large");
        return 0;
    }
    size_t need = w->len + extra;
    if (need <= w->cap)
        return 1;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    void *p;
    cvis_status st = cvis__realloc(w->buf, cap, "ONNX output", &p);
    if (st != CVIS_OK) {
        w->st = st;
        return 0;
    }
    w->buf = p;
    w->cap = cap;
    return 1;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p = (uint8_t)v;
}

static void raw_varint(cvis__pbw *w, uint64_t v)
{
    if (!reserve(w, 10))
        return;
    put_varint(w->buf + w->len, v);
    w->len += varint_size(v);
}

static void raw_bytes(cvis__pbw *w, const void *data, size_t n)
{
    if (!reserve(w, n))
        return;
    if (n)
        memcpy(w->buf + w->len, data, n);
    w->len += n;
}

static void tag(cvis__pbw *w, uint32_t field, int wire)
{
    raw_varint(w, ((uint64_t)field << 3) | (uint64_t)wire);
}

void cvis__pbw_varint(cvis__pbw *w, uint32_t field, uint64_t v)
{
    tag(w, field, CVIS__PB_VARINT);
    raw_varint(w, v);
}

void cvis__pbw_sint(cvis__pbw *w, uint32_t field, int64_t v)
{
    cvis__pbw_varint(w, field, (uint64_t)v);
}

void cvis__pbw_float(cvis__pbw *w, uint32_t field, float v)
{
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    uint8_t le[4] = {(uint8_t)b, (uint8_t)(b >> 8), (uint8_t)(b >> 16), (uint8_t)(b >> 24)};
    tag(w, field, CVIS__PB_FIXED32);
    raw_bytes(w, le, 4);
}

void cvis__pbw_bytes(cvis__pbw *w, uint32_t field, const void *data, size_t n)
{
    tag(w, field, CVIS__PB_BYTES);
    raw_varint(w, n);
    raw_bytes(w, data, n);
}

void cvis__pbw_string(cvis__pbw *w, uint32_t field, const char *s)
{
    cvis__pbw_bytes(w, field, s, strlen(s));
}

void cvis__pbw_packed_int64(cvis__pbw *w, uint32_t field, const int64_t *v, size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += varint_size((uint64_t)v[i]);
    tag(w, field, CVIS__PB_BYTES);
    raw_varint(w, bytes);
    for (size_t i = 0; i < n; i++)
        raw_varint(w, (uint64_t)v[i]);
}

void cvis__pbw_packed_float(cvis__pbw *w, uint32_t field, const float *v, size_t n)
{
    tag(w, field, CVIS__PB_BYTES);
    raw_varint(w, n * 4);
    if (!reserve(w, n * 4))
        return;
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &v[i], sizeof b);
        uint8_t *p = w->buf + w->len + 4 * i;
        p[0] = (uint8_t)b;
        p[1] = (uint8_t)(b >> 8);
        p[2] = (uint8_t)(b >> 16);
        p[3] = (uint8_t)(b >> 24);
    }
    w->len += n * 4;
}

size_t cvis__pbw_begin(cvis__pbw *w, uint32_t field)
{
    tag(w, field, CVIS__PB_BYTES);
    size_t mark = w->len;
    raw_bytes(w, "", 1); /* one byte reserved for the length */
    return mark;
}

void cvis__pbw_end(cvis__pbw *w, size_t mark)
{
    if (w->st != CVIS_OK)
        return;
    size_t body = w->len - mark - 1;
    size_t k = varint_size(body);
    if (k > 1) {
        if (!reserve(w, k - 1))
            return;
        memmove(w->buf + mark + k, w->buf + mark + 1, body);
        w->len += k - 1;
    }
    put_varint(w->buf + mark, body);
}
