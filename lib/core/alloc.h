/* Every allocation of libcvis goes through here: one place to enforce the
 * allocation limit, check size arithmetic for overflow, and (in tests)
 * fail the Nth allocation on purpose. */
#ifndef CVIS_CORE_ALLOC_H
#define CVIS_CORE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "cvis.h"

/* Allocation that reports failure through the status/message mechanism.
 * On failure *out is left untouched and CVIS_E_NOMEM or CVIS_E_LIMIT is
 * returned with a message naming `what`. */
cvis_status cvis__alloc(size_t bytes, const char *what, void **out);
cvis_status cvis__alloc_zero(size_t bytes, const char *what, void **out);
cvis_status cvis__realloc(void *p, size_t bytes, const char *what, void **out);
void cvis__free(void *p);

/* Plain allocation for small bookkeeping; NULL on failure (callers turn
 * that into CVIS_E_NOMEM). Counted by the test hook like the others. */
void *cvis__malloc(size_t bytes);
void *cvis__calloc(size_t n, size_t size);
char *cvis__strdup(const char *s);

/* a*b and a+b without overflow; CVIS_E_LIMIT (with a message naming
 * `what`) when the result would not fit in int64 or exceeds the limit. */
cvis_status cvis__mul_size(int64_t a, int64_t b, const char *what, int64_t *out);
/* Checks that `bytes` is within the allocation limit. */
cvis_status cvis__check_limit(uint64_t bytes, const char *what);

/* Test hook: the n-th allocation from now (1-based) and all after it fail;
 * 0 disables.  Returns how many allocations were attempted since set. */
void cvis__alloc_fail_after(int64_t n);
int64_t cvis__alloc_attempts(void);
/* Test hook: the largest request made since cvis__alloc_fail_after (what
 * shows that an oversized declaration was refused before allocating). */
uint64_t cvis__alloc_largest(void);

#endif
