/* Images in: each format from files written here, exact pixels for the
 * lossless ones; resizing; images <-> tensors; and missing, empty,
 * truncated, corrupt and hostile files, which must fail with a message
 * and never crash, leak or allocate without bound. */
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "core/alloc.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "gif_sample.h"
#include "jpeg_samples.h"

/* The writer is compiled into the test itself: files are produced
 * independently of the library's reader. */
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb_image_write.h>

static char dir[64];

static const char *path_of(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static int write_bytes(const char *name, const void *data, size_t n)
{
    FILE *f = fopen(path_of(name), "wb");
    if (!f)
        return 0;
    size_t put = n ? fwrite(data, 1, n, f) : 0;
    fclose(f);
    return put == n;
}

static uint8_t *read_bytes(const char *name, size_t *n)
{
    FILE *f = fopen(path_of(name), "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

/* A pattern where every pixel differs: W x H x 3. */
enum { PW = 8, PH = 6 };
static uint8_t pattern[PH][PW][3];

static void make_pattern(void)
{
    for (int y = 0; y < PH; y++)
        for (int x = 0; x < PW; x++) {
            pattern[y][x][0] = (uint8_t)(x * 30 + 5);
            pattern[y][x][1] = (uint8_t)(y * 40 + 3);
            pattern[y][x][2] = (uint8_t)(255 - (x + y) * 13);
        }
}

static int same_as_pattern(const cvis_image *img)
{
    if (!img || cvis_image_width(img) != PW || cvis_image_height(img) != PH ||
        cvis_image_channels(img) != 3)
        return 0;
    return memcmp(cvis_image_data(img), pattern, sizeof pattern) == 0;
}

static void test_lossless_formats(void)
{
    CHECK(stbi_write_png(path_of("p.png"), PW, PH, 3, pattern, PW * 3));
    CHECK(stbi_write_bmp(path_of("p.bmp"), PW, PH, 3, pattern));
    stbi_write_tga_with_rle = 1;
    CHECK(stbi_write_tga(path_of("p_rle.tga"), PW, PH, 3, pattern));
    stbi_write_tga_with_rle = 0;
    CHECK(stbi_write_tga(path_of("p.tga"), PW, PH, 3, pattern));
    const char *names[] = {"p.png", "p.bmp", "p_rle.tga", "p.tga"};
    for (int i = 0; i < 4; i++) {
        cvis_image *img = NULL;
        CHECK_OK(cvis_image_load(path_of(names[i]), &img));
        if (!same_as_pattern(img))
            fprintf(stderr, "pixels differ for %s\n", names[i]);
        CHECK(same_as_pattern(img));
        cvis_image_free(img);
    }

    /* Gray becomes RGB with the value repeated; alpha is dropped. */
    uint8_t gray[2 * 3] = {0, 50, 100, 150, 200, 255};
    CHECK(stbi_write_png(path_of("g.png"), 3, 2, 1, gray, 3));
    uint8_t rgba[2 * 2 * 4] = {10, 20, 30, 0, 40, 50, 60, 128, 70, 80, 90, 255, 1, 2, 3, 4};
    CHECK(stbi_write_png(path_of("a.png"), 2, 2, 4, rgba, 8));
    cvis_image *img = NULL;
    CHECK_OK(cvis_image_load(path_of("g.png"), &img));
    if (img) {
        CHECK(cvis_image_channels(img) == 3 && cvis_image_width(img) == 3);
        const uint8_t *d = cvis_image_data(img);
        int ok = 1;
        for (int i = 0; i < 6; i++)
            ok &= d[3 * i] == gray[i] && d[3 * i + 1] == gray[i] && d[3 * i + 2] == gray[i];
        CHECK(ok);
    }
    cvis_image_free(img);
    img = NULL;
    CHECK_OK(cvis_image_load(path_of("a.png"), &img));
    if (img) {
        const uint8_t *d = cvis_image_data(img);
        int ok = 1;
        for (int i = 0; i < 4; i++)
            ok &= d[3 * i] == rgba[4 * i] && d[3 * i + 1] == rgba[4 * i + 1] &&
                  d[3 * i + 2] == rgba[4 * i + 2];
        CHECK(ok);
    }
    cvis_image_free(img);

    /* Saving and loading back through the library's own PNG writer. */
    cvis_image *mine = NULL;
    CHECK_OK(cvis_image_new(PW, PH, 3, &mine));
    if (mine) {
        memcpy(cvis_image_data(mine), pattern, sizeof pattern);
        CHECK_OK(cvis_image_save_png(mine, path_of("mine.png")));
        img = NULL;
        CHECK_OK(cvis_image_load(path_of("mine.png"), &img));
        CHECK(same_as_pattern(img));
        cvis_image_free(img);
        CHECK_STATUS(cvis_image_save_png(mine, "/nonexistent-dir/x.png"), CVIS_E_IO);
    }
    cvis_image_free(mine);
}

/* The 16 x 16 pattern that jpeg_samples.h encodes. */
static uint8_t jpeg_source(int x, int y, int c)
{
    return (uint8_t)(c == 0 ? x * 16 : c == 1 ? y * 16 : 128);
}

static void test_jpeg(void)
{
    const unsigned char *files[2] = {jpeg_baseline, jpeg_progressive};
    const size_t sizes[2] = {sizeof jpeg_baseline, sizeof jpeg_progressive};
    const char *names[2] = {"s.jpg", "s_prog.jpg"};
    for (int f = 0; f < 2; f++) {
        CHECK(write_bytes(names[f], files[f], sizes[f]));
        cvis_image *img = NULL;
        CHECK_OK(cvis_image_load(path_of(names[f]), &img));
        if (!img)
            continue;
        CHECK(cvis_image_width(img) == 16 && cvis_image_height(img) == 16);
        const uint8_t *d = cvis_image_data(img);
        double sum = 0;
        int worst = 0;
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++)
                for (int c = 0; c < 3; c++) {
                    int e = abs((int)d[(y * 16 + x) * 3 + c] - (int)jpeg_source(x, y, c));
                    sum += e;
                    worst = e > worst ? e : worst;
                }
        /* libjpeg itself reads these back at mean 1.4, max 10 */
        CHECK(sum / (16 * 16 * 3) < 3.0);
        CHECK(worst <= 16);
        cvis_image_free(img);
    }
}

static void test_gif(void)
{
    uint8_t g[128];
    size_t n = make_gif(g);
    CHECK(write_bytes("two.gif", g, n));
    cvis_image *img = NULL;
    CHECK_OK(cvis_image_load(path_of("two.gif"), &img));
    if (img) {
        const uint8_t want[12] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255};
        CHECK(cvis_image_width(img) == 2 && cvis_image_height(img) == 2);
        CHECK(memcmp(cvis_image_data(img), want, 12) == 0); /* frame 1, not frame 2 */
    }
    cvis_image_free(img);
}

/* A PNG signature and IHDR chunk declaring w x h RGB, with a valid CRC,
 * then an IDAT of a few bytes and IEND. */
static size_t make_png_header(uint8_t *b, uint32_t w, uint32_t h)
{
    static const uint8_t sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    memcpy(b, sig, 8);
    uint8_t ihdr[4 + 4 + 13] = {0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    for (int i = 0; i < 4; i++) {
        ihdr[8 + i] = (uint8_t)(w >> (24 - 8 * i));
        ihdr[12 + i] = (uint8_t)(h >> (24 - 8 * i));
    }
    ihdr[16] = 8; /* bit depth */
    ihdr[17] = 2; /* RGB */
    memcpy(b + 8, ihdr, sizeof ihdr);
    uint32_t crc = (uint32_t)crc32(0, ihdr + 4, 17);
    uint8_t *c = b + 8 + sizeof ihdr;
    for (int i = 0; i < 4; i++)
        c[i] = (uint8_t)(crc >> (24 - 8 * i));
    size_t n = 8 + sizeof ihdr + 4;
    const uint8_t idat[] = {0, 0, 0, 2, 'I', 'D', 'A', 'T', 0x78, 0x9c, 0, 0, 0, 0};
    memcpy(b + n, idat, sizeof idat);
    n += sizeof idat;
    const uint8_t iend[] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
    memcpy(b + n, iend, sizeof iend);
    return n + sizeof iend;
}

/* Decoding `data` must fail with a message, or succeed with a sane image. */
static int decode_is_safe(const uint8_t *data, size_t n, int *succeeded)
{
    cvis_image *img = NULL;
    cvis_status st = cvis_image_load_memory(data, (int64_t)n, &img);
    if (st == CVIS_OK) {
        int ok = img && cvis_image_width(img) > 0 && cvis_image_height(img) > 0;
        cvis_image_free(img);
        if (succeeded)
            (*succeeded)++;
        return ok;
    }
    return img == NULL && cvis_last_error()[0] != 0 &&
           (st == CVIS_E_FORMAT || st == CVIS_E_LIMIT);
}

static void test_bad_files(void)
{
    cvis_image *img = NULL;
    CHECK_STATUS(cvis_image_load(path_of("does-not-exist.png"), &img), CVIS_E_IO);
    CHECK(img == NULL);
    CHECK_STATUS(cvis_image_load(dir, &img), CVIS_E_IO); /* a directory */
    CHECK(write_bytes("empty.png", "", 0));
    CHECK_STATUS(cvis_image_load(path_of("empty.png"), &img), CVIS_E_FORMAT);
    CHECK_STATUS(cvis_image_load_memory("x", 0, &img), CVIS_E_FORMAT);
    CHECK_STATUS(cvis_image_load_memory("just text, not an image", 23, &img), CVIS_E_FORMAT);
    CHECK_STATUS(cvis_image_load(NULL, &img), CVIS_E_INVALID_ARG);
    CHECK(img == NULL);

    /* Truncated files at every offset. */
    const char *names[] = {"p.png", "s.jpg", "s_prog.jpg", "p.bmp", "p_rle.tga", "two.gif"};
    for (int f = 0; f < 6; f++) {
        size_t n = 0;
        uint8_t *b = read_bytes(names[f], &n);
        CHECK(b != NULL && n > 0);
        if (!b)
            continue;
        int unsafe = 0, decoded = 0;
        for (size_t cut = 0; cut < n; cut++)
            unsafe += !decode_is_safe(b, cut, &decoded);
        CHECK(unsafe == 0);
        if (f == 0) /* PNG: nothing short of the whole image data decodes */
            CHECK(decoded <= 12);
        free(b);
    }

    /* Random bytes, and random damage to each valid file.  Damage often
     * declares a large canvas (a 20-byte GIF can ask for 65535 x 8000
     * pixels, which the decoder clears); those are refused under a small
     * limit, as an application that reads small images would set it. */
    CHECK_OK(cvis_set_alloc_limit(64 << 20));
    cvis__rng rng;
    cvis__rng_seed(&rng, 12345);
    int unsafe = 0;
    uint8_t junk[512];
    for (int t = 0; t < 300; t++) {
        size_t n = (size_t)cvis__rng_int(&rng, 1, (int64_t)sizeof junk);
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)cvis__rng_u64(&rng);
        /* give a third of them a real magic number so the decoders run */
        static const char *magic[] = {"\x89PNG\r\n\x1a\n", "\xff\xd8\xff", "BM", "GIF89a"};
        if (t % 3 == 0) {
            const char *m = magic[(t / 3) % 4];
            size_t ml = strlen(m);
            if (ml <= n)
                memcpy(junk, m, ml);
        }
        unsafe += !decode_is_safe(junk, n, NULL);
    }
    for (int f = 0; f < 6; f++) {
        size_t n = 0;
        uint8_t *b = read_bytes(names[f], &n);
        if (!b)
            continue;
        uint8_t *m = malloc(n);
        for (int t = 0; t < 150; t++) {
            memcpy(m, b, n);
            int flips = (int)cvis__rng_int(&rng, 1, 4);
            for (int k = 0; k < flips; k++)
                m[cvis__rng_int(&rng, 0, (int64_t)n - 1)] = (uint8_t)cvis__rng_u64(&rng);
            unsafe += !decode_is_safe(m, n, NULL);
        }
        free(m);
        free(b);
    }
    CHECK_OK(cvis_set_alloc_limit(0));
    CHECK(unsafe == 0);
}

/* A JPEG whose Huffman table declares more than 256 codes: the stb in use
 * would write past its tables; the library must refuse it first. */
static void test_jpeg_huffman_overflow(void)
{
    uint8_t b[sizeof jpeg_baseline];
    memcpy(b, jpeg_baseline, sizeof b);
    size_t at = 0;
    for (size_t i = 2; i + 1 < sizeof b; i++)
        if (b[i] == 0xFF && b[i + 1] == 0xC4) {
            at = i;
            break;
        }
    CHECK(at > 0);
    if (!at)
        return;
    for (int k = 0; k < 16; k++)
        b[at + 5 + k] = 0xFF; /* 16 * 255 codes */
    cvis_image *img = NULL;
    CHECK_STATUS(cvis_image_load_memory(b, (int64_t)sizeof b, &img), CVIS_E_FORMAT);
    CHECK(strstr(cvis_last_error(), "Huffman") != NULL);
    CHECK(img == NULL);
    /* the same file behind fill bytes (FF FF D8: stb reads it as a JPEG) */
    uint8_t *filled = malloc(sizeof b + 3);
    CHECK(filled != NULL);
    if (filled) {
        memset(filled, 0xFF, 3);
        memcpy(filled + 3, b + 1, sizeof b - 1);
        CHECK_STATUS(cvis_image_load_memory(filled, (int64_t)sizeof b + 2, &img), CVIS_E_FORMAT);
        CHECK(strstr(cvis_last_error(), "Huffman") != NULL);
        free(filled);
    }
    /* the same count hidden after the frame header, among the scan data */
    memcpy(b, jpeg_baseline, sizeof b);
    size_t sos = 0;
    for (size_t i = 2; i + 1 < sizeof b; i++)
        if (b[i] == 0xFF && b[i + 1] == 0xDA)
            sos = i;
    CHECK(sos > 0 && sos + 40 < sizeof b);
    if (sos && sos + 40 < sizeof b) {
        size_t p = sos + 20;
        const uint8_t dht[5] = {0xFF, 0xC4, 0x00, 0x40, 0x10};
        memcpy(b + p, dht, 5);
        memset(b + p + 5, 0xFF, 16);
        CHECK(decode_is_safe(b, sizeof b, NULL));
    }
}

/* Decodes after leaving `fill` bytes in freed heap blocks of many sizes. */
static cvis_image *decode_on_dirty_heap(const uint8_t *d, size_t n, int fill)
{
    void *p[48];
    for (int i = 0; i < 48; i++) {
        size_t size = (size_t)64 << (i % 12);
        p[i] = malloc(size);
        if (p[i])
            memset(p[i], fill, size);
    }
    for (int i = 0; i < 48; i++)
        free(p[i]);
    cvis_image *img = NULL;
    return cvis_image_load_memory(d, (int64_t)n, &img) == CVIS_OK ? img : NULL;
}

/* A progressive JPEG whose second quantization table never arrives (its
 * DQT marker turned into an APP6 segment): stb reads the table it never
 * wrote.  The decoder's memory is zero-filled, so the pixels are the same
 * whatever the heap held; with plain malloc they changed with it (and
 * valgrind reported the reads). */
static void test_undefined_tables_read_as_zero(void)
{
    uint8_t b[sizeof jpeg_progressive];
    memcpy(b, jpeg_progressive, sizeof b);
    CHECK(b[89] == 0xFF && b[90] == 0xDB);
    b[90] = 0xE6;
    cvis_image *a = decode_on_dirty_heap(b, sizeof b, 0xAA);
    cvis_image *c = decode_on_dirty_heap(b, sizeof b, 0x55);
    CHECK(a && c);
    if (a && c)
        CHECK(memcmp(cvis_image_data(a), cvis_image_data(c),
                     (size_t)cvis_image_width(a) * (size_t)cvis_image_height(a) * 3) == 0);
    cvis_image_free(a);
    cvis_image_free(c);
}

static void test_hostile_headers(void)
{
    uint8_t b[128];
    cvis_image *img = NULL;
    size_t n = make_png_header(b, 100000, 100000);
    CHECK(write_bytes("huge.png", b, n));
    CHECK_STATUS(cvis_image_load(path_of("huge.png"), &img), CVIS_E_LIMIT);
    CHECK(img == NULL);
    /* within the per-side limit, but 60000^2 pixels exceed the memory limit */
    n = make_png_header(b, 60000, 60000);
    CHECK_STATUS(cvis_image_load_memory(b, (int64_t)n, &img), CVIS_E_LIMIT);
    n = make_png_header(b, 0, 10);
    CHECK_STATUS(cvis_image_load_memory(b, (int64_t)n, &img), CVIS_E_FORMAT);
    n = make_png_header(b, 0xFFFFFFFFu, 0xFFFFFFFFu);
    CHECK_STATUS(cvis_image_load_memory(b, (int64_t)n, &img), CVIS_E_LIMIT);

    /* A GIF screen of 65535 x 65535. */
    uint8_t g[128];
    size_t gn = make_gif(g);
    g[6] = g[7] = g[8] = g[9] = 0xFF;
    cvis_status st = cvis_image_load_memory(g, (int64_t)gn, &img);
    CHECK(st == CVIS_E_LIMIT || st == CVIS_E_FORMAT);
    CHECK(img == NULL);

    /* A BMP claiming 2^30 x 2^30. */
    size_t bn = 0;
    uint8_t *bmp = read_bytes("p.bmp", &bn);
    if (bmp) {
        bmp[18] = 0, bmp[19] = 0, bmp[20] = 0, bmp[21] = 0x40;
        bmp[22] = 0, bmp[23] = 0, bmp[24] = 0, bmp[25] = 0x40;
        st = cvis_image_load_memory(bmp, (int64_t)bn, &img);
        CHECK(st == CVIS_E_LIMIT || st == CVIS_E_FORMAT);
        free(bmp);
    }

    /* A modest image refused under a small allocation limit, then loaded. */
    static uint8_t big[256][256][3];
    CHECK(stbi_write_png(path_of("big.png"), 256, 256, 3, big, 256 * 3));
    CHECK_OK(cvis_set_alloc_limit(100000));
    CHECK_STATUS(cvis_image_load(path_of("big.png"), &img), CVIS_E_LIMIT);
    CHECK_OK(cvis_set_alloc_limit(0));
    CHECK_OK(cvis_image_load(path_of("big.png"), &img));
    cvis_image_free(img);
    img = NULL;

    /* Every allocation failing in turn: NOMEM each time, nothing leaked. */
    size_t pn = 0;
    uint8_t *png = read_bytes("p.png", &pn);
    int wrong = 0, k;
    for (k = 1; k < 100; k++) {
        cvis__alloc_fail_after(k);
        st = cvis_image_load_memory(png, (int64_t)pn, &img);
        cvis__alloc_fail_after(0);
        if (st == CVIS_OK) {
            wrong += !same_as_pattern(img);
            cvis_image_free(img);
            img = NULL;
            break;
        }
        wrong += st != CVIS_E_NOMEM || img != NULL;
    }
    CHECK(wrong == 0);
    CHECK(k > 2 && k < 100); /* it did allocate, and finished */
    free(png);
}

/* Loads from several threads at once, good and bad files mixed: each
 * thread must get its own results and its own error messages. */
typedef struct load_job {
    const uint8_t *png;
    size_t png_len;
    int wrong;
} load_job;

static void *load_many(void *arg)
{
    load_job *job = arg;
    for (int i = 0; i < 40; i++) {
        cvis_image *img = NULL;
        if (cvis_image_load_memory(job->png, (int64_t)job->png_len, &img) != CVIS_OK ||
            !same_as_pattern(img))
            job->wrong++;
        cvis_image_free(img);
        img = NULL;
        if (cvis_image_load_memory(jpeg_progressive, 100, &img) == CVIS_OK ||
            strstr(cvis_last_error(), "JPEG") == NULL)
            job->wrong++;
        cvis_image_free(img);
    }
    return NULL;
}

static void test_threads(void)
{
    size_t n = 0;
    uint8_t *png = read_bytes("p.png", &n);
    CHECK(png != NULL);
    if (!png)
        return;
    pthread_t t[4];
    load_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (load_job){png, n, 0};
        CHECK(pthread_create(&t[i], NULL, load_many, &jobs[i]) == 0);
    }
    int wrong = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        wrong += jobs[i].wrong;
    }
    CHECK(wrong == 0);
    free(png);
}

static void test_resize(void)
{
    cvis_image *a = NULL, *b = NULL;
    /* 2x2 -> 4x4 nearest: each pixel becomes a 2x2 block. */
    CHECK_OK(cvis_image_new(2, 2, 1, &a));
    if (!a)
        return;
    uint8_t *d = cvis_image_data(a);
    d[0] = 10, d[1] = 20, d[2] = 30, d[3] = 40;
    CHECK_OK(cvis_image_resize(a, 4, 4, CVIS_RESIZE_NEAREST, &b));
    if (b) {
        static const uint8_t want[16] = {10, 10, 20, 20, 10, 10, 20, 20,
                                         30, 30, 40, 40, 30, 30, 40, 40};
        CHECK(memcmp(cvis_image_data(b), want, 16) == 0);
    }
    cvis_image_free(b);
    b = NULL;
    /* 4x1 -> 2x1 nearest takes source pixels floor((x + 0.5) * 2) = 1, 3. */
    cvis_image *row = NULL;
    CHECK_OK(cvis_image_new(4, 1, 1, &row));
    if (row) {
        uint8_t *r = cvis_image_data(row);
        r[0] = 1, r[1] = 2, r[2] = 3, r[3] = 4;
        CHECK_OK(cvis_image_resize(row, 2, 1, CVIS_RESIZE_NEAREST, &b));
        CHECK(b && cvis_image_data(b)[0] == 2 && cvis_image_data(b)[1] == 4);
        cvis_image_free(b);
        b = NULL;
        /* averaging 4 -> 2: (1+2)/2, (3+4)/2 within rounding */
        CHECK_OK(cvis_image_resize(row, 2, 1, CVIS_RESIZE_BILINEAR, &b));
        if (b) {
            CHECK(abs(cvis_image_data(b)[0] - 2) <= 1);
            CHECK(abs(cvis_image_data(b)[1] - 3) <= 1);
            CHECK(cvis_image_data(b)[0] < cvis_image_data(b)[1]);
        }
        cvis_image_free(b);
        b = NULL;
    }
    cvis_image_free(row);
    /* a constant image stays constant with every filter */
    memset(d, 77, 4);
    for (int f = 0; f < 3; f++) {
        CHECK_OK(cvis_image_resize(a, 7, 5, (cvis_resize_filter)f, &b));
        int ok = b != NULL;
        for (int i = 0; b && i < 35; i++)
            ok &= cvis_image_data(b)[i] == 77;
        CHECK(ok);
        cvis_image_free(b);
        b = NULL;
    }
    /* enlarging a black-white edge smoothly gives a monotonic ramp */
    d[0] = 0, d[1] = 255, d[2] = 0, d[3] = 255;
    CHECK_OK(cvis_image_resize(a, 8, 2, CVIS_RESIZE_BILINEAR, &b));
    if (b) {
        const uint8_t *r = cvis_image_data(b);
        int mono = 1;
        for (int i = 1; i < 8; i++)
            mono &= r[i] >= r[i - 1];
        CHECK(mono && r[0] < 40 && r[7] > 215);
    }
    cvis_image_free(b);
    b = NULL;
    CHECK_STATUS(cvis_image_resize(a, 0, 3, CVIS_RESIZE_NEAREST, &b), CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_image_resize(a, 3, 3, (cvis_resize_filter)9, &b), CVIS_E_INVALID_ARG);
    cvis_image_free(a);
}

static void test_tensor_round_trip(void)
{
    cvis_image *imgs[2] = {NULL, NULL};
    CHECK_OK(cvis_image_new(PW, PH, 3, &imgs[0]));
    CHECK_OK(cvis_image_new(PW, PH, 3, &imgs[1]));
    if (!imgs[0] || !imgs[1])
        return;
    memcpy(cvis_image_data(imgs[0]), pattern, sizeof pattern);
    for (size_t i = 0; i < sizeof pattern; i++)
        cvis_image_data(imgs[1])[i] = (uint8_t)(255 - ((uint8_t *)pattern)[i]);
    cvis_tensor *x = NULL;
    CHECK_OK(cvis_images_to_tensor(2, (const cvis_image *const *)imgs, 0, 0, &x));
    if (x) {
        int64_t shape[4];
        cvis_tensor_shape(x, shape);
        CHECK(cvis_tensor_ndim(x) == 4 && shape[0] == 2 && shape[1] == PH && shape[2] == PW &&
              shape[3] == 3);
        const float *v = cvis_tensor_data(x);
        CHECK(v[0] == (float)pattern[0][0][0] / 255.0f);
        CHECK(v[PH * PW * 3] == (float)(255 - pattern[0][0][0]) / 255.0f);
        for (int b = 0; b < 2; b++) {
            cvis_image *back = NULL;
            CHECK_OK(cvis_tensor_to_image(x, b, 0.0f, 1.0f, &back));
            CHECK(back && memcmp(cvis_image_data(back), cvis_image_data(imgs[b]),
                                 sizeof pattern) == 0);
            cvis_image_free(back);
        }
        cvis_image *back = NULL;
        CHECK_STATUS(cvis_tensor_to_image(x, 2, 0.0f, 1.0f, &back), CVIS_E_RANGE);
        CHECK_STATUS(cvis_tensor_to_image(x, 0, 1.0f, 1.0f, &back), CVIS_E_INVALID_ARG);
    }
    cvis_tensor_free(x);

    /* torchvision-style normalization */
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    x = NULL;
    CHECK_OK(cvis_images_to_tensor_normalized(1, (const cvis_image *const *)imgs, 0, 0, mean, std,
                                              &x));
    if (x) {
        const float *v = cvis_tensor_data(x);
        int ok = 1;
        for (int i = 0; i < PH * PW * 3; i++) {
            float want = ((float)((uint8_t *)pattern)[i] / 255.0f - mean[i % 3]) / std[i % 3];
            ok &= fabsf(v[i] - want) <= 1e-6f;
        }
        CHECK(ok);
        /* and back, with the display range of the normalized values */
        cvis_image *back = NULL;
        CHECK_OK(cvis_tensor_to_image(x, 0, -3.0f, 3.0f, &back));
        cvis_image_free(back);
    }
    cvis_tensor_free(x);
    const float zero_std[3] = {1, 0, 1};
    x = NULL;
    CHECK_STATUS(cvis_images_to_tensor_normalized(1, (const cvis_image *const *)imgs, 0, 0, mean,
                                                  zero_std, &x),
                 CVIS_E_INVALID_ARG);

    /* Other sizes are resized; gray is repeated over the three channels. */
    cvis_image *gray = NULL;
    CHECK_OK(cvis_image_new(3, 3, 1, &gray));
    if (gray) {
        memset(cvis_image_data(gray), 51, 9);
        const cvis_image *mixed[2] = {imgs[0], gray};
        CHECK_OK(cvis_images_to_tensor(2, mixed, 4, 5, &x));
        if (x) {
            CHECK(cvis_tensor_dim(x, 1) == 4 && cvis_tensor_dim(x, 2) == 5);
            const float *v = cvis_tensor_data(x) + 4 * 5 * 3;
            int ok = 1;
            for (int i = 0; i < 4 * 5 * 3; i++)
                ok &= fabsf(v[i] - 0.2f) < 1e-6f;
            CHECK(ok);
        }
        cvis_tensor_free(x);
    }
    cvis_image_free(gray);
    const cvis_image *with_null[2] = {imgs[0], NULL};
    x = NULL;
    CHECK_STATUS(cvis_images_to_tensor(2, with_null, 0, 0, &x), CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_images_to_tensor(0, with_null, 0, 0, &x), CVIS_E_INVALID_ARG);
    CHECK(x == NULL);

    /* (B,H,W) maps show as gray; values are clipped. */
    int64_t s3[3] = {1, 1, 3};
    cvis_tensor *m = NULL;
    CHECK_OK(cvis_tensor_create(3, s3, &m));
    if (m) {
        float *v = cvis_tensor_data(m);
        v[0] = -1.0f, v[1] = 0.5f, v[2] = 7.0f;
        cvis_image *g = NULL;
        CHECK_OK(cvis_tensor_to_image(m, 0, 0.0f, 1.0f, &g));
        CHECK(g && cvis_image_channels(g) == 1 && cvis_image_data(g)[0] == 0 &&
              cvis_image_data(g)[1] == 128 && cvis_image_data(g)[2] == 255);
        cvis_image_free(g);
    }
    cvis_tensor_free(m);
    cvis_image_free(imgs[0]);
    cvis_image_free(imgs[1]);
}

static void test_new_and_accessors(void)
{
    cvis_image *img = NULL;
    CHECK_STATUS(cvis_image_new(0, 4, 3, &img), CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_image_new(4, 4, 2, &img), CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_image_new(1 << 30, 1 << 30, 4, &img), CVIS_E_LIMIT);
    CHECK(img == NULL);
    CHECK(cvis_image_width(NULL) == 0 && cvis_image_data(NULL) == NULL);
    cvis_image_free(NULL);
    CHECK_OK(cvis_image_new(3, 2, 4, &img));
    if (img) {
        int zero = 1;
        for (int i = 0; i < 24; i++)
            zero &= cvis_image_data(img)[i] == 0;
        CHECK(zero && cvis_image_channels(img) == 4 && cvis_image_height(img) == 2);
    }
    cvis_image_free(img);
}

/* An empty IDAT chunk before the one with data (found by fuzz_image): stb
 * formed a pointer from its still-NULL data buffer (NULL + 0), undefined
 * behaviour that clang's UBSan stops on (`make fuzz` replays the fuzzer's
 * input, tests/fuzz/regressions/image).  Empty data chunks carry nothing:
 * the image decodes exactly as without them.  A file that starts with an
 * empty IDAT instead of IHDR stays refused. */
static void test_png_empty_data_chunk_first(void)
{
    cvis_image *img = NULL, *plain = NULL;
    CHECK_OK(cvis_image_new(7, 5, 3, &img));
    for (int i = 0; i < 7 * 5 * 3; i++)
        cvis_image_data(img)[i] = (uint8_t)(i * 13);
    CHECK_OK(cvis_image_save_png(img, path_of("idat.png")));
    cvis_image_free(img);
    img = NULL;
    size_t n = 0;
    uint8_t *png = read_bytes("idat.png", &n);
    CHECK(png && n > 33 && memcmp(png + 12, "IHDR", 4) == 0);
    if (!png || n <= 33)
        return;
    CHECK_OK(cvis_image_load_memory(png, (int64_t)n, &plain));
    /* length 0, "IDAT", the CRC of "IDAT" */
    static const uint8_t empty_idat[12] = {0, 0, 0, 0, 'I', 'D', 'A', 'T', 0x35, 0xaf, 0x06, 0x1e};
    uint8_t *damaged = malloc(n + 24);
    memcpy(damaged, png, 33); /* signature and IHDR */
    memcpy(damaged + 33, empty_idat, 12);
    memcpy(damaged + 45, empty_idat, 12);
    memcpy(damaged + 57, png + 33, n - 33);
    CHECK_OK(cvis_image_load_memory(damaged, (int64_t)n + 24, &img));
    CHECK(img && plain && cvis_image_width(img) == 7 && cvis_image_height(img) == 5 &&
          memcmp(cvis_image_data(img), cvis_image_data(plain), 7 * 5 * 3) == 0);
    cvis_image_free(img);
    img = NULL;
    memcpy(damaged, png, 8);
    memcpy(damaged + 8, empty_idat, 12);
    memcpy(damaged + 20, png + 8, n - 8);
    CHECK_STATUS(cvis_image_load_memory(damaged, (int64_t)n + 12, &img), CVIS_E_FORMAT);
    CHECK(img == NULL);
    free(damaged);
    free(png);
    cvis_image_free(plain);
}

TEST_MAIN({
    snprintf(dir, sizeof dir, "/tmp/cvis_images_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    make_pattern();
    test_new_and_accessors();
    test_lossless_formats();
    test_jpeg();
    test_gif();
    test_bad_files();
    test_hostile_headers();
    test_jpeg_huffman_overflow();
    test_undefined_tables_read_as_zero();
    test_png_empty_data_chunk_first();
    test_threads();
    test_resize();
    test_tensor_round_trip();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
})
