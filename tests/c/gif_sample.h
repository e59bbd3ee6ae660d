/* A small GIF for the image tests and the fuzz seeds: GIF89a, a 4-colour
 * global table (red, green, blue, white) and two 2x2 frames, the first
 * showing the four colours in order (an animation: readers take frame 1). */
#ifndef CVIS_TEST_GIF_SAMPLE_H
#define CVIS_TEST_GIF_SAMPLE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* GIF89a with a 4-color global table and two 2x2 frames.  Pixel codes are
 * written as LZW with a clear code before each one, so every code is 3
 * bits and no table entry is ever made: valid, if not compressed. */
static size_t put_frame(uint8_t *g, size_t n, const uint8_t idx[4])
{
    const uint8_t desc[] = {0x2C, 0, 0, 0, 0, 2, 0, 2, 0, 0x00};
    memcpy(g + n, desc, sizeof desc);
    n += sizeof desc;
    g[n++] = 2; /* LZW minimum code size */
    uint32_t bits = 0;
    int nbits = 0;
    uint8_t data[8];
    int nd = 0;
    int codes[9];
    for (int i = 0; i < 4; i++) {
        codes[2 * i] = 4; /* clear */
        codes[2 * i + 1] = idx[i];
    }
    codes[8] = 5; /* end of information */
    for (int i = 0; i < 9; i++) {
        bits |= (uint32_t)codes[i] << nbits;
        nbits += 3;
        while (nbits >= 8) {
            data[nd++] = (uint8_t)bits;
            bits >>= 8;
            nbits -= 8;
        }
    }
    if (nbits)
        data[nd++] = (uint8_t)bits;
    g[n++] = (uint8_t)nd;
    memcpy(g + n, data, (size_t)nd);
    n += (size_t)nd;
    g[n++] = 0; /* block terminator */
    return n;
}

/* Writes the file into g (128 bytes are enough); returns its length. */
static size_t make_gif(uint8_t *g)
{
    size_t n = 0;
    const uint8_t head[] = {'G', 'I', 'F', '8', '9', 'a', 2, 0, 2, 0, 0x81, 0, 0};
    memcpy(g, head, sizeof head);
    n = sizeof head;
    const uint8_t palette[12] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255};
    memcpy(g + n, palette, 12);
    n += 12;
    const uint8_t frame1[4] = {0, 1, 2, 3}, frame2[4] = {3, 3, 0, 0};
    n = put_frame(g, n, frame1);
    const uint8_t gce[] = {0x21, 0xF9, 4, 0, 10, 0, 0, 0}; /* a delay, as animations have */
    memcpy(g + n, gce, sizeof gce);
    n += sizeof gce;
    n = put_frame(g, n, frame2);
    g[n++] = 0x3B;
    return n;
}

#endif
