/* The stb implementations compiled into libcvis.  Configuration:
 * - static linkage (nothing exported, no clash with an application's stb);
 * - only the formats libcvis reads; no stdio, no HDR, no float output;
 * - allocations through core/alloc.h, so the allocation limit and the test
 *   failure hook apply inside the decoders too;
 * - asserts compiled out: the library never aborts;
 * - no stb global setting is ever changed (flip flags, PNG compression
 *   level), so concurrent calls are safe.  stb_image keeps its failure
 *   reason in a thread-local variable. */
#include "stb_codec.h"

#include <limits.h>
#include <string.h>
#include <zlib.h>

#include "core/alloc.h"
#include "core/error.h"

/* Why the last stb allocation on this thread was refused (0: it was not). */
enum { REFUSED_NONE = 0, REFUSED_LIMIT = 1, REFUSED_NOMEM = 2 };
static _Thread_local int stb_refused;

/* Zero-filled: on damaged input stb can read memory it never wrote (a
 * progressive JPEG whose scan names a Huffman table that no DHT segment
 * defined).  Zeroed, such reads decode the same every time instead of
 * copying whatever the heap held into the pixels. */
static void *stb_malloc(size_t n)
{
    if (cvis__check_limit(n, "image buffer") != CVIS_OK) {
        stb_refused = REFUSED_LIMIT;
        return NULL;
    }
    void *p = cvis__calloc(1, n);
    if (!p)
        stb_refused = REFUSED_NOMEM;
    return p;
}

static void *stb_realloc(void *p, size_t n)
{
    void *q = NULL;
    cvis_status st = cvis__realloc(p, n, "image buffer", &q);
    if (st != CVIS_OK) {
        stb_refused = st == CVIS_E_LIMIT ? REFUSED_LIMIT : REFUSED_NOMEM;
        return NULL;
    }
    return q;
}

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_TGA
#define STBI_ONLY_GIF
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MAX_DIMENSIONS CVIS__IMAGE_MAX_SIDE
#define STBI_ASSERT(x) ((void)0)
#define STBI_MALLOC(n) stb_malloc(n)
#define STBI_REALLOC(p, n) stb_realloc(p, n)
#define STBI_FREE(p) cvis__free(p)

#define STB_IMAGE_RESIZE_STATIC
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#define STBIR_ASSERT(x) ((void)0)
#define STBIR_MALLOC(n, ctx) ((void)(ctx), stb_malloc(n))
#define STBIR_FREE(p, ctx) ((void)(ctx), cvis__free(p))

static unsigned char *zlib_compress(unsigned char *data, int len, int *out_len, int quality);

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#define STBIW_ASSERT(x) ((void)0)
#define STBIW_MALLOC(n) stb_malloc(n)
#define STBIW_REALLOC(p, n) stb_realloc(p, n)
#define STBIW_FREE(p) cvis__free(p)
#define STBIW_ZLIB_COMPRESS zlib_compress

/* stb copies zero bytes from or to a NULL pointer in places (an empty PNG
 * data chunk): harmless, but undefined behaviour that the sanitizers
 * rightly stop on.  Inside the stb code, a zero-length copy does nothing. */
static void *stb_memcpy(void *dst, const void *src, size_t n)
{
    return n ? memcpy(dst, src, n) : dst;
}

static void *stb_memset(void *dst, int c, size_t n)
{
    return n ? memset(dst, c, n) : dst;
}

#define memcpy stb_memcpy
#define memset stb_memset

#if defined(__GNUC__)
/* File-wide: stb declares static functions this file does not use, and the
 * compiler reports those at the end of the file. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb_image.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#undef memcpy
#undef memset

/* zlib's own allocations, routed like the rest. */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    if ((uint64_t)items * size > SIZE_MAX)
        return Z_NULL;
    return stb_malloc((size_t)items * size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    cvis__free(p);
}

/* Deflate with zlib for PNG output: smaller files than stb's own
 * compressor.  The result is freed by stb with STBIW_FREE. */
static unsigned char *zlib_compress(unsigned char *data, int len, int *out_len, int quality)
{
    (void)quality;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = z_alloc;
    zs.zfree = z_free;
    if (deflateInit(&zs, 6) != Z_OK)
        return NULL;
    uLong bound = deflateBound(&zs, (uLong)len);
    unsigned char *out = bound <= INT_MAX ? stb_malloc(bound) : NULL;
    if (!out) {
        deflateEnd(&zs);
        return NULL;
    }
    zs.next_in = data;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)bound;
    int rc = deflate(&zs, Z_FINISH);
    *out_len = (int)zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        cvis__free(out);
        return NULL;
    }
    return out;
}

/* Working memory that a decoder may need per pixel, beyond nothing: the
 * GIF decoder holds three frame-sized buffers (9 bytes/pixel) besides the
 * output; the others need less.  Used to refuse a hostile header early. */
#define DECODE_BYTES_PER_PIXEL 16

static cvis_status refused_status(const char *doing)
{
    if (stb_refused == REFUSED_LIMIT)
        return cvis__fail(CVIS_E_LIMIT, "%s: needs more memory than the allocation limit allows",
                          doing);
    return cvis__fail(CVIS_E_NOMEM, "%s: out of memory", doing);
}

/* The stb_image in use (2.27) trusts the code counts of a JPEG Huffman
 * table: counts that add up past 256 write beyond its tables (later stb
 * versions check this).  So every table that stb could read is checked
 * here first.  Bytes past the end read as 0, as stb reads them. */
#define BYTE_AT(d, len, i) ((i) < (len) ? (d)[i] : 0)

static int jpeg_dht_ok(const uint8_t *d, size_t len, size_t pos)
{
    long left = (long)(BYTE_AT(d, len, pos) << 8 | BYTE_AT(d, len, pos + 1)) - 2;
    pos += 2;
    while (left > 0 && pos < len) {
        int q = BYTE_AT(d, len, pos);
        if ((q >> 4) > 1 || (q & 15) > 3)
            return 1; /* stb refuses this table itself */
        int n = 0;
        for (size_t i = 1; i <= 16; i++)
            n += BYTE_AT(d, len, pos + i);
        if (n > 256)
            return 0;
        pos += 17 + (size_t)n;
        left -= 17 + n;
    }
    return 1;
}

/* Where a JPEG's segments begin (after its start-of-image marker), or 0 if
 * stb would not take the data for a JPEG: stb reads any run of 0xFF fill
 * bytes before the D8, so FF FF D8 starts a JPEG too (found by fuzz_image). */
static size_t jpeg_start(const uint8_t *d, size_t len)
{
    if (len < 2 || d[0] != 0xFF)
        return 0;
    size_t i = 1;
    while (i < len && d[i] == 0xFF)
        i++;
    return i < len && d[i] == 0xD8 ? i + 1 : 0;
}

static int jpeg_tables_ok(const uint8_t *d, size_t len, size_t i)
{
    /* Up to the frame header stb reads segment after segment: application
     * and comment payloads are skipped by their length, as stb skips them,
     * so that their bytes are not mistaken for tables. */
    while (i + 1 < len) {
        if (d[i] != 0xFF || d[i + 1] == 0xFF) {
            i++; /* stb steps over stray and fill bytes one at a time */
            continue;
        }
        uint8_t m = d[i + 1];
        if (m >= 0xC0 && m <= 0xC2)
            break; /* the frame header: from here on, see below */
        if (m == 0xC4 && !jpeg_dht_ok(d, len, i + 2))
            return 0;
        if (!((m >= 0xE0 && m <= 0xEF) || m == 0xFE || m == 0xC4 || m == 0xDB || m == 0xDD))
            return 1; /* stb stops at any other marker */
        i += 2 + (size_t)(BYTE_AT(d, len, i + 2) << 8 | BYTE_AT(d, len, i + 3));
    }
    /* After it, stb may take any 0xFF 0xC4 in the scan data for a table. */
    for (; i + 1 < len; i++)
        if (d[i] == 0xFF && d[i + 1] == 0xC4 && !jpeg_dht_ok(d, len, i + 2))
            return 0;
    return 1;
}

/* Reads the size an image declares without decoding it.  Each format is
 * recognised by its own signature test first, so that the reason for a
 * refusal (a damaged header, a size too large) is that format's reason.
 * TGA has no signature and is tried last, as stb_image does. */
static int probe_header(const uint8_t *data, int len, int *w, int *h, int *comp,
                        const char **format, const char **why)
{
    stbi__context s;
    stbi__start_mem(&s, data, len);
    stbi__g_failure_reason = NULL; /* no stale reason from an earlier call */
    int ok = 0;
    *format = NULL;
    if (stbi__png_test(&s)) {
        *format = "PNG";
        ok = stbi__png_info(&s, w, h, comp);
    } else if (stbi__jpeg_test(&s)) {
        *format = "JPEG";
        ok = stbi__jpeg_info(&s, w, h, comp);
    } else if (stbi__gif_test(&s)) {
        *format = "GIF";
        ok = stbi__gif_info(&s, w, h, comp);
    } else if (stbi__bmp_test(&s)) {
        *format = "BMP";
        ok = stbi__bmp_info(&s, w, h, comp);
    } else if (stbi__tga_test(&s)) {
        *format = "TGA";
        ok = stbi__tga_info(&s, w, h, comp);
    }
    *why = ok ? NULL : stbi_failure_reason();
    return ok;
}

/* stb points into its buffer of PNG data before it has one when the first
 * IDAT chunk is empty (NULL + 0: undefined behaviour, which UBSan stops
 * on; found by fuzz_image).  An empty IDAT chunk carries nothing, so the
 * empty ones before the first with data are left out of a copy that
 * decodes to the same image.  *copy stays NULL when there are none. */
static cvis_status png_without_leading_empty_idat(const uint8_t *d, size_t len, uint8_t **copy,
                                                  size_t *copy_len)
{
    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    *copy = NULL;
    if (len < 8 || memcmp(d, signature, 8) != 0)
        return CVIS_OK;
    size_t drop = 0, end = 8; /* bytes to leave out; where the scan stopped */
    for (size_t pos = 8; pos + 12 <= len;) {
        uint64_t n = (uint64_t)d[pos] << 24 | (uint64_t)d[pos + 1] << 16 |
                     (uint64_t)d[pos + 2] << 8 | d[pos + 3];
        int idat = memcmp(d + pos + 4, "IDAT", 4) == 0;
        if (n > len - pos - 12 || (idat && n > 0) || memcmp(d + pos + 4, "IEND", 4) == 0)
            break;
        drop += idat && pos > 8 ? 12 : 0; /* a first chunk that is not IHDR stays refused */
        pos += 12 + (size_t)n;
        end = pos;
    }
    if (drop == 0)
        return CVIS_OK;
    uint8_t *out = NULL;
    CVIS_TRY(cvis__alloc(len - drop, "PNG data", (void **)&out));
    size_t at = 8;
    memcpy(out, d, 8);
    for (size_t pos = 8; pos < end;) {
        size_t n = (size_t)d[pos] << 24 | (size_t)d[pos + 1] << 16 | (size_t)d[pos + 2] << 8 |
                   d[pos + 3];
        if (pos == 8 || memcmp(d + pos + 4, "IDAT", 4) != 0) {
            memcpy(out + at, d + pos, 12 + n);
            at += 12 + n;
        }
        pos += 12 + n;
    }
    memcpy(out + at, d + end, len - end);
    *copy = out;
    *copy_len = len - drop;
    return CVIS_OK;
}

cvis_status cvis__stb_decode(const uint8_t *data, size_t len, int channels, int *width,
                             int *height, uint8_t **pixels)
{
    if (len == 0)
        return cvis__fail(CVIS_E_FORMAT, "empty image data (0 bytes)");
    if (len > INT_MAX)
        return cvis__fail(CVIS_E_LIMIT, "image data of %zu bytes is too large to decode", len);
    size_t jpeg = jpeg_start(data, len);
    if (jpeg && !jpeg_tables_ok(data, len, jpeg))
        return cvis__fail(CVIS_E_FORMAT,
                          "damaged JPEG: a Huffman table declares more than 256 codes");
    int w = 0, h = 0, comp = 0;
    const char *format = NULL, *why = NULL;
    if (!probe_header(data, (int)len, &w, &h, &comp, &format, &why)) {
        if (!format)
            return cvis__fail(CVIS_E_FORMAT, "not a JPEG, PNG, BMP, TGA or GIF image");
        if (why && strcmp(why, "too large") == 0)
            return cvis__fail(CVIS_E_LIMIT, "%s header declares more than %d pixels per side",
                              format, CVIS__IMAGE_MAX_SIDE);
        return cvis__fail(CVIS_E_FORMAT, "damaged %s header (%s)", format,
                          why && *why ? why : "unreadable");
    }
    if (w <= 0 || h <= 0)
        return cvis__fail(CVIS_E_FORMAT, "image header declares an empty image (%d x %d)", w, h);
    if (w > CVIS__IMAGE_MAX_SIDE || h > CVIS__IMAGE_MAX_SIDE)
        return cvis__fail(CVIS_E_LIMIT, "image of %d x %d pixels: more than %d pixels per side", w,
                          h, CVIS__IMAGE_MAX_SIDE);
    uint64_t need = (uint64_t)w * (uint64_t)h * DECODE_BYTES_PER_PIXEL;
    if (cvis__check_limit(need, "decoding") != CVIS_OK)
        return cvis__fail(CVIS_E_LIMIT,
                          "image of %d x %d pixels: decoding it needs up to %llu bytes, more "
                          "than the allocation limit of %llu",
                          w, h, (unsigned long long)need,
                          (unsigned long long)cvis_get_alloc_limit());

    stb_refused = REFUSED_NONE;
    stbi__g_failure_reason = NULL;
    int w2 = 0, h2 = 0, comp2 = 0;
    uint8_t *png = NULL;
    size_t png_len = 0;
    CVIS_TRY(png_without_leading_empty_idat(data, len, &png, &png_len));
    uint8_t *p = png ? stbi_load_from_memory(png, (int)png_len, &w2, &h2, &comp2, channels)
                     : stbi_load_from_memory(data, (int)len, &w2, &h2, &comp2, channels);
    cvis__free(png);
    if (!p) {
        if (stb_refused != REFUSED_NONE)
            return refused_status("decoding image");
        why = stbi_failure_reason();
        return cvis__fail(CVIS_E_FORMAT, "%s image data is corrupt or truncated (%s)", format,
                          why && *why ? why : "decoder failed");
    }
    if (w2 != w || h2 != h) {
        /* The size decoded is the one we checked, or we do not trust it. */
        cvis__free(p);
        return cvis__fail(CVIS_E_FORMAT, "image header says %d x %d but decodes as %d x %d", w, h,
                          w2, h2);
    }
    *width = w;
    *height = h;
    *pixels = p;
    return CVIS_OK;
}

cvis_status cvis__stb_resize(const uint8_t *in, int iw, int ih, uint8_t *out, int ow, int oh,
                             int channels, int smooth)
{
    stb_refused = REFUSED_NONE;
    int ok = stbir_resize_uint8_generic(in, iw, ih, 0, out, ow, oh, 0, channels,
                                        STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP,
                                        smooth ? STBIR_FILTER_DEFAULT : STBIR_FILTER_TRIANGLE,
                                        STBIR_COLORSPACE_LINEAR, NULL);
    if (!ok) {
        if (stb_refused != REFUSED_NONE)
            return refused_status("resizing image");
        return cvis__fail(CVIS_E_INTERNAL, "resizing %d x %d to %d x %d failed", iw, ih, ow, oh);
    }
    return CVIS_OK;
}

typedef struct png_sink {
    cvis__buf *out;
    cvis_status status;
} png_sink;

static void png_write(void *context, void *data, int size)
{
    png_sink *s = context;
    if (s->status == CVIS_OK && size > 0)
        s->status = cvis__buf_append(s->out, data, (size_t)size);
}

cvis_status cvis__stb_png_encode(const uint8_t *pixels, int width, int height, int channels,
                                 cvis__buf *out)
{
    if (width <= 0 || height <= 0 || channels < 1 || channels > 4)
        return cvis__fail(CVIS_E_INVALID_ARG, "PNG of %d x %d x %d: nothing to encode", width,
                          height, channels);
    if ((int64_t)width * channels > INT_MAX / 2)
        return cvis__fail(CVIS_E_LIMIT, "PNG rows of %d pixels are too wide", width);
    png_sink sink = {out, CVIS_OK};
    stb_refused = REFUSED_NONE;
    size_t before = out->len;
    int ok = stbi_write_png_to_func(png_write, &sink, width, height, channels, pixels,
                                    width * channels);
    if (sink.status != CVIS_OK || !ok) {
        out->len = before;
        if (sink.status != CVIS_OK)
            return sink.status;
        if (stb_refused != REFUSED_NONE)
            return refused_status("encoding PNG");
        return cvis__fail(CVIS_E_INTERNAL, "PNG encoding failed");
    }
    return CVIS_OK;
}
