/* Growable scratch buffer. */
#include "workspace.h"

#include "alloc.h"
#include "error.h"

cvis_status cvis__ws_get(cvis__workspace *ws, size_t n, float **out)
{
    if (n > ws->cap) {
        float *p;
        if (n > SIZE_MAX / sizeof(float))
            return cvis__fail(CVIS_E_LIMIT, "workspace size overflows");
        CVIS_TRY(cvis__alloc(n * sizeof(float), "workspace", (void **)&p));
        cvis__free(ws->buf);
        ws->buf = p;
        ws->cap = n;
    }
    *out = ws->buf;
    return CVIS_OK;
}

void cvis__ws_release(cvis__workspace *ws)
{
    cvis__free(ws->buf);
    ws->buf = NULL;
    ws->cap = 0;
}
