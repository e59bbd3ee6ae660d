/* Allocation wrappers: limit, overflow checks, and the failure hook. */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "error.h"

#define DEFAULT_LIMIT ((uint64_t)8 << 30)

static _Atomic uint64_t alloc_limit = DEFAULT_LIMIT;
static _Atomic int64_t fail_after = 0;  /* 0: never fail */
static _Atomic int64_t attempts = 0;
static _Atomic uint64_t largest = 0;

CVIS_API cvis_status cvis_set_alloc_limit(uint64_t bytes)
{
    atomic_store(&alloc_limit, bytes ? bytes : DEFAULT_LIMIT);
    return CVIS_OK;
}

CVIS_API uint64_t cvis_get_alloc_limit(void)
{
    return atomic_load(&alloc_limit);
}

void cvis__alloc_fail_after(int64_t n)
{
    atomic_store(&attempts, 0);
    atomic_store(&largest, 0);
    atomic_store(&fail_after, n);
}

uint64_t cvis__alloc_largest(void)
{
    return atomic_load(&largest);
}

static void note_request(uint64_t bytes)
{
    uint64_t seen = atomic_load(&largest);
    while (bytes > seen && !atomic_compare_exchange_weak(&largest, &seen, bytes))
        ;
}

int64_t cvis__alloc_attempts(void)
{
    return atomic_load(&attempts);
}

/* True when the test hook says this allocation must fail. */
static int injected_failure(void)
{
    int64_t n = atomic_fetch_add(&attempts, 1) + 1;
    int64_t f = atomic_load(&fail_after);
    return f > 0 && n >= f;
}

cvis_status cvis__check_limit(uint64_t bytes, const char *what)
{
    uint64_t limit = atomic_load(&alloc_limit);
    if (bytes > limit)
        return cvis__fail(CVIS_E_LIMIT,
                          "%s needs %llu bytes, more than the allocation limit of %llu",
                          what, (unsigned long long)bytes, (unsigned long long)limit);
    return CVIS_OK;
}

cvis_status cvis__mul_size(int64_t a, int64_t b, const char *what, int64_t *out)
{
    if (a < 0 || b < 0)
        return cvis__fail(CVIS_E_INVALID_ARG, "%s: negative size", what);
    if (a != 0 && b > INT64_MAX / a)
        return cvis__fail(CVIS_E_LIMIT, "%s: size overflows", what);
    *out = a * b;
    return CVIS_OK;
}

/* Large buffers (weights, activations of a batch) are first touched in
 * full right after they are allocated; on 4 KiB pages that is a page fault
 * per 4 KiB.  Aligned to 2 MiB and marked for transparent huge pages, they
 * fault once per 2 MiB where the kernel allows it (a hint: without THP
 * nothing changes). */
#define HUGE_FROM ((size_t)2 << 20)
#define HUGE_ALIGN ((size_t)2 << 20)

static void *malloc_large(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, HUGE_ALIGN, bytes) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, bytes & ~(HUGE_ALIGN - 1), MADV_HUGEPAGE);
#endif
    return p;
}

void *cvis__malloc(size_t bytes)
{
    note_request(bytes);
    if (injected_failure())
        return NULL;
    if (bytes >= HUGE_FROM)
        return malloc_large(bytes);
    return malloc(bytes ? bytes : 1);
}

void *cvis__calloc(size_t n, size_t size)
{
    note_request(size && n > UINT64_MAX / size ? UINT64_MAX : (uint64_t)n * size);
    if (injected_failure())
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

char *cvis__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = cvis__malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

cvis_status cvis__alloc(size_t bytes, const char *what, void **out)
{
    CVIS_TRY(cvis__check_limit(bytes, what));
    void *p = cvis__malloc(bytes);
    if (!p)
        return cvis__fail(CVIS_E_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
    *out = p;
    return CVIS_OK;
}

cvis_status cvis__alloc_zero(size_t bytes, const char *what, void **out)
{
    CVIS_TRY(cvis__check_limit(bytes, what));
    void *p = cvis__calloc(1, bytes);
    if (!p)
        return cvis__fail(CVIS_E_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
    *out = p;
    return CVIS_OK;
}

cvis_status cvis__realloc(void *p, size_t bytes, const char *what, void **out)
{
    CVIS_TRY(cvis__check_limit(bytes, what));
    note_request(bytes);
    if (injected_failure())
        return cvis__fail(CVIS_E_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q)
        return cvis__fail(CVIS_E_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
    *out = q;
    return CVIS_OK;
}

void cvis__free(void *p)
{
    free(p);
}

CVIS_API void cvis_free(void *p)
{
    cvis__free(p);
}
