/* Status names and the thread-local error message. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MESSAGE_SIZE 1024

static _Thread_local char last_message[MESSAGE_SIZE];

cvis_status cvis__fail(cvis_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    return status;
}

cvis_status cvis__wrap_error(cvis_status status, const char *fmt, ...)
{
    char joined[2 * MESSAGE_SIZE + 2];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(joined, MESSAGE_SIZE, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (n >= MESSAGE_SIZE)
        n = MESSAGE_SIZE - 1;
    memcpy(joined + n, ": ", 2);
    memcpy(joined + n + 2, last_message, MESSAGE_SIZE);
    memcpy(last_message, joined, MESSAGE_SIZE - 1);
    last_message[MESSAGE_SIZE - 1] = 0;
    return status;
}

CVIS_API const char *cvis_last_error(void)
{
    return last_message;
}

CVIS_API const char *cvis_status_string(cvis_status status)
{
    switch (status) {
    case CVIS_OK: return "CVIS_OK: success";
    case CVIS_E_INVALID_ARG: return "CVIS_E_INVALID_ARG: invalid argument";
    case CVIS_E_NOMEM: return "CVIS_E_NOMEM: out of memory";
    case CVIS_E_IO: return "CVIS_E_IO: input/output error";
    case CVIS_E_FORMAT: return "CVIS_E_FORMAT: corrupt or truncated file";
    case CVIS_E_UNSUPPORTED: return "CVIS_E_UNSUPPORTED: not supported";
    case CVIS_E_SHAPE: return "CVIS_E_SHAPE: shape mismatch";
    case CVIS_E_NOT_FOUND: return "CVIS_E_NOT_FOUND: not found";
    case CVIS_E_RANGE: return "CVIS_E_RANGE: index out of range";
    case CVIS_E_NONFINITE: return "CVIS_E_NONFINITE: NaN or infinity";
    case CVIS_E_CANCELLED: return "CVIS_E_CANCELLED: cancelled by a callback";
    case CVIS_E_LIMIT: return "CVIS_E_LIMIT: allocation limit exceeded";
    case CVIS_E_LAYER_KIND: return "CVIS_E_LAYER_KIND: wrong kind of layer";
    case CVIS_E_STATE: return "CVIS_E_STATE: wrong state for this call";
    case CVIS_E_CALLBACK: return "CVIS_E_CALLBACK: a callback failed";
    case CVIS_E_INTERNAL: return "CVIS_E_INTERNAL: internal error";
    }
    return "unknown status";
}

CVIS_API int cvis_version(void)
{
    return CVIS_VERSION_NUMBER;
}

#define CVIS_STR2(x) #x
#define CVIS_STR(x) CVIS_STR2(x)

CVIS_API const char *cvis_version_string(void)
{
    return CVIS_STR(CVIS_VERSION_MAJOR) "." CVIS_STR(CVIS_VERSION_MINOR) "." CVIS_STR(
        CVIS_VERSION_PATCH);
}
