/* cvis: the command-line face of libcvis.
 *
 *   cvis layers   MODEL
 *   cvis filters  MODEL LAYER -o PNG
 *   cvis features MODEL IMAGE LAYER... -o PNG
 *   cvis explain  MODEL IMAGE... --method M[,M...] [--class N | --top1] [--layer L] [-o DIR]
 *   cvis maximize MODEL LAYER FILTER -o PNG
 *
 * Models are ONNX files.  Every subcommand has --help.  Errors print one
 * line on stderr and exit with status 1 (2 for a bad command line). */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cvis.h"

/* ---------------------------------------------------------------- common */

static int quiet;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cvis: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cvis %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see cvis %s --help)\n", cmd);
    va_end(ap);
    exit(2);
}

static void check(cvis_status st, const char *what)
{
    if (st != CVIS_OK)
        die("%s: %s", what, cvis_last_error()[0] ? cvis_last_error() : cvis_status_string(st));
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* A progress bar on stderr, only when stderr is a terminal. */
typedef struct bar {
    const char *label;
    double start;
    int shown;
} bar;

static int bar_update(void *user, int step, int total, int n, const float *values)
{
    bar *b = user;
    (void)n;
    (void)values;
    if (quiet || !isatty(2) || total <= 0)
        return 0;
    int width = 30, done = (int)((long long)width * step / total);
    double el = now() - b->start, left = step > 0 ? el * (total - step) / step : 0;
    fprintf(stderr, "\r%-16.16s [%.*s%.*s] %d/%d  %.1f s, %.0f s left  ", b->label, done,
            "##############################", width - done, "..............................", step,
            total, el, left);
    b->shown = 1;
    if (step >= total)
        fputc('\n', stderr);
    return 0;
}

static void bar_done(bar *b)
{
    if (b->shown && !quiet && isatty(2))
        fputs("\r\033[K", stderr);
    b->shown = 0;
}

/* An option, not a negative layer index like -1. */
static int is_option(const char *a)
{
    return a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9');
}

/* snprintf for paths: a path that does not fit is an error, not a
 * silently different file. */
static void fmt_path(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        die("a path is too long (over %zu bytes)", size - 1);
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static cvis_model *load_model(const char *path)
{
    cvis_model *m = NULL;
    if (!has_suffix(path, ".onnx"))
        die("%s: models are ONNX files (.onnx)", path);
    check(cvis_model_load_onnx(path, &m), path);
    return m;
}

/* A layer by name, or by index (negative from the end). */
static int find_layer(const cvis_model *m, const char *spec)
{
    int layer;
    char *end;
    long v = strtol(spec, &end, 10);
    if (*spec && !*end) {
        int n = cvis_model_layer_count(m);
        if (v < -n || v >= n)
            die("layer %ld out of range: the model has %d layers", v, n);
        return (int)(v < 0 ? v + n : v);
    }
    check(cvis_model_find_layer(m, spec, &layer), "layer");
    return layer;
}

static int parse_int(const char *cmd, const char *opt, const char *s, int lo, int hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !*s || *end || v < lo || v > hi)
        usage_error(cmd, "%s wants an integer in [%d, %d], not \"%s\"", opt, lo, hi, s);
    return (int)v;
}

static double parse_float(const char *cmd, const char *opt, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !*s || *end || !isfinite(v))
        usage_error(cmd, "%s wants a number, not \"%s\"", opt, s);
    return v;
}

/* "a,b,c" into up to n floats; returns how many. */
static int parse_floats(const char *cmd, const char *opt, const char *s, float *out, int n)
{
    int k = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (k == n)
            usage_error(cmd, "%s takes at most %d values", opt, n);
        out[k++] = (float)parse_float(cmd, opt, tok);
    }
    return k;
}

/* How images become the model's input: size and per-channel scaling. */
typedef struct prep {
    int height, width;      /* 0: the model's */
    int normalize;          /* mean/std given */
    float mean[3], std[3];
} prep;

static int prep_option(const char *cmd, prep *p, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--size") && *i + 1 < argc) {
        const char *s = argv[++*i];
        int h, w;
        char x;
        if (sscanf(s, "%d%c%d", &h, &x, &w) != 3 || (x != 'x' && x != 'X') || h < 1 || w < 1 ||
            h > 16384 || w > 16384)
            usage_error(cmd, "--size wants HxW, not \"%s\"", s);
        p->height = h;
        p->width = w;
        return 1;
    }
    if (!strcmp(a, "--imagenet")) {
        const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
        memcpy(p->mean, mean, sizeof mean);
        memcpy(p->std, std, sizeof std);
        p->normalize = 1;
        return 1;
    }
    if (!strcmp(a, "--mean") && *i + 1 < argc) {
        if (parse_floats(cmd, "--mean", argv[++*i], p->mean, 3) != 3)
            usage_error(cmd, "--mean takes three values r,g,b");
        p->normalize = 1;
        if (p->std[0] == 0)
            p->std[0] = p->std[1] = p->std[2] = 1;
        return 1;
    }
    if (!strcmp(a, "--std") && *i + 1 < argc) {
        if (parse_floats(cmd, "--std", argv[++*i], p->std, 3) != 3)
            usage_error(cmd, "--std takes three values r,g,b");
        p->normalize = 1;
        return 1;
    }
    return 0;
}

static const char *prep_help =
    "  --size HxW        resize images to HxW (default: the model's input size)\n"
    "  --mean R,G,B      subtract per channel after scaling to [0,1] (default 0)\n"
    "  --std R,G,B       then divide per channel (default 1)\n"
    "  --imagenet        --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225\n";

/* The input size for a model: the options', else the model's fixed one. */
static void input_size(const cvis_model *m, const prep *p, int *h, int *w)
{
    int64_t hwc[3];
    check(cvis_model_input_shape(m, hwc), "model");
    *h = p->height ? p->height : (int)hwc[0];
    *w = p->width ? p->width : (int)hwc[1];
    if (*h < 1 || *w < 1)
        die("the model's input size is free: give one with --size HxW");
}

static cvis_tensor *images_to_input(const cvis_model *m, const prep *p, int n,
                                    cvis_image *const *imgs)
{
    int h, w;
    input_size(m, p, &h, &w);
    cvis_tensor *x;
    if (p->normalize)
        check(cvis_images_to_tensor_normalized(n, (const cvis_image *const *)imgs, h, w, p->mean,
                                               p->std, &x),
              "images");
    else
        check(cvis_images_to_tensor(n, (const cvis_image *const *)imgs, h, w, &x), "images");
    return x;
}

static void mkdir_p(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *s = buf + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(buf, 0755);
            *s = '/';
        }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        die("cannot create %s: %s", dir, strerror(errno));
}

static void save_png(cvis_image *img, const char *path)
{
    check(cvis_image_save_png(img, path), path);
    if (!quiet)
        printf("%s\n", path);
}

/* ---------------------------------------------------------------- layers */

static int cmd_layers(int argc, char **argv)
{
    const char *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: cvis layers MODEL\n\n"
                   "The layer table: index, name, type, output shape (without the batch;\n"
                   "-1 where it depends on the input size), whether CAM methods can use it\n"
                   "(conv), and the shapes of its weights.\n");
            return 0;
        } else if (is_option(argv[i])) {
            usage_error("layers", "unknown option %s", argv[i]);
        } else if (!model) {
            model = argv[i];
        } else {
            usage_error("layers", "one model only");
        }
    }
    if (!model)
        usage_error("layers", "give a model");
    cvis_model *m = load_model(model);
    int64_t hwc[3];
    check(cvis_model_input_shape(m, hwc), "model");
    printf("%s: input (%lld, %lld, %lld), %d layers, %d output%s\n", model, (long long)hwc[0],
           (long long)hwc[1], (long long)hwc[2], cvis_model_layer_count(m),
           cvis_model_output_count(m), cvis_model_output_count(m) == 1 ? "" : "s");
    printf("%5s  %-32s %-20s %-22s %-4s %s\n", "index", "name", "type", "output shape", "conv",
           "weights");
    for (int i = 0; i < cvis_model_layer_count(m); i++) {
        int nd;
        int64_t s[CVIS_MAX_DIMS];
        char shape[64] = "(";
        check(cvis_model_layer_output_shape(m, i, &nd, s), "layer");
        for (int k = 0; k < nd; k++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", k ? ", " : "",
                     (long long)s[k]);
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), nd == 1 ? ",)" : ")");
        printf("%5d  %-32s %-20s %-22s %-4s", i, cvis_model_layer_name(m, i),
               cvis_model_layer_type(m, i), shape, cvis_model_layer_is_conv(m, i) ? "yes" : "");
        for (int k = 0; k < cvis_model_weight_count(m, i); k++) {
            cvis_tensor *t;
            check(cvis_model_get_weight(m, i, k, &t), "weights");
            printf(" %s(", cvis_model_weight_name(m, i, k));
            for (int d = 0; d < cvis_tensor_ndim(t); d++)
                printf("%s%lld", d ? "," : "", (long long)cvis_tensor_dim(t, d));
            printf(")");
            cvis_tensor_free(t);
        }
        printf("\n");
    }
    cvis_model_free(m);
    return 0;
}

/* --------------------------------------------------------------- filters */

static int cmd_filters(int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL}, *out = NULL;
    int np = 0, max_filters = 64, max_channels = 16, cell = 48;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: cvis filters MODEL LAYER -o PNG [options]\n\n"
                   "Draws a convolution's filters, min-max normalized over the layer, in\n"
                   "grayscale: one row per filter, one column per input channel.\n"
                   "LAYER is a name or an index (negative counts from the end).\n\n"
                   "  -o PNG              the picture to write\n"
                   "  --max-filters N     at most N filters (rows), default 64\n"
                   "  --max-channels N    at most N input channels (columns), default 16\n"
                   "  --cell PIXELS       size of one filter drawing, default 48\n");
            return 0;
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(a, "--max-filters") && i + 1 < argc) {
            max_filters = parse_int("filters", a, argv[++i], 1, 4096);
        } else if (!strcmp(a, "--max-channels") && i + 1 < argc) {
            max_channels = parse_int("filters", a, argv[++i], 1, 4096);
        } else if (!strcmp(a, "--cell") && i + 1 < argc) {
            cell = parse_int("filters", a, argv[++i], 8, 512);
        } else if (is_option(a)) {
            usage_error("filters", "unknown option %s", a);
        } else if (np < 2) {
            pos[np++] = a;
        } else {
            usage_error("filters", "too many arguments");
        }
    }
    if (np != 2 || !out)
        usage_error("filters", "give MODEL LAYER -o PNG");
    cvis_model *m = load_model(pos[0]);
    int layer = find_layer(m, pos[1]);
    cvis_tensor *f;
    check(cvis_model_get_filters_normalized(m, layer, &f), pos[1]);
    int kh = (int)cvis_tensor_dim(f, 0), kw = (int)cvis_tensor_dim(f, 1);
    int cin = (int)cvis_tensor_dim(f, 2), cout = (int)cvis_tensor_dim(f, 3);
    int rows = cout < max_filters ? cout : max_filters, cols = cin < max_channels ? cin : max_channels;
    cvis_grid *g;
    check(cvis_grid_new(rows, cols, cell, cell, &g), "grid");
    float *one = malloc(sizeof(float) * (size_t)kh * kw);
    if (!one)
        die("out of memory");
    for (int o = 0; o < rows; o++)
        for (int c = 0; c < cols; c++) {
            for (int p = 0; p < kh * kw; p++)
                one[p] = cvis_tensor_data(f)[((int64_t)p * cin + c) * cout + o];
            cvis_image *img;
            check(cvis_map_to_image(one, kh, kw, CVIS_CMAP_GRAY, 0, &img), "filter");
            char title[32];
            snprintf(title, sizeof title, "in %d", c);
            check(cvis_grid_set(g, o, c, img, o == 0 ? title : NULL), "grid");
            cvis_image_free(img);
        }
    free(one);
    char caption[512];
    snprintf(caption, sizeof caption, "%s: filters 0-%d of %d by row, input channels 0-%d of %d",
             cvis_model_layer_name(m, layer), rows - 1, cout, cols - 1, cin);
    check(cvis_grid_set_caption(g, caption), "grid");
    cvis_image *img;
    check(cvis_grid_render(g, &img), "grid");
    save_png(img, out);
    cvis_image_free(img);
    cvis_grid_free(g);
    cvis_tensor_free(f);
    cvis_model_free(m);
    return 0;
}

/* -------------------------------------------------------------- features */

static int cmd_features(int argc, char **argv)
{
    const char *model = NULL, *image = NULL, *out = NULL;
    const char *layers[64];
    int nl = 0, maps = 8, cols = 4, cell = 128;
    prep p = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: cvis features MODEL IMAGE LAYER... -o PNG [options]\n\n"
                   "Draws the feature maps of one or more layers for an image, each map in\n"
                   "grayscale, min-max normalized; one block of rows per layer.\n\n"
                   "  -o PNG          the picture to write\n"
                   "  --maps N        maps per layer (the first N channels), default 8\n"
                   "  --columns N     maps per row, default 4\n"
                   "  --cell PIXELS   size of one map drawing, default 128\n%s",
                   prep_help);
            return 0;
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(a, "--maps") && i + 1 < argc) {
            maps = parse_int("features", a, argv[++i], 1, 4096);
        } else if (!strcmp(a, "--columns") && i + 1 < argc) {
            cols = parse_int("features", a, argv[++i], 1, 64);
        } else if (!strcmp(a, "--cell") && i + 1 < argc) {
            cell = parse_int("features", a, argv[++i], 16, 1024);
        } else if (prep_option("features", &p, argc, argv, &i)) {
        } else if (is_option(a)) {
            usage_error("features", "unknown option %s", a);
        } else if (!model) {
            model = a;
        } else if (!image) {
            image = a;
        } else if (nl < 64) {
            layers[nl++] = a;
        } else {
            usage_error("features", "at most 64 layers");
        }
    }
    if (!model || !image || !nl || !out)
        usage_error("features", "give MODEL IMAGE LAYER... -o PNG");
    cvis_model *m = load_model(model);
    int idx[64];
    for (int k = 0; k < nl; k++)
        idx[k] = find_layer(m, layers[k]);
    cvis_image *img;
    check(cvis_image_load(image, &img), image);
    cvis_tensor *x = images_to_input(m, &p, 1, &img), *fm[64];
    check(cvis_model_feature_maps(m, x, nl, idx, fm), "feature maps");
    int rows = 0, per_layer[64];
    for (int k = 0; k < nl; k++) {
        if (cvis_tensor_ndim(fm[k]) != 4)
            die("layer %s gives no maps (its output has %d axes)", layers[k], cvis_tensor_ndim(fm[k]) - 1);
        int ch = (int)cvis_tensor_dim(fm[k], 3);
        per_layer[k] = ch < maps ? ch : maps;
        rows += (per_layer[k] + cols - 1) / cols;
    }
    cvis_grid *g;
    check(cvis_grid_new(rows, cols, cell, cell, &g), "grid");
    int row = 0;
    for (int k = 0; k < nl; k++) {
        int h = (int)cvis_tensor_dim(fm[k], 1), w = (int)cvis_tensor_dim(fm[k], 2);
        int ch = (int)cvis_tensor_dim(fm[k], 3);
        float *one = malloc(sizeof(float) * (size_t)h * w);
        if (!one)
            die("out of memory");
        for (int c = 0; c < per_layer[k]; c++) {
            for (int q = 0; q < h * w; q++)
                one[q] = cvis_tensor_data(fm[k])[(int64_t)q * ch + c];
            cvis_image *cimg;
            check(cvis_map_to_image(one, h, w, CVIS_CMAP_GRAY, 1, &cimg), "map");
            char title[96];
            snprintf(title, sizeof title, "%.24s:%d", cvis_model_layer_name(m, idx[k]), c);
            check(cvis_grid_set(g, row + c / cols, c % cols, cimg, title), "grid");
            cvis_image_free(cimg);
        }
        free(one);
        row += (per_layer[k] + cols - 1) / cols;
        cvis_tensor_free(fm[k]);
    }
    char caption[512];
    snprintf(caption, sizeof caption, "Feature maps for %s", image);
    check(cvis_grid_set_caption(g, caption), "grid");
    cvis_image *pic;
    check(cvis_grid_render(g, &pic), "grid");
    save_png(pic, out);
    cvis_image_free(pic);
    cvis_grid_free(g);
    cvis_tensor_free(x);
    cvis_image_free(img);
    cvis_model_free(m);
    return 0;
}

/* --------------------------------------------------------------- explain */

/* Class names, one per line, or NULL. */
static char **read_labels(const char *path, int *n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("%s: %s", path, strerror(errno));
    char **names = NULL, line[512];
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char **grown = realloc(names, sizeof *names * (size_t)(count + 1));
        if (!grown)
            die("out of memory");
        names = grown;
        names[count] = strdup(line);
        if (!names[count++])
            die("out of memory");
    }
    fclose(f);
    *n = count;
    return names;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int argmax(const float *v, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return (int)best;
}

/* ---- the inputs of a dataset run: files, directories, globs, lists */

typedef struct input {
    char *path; /* the image file */
    char *key;  /* the name its outputs take */
} input;

typedef struct inputs {
    input *v;
    int n, cap;
} inputs;

static int is_image_name(const char *name)
{
    static const char *const ext[] = {".jpg", ".jpeg", ".png", ".bmp", ".tga", ".gif"};
    const char *dot = strrchr(name, '.');
    if (!dot)
        return 0;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (!strcasecmp(dot, ext[i]))
            return 1;
    return 0;
}

/* A file's output name: its path below the directory it was found in (or
 * its own name), '/' turned into "__", the extension dropped. */
static char *make_key(const char *rel)
{
    size_t n = strlen(rel);
    char *k = malloc(2 * n + 1), *o = k;
    if (!k)
        die("out of memory");
    for (const char *c = rel; *c; c++) {
        if (*c == '/') {
            *o++ = '_';
            *o++ = '_';
        } else {
            *o++ = *c;
        }
    }
    *o = 0;
    /* the extension of the file's own name only */
    char *last = k, *sep;
    while ((sep = strstr(last, "__")))
        last = sep + 2;
    char *dot = strrchr(last, '.');
    if (dot && dot != last)
        *dot = 0;
    return k;
}

static void add_input(inputs *in, const char *path, const char *rel)
{
    if (in->n == in->cap) {
        in->cap = in->cap ? 2 * in->cap : 256;
        input *v = realloc(in->v, sizeof *v * (size_t)in->cap);
        if (!v)
            die("out of memory");
        in->v = v;
    }
    in->v[in->n].path = strdup(path);
    in->v[in->n].key = make_key(rel);
    if (!in->v[in->n].path)
        die("out of memory");
    in->n++;
}

static void add_directory(inputs *in, const char *root, const char *sub)
{
    char dir[4096];
    fmt_path(dir, sizeof dir, "%s%s%s", root, *sub ? "/" : "", sub);
    DIR *d = opendir(dir);
    if (!d)
        die("%s: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096], rel[4096];
        fmt_path(path, sizeof path, "%s/%s", dir, e->d_name);
        fmt_path(rel, sizeof rel, "%s%s%s", sub, *sub ? "/" : "", e->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            add_directory(in, root, rel);
        else if (S_ISREG(st.st_mode) && is_image_name(e->d_name))
            add_input(in, path, rel);
    }
    closedir(d);
}

static void add_argument(inputs *in, const char *arg)
{
    struct stat st;
    if (arg[0] == '@') { /* a list file: one path per line */
        FILE *f = fopen(arg + 1, "r");
        if (!f)
            die("%s: %s", arg + 1, strerror(errno));
        char line[4096];
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = 0;
            if (line[0] && line[0] != '#')
                add_input(in, line, base_name(line));
        }
        fclose(f);
    } else if (strpbrk(arg, "*?[")) { /* a glob the shell did not expand */
        glob_t g;
        int rc = glob(arg, 0, NULL, &g);
        if (rc == GLOB_NOMATCH)
            die("%s: no file matches", arg);
        if (rc != 0)
            die("%s: cannot expand the pattern", arg);
        for (size_t i = 0; i < g.gl_pathc; i++)
            if (stat(g.gl_pathv[i], &st) == 0 && S_ISREG(st.st_mode))
                add_input(in, g.gl_pathv[i], base_name(g.gl_pathv[i]));
        globfree(&g);
    } else if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
        add_directory(in, arg, "");
    } else {
        add_input(in, arg, base_name(arg));
    }
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const input *)a)->path, ((const input *)b)->path);
}

static int by_key(const void *a, const void *b)
{
    return strcmp((*(const input *const *)a)->key, (*(const input *const *)b)->key);
}

/* Sorted, without repeats, then every N-th from I; two images may not
 * write under the same name. */
static void settle_inputs(inputs *in, int shard_i, int shard_n)
{
    qsort(in->v, (size_t)in->n, sizeof *in->v, by_path);
    int w = 0;
    for (int r = 0; r < in->n; r++) {
        if (w > 0 && !strcmp(in->v[w - 1].path, in->v[r].path)) {
            free(in->v[r].path);
            free(in->v[r].key);
            continue;
        }
        in->v[w++] = in->v[r];
    }
    in->n = w;
    w = 0;
    for (int r = 0; r < in->n; r++) {
        if (r % shard_n == shard_i) {
            in->v[w++] = in->v[r];
        } else {
            free(in->v[r].path);
            free(in->v[r].key);
        }
    }
    in->n = w;
    input **sorted = malloc(sizeof *sorted * (size_t)(in->n ? in->n : 1));
    if (!sorted)
        die("out of memory");
    for (int i = 0; i < in->n; i++)
        sorted[i] = &in->v[i];
    qsort(sorted, (size_t)in->n, sizeof *sorted, by_key);
    for (int i = 1; i < in->n; i++)
        if (!strcmp(sorted[i - 1]->key, sorted[i]->key))
            die("%s and %s would write outputs under the same name \"%s\"; give their "
                "directory instead, so that names keep the path",
                sorted[i - 1]->path, sorted[i]->path, sorted[i]->key);
    free(sorted);
}

/* ---- writing outputs that are either whole or absent */

static void save_png_atomic(cvis_image *img, const char *path)
{
    char tmp[8192 + 64];
    fmt_path(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    check(cvis_image_save_png(img, tmp), path);
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        die("%s: %s", path, strerror(errno));
    }
}

static void write_atomic(const char *path, const char *text)
{
    char tmp[8192 + 64];
    fmt_path(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        die("%s: %s", tmp, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        die("%s: cannot write", path);
    }
}

/* Appends printf-style text to a growing string. */
typedef struct text_buf {
    char *s;
    size_t n, cap;
} text_buf;

static void tb_printf(text_buf *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        size_t room = t->cap - t->n;
        int k = t->s ? vsnprintf(t->s + t->n, room, fmt, ap) : -1;
        va_end(ap);
        if (k >= 0 && (size_t)k < room) {
            t->n += (size_t)k;
            return;
        }
        size_t ncap = t->cap ? 2 * t->cap : 1024;
        while (k >= 0 && ncap < t->n + (size_t)k + 1)
            ncap *= 2;
        char *g = realloc(t->s, ncap);
        if (!g)
            die("out of memory");
        t->s = g;
        t->cap = ncap;
    }
}

/* JSON string escaping. */
static void tb_json(text_buf *t, const char *s)
{
    tb_printf(t, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            tb_printf(t, "\\%c", *c);
        else if (*c < 0x20)
            tb_printf(t, "\\u%04x", *c);
        else
            tb_printf(t, "%c", *c);
    }
    tb_printf(t, "\"");
}

/* Statistics of one map (values in [0, 1]). */
typedef struct map_stats {
    double mean, above_half;
    int max_y, max_x;
} map_stats;

static map_stats stats_of(const float *map, int64_t H, int64_t W)
{
    map_stats st = {0, 0, 0, 0};
    int64_t best = 0;
    for (int64_t p = 0; p < H * W; p++) {
        st.mean += map[p];
        st.above_half += map[p] > 0.5f;
        if (map[p] > map[best])
            best = p;
    }
    st.mean /= (double)(H * W);
    st.above_half /= (double)(H * W);
    st.max_y = (int)(best / W);
    st.max_x = (int)(best % W);
    return st;
}

/* Methods whose result for an image depends on the rest of its batch
 * (Faster Score-CAM picks channels over the batch; SmoothGrad draws noise
 * in batch order): a dataset run gives them one image at a time, so that
 * every image gets what a single-image call gives. */
static int batch_dependent(cvis_method m)
{
    return m == CVIS_METHOD_FASTER_SCORECAM || m == CVIS_METHOD_SMOOTHGRAD;
}

static int cmd_explain(int argc, char **argv)
{
    const char *model = NULL, *methods_arg = "gradcam", *layer_arg = NULL, *out = "cvis_out";
    const char *labels_path = NULL, *summary_arg = NULL;
    inputs in = {NULL, 0, 0};
    int target = -1, logits = 1, batch = 16, max_n = 0, samples = -1, shard_i = 0, shard_n = 1;
    double alpha = 0.5;
    prep p = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: cvis explain MODEL INPUT... --method M[,M...] [options]\n\n"
                   "Explains the model's decision on each image with each method.  An INPUT is\n"
                   "an image file, a directory (its images, recursively), a glob pattern in\n"
                   "quotes, or @FILE (a list of image paths, one per line).  Images are\n"
                   "streamed in batches, so memory stays bounded whatever their number.\n\n"
                   "Per image and method: an overlay PNG (a heatmap for saliency methods) and\n"
                   "the raw map (.npy); per image, a row of the summary (image, predicted class\n"
                   "and probability, target, and per method the map's mean, the place of its\n"
                   "maximum and its share above 0.5) in a CSV or JSON Lines file; with few\n"
                   "images, an HTML page.  Every file is written under a temporary name, then\n"
                   "renamed, and a rerun skips images whose outputs are complete.\n\n"
                   "  --method M[,M...]  methods, default gradcam; any of: saliency, smoothgrad,\n"
                   "                     gradcam, gradcam++, scorecam, faster-scorecam, layercam\n"
                   "                     (and the other names cvis_method_from_name knows)\n"
                   "  --class N          explain class N for every image\n"
                   "  --top1             explain each image's predicted class (the default)\n"
                   "  --layer L          the CAM layer, by name or index (default: the last\n"
                   "                     convolution-like layer)\n"
                   "  --logits           scores on logits, the output's softmax dropped (default)\n"
                   "  --no-logits        scores on the model's own outputs\n"
                   "  --max-n N          Faster Score-CAM's channel count\n"
                   "  --samples N        SmoothGrad's samples (default 20)\n"
                   "  --labels FILE      class names, one per line, for the captions\n"
                   "  --alpha A          overlay opacity, default 0.5\n"
                   "  --batch N          images explained together, default 16\n"
                   "  --shard I/N        only every N-th image from the I-th (0-based), so that\n"
                   "                     N processes share a dataset without talking\n"
                   "  --summary FILE     the summary (.csv or .jsonl); default DIR/summary.csv,\n"
                   "                     or DIR/summary-I-of-N.csv with --shard\n"
                   "  -o DIR             where to write (default cvis_out)\n%s"
                   "  --quiet            print nothing but errors\n",
                   prep_help);
            return 0;
        } else if (!strcmp(a, "--method") && i + 1 < argc) {
            methods_arg = argv[++i];
        } else if (!strcmp(a, "--class") && i + 1 < argc) {
            target = parse_int("explain", a, argv[++i], 0, 1 << 30);
        } else if (!strcmp(a, "--top1")) {
            target = -1;
        } else if (!strcmp(a, "--layer") && i + 1 < argc) {
            layer_arg = argv[++i];
        } else if (!strcmp(a, "--logits")) {
            logits = 1;
        } else if (!strcmp(a, "--no-logits")) {
            logits = 0;
        } else if (!strcmp(a, "--max-n") && i + 1 < argc) {
            max_n = parse_int("explain", a, argv[++i], 1, 1 << 20);
        } else if (!strcmp(a, "--samples") && i + 1 < argc) {
            samples = parse_int("explain", a, argv[++i], 1, 1 << 16);
        } else if (!strcmp(a, "--labels") && i + 1 < argc) {
            labels_path = argv[++i];
        } else if (!strcmp(a, "--alpha") && i + 1 < argc) {
            alpha = parse_float("explain", a, argv[++i]);
            if (alpha < 0 || alpha > 1)
                usage_error("explain", "--alpha wants a value in [0, 1]");
        } else if (!strcmp(a, "--batch") && i + 1 < argc) {
            batch = parse_int("explain", a, argv[++i], 1, 4096);
        } else if (!strcmp(a, "--shard") && i + 1 < argc) {
            const char *sh = argv[++i];
            char extra;
            if (sscanf(sh, "%d/%d%c", &shard_i, &shard_n, &extra) != 2 || shard_n < 1 ||
                shard_i < 0 || shard_i >= shard_n)
                usage_error("explain", "--shard wants I/N with 0 <= I < N, not \"%s\"", sh);
        } else if (!strcmp(a, "--summary") && i + 1 < argc) {
            summary_arg = argv[++i];
            if (!has_suffix(summary_arg, ".csv") && !has_suffix(summary_arg, ".jsonl"))
                usage_error("explain", "--summary wants a .csv or a .jsonl file");
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            out = argv[++i];
        } else if (prep_option("explain", &p, argc, argv, &i)) {
        } else if (is_option(a)) {
            usage_error("explain", "unknown option %s", a);
        } else if (!model) {
            model = a;
        } else {
            add_argument(&in, a);
        }
    }
    if (!model || !in.n)
        usage_error("explain", "give MODEL and at least one image");
    /* the methods, checked before any work */
    cvis_method methods[32];
    char method_names[32][64];
    int n_methods = 0;
    {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", methods_arg);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            if (n_methods == 32)
                usage_error("explain", "at most 32 methods");
            if (cvis_method_from_name(tok, &methods[n_methods]) != CVIS_OK ||
                methods[n_methods] == CVIS_METHOD_ACTIVATION_MAXIMIZATION)
                usage_error("explain", "unknown method \"%s\"", tok);
            snprintf(method_names[n_methods], sizeof method_names[0], "%s", tok);
            for (char *c = method_names[n_methods]; *c; c++)
                if (*c == '+')
                    *c = 'p'; /* gradcam++ -> gradcampp in file and column names */
            n_methods++;
        }
    }
    settle_inputs(&in, shard_i, shard_n);
    int n_labels = 0;
    char **labels = labels_path ? read_labels(labels_path, &n_labels) : NULL;
    cvis_model *m = load_model(model);
    if (cvis_model_output_count(m) != 1)
        die("%s has %d outputs; cvis explain handles single-output models",
            model, cvis_model_output_count(m));
    int layer = layer_arg ? find_layer(m, layer_arg) : -1;
    mkdir_p(out);
    cvis_explainer *ex[32];
    for (int k = 0; k < n_methods; k++) {
        check(cvis_explainer_new(m, methods[k], &ex[k]), method_names[k]);
        check(cvis_explainer_set_int(ex[k], CVIS_OPT_LOGITS, logits), "option");
        if (layer >= 0)
            check(cvis_explainer_set_string(ex[k], CVIS_OPT_LAYER_NAME,
                                            cvis_model_layer_name(m, layer)),
                  "layer");
        if (max_n)
            check(cvis_explainer_set_int(ex[k], CVIS_OPT_MAX_N, max_n), "--max-n");
        if (samples > 0 && methods[k] == CVIS_METHOD_SMOOTHGRAD)
            check(cvis_explainer_set_int(ex[k], CVIS_OPT_SMOOTH_SAMPLES, samples), "--samples");
    }
    /* the images still to do: those without a row file */
    char path[8192];
    int *todo = malloc(sizeof(int) * (size_t)in.n), n_todo = 0, failed = 0;
    if (!todo)
        die("out of memory");
    for (int i = 0; i < in.n; i++) {
        fmt_path(path, sizeof path, "%s/%s.row.json", out, in.v[i].key);
        if (access(path, F_OK) != 0)
            todo[n_todo++] = i;
    }
    if (!quiet && n_todo < in.n)
        fprintf(stderr, "cvis explain: %d of %d images already done, %d to go\n", in.n - n_todo,
                in.n, n_todo);
    bar b = {"explain", now(), 0};
    int done = 0;
    for (int start = 0; start < n_todo; start += batch) {
        int n = n_todo - start < batch ? n_todo - start : batch;
        cvis_image **imgs = calloc((size_t)n, sizeof *imgs);
        int *classes = malloc(sizeof(int) * (size_t)n), *ok_idx = malloc(sizeof(int) * (size_t)n);
        if (!imgs || !classes || !ok_idx)
            die("out of memory");
        /* a file that cannot be read is reported and left for a rerun */
        int n_ok = 0;
        for (int i = 0; i < n; i++) {
            const input *it = &in.v[todo[start + i]];
            if (cvis_image_load(it->path, &imgs[n_ok]) != CVIS_OK) {
                fprintf(stderr, "%scvis: %s: %s%s\n", b.shown ? "\n" : "", it->path,
                        cvis_last_error(), in.n > 1 ? " (skipped)" : "");
                failed++;
                continue;
            }
            ok_idx[n_ok++] = todo[start + i];
        }
        if (n_ok == 0) {
            free(imgs);
            free(classes);
            free(ok_idx);
            continue;
        }
        cvis_tensor *x = images_to_input(m, &p, n_ok, imgs), *probs;
        check(cvis_model_predict(m, x, &probs), "predict");
        int64_t K = cvis_tensor_dim(probs, -1);
        int64_t H = cvis_tensor_dim(x, 1), W = cvis_tensor_dim(x, 2), C = cvis_tensor_dim(x, 3);
        for (int i = 0; i < n_ok; i++) {
            classes[i] = target >= 0 ? target : argmax(cvis_tensor_data(probs) + i * K, K);
            if (classes[i] >= K)
                die("class %d out of range: the model has %lld outputs", classes[i], (long long)K);
        }
        map_stats *stats = calloc((size_t)(n_ok * n_methods), sizeof *stats);
        if (!stats)
            die("out of memory");
        for (int k = 0; k < n_methods; k++) {
            b.label = method_names[k];
            check(cvis_explainer_set_progress(ex[k], NULL, NULL), "progress");
            int per_image = batch_dependent(methods[k]);
            for (int s0 = 0; s0 < n_ok; s0 += per_image ? 1 : n_ok) {
                int sn = per_image ? 1 : n_ok;
                int64_t xs[4] = {sn, H, W, C};
                cvis_tensor *xv, *maps;
                check(cvis_tensor_wrap(cvis_tensor_data(x) + s0 * H * W * C, 4, xs, &xv), "batch");
                cvis_score *score;
                check(cvis_score_categorical(sn, classes + s0, &score), "score");
                int nd;
                int64_t shape[CVIS_MAX_DIMS];
                check(cvis_explainer_output_shape(ex[k], xv, &nd, shape), method_names[k]);
                check(cvis_tensor_create(nd, shape, &maps), "maps");
                check(cvis_explainer_run(ex[k], xv, 1, (const cvis_score *const *)&score, maps),
                      method_names[k]);
                int64_t mh = shape[1], mw = shape[2];
                int overlay = methods[k] != CVIS_METHOD_SALIENCY && methods[k] != CVIS_METHOD_SMOOTHGRAD;
                for (int j = 0; j < sn; j++) {
                    int i = s0 + j;
                    const input *it = &in.v[ok_idx[i]];
                    const float *map = cvis_tensor_data(maps) + (int64_t)j * mh * mw;
                    stats[i * n_methods + k] = stats_of(map, mh, mw);
                    cvis_image *pic;
                    if (overlay) {
                        check(cvis_image_overlay(imgs[i], map, mh, mw, CVIS_CMAP_JET, (float)alpha, &pic),
                              "overlay");
                    } else {
                        /* a saliency map alone, drawn at the picture's size */
                        cvis_image *small;
                        check(cvis_map_to_image(map, mh, mw, CVIS_CMAP_JET, 0, &small), "map");
                        check(cvis_image_resize(small, cvis_image_width(imgs[i]),
                                                cvis_image_height(imgs[i]), CVIS_RESIZE_BILINEAR,
                                                &pic),
                              "map");
                        cvis_image_free(small);
                    }
                    fmt_path(path, sizeof path, "%s/%s_%s.png", out, it->key, method_names[k]);
                    save_png_atomic(pic, path);
                    cvis_image_free(pic);
                    fmt_path(path, sizeof path, "%s/%s_%s.npy", out, it->key, method_names[k]);
                    int64_t one[2] = {mh, mw};
                    cvis_tensor *mt;
                    check(cvis_tensor_wrap((float *)map, 2, one, &mt), "map");
                    check(cvis_tensor_save_npy(mt, path), path);
                    cvis_tensor_free(mt);
                }
                cvis_tensor_free(maps);
                cvis_score_free(score);
                cvis_tensor_free(xv);
            }
        }
        /* the row comes last: its presence says the image is complete */
        for (int i = 0; i < n_ok; i++) {
            const input *it = &in.v[ok_idx[i]];
            text_buf t = {NULL, 0, 0};
            tb_printf(&t, "{\"image\": ");
            tb_json(&t, it->path);
            tb_printf(&t, ", \"key\": ");
            tb_json(&t, it->key);
            tb_printf(&t, ", \"predicted\": %d, \"probability\": %.6g, \"target\": %d",
                      argmax(cvis_tensor_data(probs) + i * K, K),
                      (double)cvis_tensor_data(probs)[i * K + argmax(cvis_tensor_data(probs) + i * K, K)],
                      classes[i]);
            if (labels && classes[i] < n_labels) {
                tb_printf(&t, ", \"target_name\": ");
                tb_json(&t, labels[classes[i]]);
            }
            for (int k = 0; k < n_methods; k++) {
                const map_stats *st = &stats[i * n_methods + k];
                tb_printf(&t,
                          ", \"%s_mean\": %.6g, \"%s_max_y\": %d, \"%s_max_x\": %d, "
                          "\"%s_above_half\": %.6g",
                          method_names[k], st->mean, method_names[k], st->max_y, method_names[k],
                          st->max_x, method_names[k], st->above_half);
            }
            tb_printf(&t, "}\n");
            fmt_path(path, sizeof path, "%s/%s.row.json", out, it->key);
            write_atomic(path, t.s);
            free(t.s);
        }
        done += n;
        b.label = "explain";
        bar_update(&b, done, n_todo, 0, NULL);
        free(stats);
        cvis_tensor_free(probs);
        cvis_tensor_free(x);
        for (int i = 0; i < n_ok; i++)
            cvis_image_free(imgs[i]);
        free(imgs);
        free(classes);
        free(ok_idx);
    }
    bar_done(&b);
    /* the summary of this shard, from the rows on disk, in input order */
    char summary[4096];
    if (summary_arg)
        fmt_path(summary, sizeof summary, "%s", summary_arg);
    else if (shard_n > 1)
        fmt_path(summary, sizeof summary, "%s/summary-%d-of-%d.csv", out, shard_i, shard_n);
    else
        fmt_path(summary, sizeof summary, "%s/summary.csv", out);
    int jsonl = has_suffix(summary, ".jsonl"), rows = 0;
    text_buf t = {NULL, 0, 0};
    if (!jsonl) {
        tb_printf(&t, "image,predicted,probability,target");
        for (int k = 0; k < n_methods; k++)
            tb_printf(&t, ",%s_mean,%s_max_y,%s_max_x,%s_above_half", method_names[k],
                      method_names[k], method_names[k], method_names[k]);
        tb_printf(&t, "\n");
    }
    for (int i = 0; i < in.n; i++) {
        fmt_path(path, sizeof path, "%s/%s.row.json", out, in.v[i].key);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        char row[65536];
        size_t len = fread(row, 1, sizeof row - 1, f);
        fclose(f);
        row[len] = 0;
        rows++;
        if (jsonl) {
            tb_printf(&t, "%s", row);
            continue;
        }
        /* CSV: the values in the row's order; the image path quoted */
        tb_printf(&t, "\"");
        for (const char *c = in.v[i].path; *c; c++)
            tb_printf(&t, *c == '"' ? "\"\"" : "%c", *c);
        tb_printf(&t, "\"");
        const char *fields[] = {"\"predicted\": ", "\"probability\": ", "\"target\": "};
        for (int fi = 0; fi < 3; fi++) {
            const char *v = strstr(row, fields[fi]);
            tb_printf(&t, ",%.*s", v ? (int)strcspn(v + strlen(fields[fi]), ",}") : 0,
                      v ? v + strlen(fields[fi]) : "");
        }
        for (int k = 0; k < n_methods; k++) {
            const char *suffix[] = {"_mean", "_max_y", "_max_x", "_above_half"};
            for (int si = 0; si < 4; si++) {
                char key[128];
                snprintf(key, sizeof key, "\"%s%s\": ", method_names[k], suffix[si]);
                const char *v = strstr(row, key);
                tb_printf(&t, ",%.*s", v ? (int)strcspn(v + strlen(key), ",}") : 0,
                          v ? v + strlen(key) : "");
            }
        }
        tb_printf(&t, "\n");
    }
    write_atomic(summary, t.s ? t.s : "");
    free(t.s);
    if (!quiet)
        printf("%s: %d row%s\n", summary, rows, rows == 1 ? "" : "s");
    /* a page to look at, when there are not too many pictures */
    if (in.n * n_methods <= 400) {
        cvis_report *report;
        check(cvis_report_new("cvis explain", &report), "report");
        char text[1024];
        snprintf(text, sizeof text, "Model %s; %d image%s; methods %s; %s.", model, in.n,
                 in.n == 1 ? "" : "s", methods_arg,
                 target >= 0 ? "a fixed class" : "each image's predicted class");
        check(cvis_report_add_section(report, "cvis explain", text), "report");
        for (int i = 0; i < in.n; i++)
            for (int k = 0; k < n_methods; k++) {
                char file[4096], caption[8192];
                fmt_path(file, sizeof file, "%s_%s.png", in.v[i].key, method_names[k]);
                fmt_path(path, sizeof path, "%s/%s", out, file);
                if (access(path, F_OK) != 0)
                    continue;
                snprintf(caption, sizeof caption, "%s: %s", in.v[i].path, method_names[k]);
                check(cvis_report_add_image(report, file, caption), "report");
            }
        fmt_path(path, sizeof path, "%s/index.html", out);
        check(cvis_report_save(report, path), path);
        cvis_report_free(report);
        if (!quiet)
            printf("%s\n", path);
    }
    for (int k = 0; k < n_methods; k++)
        cvis_explainer_free(ex[k]);
    cvis_model_free(m);
    for (int i = 0; i < n_labels; i++)
        free(labels[i]);
    free(labels);
    for (int i = 0; i < in.n; i++) {
        free(in.v[i].path);
        free(in.v[i].key);
    }
    free(in.v);
    free(todo);
    /* each unreadable file has had its line; a count closes several */
    if (failed > 1)
        die("%d images could not be read", failed);
    return failed ? 1 : 0;
}

/* -------------------------------------------------------------- maximize */

static int cmd_maximize(int argc, char **argv)
{
    const char *pos[3] = {NULL, NULL, NULL}, *out = NULL;
    int np = 0, steps = 200, jitter = 4, seed = 0, size = 384, opt = CVIS_OPTIMIZER_RMSPROP;
    double rotate = 1, tv = 1.0, norm = 0.3, norm_p = 1, lr = 1.0, beta1 = 0.9, beta2 = 0.999;
    float range[2] = {0, 255};
    prep p = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: cvis maximize MODEL LAYER FILTER -o PNG [options]\n\n"
                   "Activation maximization: an input optimized so that filter FILTER of\n"
                   "LAYER (its output before the activation) responds as much as it can.\n"
                   "The defaults are the reference toolkit's.\n\n"
                   "  -o PNG               the picture to write\n"
                   "  --steps N            default 200\n"
                   "  --range LO,HI        the input range, default 0,255\n"
                   "  --jitter PIXELS      default 4 (0: off)\n"
                   "  --rotate DEGREES     default 1 (0: off)\n"
                   "  --tv WEIGHT          TotalVariation2D, default 1.0\n"
                   "  --norm WEIGHT        Norm, default 0.3\n"
                   "  --norm-p P           the norm's order, default 1\n"
                   "  --optimizer NAME     rmsprop (default), adam or sgd\n"
                   "  --lr RATE            default 1.0\n"
                   "  --beta1 B, --beta2 B Adam's betas (beta2 is RMSprop's rho)\n"
                   "  --seed N             default 0: the same seed gives the same picture\n"
                   "  --picture PIXELS     size of the drawing, default 384\n"
                   "  --size HxW           the input size when the model's is free\n");
            return 0;
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(a, "--steps") && i + 1 < argc) {
            steps = parse_int("maximize", a, argv[++i], 1, 1 << 20);
        } else if (!strcmp(a, "--range") && i + 1 < argc) {
            if (parse_floats("maximize", a, argv[++i], range, 2) != 2 || !(range[1] > range[0]))
                usage_error("maximize", "--range wants LO,HI with LO < HI");
        } else if (!strcmp(a, "--jitter") && i + 1 < argc) {
            jitter = parse_int("maximize", a, argv[++i], 0, 4096);
        } else if (!strcmp(a, "--rotate") && i + 1 < argc) {
            rotate = parse_float("maximize", a, argv[++i]);
        } else if (!strcmp(a, "--tv") && i + 1 < argc) {
            tv = parse_float("maximize", a, argv[++i]);
        } else if (!strcmp(a, "--norm") && i + 1 < argc) {
            norm = parse_float("maximize", a, argv[++i]);
        } else if (!strcmp(a, "--norm-p") && i + 1 < argc) {
            norm_p = parse_float("maximize", a, argv[++i]);
        } else if (!strcmp(a, "--lr") && i + 1 < argc) {
            lr = parse_float("maximize", a, argv[++i]);
        } else if (!strcmp(a, "--beta1") && i + 1 < argc) {
            beta1 = parse_float("maximize", a, argv[++i]);
        } else if (!strcmp(a, "--beta2") && i + 1 < argc) {
            beta2 = parse_float("maximize", a, argv[++i]);
        } else if (!strcmp(a, "--seed") && i + 1 < argc) {
            seed = parse_int("maximize", a, argv[++i], 0, 1 << 30);
        } else if (!strcmp(a, "--picture") && i + 1 < argc) {
            size = parse_int("maximize", a, argv[++i], 16, 4096);
        } else if (!strcmp(a, "--optimizer") && i + 1 < argc) {
            const char *o = argv[++i];
            opt = !strcmp(o, "adam") ? CVIS_OPTIMIZER_ADAM
                  : !strcmp(o, "rmsprop") ? CVIS_OPTIMIZER_RMSPROP
                  : !strcmp(o, "sgd") ? CVIS_OPTIMIZER_SGD : -1;
            if (opt < 0)
                usage_error("maximize", "unknown optimizer \"%s\"", o);
        } else if (prep_option("maximize", &p, argc, argv, &i)) {
        } else if (is_option(a)) {
            usage_error("maximize", "unknown option %s", a);
        } else if (np < 3) {
            pos[np++] = a;
        } else {
            usage_error("maximize", "too many arguments");
        }
    }
    if (np != 3 || !out)
        usage_error("maximize", "give MODEL LAYER FILTER -o PNG");
    cvis_model *m = load_model(pos[0]);
    int layer = find_layer(m, pos[1]);
    int filter = parse_int("maximize", "FILTER", pos[2], 0, 1 << 30);
    cvis_explainer *e;
    check(cvis_explainer_new(m, CVIS_METHOD_ACTIVATION_MAXIMIZATION, &e), "explainer");
    check(cvis_explainer_set_int(e, CVIS_OPT_OUTPUT_LAYER, layer), "layer");
    check(cvis_explainer_set_int(e, CVIS_OPT_STEPS, steps), "--steps");
    check(cvis_explainer_set_float(e, CVIS_OPT_INPUT_MIN, range[0]), "--range");
    check(cvis_explainer_set_float(e, CVIS_OPT_INPUT_MAX, range[1]), "--range");
    check(cvis_explainer_set_int(e, CVIS_OPT_JITTER, jitter), "--jitter");
    check(cvis_explainer_set_float(e, CVIS_OPT_ROTATE, rotate), "--rotate");
    check(cvis_explainer_set_float(e, CVIS_OPT_TV_WEIGHT, tv), "--tv");
    check(cvis_explainer_set_float(e, CVIS_OPT_NORM_WEIGHT, norm), "--norm");
    check(cvis_explainer_set_float(e, CVIS_OPT_NORM_P, norm_p), "--norm-p");
    check(cvis_explainer_set_int(e, CVIS_OPT_OPTIMIZER, opt), "--optimizer");
    check(cvis_explainer_set_float(e, CVIS_OPT_LEARNING_RATE, lr), "--lr");
    check(cvis_explainer_set_float(e, CVIS_OPT_BETA_1, beta1), "--beta1");
    check(cvis_explainer_set_float(e, CVIS_OPT_BETA_2, beta2), "--beta2");
    check(cvis_explainer_set_int(e, CVIS_OPT_SEED, seed), "--seed");
    bar b = {"maximize", now(), 0};
    check(cvis_explainer_set_progress(e, bar_update, &b), "progress");
    /* a free input size takes --size */
    int64_t hwc[3];
    check(cvis_model_input_shape(m, hwc), "model");
    cvis_tensor *seed_input = NULL;
    if (hwc[0] < 1 || hwc[1] < 1) {
        int h, w;
        input_size(m, &p, &h, &w);
        int64_t shape[4] = {1, h, w, hwc[2]};
        check(cvis_tensor_create(4, shape, &seed_input), "input");
        /* a deterministic start when the library cannot draw one */
        uint64_t s = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1;
        for (int64_t i = 0; i < cvis_tensor_size(seed_input); i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            cvis_tensor_data(seed_input)[i] =
                range[0] + (range[1] - range[0]) * (float)((s >> 40) / 16777216.0);
        }
    }
    int nd;
    int64_t shape[CVIS_MAX_DIMS];
    check(cvis_explainer_output_shape(e, seed_input, &nd, shape), "maximize");
    cvis_tensor *x;
    check(cvis_tensor_create(nd, shape, &x), "input");
    int one_filter = filter;
    cvis_score *s;
    check(cvis_score_categorical(1, &one_filter, &s), "score");
    check(cvis_explainer_run(e, seed_input, 1, (const cvis_score *const *)&s, x), "maximize");
    bar_done(&b);
    float lo = cvis_tensor_data(x)[0], hi = lo;
    for (int64_t i = 1; i < cvis_tensor_size(x); i++) {
        lo = cvis_tensor_data(x)[i] < lo ? cvis_tensor_data(x)[i] : lo;
        hi = cvis_tensor_data(x)[i] > hi ? cvis_tensor_data(x)[i] : hi;
    }
    cvis_image *img, *big;
    check(cvis_tensor_to_image(x, 0, lo, hi > lo ? hi : lo + 1, &img), "picture");
    int h = (int)shape[1], w = (int)shape[2];
    int bw = h >= w ? size * w / h : size, bh = h >= w ? size : size * h / w;
    check(cvis_image_resize(img, bw > 0 ? bw : 1, bh > 0 ? bh : 1, CVIS_RESIZE_NEAREST, &big), "picture");
    save_png(big, out);
    cvis_image_free(img);
    cvis_image_free(big);
    cvis_score_free(s);
    cvis_tensor_free(x);
    cvis_tensor_free(seed_input);
    cvis_explainer_free(e);
    cvis_model_free(m);
    return 0;
}

/* ------------------------------------------------------------------ main */

static void main_usage(FILE *f)
{
    fprintf(f, "usage: cvis [--quiet] [--threads N] COMMAND [ARGS]\n\n"
               "commands:\n"
               "  layers   MODEL                          the layer table\n"
               "  filters  MODEL LAYER -o PNG             a convolution's filters\n"
               "  features MODEL IMAGE LAYER... -o PNG    feature maps of layers\n"
               "  explain  MODEL IMAGE... --method M,...  saliency and class activation maps\n"
               "  maximize MODEL LAYER FILTER -o PNG      activation maximization\n\n"
               "Models are ONNX files.  cvis COMMAND --help tells more.  libcvis %s.\n",
            cvis_version_string());
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
            quiet = 1;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            check(cvis_set_num_threads(parse_int("", "--threads", argv[++i], 0, 1024)), "--threads");
        } else if (!strcmp(argv[i], "--version")) {
            printf("cvis %s\n", cvis_version_string());
            return 0;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            main_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "cvis: unknown option %s\n", argv[i]);
            main_usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        main_usage(stderr);
        return 2;
    }
    const char *cmd = argv[i];
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    /* --quiet is accepted after the command too */
    for (int k = 1; k < sub_argc; k++)
        if (!strcmp(sub_argv[k], "--quiet")) {
            quiet = 1;
            memmove(sub_argv + k, sub_argv + k + 1, sizeof *sub_argv * (size_t)(sub_argc - k - 1));
            sub_argc--;
            k--;
        }
    if (!strcmp(cmd, "layers"))
        return cmd_layers(sub_argc, sub_argv);
    if (!strcmp(cmd, "filters"))
        return cmd_filters(sub_argc, sub_argv);
    if (!strcmp(cmd, "features"))
        return cmd_features(sub_argc, sub_argv);
    if (!strcmp(cmd, "explain"))
        return cmd_explain(sub_argc, sub_argv);
    if (!strcmp(cmd, "maximize"))
        return cmd_maximize(sub_argc, sub_argv);
    fprintf(stderr, "cvis: unknown command \"%s\"\n", cmd);
    main_usage(stderr);
    return 2;
}
