/* Text drawing over an image with stb_easy_font.  The font describes each
 * glyph as axis-aligned rectangles (quads) in a 12-pixel line; we fill
 * them, scaled, straight into the pixels. */
#include "font.h"

#include <string.h>

#include "core/error.h"
#include "image.h"

#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-braces"
#endif
#include <stb_easy_font.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#define MAX_SCALE 64

/* The font covers printable ASCII only; anything else (control bytes,
 * UTF-8 sequences) is shown as '?', which also keeps stb's table lookups
 * in bounds. */
static char printable(char c)
{
    unsigned char u = (unsigned char)c;
    return u >= 32 && u <= 126 ? c : '?';
}

static int glyph_advance(char c)
{
    char s[2] = {printable(c), 0};
    return stb_easy_font_width(s);
}

int cvis__text_width_n(const char *text, int n, int scale)
{
    int w = 0;
    for (int i = 0; i < n && text[i]; i++)
        w += glyph_advance(text[i]);
    return w * scale;
}

int cvis__text_width(const char *text, int scale)
{
    int best = 0, line = 0;
    for (; *text; text++) {
        if (*text == '\n') {
            line = 0;
            continue;
        }
        line += glyph_advance(*text);
        best = line > best ? line : best;
    }
    return best * scale;
}

static void put_pixel(cvis_image *img, int64_t x, int64_t y, const uint8_t rgb[3])
{
    uint8_t *p = img->data + (y * img->width + x) * img->channels;
    if (img->channels == 1) {
        p[0] = (uint8_t)((299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2] + 500) / 1000);
        return;
    }
    p[0] = rgb[0];
    p[1] = rgb[1];
    p[2] = rgb[2];
    if (img->channels == 4)
        p[3] = 255;
}

static void fill_rect(cvis_image *img, int64_t x0, int64_t y0, int64_t x1, int64_t y1,
                      const uint8_t rgb[3])
{
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > img->width ? img->width : x1;
    y1 = y1 > img->height ? img->height : y1;
    for (int64_t y = y0; y < y1; y++)
        for (int64_t x = x0; x < x1; x++)
            put_pixel(img, x, y, rgb);
}

/* One vertex of stb_easy_font's output: x, y, z, then 4 color bytes. */
typedef struct font_vertex {
    float x, y, z;
    unsigned char color[4];
} font_vertex;

void cvis__draw_text(cvis_image *img, int x, int y, const char *text, int scale,
                     const uint8_t rgb[3])
{
    int64_t pen_x = x, pen_y = y;
    font_vertex quads[4 * 64]; /* a glyph has far fewer than 64 quads */
    for (; *text; text++) {
        if (*text == '\n') {
            pen_x = x;
            pen_y += (int64_t)CVIS__FONT_LINE_HEIGHT * scale;
            continue;
        }
        char s[2] = {printable(*text), 0};
        int n = stb_easy_font_print(0, 0, s, NULL, quads, (int)sizeof quads);
        for (int q = 0; q < n; q++) {
            const font_vertex *a = &quads[4 * q], *c = &quads[4 * q + 2];
            fill_rect(img, pen_x + (int64_t)(a->x * scale), pen_y + (int64_t)(a->y * scale),
                      pen_x + (int64_t)(c->x * scale), pen_y + (int64_t)(c->y * scale), rgb);
        }
        pen_x += (int64_t)glyph_advance(*text) * scale;
    }
}

CVIS_API cvis_status cvis_image_draw_text(cvis_image *img, int x, int y, const char *text,
                                          int scale, uint32_t rgb)
{
    CVIS_TRY(cvis__image_check(img, "image"));
    CVIS_CHECK_ARG(text, "text is NULL");
    if (scale < 1 || scale > MAX_SCALE)
        return cvis__fail(CVIS_E_INVALID_ARG, "text scale %d outside 1..%d", scale, MAX_SCALE);
    if (rgb > 0xFFFFFFu)
        return cvis__fail(CVIS_E_INVALID_ARG, "color 0x%X is not 0xRRGGBB", (unsigned)rgb);
    uint8_t c[3] = {(uint8_t)(rgb >> 16), (uint8_t)(rgb >> 8), (uint8_t)rgb};
    cvis__draw_text(img, x, y, text, scale, c);
    return CVIS_OK;
}

CVIS_API int cvis_text_width(const char *text, int scale)
{
    if (!text || scale < 1 || scale > MAX_SCALE)
        return 0;
    return cvis__text_width(text, scale);
}
