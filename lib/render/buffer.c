/* Growable byte buffer. */
#include "buffer.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

cvis_status cvis__buf_append(cvis__buf *b, const void *bytes, size_t n)
{
    if (n > SIZE_MAX - b->len - 1)
        return cvis__fail(CVIS_E_LIMIT, "buffer size overflows");
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        void *p;
        CVIS_TRY(cvis__realloc(b->data, cap, "a text or image buffer", &p));
        b->data = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = 0; /* always a valid C string */
    return CVIS_OK;
}

cvis_status cvis__buf_puts(cvis__buf *b, const char *s)
{
    return cvis__buf_append(b, s, strlen(s));
}

cvis_status cvis__buf_put_html(cvis__buf *b, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *ent = NULL;
        switch (*s) {
        case '&': ent = "&amp;"; break;
        case '<': ent = "&lt;"; break;
        case '>': ent = "&gt;"; break;
        case '"': ent = "&quot;"; break;
        case '\'': ent = "&#39;"; break;
        default: continue;
        }
        CVIS_TRY(cvis__buf_append(b, run, (size_t)(s - run)));
        CVIS_TRY(cvis__buf_puts(b, ent));
        run = s + 1;
    }
    return cvis__buf_append(b, run, (size_t)(s - run));
}

void cvis__buf_free(cvis__buf *b)
{
    cvis__free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
