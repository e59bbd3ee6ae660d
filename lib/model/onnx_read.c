/* Decoding of ONNX files (ModelProto and the messages under it) into the
 * small form of onnx_read.h.  Field numbers are those of onnx.proto.  Every
 * array is sized from what the buffer actually holds (counted in a first
 * pass over the message), so that no allocation is larger than the file
 * justifies; tensor data is checked against the declared dims before it is
 * allocated. */
#include "onnx_read.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/error.h"
#include "protobuf.h"

/* ------------------------------------------------------------ freeing */

void cvis__onnx_tensor_release(cvis__onnx_tensor *t)
{
    if (!t)
        return;
    cvis__free(t->name);
    cvis__free(t->f);
    cvis__free(t->i);
    memset(t, 0, sizeof *t);
}

static void attr_release(cvis__onnx_attr *a)
{
    cvis__free(a->name);
    cvis__free(a->s);
    if (a->t) {
        cvis__onnx_tensor_release(a->t);
        cvis__free(a->t);
    }
    cvis__free(a->floats);
    cvis__free(a->ints);
}

static void node_release(cvis__onnx_node *n)
{
    cvis__free(n->name);
    cvis__free(n->op_type);
    cvis__free(n->domain);
    for (int i = 0; i < n->n_in; i++)
        cvis__free(n->in[i]);
    for (int i = 0; i < n->n_out; i++)
        cvis__free(n->out[i]);
    cvis__free(n->in);
    cvis__free(n->out);
    for (int i = 0; i < n->n_attr; i++)
        attr_release(&n->attr[i]);
    cvis__free(n->attr);
}

void cvis__onnx_free(cvis__onnx_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_nodes; i++)
        node_release(&m->nodes[i]);
    for (int i = 0; i < m->n_init; i++)
        cvis__onnx_tensor_release(&m->init[i]);
    for (int i = 0; i < m->n_inputs; i++)
        cvis__free(m->inputs[i].name);
    for (int i = 0; i < m->n_outputs; i++)
        cvis__free(m->outputs[i].name);
    cvis__free(m->nodes);
    cvis__free(m->init);
    cvis__free(m->inputs);
    cvis__free(m->outputs);
    cvis__free(m->producer);
    cvis__free(m->graph_name);
    cvis__free(m);
}

const cvis__onnx_attr *cvis__onnx_attr_find(const cvis__onnx_node *n, const char *name)
{
    for (int i = n->n_attr - 1; i >= 0; i--)
        if (n->attr[i].name && !strcmp(n->attr[i].name, name))
            return &n->attr[i];
    return NULL;
}

/* ------------------------------------------------------------ helpers */

/* Replaces *dst with a NUL-terminated copy of a BYTES field. */
static cvis_status take_string(const cvis__pb_field *f, const char *what, char **dst)
{
    if (f->wire != CVIS__PB_BYTES)
        return cvis__fail(CVIS_E_FORMAT, "%s should be a string (wire type %d)", what, f->wire);
    char *s;
    CVIS_TRY(cvis__alloc(f->len + 1, what, (void **)&s));
    if (f->len)
        memcpy(s, f->data, f->len);
    s[f->len] = 0;
    cvis__free(*dst);
    *dst = s;
    return CVIS_OK;
}

static cvis_status want_varint(const cvis__pb_field *f, const char *what)
{
    if (f->wire != CVIS__PB_VARINT)
        return cvis__fail(CVIS_E_FORMAT, "%s should be an integer (wire type %d)", what, f->wire);
    return CVIS_OK;
}

/* Elements in a repeated scalar field occurrence: one value, or a packed
 * payload of `width` bytes per value (width 0: varints). */
static cvis_status count_scalars(const cvis__pb_field *f, int wire, int width, const char *what,
                                 size_t *n)
{
    if (f->wire == wire) {
        *n = 1;
        return CVIS_OK;
    }
    if (f->wire != CVIS__PB_BYTES)
        return cvis__fail(CVIS_E_FORMAT, "%s has wire type %d", what, f->wire);
    if (width == 0) {
        if (cvis__pb_count_varints(f->data, f->len, n) != CVIS_OK)
            return cvis__fail(CVIS_E_FORMAT, "%s: truncated packed integers", what);
        return CVIS_OK;
    }
    if (f->len % (size_t)width)
        return cvis__fail(CVIS_E_FORMAT, "%s: packed payload of %zu bytes is not a multiple of %d",
                          what, f->len, width);
    *n = f->len / (size_t)width;
    return CVIS_OK;
}

/* Calls back for each value of a repeated scalar field occurrence. */
typedef void (*scalar_fn)(void *ctx, size_t k, uint64_t v);

static void walk_scalars(const cvis__pb_field *f, int wire, int width, void *ctx, size_t first,
                         scalar_fn fn)
{
    if (f->wire == wire) {
        fn(ctx, first, f->u);
        return;
    }
    const uint8_t *p = f->data, *end = f->data + f->len;
    for (size_t k = first; p < end; k++) {
        uint64_t v = 0;
        if (width == 0) {
            if (cvis__pb_varint(&p, end, &v) != CVIS_OK)
                return; /* already validated by count_scalars */
        } else if (width == 4) {
            v = cvis__pb_le32(p);
            p += 4;
        } else {
            v = cvis__pb_le64(p);
            p += 8;
        }
        fn(ctx, k, v);
    }
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalize */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FF) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Bytes per element in raw_data; 0 for types libcvis does not read. */
static int dtype_width(int dtype)
{
    switch (dtype) {
    case CVIS__ONNX_FLOAT: case CVIS__ONNX_INT32: case CVIS__ONNX_UINT32: return 4;
    case CVIS__ONNX_UINT8: case CVIS__ONNX_INT8: case CVIS__ONNX_BOOL: return 1;
    case CVIS__ONNX_UINT16: case CVIS__ONNX_INT16: case CVIS__ONNX_FLOAT16:
    case CVIS__ONNX_BFLOAT16: return 2;
    case CVIS__ONNX_INT64: case CVIS__ONNX_DOUBLE: case CVIS__ONNX_UINT64: return 8;
    default: return 0;
    }
}

static int dtype_is_float(int dtype)
{
    return dtype == CVIS__ONNX_FLOAT || dtype == CVIS__ONNX_FLOAT16 ||
           dtype == CVIS__ONNX_DOUBLE || dtype == CVIS__ONNX_BFLOAT16;
}

static const char *dtype_name(int dtype)
{
    static const char *names[] = {"undefined", "float", "uint8", "int8", "uint16", "int16",
                                  "int32", "int64", "string", "bool", "float16", "double",
                                  "uint32", "uint64", "complex64", "complex128", "bfloat16"};
    return dtype >= 0 && dtype <= 16 ? names[dtype] : "unknown";
}

/* Stores element k of a tensor from its raw little-endian bytes. */
static void store_raw(cvis__onnx_tensor *t, int64_t k, const uint8_t *p)
{
    switch (t->dtype) {
    case CVIS__ONNX_FLOAT: t->f[k] = cvis__pb_float(cvis__pb_le32(p)); break;
    case CVIS__ONNX_FLOAT16: t->f[k] = half_to_float(cvis__pb_le16(p)); break;
    case CVIS__ONNX_BFLOAT16: t->f[k] = bf16_to_float(cvis__pb_le16(p)); break;
    case CVIS__ONNX_DOUBLE: t->f[k] = (float)cvis__pb_double(cvis__pb_le64(p)); break;
    case CVIS__ONNX_UINT8: t->i[k] = p[0]; break;
    case CVIS__ONNX_INT8: t->i[k] = (int8_t)p[0]; break;
    case CVIS__ONNX_BOOL: t->i[k] = p[0] != 0; break;
    case CVIS__ONNX_UINT16: t->i[k] = cvis__pb_le16(p); break;
    case CVIS__ONNX_INT16: t->i[k] = (int16_t)cvis__pb_le16(p); break;
    case CVIS__ONNX_INT32: t->i[k] = (int32_t)cvis__pb_le32(p); break;
    case CVIS__ONNX_UINT32: t->i[k] = cvis__pb_le32(p); break;
    default: t->i[k] = (int64_t)cvis__pb_le64(p); break; /* int64, uint64 */
    }
}

/* Stores all elements from raw little-endian bytes; float32 is copied
 * as is on little-endian machines. */
static void store_all_raw(cvis__onnx_tensor *t, const uint8_t *raw)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (t->dtype == CVIS__ONNX_FLOAT && t->count) {
        memcpy(t->f, raw, (size_t)t->count * sizeof(float));
        return;
    }
#endif
    int width = dtype_width(t->dtype);
    for (int64_t k = 0; k < t->count; k++)
        store_raw(t, k, raw + (size_t)k * (size_t)width);
}

/* Stores element k from a typed field's value (int32_data holds the small
 * integer types and the bits of 16-bit floats). */
static void store_typed(void *ctx, size_t k, uint64_t v)
{
    cvis__onnx_tensor *t = ctx;
    switch (t->dtype) {
    case CVIS__ONNX_FLOAT: t->f[k] = cvis__pb_float(v); break;
    case CVIS__ONNX_FLOAT16: t->f[k] = half_to_float((uint16_t)v); break;
    case CVIS__ONNX_BFLOAT16: t->f[k] = bf16_to_float((uint16_t)v); break;
    case CVIS__ONNX_DOUBLE: t->f[k] = (float)cvis__pb_double(v); break;
    case CVIS__ONNX_BOOL: t->i[k] = v != 0; break;
    case CVIS__ONNX_INT64: case CVIS__ONNX_UINT64: case CVIS__ONNX_UINT32:
        t->i[k] = (int64_t)v;
        break;
    default: t->i[k] = (int32_t)(uint32_t)v; break; /* int32 and narrower, sign-extended */
    }
}

/* The typed field that carries a data type's values, its wire type and
 * packed width. */
static void typed_field(int dtype, uint32_t *field, int *wire, int *width)
{
    switch (dtype) {
    case CVIS__ONNX_FLOAT: *field = 4; *wire = CVIS__PB_FIXED32; *width = 4; break;
    case CVIS__ONNX_DOUBLE: *field = 10; *wire = CVIS__PB_FIXED64; *width = 8; break;
    case CVIS__ONNX_INT64: *field = 7; *wire = CVIS__PB_VARINT; *width = 0; break;
    case CVIS__ONNX_UINT32: case CVIS__ONNX_UINT64:
        *field = 11; *wire = CVIS__PB_VARINT; *width = 0;
        break;
    default: *field = 5; *wire = CVIS__PB_VARINT; *width = 0; break;
    }
}

static cvis_status alloc_data(cvis__onnx_tensor *t, const char *what)
{
    if (t->count == 0)
        return CVIS_OK;
    if (dtype_is_float(t->dtype))
        return cvis__alloc((size_t)t->count * sizeof(float), what, (void **)&t->f);
    return cvis__alloc((size_t)t->count * sizeof(int64_t), what, (void **)&t->i);
}

/* --------------------------------------------------------- external data */

/* Reads `bytes` bytes at `offset` of `dir`/`location` into a new buffer
 * after checking that the file holds them. */
static cvis_status read_external(const char *dir, const char *location, int64_t offset,
                                 size_t bytes, const char *tname, uint8_t **out)
{
    if (!dir)
        return cvis__fail(CVIS_E_UNSUPPORTED,
                          "tensor \"%s\" keeps its data in external file \"%s\"; load the model "
                          "from its path (cvis_model_load_onnx) so that the file can be found",
                          tname, location);
    if (!location[0] || location[0] == '/' || strstr(location, ".."))
        return cvis__fail(CVIS_E_FORMAT,
                          "tensor \"%s\": external data location \"%s\" must be a relative path "
                          "inside the model's directory", tname, location);
    size_t plen = strlen(dir) + strlen(location) + 2;
    char *path;
    CVIS_TRY(cvis__alloc(plen, "external data path", (void **)&path));
    snprintf(path, plen, "%s/%s", dir, location);
    cvis_status st = CVIS_OK;
    uint8_t *buf = NULL;
    FILE *fp = fopen(path, "rb");
    struct stat sb;
    if (!fp) {
        st = cvis__fail(CVIS_E_IO, "tensor \"%s\": external data file \"%s\" cannot be opened",
                        tname, path);
    } else if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = cvis__fail(CVIS_E_IO, "tensor \"%s\": \"%s\" is not a regular file", tname, path);
    } else if (offset < 0 || (uint64_t)offset > (uint64_t)sb.st_size ||
               bytes > (uint64_t)sb.st_size - (uint64_t)offset) {
        st = cvis__fail(CVIS_E_FORMAT,
                        "tensor \"%s\": external file \"%s\" has %lld bytes, too few for %zu "
                        "bytes at offset %lld", tname, path, (long long)sb.st_size, bytes,
                        (long long)offset);
    } else if ((st = cvis__alloc(bytes ? bytes : 1, "external tensor data", (void **)&buf)) ==
               CVIS_OK) {
        if (fseeko(fp, (off_t)offset, SEEK_SET) != 0 || fread(buf, 1, bytes, fp) != bytes) {
            st = cvis__fail(CVIS_E_IO, "tensor \"%s\": reading \"%s\" failed", tname, path);
            cvis__free(buf);
            buf = NULL;
        }
    }
    if (fp)
        fclose(fp);
    cvis__free(path);
    if (st == CVIS_OK)
        *out = buf;
    return st;
}

/* One StringStringEntryProto of external_data. */
static cvis_status read_entry(const cvis__pb *parent, const cvis__pb_field *f, char **key,
                              char **value)
{
    cvis__pb r;
    cvis__pb_field g;
    int more;
    CVIS_TRY(cvis__pb_sub(parent, f, "external_data entry", &r));
    while (1) {
        CVIS_TRY(cvis__pb_next(&r, &g, &more));
        if (!more)
            break;
        if (g.number == 1)
            CVIS_TRY(take_string(&g, "external_data key", key));
        else if (g.number == 2)
            CVIS_TRY(take_string(&g, "external_data value", value));
    }
    return CVIS_OK;
}

static int parse_int64(const char *s, int64_t *v)
{
    if (!s || !*s)
        return 0;
    int64_t x = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || x > (INT64_MAX - 9) / 10)
            return 0;
        x = x * 10 + (*s - '0');
    }
    *v = x;
    return 1;
}

/* ------------------------------------------------------------ tensors */

static cvis_status read_tensor(const cvis__pb *parent, const cvis__pb_field *field,
                                    const char *dir, cvis__onnx_tensor *t)
{
    cvis__pb r;
    cvis__pb_field f;
    int more;
    CVIS_TRY(cvis__pb_sub(parent, field, "TensorProto", &r));
    cvis__pb start = r;
    memset(t, 0, sizeof *t);
    const uint8_t *raw = NULL;
    size_t raw_len = 0;
    int has_raw = 0, external = 0;
    size_t typed_n[12] = {0};
    char *location = NULL, *key = NULL, *value = NULL;
    int64_t ext_offset = 0, ext_length = -1;
    cvis_status st = CVIS_OK;
    /* pass 1: scalars, names, counts */
    while (st == CVIS_OK) {
        st = cvis__pb_next(&r, &f, &more);
        if (st != CVIS_OK || !more)
            break;
        switch (f.number) {
        case 1: { /* dims */
            size_t n;
            st = count_scalars(&f, CVIS__PB_VARINT, 0, "tensor dims", &n);
            if (st == CVIS_OK && (size_t)t->ndim + n > CVIS__ONNX_MAX_RANK)
                st = cvis__fail(CVIS_E_UNSUPPORTED, "a tensor has more than %d dimensions",
                                CVIS__ONNX_MAX_RANK);
            if (st == CVIS_OK) {
                if (f.wire == CVIS__PB_VARINT) {
                    t->dims[t->ndim++] = (int64_t)f.u;
                } else {
                    const uint8_t *p = f.data, *end = f.data + f.len;
                    while (p < end) {
                        uint64_t v;
                        cvis__pb_varint(&p, end, &v);
                        t->dims[t->ndim++] = (int64_t)v;
                    }
                }
            }
            break;
        }
        case 2:
            st = want_varint(&f, "tensor data_type");
            t->dtype = (int)f.u;
            break;
        case 3:
            st = cvis__fail(CVIS_E_UNSUPPORTED, "segmented tensors are not supported");
            break;
        case 4: case 5: case 7: case 10: case 11: {
            int wire = f.number == 4 ? CVIS__PB_FIXED32
                       : f.number == 10 ? CVIS__PB_FIXED64 : CVIS__PB_VARINT;
            int width = f.number == 4 ? 4 : f.number == 10 ? 8 : 0;
            size_t n;
            st = count_scalars(&f, wire, width, "tensor data", &n);
            typed_n[f.number] += n;
            break;
        }
        case 8:
            st = take_string(&f, "tensor name", &t->name);
            break;
        case 9:
            if (f.wire != CVIS__PB_BYTES) {
                st = cvis__fail(CVIS_E_FORMAT, "tensor raw_data has wire type %d", f.wire);
                break;
            }
            raw = f.data;
            raw_len = f.len;
            has_raw = 1;
            break;
        case 13:
            external = 1;
            st = read_entry(&r, &f, &key, &value);
            if (st == CVIS_OK && key && value) {
                if (!strcmp(key, "location")) {
                    cvis__free(location);
                    location = value;
                    value = NULL;
                } else if (!strcmp(key, "offset") && !parse_int64(value, &ext_offset)) {
                    st = cvis__fail(CVIS_E_FORMAT, "external data offset \"%s\" is not a number",
                                    value);
                } else if (!strcmp(key, "length") && !parse_int64(value, &ext_length)) {
                    st = cvis__fail(CVIS_E_FORMAT, "external data length \"%s\" is not a number",
                                    value);
                }
            }
            cvis__free(key);
            cvis__free(value);
            key = value = NULL;
            break;
        case 14:
            st = want_varint(&f, "tensor data_location");
            if (f.u == 1)
                external = 1;
            break;
        default:
            break;
        }
    }
    const char *tname = t->name ? t->name : "(unnamed)";
    /* the element count, overflow-checked */
    int64_t count = 1;
    for (int k = 0; k < t->ndim && st == CVIS_OK; k++) {
        if (t->dims[k] < 0)
            st = cvis__fail(CVIS_E_FORMAT, "tensor \"%s\" has negative size %lld on axis %d",
                            tname, (long long)t->dims[k], k);
        else if (cvis__mul_size(count, t->dims[k], "tensor size", &count) != CVIS_OK)
            st = cvis__fail(CVIS_E_FORMAT, "tensor \"%s\": the product of its dims overflows",
                            tname);
    }
    t->count = count;
    int width = dtype_width(t->dtype);
    if (st == CVIS_OK && !width)
        st = cvis__fail(CVIS_E_UNSUPPORTED, "tensor \"%s\" has data type %s (%d), which libcvis "
                        "does not read", tname, dtype_name(t->dtype), t->dtype);
    uint32_t tf = 0;
    int twire = 0, twidth = 0;
    typed_field(t->dtype, &tf, &twire, &twidth);
    if (st == CVIS_OK && external) {
        if (!location) {
            st = cvis__fail(CVIS_E_FORMAT, "tensor \"%s\" is external but names no location",
                            tname);
        } else if ((uint64_t)count > SIZE_MAX / (uint64_t)width) {
            st = cvis__fail(CVIS_E_FORMAT, "tensor \"%s\" is too large", tname);
        } else {
            size_t bytes = (size_t)count * (size_t)width;
            if (ext_length >= 0 && (uint64_t)ext_length != (uint64_t)bytes)
                st = cvis__fail(CVIS_E_FORMAT, "tensor \"%s\": external length %lld, but its "
                                "dims need %zu bytes", tname, (long long)ext_length, bytes);
            uint8_t *buf = NULL;
            if (st == CVIS_OK)
                st = read_external(dir, location, ext_offset, bytes, tname, &buf);
            if (st == CVIS_OK)
                st = alloc_data(t, "tensor data");
            if (st == CVIS_OK)
                store_all_raw(t, buf);
            cvis__free(buf);
        }
    } else if (st == CVIS_OK && has_raw) {
        if ((uint64_t)count > raw_len / (uint64_t)width || raw_len != (size_t)count * (size_t)width)
            st = cvis__fail(CVIS_E_FORMAT, "tensor \"%s\": raw_data has %zu bytes, its dims "
                            "need %lld values of %d bytes", tname, raw_len, (long long)count,
                            width);
        if (st == CVIS_OK)
            st = alloc_data(t, "tensor data");
        if (st == CVIS_OK)
            store_all_raw(t, raw);
    } else if (st == CVIS_OK) {
        if (typed_n[tf] != (size_t)count) {
            if (typed_n[tf] == 0 && count > 0)
                st = cvis__fail(CVIS_E_FORMAT, "tensor \"%s\" (%lld values) has no data", tname,
                                (long long)count);
            else
                st = cvis__fail(CVIS_E_FORMAT, "tensor \"%s\" holds %zu values, its dims say "
                                "%lld", tname, typed_n[tf], (long long)count);
        }
        if (st == CVIS_OK)
            st = alloc_data(t, "tensor data");
        /* pass 2: the values */
        r = start;
        size_t k = 0;
        while (st == CVIS_OK && count > 0) {
            st = cvis__pb_next(&r, &f, &more);
            if (st != CVIS_OK || !more)
                break;
            if (f.number != tf)
                continue;
            size_t n;
            count_scalars(&f, twire, twidth, "tensor data", &n);
            walk_scalars(&f, twire, twidth, t, k, store_typed);
            k += n;
        }
    }
    cvis__free(location);
    if (st != CVIS_OK)
        cvis__onnx_tensor_release(t);
    return st;
}

/* --------------------------------------------------------- attributes */

static void store_float_attr(void *ctx, size_t k, uint64_t v)
{
    ((cvis__onnx_attr *)ctx)->floats[k] = cvis__pb_float(v);
}

static void store_int_attr(void *ctx, size_t k, uint64_t v)
{
    ((cvis__onnx_attr *)ctx)->ints[k] = (int64_t)v;
}

static cvis_status read_attr(const cvis__pb *parent, const cvis__pb_field *field, const char *dir,
                             cvis__onnx_attr *a)
{
    cvis__pb r, start;
    cvis__pb_field f;
    int more;
    CVIS_TRY(cvis__pb_sub(parent, field, "AttributeProto", &r));
    start = r;
    size_t nf = 0, ni = 0;
    int has_f = 0, has_i = 0, has_s = 0, has_g = 0, has_strings = 0;
    while (1) {
        CVIS_TRY(cvis__pb_next(&r, &f, &more));
        if (!more)
            break;
        size_t n;
        switch (f.number) {
        case 1: CVIS_TRY(take_string(&f, "attribute name", &a->name)); break;
        case 2:
            if (f.wire != CVIS__PB_FIXED32)
                return cvis__fail(CVIS_E_FORMAT, "attribute f has wire type %d", f.wire);
            a->f = cvis__pb_float(f.u);
            has_f = 1;
            break;
        case 3:
            CVIS_TRY(want_varint(&f, "attribute i"));
            a->i = (int64_t)f.u;
            has_i = 1;
            break;
        case 4: CVIS_TRY(take_string(&f, "attribute s", &a->s)); has_s = 1; break;
        case 5:
            if (a->t) {
                cvis__onnx_tensor_release(a->t);
            } else {
                a->t = cvis__calloc(1, sizeof *a->t);
                if (!a->t)
                    return cvis__fail(CVIS_E_NOMEM, "out of memory reading an attribute");
            }
            CVIS_TRY(read_tensor(&r, &f, dir, a->t));
            break;
        case 6: case 11: has_g = 1; break;
        case 7:
            CVIS_TRY(count_scalars(&f, CVIS__PB_FIXED32, 4, "attribute floats", &n));
            nf += n;
            break;
        case 8:
            CVIS_TRY(count_scalars(&f, CVIS__PB_VARINT, 0, "attribute ints", &n));
            ni += n;
            break;
        case 9: has_strings = 1; break;
        case 20:
            CVIS_TRY(want_varint(&f, "attribute type"));
            a->type = (int)f.u;
            break;
        default: break;
        }
    }
    if (!a->name)
        return cvis__fail(CVIS_E_FORMAT, "an attribute has no name");
    if (a->type == 0) { /* old files: the type follows from the field set */
        a->type = nf ? CVIS__ONNX_ATTR_FLOATS : ni ? CVIS__ONNX_ATTR_INTS
                  : has_f ? CVIS__ONNX_ATTR_FLOAT : has_i ? CVIS__ONNX_ATTR_INT
                  : has_s ? CVIS__ONNX_ATTR_STRING : a->t ? CVIS__ONNX_ATTR_TENSOR
                  : has_g ? CVIS__ONNX_ATTR_GRAPH : has_strings ? CVIS__ONNX_ATTR_STRINGS : 0;
    }
    if (nf || ni) {
        if (nf > 1u << 30 || ni > 1u << 30)
            return cvis__fail(CVIS_E_FORMAT, "attribute \"%s\" is too long", a->name);
        if (nf)
            CVIS_TRY(cvis__alloc(nf * sizeof(float), "attribute", (void **)&a->floats));
        if (ni)
            CVIS_TRY(cvis__alloc(ni * sizeof(int64_t), "attribute", (void **)&a->ints));
        size_t kf = 0, ki = 0;
        r = start;
        while (1) {
            CVIS_TRY(cvis__pb_next(&r, &f, &more));
            if (!more)
                break;
            size_t n;
            if (f.number == 7) {
                count_scalars(&f, CVIS__PB_FIXED32, 4, "attribute floats", &n);
                walk_scalars(&f, CVIS__PB_FIXED32, 4, a, kf, store_float_attr);
                kf += n;
            } else if (f.number == 8) {
                count_scalars(&f, CVIS__PB_VARINT, 0, "attribute ints", &n);
                walk_scalars(&f, CVIS__PB_VARINT, 0, a, ki, store_int_attr);
                ki += n;
            }
        }
        a->n = a->type == CVIS__ONNX_ATTR_FLOATS ? (int)nf : (int)ni;
    }
    return CVIS_OK;
}

/* -------------------------------------------------------------- nodes */

static cvis_status read_node(const cvis__pb *parent, const cvis__pb_field *field, const char *dir,
                             cvis__onnx_node *n)
{
    cvis__pb r, start;
    cvis__pb_field f;
    int more;
    CVIS_TRY(cvis__pb_sub(parent, field, "NodeProto", &r));
    start = r;
    size_t ni = 0, no = 0, na = 0;
    while (1) {
        CVIS_TRY(cvis__pb_next(&r, &f, &more));
        if (!more)
            break;
        if (f.number == 1)
            ni++;
        else if (f.number == 2)
            no++;
        else if (f.number == 5)
            na++;
    }
    if (ni > 1u << 20 || no > 1u << 20 || na > 1u << 20)
        return cvis__fail(CVIS_E_FORMAT, "a node has too many inputs, outputs or attributes");
    n->in = cvis__calloc(ni, sizeof *n->in);
    n->out = cvis__calloc(no, sizeof *n->out);
    n->attr = cvis__calloc(na, sizeof *n->attr);
    if (!n->in || !n->out || !n->attr)
        return cvis__fail(CVIS_E_NOMEM, "out of memory reading a node");
    r = start;
    while (1) {
        CVIS_TRY(cvis__pb_next(&r, &f, &more));
        if (!more)
            break;
        switch (f.number) {
        case 1: CVIS_TRY(take_string(&f, "node input", &n->in[n->n_in])); n->n_in++; break;
        case 2: CVIS_TRY(take_string(&f, "node output", &n->out[n->n_out])); n->n_out++; break;
        case 3: CVIS_TRY(take_string(&f, "node name", &n->name)); break;
        case 4: CVIS_TRY(take_string(&f, "node op_type", &n->op_type)); break;
        case 5:
            n->n_attr++;
            CVIS_TRY(read_attr(&r, &f, dir, &n->attr[n->n_attr - 1]));
            break;
        case 7: CVIS_TRY(take_string(&f, "node domain", &n->domain)); break;
        default: break;
        }
    }
    if (!n->op_type || !n->op_type[0])
        return cvis__fail(CVIS_E_FORMAT, "node \"%s\" has no op_type", n->name ? n->name : "");
    if (!n->name && !(n->name = cvis__strdup("")))
        return cvis__fail(CVIS_E_NOMEM, "out of memory reading a node");
    return CVIS_OK;
}

/* ---------------------------------------------------------- value info */

static cvis_status read_shape(const cvis__pb *parent, const cvis__pb_field *field,
                              cvis__onnx_value_info *v)
{
    cvis__pb r;
    cvis__pb_field f;
    int more;
    CVIS_TRY(cvis__pb_sub(parent, field, "TensorShapeProto", &r));
    v->ndim = 0;
    while (1) {
        CVIS_TRY(cvis__pb_next(&r, &f, &more));
        if (!more)
            break;
        if (f.number != 1)
            continue;
        cvis__pb d;
        cvis__pb_field g;
        CVIS_TRY(cvis__pb_sub(&r, &f, "Dimension", &d));
        int64_t size = -1;
        while (1) {
            CVIS_TRY(cvis__pb_next(&d, &g, &more));
            if (!more)
                break;
            if (g.number == 1) {
                CVIS_TRY(want_varint(&g, "dim_value"));
                size = (int64_t)g.u;
                if (size < 0)
                    return cvis__fail(CVIS_E_FORMAT, "value \"%s\" has negative size %lld",
                                      v->name ? v->name : "", (long long)size);
            } else if (g.number == 2) {
                size = -1;
            }
        }
        if (v->ndim < CVIS__ONNX_MAX_RANK)
            v->dims[v->ndim] = size;
        if (v->ndim <= CVIS__ONNX_MAX_RANK)
            v->ndim++;
    }
    if (v->ndim > CVIS__ONNX_MAX_RANK)
        v->ndim = -2; /* too many axes for libcvis */
    return CVIS_OK;
}

static cvis_status read_value_info(const cvis__pb *parent, const cvis__pb_field *field,
                                   cvis__onnx_value_info *v)
{
    cvis__pb r;
    cvis__pb_field f;
    int more;
    CVIS_TRY(cvis__pb_sub(parent, field, "ValueInfoProto", &r));
    v->ndim = -1;
    while (1) {
        CVIS_TRY(cvis__pb_next(&r, &f, &more));
        if (!more)
            break;
        if (f.number == 1) {
            CVIS_TRY(take_string(&f, "value name", &v->name));
        } else if (f.number == 2) {
            cvis__pb tp;
            cvis__pb_field g;
            CVIS_TRY(cvis__pb_sub(&r, &f, "TypeProto", &tp));
            while (1) {
                CVIS_TRY(cvis__pb_next(&tp, &g, &more));
                if (!more)
                    break;
                if (g.number != 1)
                    continue;
                cvis__pb tt;
                cvis__pb_field h;
                CVIS_TRY(cvis__pb_sub(&tp, &g, "TypeProto.Tensor", &tt));
                while (1) {
                    CVIS_TRY(cvis__pb_next(&tt, &h, &more));
                    if (!more)
                        break;
                    if (h.number == 1) {
                        CVIS_TRY(want_varint(&h, "elem_type"));
                        v->elem_type = (int)h.u;
                    } else if (h.number == 2) {
                        CVIS_TRY(read_shape(&tt, &h, v));
                    }
                }
            }
        }
    }
    if (!v->name)
        return cvis__fail(CVIS_E_FORMAT, "a graph input or output has no name");
    return CVIS_OK;
}

/* -------------------------------------------------------------- graph */

static cvis_status read_graph(const cvis__pb *parent, const cvis__pb_field *field,
                              const char *dir, cvis__onnx_model *m)
{
    cvis__pb r, start;
    cvis__pb_field f;
    int more;
    CVIS_TRY(cvis__pb_sub(parent, field, "GraphProto", &r));
    start = r;
    size_t nn = 0, ninit = 0, nin = 0, nout = 0;
    while (1) {
        CVIS_TRY(cvis__pb_next(&r, &f, &more));
        if (!more)
            break;
        switch (f.number) {
        case 1: nn++; break;
        case 5: ninit++; break;
        case 11: nin++; break;
        case 12: nout++; break;
        case 15:
            return cvis__fail(CVIS_E_UNSUPPORTED, "sparse initializers are not supported");
        default: break;
        }
    }
    if (m->nodes || m->init)
        return cvis__fail(CVIS_E_FORMAT, "the model has more than one graph");
    if (nn > 1u << 24 || ninit > 1u << 24 || nin > 1u << 24 || nout > 1u << 24)
        return cvis__fail(CVIS_E_FORMAT, "the graph is too large");
    m->nodes = cvis__calloc(nn, sizeof *m->nodes);
    m->init = cvis__calloc(ninit, sizeof *m->init);
    m->inputs = cvis__calloc(nin, sizeof *m->inputs);
    m->outputs = cvis__calloc(nout, sizeof *m->outputs);
    if (!m->nodes || !m->init || !m->inputs || !m->outputs)
        return cvis__fail(CVIS_E_NOMEM, "out of memory reading the graph");
    r = start;
    while (1) {
        CVIS_TRY(cvis__pb_next(&r, &f, &more));
        if (!more)
            break;
        switch (f.number) {
        case 1:
            m->n_nodes++;
            CVIS_TRY(read_node(&r, &f, dir, &m->nodes[m->n_nodes - 1]));
            break;
        case 2: CVIS_TRY(take_string(&f, "graph name", &m->graph_name)); break;
        case 5:
            CVIS_TRY(read_tensor(&r, &f, dir, &m->init[m->n_init]));
            if (!m->init[m->n_init].name) {
                cvis__onnx_tensor_release(&m->init[m->n_init]);
                return cvis__fail(CVIS_E_FORMAT, "an initializer has no name");
            }
            m->n_init++;
            break;
        case 11:
            m->n_inputs++;
            CVIS_TRY(read_value_info(&r, &f, &m->inputs[m->n_inputs - 1]));
            break;
        case 12:
            m->n_outputs++;
            CVIS_TRY(read_value_info(&r, &f, &m->outputs[m->n_outputs - 1]));
            break;
        default: break;
        }
    }
    return CVIS_OK;
}

static cvis_status read_opset(const cvis__pb *parent, const cvis__pb_field *field,
                              cvis__onnx_model *m)
{
    cvis__pb r;
    cvis__pb_field f;
    int more;
    char *domain = NULL;
    int64_t version = 0;
    CVIS_TRY(cvis__pb_sub(parent, field, "OperatorSetIdProto", &r));
    cvis_status st = CVIS_OK;
    while (st == CVIS_OK) {
        st = cvis__pb_next(&r, &f, &more);
        if (st != CVIS_OK || !more)
            break;
        if (f.number == 1) {
            st = take_string(&f, "opset domain", &domain);
        } else if (f.number == 2) {
            st = want_varint(&f, "opset version");
            version = (int64_t)f.u;
        }
    }
    if (st == CVIS_OK && (!domain || !domain[0] || !strcmp(domain, "ai.onnx")))
        m->opset = version;
    cvis__free(domain);
    return st;
}

/* Files that are often mistaken for ONNX models. */
static const char *known_other_format(const uint8_t *p, size_t n)
{
    if (n >= 4 && !memcmp(p, "PK\x03\x04", 4))
        return "a zip archive (NPZ weights, a PyTorch .pt file or a .keras file)";
    if (n >= 8 && !memcmp(p, "\x89HDF\r\n\x1a\n", 8))
        return "an HDF5 file (Keras .h5 weights)";
    if (n >= 6 && !memcmp(p, "\x93NUMPY", 6))
        return "a NumPy .npy array";
    if (n >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8))
        return "a PNG image";
    if (n >= 2 && p[0] == 0x80 && p[1] <= 5)
        return "a Python pickle";
    return NULL;
}

cvis_status cvis__onnx_read(const void *data, size_t size, const char *dir,
                            cvis__onnx_model **out)
{
    if (size == 0)
        return cvis__fail(CVIS_E_FORMAT, "not an ONNX model: the file is empty");
    const char *other = known_other_format(data, size);
    if (other)
        return cvis__fail(CVIS_E_FORMAT, "not an ONNX model: this is %s", other);
    cvis__onnx_model *m = cvis__calloc(1, sizeof *m);
    if (!m)
        return cvis__fail(CVIS_E_NOMEM, "out of memory reading a model");
    cvis__pb r;
    cvis__pb_field f;
    int more, has_graph = 0, has_opset = 0;
    cvis__pb_init(&r, data, size, "ModelProto");
    cvis_status st = CVIS_OK;
    while (st == CVIS_OK) {
        st = cvis__pb_next(&r, &f, &more);
        if (st != CVIS_OK || !more)
            break;
        switch (f.number) {
        case 1:
            st = want_varint(&f, "ir_version");
            m->ir_version = (int64_t)f.u;
            break;
        case 2: st = take_string(&f, "producer_name", &m->producer); break;
        case 7:
            st = read_graph(&r, &f, dir, m);
            has_graph = 1;
            break;
        case 8:
            st = read_opset(&r, &f, m);
            has_opset = 1;
            break;
        default: break;
        }
    }
    if (st == CVIS_OK && !has_graph)
        st = cvis__fail(CVIS_E_FORMAT, "not an ONNX model: it has no graph");
    if (st == CVIS_OK && (m->ir_version < 1 || m->ir_version > 100))
        st = cvis__fail(CVIS_E_FORMAT, "not an ONNX model: IR version %lld",
                        (long long)m->ir_version);
    if (st == CVIS_OK && !has_opset)
        m->opset = 1;
    if (st != CVIS_OK) {
        cvis__onnx_free(m);
        return st;
    }
    *out = m;
    return CVIS_OK;
}
