/* A grid of pictures with titles above the cells and a caption below, on
 * white: the layout of the filter, feature-map and method-comparison
 * figures. */
#include <string.h>

#include "buffer.h"
#include "core/alloc.h"
#include "core/error.h"
#include "font.h"
#include "image.h"

#define MARGIN 10     /* around the whole picture */
#define GAP 8         /* between cells */
#define TEXT_SCALE 2  /* the 12-pixel font is too small to read unscaled */
#define MAX_CELLS (1 << 20)

static const uint8_t ink[3] = {20, 20, 20};

struct cvis_grid {
    int rows, cols, cell_w, cell_h;
    cvis_image **cells; /* rows*cols, RGB, already fitted to the cell; NULL = empty */
    char **titles;      /* rows*cols, NULL = none */
    char *caption;
};

CVIS_API cvis_status cvis_grid_new(int rows, int cols, int cell_width, int cell_height,
                                   cvis_grid **out)
{
    CVIS_CHECK_ARG(out, "out is NULL");
    if (rows < 1 || cols < 1 || (int64_t)rows * cols > MAX_CELLS)
        return cvis__fail(CVIS_E_INVALID_ARG, "grid of %d x %d cells: need 1 to %d cells", rows,
                          cols, MAX_CELLS);
    if (cell_width < 1 || cell_height < 1)
        return cvis__fail(CVIS_E_INVALID_ARG, "grid cells of %d x %d pixels", cell_width,
                          cell_height);
    cvis_grid *g = cvis__calloc(1, sizeof *g);
    size_t n = (size_t)rows * cols;
    if (g) {
        g->cells = cvis__calloc(n, sizeof *g->cells);
        g->titles = cvis__calloc(n, sizeof *g->titles);
    }
    if (!g || !g->cells || !g->titles) {
        cvis_grid_free(g);
        return cvis__fail(CVIS_E_NOMEM, "out of memory allocating a grid");
    }
    g->rows = rows;
    g->cols = cols;
    g->cell_w = cell_width;
    g->cell_h = cell_height;
    *out = g;
    return CVIS_OK;
}

CVIS_API void cvis_grid_free(cvis_grid *g)
{
    if (!g)
        return;
    size_t n = (size_t)g->rows * g->cols;
    for (size_t i = 0; g->cells && i < n; i++)
        cvis_image_free(g->cells[i]);
    for (size_t i = 0; g->titles && i < n; i++)
        cvis__free(g->titles[i]);
    cvis__free(g->cells);
    cvis__free(g->titles);
    cvis__free(g->caption);
    cvis__free(g);
}

/* img scaled to fit w x h with its aspect kept: nearest neighbour when
 * enlarging (crisp pixels), averaging when shrinking; then RGB. */
static cvis_status fit_to_cell(const cvis_image *img, int w, int h, cvis_image **out)
{
    double f = (double)w / img->width;
    if ((double)h / img->height < f)
        f = (double)h / img->height;
    int tw = (int)(img->width * f + 0.5), th = (int)(img->height * f + 0.5);
    tw = tw < 1 ? 1 : tw > w ? w : tw;
    th = th < 1 ? 1 : th > h ? h : th;
    cvis_image *sized = NULL;
    if (tw != img->width || th != img->height)
        CVIS_TRY(cvis_image_resize(img, tw, th, f >= 1 ? CVIS_RESIZE_NEAREST : CVIS_RESIZE_BILINEAR,
                                   &sized));
    cvis_status st = cvis__image_to_rgb(sized ? sized : img, 1, out);
    cvis_image_free(sized);
    return st;
}

static cvis_status replace_string(char **slot, const char *text)
{
    char *copy = NULL;
    if (text && *text) {
        copy = cvis__strdup(text);
        if (!copy)
            return cvis__fail(CVIS_E_NOMEM, "out of memory copying a title");
    }
    cvis__free(*slot);
    *slot = copy;
    return CVIS_OK;
}

CVIS_API cvis_status cvis_grid_set(cvis_grid *g, int row, int col, const cvis_image *img,
                                   const char *title)
{
    CVIS_CHECK_ARG(g, "grid is NULL");
    CVIS_TRY(cvis__image_check(img, "image"));
    if (row < 0 || row >= g->rows || col < 0 || col >= g->cols)
        return cvis__fail(CVIS_E_RANGE, "cell (%d, %d) outside a grid of %d x %d", row, col,
                          g->rows, g->cols);
    cvis_image *fitted;
    CVIS_TRY(fit_to_cell(img, g->cell_w, g->cell_h, &fitted));
    int k = row * g->cols + col;
    cvis_status st = replace_string(&g->titles[k], title);
    if (st != CVIS_OK) {
        cvis_image_free(fitted);
        return st;
    }
    cvis_image_free(g->cells[k]);
    g->cells[k] = fitted;
    return CVIS_OK;
}

CVIS_API cvis_status cvis_grid_set_caption(cvis_grid *g, const char *text)
{
    CVIS_CHECK_ARG(g, "grid is NULL");
    return replace_string(&g->caption, text);
}

/* Breaks text into lines no wider than max_w pixels (at TEXT_SCALE), at
 * spaces where possible; '\n' is kept.  The lines go to `out`, joined by
 * '\n'; *n_lines receives their count. */
static cvis_status wrap_text(const char *text, int max_w, cvis__buf *out, int *n_lines)
{
    int lines = 1, line_w = 0;
    const char *p = text;
    while (*p) {
        if (*p == '\n') {
            CVIS_TRY(cvis__buf_puts(out, "\n"));
            lines++;
            line_w = 0;
            p++;
            continue;
        }
        if (*p == ' ') {
            int sw = cvis__text_width_n(" ", 1, TEXT_SCALE);
            if (line_w > 0 && line_w + sw <= max_w) {
                CVIS_TRY(cvis__buf_puts(out, " "));
                line_w += sw;
            }
            p++;
            continue;
        }
        int len = (int)strcspn(p, " \n");
        int ww = cvis__text_width_n(p, len, TEXT_SCALE);
        if (line_w > 0 && line_w + ww > max_w) {
            /* drop the space that ended the previous line */
            if (out->len && out->data[out->len - 1] == ' ')
                out->len--;
            CVIS_TRY(cvis__buf_puts(out, "\n"));
            lines++;
            line_w = 0;
        }
        /* a word wider than a whole line is broken between characters */
        for (int i = 0; i < len; i++) {
            int cw = cvis__text_width_n(p + i, 1, TEXT_SCALE);
            if (line_w > 0 && line_w + cw > max_w) {
                CVIS_TRY(cvis__buf_puts(out, "\n"));
                lines++;
                line_w = 0;
            }
            CVIS_TRY(cvis__buf_append(out, p + i, 1));
            line_w += cw;
        }
        p += len;
    }
    *n_lines = lines;
    return CVIS_OK;
}

/* How a title sits in a cell w pixels wide: one line at TEXT_SCALE if it
 * fits; else two lines at TEXT_SCALE, broken at the space that balances
 * them best, if both fit; else one line at scale 1, shortened with ".."
 * if need be. */
typedef struct title_layout {
    int scale;
    int split; /* index of the space that ends the first line, or -1 */
    int lines;
} title_layout;

static title_layout layout_title(const char *t, int w)
{
    title_layout L = {TEXT_SCALE, -1, 1};
    if (cvis__text_width(t, TEXT_SCALE) <= w)
        return L;
    int best_w = w + 1;
    for (int i = 0; t[i]; i++) {
        if (t[i] != ' ')
            continue;
        int a = cvis__text_width_n(t, i, TEXT_SCALE), b = cvis__text_width(t + i + 1, TEXT_SCALE);
        int widest = a > b ? a : b;
        if (widest < best_w) {
            best_w = widest;
            L.split = i;
        }
    }
    if (L.split >= 0) {
        L.lines = 2;
        return L;
    }
    L.scale = 1;
    return L;
}

/* A copy of a title on one line ('\n' read as a space).  Caller frees. */
static char *flat_title(const char *title)
{
    size_t n = strlen(title);
    char *t = cvis__malloc(n + 3); /* room to shorten it with ".." */
    if (!t)
        return NULL;
    memcpy(t, title, n + 1);
    for (char *c = t; *c; c++)
        if (*c == '\n')
            *c = ' ';
    return t;
}

static void draw_centred(cvis_image *img, int x, int y, int w, const char *text, int scale)
{
    cvis__draw_text(img, x + (w - cvis__text_width(text, scale)) / 2, y, text, scale, ink);
}

/* Draws a title over [x, x + w), its last line ending at the band's
 * bottom (y_bottom), just above the picture. */
static cvis_status draw_title(cvis_image *img, int x, int y_bottom, int w, const char *title)
{
    char *t = flat_title(title);
    if (!t)
        return cvis__fail(CVIS_E_NOMEM, "out of memory drawing a title");
    title_layout L = layout_title(t, w);
    int line_h = CVIS__FONT_LINE_HEIGHT * L.scale;
    int y = y_bottom - L.lines * line_h;
    if (L.lines == 2) {
        t[L.split] = 0;
        draw_centred(img, x, y, w, t, L.scale);
        draw_centred(img, x, y + line_h, w, t + L.split + 1, L.scale);
    } else {
        if (cvis__text_width(t, L.scale) > w) {
            int dots = cvis__text_width("..", L.scale), k = (int)strlen(t);
            while (k > 0 && cvis__text_width_n(t, k, L.scale) + dots > w)
                k--;
            memcpy(t + k, "..", 3);
        }
        draw_centred(img, x, y, w, t, L.scale);
    }
    cvis__free(t);
    return CVIS_OK;
}

CVIS_API cvis_status cvis_grid_render(const cvis_grid *g, cvis_image **out)
{
    CVIS_CHECK_ARG(g, "grid is NULL");
    CVIS_CHECK_ARG(out, "out is NULL");
    /* the title band is as tall as the tallest title needs */
    int n = g->rows * g->cols, title_lines = 0;
    for (int i = 0; i < n; i++) {
        if (!g->titles[i])
            continue;
        char *t = flat_title(g->titles[i]);
        if (!t)
            return cvis__fail(CVIS_E_NOMEM, "out of memory laying out titles");
        int lines = layout_title(t, g->cell_w).lines;
        title_lines = lines > title_lines ? lines : title_lines;
        cvis__free(t);
    }
    int64_t title_h = title_lines ? (int64_t)title_lines * CVIS__FONT_LINE_HEIGHT * TEXT_SCALE + 2 : 0;
    int64_t W = 2 * MARGIN + (int64_t)g->cols * g->cell_w + (int64_t)(g->cols - 1) * GAP;
    int64_t H = 2 * MARGIN + (int64_t)g->rows * (title_h + g->cell_h) + (int64_t)(g->rows - 1) * GAP;
    cvis__buf caption = {0};
    int caption_lines = 0;
    if (g->caption) {
        int max_w = (int)(W > INT32_MAX ? INT32_MAX : W) - 2 * MARGIN;
        cvis_status st = wrap_text(g->caption, max_w, &caption, &caption_lines);
        if (st != CVIS_OK) {
            cvis__buf_free(&caption);
            return st;
        }
        H += GAP + (int64_t)caption_lines * CVIS__FONT_LINE_HEIGHT * TEXT_SCALE;
    }
    if (W > INT32_MAX || H > INT32_MAX) {
        cvis__buf_free(&caption);
        return cvis__fail(CVIS_E_LIMIT, "grid picture of %lld x %lld pixels is too large",
                          (long long)W, (long long)H);
    }
    cvis_image *img;
    cvis_status st = cvis__image_make((int)W, (int)H, 3, 0, &img);
    if (st != CVIS_OK) {
        cvis__buf_free(&caption);
        return st;
    }
    memset(img->data, 255, (size_t)W * H * 3);
    for (int r = 0; r < g->rows; r++)
        for (int c = 0; c < g->cols; c++) {
            int k = r * g->cols + c;
            int x0 = MARGIN + c * (g->cell_w + GAP);
            int y0 = MARGIN + r * (int)(title_h + g->cell_h + GAP);
            if (g->titles[k] && st == CVIS_OK)
                st = draw_title(img, x0, y0 + (int)title_h - 2, g->cell_w, g->titles[k]);
            const cvis_image *cell = g->cells[k];
            if (!cell)
                continue;
            int cx = x0 + (g->cell_w - cell->width) / 2;
            int cy = y0 + (int)title_h + (g->cell_h - cell->height) / 2;
            for (int y = 0; y < cell->height; y++)
                memcpy(img->data + ((int64_t)(cy + y) * W + cx) * 3,
                       cell->data + (int64_t)y * cell->width * 3, (size_t)cell->width * 3);
        }
    if (caption.data && st == CVIS_OK) {
        int y = (int)H - MARGIN - caption_lines * CVIS__FONT_LINE_HEIGHT * TEXT_SCALE;
        cvis__draw_text(img, MARGIN, y, caption.data, TEXT_SCALE, ink);
    }
    cvis__buf_free(&caption);
    if (st != CVIS_OK) {
        cvis_image_free(img);
        return st;
    }
    *out = img;
    return CVIS_OK;
}
