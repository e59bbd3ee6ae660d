/* A scratch buffer that grows to the largest request and is then reused,
 * so that hot loops never allocate after the first call. */
#ifndef CVIS_CORE_WORKSPACE_H
#define CVIS_CORE_WORKSPACE_H

#include <stddef.h>

#include "cvis.h"

typedef struct cvis__workspace {
    float *buf;
    size_t cap;  /* in floats */
} cvis__workspace;

/* A pointer to at least n floats (contents undefined). */
cvis_status cvis__ws_get(cvis__workspace *ws, size_t n, float **out);
void cvis__ws_release(cvis__workspace *ws);

#endif
