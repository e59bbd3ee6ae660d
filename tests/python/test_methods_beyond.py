"""The methods beyond the tutorial (SEMANTICS.md, "Methods beyond the
reference") against torch and numpy implementations of their published
definitions, written here from those definitions and independent of the C
code: Integrated Gradients (Captum's quadratures), Input x Gradient, guided
backpropagation, deconvnet, Guided Grad-CAM, XGrad-CAM, HiRes-CAM,
Eigen-CAM (numpy's SVD), Ablation-CAM, Occlusion (Captum's windows), RISE
and the noise tunnel.  References run in float64 on the tutorial network
and the small residual network, batch of 3 with different target classes;
maps must agree within 1e-4 after normalization."""
import numpy as np
import pytest

import cvis
import nets
from conftest import require_torch
from test_methods_parity import CASES, TOL, Xoshiro, categorical, compare, expand, normalize, t64

torch = require_torch()
F = torch.nn.functional


_cases = {}


def make_case(name):
    """The network `name` of CASES in libcvis and torch, and its batch."""
    if name not in _cases:
        spec_fn, hwc, classes = CASES[name]
        spec = spec_fn()
        model, net = nets.make_pair(spec, hwc, seed=3)
        x = np.random.default_rng(7).uniform(0, 1, (3,) + hwc).astype(np.float32)
        last_conv = [l for l in model.layers if l.is_conv][-1].name
        _cases[name] = dict(name=name, spec=spec, model=model, net=net, x=x, classes=classes,
                            last_conv=last_conv, hwc=hwc, score=cvis.CategoricalScore(classes))
    return _cases[name]


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    return make_case(request.param)


class GuidedReLU(torch.autograd.Function):
    """Guided backpropagation's ReLU: passes dy * [dy > 0] * [x > 0] back."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, dy):
        x, = ctx.saved_tensors
        return dy * (dy > 0) * (x > 0)


class DeconvReLU(torch.autograd.Function):
    """Deconvnet's ReLU: passes relu(dy) back, whatever the input."""

    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, dy):
        return dy.clamp(min=0)


def input_grad(case, x, relu=None, classes=None):
    """d(sum of scores)/dX in float64, and the scores and activations."""
    net = case["net"]
    net.relu = relu or F.relu
    try:
        xt = t64(x, grad=True)
        out, acts = net.forward(xt, logits=True)
        s = categorical(out, classes or case["classes"])
        s.sum().backward()
    finally:
        net.relu = F.relu
    return xt.grad, s.detach(), acts


def scores64(case, x):
    with torch.no_grad():
        out, _ = case["net"].forward(t64(x), logits=True)
        return categorical(out, case["classes"]).numpy()


def check_input_method(ours_fn, raw, what):
    """Default maps (channel sum, normalized) and keepdims maps against a
    reference per-channel attribution raw (B,H,W,C)."""
    compare(ours_fn(), normalize(raw.sum(dim=3)), what)
    compare(ours_fn(keepdims=True), normalize(raw), what + " keepdims")
    compare(ours_fn(reduce="abs_sum"), normalize(raw.sum(dim=3).abs()), what + " |sum|")
    compare(ours_fn(reduce="max_abs"), normalize(raw.abs().amax(dim=3)), what + " max |a|")


# ------------------------------------------------------ gradient methods
def test_input_x_gradient(case):
    g, _, _ = input_grad(case, case["x"])
    raw = t64(case["x"]) * g
    check_input_method(lambda **kw: cvis.input_x_gradient(case["model"], case["x"], case["score"],
                                                          **kw), raw, "input x gradient")


@pytest.mark.parametrize("kind", ["guided", "deconvnet"])
def test_guided_backprop_and_deconvnet(case, kind):
    """Every ReLU follows the rule: those fused into convolution and dense
    layers (both networks) and ReLU layers of their own (the residual
    network's res_relu).  The true gradient differs, so a method that left
    any ReLU alone would fail."""
    relu = (GuidedReLU if kind == "guided" else DeconvReLU).apply
    g, _, _ = input_grad(case, case["x"], relu=relu)
    fn = cvis.guided_backprop if kind == "guided" else cvis.deconvnet
    check_input_method(lambda **kw: fn(case["model"], case["x"], case["score"], **kw), g, kind)
    plain, _, _ = input_grad(case, case["x"])
    assert (normalize(plain.sum(dim=3)) - normalize(g.sum(dim=3))).abs().max() > 0.05


def test_guided_gradcam(case):
    H, W = case["hwc"][:2]
    g, _, _ = input_grad(case, case["x"], relu=GuidedReLU.apply)
    _, _, acts = input_grad(case, case["x"])
    A, gA = acts[case["last_conv"]].detach(), acts[case["last_conv"]].grad
    cam = torch.relu((gA.mean(dim=(1, 2), keepdim=True) * A).sum(dim=3))
    raw = g * expand(cam, H, W)[..., None]
    check_input_method(lambda **kw: cvis.guided_gradcam(case["model"], case["x"], case["score"],
                                                        **kw), raw, "guided grad-cam")


# ----------------------------------------------------------- CAM methods
def cam_check(case, fn, cam, what):
    H, W = case["hwc"][:2]
    compare(fn(case["model"], case["x"], case["score"]), normalize(expand(cam, H, W)), what)
    compare(fn(case["model"], case["x"], case["score"], expand=False), normalize(cam),
            what + " layer size")


def test_xgradcam(case):
    _, _, acts = input_grad(case, case["x"])
    A, g = acts[case["last_conv"]].detach(), acts[case["last_conv"]].grad
    w = (g * A).sum(dim=(1, 2), keepdim=True) / (A.sum(dim=(1, 2), keepdim=True) + 1e-7)
    cam_check(case, cvis.xgradcam, torch.relu((w * A).sum(dim=3)), "xgrad-cam")


def test_hirescam(case):
    _, _, acts = input_grad(case, case["x"])
    A, g = acts[case["last_conv"]].detach(), acts[case["last_conv"]].grad
    cam = torch.relu((g * A).sum(dim=3))
    # HiRes-CAM keeps negative gradients, which Layer-CAM clips: they differ
    assert (cam - torch.relu((torch.relu(g) * A).sum(dim=3))).abs().max() > 1e-3
    cam_check(case, cvis.hirescam, cam, "hires-cam")


def test_eigencam(case):
    """Equal, up to the sign, to the first principal component of the
    centred activations computed by numpy's SVD (as pytorch-grad-cam
    computes it); the sign is the one whose projection correlates positively
    with the channel sum."""
    H, W = case["hwc"][:2]
    with torch.no_grad():
        _, acts = case["net"].forward(t64(case["x"]))
    A = acts[case["last_conv"]].numpy()
    B, h, w, K = A.shape
    cams = []
    for b in range(B):
        M = A[b].reshape(h * w, K)
        Mc = M - M.mean(axis=0)
        _, S, VT = np.linalg.svd(Mc, full_matrices=False)
        # a well-separated first component, so that the float32 one is close
        assert S[0] > 1.05 * S[1], (case["name"], b, S[:3])
        proj = Mc @ VT[0]
        sign = 1.0 if proj @ M.sum(axis=1) >= 0 else -1.0
        cams.append(np.maximum(sign * proj, 0).reshape(h, w))
        # the other sign gives another map: the rule is what picks this one
        assert np.abs(np.maximum(-sign * proj, 0).reshape(h, w) - cams[-1]).max() > 1e-3
    cam = torch.tensor(np.stack(cams))
    ours = cvis.eigencam(case["model"], case["x"])
    compare(ours, normalize(expand(cam, H, W)), "eigen-cam")
    compare(cvis.eigencam(case["model"], case["x"], expand=False), normalize(cam),
            "eigen-cam layer size")


def test_ablationcam(case):
    """w_k = (s - s_k) / s with channel k of the layer's output set to 0,
    the ablated networks run in torch with the layer's output edited."""
    layer, net, classes = case["last_conv"], case["net"], case["classes"]
    with torch.no_grad():
        out, acts = net.forward(t64(case["x"]), logits=True)
        s = categorical(out, classes)
        A = acts[layer]
        K = A.shape[3]
        w = torch.zeros(3, K, dtype=torch.float64)
        for k in range(K):
            def zero(v, k=k):
                v = v.clone()
                v[..., k] = 0
                return v
            out_k, _ = net.forward(t64(case["x"]), logits=True, edit={layer: zero})
            w[:, k] = (s - categorical(out_k, classes)) / s
    cam_check(case, lambda m, x, sc, **kw: cvis.ablationcam(m, x, sc, batch_size=5, **kw),
              torch.relu((w[:, None, None, :] * A).sum(dim=3)), "ablation-cam")


# ------------------------------------------------- Integrated Gradients
def nodes(rule, n):
    """Captum's quadratures on [0, 1]: (alphas, step sizes)."""
    if rule == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(n)
        return 0.5 * (1 + x), 0.5 * w
    steps = np.full(n, 1.0 / n)
    if rule == "riemann_trapezoid":
        steps[0] /= 2
        steps[-1] /= 2
        return np.linspace(0, 1, n), steps
    start, stop = {"riemann_left": (0, 1 - 1 / n), "riemann_right": (1 / n, 1),
                   "riemann_middle": (1 / (2 * n), 1 - 1 / (2 * n))}[rule]
    return np.linspace(start, stop, n), steps


def ig_reference(case, x, x0, rule, n, cache=None):
    """Captum's sum in float64 (gradients at the images X0 + a (X - X0) made
    in float32, as the rows libcvis runs; cache: {alpha: gradient} for a
    zero baseline)."""
    alphas, steps = nodes(rule, n)
    total = torch.zeros(x.shape, dtype=torch.float64)
    for a, st in zip(alphas, steps):
        key = float(np.float32(a))
        if cache and key in cache:
            g = cache[key]
        else:
            g, _, _ = input_grad(case, (x0 + np.float32(a) * (x - x0)).astype(np.float32))
        total += st * g
    return (t64(x) - t64(x0)) * total


RULES = ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"]
IG_STEPS = 6


_ig_batches = {}


def ig_batch(case):
    """The batch for the parity of Integrated Gradients, and torch's float64
    gradients at its interpolated images {alpha: gradient}.  On the tutorial
    network a random batch often has an interpolated image with a
    pre-activation closer to a ReLU's kink than float32 resolves: with seed
    7, at the Gauss-Legendre node 0.38 of image 0, torch's own float32
    gradient differs from its float64 one by 7e-3 of the largest, and seed 8
    by 5e-2; there two correct float32 implementations may differ from
    float64 as much as that (SEMANTICS.md, last section).  So the batch used
    is the first, from seed 9 on, whose interpolated images all have float32
    gradients (torch's) within 1e-5 of the float64 ones (seed 9: 8e-7)."""
    if case["name"] != "tutorial":
        return case["x"], {}
    if "tutorial" in _ig_batches:
        return _ig_batches["tutorial"]
    alphas = set(float(np.float32(a)) for rule in ("gausslegendre", "riemann_trapezoid")
                 for a in nodes(rule, IG_STEPS)[0])
    net32 = nets.TorchNet(case["spec"], case["model"], torch.float32)
    tried = []
    for seed in range(9, 15):
        x = np.random.default_rng(seed).uniform(0, 1, (3,) + case["hwc"]).astype(np.float32)
        worst, cache = 0.0, {}
        for a in sorted(alphas):
            xa = (np.float32(a) * x).astype(np.float32)
            cache[a], _, _ = input_grad(case, xa)
            x32 = torch.tensor(xa, requires_grad=True)
            out, _ = net32.forward(x32, logits=True)
            categorical(out, case["classes"]).sum().backward()
            scale = float(cache[a].abs().max())
            worst = max(worst, float((x32.grad.double() - cache[a]).abs().max()) / scale)
        tried.append((seed, worst))
        if worst < 1e-5:
            return x, cache
    pytest.fail("no well-conditioned batch: %s" % tried)


@pytest.mark.parametrize("name,rule", [("residual", r) for r in RULES] + [
    ("tutorial", "gausslegendre"), ("tutorial", "riemann_trapezoid")])
def test_integrated_gradients_rules(name, rule):
    """Every rule on the residual network, two on the tutorial's."""
    case = make_case(name)
    x, cache = ig_batch(case)
    raw = ig_reference(case, x, np.zeros_like(x), rule, IG_STEPS, cache)
    check_input_method(lambda **kw: cvis.integrated_gradients(
        case["model"], x, case["score"], n_steps=IG_STEPS, method=rule, internal_batch_size=4,
        **kw), raw, "integrated gradients " + rule)


def blur(img, sigma):
    """A Gaussian blur of (B,H,W,C) images written from the definition:
    kernel radius ceil(3 sigma), normalized, edges mirrored (numpy's
    'symmetric' padding)."""
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    H, W = img.shape[1:3]
    p = np.pad(img.astype(np.float64), ((0, 0), (r, r), (r, r), (0, 0)), mode="symmetric")
    rows = sum(k[i] * p[:, :, i:i + W] for i in range(2 * r + 1))
    return sum(k[i] * rows[:, i:i + H] for i in range(2 * r + 1))


def uniform_baseline(x, seed):
    """Uniform noise within each image's own range, from libcvis's generator."""
    rng = Xoshiro(seed)
    out = np.empty(x.shape, dtype=np.float64)
    for b in range(x.shape[0]):
        lo, hi = float(x[b].min()), float(x[b].max())
        out[b] = np.array([lo + (hi - lo) * rng.uniform() for _ in range(x[b].size)]).reshape(
            x.shape[1:])
    return out.astype(np.float32)


@pytest.mark.parametrize("kind", ["blur", "uniform", "mean", "one tensor", "tensor per image"])
def test_integrated_gradients_baselines(kind):
    spec_fn, hwc, classes = CASES["residual"]
    model, net = nets.make_pair(spec_fn(), hwc, seed=3)
    c = dict(net=net, classes=classes)
    x = np.random.default_rng(7).uniform(0, 1, (3,) + hwc).astype(np.float32)
    given = np.random.default_rng(9).uniform(0, 0.5, (3,) + hwc).astype(np.float32)
    baselines = {"blur": lambda: blur(x, 1.5).astype(np.float32),
                 "uniform": lambda: uniform_baseline(x, 4),
                 "mean": lambda: np.broadcast_to(x.mean(axis=(1, 2), keepdims=True),
                                                 x.shape).astype(np.float32),
                 "one tensor": lambda: np.broadcast_to(given[:1], x.shape).copy(),
                 "tensor per image": lambda: given}
    x0 = baselines[kind]()
    arg = {"one tensor": given[:1], "tensor per image": given}.get(kind, kind)
    raw = ig_reference(c, x, x0, "gausslegendre", 5)
    ours = cvis.integrated_gradients(model, x, cvis.CategoricalScore(classes), baselines=arg,
                                     n_steps=5, blur_sigma=1.5, seed=4, keepdims=True)
    compare(ours, normalize(raw), "integrated gradients, %s baseline" % kind)


def test_integrated_gradients_delta(case):
    """The delta reported is exactly sum(attributions) - (s(X) - s(X0)), with
    the scores that torch computes; a coarse rule is visibly incomplete."""
    x = case["x"]
    e = cvis.Explainer(case["model"], "integrated-gradients", ig_steps=8, normalize=False,
                       keepdims=True)
    raw = e(x, case["score"])
    delta = e.info("completeness_delta", 3)
    s, s0 = e.info("score", 3), e.info("baseline_score", 3)
    np.testing.assert_allclose(s, scores64(case, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s0, scores64(case, np.zeros_like(x)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(delta, raw.reshape(3, -1).astype(np.float64).sum(axis=1) - (s - s0),
                               rtol=1e-6, atol=1e-6)
    _, coarse = cvis.integrated_gradients(case["model"], x, case["score"], n_steps=2,
                                          method="riemann_left", return_convergence_delta=True)
    assert np.abs(coarse).sum() > 5 * np.abs(delta).sum(), (coarse, delta)


def smooth_spec(spec):
    """The same network with every ReLU replaced by tanh: an integrand
    without kinks."""
    return [(l[0], l[1], dict(l[2], act="tanh") if l[2].get("act") in ("relu", "relu6")
             else l[2]) + tuple(l[3:]) for l in spec]


def test_integrated_gradients_completeness(case):
    """Completeness with 64 Gauss-Legendre nodes: below 1e-3 relative on a
    smooth network (the tutorial's or the residual network with tanh for
    ReLU; measured about 1e-6, float32's limit).  On ReLU networks the
    integrand jumps wherever the path crosses a kink, and the rule converges
    only as 1/n: there the delta is what torch finds in float64 with the same
    nodes (residual network, 64 nodes: 2e-3 to 5e-3 relative; docs/methods.md
    gives the figures measured on the trained models)."""
    x = case["x"]
    smooth, _ = nets.make_pair(smooth_spec(case["spec"]), case["hwc"], seed=3)
    e = cvis.Explainer(smooth, "integrated-gradients", ig_steps=64)
    e(x, case["score"])
    delta, s, s0 = (e.info(k, 3) for k in ("completeness_delta", "score", "baseline_score"))
    rel = np.abs(delta) / np.abs(s - s0)
    assert rel.max() < 1e-3, (case["name"], rel, s - s0)
    if case["name"] != "residual":
        return
    e = cvis.Explainer(case["model"], "integrated-gradients", ig_steps=64)
    e(x, case["score"])
    alphas, steps = nodes("gausslegendre", 64)
    total = torch.zeros(x.shape, dtype=torch.float64)
    for a, st in zip(alphas, steps):
        g, _, _ = input_grad(case, a * x.astype(np.float64))
        total += st * g
    with torch.no_grad():
        s64 = scores64(case, x) - scores64(case, np.zeros_like(x))
    delta64 = (t64(x) * total).sum(dim=(1, 2, 3)).numpy() - s64
    np.testing.assert_allclose(e.info("completeness_delta", 3), delta64, rtol=0, atol=2e-5)


def test_info_is_per_run(case):
    e = cvis.Explainer(case["model"], "integrated-gradients", ig_steps=2)
    with pytest.raises(cvis.StateError):
        e.info("completeness_delta", 3)
    e(case["x"], case["score"])
    with pytest.raises(cvis.ShapeError):
        e.info("completeness_delta", 2)
    e.set("nt_type", "smoothgrad")
    e.set("nt_samples", 2)
    e(case["x"], case["score"])
    with pytest.raises(cvis.StateError):  # a noisy sample's delta means nothing
        e.info("completeness_delta", 3)
    g = cvis.Explainer(case["model"], "gradcam")
    g(case["x"], case["score"])
    with pytest.raises(cvis.StateError):
        g.info("score", 3)


# ------------------------------------------------ perturbation methods
def occlusion_reference(case, window, stride, value):
    """Captum's Occlusion: windows at i*stride, i = 0..ceil((H-w)/stride),
    clipped at the edge; each pixel's mean score drop over its windows."""
    x = case["x"]
    B, H, W, _ = x.shape
    s0 = scores64(case, x)
    total = np.zeros((B, H, W))
    count = np.zeros((H, W))
    for i in range(int(np.ceil((H - window) / stride)) + 1):
        for j in range(int(np.ceil((W - window) / stride)) + 1):
            y0, x0 = i * stride, j * stride
            occluded = x.copy()
            occluded[:, y0:y0 + window, x0:x0 + window, :] = value
            total[:, y0:y0 + window, x0:x0 + window] += (s0 - scores64(case, occluded))[:, None,
                                                                                         None]
            count[y0:y0 + window, x0:x0 + window] += 1
    return torch.tensor(total / count)


@pytest.mark.parametrize("name,window,stride,value", [
    ("residual", 0, 0, 0.0), ("residual", 6, 4, 0.5), ("tutorial", 50, 40, 0.0)])
def test_occlusion(name, window, stride, value):
    """The default window (min(H,W)/8, stride half of it), windows whose
    last position is clipped at the edge, a baseline value."""
    case = make_case(name)
    H = case["hwc"][0]
    w = window or max(1, round(min(case["hwc"][:2]) / 8))
    s = stride or max(1, w // 2)
    if window:
        assert (int(np.ceil((H - w) / s))) * s + w > H  # clipped
    ref = occlusion_reference(case, w, s, value)
    ours = cvis.occlusion(case["model"], case["x"], case["score"], window=window, stride=stride,
                          baseline_value=value, batch_size=7)
    compare(ours, normalize(ref), "occlusion %d/%d" % (w, s))


def rise_masks(n, p, cell, H, W, seed):
    """RISE's masks as SEMANTICS.md and docs/methods.md define them, with
    libcvis's generator: per mask the (gh+1) x (gw+1) cells in row-major
    order (kept when uniform < p), then the shift dy, dx in [0, cell-1];
    the grid upsampled bilinearly with half-pixel centres, edges clamped."""
    rng = Xoshiro(seed)
    gh, gw = -(-H // cell), -(-W // cell)
    masks = []

    def axis(n_out, shift, n_cells):
        src = (np.arange(n_out) + shift + 0.5) / cell - 0.5
        lo = np.floor(src)
        f = src - lo
        return (np.clip(lo, 0, n_cells).astype(int), np.clip(lo + 1, 0, n_cells).astype(int), f)

    for _ in range(n):
        grid = np.array([rng.uniform() < p for _ in range((gh + 1) * (gw + 1))],
                        dtype=np.float64).reshape(gh + 1, gw + 1)
        dy = rng.u64() % cell
        dx = rng.u64() % cell
        y0, y1, fy = axis(H, dy, gh)
        x0, x1, fx = axis(W, dx, gw)
        top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
        bot = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
        masks.append(top * (1 - fy)[:, None] + bot * fy[:, None])
    return np.stack(masks)


def test_rise(case):
    n, p, seed = (40, 0.5, 5) if case["name"] == "residual" else (8, 0.3, 6)
    H, W = case["hwc"][:2]
    cell = 0 if case["name"] == "residual" else 24
    c = cell or -(-max(H, W) // 7)
    masks = rise_masks(n, p, c, H, W, seed)
    x = case["x"]
    sal = np.zeros((3, H, W))
    for m in masks:
        sal += scores64(case, (x * m[None, :, :, None]).astype(np.float32))[:, None, None] * m
    ref = torch.tensor(sal / (n * p))
    ours = cvis.rise(case["model"], x, case["score"], n_masks=n, p=p, cell=cell, seed=seed,
                     batch_size=16)
    compare(ours, normalize(ref), "rise")


# ------------------------------------------------------- noise tunnel
@pytest.fixture(scope="module")
def noisy():
    """The residual network and four noisy copies of its batch, drawn as the
    noise tunnel draws them (one normal per element, sample after sample)."""
    spec_fn, hwc, classes = CASES["residual"]
    model, net = nets.make_pair(spec_fn(), hwc, seed=3)
    x = np.random.default_rng(7).uniform(0, 1, (3,) + hwc).astype(np.float32)
    rng, stdev = Xoshiro(21), 0.15
    copies = []
    for _ in range(4):
        flat = x.reshape(-1)
        copies.append(np.array([flat[i] + stdev * rng.normal() for i in range(flat.size)],
                               dtype=np.float32).reshape(x.shape))
    return dict(model=model, net=net, classes=classes, x=x, copies=copies, stdev=stdev,
                seed=21, hwc=hwc)


@pytest.mark.parametrize("method", ["saliency", "input-x-gradient", "guided-backprop",
                                    "integrated-gradients"])
@pytest.mark.parametrize("nt_type", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_noise_tunnel(noisy, method, nt_type):
    c = dict(net=noisy["net"], classes=noisy["classes"])
    per_sample = []
    for xn in noisy["copies"]:
        if method == "integrated-gradients":
            per_sample.append(ig_reference(c, xn, np.zeros_like(xn), "gausslegendre", 3))
            continue
        relu = GuidedReLU.apply if method == "guided-backprop" else None
        g, _, _ = input_grad(c, xn, relu=relu)
        per_sample.append({"saliency": g.abs(), "input-x-gradient": t64(xn) * g,
                           "guided-backprop": g}[method])
    a = torch.stack(per_sample)
    ref = {"smoothgrad": a.mean(0), "smoothgrad_sq": (a ** 2).mean(0),
           "vargrad": (a ** 2).mean(0) - a.mean(0) ** 2}[nt_type]
    ours = cvis.noise_tunnel(noisy["model"], noisy["x"], cvis.CategoricalScore(noisy["classes"]),
                             method=method, nt_type=nt_type, nt_samples=4,
                             stdevs=noisy["stdev"], seed=noisy["seed"], keepdims=True,
                             **({"ig_steps": 3} if method == "integrated-gradients" else {}))
    compare(ours, normalize(ref), "noise tunnel %s over %s" % (nt_type, method))


def test_noise_tunnel_refusals(noisy):
    m, x, s = noisy["model"], noisy["x"], cvis.CategoricalScore(noisy["classes"])
    with pytest.raises(cvis.InvalidArgumentError):  # SmoothGrad's own samples
        cvis.noise_tunnel(m, x, s, method="smoothgrad")
    with pytest.raises(cvis.InvalidArgumentError):
        cvis.noise_tunnel(m, x, s, method="gradcam")
    with pytest.raises(ValueError):
        cvis.noise_tunnel(m, x, s, nt_type="smoothgrad_cubed")
