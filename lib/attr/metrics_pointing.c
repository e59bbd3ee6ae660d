/* The pointing game: does the map's maximum fall on the object?  A hit
 * when the maximum (the first in row-major order) lies on the object or
 * at a Euclidean distance below `tolerance` pixels from it (TorchRay's
 * acceptance disk; tolerance 0 or 1 means on the object itself). */
#include "core/alloc.h"
#include "core/error.h"
#include "metrics.h"

static int64_t argmax(const float *v, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

static cvis_status check_maps(const cvis_tensor *maps, int tolerance, cvis_tensor *hits)
{
    CVIS_CHECK_ARG(maps, "maps is NULL");
    if (maps->ndim != 3 || maps->shape[0] < 1 || maps->shape[1] < 1 || maps->shape[2] < 1)
        return cvis__fail(CVIS_E_SHAPE, "the maps must be (B,H,W)");
    if (tolerance < 0)
        return cvis__fail(CVIS_E_INVALID_ARG, "the tolerance must not be negative");
    if (hits && (hits->ndim != 1 || hits->shape[0] != maps->shape[0]))
        return cvis__fail(CVIS_E_SHAPE, "the hits tensor must be (%lld)", (long long)maps->shape[0]);
    return cvis__check_finite(maps->data, maps->size, "the maps");
}

static void report(const int *hit, int64_t B, cvis_tensor *hits, double *accuracy)
{
    int64_t n = 0;
    for (int64_t b = 0; b < B; b++) {
        n += hit[b];
        if (hits)
            hits->data[b] = (float)hit[b];
    }
    if (accuracy)
        *accuracy = (double)n / (double)B;
}

CVIS_API cvis_status cvis_metric_pointing_game(const cvis_tensor *maps, const cvis_tensor *masks,
                                               int tolerance, cvis_tensor *hits, double *accuracy)
{
    CVIS_TRY(check_maps(maps, tolerance, hits));
    CVIS_CHECK_ARG(masks, "masks is NULL");
    if (masks->ndim != 3 || masks->shape[0] != maps->shape[0] ||
        masks->shape[1] != maps->shape[1] || masks->shape[2] != maps->shape[2])
        return cvis__fail(CVIS_E_SHAPE, "the masks must have the maps' shape (B,H,W)");
    int64_t B = maps->shape[0], H = maps->shape[1], W = maps->shape[2];
    int64_t r = tolerance > 1 ? tolerance : 1;
    int stack[256], *hit = stack;
    if (B > 256 && !(hit = cvis__malloc((size_t)B * sizeof(int))))
        return cvis__fail(CVIS_E_NOMEM, "out of memory for the pointing game");
    for (int64_t b = 0; b < B; b++) {
        int64_t best = argmax(maps->data + b * H * W, H * W), py = best / W, px = best % W;
        const float *mb = masks->data + b * H * W;
        hit[b] = 0;
        for (int64_t y = py - r + 1; y < py + r && !hit[b]; y++)
            for (int64_t x = px - r + 1; x < px + r && !hit[b]; x++)
                if (y >= 0 && y < H && x >= 0 && x < W &&
                    (y - py) * (y - py) + (x - px) * (x - px) < r * r && mb[y * W + x] != 0)
                    hit[b] = 1;
    }
    report(hit, B, hits, accuracy);
    if (hit != stack)
        cvis__free(hit);
    return CVIS_OK;
}

CVIS_API cvis_status cvis_metric_pointing_game_box(const cvis_tensor *maps, int64_t n_boxes,
                                                   const int64_t *boxes, int tolerance,
                                                   cvis_tensor *hits, double *accuracy)
{
    CVIS_TRY(check_maps(maps, tolerance, hits));
    CVIS_CHECK_ARG(boxes, "boxes is NULL");
    int64_t B = maps->shape[0], H = maps->shape[1], W = maps->shape[2];
    if (n_boxes != B)
        return cvis__fail(CVIS_E_SHAPE, "give one box per map: %lld maps, %lld boxes", (long long)B,
                          (long long)n_boxes);
    for (int64_t b = 0; b < B; b++) {
        const int64_t *bx = boxes + 4 * b;
        if (bx[0] < 0 || bx[1] < 0 || bx[0] >= bx[2] || bx[1] >= bx[3] || bx[2] > H || bx[3] > W)
            return cvis__fail(CVIS_E_RANGE,
                              "box %lld (%lld, %lld, %lld, %lld) is empty or leaves the %lldx%lld map",
                              (long long)b, (long long)bx[0], (long long)bx[1], (long long)bx[2],
                              (long long)bx[3], (long long)H, (long long)W);
    }
    int64_t r = tolerance > 1 ? tolerance : 1;
    int stack[256], *hit = stack;
    if (B > 256 && !(hit = cvis__malloc((size_t)B * sizeof(int))))
        return cvis__fail(CVIS_E_NOMEM, "out of memory for the pointing game");
    for (int64_t b = 0; b < B; b++) {
        const int64_t *bx = boxes + 4 * b;
        int64_t best = argmax(maps->data + b * H * W, H * W), py = best / W, px = best % W;
        /* distance from the point to the nearest box pixel */
        int64_t dy = py < bx[0] ? bx[0] - py : (py >= bx[2] ? py - (bx[2] - 1) : 0);
        int64_t dx = px < bx[1] ? bx[1] - px : (px >= bx[3] ? px - (bx[3] - 1) : 0);
        hit[b] = dy * dy + dx * dx < r * r;
    }
    report(hit, B, hits, accuracy);
    if (hit != stack)
        cvis__free(hit);
    return CVIS_OK;
}
