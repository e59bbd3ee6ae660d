/* A tiny test harness: CHECK records failures, TEST_MAIN prints a summary
 * line "name: N passed, M failed" and sets the exit status. */
#ifndef CVIS_TEST_CHECK_H
#define CVIS_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvis.h"

static int check_passed, check_failed;

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (cond) {                                                             \
            check_passed++;                                                     \
        } else {                                                                \
            check_failed++;                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                       \
    } while (0)

/* A call that must succeed; on failure prints the library's message. */
#define CHECK_OK(call)                                                          \
    do {                                                                        \
        cvis_status st_ = (call);                                               \
        if (st_ == CVIS_OK) {                                                   \
            check_passed++;                                                     \
        } else {                                                                \
            check_failed++;                                                     \
            fprintf(stderr, "%s:%d: %s -> %s (%s)\n", __FILE__, __LINE__, #call,  \
                    cvis_status_string(st_), cvis_last_error());                \
        }                                                                       \
    } while (0)

/* A call that must fail with `status` and leave a non-empty message. */
#define CHECK_STATUS(call, status)                                              \
    do {                                                                        \
        cvis_status st_ = (call);                                               \
        if (st_ == (status) && cvis_last_error()[0]) {                          \
            check_passed++;                                                     \
        } else {                                                                \
            check_failed++;                                                     \
            fprintf(stderr, "%s:%d: %s -> %s, expected %s (%s)\n", __FILE__, __LINE__, \
                    #call, cvis_status_string(st_), cvis_status_string(status),   \
                    cvis_last_error());                                         \
        }                                                                       \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                   \
    do {                                                                        \
        double a_ = (a), b_ = (b);                                              \
        if (fabs(a_ - b_) <= (tol)) {                                           \
            check_passed++;                                                     \
        } else {                                                                \
            check_failed++;                                                     \
            fprintf(stderr, "%s:%d: %s = %.9g, %s = %.9g, |diff| > %g\n", __FILE__, \
                    __LINE__, #a, a_, #b, b_, (double)(tol));                   \
        }                                                                       \
    } while (0)

#define TEST_MAIN(body)                                                         \
    int main(void)                                                              \
    {                                                                           \
        body;                                                                   \
        printf("%s: %d passed, %d failed\n", __FILE__, check_passed, check_failed); \
        return check_failed ? 1 : 0;                                            \
    }

#endif
