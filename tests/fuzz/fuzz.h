/* What the fuzz targets share: the library set up for small inputs, and
 * a check that stops the run (a "crash" for libFuzzer) when the library
 * breaks one of its own promises without crashing, e.g. a failed call
 * that leaves no message or leaves an output behind. */
#ifndef CVIS_FUZZ_H
#define CVIS_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cvis.h"

#define FUZZ_EXPECT(cond)                                                           \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: broken promise: %s (last error: %s)\n", __FILE__, \
                    __LINE__, #cond, cvis_last_error());                            \
            abort();                                                                \
        }                                                                           \
    } while (0)

/* One computing thread (inputs are tiny; BLAS threads only add noise) and
 * an allocation limit far below libFuzzer's 2 GiB memory limit: an input
 * that declares more must be refused with CVIS_E_LIMIT, not found out by
 * the fuzzer's out-of-memory check. */
static void fuzz_setup(uint64_t alloc_limit)
{
    cvis_set_num_threads(1);
    cvis_set_alloc_limit(alloc_limit);
}

/* A failed call: a status other than CVIS_OK and a message. */
#define FUZZ_EXPECT_FAILED_CLEANLY(st) \
    FUZZ_EXPECT((st) != CVIS_OK && (int)(st) <= CVIS_E_INTERNAL && cvis_last_error()[0])

#endif
