/* A growable byte buffer for things built piece by piece in memory (an
 * encoded PNG, an HTML page).  Allocations go through core/alloc.h. */
#ifndef CVIS_RENDER_BUFFER_H
#define CVIS_RENDER_BUFFER_H

#include <stddef.h>

#include "cvis.h"

typedef struct cvis__buf {
    char *data;
    size_t len;
    size_t cap;
} cvis__buf;

/* Appends n bytes; on failure the buffer keeps its old content. */
cvis_status cvis__buf_append(cvis__buf *b, const void *bytes, size_t n);
cvis_status cvis__buf_puts(cvis__buf *b, const char *s);
/* Appends s with &, <, >, " and ' replaced by HTML entities. */
cvis_status cvis__buf_put_html(cvis__buf *b, const char *s);
void cvis__buf_free(cvis__buf *b);

#endif
