/* Fashion-MNIST for the examples: the ten class names and a reader for the
 * dataset's idx files (gzip, read through zlib), as Debian's
 * dataset-fashion-mnist package installs them:
 *
 *   /usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
 *
 * An idx file is a big-endian header followed by raw bytes: images start
 * with the magic 0x00000803, then the image count, rows and columns; labels
 * with 0x00000801, then the label count.  fashion_load checks both headers,
 * that the two counts agree, that the images are 28x28, that every label is
 * a class, and that each file holds exactly the bytes its header announces.
 * zlib also reads an uncompressed copy of a file, under the same name.
 *
 * Needs -lz.  Every function here is static: include it from one file. */
#ifndef CVIS_EXAMPLE_FASHION_H
#define CVIS_EXAMPLE_FASHION_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define FASHION_SIZE 28
#define FASHION_CLASSES 10
/* More images than any idx file of this dataset holds, by far: a header
 * that claims more is corrupt, and is refused before any allocation. */
#define FASHION_MAX_IMAGES 1000000

#define FASHION_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

static const char *const fashion_names[FASHION_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* One split of the dataset: n images of 28x28 bytes (0 = background,
 * 255 = full ink), row by row, and their n labels in 0..9. */
typedef struct fashion_set {
    int n;
    uint8_t *images;
    uint8_t *labels;
} fashion_set;

static void fashion_free(fashion_set *s)
{
    free(s->images);
    free(s->labels);
    s->images = s->labels = NULL;
    s->n = 0;
}

static void fashion_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint32_t fashion_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* zlib's message for the last error on f, without the "path: " that
 * gzerror puts in front of it (the callers name the file already). */
static const char *fashion_gz_message(gzFile f, const char *path, int *code)
{
    const char *msg = gzerror(f, code);
    size_t n = strlen(path);
    if (!strncmp(msg, path, n) && msg[n] == ':' && msg[n + 1] == ' ')
        msg += n + 2;
    return msg;
}

/* Reads exactly n bytes, or says why not (truncated file, bad gzip data). */
static int fashion_read(gzFile f, const char *path, void *buf, size_t n, const char *what,
                        char *err, size_t errlen)
{
    size_t got = 0;
    while (got < n) {
        /* gzread takes an unsigned count: read in chunks of at most 1 GiB */
        size_t want = n - got < (1u << 30) ? n - got : (1u << 30);
        int r = gzread(f, (char *)buf + got, (unsigned)want);
        int code = Z_OK;
        const char *msg = r > 0 ? "" : fashion_gz_message(f, path, &code);
        if (r < 0) {
            /* zlib decodes ahead: where the damage lies is not known */
            fashion_error(err, errlen, "%s: corrupt gzip data: %s", path, msg);
            return -1;
        }
        if (r == 0) {
            /* a truncated gzip stream says so ("unexpected end of file") */
            fashion_error(err, errlen, "%s: truncated: the file ends inside the %s "
                          "(%zu bytes expected)%s%s", path, what, n, code != Z_OK ? ": " : "",
                          code != Z_OK ? msg : "");
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

/* 0 if the file has nothing left (and its gzip checksum is right: zlib
 * checks it at the end of the stream), else a message. */
static int fashion_expect_end(gzFile f, const char *path, char *err, size_t errlen)
{
    char extra;
    int code = Z_OK;
    int r = gzread(f, &extra, 1);
    if (r > 0) {
        fashion_error(err, errlen, "%s: more data than its header announces", path);
        return -1;
    }
    const char *msg = fashion_gz_message(f, path, &code);
    if (r == 0 && code == Z_OK)
        return 0;
    fashion_error(err, errlen, "%s: corrupt gzip data: %s", path, msg);
    return -1;
}

static gzFile fashion_open(const char *path, char *err, size_t errlen)
{
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        fashion_error(err, errlen, "%s: cannot open: %s", path,
                      errno ? strerror(errno) : "out of memory");
    return f;
}

/* Reads an idx3 image file: *n images of 28x28 bytes into a new buffer
 * (caller frees it with free). */
static int fashion_read_images(const char *path, int *n, uint8_t **out, char *err, size_t errlen)
{
    gzFile f = fashion_open(path, err, errlen);
    if (!f)
        return -1;
    uint8_t h[16];
    uint8_t *px = NULL;
    if (fashion_read(f, path, h, sizeof h, "header", err, errlen))
        goto fail;
    uint32_t magic = fashion_be32(h), count = fashion_be32(h + 4);
    uint32_t rows = fashion_be32(h + 8), cols = fashion_be32(h + 12);
    if (magic != 0x803) {
        fashion_error(err, errlen, "%s: not an idx image file (magic 0x%08x, expected 0x00000803)",
                      path, (unsigned)magic);
        goto fail;
    }
    if (rows != FASHION_SIZE || cols != FASHION_SIZE) {
        fashion_error(err, errlen, "%s: images of %ux%u, expected %dx%d", path, (unsigned)rows,
                      (unsigned)cols, FASHION_SIZE, FASHION_SIZE);
        goto fail;
    }
    if (count < 1 || count > FASHION_MAX_IMAGES) {
        fashion_error(err, errlen, "%s: implausible image count %u", path, (unsigned)count);
        goto fail;
    }
    size_t bytes = (size_t)count * FASHION_SIZE * FASHION_SIZE;
    px = malloc(bytes);
    if (!px) {
        fashion_error(err, errlen, "%s: out of memory for %u images", path, (unsigned)count);
        goto fail;
    }
    if (fashion_read(f, path, px, bytes, "images", err, errlen) ||
        fashion_expect_end(f, path, err, errlen))
        goto fail;
    gzclose(f);
    *n = (int)count;
    *out = px;
    return 0;
fail:
    free(px);
    gzclose(f);
    return -1;
}

/* Reads an idx1 label file: *n labels in 0..9 into a new buffer (caller
 * frees it with free). */
static int fashion_read_labels(const char *path, int *n, uint8_t **out, char *err, size_t errlen)
{
    gzFile f = fashion_open(path, err, errlen);
    if (!f)
        return -1;
    uint8_t h[8];
    uint8_t *lab = NULL;
    if (fashion_read(f, path, h, sizeof h, "header", err, errlen))
        goto fail;
    uint32_t magic = fashion_be32(h), count = fashion_be32(h + 4);
    if (magic != 0x801) {
        fashion_error(err, errlen, "%s: not an idx label file (magic 0x%08x, expected 0x00000801)",
                      path, (unsigned)magic);
        goto fail;
    }
    if (count < 1 || count > FASHION_MAX_IMAGES) {
        fashion_error(err, errlen, "%s: implausible label count %u", path, (unsigned)count);
        goto fail;
    }
    lab = malloc(count);
    if (!lab) {
        fashion_error(err, errlen, "%s: out of memory for %u labels", path, (unsigned)count);
        goto fail;
    }
    if (fashion_read(f, path, lab, count, "labels", err, errlen) ||
        fashion_expect_end(f, path, err, errlen))
        goto fail;
    for (uint32_t i = 0; i < count; i++)
        if (lab[i] >= FASHION_CLASSES) {
            fashion_error(err, errlen, "%s: label %u of item %u is not a class (0..%d)", path,
                          (unsigned)lab[i], (unsigned)i, FASHION_CLASSES - 1);
            goto fail;
        }
    gzclose(f);
    *n = (int)count;
    *out = lab;
    return 0;
fail:
    free(lab);
    gzclose(f);
    return -1;
}

/* Loads split `name` ("train" or "t10k") from dir (NULL: the Debian
 * package's directory) into *out.  Returns 0, or -1 with a one-line message
 * in err that names the file at fault.  Free the set with fashion_free. */
static int fashion_load(const char *dir, const char *name, fashion_set *out, char *err,
                        size_t errlen)
{
    char ipath[4096], lpath[4096];
    if (!dir)
        dir = FASHION_DEFAULT_DIR;
    if (snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, name) >= (int)sizeof ipath ||
        snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, name) >= (int)sizeof lpath) {
        fashion_error(err, errlen, "%s: directory name too long", dir);
        return -1;
    }
    fashion_set s = {0, NULL, NULL};
    int ni, nl;
    if (fashion_read_images(ipath, &ni, &s.images, err, errlen))
        return -1;
    if (fashion_read_labels(lpath, &nl, &s.labels, err, errlen)) {
        fashion_free(&s);
        return -1;
    }
    if (ni != nl) {
        fashion_error(err, errlen, "%s: %d labels for the %d images of %s", lpath, nl, ni, ipath);
        fashion_free(&s);
        return -1;
    }
    s.n = ni;
    *out = s;
    return 0;
}

/* The example's network: two 3x3 convolutions (16 and 32 filters, ReLU)
 * each followed by 2x2 max pooling, a dense layer of 64 and the softmax
 * over the ten classes.  Needs cvis.h included first; shared by
 * train_fashion and compare. */
static cvis_status fashion_model(cvis_model **out)
{
    cvis_model *m = NULL;
    cvis_status st = cvis_model_new(FASHION_SIZE, FASHION_SIZE, 1, &m);
    if (st == CVIS_OK)
        st = cvis_model_add_conv2d(m, NULL, CVIS_PREV, 16, 3, 3, 1, CVIS_PADDING_SAME, CVIS_ACT_RELU, NULL);
    if (st == CVIS_OK)
        st = cvis_model_add_pool2d(m, NULL, CVIS_PREV, CVIS_POOL_MAX, 2, 2, 2, 2, CVIS_PADDING_VALID, NULL);
    if (st == CVIS_OK)
        st = cvis_model_add_conv2d(m, NULL, CVIS_PREV, 32, 3, 3, 1, CVIS_PADDING_SAME, CVIS_ACT_RELU, NULL);
    if (st == CVIS_OK)
        st = cvis_model_add_pool2d(m, NULL, CVIS_PREV, CVIS_POOL_MAX, 2, 2, 2, 2, CVIS_PADDING_VALID, NULL);
    if (st == CVIS_OK)
        st = cvis_model_add_flatten(m, NULL, CVIS_PREV, NULL);
    if (st == CVIS_OK)
        st = cvis_model_add_dense(m, NULL, CVIS_PREV, 64, CVIS_ACT_RELU, NULL);
    if (st == CVIS_OK)
        st = cvis_model_add_dense(m, NULL, CVIS_PREV, FASHION_CLASSES, CVIS_ACT_SOFTMAX, NULL);
    if (st != CVIS_OK) {
        cvis_model_free(m);
        return st;
    }
    *out = m;
    return CVIS_OK;
}

#endif
