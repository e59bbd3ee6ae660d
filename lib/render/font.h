/* Text drawn into images with stb_easy_font's segment font, scaled by an
 * integer factor. */
#ifndef CVIS_RENDER_FONT_H
#define CVIS_RENDER_FONT_H

#include <stdint.h>

#include "cvis.h"

/* Height of one line of text at scale 1, in pixels. */
#define CVIS__FONT_LINE_HEIGHT 12

/* Width in pixels of the longest line of `text` ('\n' separates lines). */
int cvis__text_width(const char *text, int scale);
/* Width of the first n bytes of text, as one line. */
int cvis__text_width_n(const char *text, int n, int scale);
/* Draws text with its top-left corner at (x, y), clipped to the image. */
void cvis__draw_text(cvis_image *img, int x, int y, const char *text, int scale,
                     const uint8_t rgb[3]);

#endif
