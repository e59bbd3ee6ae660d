/* A static HTML page that gathers the pictures of a run: headings, text,
 * pictures with captions and tables.  No script and nothing from the
 * network (a Content-Security-Policy says so to the browser too); every
 * piece of caller text is escaped. */
#include <stdio.h>
#include <string.h>

#include "buffer.h"
#include "core/alloc.h"
#include "core/error.h"
#include "image.h"
#include "stb_codec.h"

struct cvis_report {
    char *title;
    cvis__buf body;
};

CVIS_API cvis_status cvis_report_new(const char *title, cvis_report **out)
{
    CVIS_CHECK_ARG(out, "out is NULL");
    cvis_report *r = cvis__calloc(1, sizeof *r);
    if (!r)
        return cvis__fail(CVIS_E_NOMEM, "out of memory allocating a report");
    r->title = cvis__strdup(title ? title : "libcvis report");
    if (!r->title) {
        cvis__free(r);
        return cvis__fail(CVIS_E_NOMEM, "out of memory allocating a report");
    }
    *out = r;
    return CVIS_OK;
}

CVIS_API void cvis_report_free(cvis_report *r)
{
    if (!r)
        return;
    cvis__free(r->title);
    cvis__buf_free(&r->body);
    cvis__free(r);
}

/* Appends to the body all or nothing: a failed addition leaves the page
 * as it was. */
#define BODY_TRY(r, before, expr)            \
    do {                                     \
        cvis_status st_ = (expr);            \
        if (st_ != CVIS_OK) {                \
            (r)->body.len = (before);        \
            if ((r)->body.data)              \
                (r)->body.data[before] = 0;  \
            return st_;                      \
        }                                    \
    } while (0)

/* Paragraphs separated by blank lines; single newlines become <br>. */
static cvis_status put_paragraphs(cvis__buf *b, const char *text)
{
    const char *p = text;
    while (*p) {
        while (*p == '\n')
            p++;
        if (!*p)
            break;
        const char *end = strstr(p, "\n\n");
        size_t n = end ? (size_t)(end - p) : strlen(p);
        CVIS_TRY(cvis__buf_puts(b, "<p>"));
        size_t start = 0;
        for (size_t i = 0; i <= n; i++) {
            if (i == n || p[i] == '\n') {
                char *line = cvis__malloc(i - start + 1);
                if (!line)
                    return cvis__fail(CVIS_E_NOMEM, "out of memory writing a report");
                memcpy(line, p + start, i - start);
                line[i - start] = 0;
                cvis_status st = cvis__buf_put_html(b, line);
                cvis__free(line);
                CVIS_TRY(st);
                if (i < n)
                    CVIS_TRY(cvis__buf_puts(b, "<br>"));
                start = i + 1;
            }
        }
        CVIS_TRY(cvis__buf_puts(b, "</p>\n"));
        p += n;
    }
    return CVIS_OK;
}

CVIS_API cvis_status cvis_report_add_section(cvis_report *r, const char *heading,
                                             const char *text)
{
    CVIS_CHECK_ARG(r, "report is NULL");
    size_t before = r->body.len;
    if (heading) {
        BODY_TRY(r, before, cvis__buf_puts(&r->body, "<h2>"));
        BODY_TRY(r, before, cvis__buf_put_html(&r->body, heading));
        BODY_TRY(r, before, cvis__buf_puts(&r->body, "</h2>\n"));
    }
    if (text)
        BODY_TRY(r, before, put_paragraphs(&r->body, text));
    return CVIS_OK;
}

/* A path relative to the page: no scheme ("x:" before any '/'), not
 * absolute, no backslash, no "..", not empty. */
static cvis_status check_relative(const char *path)
{
    if (!*path)
        return cvis__fail(CVIS_E_INVALID_ARG, "picture path is empty");
    if (path[0] == '/' || strchr(path, '\\'))
        return cvis__fail(CVIS_E_INVALID_ARG,
                          "picture path '%s' must be relative to the page, with '/' separators",
                          path);
    size_t head = strcspn(path, "/");
    if (memchr(path, ':', head))
        return cvis__fail(CVIS_E_INVALID_ARG,
                          "picture path '%s' looks like a URL; give a path relative to the page",
                          path);
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return cvis__fail(CVIS_E_INVALID_ARG,
                              "picture path '%s' leaves the page's folder ('..')", path);
        p += n;
        if (*p == '/')
            p++;
    }
    return CVIS_OK;
}

/* The path as a URL: bytes outside the unreserved set and '/' become %XX. */
static cvis_status put_url_path(cvis__buf *b, const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || strchr("-._~/", *p);
        if (plain) {
            CVIS_TRY(cvis__buf_append(b, p, 1));
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            CVIS_TRY(cvis__buf_append(b, e, 3));
        }
    }
    return CVIS_OK;
}

static cvis_status put_caption(cvis__buf *b, const char *caption)
{
    CVIS_TRY(cvis__buf_puts(b, "\" alt=\""));
    CVIS_TRY(cvis__buf_put_html(b, caption ? caption : ""));
    CVIS_TRY(cvis__buf_puts(b, "\">\n"));
    if (caption && *caption) {
        CVIS_TRY(cvis__buf_puts(b, "<figcaption>"));
        CVIS_TRY(cvis__buf_put_html(b, caption));
        CVIS_TRY(cvis__buf_puts(b, "</figcaption>\n"));
    }
    return cvis__buf_puts(b, "</figure>\n");
}

CVIS_API cvis_status cvis_report_add_image(cvis_report *r, const char *relative_path,
                                           const char *caption)
{
    CVIS_CHECK_ARG(r, "report is NULL");
    CVIS_CHECK_ARG(relative_path, "path is NULL");
    CVIS_TRY(check_relative(relative_path));
    size_t before = r->body.len;
    BODY_TRY(r, before, cvis__buf_puts(&r->body, "<figure><img src=\""));
    BODY_TRY(r, before, put_url_path(&r->body, relative_path));
    BODY_TRY(r, before, put_caption(&r->body, caption));
    return CVIS_OK;
}

static cvis_status put_base64(cvis__buf *b, const uint8_t *data, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < n)
            v |= data[i + 2];
        char q[4] = {abc[v >> 18], abc[(v >> 12) & 63], i + 1 < n ? abc[(v >> 6) & 63] : '=',
                     i + 2 < n ? abc[v & 63] : '='};
        CVIS_TRY(cvis__buf_append(b, q, 4));
    }
    return CVIS_OK;
}

CVIS_API cvis_status cvis_report_add_image_inline(cvis_report *r, const cvis_image *img,
                                                  const char *caption)
{
    CVIS_CHECK_ARG(r, "report is NULL");
    CVIS_TRY(cvis__image_check(img, "image"));
    cvis__buf png = {0};
    CVIS_TRY(cvis__stb_png_encode(img->data, img->width, img->height, img->channels, &png));
    size_t before = r->body.len;
    cvis_status st = cvis__buf_puts(&r->body, "<figure><img src=\"data:image/png;base64,");
    if (st == CVIS_OK)
        st = put_base64(&r->body, (const uint8_t *)png.data, png.len);
    cvis__buf_free(&png);
    BODY_TRY(r, before, st);
    BODY_TRY(r, before, put_caption(&r->body, caption));
    return CVIS_OK;
}

CVIS_API cvis_status cvis_report_add_table(cvis_report *r, int rows, int cols,
                                           const char *const *cells)
{
    CVIS_CHECK_ARG(r, "report is NULL");
    CVIS_CHECK_ARG(cells, "cells is NULL");
    if (rows < 1 || cols < 1)
        return cvis__fail(CVIS_E_INVALID_ARG, "table of %d x %d cells", rows, cols);
    size_t before = r->body.len;
    BODY_TRY(r, before, cvis__buf_puts(&r->body, "<table>\n"));
    for (int i = 0; i < rows; i++) {
        const char *tag = i == 0 ? "th" : "td";
        BODY_TRY(r, before, cvis__buf_puts(&r->body, i == 0 ? "<thead><tr>" : "<tr>"));
        for (int j = 0; j < cols; j++) {
            const char *cell = cells[(size_t)i * cols + j];
            char open[8], close[8];
            snprintf(open, sizeof open, "<%s>", tag);
            snprintf(close, sizeof close, "</%s>", tag);
            BODY_TRY(r, before, cvis__buf_puts(&r->body, open));
            BODY_TRY(r, before, cvis__buf_put_html(&r->body, cell ? cell : ""));
            BODY_TRY(r, before, cvis__buf_puts(&r->body, close));
        }
        BODY_TRY(r, before, cvis__buf_puts(&r->body, i == 0 ? "</tr></thead>\n<tbody>\n" : "</tr>\n"));
    }
    BODY_TRY(r, before, cvis__buf_puts(&r->body, "</tbody></table>\n"));
    return CVIS_OK;
}

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
    "img-src 'self' data: file:; style-src 'unsafe-inline'\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<meta name=\"generator\" content=\"libcvis ";

static const char page_style[] =
    "<style>\n"
    "body{font-family:sans-serif;max-width:70em;margin:1.5em auto;padding:0 1em;"
    "color:#222;background:#fff;line-height:1.45}\n"
    "h1{font-size:1.6em;border-bottom:2px solid #ddd;padding-bottom:.3em}\n"
    "h2{font-size:1.25em;margin-top:1.8em}\n"
    "figure{margin:1.2em 0;padding:.6em;border:1px solid #e3e3e3;display:inline-block;"
    "max-width:100%;box-sizing:border-box;vertical-align:top}\n"
    "figure img{display:block;max-width:100%;height:auto;image-rendering:pixelated}\n"
    "figcaption{font-size:.92em;color:#444;margin-top:.4em;max-width:60em}\n"
    "table{border-collapse:collapse;margin:1em 0}\n"
    "th,td{border:1px solid #ccc;padding:.25em .7em;text-align:left}\n"
    "th{background:#f2f2f2}\n"
    "footer{margin-top:3em;font-size:.8em;color:#888}\n"
    "</style>\n";

CVIS_API cvis_status cvis_report_save(const cvis_report *r, const char *path)
{
    CVIS_CHECK_ARG(r, "report is NULL");
    CVIS_CHECK_ARG(path, "path is NULL");
    cvis__buf page = {0};
    cvis_status st = cvis__buf_puts(&page, page_head);
    if (st == CVIS_OK)
        st = cvis__buf_puts(&page, cvis_version_string());
    if (st == CVIS_OK)
        st = cvis__buf_puts(&page, "\">\n<title>");
    if (st == CVIS_OK)
        st = cvis__buf_put_html(&page, r->title);
    if (st == CVIS_OK)
        st = cvis__buf_puts(&page, "</title>\n");
    if (st == CVIS_OK)
        st = cvis__buf_puts(&page, page_style);
    if (st == CVIS_OK)
        st = cvis__buf_puts(&page, "</head>\n<body>\n<h1>");
    if (st == CVIS_OK)
        st = cvis__buf_put_html(&page, r->title);
    if (st == CVIS_OK)
        st = cvis__buf_puts(&page, "</h1>\n");
    if (st == CVIS_OK && r->body.len)
        st = cvis__buf_append(&page, r->body.data, r->body.len);
    if (st == CVIS_OK)
        st = cvis__buf_puts(&page, "<footer>Made with libcvis ");
    if (st == CVIS_OK)
        st = cvis__buf_puts(&page, cvis_version_string());
    if (st == CVIS_OK)
        st = cvis__buf_puts(&page, ".</footer>\n</body>\n</html>\n");
    if (st != CVIS_OK) {
        cvis__buf_free(&page);
        return st;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        cvis__buf_free(&page);
        return cvis__fail(CVIS_E_IO, "cannot create '%s'", path);
    }
    int bad = fwrite(page.data, 1, page.len, f) != page.len;
    bad |= fclose(f) != 0;
    cvis__buf_free(&page);
    if (bad)
        return cvis__fail(CVIS_E_IO, "writing '%s' failed", path);
    return CVIS_OK;
}
