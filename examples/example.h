/* What every example program needs: a failed call ends the program with
 * the library's message, an allocation that cannot fail quietly, a clock.
 * Define EXAMPLE_NAME (the program's name, for messages) before including. */
#ifndef CVIS_EXAMPLE_H
#define CVIS_EXAMPLE_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cvis.h"

#ifndef EXAMPLE_NAME
#error "define EXAMPLE_NAME before including example.h"
#endif

static inline void check(cvis_status st, const char *what)
{
    if (st != CVIS_OK) {
        fprintf(stderr, EXAMPLE_NAME ": %s: %s\n", what, cvis_last_error());
        exit(1);
    }
}

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, EXAMPLE_NAME ": out of memory\n");
        exit(1);
    }
    return p;
}

static inline double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#endif
