/* ZIP archives, as far as NPZ files need them: reading the members of an
 * archive held in memory (stored or deflated, ZIP64 records, CRC checked),
 * and writing an archive member by member (deflated) to a FILE or to
 * memory.  Multi-disk archives, encryption and other compression methods
 * are refused with CVIS_E_UNSUPPORTED. */
#ifndef CVIS_MODEL_ZIP_H
#define CVIS_MODEL_ZIP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <zlib.h>

#include "cvis.h"

#define CVIS__ZIP_STORED 0
#define CVIS__ZIP_DEFLATED 8

/* Deflate never expands more than this ratio; a member that declares more
 * is corrupt, and this keeps allocations proportional to the file size. */
#define CVIS__ZIP_MAX_RATIO 1032

/* ------------------------------------------------------------------ reading */

typedef struct cvis__zip_entry {
    char *name;             /* owned, NUL-terminated */
    int method;             /* CVIS__ZIP_STORED or CVIS__ZIP_DEFLATED */
    uint32_t crc;
    uint64_t comp_size;     /* bytes in the archive */
    uint64_t size;          /* bytes once inflated */
    uint64_t header_offset; /* the local header */
    uint64_t data_offset;   /* the member's first byte */
} cvis__zip_entry;

typedef struct cvis__zip_archive {
    const unsigned char *data;  /* borrowed: the caller keeps it alive */
    uint64_t size;
    cvis__zip_entry *entries;   /* in central directory order */
    int64_t n;
} cvis__zip_archive;

/* Reads the central directory of the archive in data[0..size) and checks
 * every entry against its local header and the buffer's bounds (members
 * may not overlap).  Release with cvis__zip_close. */
cvis_status cvis__zip_open(const void *data, size_t size, cvis__zip_archive *out);
void cvis__zip_close(cvis__zip_archive *a);

/* A member being read, front to back. */
typedef struct cvis__zip_member {
    const cvis__zip_entry *e;
    const unsigned char *src;   /* next byte not yet handed to zlib / copied */
    uint64_t src_left;
    uint64_t out_left;          /* bytes of the member not yet read */
    uint32_t crc;
    int inflating;              /* 1 while z holds an inflate state */
    int ended;                  /* the deflate stream reached its end */
    z_stream z;
} cvis__zip_member;

/* Starts reading entry i.  Close with cvis__zip_member_close, whatever happens.
 * Messages from reading do not repeat the member name: the caller adds it. */
cvis_status cvis__zip_member_open(const cvis__zip_archive *a, int64_t i, cvis__zip_member *r);
/* Reads exactly n bytes; CVIS_E_FORMAT if the member ends first or its data is corrupt. */
cvis_status cvis__zip_member_read(cvis__zip_member *r, void *dst, size_t n);
/* After the last read: checks that the member ends exactly there (no
 * data left, the deflate stream closed, no trailing bytes) and its CRC. */
cvis_status cvis__zip_member_finish(cvis__zip_member *r);
void cvis__zip_member_close(cvis__zip_member *r);

/* ------------------------------------------------------------------ writing */

typedef struct cvis__zip_written cvis__zip_written;

typedef struct cvis__zip_writer {
    FILE *f;                /* the archive goes to f, or to mem when f is NULL */
    unsigned char *mem;
    size_t mem_len, mem_cap;
    uint64_t pos;           /* bytes written so far */
    int force_zip64;        /* tests: ZIP64 records even where none are needed */
    cvis__zip_written *done;
    int64_t n_done, cap_done;
    /* the member being written */
    int in_member;
    int deflating;
    int zip64_local;
    uint64_t declared, size_in;
    uint32_t crc;
    unsigned char *zbuf;
    z_stream z;
} cvis__zip_writer;

/* A writer to f (opened for binary writing and seekable), or to memory
 * when f is NULL.  Release with cvis__zip_writer_release. */
void cvis__zip_writer_init(cvis__zip_writer *w, FILE *f);
/* Starts a deflated member of exactly `size` bytes (uncompressed). */
cvis_status cvis__zip_writer_begin(cvis__zip_writer *w, const char *name, uint64_t size);
cvis_status cvis__zip_writer_write(cvis__zip_writer *w, const void *data, size_t n);
cvis_status cvis__zip_writer_end(cvis__zip_writer *w);
/* Writes the central directory; the archive is complete after this. */
cvis_status cvis__zip_writer_finish(cvis__zip_writer *w);
/* For a memory writer after finish: hands over the archive (free it with
 * cvis__free). */
void cvis__zip_writer_take(cvis__zip_writer *w, void **data, size_t *size);
void cvis__zip_writer_release(cvis__zip_writer *w);

#endif
