"""The measures of faithfulness on hand-built cases with known answers: a
linear model whose confidence is sigmoid(sum of pixel contributions), so
that the best, the worst and a random ordering of the pixels are known,
and the curves can be written down; the pointing game on hand-made maps;
then deletion and insertion on the residual network against a numpy
implementation of the definition."""
import math

import numpy as np
import pytest

import cvis
import nets
from conftest import require_torch
from test_methods_parity import CASES


def linear_model(weights):
    """A (H,W,C) -> softmax over 2 classes model whose class-0 logit is
    sum(weights * x) and class-1 logit 0: p0 = sigmoid(sum(weights * x))."""
    H, W, C = weights.shape
    m = cvis.Model(H, W, C)
    m.flatten()
    m.dense(2, activation="softmax")
    kernel = np.zeros((H * W * C, 2), np.float32)
    kernel[:, 0] = weights.reshape(-1)
    m.layer(1).set_weights([kernel, np.zeros(2, np.float32)])
    return m


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def curve_reference(weights, x, maps, step, baseline, insert):
    """The definition, in numpy: ranked pixels (highest first, ties to the
    lower index), k = ceil(step*H*W) per step, confidence sigmoid(logit),
    trapezoid over the fractions reached."""
    B, H, W, C = x.shape
    n = H * W
    k = math.ceil(step * n - 1e-9)
    points = -(-n // k) + 1
    curves, aucs = [], []
    for b in range(B):
        order = sorted(range(n), key=lambda i: (-maps[b].reshape(-1)[i], i))
        cur = (baseline[b] if insert else x[b]).reshape(n, C).astype(np.float64).copy()
        src = (x[b] if insert else baseline[b]).reshape(n, C)
        ys = []
        for j in range(points):
            if j:
                for r in order[(j - 1) * k: j * k]:
                    cur[r] = src[r]
            ys.append(sigmoid((cur * weights.reshape(n, C)).sum()))
        fr = np.minimum(np.arange(points) * k, n) / n
        curves.append(ys)
        aucs.append(np.sum((fr[1:] - fr[:-1]) * (np.array(ys[1:]) + np.array(ys[:-1])) / 2))
    return np.array(curves), np.array(aucs), np.minimum(np.arange(points) * k, n) / n


def test_hand_computed_deletion():
    """2x2 image of ones, weights (2, 1, 0, -1), the map equal to them,
    step 0.5 (two pixels at a time), zero baseline: logits 2, 2-3, 0, so
    the curve is sigmoid(2), sigmoid(-1), sigmoid(0) at 0, 1/2, 1."""
    w = np.array([2, 1, 0, -1], np.float32).reshape(2, 2, 1)
    m = linear_model(w)
    x = np.ones((1, 2, 2, 1), np.float32)
    r = cvis.deletion(m, x, 0, w.reshape(1, 2, 2), step=0.5, baseline="zero")
    s = [1 / (1 + math.exp(-2)), 1 / (1 + math.exp(1)), 0.5]
    np.testing.assert_allclose(r.curves[0], s, rtol=1e-6)
    np.testing.assert_allclose(r.fractions, [0, 0.5, 1])
    auc = 0.5 * (s[0] + s[1]) / 2 + 0.5 * (s[1] + s[2]) / 2
    assert abs(r.auc[0] - auc) < 1e-6
    # insertion from zero: logits 0, 3, 2
    r = cvis.insertion(m, x, 0, w.reshape(1, 2, 2), step=0.5, baseline="zero")
    np.testing.assert_allclose(r.curves[0], [0.5, 1 / (1 + math.exp(-3)), s[0]], rtol=1e-6)


@pytest.fixture(scope="module")
def linear():
    rng = np.random.default_rng(3)
    H, W, C = 6, 5, 2
    w = rng.normal(0, 0.3, (H, W, C)).astype(np.float32)
    x = rng.uniform(0.2, 1, (3, H, W, C)).astype(np.float32)
    contrib = (w * x).sum(axis=3)  # each pixel's share of the logit
    maps = {"perfect": contrib, "reversed": -contrib,
            "random": rng.permutation(contrib.reshape(3, -1).T).T.reshape(contrib.shape)}
    return dict(model=linear_model(w), w=w, x=x, maps=maps)


@pytest.mark.parametrize("baseline", ["zero", "blur", "mean"])
@pytest.mark.parametrize("step", [0.1, 0.3, 1 / 30, 1.0])
def test_curves_against_the_definition(linear, baseline, step):
    """Curves and AUCs of the three maps as the definition gives them, for
    steps that divide the 30 pixels or leave a partial last step, and each
    baseline; and the order they must come in: deleting the perfect map's
    pixels lowers the confidence fastest (pointwise lowest curve), deleting
    the reversed map's slowest, inserting the other way round."""
    x, w = linear["x"], linear["w"]
    if baseline == "zero":
        base = np.zeros_like(x)
    elif baseline == "mean":
        base = np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape)
    else:
        from test_methods_beyond import blur
        base = blur(x, 1.0)
    auc = {}
    for insert, fn in ((False, cvis.deletion), (True, cvis.insertion)):
        for name, maps in linear["maps"].items():
            r = fn(linear["model"], x, 0, maps, step=step, baseline=baseline, blur_sigma=1.0)
            curves, aucs, fr = curve_reference(w, x, maps, step, base, insert)
            np.testing.assert_allclose(r.curves, curves, atol=2e-6)
            np.testing.assert_allclose(r.auc, aucs, atol=2e-6)
            np.testing.assert_allclose(r.fractions, fr)
            auc[insert, name] = r.auc
    if step < 1 and baseline == "zero":
        assert (auc[False, "perfect"] < auc[False, "random"]).all()
        assert (auc[False, "random"] < auc[False, "reversed"]).all()
        assert (auc[True, "perfect"] > auc[True, "random"]).all()
        assert (auc[True, "random"] > auc[True, "reversed"]).all()


def test_ties_go_to_the_lower_index(linear):
    """A constant map removes pixels in row-major order."""
    x, w = linear["x"], linear["w"]
    flat = np.zeros((3, 6, 5), np.float32)
    r = cvis.deletion(linear["model"], x, 0, flat, step=1 / 30, baseline="zero")
    cum = np.concatenate([np.zeros((3, 1)), np.cumsum((w * x).sum(axis=3).reshape(3, -1), axis=1)],
                         axis=1)
    total = (w * x).sum(axis=(1, 2, 3))[:, None]
    np.testing.assert_allclose(r.curves, sigmoid(total - cum), atol=2e-6)


def test_curve_points():
    assert cvis.metrics.api.cvis_metric_curve_points(100, 0.1) == 11  # 0.1 * 100 is 10, not 11
    assert cvis.metrics.api.cvis_metric_curve_points(10, 0.3) == 5   # 3 per step: 0 3 6 9 10
    assert cvis.metrics.api.cvis_metric_curve_points(10, 1.0) == 2
    assert cvis.metrics.api.cvis_metric_curve_points(10, 0.0) == 0
    assert cvis.metrics.api.cvis_metric_curve_points(10, 1.5) == 0


def test_average_drop_and_increase(linear):
    """Y = sigmoid(sum w x), O = sigmoid(sum w x m) with m the map min-max
    normalized; drop = 100 * mean(max(0, Y - O) / Y), increase = 100 *
    share of O > Y."""
    x, w = linear["x"], linear["w"]
    for name, maps in linear["maps"].items():
        flat = maps.reshape(3, -1)
        mnorm = ((flat - flat.min(1, keepdims=True)) /
                 (flat.max(1, keepdims=True) - flat.min(1, keepdims=True) + 1e-7)).reshape(maps.shape)
        Y = sigmoid((w * x).sum(axis=(1, 2, 3)))
        O = sigmoid((w * x * mnorm[..., None]).sum(axis=(1, 2, 3)))
        r = cvis.average_drop_increase(linear["model"], x, 0, maps)
        np.testing.assert_allclose(r.confidences, np.stack([Y, O], 1), atol=2e-6)
        assert abs(r.average_drop - 100 * np.mean(np.maximum(0, Y - O) / Y)) < 1e-4
        assert abs(r.increase - 100 * np.mean(O > Y)) < 1e-9
    # keeping the region of positive contributions raises the confidence
    assert cvis.average_drop_increase(linear["model"], x, 0, linear["maps"]["perfect"]).increase == 100
    assert cvis.average_drop_increase(linear["model"], x, 0, linear["maps"]["reversed"]).increase == 0


def test_pointing_game_hand_made():
    maps = np.zeros((5, 10, 10), np.float32)
    masks = np.zeros((5, 10, 10), np.float32)
    masks[:, 2:4, 2:4] = 1
    maps[0, 3, 3] = 1            # on the object
    maps[1, 3, 7] = 1            # 4 pixels right of it
    maps[2, 6, 6] = 1            # (3, 3) away diagonally: distance 4.24
    maps[3, 3, 7] = maps[3, 2, 2] = 1  # a tie: the first in row-major order wins (2, 2)
    maps[4, 9, 9] = maps[4, 3, 2] = 1  # a tie won by (3, 2)
    r = cvis.pointing_game(maps, masks=masks, tolerance=0)
    np.testing.assert_array_equal(r.hits, [1, 0, 0, 1, 1])
    assert r.accuracy == pytest.approx(0.6)
    # distance exactly 4 is not below a tolerance of 4; it is below 5
    np.testing.assert_array_equal(cvis.pointing_game(maps, masks=masks, tolerance=4).hits,
                                  [1, 0, 0, 1, 1])
    np.testing.assert_array_equal(cvis.pointing_game(maps, masks=masks, tolerance=5).hits,
                                  [1, 1, 1, 1, 1])
    boxes = [[2, 2, 4, 4]] * 5
    for tol in (0, 4, 5):
        a = cvis.pointing_game(maps, masks=masks, tolerance=tol)
        b = cvis.pointing_game(maps, boxes=boxes, tolerance=tol)
        np.testing.assert_array_equal(a.hits, b.hits)
        assert a.accuracy == b.accuracy


def test_metric_errors(linear):
    m, x = linear["model"], linear["x"]
    maps = linear["maps"]["perfect"]
    with pytest.raises(cvis.ShapeError):
        cvis.deletion(m, x, 0, maps[:2])
    with pytest.raises(cvis.ShapeError):
        cvis.deletion(m, x, 0, maps[..., None])
    with pytest.raises(ValueError):
        cvis.deletion(m, x, 0, maps, step=0)
    with pytest.raises(cvis.InvalidArgumentError):
        cvis.deletion(m, x, 0, maps, baseline=2)  # uniform noise: not a deletion baseline
    with pytest.raises(cvis.InvalidArgumentError):
        cvis.insertion(m, x, 0, maps, baseline="blur", blur_sigma=0)
    bad = maps.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(cvis.NonFiniteError):
        cvis.average_drop_increase(m, x, 0, bad)
    with pytest.raises(cvis.RangeError):
        cvis.deletion(m, x, 5, maps)  # class 5 of 2
    two = m.submodel([m.layers[0].name, m.layers[1].name])
    with pytest.raises(cvis.UnsupportedError):
        cvis.deletion(two, x, 0, maps)
    with pytest.raises(cvis.RangeError):
        cvis.pointing_game(maps, boxes=[[0, 0, 7, 5]] * 3)  # leaves the 6x5 map
    with pytest.raises(cvis.RangeError):
        cvis.pointing_game(maps, boxes=[[2, 2, 2, 4]] * 3)  # empty
    with pytest.raises(cvis.ShapeError):
        cvis.pointing_game(maps, boxes=[[0, 0, 1, 1]] * 2)
    with pytest.raises(cvis.ShapeError):
        cvis.pointing_game(maps, masks=np.ones((3, 5, 5)))
    with pytest.raises(cvis.InvalidArgumentError):
        cvis.pointing_game(maps, masks=np.ones((3, 6, 5)), tolerance=-1)


def test_curves_on_a_network():
    """The residual network with its Grad-CAM maps: confidences are softmax
    probabilities of the logits (torch, float64), images as the definition
    builds them."""
    torch = require_torch()
    spec_fn, hwc, classes = CASES["residual"]
    model, net = nets.make_pair(spec_fn(), hwc, seed=3)
    x = np.random.default_rng(7).uniform(0, 1, (3,) + hwc).astype(np.float32)
    maps = cvis.gradcam(model, x, cvis.CategoricalScore(classes))
    step, n = 0.125, hwc[0] * hwc[1]
    k = int(step * n)
    for insert, fn in ((False, cvis.deletion), (True, cvis.insertion)):
        r = fn(model, x, cvis.CategoricalScore(classes), maps, step=step, baseline="mean")
        base = np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape)
        rows = []
        for b in range(3):
            order = sorted(range(n), key=lambda i: (-maps[b].reshape(-1)[i], i))
            cur = (base[b] if insert else x[b]).reshape(n, 3).copy()
            src = (x[b] if insert else base[b]).reshape(n, 3)
            for j in range(n // k + 1):
                if j:
                    cur[order[(j - 1) * k: j * k]] = src[order[(j - 1) * k: j * k]]
                rows.append(cur.reshape(hwc).copy())
        with torch.no_grad():
            out, _ = net.forward(torch.tensor(np.stack(rows), dtype=torch.float64), logits=True)
            p = torch.softmax(out, dim=-1).numpy().reshape(3, n // k + 1, -1)
        ref = np.stack([p[b, :, classes[b]] for b in range(3)])
        np.testing.assert_allclose(r.curves, ref, atol=1e-5)
        fr = np.arange(n // k + 1) / (n // k)
        np.testing.assert_allclose(r.auc, np.trapz(ref, fr, axis=1), atol=1e-5)
