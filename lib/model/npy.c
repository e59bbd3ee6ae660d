/* .npy reading and writing.  The header is a Python dictionary literal
 * with the keys 'descr', 'fortran_order' and 'shape'; only the small part
 * of Python's syntax that such a header uses is accepted. */
#include "npy.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"

#define MAGIC "\x93NUMPY"
#define MAGIC_LEN 6
#define ALIGN 64        /* numpy aligns the data to 64 bytes */
#define CHUNK (64 * 1024)

static int host_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* ------------------------------------------------------------ header text */

typedef struct scanner {
    const char *p, *end;
} scanner;

static void skip_space(scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int accept(scanner *s, char c)
{
    skip_space(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

static int peek(scanner *s, char c)
{
    skip_space(s);
    return s->p < s->end && *s->p == c;
}

static int accept_word(scanner *s, const char *w)
{
    size_t n = strlen(w);
    skip_space(s);
    if ((size_t)(s->end - s->p) >= n && !memcmp(s->p, w, n)) {
        s->p += n;
        return 1;
    }
    return 0;
}

static cvis_status bad_header(const char *what)
{
    return cvis__fail(CVIS_E_FORMAT, "bad .npy header: %s", what);
}

/* A quoted string without escapes into buf (truncated to cap-1 characters;
 * *long_string says whether it was). */
static cvis_status parse_string(scanner *s, char *buf, size_t cap, int *long_string)
{
    skip_space(s);
    if (s->p >= s->end || (*s->p != '\'' && *s->p != '"'))
        return bad_header("expected a quoted string");
    char q = *s->p++;
    size_t n = 0;
    *long_string = 0;
    while (s->p < s->end && *s->p != q) {
        if (*s->p == '\\')
            return bad_header("escapes in strings are not expected");
        if (n + 1 < cap)
            buf[n++] = *s->p;
        else
            *long_string = 1;
        s->p++;
    }
    if (s->p >= s->end)
        return bad_header("unterminated string");
    s->p++;
    buf[n] = 0;
    return CVIS_OK;
}

static cvis_status parse_descr(scanner *s, cvis__npy_header *h)
{
    if (peek(s, '['))
        return cvis__fail(CVIS_E_UNSUPPORTED,
                          "structured .npy arrays are not supported (weights are float arrays)");
    char d[32];
    int truncated;
    CVIS_TRY(parse_string(s, d, sizeof d, &truncated));
    const char *t = d;
    h->big_endian = !host_little_endian();
    if (*t == '<' || *t == '>') {
        h->big_endian = *t == '>';
        t++;
    } else if (*t == '=') {
        t++;
    }
    if (!truncated && (!strcmp(t, "f2") || !strcmp(t, "f4") || !strcmp(t, "f8"))) {
        h->item_size = t[1] - '0';
        return CVIS_OK;
    }
    return cvis__fail(CVIS_E_UNSUPPORTED,
                      ".npy dtype '%s%s' is not supported: weights must be float16, float32 or "
                      "float64", d, truncated ? "..." : "");
}

static cvis_status parse_shape(scanner *s, cvis__npy_header *h)
{
    if (!accept(s, '('))
        return bad_header("the shape is not a tuple");
    h->ndim = 0;
    int comma = 0;
    while (!accept(s, ')')) {
        skip_space(s);
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            return bad_header("a shape entry is not a non-negative integer");
        int64_t v = 0;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            int digit = *s->p++ - '0';
            if (v > (INT64_MAX - digit) / 10)
                return bad_header("a shape entry is too large");
            v = v * 10 + digit;
        }
        if (s->p < s->end && *s->p == 'L')  /* Python 2 long */
            s->p++;
        if (h->ndim == CVIS_MAX_DIMS)
            return cvis__fail(CVIS_E_UNSUPPORTED, ".npy arrays of more than %d axes are not "
                              "supported", CVIS_MAX_DIMS);
        h->shape[h->ndim++] = v;
        comma = accept(s, ',');
        if (!comma && !peek(s, ')'))
            return bad_header("expected ',' or ')' in the shape");
    }
    if (h->ndim == 1 && !comma)
        return bad_header("the shape is a number in parentheses, not a tuple");
    return CVIS_OK;
}

cvis_status cvis__npy_parse_header(const char *text, size_t len, cvis__npy_header *h)
{
    memset(h, 0, sizeof *h);
    scanner s = {text, text + len};
    enum { DESCR = 1, FORTRAN = 2, SHAPE = 4 };
    int seen = 0;
    if (!accept(&s, '{'))
        return bad_header("it is not a dictionary");
    while (!accept(&s, '}')) {
        char key[32];
        int truncated, which;
        CVIS_TRY(parse_string(&s, key, sizeof key, &truncated));
        if (!accept(&s, ':'))
            return bad_header("expected ':' after a key");
        if (!truncated && !strcmp(key, "descr")) {
            which = DESCR;
            CVIS_TRY(parse_descr(&s, h));
        } else if (!truncated && !strcmp(key, "fortran_order")) {
            which = FORTRAN;
            if (accept_word(&s, "True"))
                h->fortran_order = 1;
            else if (!accept_word(&s, "False"))
                return bad_header("fortran_order is neither True nor False");
        } else if (!truncated && !strcmp(key, "shape")) {
            which = SHAPE;
            CVIS_TRY(parse_shape(&s, h));
        } else {
            return cvis__fail(CVIS_E_FORMAT, "bad .npy header: unexpected key '%s%s'", key,
                              truncated ? "..." : "");
        }
        if (seen & which)
            return cvis__fail(CVIS_E_FORMAT, "bad .npy header: key '%s' appears twice", key);
        seen |= which;
        if (!accept(&s, ',') && !peek(&s, '}'))
            return bad_header("expected ',' or '}' after a value");
    }
    skip_space(&s);
    if (s.p != s.end)
        return bad_header("text after the dictionary");
    if (seen != (DESCR | FORTRAN | SHAPE))
        return bad_header("a key is missing (descr, fortran_order and shape are required)");
    int64_t count = 1, bytes;
    for (int i = 0; i < h->ndim; i++)
        CVIS_TRY(cvis__mul_size(count, h->shape[i], "the .npy shape", &count));
    CVIS_TRY(cvis__mul_size(count, h->item_size, "the .npy data", &bytes));
    h->count = count;
    h->data_bytes = (uint64_t)bytes;
    return CVIS_OK;
}

/* ------------------------------------------------------------------ data */

static float half_to_float(uint32_t h)
{
    uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu, bits;
    if (exp == 0) {  /* zero or subnormal: man * 2^-24, exact in float */
        float f = ldexpf((float)man, -24);
        return sign ? -f : f;
    }
    if (exp == 31)
        bits = sign | 0x7F800000u | man << 13;  /* infinity, NaN (payload kept) */
    else
        bits = sign | (exp + 112) << 23 | man << 13;  /* rebias 15 -> 127 */
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float load_item(const unsigned char *p, int size, int big_endian)
{
    uint64_t bits = 0;
    for (int i = 0; i < size; i++)
        bits |= (uint64_t)p[i] << (8 * (big_endian ? size - 1 - i : i));
    if (size == 2)
        return half_to_float((uint32_t)bits);
    if (size == 4) {
        uint32_t u = (uint32_t)bits;
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    double d;
    memcpy(&d, &bits, sizeof d);
    return (float)d;  /* round to nearest, as numpy's astype(float32) */
}

/* Where the next element read goes in the C-order output: the file's order
 * is C (straight through) or Fortran (first axis fastest). */
typedef struct placer {
    int ndim, fortran;
    int64_t next, idx[CVIS_MAX_DIMS], stride[CVIS_MAX_DIMS];
    const int64_t *shape;
} placer;

static void placer_init(placer *pl, const cvis__npy_header *h)
{
    memset(pl, 0, sizeof *pl);
    pl->ndim = h->ndim;
    pl->fortran = h->fortran_order;
    pl->shape = h->shape;
    int64_t s = 1;
    for (int k = h->ndim - 1; k >= 0; k--) {
        pl->stride[k] = s;
        s *= h->shape[k];
    }
}

static int64_t placer_next(placer *pl)
{
    int64_t at = pl->next;
    if (!pl->fortran) {
        pl->next++;
        return at;
    }
    for (int k = 0; k < pl->ndim; k++) {
        if (++pl->idx[k] < pl->shape[k]) {
            pl->next += pl->stride[k];
            break;
        }
        pl->next -= (pl->shape[k] - 1) * pl->stride[k];
        pl->idx[k] = 0;
    }
    return at;
}

static cvis_status read_data(cvis__npy_read_fn read, void *ctx, const cvis__npy_header *h,
                             cvis_tensor *t)
{
    if (h->item_size == 4 && !h->fortran_order && h->big_endian == !host_little_endian())
        return read(ctx, t->data, (size_t)h->data_bytes);  /* already what a tensor holds */
    size_t chunk = h->data_bytes < CHUNK ? (size_t)h->data_bytes : CHUNK;  /* whole items */
    unsigned char *buf;
    CVIS_TRY(cvis__alloc(chunk, "a .npy read buffer", (void **)&buf));
    placer pl;
    placer_init(&pl, h);
    uint64_t left = h->data_bytes;
    cvis_status st = CVIS_OK;
    while (left && st == CVIS_OK) {
        size_t n = left < chunk ? (size_t)left : chunk;
        st = read(ctx, buf, n);
        for (size_t i = 0; st == CVIS_OK && i < n; i += (size_t)h->item_size)
            t->data[placer_next(&pl)] = load_item(buf + i, h->item_size, h->big_endian);
        left -= n;
    }
    cvis__free(buf);
    return st;
}

cvis_status cvis__npy_read(cvis__npy_read_fn read, void *ctx, uint64_t size, cvis_tensor **out)
{
    unsigned char pre[12];
    if (size < 10)
        return cvis__fail(CVIS_E_FORMAT, "%llu bytes are too few for a .npy array",
                          (unsigned long long)size);
    CVIS_TRY(read(ctx, pre, 8));
    if (memcmp(pre, MAGIC, MAGIC_LEN) != 0)
        return cvis__fail(CVIS_E_FORMAT, "not a .npy array (no \\x93NUMPY magic)");
    int major = pre[6], minor = pre[7];
    if ((major < 1 || major > 3) || minor != 0)
        return cvis__fail(CVIS_E_UNSUPPORTED,
                          ".npy format version %d.%d is not supported (1.0, 2.0 and 3.0 are)",
                          major, minor);
    size_t len_bytes = major == 1 ? 2 : 4, pre_len = 8 + len_bytes;
    if (size < pre_len)
        return cvis__fail(CVIS_E_FORMAT, ".npy array truncated in its header");
    CVIS_TRY(read(ctx, pre + 8, len_bytes));
    uint64_t header_len = major == 1 ? (uint64_t)(pre[8] | pre[9] << 8)
                                     : (uint64_t)pre[8] | (uint64_t)pre[9] << 8 |
                                           (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
    if (header_len > size - pre_len)
        return cvis__fail(CVIS_E_FORMAT, ".npy header of %llu bytes runs past the end (%llu)",
                          (unsigned long long)header_len, (unsigned long long)size);
    if (header_len > CVIS__NPY_MAX_HEADER)
        return cvis__fail(CVIS_E_UNSUPPORTED, ".npy header of %llu bytes is longer than the %d "
                          "accepted", (unsigned long long)header_len, CVIS__NPY_MAX_HEADER);
    char *text;
    CVIS_TRY(cvis__alloc((size_t)header_len + 1, "a .npy header", (void **)&text));
    cvis__npy_header h;
    cvis_status st = read(ctx, text, (size_t)header_len);
    if (st == CVIS_OK)
        st = cvis__npy_parse_header(text, (size_t)header_len, &h);
    cvis__free(text);
    CVIS_TRY(st);
    uint64_t follows = size - pre_len - header_len;
    if (h.data_bytes != follows) {
        char buf[192];
        cvis__shape s = {h.ndim, {0}};
        memcpy(s.d, h.shape, sizeof s.d);
        return cvis__fail(CVIS_E_FORMAT,
                          ".npy array of shape %s needs %llu bytes of data, %llu follow its header",
                          cvis__shape_str(&s, buf, sizeof buf), (unsigned long long)h.data_bytes,
                          (unsigned long long)follows);
    }
    cvis_tensor *t;
    CVIS_TRY(cvis__tensor_new(h.ndim, h.shape, 0, &t));
    st = read_data(read, ctx, &h, t);
    if (st != CVIS_OK) {
        cvis_tensor_free(t);
        return st;
    }
    *out = t;
    return CVIS_OK;
}

typedef struct mem_source {
    const unsigned char *p;
    size_t left;
} mem_source;

static cvis_status mem_read(void *ctx, void *dst, size_t n)
{
    mem_source *m = ctx;
    if (n > m->left)
        return cvis__fail(CVIS_E_FORMAT, ".npy array truncated");
    if (n)
        memcpy(dst, m->p, n);
    m->p += n;
    m->left -= n;
    return CVIS_OK;
}

cvis_status cvis__npy_read_mem(const void *data, size_t size, cvis_tensor **out)
{
    CVIS_CHECK_ARG((data || !size) && out, "data or out is NULL");
    mem_source m = {data, size};
    return cvis__npy_read(mem_read, &m, size, out);
}

/* --------------------------------------------------------------- writing */

cvis_status cvis__npy_write_header(int ndim, const int64_t *shape, unsigned char *buf,
                                   size_t *len)
{
    if (ndim < 0 || ndim > CVIS_MAX_DIMS)
        return cvis__fail(CVIS_E_INVALID_ARG, "a .npy array has 0 to %d axes", CVIS_MAX_DIMS);
    char dict[CVIS__NPY_WRITE_HEADER];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return cvis__fail(CVIS_E_INVALID_ARG, "negative size in a .npy shape");
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%lld", i ? ", " : "",
                      (long long)shape[i]);
    }
    n += snprintf(dict + n, sizeof dict - (size_t)n, ndim == 1 ? ",), }" : "), }");
    size_t used = 10 + (size_t)n + 1;  /* magic, version, length, text, newline */
    size_t total = (used + ALIGN - 1) / ALIGN * ALIGN;
    if (total > CVIS__NPY_WRITE_HEADER)
        return cvis__fail(CVIS_E_INTERNAL, ".npy header too long");
    memcpy(buf, MAGIC "\x01\x00", 8);
    buf[8] = (unsigned char)((total - 10) & 0xFF);
    buf[9] = (unsigned char)((total - 10) >> 8);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', total - used);
    buf[total - 1] = '\n';
    *len = total;
    return CVIS_OK;
}

void cvis__npy_encode_f32(const float *x, size_t n, unsigned char *out)
{
    if (host_little_endian()) {
        memcpy(out, x, n * sizeof *x);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        for (int b = 0; b < 4; b++)
            out[4 * i + (size_t)b] = (unsigned char)(u >> (8 * b));
    }
}

/* ------------------------------------------------------------ public API */

CVIS_API cvis_status cvis_tensor_save_npy(const cvis_tensor *t, const char *path)
{
    CVIS_CHECK_ARG(t && path, "tensor or path is NULL");
    unsigned char head[CVIS__NPY_WRITE_HEADER];
    size_t head_len;
    CVIS_TRY(cvis__npy_write_header(t->ndim, t->shape, head, &head_len));
    unsigned char *bytes;
    CVIS_TRY(cvis__alloc((size_t)t->size * 4 + 1, "npy data", (void **)&bytes));
    cvis__npy_encode_f32(t->data, (size_t)t->size, bytes);
    cvis__file_out o;
    cvis_status st = cvis__file_out_open(path, &o);
    if (st == CVIS_OK) {
        if (fwrite(head, 1, head_len, o.f) != head_len ||
            fwrite(bytes, 1, (size_t)t->size * 4, o.f) != (size_t)t->size * 4) {
            cvis__file_out_abort(&o);
            st = cvis__fail(CVIS_E_IO, "cannot write %s", path);
        } else {
            st = cvis__file_out_commit(&o);
        }
    }
    cvis__free(bytes);
    return st;
}

CVIS_API cvis_status cvis_tensor_load_npy(const char *path, cvis_tensor **out)
{
    CVIS_CHECK_ARG(path && out, "path or out is NULL");
    void *data;
    size_t size;
    CVIS_TRY(cvis__file_read(path, &data, &size));
    cvis_status st = cvis__npy_read_mem(data, size, out);
    cvis__free(data);
    if (st != CVIS_OK)
        return cvis__wrap_error(st, "%s", path);
    return CVIS_OK;
}
