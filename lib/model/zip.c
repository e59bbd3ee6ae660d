/* ZIP reading (from memory) and writing (to a FILE or to memory).  Record
 * layouts follow the PKWARE application note.  Every length or offset read
 * from an archive is checked against the buffer before it is used. */
#include "zip.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_END 0x06054b50u
#define SIG_END64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define LOCAL_SIZE 30
#define CENTRAL_SIZE 46
#define END_SIZE 22
#define END64_SIZE 56
#define LOCATOR64_SIZE 20
#define MAX_COMMENT 0xFFFFu
#define EXTRA_ZIP64 0x0001u
#define FLAG_ENCRYPTED 0x0001u
#define FLAG_DESCRIPTOR 0x0008u
#define FLAG_STRONG_ENCRYPTION 0x0040u
#define FLAG_UTF8 0x0800u
#define SAT16 0xFFFFu
#define SAT32 0xFFFFFFFFu
#define VERSION_DEFLATE 20
#define VERSION_ZIP64 45
#define DOS_DATE_1980 0x0021u  /* 1980-01-01: fixed, so that equal weights give equal files */

/* zlib counts bytes in uInt: hand it at most this much at a time. */
#define ZCHUNK ((uInt)1 << 30)
#define WRITE_BUFFER (64 * 1024)
#define DEFLATE_LEVEL 6

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p)
{
    return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* zlib's own allocations go through libcvis's allocator too. */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    if (size && items > SIZE_MAX / size)
        return Z_NULL;
    return cvis__malloc((size_t)items * size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    cvis__free(p);
}

static uLong crc_update(uLong crc, const unsigned char *p, size_t n)
{
    return crc32_z(crc, p, n);
}

/* ================================================================ reading */

typedef struct directory {
    uint64_t n, offset, size;
} directory;

/* Finds the end-of-central-directory record (and its ZIP64 form, when a
 * locator precedes it) and checks that the directory lies inside the file. */
static cvis_status find_directory(const unsigned char *d, uint64_t size, directory *dir)
{
    if (size < END_SIZE)
        return cvis__fail(CVIS_E_FORMAT, "not a ZIP archive: %llu bytes is too short",
                          (unsigned long long)size);
    uint64_t lowest = size - END_SIZE > MAX_COMMENT ? size - END_SIZE - MAX_COMMENT : 0;
    uint64_t pos = size - END_SIZE + 1;
    int found = 0;
    while (pos-- > lowest) {
        if (rd32(d + pos) == SIG_END && pos + END_SIZE + rd16(d + pos + 20) <= size) {
            found = 1;
            break;
        }
    }
    if (!found)
        return cvis__fail(CVIS_E_FORMAT,
                          "not a ZIP archive: no end of central directory record");
    const unsigned char *e = d + pos;
    uint64_t disk = rd16(e + 4), cd_disk = rd16(e + 6), n_disk = rd16(e + 8);
    dir->n = rd16(e + 10);
    dir->size = rd32(e + 12);
    dir->offset = rd32(e + 16);
    uint64_t limit = pos;  /* the directory must end before this */
    if (pos >= LOCATOR64_SIZE && rd32(e - LOCATOR64_SIZE) == SIG_LOCATOR64) {
        const unsigned char *loc = e - LOCATOR64_SIZE;
        uint64_t loc_pos = pos - LOCATOR64_SIZE, rec_pos = rd64(loc + 8);
        if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1)
            return cvis__fail(CVIS_E_UNSUPPORTED, "multi-disk ZIP archives are not supported");
        if (loc_pos < END64_SIZE || rec_pos > loc_pos - END64_SIZE)
            return cvis__fail(CVIS_E_FORMAT,
                              "the ZIP64 end of central directory lies outside the file");
        const unsigned char *r = d + rec_pos;
        uint64_t rec_size = rd64(r + 4);
        if (rd32(r) != SIG_END64 || rec_size < END64_SIZE - 12 ||
            rec_size > loc_pos - rec_pos - 12)
            return cvis__fail(CVIS_E_FORMAT, "corrupt ZIP64 end of central directory record");
        disk = rd32(r + 16);
        cd_disk = rd32(r + 20);
        n_disk = rd64(r + 24);
        dir->n = rd64(r + 32);
        dir->size = rd64(r + 40);
        dir->offset = rd64(r + 48);
        limit = rec_pos;
    }
    if (disk != 0 || cd_disk != 0 || n_disk != dir->n)
        return cvis__fail(CVIS_E_UNSUPPORTED, "multi-disk ZIP archives are not supported");
    if (dir->offset > limit || dir->size > limit - dir->offset)
        return cvis__fail(CVIS_E_FORMAT,
                          "the central directory (%llu bytes at %llu) lies outside the file",
                          (unsigned long long)dir->size, (unsigned long long)dir->offset);
    if (dir->n > dir->size / CENTRAL_SIZE)
        return cvis__fail(CVIS_E_FORMAT,
                          "%llu entries cannot fit in a central directory of %llu bytes",
                          (unsigned long long)dir->n, (unsigned long long)dir->size);
    return CVIS_OK;
}

/* Finds the ZIP64 field among the extra fields p[0..n).  A tail too short
 * for a field header is tolerated (some tools pad with zeros). */
static cvis_status find_zip64(const unsigned char *p, size_t n, const char *name,
                              const unsigned char **z, size_t *zn)
{
    *z = NULL;
    *zn = 0;
    size_t i = 0;
    while (n - i >= 4) {
        size_t id = rd16(p + i), len = rd16(p + i + 2);
        if (len > n - i - 4)
            return cvis__fail(CVIS_E_FORMAT, "member \"%s\": an extra field runs past its end",
                              name);
        if (id == EXTRA_ZIP64 && !*z) {
            *z = p + i + 4;
            *zn = len;
        }
        i += 4 + len;
    }
    return CVIS_OK;
}

/* Reads the next value of a ZIP64 field (for a header field that is saturated). */
static cvis_status zip64_next(const unsigned char *z, size_t zn, size_t *used, int width,
                              const char *name, uint64_t *v)
{
    if (!z || zn - *used < (size_t)width)
        return cvis__fail(CVIS_E_FORMAT, "member \"%s\": a ZIP64 value is missing", name);
    *v = width == 8 ? rd64(z + *used) : rd32(z + *used);
    *used += (size_t)width;
    return CVIS_OK;
}

/* Checks entry e against its local header; sets its data offset. */
static cvis_status check_local(const unsigned char *d, uint64_t data_limit, uint16_t flags,
                               cvis__zip_entry *e)
{
    const char *nm = e->name;
    size_t name_len = strlen(nm);
    if (e->header_offset > data_limit || data_limit - e->header_offset < LOCAL_SIZE)
        return cvis__fail(CVIS_E_FORMAT, "member \"%s\": local header lies outside the file", nm);
    const unsigned char *h = d + e->header_offset;
    size_t ln = rd16(h + 26), le = rd16(h + 28);
    if (rd32(h) != SIG_LOCAL)
        return cvis__fail(CVIS_E_FORMAT, "member \"%s\": bad local header signature", nm);
    if (data_limit - e->header_offset - LOCAL_SIZE < ln + le)
        return cvis__fail(CVIS_E_FORMAT, "member \"%s\": local header runs past the data", nm);
    if (ln != name_len || memcmp(h + LOCAL_SIZE, nm, ln) != 0)
        return cvis__fail(CVIS_E_FORMAT,
                          "member \"%s\": its local header carries another name", nm);
    if (rd16(h + 8) != e->method)
        return cvis__fail(CVIS_E_FORMAT,
                          "member \"%s\": local header and directory disagree on the method", nm);
    const unsigned char *z;
    size_t zn, used = 0;
    CVIS_TRY(find_zip64(h + LOCAL_SIZE + ln, le, nm, &z, &zn));
    e->data_offset = e->header_offset + LOCAL_SIZE + ln + le;
    if (e->comp_size > data_limit - e->data_offset)
        return cvis__fail(CVIS_E_FORMAT,
                          "member \"%s\": %llu bytes of data run past the end of the data area",
                          nm, (unsigned long long)e->comp_size);
    if (flags & FLAG_DESCRIPTOR)
        return CVIS_OK;  /* sizes and CRC follow the data; the directory has them */
    uint64_t size = rd32(h + 22), comp = rd32(h + 18);
    if (size == SAT32)
        CVIS_TRY(zip64_next(z, zn, &used, 8, nm, &size));
    if (comp == SAT32)
        CVIS_TRY(zip64_next(z, zn, &used, 8, nm, &comp));
    if (rd32(h + 14) != e->crc || size != e->size || comp != e->comp_size)
        return cvis__fail(CVIS_E_FORMAT,
                          "member \"%s\": local header and directory disagree on CRC or sizes",
                          nm);
    return CVIS_OK;
}

/* Parses the central directory entry at *pos (advancing it) into e. */
static cvis_status parse_entry(const unsigned char *d, const directory *dir, uint64_t *pos,
                               cvis__zip_entry *e)
{
    uint64_t end = dir->offset + dir->size;
    if (end - *pos < CENTRAL_SIZE || rd32(d + *pos) != SIG_CENTRAL)
        return cvis__fail(CVIS_E_FORMAT, "corrupt central directory entry at offset %llu",
                          (unsigned long long)*pos);
    const unsigned char *c = d + *pos;
    uint16_t flags = rd16(c + 8);
    size_t nl = rd16(c + 28), el = rd16(c + 30), cl = rd16(c + 32);
    if (end - *pos - CENTRAL_SIZE < (uint64_t)nl + el + cl)
        return cvis__fail(CVIS_E_FORMAT, "central directory entry at offset %llu runs past "
                          "the directory", (unsigned long long)*pos);
    if (memchr(c + CENTRAL_SIZE, 0, nl))
        return cvis__fail(CVIS_E_FORMAT, "a member name contains a NUL byte");
    e->name = cvis__malloc(nl + 1);
    if (!e->name)
        return cvis__fail(CVIS_E_NOMEM, "out of memory reading a ZIP directory");
    memcpy(e->name, c + CENTRAL_SIZE, nl);
    e->name[nl] = 0;
    *pos += CENTRAL_SIZE + nl + el + cl;

    const char *nm = e->name;
    e->method = rd16(c + 10);
    e->crc = rd32(c + 16);
    e->comp_size = rd32(c + 20);
    e->size = rd32(c + 24);
    e->header_offset = rd32(c + 42);
    uint64_t disk = rd16(c + 34);
    const unsigned char *z;
    size_t zn, used = 0;
    CVIS_TRY(find_zip64(c + CENTRAL_SIZE + nl, el, nm, &z, &zn));
    /* ZIP64 values appear in this order, only for the saturated fields. */
    if (e->size == SAT32)
        CVIS_TRY(zip64_next(z, zn, &used, 8, nm, &e->size));
    if (e->comp_size == SAT32)
        CVIS_TRY(zip64_next(z, zn, &used, 8, nm, &e->comp_size));
    if (e->header_offset == SAT32)
        CVIS_TRY(zip64_next(z, zn, &used, 8, nm, &e->header_offset));
    if (disk == SAT16)
        CVIS_TRY(zip64_next(z, zn, &used, 4, nm, &disk));
    if (disk != 0)
        return cvis__fail(CVIS_E_UNSUPPORTED, "multi-disk ZIP archives are not supported");
    if (flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION))
        return cvis__fail(CVIS_E_UNSUPPORTED, "member \"%s\" is encrypted", nm);
    if (e->method != CVIS__ZIP_STORED && e->method != CVIS__ZIP_DEFLATED)
        return cvis__fail(CVIS_E_UNSUPPORTED,
                          "member \"%s\" uses compression method %d (only stored and deflated "
                          "members are read)", nm, e->method);
    if (e->method == CVIS__ZIP_STORED && e->comp_size != e->size)
        return cvis__fail(CVIS_E_FORMAT, "stored member \"%s\" declares %llu bytes but holds %llu",
                          nm, (unsigned long long)e->size, (unsigned long long)e->comp_size);
    if (e->method == CVIS__ZIP_DEFLATED && e->size / CVIS__ZIP_MAX_RATIO > e->comp_size)
        return cvis__fail(CVIS_E_FORMAT,
                          "member \"%s\" declares %llu bytes from %llu compressed bytes, more "
                          "than deflate can expand", nm, (unsigned long long)e->size,
                          (unsigned long long)e->comp_size);
    /* Member data lies between the start of the file and the directory. */
    return check_local(d, dir->offset, flags, e);
}

static int by_offset(const void *a, const void *b)
{
    const cvis__zip_entry *x = *(const cvis__zip_entry *const *)a;
    const cvis__zip_entry *y = *(const cvis__zip_entry *const *)b;
    return x->header_offset < y->header_offset ? -1 : x->header_offset > y->header_offset;
}

/* Refuses archives whose members overlap: one stretch of compressed data
 * shared by many entries would multiply what it inflates to. */
static cvis_status check_overlap(const cvis__zip_archive *a)
{
    if (a->n < 2)
        return CVIS_OK;
    const cvis__zip_entry **order = cvis__calloc((size_t)a->n, sizeof *order);
    if (!order)
        return cvis__fail(CVIS_E_NOMEM, "out of memory reading a ZIP directory");
    for (int64_t i = 0; i < a->n; i++)
        order[i] = &a->entries[i];
    qsort(order, (size_t)a->n, sizeof *order, by_offset);
    cvis_status st = CVIS_OK;
    for (int64_t i = 0; i + 1 < a->n && st == CVIS_OK; i++)
        if (order[i]->data_offset + order[i]->comp_size > order[i + 1]->header_offset)
            st = cvis__fail(CVIS_E_FORMAT, "members \"%s\" and \"%s\" overlap", order[i]->name,
                            order[i + 1]->name);
    cvis__free(order);
    return st;
}

cvis_status cvis__zip_open(const void *data, size_t size, cvis__zip_archive *out)
{
    CVIS_CHECK_ARG(out && (data || !size), "data or out is NULL");
    const unsigned char *d = data;
    directory dir = {0, 0, 0};
    CVIS_TRY(find_directory(d, size, &dir));
    cvis__zip_archive a = {d, size, NULL, 0};
    if (dir.n) {
        /* n <= directory size / 46, so this is bounded by the file size. */
        a.entries = cvis__calloc((size_t)dir.n, sizeof *a.entries);
        if (!a.entries)
            return cvis__fail(CVIS_E_NOMEM, "out of memory reading a ZIP directory");
    }
    uint64_t pos = dir.offset;
    cvis_status st = CVIS_OK;
    for (uint64_t i = 0; i < dir.n && st == CVIS_OK; i++) {
        st = parse_entry(d, &dir, &pos, &a.entries[i]);
        a.n = (int64_t)i + 1;  /* so that close frees a partly filled entry */
    }
    if (st == CVIS_OK && pos != dir.offset + dir.size)
        st = cvis__fail(CVIS_E_FORMAT, "the central directory holds %llu bytes more than its "
                        "entries", (unsigned long long)(dir.offset + dir.size - pos));
    if (st == CVIS_OK)
        st = check_overlap(&a);
    if (st != CVIS_OK) {
        cvis__zip_close(&a);
        return st;
    }
    *out = a;
    return CVIS_OK;
}

void cvis__zip_close(cvis__zip_archive *a)
{
    if (!a)
        return;
    for (int64_t i = 0; i < a->n; i++)
        cvis__free(a->entries[i].name);
    cvis__free(a->entries);
    memset(a, 0, sizeof *a);
}

cvis_status cvis__zip_member_open(const cvis__zip_archive *a, int64_t i, cvis__zip_member *r)
{
    memset(r, 0, sizeof *r);
    CVIS_CHECK_ARG(a && i >= 0 && i < a->n, "no such member");
    const cvis__zip_entry *e = &a->entries[i];
    r->e = e;
    r->src = a->data + e->data_offset;
    r->src_left = e->comp_size;
    r->out_left = e->size;
    r->crc = (uint32_t)crc32_z(0, Z_NULL, 0);
    if (e->method == CVIS__ZIP_DEFLATED) {
        r->z.zalloc = z_alloc;
        r->z.zfree = z_free;
        int zr = inflateInit2(&r->z, -MAX_WBITS);  /* raw deflate: ZIP has no zlib header */
        if (zr != Z_OK)
            return cvis__fail(zr == Z_MEM_ERROR ? CVIS_E_NOMEM : CVIS_E_INTERNAL,
                              "cannot start inflating");
        r->inflating = 1;
    }
    return CVIS_OK;
}

/* Hands zlib the next stretch of input when it has used up the last one. */
static void feed(cvis__zip_member *r)
{
    if (r->z.avail_in == 0 && r->src_left) {
        uInt n = r->src_left > ZCHUNK ? ZCHUNK : (uInt)r->src_left;
        r->z.next_in = (Bytef *)r->src;
        r->z.avail_in = n;
        r->src += n;
        r->src_left -= n;
    }
}

/* One inflate step into dst[0..n); sets *produced. */
static cvis_status inflate_step(cvis__zip_member *r, unsigned char *dst, size_t n,
                                size_t *produced)
{
    uInt room = n > ZCHUNK ? ZCHUNK : (uInt)n;
    feed(r);
    r->z.next_out = dst;
    r->z.avail_out = room;
    int zr = inflate(&r->z, Z_NO_FLUSH);
    *produced = room - r->z.avail_out;
    switch (zr) {
    case Z_OK:
        return CVIS_OK;
    case Z_STREAM_END:
        r->ended = 1;
        return CVIS_OK;
    case Z_BUF_ERROR:  /* no progress possible: the input ran out */
        if (r->z.avail_in == 0 && r->src_left == 0)
            return cvis__fail(CVIS_E_FORMAT, "the deflate stream is truncated");
        return cvis__fail(CVIS_E_INTERNAL, "inflate made no progress");
    case Z_MEM_ERROR:
        return cvis__fail(CVIS_E_NOMEM, "out of memory inflating");
    default:
        return cvis__fail(CVIS_E_FORMAT, "corrupt deflate data (%s)",
                          r->z.msg ? r->z.msg : "inflate failed");
    }
}

cvis_status cvis__zip_member_read(cvis__zip_member *r, void *dst, size_t n)
{
    if (n > r->out_left)
        return cvis__fail(CVIS_E_FORMAT, "the member ends %llu bytes short",
                          (unsigned long long)(n - r->out_left));
    unsigned char *out = dst;
    if (!r->inflating) {
        if (n)
            memcpy(out, r->src, n);
        r->src += n;
        r->src_left -= n;
    } else {
        size_t left = n;
        while (left) {
            if (r->ended)
                return cvis__fail(CVIS_E_FORMAT,
                                  "the deflate stream ends before the %llu bytes declared",
                                  (unsigned long long)r->e->size);
            size_t got;
            CVIS_TRY(inflate_step(r, out + (n - left), left, &got));
            left -= got;
        }
    }
    r->crc = (uint32_t)crc_update(r->crc, out, n);
    r->out_left -= n;
    return CVIS_OK;
}

cvis_status cvis__zip_member_finish(cvis__zip_member *r)
{
    if (r->out_left)
        return cvis__fail(CVIS_E_INTERNAL, "%llu bytes of the member left unread",
                          (unsigned long long)r->out_left);
    if (r->inflating) {
        /* The stream must close now: one byte of room shows whether it would go on. */
        unsigned char extra;
        while (!r->ended) {
            size_t got;
            CVIS_TRY(inflate_step(r, &extra, 1, &got));
            if (got)
                return cvis__fail(CVIS_E_FORMAT,
                                  "the member inflates to more than the %llu bytes declared",
                                  (unsigned long long)r->e->size);
        }
        if (r->z.avail_in || r->src_left)
            return cvis__fail(CVIS_E_FORMAT, "bytes after the end of the deflate stream");
    }
    if (r->crc != r->e->crc)
        return cvis__fail(CVIS_E_FORMAT, "CRC mismatch (corrupt data)");
    return CVIS_OK;
}

void cvis__zip_member_close(cvis__zip_member *r)
{
    if (r && r->inflating) {
        inflateEnd(&r->z);
        r->inflating = 0;
    }
}

/* ================================================================ writing */

struct cvis__zip_written {
    char *name;
    uint16_t flags;
    uint32_t crc;
    uint64_t comp_size, size, offset;
};

static unsigned char *w16(unsigned char *p, uint64_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    return p + 2;
}

static unsigned char *w32(unsigned char *p, uint64_t v)
{
    return w16(w16(p, v & 0xFFFF), (v >> 16) & 0xFFFF);
}

static unsigned char *w64(unsigned char *p, uint64_t v)
{
    return w32(w32(p, v & SAT32), v >> 32);
}

void cvis__zip_writer_init(cvis__zip_writer *w, FILE *f)
{
    memset(w, 0, sizeof *w);
    w->f = f;
}

static cvis_status put(cvis__zip_writer *w, const void *p, size_t n)
{
    if (!n)
        return CVIS_OK;
    if (w->f) {
        if (fwrite(p, 1, n, w->f) != n)
            return cvis__fail(CVIS_E_IO, "writing the archive failed: %s", strerror(errno));
    } else {
        if (n > w->mem_cap - w->mem_len) {
            if (n > SIZE_MAX / 2 - w->mem_len)
                return cvis__fail(CVIS_E_LIMIT, "the archive is too large for memory");
            size_t cap = w->mem_cap ? w->mem_cap : 4096;
            while (cap - w->mem_len < n)
                cap *= 2;
            void *q;
            CVIS_TRY(cvis__realloc(w->mem, cap, "a ZIP archive in memory", &q));
            w->mem = q;
            w->mem_cap = cap;
        }
        memcpy(w->mem + w->mem_len, p, n);
        w->mem_len += n;
    }
    w->pos += n;
    return CVIS_OK;
}

/* Overwrites bytes already written (a local header, once its sizes are known). */
static cvis_status patch(cvis__zip_writer *w, uint64_t offset, const void *p, size_t n)
{
    if (!w->f) {
        memcpy(w->mem + offset, p, n);
        return CVIS_OK;
    }
    if (fseeko(w->f, (off_t)offset, SEEK_SET) != 0 || fwrite(p, 1, n, w->f) != n ||
        fseeko(w->f, 0, SEEK_END) != 0)
        return cvis__fail(CVIS_E_IO, "writing the archive failed: %s", strerror(errno));
    return CVIS_OK;
}

static uint16_t name_flags(const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p >= 0x80)
            return FLAG_UTF8;  /* names are UTF-8; say so, or readers assume CP437 */
    return 0;
}

cvis_status cvis__zip_writer_begin(cvis__zip_writer *w, const char *name, uint64_t size)
{
    CVIS_CHECK_ARG(w && name, "writer or name is NULL");
    if (w->in_member)
        return cvis__fail(CVIS_E_INTERNAL, "a ZIP member is already being written");
    size_t nl = strlen(name);
    if (nl > SAT16)
        return cvis__fail(CVIS_E_INVALID_ARG, "a ZIP member name has at most 65535 bytes");
    if (w->n_done == w->cap_done) {
        int64_t cap = w->cap_done ? 2 * w->cap_done : 16;
        void *q;
        CVIS_TRY(cvis__realloc(w->done, (size_t)cap * sizeof *w->done, "a ZIP directory", &q));
        w->done = q;
        w->cap_done = cap;
    }
    if (!w->zbuf)
        CVIS_TRY(cvis__alloc(WRITE_BUFFER, "a deflate buffer", (void **)&w->zbuf));
    cvis__zip_written *e = &w->done[w->n_done];
    memset(e, 0, sizeof *e);
    e->name = cvis__strdup(name);
    if (!e->name)
        return cvis__fail(CVIS_E_NOMEM, "out of memory writing a ZIP archive");
    w->in_member = 1;  /* from here on, release frees e->name */
    e->flags = name_flags(name);
    e->offset = w->pos;
    e->size = size;
    /* A local header cannot grow later: decide on ZIP64 from the worst case. */
    w->zip64_local = w->force_zip64 || size >= SAT32 || deflateBound(NULL, size) >= SAT32;
    w->declared = size;
    w->size_in = 0;
    w->crc = (uint32_t)crc32_z(0, Z_NULL, 0);

    memset(&w->z, 0, sizeof w->z);
    w->z.zalloc = z_alloc;
    w->z.zfree = z_free;
    int zr = deflateInit2(&w->z, DEFLATE_LEVEL, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    if (zr != Z_OK)
        return cvis__fail(zr == Z_MEM_ERROR ? CVIS_E_NOMEM : CVIS_E_INTERNAL,
                          "cannot start deflating member \"%s\"", name);
    w->deflating = 1;

    unsigned char h[LOCAL_SIZE + 20], *p = h;
    p = w32(p, SIG_LOCAL);
    p = w16(p, w->zip64_local ? VERSION_ZIP64 : VERSION_DEFLATE);
    p = w16(p, e->flags);
    p = w16(p, CVIS__ZIP_DEFLATED);
    p = w16(p, 0);              /* time 00:00 */
    p = w16(p, DOS_DATE_1980);
    p = w32(p, 0);              /* CRC, sizes: patched by end */
    p = w32(p, w->zip64_local ? SAT32 : 0);
    p = w32(p, w->zip64_local ? SAT32 : 0);
    p = w16(p, nl);
    p = w16(p, w->zip64_local ? 20 : 0);
    CVIS_TRY(put(w, h, LOCAL_SIZE));
    CVIS_TRY(put(w, name, nl));
    if (w->zip64_local) {
        p = w16(h, EXTRA_ZIP64);
        p = w16(p, 16);
        p = w64(p, 0);
        p = w64(p, 0);
        CVIS_TRY(put(w, h, 20));
    }
    return CVIS_OK;
}

/* Runs deflate over what it holds with `flush`, writing out full buffers. */
static cvis_status deflate_run(cvis__zip_writer *w, int flush)
{
    for (;;) {
        w->z.next_out = w->zbuf;
        w->z.avail_out = WRITE_BUFFER;
        int zr = deflate(&w->z, flush);
        if (zr == Z_STREAM_ERROR)
            return cvis__fail(CVIS_E_INTERNAL, "deflate failed");
        size_t n = WRITE_BUFFER - w->z.avail_out;
        CVIS_TRY(put(w, w->zbuf, n));
        w->done[w->n_done].comp_size += n;
        if (flush == Z_FINISH ? zr == Z_STREAM_END : w->z.avail_out != 0)
            return CVIS_OK;
    }
}

cvis_status cvis__zip_writer_write(cvis__zip_writer *w, const void *data, size_t n)
{
    if (!w->in_member)
        return cvis__fail(CVIS_E_INTERNAL, "no ZIP member is being written");
    if (n > w->declared - w->size_in)
        return cvis__fail(CVIS_E_INTERNAL, "more bytes than declared for a ZIP member");
    const unsigned char *p = data;
    w->crc = (uint32_t)crc_update(w->crc, p, n);
    w->size_in += n;
    while (n) {
        uInt k = n > ZCHUNK ? ZCHUNK : (uInt)n;
        w->z.next_in = (Bytef *)p;
        w->z.avail_in = k;
        CVIS_TRY(deflate_run(w, Z_NO_FLUSH));
        p += k;
        n -= k;
    }
    return CVIS_OK;
}

cvis_status cvis__zip_writer_end(cvis__zip_writer *w)
{
    if (!w->in_member)
        return cvis__fail(CVIS_E_INTERNAL, "no ZIP member is being written");
    if (w->size_in != w->declared)
        return cvis__fail(CVIS_E_INTERNAL, "a ZIP member got %llu bytes, %llu were declared",
                          (unsigned long long)w->size_in, (unsigned long long)w->declared);
    w->z.next_in = Z_NULL;
    w->z.avail_in = 0;
    CVIS_TRY(deflate_run(w, Z_FINISH));
    deflateEnd(&w->z);
    w->deflating = 0;
    cvis__zip_written *e = &w->done[w->n_done];
    e->crc = w->crc;
    if (!w->zip64_local && e->comp_size >= SAT32)
        return cvis__fail(CVIS_E_INTERNAL, "deflate output exceeded its bound");
    unsigned char b[16], *p = b;
    p = w32(p, e->crc);
    CVIS_TRY(patch(w, e->offset + 14, b, 4));
    size_t nl = strlen(e->name);
    if (w->zip64_local) {
        p = w64(b, e->size);
        p = w64(p, e->comp_size);
        CVIS_TRY(patch(w, e->offset + LOCAL_SIZE + nl + 4, b, 16));
    } else {
        p = w32(b, e->comp_size);
        p = w32(p, e->size);
        CVIS_TRY(patch(w, e->offset + 18, b, 8));
    }
    w->in_member = 0;
    w->n_done++;
    return CVIS_OK;
}

cvis_status cvis__zip_writer_finish(cvis__zip_writer *w)
{
    if (w->in_member)
        return cvis__fail(CVIS_E_INTERNAL, "a ZIP member is still open");
    uint64_t cd_offset = w->pos;
    int force = w->force_zip64;
    for (int64_t i = 0; i < w->n_done; i++) {
        const cvis__zip_written *e = &w->done[i];
        int big_size = force || e->size >= SAT32, big_comp = force || e->comp_size >= SAT32;
        int big_off = force || e->offset >= SAT32;
        size_t nl = strlen(e->name), extra = 8 * (size_t)(big_size + big_comp + big_off);
        unsigned char h[CENTRAL_SIZE + 28], *p = h;
        p = w32(p, SIG_CENTRAL);
        p = w16(p, extra ? VERSION_ZIP64 : VERSION_DEFLATE);  /* made by MS-DOS: no modes */
        p = w16(p, extra ? VERSION_ZIP64 : VERSION_DEFLATE);
        p = w16(p, e->flags);
        p = w16(p, CVIS__ZIP_DEFLATED);
        p = w16(p, 0);
        p = w16(p, DOS_DATE_1980);
        p = w32(p, e->crc);
        p = w32(p, big_comp ? SAT32 : e->comp_size);
        p = w32(p, big_size ? SAT32 : e->size);
        p = w16(p, nl);
        p = w16(p, extra ? extra + 4 : 0);
        p = w16(p, 0);  /* comment */
        p = w16(p, 0);  /* disk */
        p = w16(p, 0);  /* internal attributes */
        p = w32(p, 0);  /* external attributes */
        p = w32(p, big_off ? SAT32 : e->offset);
        CVIS_TRY(put(w, h, CENTRAL_SIZE));
        CVIS_TRY(put(w, e->name, nl));
        if (extra) {
            p = w16(h, EXTRA_ZIP64);
            p = w16(p, extra);
            if (big_size)
                p = w64(p, e->size);
            if (big_comp)
                p = w64(p, e->comp_size);
            if (big_off)
                p = w64(p, e->offset);
            CVIS_TRY(put(w, h, (size_t)(p - h)));
        }
    }
    uint64_t cd_size = w->pos - cd_offset, n = (uint64_t)w->n_done;
    int big_n = force || n >= SAT16, big_cd = force || cd_size >= SAT32 || cd_offset >= SAT32;
    unsigned char r[END64_SIZE + LOCATOR64_SIZE + END_SIZE], *p = r;
    if (big_n || big_cd) {
        uint64_t rec_pos = w->pos;
        p = w32(p, SIG_END64);
        p = w64(p, END64_SIZE - 12);
        p = w16(p, VERSION_ZIP64);
        p = w16(p, VERSION_ZIP64);
        p = w32(p, 0);
        p = w32(p, 0);
        p = w64(p, n);
        p = w64(p, n);
        p = w64(p, cd_size);
        p = w64(p, cd_offset);
        p = w32(p, SIG_LOCATOR64);
        p = w32(p, 0);
        p = w64(p, rec_pos);
        p = w32(p, 1);
    }
    p = w32(p, SIG_END);
    p = w16(p, 0);
    p = w16(p, 0);
    p = w16(p, big_n ? SAT16 : n);
    p = w16(p, big_n ? SAT16 : n);
    p = w32(p, big_cd ? SAT32 : cd_size);
    p = w32(p, big_cd ? SAT32 : cd_offset);
    p = w16(p, 0);
    return put(w, r, (size_t)(p - r));
}

void cvis__zip_writer_take(cvis__zip_writer *w, void **data, size_t *size)
{
    *data = w->mem;
    *size = w->mem_len;
    w->mem = NULL;
    w->mem_len = w->mem_cap = 0;
}

void cvis__zip_writer_release(cvis__zip_writer *w)
{
    if (!w)
        return;
    if (w->deflating)
        deflateEnd(&w->z);
    for (int64_t i = 0; i < w->n_done + (w->in_member ? 1 : 0); i++)
        cvis__free(w->done[i].name);
    cvis__free(w->done);
    cvis__free(w->zbuf);
    cvis__free(w->mem);
    memset(w, 0, sizeof *w);
}
