/* A procedurally generated dataset for the tutorial's network: three
 * classes of objects (0 disc, 1 square, 2 triangle) of random colour, size
 * and position on a cluttered, noisy background, 128x128 RGB in [0,1],
 * with each object's mask.  Image i of a seed is always the same image.
 * Used by the training example, the demo and the tests. */
#ifndef CVIS_EXAMPLE_SHAPES_H
#define CVIS_EXAMPLE_SHAPES_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define SHAPES_SIZE 128
#define SHAPES_CLASSES 3

static const char *const shapes_names[SHAPES_CLASSES] = {"disc", "square", "triangle"};

typedef struct shapes_rng {
    uint64_t s;
} shapes_rng;

static double shapes_uniform(shapes_rng *r)
{
    /* splitmix64: small, good enough for pictures */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* 1 if (x, y) lies in the object of class c centred at (cx, cy) with
 * radius r and rotation a. */
static int shapes_inside(int c, double x, double y, double cx, double cy, double r, double a)
{
    double dx = x - cx, dy = y - cy;
    double u = cos(a) * dx + sin(a) * dy, v = -sin(a) * dx + cos(a) * dy;
    if (c == 0)
        return dx * dx + dy * dy <= r * r;
    if (c == 1)
        return fabs(u) <= r * 0.85 && fabs(v) <= r * 0.85;
    /* an equilateral triangle pointing "up" in the rotated frame */
    double h = r * 1.5;
    if (v > r * 0.5 || v < -r)
        return 0;
    return fabs(u) <= (v + r) / h * r * 0.866 * 2 / 1.5 * 1.0;
}

/* How far (in pixels) the object's centre may stray from the image's
 * centre; the tutorial's network flattens its last feature map into a
 * dense layer, which must see an object at every place it may appear. */
#ifndef SHAPES_SPREAD
#define SHAPES_SPREAD 10
#endif
/* The object's radius range and the most clutter items. */
#ifndef SHAPES_RADIUS_MIN
#define SHAPES_RADIUS_MIN 18
#endif
#ifndef SHAPES_RADIUS_MAX
#define SHAPES_RADIUS_MAX 34
#endif
#ifndef SHAPES_CLUTTER
#define SHAPES_CLUTTER 4
#endif
/* 1: objects turn by a random angle; 0: squares and triangles stand
 * upright.  The defaults are what the tutorial's network learns to 95%
 * within the demo's time: with turning objects or a spread of 20 pixels it
 * needs several times more images (measured: 72% after 12000 images with a
 * spread of 20). */
#ifndef SHAPES_ROTATE
#define SHAPES_ROTATE 0
#endif

/* Image `index` of the dataset `seed`: pixels (128*128*3 floats in [0,1],
 * HWC), its class, and its object mask (128*128 bytes, 1 on the object).
 * mask may be NULL. */
static int shapes_image(uint64_t seed, uint64_t index, float *pixels, unsigned char *mask)
{
    shapes_rng r = {seed * 0x100000001b3ULL ^ (index + 1) * 0x9e3779b97f4a7c15ULL};
    for (int k = 0; k < 4; k++)
        shapes_uniform(&r);
    int cls = (int)(shapes_uniform(&r) * SHAPES_CLASSES) % SHAPES_CLASSES;
    const int S = SHAPES_SIZE;
    /* background: a smooth colour gradient with noise */
    double base[3], grad[3];
    for (int c = 0; c < 3; c++) {
        base[c] = 0.1 + 0.5 * shapes_uniform(&r);
        grad[c] = (shapes_uniform(&r) - 0.5) * 0.4;
    }
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            for (int c = 0; c < 3; c++) {
                double v = base[c] + grad[c] * (c == 1 ? y : x) / S +
                           (shapes_uniform(&r) - 0.5) * 0.25;
                pixels[(y * S + x) * 3 + c] = (float)v;
            }
    /* clutter: lines and small blobs of random colours */
    int n_clutter = (int)(shapes_uniform(&r) * (SHAPES_CLUTTER + 1));
    for (int k = 0; k < n_clutter; k++) {
        double col[3];
        for (int c = 0; c < 3; c++)
            col[c] = shapes_uniform(&r);
        if (shapes_uniform(&r) < 0.5) {
            double x0 = shapes_uniform(&r) * S, y0 = shapes_uniform(&r) * S;
            double a = shapes_uniform(&r) * M_PI, len = 15 + shapes_uniform(&r) * 40;
            for (double t = 0; t < len; t += 0.5) {
                int x = (int)(x0 + cos(a) * t), y = (int)(y0 + sin(a) * t);
                if (x >= 0 && x < S && y >= 0 && y < S)
                    for (int c = 0; c < 3; c++)
                        pixels[(y * S + x) * 3 + c] = (float)col[c];
            }
        } else {
            double cx = shapes_uniform(&r) * S, cy = shapes_uniform(&r) * S;
            double rad = 2 + shapes_uniform(&r) * 4;
            for (int y = (int)(cy - rad); y <= (int)(cy + rad); y++)
                for (int x = (int)(cx - rad); x <= (int)(cx + rad); x++)
                    if (x >= 0 && x < S && y >= 0 && y < S &&
                        (x - cx) * (x - cx) + (y - cy) * (y - cy) <= rad * rad)
                        for (int c = 0; c < 3; c++)
                            pixels[(y * S + x) * 3 + c] = (float)col[c];
        }
    }
    /* the object */
    double rad = SHAPES_RADIUS_MIN + shapes_uniform(&r) * (SHAPES_RADIUS_MAX - SHAPES_RADIUS_MIN);
    double room = S / 2.0 - rad - 2;  /* the object stays inside the image */
    double spread = SHAPES_SPREAD < room ? SHAPES_SPREAD : room;
    double cx = S / 2.0 + (2 * shapes_uniform(&r) - 1) * spread;
    double cy = S / 2.0 + (2 * shapes_uniform(&r) - 1) * spread;
    double ang = shapes_uniform(&r) * 2 * M_PI * SHAPES_ROTATE;
    double col[3];
    do {
        for (int c = 0; c < 3; c++)
            col[c] = shapes_uniform(&r);
    } while (fabs(col[0] - base[0]) + fabs(col[1] - base[1]) + fabs(col[2] - base[2]) < 0.6);
    if (mask)
        memset(mask, 0, (size_t)S * S);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            if (shapes_inside(cls, x + 0.5, y + 0.5, cx, cy, rad, ang)) {
                if (mask)
                    mask[y * S + x] = 1;
                for (int c = 0; c < 3; c++)
                    pixels[(y * S + x) * 3 + c] =
                        (float)(col[c] + (shapes_uniform(&r) - 0.5) * 0.1);
            }
    for (int i = 0; i < S * S * 3; i++)
        pixels[i] = pixels[i] < 0 ? 0 : pixels[i] > 1 ? 1 : pixels[i];
    return cls;
}

#endif
