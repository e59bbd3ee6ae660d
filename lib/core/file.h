/* Files: reading a whole file into memory, and replacing a file all at
 * once (write a temporary file beside it, then rename), so that a failed
 * save never leaves a half-written file behind. */
#ifndef CVIS_CORE_FILE_H
#define CVIS_CORE_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "cvis.h"

/* The contents of the regular file at `path` (size checked against the
 * allocation limit first).  CVIS_E_IO, naming the path, if it cannot be
 * opened or read.  Caller frees *data with cvis__free. */
cvis_status cvis__file_read(const char *path, void **data, size_t *size);

typedef struct cvis__file_out {
    FILE *f;        /* write here (binary, seekable) */
    char *tmp;      /* the temporary file beside the target */
    char *path;     /* the target */
} cvis__file_out;

/* Creates a new temporary file in the target's directory. */
cvis_status cvis__file_out_open(const char *path, cvis__file_out *o);
/* Flushes, syncs and closes the temporary file and renames it over the
 * target.  On failure the temporary file is removed.  Either way o is
 * released. */
cvis_status cvis__file_out_commit(cvis__file_out *o);
/* Drops the temporary file, leaving the target as it was. */
void cvis__file_out_abort(cvis__file_out *o);

#endif
