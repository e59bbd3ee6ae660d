/* Error reporting: a status plus a thread-local message. */
#ifndef CVIS_CORE_ERROR_H
#define CVIS_CORE_ERROR_H

#include "cvis.h"

/* Records a formatted message for this thread and returns `status`, so that
 * callers can write `return cvis__fail(CVIS_E_SHAPE, "...", ...)`. */
cvis_status cvis__fail(cvis_status status, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prepends context to the current message ("loading x.npz: " + old). */
cvis_status cvis__wrap_error(cvis_status status, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#define CVIS_TRY(expr)                      \
    do {                                    \
        cvis_status cvis__st_ = (expr);     \
        if (cvis__st_ != CVIS_OK)           \
            return cvis__st_;               \
    } while (0)

#define CVIS_CHECK_ARG(cond, what)                                        \
    do {                                                                  \
        if (!(cond))                                                      \
            return cvis__fail(CVIS_E_INVALID_ARG, "%s: %s", __func__, what); \
    } while (0)

#endif
