/* Colormaps: a value in [0,1] to an 8-bit RGB color, as matplotlib defines
 * them (a 256-entry lookup table; value v picks entry min(floor(256 v), 255)). */
#ifndef CVIS_RENDER_COLORMAP_H
#define CVIS_RENDER_COLORMAP_H

#include <stdint.h>

#include "cvis.h"

extern const float cvis__cmap_viridis[256][3];
extern const float cvis__cmap_inferno[256][3];

/* Fills the 256-entry 8-bit table of `cmap` (each channel rounded from the
 * map's definition, ties to even).  CVIS_E_INVALID_ARG for an unknown map. */
cvis_status cvis__colormap_lut(cvis_colormap cmap, uint8_t lut[256][3]);

/* The table entry for v (v clipped to [0,1]; NaN counts as 0). */
static inline int cvis__colormap_index(float v)
{
    if (!(v > 0.0f))
        return 0;
    if (v >= 1.0f)
        return 255;
    int i = (int)(v * 256.0f);
    return i > 255 ? 255 : i;
}

#endif
