"""Measures of how faithful a map is: deletion and insertion curves with
their areas, average drop and increase in confidence, the pointing game.
Maps are (B,H,W) for images x (B,H,W,C); higher means more important."""
import collections
import ctypes

import numpy as np

from ._native import api, declare, model_p, tensor_p, c_int, c_int64, c_double, P
from ._tensor import Borrowed
from .methods import as_score, score_p

declare({
    "cvis_metric_curve_points": (c_int64, [c_int64, c_double]),
    "cvis_metric_deletion": ("status", [model_p, tensor_p, score_p, tensor_p, c_double, c_int,
                                        c_double, tensor_p, tensor_p]),
    "cvis_metric_insertion": ("status", [model_p, tensor_p, score_p, tensor_p, c_double, c_int,
                                         c_double, tensor_p, tensor_p]),
    "cvis_metric_average_drop": ("status", [model_p, tensor_p, score_p, tensor_p, P(c_double),
                                            P(c_double), tensor_p]),
    "cvis_metric_pointing_game": ("status", [tensor_p, tensor_p, c_int, tensor_p, P(c_double)]),
    "cvis_metric_pointing_game_box": ("status", [tensor_p, c_int64, P(c_int64), c_int, tensor_p,
                                                 P(c_double)]),
})

BASELINES = {"zero": 0, "blur": 1, "mean": 3}

Curves = collections.namedtuple("Curves", "auc curves fractions")
Drop = collections.namedtuple("Drop", "average_drop increase confidences")
Pointing = collections.namedtuple("Pointing", "accuracy hits")


def curve_fractions(pixels, step):
    """The fractions of pixels removed (or inserted) at each curve point."""
    n = api.cvis_metric_curve_points(pixels, step)
    if n < 2:
        raise ValueError("step must lie in (0, 1]")
    k = int(np.ceil(step * pixels * (1.0 - 1e-12)))
    return np.minimum(np.arange(n) * k, pixels) / float(pixels)


def _curves(fn, model, x, score, maps, step, baseline, blur_sigma):
    x = np.ascontiguousarray(x, dtype=np.float32)
    maps = np.ascontiguousarray(maps, dtype=np.float32)
    B, H, W = x.shape[0], x.shape[1], x.shape[2]
    n = api.cvis_metric_curve_points(H * W, step)
    if n < 2:
        raise ValueError("step must lie in (0, 1], not %r" % (step,))
    curves = np.zeros((B, n), dtype=np.float32)
    auc = np.zeros(B, dtype=np.float32)
    s = as_score(score)
    xb, mb, cb, ab = Borrowed(x), Borrowed(maps), Borrowed(curves), Borrowed(auc)
    try:
        fn(model._h, xb.handle, s._h, mb.handle, step,
           BASELINES[baseline] if isinstance(baseline, str) else int(baseline), blur_sigma,
           cb.handle, ab.handle)
    finally:
        for b in (xb, mb, cb, ab):
            b.close()
    return Curves(auc, curves, curve_fractions(H * W, step))


def deletion(model, x, score, maps, step=0.01, baseline="zero", blur_sigma=5.0):
    """Deletion: the confidence (the score on the softmax of the logits) as
    the pixels ranked highest by the maps are set to the baseline ("zero",
    "blur", "mean"), ceil(step*H*W) at a time.  Returns (auc (B,),
    curves (B,P), fractions (P,)); lower AUC = more faithful map."""
    return _curves(api.cvis_metric_deletion, model, x, score, maps, step, baseline, blur_sigma)


def insertion(model, x, score, maps, step=0.01, baseline="blur", blur_sigma=5.0):
    """Insertion: the same from the baseline image, the ranked pixels
    revealed; higher AUC = more faithful map."""
    return _curves(api.cvis_metric_insertion, model, x, score, maps, step, baseline, blur_sigma)


def average_drop_increase(model, x, score, maps):
    """Average drop (percent) and increase in confidence (percent of images)
    when only the explained region (image times normalized map) is kept.
    Returns (average_drop, increase, confidences (B,2): full and kept)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    maps = np.ascontiguousarray(maps, dtype=np.float32)
    conf = np.zeros((x.shape[0], 2), dtype=np.float32)
    drop, inc = c_double(), c_double()
    s = as_score(score)
    xb, mb, cb = Borrowed(x), Borrowed(maps), Borrowed(conf)
    try:
        api.cvis_metric_average_drop(model._h, xb.handle, s._h, mb.handle, ctypes.byref(drop),
                                     ctypes.byref(inc), cb.handle)
    finally:
        for b in (xb, mb, cb):
            b.close()
    return Drop(drop.value, inc.value, conf)


def pointing_game(maps, masks=None, boxes=None, tolerance=15):
    """The pointing game: hit when each map's maximum lies on its mask
    (B,H,W), or in its box (top, left, bottom, right; bottom and right
    exclusive), or closer than `tolerance` pixels to it (TorchRay's default
    15).  Returns (accuracy, hits (B,))."""
    maps = np.ascontiguousarray(maps, dtype=np.float32)
    hits = np.zeros(maps.shape[0], dtype=np.float32)
    acc = c_double()
    mb, hb = Borrowed(maps), Borrowed(hits)
    try:
        if (masks is None) == (boxes is None):
            raise ValueError("give masks or boxes")
        if masks is not None:
            kb = Borrowed(np.asarray(masks, dtype=np.float32))
            try:
                api.cvis_metric_pointing_game(mb.handle, kb.handle, int(tolerance), hb.handle,
                                              ctypes.byref(acc))
            finally:
                kb.close()
        else:
            bx = np.ascontiguousarray(np.asarray(boxes, dtype=np.int64).reshape(-1, 4))
            api.cvis_metric_pointing_game_box(mb.handle, bx.shape[0],
                                              bx.ctypes.data_as(P(c_int64)), int(tolerance),
                                              hb.handle, ctypes.byref(acc))
    finally:
        mb.close()
        hb.close()
    return Pointing(acc.value, hits)
