/* Pictures out: colormap values, the overlay blend, text, the grid's
 * layout and the HTML report.  With CVIS_RENDER_OUT set to a folder, the
 * pictures are also kept there to be looked at. */
#include <stdint.h>
#include <unistd.h>

#include "check.h"

static char dir[128];
static int keep;

static const char *path_of(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static int rgb_is(const cvis_image *img, int x, int y, int r, int g, int b)
{
    const uint8_t *p = cvis_image_data(img) + ((size_t)y * cvis_image_width(img) + x) * 3;
    if (p[0] == r && p[1] == g && p[2] == b)
        return 1;
    fprintf(stderr, "pixel (%d,%d) = (%d,%d,%d), expected (%d,%d,%d)\n", x, y, p[0], p[1], p[2],
            r, g, b);
    return 0;
}

static void test_colormaps(void)
{
    /* Values 0, 0.5, 1.  Expected colors: jet by hand from its definition
     * (blue at 0.5 at the start, dark red at the end; at 0.5 the table
     * entry is 128, x = 128/255); viridis and inferno are their published
     * hex values #440154 #21918c #fde725 and #000004 #bc3754 #fcffa4. */
    const float map[3] = {0.0f, 0.5f, 1.0f};
    static const int want[4][3][3] = {
        {{0, 0, 128}, {125, 255, 122}, {128, 0, 0}},
        {{68, 1, 84}, {33, 145, 140}, {253, 231, 37}},
        {{0, 0, 4}, {188, 55, 84}, {252, 255, 164}},
        {{0, 0, 0}, {128, 128, 128}, {255, 255, 255}},
    };
    for (int c = 0; c < 4; c++) {
        cvis_image *img = NULL;
        CHECK_OK(cvis_map_to_image(map, 1, 3, (cvis_colormap)c, 0, &img));
        if (!img)
            continue;
        CHECK(cvis_image_width(img) == 3 && cvis_image_height(img) == 1 &&
              cvis_image_channels(img) == 3);
        for (int i = 0; i < 3; i++)
            CHECK(rgb_is(img, i, 0, want[c][i][0], want[c][i][1], want[c][i][2]));
        cvis_image_free(img);
    }
    /* viridis at 1/4 and 3/4: #3b528b and #5ec962 */
    const float quarters[2] = {0.25f, 0.75f};
    cvis_image *img = NULL;
    CHECK_OK(cvis_map_to_image(quarters, 1, 2, CVIS_CMAP_VIRIDIS, 0, &img));
    if (img) {
        CHECK(rgb_is(img, 0, 0, 0x3b, 0x52, 0x8b));
        CHECK(rgb_is(img, 1, 0, 0x5e, 0xc9, 0x62));
    }
    cvis_image_free(img);

    /* Out of range values are clipped; normalize maps min..max to 0..1. */
    const float wide[4] = {-5.0f, 2.0f, 4.0f, 6.0f};
    img = NULL;
    CHECK_OK(cvis_map_to_image(wide, 2, 2, CVIS_CMAP_JET, 0, &img));
    if (img) {
        CHECK(rgb_is(img, 0, 0, 0, 0, 128));
        CHECK(rgb_is(img, 1, 1, 128, 0, 0));
    }
    cvis_image_free(img);
    const float shifted[3] = {2.0f, 4.0f, 6.0f};
    img = NULL;
    CHECK_OK(cvis_map_to_image(shifted, 3, 1, CVIS_CMAP_JET, 1, &img));
    if (img) {
        CHECK(cvis_image_width(img) == 1 && cvis_image_height(img) == 3);
        CHECK(rgb_is(img, 0, 0, 0, 0, 128));
        CHECK(rgb_is(img, 0, 1, 125, 255, 122));
        CHECK(rgb_is(img, 0, 2, 128, 0, 0));
    }
    cvis_image_free(img);
    const float flat[2] = {3.0f, 3.0f};
    img = NULL;
    CHECK_OK(cvis_map_to_image(flat, 1, 2, CVIS_CMAP_GRAY, 1, &img));
    CHECK(img && rgb_is(img, 1, 0, 0, 0, 0)); /* constant map: zeros, not NaN */
    cvis_image_free(img);

    const float bad[2] = {0.0f, NAN};
    img = NULL;
    CHECK_STATUS(cvis_map_to_image(bad, 1, 2, CVIS_CMAP_JET, 1, &img), CVIS_E_NONFINITE);
    CHECK_STATUS(cvis_map_to_image(map, 1, 3, (cvis_colormap)7, 0, &img), CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_map_to_image(map, 0, 3, CVIS_CMAP_JET, 0, &img), CVIS_E_INVALID_ARG);
    CHECK(img == NULL);

    /* A jet colorbar to look at: 256 x 32, left (0) to right (1). */
    static float bar[32][256];
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 256; x++)
            bar[y][x] = x / 255.0f;
    for (int c = 0; c < 4; c++) {
        img = NULL;
        CHECK_OK(cvis_map_to_image(&bar[0][0], 32, 256, (cvis_colormap)c, 0, &img));
        char name[32];
        snprintf(name, sizeof name, "colorbar_%d.png", c);
        if (img)
            CHECK_OK(cvis_image_save_png(img, path_of(name)));
        cvis_image_free(img);
    }
}

/* A base picture with structure: a gradient with a dark disc. */
static cvis_image *make_scene(int w, int h)
{
    cvis_image *img = NULL;
    if (cvis_image_new(w, h, 3, &img) != CVIS_OK)
        return NULL;
    uint8_t *d = cvis_image_data(img);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = d + ((size_t)y * w + x) * 3;
            double dx = x - w * 0.6, dy = y - h * 0.45;
            int in = dx * dx + dy * dy < (w * 0.2) * (w * 0.2);
            p[0] = (uint8_t)(in ? 40 : 90 + 120 * x / w);
            p[1] = (uint8_t)(in ? 30 : 140 + 80 * y / h);
            p[2] = (uint8_t)(in ? 20 : 200);
        }
    return img;
}

static void test_overlay(void)
{
    cvis_image *base = NULL, *out = NULL;
    CHECK_OK(cvis_image_new(3, 2, 3, &base));
    if (!base)
        return;
    uint8_t *d = cvis_image_data(base);
    for (int i = 0; i < 6; i++) {
        d[3 * i] = 200;
        d[3 * i + 1] = 100;
        d[3 * i + 2] = 0;
    }
    /* A 2x2 map [0 1; 0 1] resized to 3 wide: the middle column samples 0.5. */
    const float map[4] = {0.0f, 1.0f, 0.0f, 1.0f};
    CHECK_OK(cvis_image_overlay(base, map, 2, 2, CVIS_CMAP_JET, 0.5f, &out));
    if (out) {
        /* 0.5 * (200,100,0) + 0.5 * jet: jet(0) = (0,0,128), jet(0.5) =
         * (125,255,122), jet(1) = (128,0,0); halves rounded up */
        CHECK(rgb_is(out, 0, 0, 100, 50, 64));
        CHECK(rgb_is(out, 1, 1, 163, 178, 61));
        CHECK(rgb_is(out, 2, 0, 164, 50, 0));
    }
    cvis_image_free(out);
    out = NULL;
    /* alpha 0 is the base, alpha 1 the heatmap */
    CHECK_OK(cvis_image_overlay(base, map, 2, 2, CVIS_CMAP_JET, 0.0f, &out));
    CHECK(out && rgb_is(out, 1, 0, 200, 100, 0));
    cvis_image_free(out);
    out = NULL;
    CHECK_OK(cvis_image_overlay(base, map, 2, 2, CVIS_CMAP_VIRIDIS, 1.0f, &out));
    CHECK(out && rgb_is(out, 0, 1, 68, 1, 84));
    cvis_image_free(out);
    out = NULL;
    CHECK_STATUS(cvis_image_overlay(base, map, 2, 2, CVIS_CMAP_JET, 1.5f, &out),
                 CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_image_overlay(NULL, map, 2, 2, CVIS_CMAP_JET, 0.5f, &out),
                 CVIS_E_INVALID_ARG);
    CHECK(out == NULL);
    cvis_image_free(base);

    /* A picture to look at: a blob-shaped map over the scene. */
    base = make_scene(160, 120);
    static float cam[12][16];
    for (int y = 0; y < 12; y++)
        for (int x = 0; x < 16; x++) {
            double dx = (x - 9.5) / 4.0, dy = (y - 5.0) / 3.0;
            cam[y][x] = (float)exp(-(dx * dx + dy * dy));
        }
    out = NULL;
    CHECK_OK(cvis_image_overlay(base, &cam[0][0], 12, 16, CVIS_CMAP_JET, 0.5f, &out));
    if (out) {
        CHECK(cvis_image_width(out) == 160 && cvis_image_height(out) == 120);
        CHECK_OK(cvis_image_save_png(out, path_of("overlay.png")));
    }
    cvis_image_free(out);
    CHECK_OK(cvis_image_save_png(base, path_of("scene.png")));
    cvis_image_free(base);
}

static void test_text(void)
{
    cvis_image *img = NULL;
    CHECK_OK(cvis_image_new(40, 30, 3, &img));
    if (!img)
        return;
    memset(cvis_image_data(img), 255, 40 * 30 * 3);
    CHECK_OK(cvis_image_draw_text(img, 2, 2, "Hi", 2, 0x000000));
    int dark = 0, dark_outside = 0;
    for (int y = 0; y < 30; y++)
        for (int x = 0; x < 40; x++) {
            int black = cvis_image_data(img)[(y * 40 + x) * 3] == 0;
            int inside = x >= 2 && x < 2 + cvis_text_width("Hi", 2) && y >= 2 && y < 2 + 24;
            dark += black;
            dark_outside += black && !inside;
        }
    CHECK(dark > 20);
    CHECK(dark_outside == 0);
    CHECK(cvis_text_width("Hi", 2) == 2 * cvis_text_width("Hi", 1));
    CHECK(cvis_text_width("ab\nabc", 1) == cvis_text_width("abc", 1));
    /* bytes outside ASCII are drawn as '?', text past the edge is clipped */
    CHECK_OK(cvis_image_draw_text(img, 30, 25, "\xc3\xa9t\xe9\x01", 3, 0xFF0000));
    CHECK_OK(cvis_image_draw_text(img, -100, -100, "clipped", 1, 0));
    CHECK(cvis_text_width("\xc3\xa9", 1) == cvis_text_width("??", 1));
    CHECK_STATUS(cvis_image_draw_text(img, 0, 0, "x", 0, 0), CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_image_draw_text(img, 0, 0, "x", 1, 0x1000000), CVIS_E_INVALID_ARG);
    cvis_image_free(img);
}

static int dark_pixels(const cvis_image *img, int x0, int y0, int x1, int y1)
{
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            const uint8_t *p = cvis_image_data(img) + ((size_t)y * cvis_image_width(img) + x) * 3;
            n += p[0] < 80 && p[1] < 80 && p[2] < 80;
        }
    return n;
}

static void test_grid(void)
{
    /* Filters as rows by input channels: 2 filters x 3 channels of 7x7,
     * in 56x56 cells (each filter pixel becomes an 8x8 block). */
    cvis_grid *g = NULL;
    CHECK_OK(cvis_grid_new(2, 3, 56, 56, &g));
    if (!g)
        return;
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 3; c++) {
            cvis_image *f = NULL;
            CHECK_OK(cvis_image_new(7, 7, 1, &f));
            if (!f)
                continue;
            for (int i = 0; i < 49; i++)
                cvis_image_data(f)[i] = (uint8_t)(((i * 37 + r * 11 + c * 23) % 256));
            char title[32];
            snprintf(title, sizeof title, "f%d c%d", r, c);
            CHECK_OK(cvis_grid_set(g, r, c, f, title));
            cvis_image_free(f);
        }
    CHECK_OK(cvis_grid_set_caption(g, "Filters of conv2d: rows are filters, columns input "
                                      "channels (min-max over the layer)."));
    cvis_image *img = NULL;
    CHECK_OK(cvis_grid_render(g, &img));
    if (img) {
        /* width: 2 * 10 margin + 3 * 56 + 2 * 8 gap = 204.  "f0 c0" is too
         * wide for 56 pixels at scale 2, so titles take two lines: a band
         * of 2 * 24 + 2.  height: margins 20, 2 rows of (50 + 56) + 8 gap,
         * then 8 + 24 per caption line. */
        const int row_h = 50 + 56, cells_h = 20 + 2 * row_h + 8;
        int lines = (cvis_image_height(img) - cells_h - 8) / 24;
        CHECK(cvis_image_width(img) == 204);
        CHECK(lines >= 2 && cvis_image_height(img) == cells_h + 8 + 24 * lines);
        CHECK(rgb_is(img, 0, 0, 255, 255, 255)); /* white background */
        /* a title is drawn in dark ink in the band above the first cell,
         * on two lines */
        CHECK(dark_pixels(img, 10, 10, 66, 34) > 10);
        CHECK(dark_pixels(img, 10, 34, 66, 60) > 10);
        /* the cell holds the filter scaled 8x with nearest neighbour: the
         * filter's pixel (3,3) covers cell pixels 24..31 */
        int v = (3 * 7 + 3) * 37 % 256;
        CHECK(rgb_is(img, 10 + 24, 60 + 24, v, v, v));
        CHECK(rgb_is(img, 10 + 31, 60 + 31, v, v, v));
        /* the caption is below the cells */
        CHECK(dark_pixels(img, 10, cells_h, 194, cvis_image_height(img)) > 50);
        CHECK_OK(cvis_image_save_png(img, path_of("filters_grid.png")));
    }
    cvis_image_free(img);
    CHECK_STATUS(cvis_grid_set(g, 2, 0, NULL, NULL), CVIS_E_INVALID_ARG);
    cvis_image *one = NULL;
    CHECK_OK(cvis_image_new(2, 2, 3, &one));
    CHECK_STATUS(cvis_grid_set(g, 2, 0, one, NULL), CVIS_E_RANGE);
    cvis_grid_free(g);

    /* Without titles or caption there is no text band; a large image is
     * shrunk to fit, aspect kept; a long title is shortened to fit. */
    g = NULL;
    CHECK_OK(cvis_grid_new(1, 2, 40, 30, &g));
    if (g) {
        cvis_image *wide = NULL;
        CHECK_OK(cvis_image_new(200, 50, 3, &wide));
        if (wide) {
            memset(cvis_image_data(wide), 0, 200 * 50 * 3);
            CHECK_OK(cvis_grid_set(g, 0, 0, wide, NULL));
        }
        img = NULL;
        CHECK_OK(cvis_grid_render(g, &img));
        if (img) {
            CHECK(cvis_image_width(img) == 20 + 80 + 8 && cvis_image_height(img) == 20 + 30);
            /* 200x50 -> 40x10, centred vertically in the 30-pixel cell */
            CHECK(rgb_is(img, 10, 10 + 10, 0, 0, 0));
            CHECK(rgb_is(img, 10, 10 + 9, 255, 255, 255));
            CHECK(rgb_is(img, 60, 20, 255, 255, 255)); /* empty cell stays white */
        }
        cvis_image_free(img);
        CHECK_OK(cvis_grid_set(g, 0, 1, one, "a title far too long for the cell"));
        img = NULL;
        CHECK_OK(cvis_grid_render(g, &img));
        CHECK(img && cvis_image_height(img) == 20 + 26 + 30);
        cvis_image_free(img);
        cvis_image_free(wide);
    }
    cvis_image_free(one);
    cvis_grid_free(g);
    cvis_grid_free(NULL);
    CHECK_STATUS(cvis_grid_new(0, 2, 10, 10, &g), CVIS_E_INVALID_ARG);

    /* Feature maps 2x4 with viridis, and one panel per method. */
    g = NULL;
    CHECK_OK(cvis_grid_new(2, 4, 96, 96, &g));
    for (int k = 0; g && k < 8; k++) {
        static float fm[24][24];
        for (int y = 0; y < 24; y++)
            for (int x = 0; x < 24; x++)
                fm[y][x] = (float)(sin(x * 0.3 * (k + 1) / 3.0) * cos(y * 0.25 * (8 - k) / 3.0));
        cvis_image *m = NULL;
        CHECK_OK(cvis_map_to_image(&fm[0][0], 24, 24, CVIS_CMAP_VIRIDIS, 1, &m));
        char title[32];
        snprintf(title, sizeof title, "map %d", k);
        if (m)
            CHECK_OK(cvis_grid_set(g, k / 4, k % 4, m, title));
        cvis_image_free(m);
    }
    CHECK_OK(cvis_grid_set_caption(g, "Feature maps of block1_conv2 (2 x 4)."));
    img = NULL;
    CHECK_OK(cvis_grid_render(g, &img));
    if (img)
        CHECK_OK(cvis_image_save_png(img, path_of("feature_maps.png")));
    cvis_image_free(img);
    cvis_grid_free(g);
}

/* One panel per image and method, the class name as title: overlays of
 * three maps on the scene with three colormaps. */
static void test_method_panels(void)
{
    cvis_image *scene = make_scene(128, 128);
    cvis_grid *g = NULL;
    CHECK_OK(cvis_grid_new(1, 3, 128, 128, &g));
    const char *titles[3] = {"Goldfish", "Bear", "Assault rifle"};
    const cvis_colormap maps[3] = {CVIS_CMAP_JET, CVIS_CMAP_VIRIDIS, CVIS_CMAP_INFERNO};
    for (int k = 0; g && scene && k < 3; k++) {
        static float cam[8][8];
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) {
                double dx = x - (2.0 + 2.0 * k), dy = y - (5.0 - 1.5 * k);
                cam[y][x] = (float)exp(-(dx * dx + dy * dy) / 4.0);
            }
        cvis_image *o = NULL;
        CHECK_OK(cvis_image_overlay(scene, &cam[0][0], 8, 8, maps[k], 0.5f, &o));
        if (o)
            CHECK_OK(cvis_grid_set(g, 0, k, o, titles[k]));
        cvis_image_free(o);
    }
    CHECK_OK(cvis_grid_set_caption(g, "Grad-CAM (jet), Grad-CAM++ (viridis), Score-CAM "
                                      "(inferno), alpha 0.5."));
    cvis_image *pic = NULL;
    CHECK_OK(cvis_grid_render(g, &pic));
    if (pic) {
        CHECK(cvis_image_width(pic) == 20 + 3 * 128 + 2 * 8);
        CHECK_OK(cvis_image_save_png(pic, path_of("methods.png")));
    }
    cvis_image_free(pic);
    cvis_grid_free(g);
    cvis_image_free(scene);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    s[fread(s, 1, (size_t)n, f)] = 0;
    fclose(f);
    return s;
}

static void test_report(void)
{
    cvis_report *r = NULL;
    CHECK_OK(cvis_report_new("Run <1> & \"friends\"", &r));
    if (!r)
        return;
    CHECK_OK(cvis_report_add_section(r, "Filters", "First paragraph.\nSecond line.\n\nNext <b>."));
    CHECK_OK(cvis_report_add_image(r, "filters_grid.png", "Filters of the first layer"));
    CHECK_OK(cvis_report_add_image(r, "overlay.png", "Grad-CAM over the scene <script>x</script>"));
    CHECK_OK(cvis_report_add_image(r, "feature_maps.png", "Feature maps"));
    CHECK_OK(cvis_report_add_image(r, "methods.png", "One panel per image and method"));
    CHECK_OK(cvis_report_add_image(r, "colorbar_0.png", "jet"));
    CHECK_OK(cvis_report_add_image(r, "sub dir/a#b.png", "odd name"));
    cvis_image *tiny = NULL;
    CHECK_OK(cvis_image_new(4, 4, 3, &tiny));
    CHECK_OK(cvis_report_add_image_inline(r, tiny, "embedded"));
    cvis_image_free(tiny);
    const char *cells[] = {"class", "score", "goldfish", "0.93", "<tench>", NULL};
    CHECK_OK(cvis_report_add_table(r, 3, 2, cells));
    CHECK_STATUS(cvis_report_add_image(r, "http://example.com/x.png", "x"), CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_report_add_image(r, "/etc/x.png", "x"), CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_report_add_image(r, "a/../../x.png", "x"), CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_report_add_image(r, "javascript:alert(1)", "x"), CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_report_add_table(r, 0, 2, cells), CVIS_E_INVALID_ARG);
    CHECK_OK(cvis_report_save(r, path_of("index.html")));
    CHECK_STATUS(cvis_report_save(r, "/nonexistent-dir/index.html"), CVIS_E_IO);
    cvis_report_free(r);
    cvis_report_free(NULL);

    char *html = read_text(path_of("index.html"));
    CHECK(html != NULL);
    if (!html)
        return;
    CHECK(strstr(html, "<title>Run &lt;1&gt; &amp; &quot;friends&quot;</title>") != NULL);
    CHECK(strstr(html, "<script") == NULL); /* caller text is escaped; no script of ours */
    CHECK(strstr(html, "&lt;script&gt;x&lt;/script&gt;") != NULL);
    CHECK(strstr(html, "<p>First paragraph.<br>Second line.</p>") != NULL);
    CHECK(strstr(html, "<p>Next &lt;b&gt;.</p>") != NULL);
    CHECK(strstr(html, "src=\"filters_grid.png\"") != NULL);
    CHECK(strstr(html, "src=\"sub%20dir/a%23b.png\"") != NULL);
    CHECK(strstr(html, "src=\"data:image/png;base64,iVBORw0KGgo") != NULL);
    CHECK(strstr(html, "<th>class</th><th>score</th>") != NULL);
    CHECK(strstr(html, "<td>&lt;tench&gt;</td><td></td>") != NULL);
    CHECK(strstr(html, "http://") == NULL && strstr(html, "https://") == NULL);
    CHECK(strstr(html, "example.com") == NULL);
    free(html);
}

TEST_MAIN({
    const char *out = getenv("CVIS_RENDER_OUT");
    if (out && *out) {
        snprintf(dir, sizeof dir, "%s", out);
        keep = 1;
    } else {
        snprintf(dir, sizeof dir, "/tmp/cvis_render_XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    test_colormaps();
    test_overlay();
    test_text();
    test_grid();
    test_method_panels();
    test_report();
    if (!keep) {
        char cmd[192];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
})
