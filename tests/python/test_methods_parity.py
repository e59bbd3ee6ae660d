"""Every method of the tutorial against an independent torch implementation
of SEMANTICS.md, on the tutorial model and the small residual network,
batch of 3 with different target classes.  References run in float64."""
import numpy as np
import pytest

import cvis
import nets
from conftest import require_torch

torch = require_torch()
F = torch.nn.functional
TOL = 1e-4
CASES = {
    "tutorial": (nets.tutorial_spec, (128, 128, 3), [0, 1, 2]),
    "residual": (nets.residual_spec, (32, 32, 3), [4, 1, 2]),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    spec_fn, hwc, classes = CASES[request.param]
    spec = spec_fn()
    model, net = nets.make_pair(spec, hwc, seed=3)
    x = np.random.default_rng(7).uniform(0, 1, (3,) + hwc).astype(np.float32)
    last_conv = [l for l in model.layers if l.is_conv][-1].name
    return dict(name=request.param, spec=spec, model=model, net=net, x=x, classes=classes,
                last_conv=last_conv, hwc=hwc)


def t64(x, grad=False):
    return torch.tensor(np.asarray(x), dtype=torch.float64, requires_grad=grad)


def categorical(out, idx):
    """s_b = mean over non-batch axes of out[b, ..., idx_b]."""
    rows = [out[b, ..., i].reshape(-1).mean() for b, i in enumerate(idx)]
    return torch.stack(rows)


def normalize(a):
    a = a.reshape(a.shape[0], -1), a.shape
    flat, shape = a
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    return ((flat - lo) / (hi - lo + 1e-7)).reshape(shape)


def expand(cam, H, W):
    return F.interpolate(cam[:, None], size=(H, W), mode="bilinear", align_corners=True)[:, 0]


def grads(c, x, layer=None, logits=True):
    xt = t64(x, grad=True)
    out, acts = c["net"].forward(xt, logits=logits)
    s = categorical(out, c["classes"])
    s.sum().backward()
    return xt, s, acts


def compare(ours, ref, what, tol=TOL):
    ref = ref.detach().numpy() if hasattr(ref, "detach") else ref
    assert ours.shape == ref.shape, (what, ours.shape, ref.shape)
    diff = np.abs(ours - ref)
    worst = diff.max()
    where = np.unravel_index(diff.argmax(), diff.shape)
    assert worst < tol, "%s: max |diff| %.3g at %s (ours %.6g, torch %.6g)" % (
        what, worst, where, ours[where], ref[where])
    return worst


def test_forward_matches(case):
    out, _ = case["net"].forward(t64(case["x"]))
    compare(case["model"].predict(case["x"]), out, "forward")


@pytest.mark.parametrize("logits", [True, False])
def test_saliency(case, logits):
    xt, _, _ = grads(case, case["x"], logits=logits)
    ref = normalize(xt.grad.abs().amax(dim=3))
    ours = cvis.saliency(case["model"], case["x"], cvis.CategoricalScore(case["classes"]),
                         logits=logits)
    compare(ours, ref, "saliency")


def test_saliency_keepdims(case):
    xt, _, _ = grads(case, case["x"])
    ref = normalize(xt.grad.abs())
    ours = cvis.saliency(case["model"], case["x"], cvis.CategoricalScore(case["classes"]),
                         keepdims=True)
    compare(ours, ref, "saliency keepdims")


class Xoshiro:
    """libcvis's generator (xoshiro256** seeded by splitmix64, Box-Muller
    normals with the spare kept), written from the published algorithms, so
    that SmoothGrad's noise can be reproduced exactly."""
    M = (1 << 64) - 1

    def __init__(self, seed):
        self.s = []
        x = seed & self.M
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & self.M
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.M
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.M
            self.s.append(z ^ (z >> 31))
        self.spare = None

    def u64(self):
        s, M = self.s, self.M
        rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & M
        r = (rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return r

    def uniform(self):
        return (self.u64() >> 11) * (1.0 / 9007199254740992.0)

    def normal(self):
        if self.spare is not None:
            v, self.spare = self.spare, None
            return v
        u1 = 0.0
        while u1 <= 0.0:
            u1 = self.uniform()
        u2 = self.uniform()
        mag = np.sqrt(-2.0 * np.log(u1))
        self.spare = mag * np.sin(2.0 * np.pi * u2)
        return mag * np.cos(2.0 * np.pi * u2)


def test_smoothgrad_same_noise():
    """SmoothGrad with libcvis's noise stream reproduced: on the residual
    network (small enough for a pure-Python generator)."""
    spec_fn, hwc, classes = CASES["residual"]
    model, net = nets.make_pair(spec_fn(), hwc, seed=3)
    x = np.random.default_rng(7).uniform(0, 1, (3,) + hwc).astype(np.float32)
    samples, noise, seed = 4, 0.2, 11
    rng = Xoshiro(seed)
    total = torch.zeros((3,) + hwc, dtype=torch.float64)
    for _ in range(samples):
        noisy = np.empty_like(x)
        for b in range(3):
            sigma = noise * (float(x[b].max()) - float(x[b].min()))
            flat = x[b].reshape(-1)
            vals = [flat[i] + sigma * rng.normal() for i in range(flat.size)]
            noisy[b] = np.array(vals, dtype=np.float32).reshape(hwc)
        xt = t64(noisy, grad=True)
        out, _ = net.forward(xt, logits=True)
        categorical(out, classes).sum().backward()
        total += xt.grad.abs()
    ref = normalize((total / samples).amax(dim=3))
    ours = cvis.saliency(model, x, cvis.CategoricalScore(classes), smooth_samples=samples,
                         smooth_noise=noise, seed=seed)
    compare(ours, ref, "smoothgrad")
    again = cvis.saliency(model, x, cvis.CategoricalScore(classes), smooth_samples=samples,
                          smooth_noise=noise, seed=seed)
    assert np.array_equal(ours, again)


def cam_reference(case, kind, layer):
    _, s, acts = grads(case, case["x"])
    A = acts[layer].detach()
    g = acts[layer].grad
    if kind == "gradcam":
        cam = torch.relu((g.mean(dim=(1, 2), keepdim=True) * A).sum(dim=3))
    elif kind == "layercam":
        cam = torch.relu((torch.relu(g) * A).sum(dim=3))
    elif kind == "gradcam++":
        # the reference toolkit's formula, literally (exp(score) is safe in float64 here)
        S = torch.exp(s.detach()).view(-1, 1, 1, 1)
        d1, d2, d3 = S * g, S * g ** 2, S * g ** 3
        sa = A.sum(dim=(1, 2), keepdim=True)
        den = 2 * d2 + d3 * sa
        den = torch.where(d2 == 0, torch.ones_like(den), den)
        alpha = d2 / den
        asum = alpha.sum(dim=(1, 2), keepdim=True)
        alpha = alpha / torch.where(asum != 0, asum, torch.ones_like(asum))
        w = (alpha * torch.relu(d1)).sum(dim=(1, 2), keepdim=True)
        cam = torch.relu((w * A).sum(dim=3))
    return cam


def gradcam_pp_from(A, g):
    """Grad-CAM++ on given activations and gradients, in float64, the
    reference's formula with S = 1 (it cancels after normalization)."""
    sa = A.sum(dim=(1, 2), keepdim=True)
    d1, d2, d3 = g, g ** 2, g ** 3
    den = 2 * d2 + d3 * sa
    den = torch.where(d2 == 0, torch.ones_like(den), den)
    alpha = d2 / den
    asum = alpha.sum(dim=(1, 2), keepdim=True)
    alpha = alpha / torch.where(asum != 0, asum, torch.ones_like(asum))
    w = (alpha * torch.relu(d1)).sum(dim=(1, 2), keepdim=True)
    return torch.relu((w * A).sum(dim=3))


def test_gradcam_plus_plus_conditioning(case):
    """Where 2 + g*sum(A) comes within 1e-2 of zero, alpha amplifies any
    rounding of g (SEMANTICS.md): the float64 reference then cannot judge a
    float32 gradient.  There the formula is checked on libcvis's own A and g
    (computed in double), and the gradients themselves by Grad-CAM above."""
    m, x, classes = case["model"], case["x"], case["classes"]
    _, _, acts = grads(case, x)
    A64, g64 = acts[case["last_conv"]].detach(), acts[case["last_conv"]].grad
    den = (2 + g64 * A64.sum(dim=(1, 2), keepdim=True))[g64 != 0].abs()
    layer = m.layer_index(case["last_conv"])
    p = cvis.Pass(m, logits=True, input_grad=False, grad_layer=layer)
    p.forward(x)
    seed = np.zeros(p.forward(x).shape, np.float32)
    seed[np.arange(len(classes)), classes] = 1
    p.backward(seed)
    A, g = t64(p.layer_output(layer)), t64(p.layer_grad(layer))
    H, W = case["hwc"][:2]
    ref = normalize(expand(gradcam_pp_from(A, g), H, W))
    compare(cvis.gradcam_plus_plus(m, x, cvis.CategoricalScore(classes)), ref,
            "gradcam++ on libcvis's gradients (min |2+g*SA| = %.3g)" % den.min())


@pytest.mark.parametrize("kind,fn", [("gradcam", cvis.gradcam), ("layercam", cvis.layercam),
                                     ("gradcam++", cvis.gradcam_plus_plus)])
def test_cam_methods(case, kind, fn):
    H, W = case["hwc"][:2]
    cam = cam_reference(case, kind, case["last_conv"])
    if kind == "gradcam++":
        _, _, acts = grads(case, case["x"])
        A, g = acts[case["last_conv"]].detach(), acts[case["last_conv"]].grad
        den = (2 + g * A.sum(dim=(1, 2), keepdim=True))[g != 0].abs().min()
        if den < 1e-2:
            pytest.skip("ill-conditioned (min |2+g*SA| = %.3g): "
                        "test_gradcam_plus_plus_conditioning covers it" % den)
    score = cvis.CategoricalScore(case["classes"])
    compare(fn(case["model"], case["x"], score), normalize(expand(cam, H, W)), kind)
    compare(fn(case["model"], case["x"], score, expand=False), normalize(cam), kind + " layer size")


def test_gradcam_layer_choice(case):
    """By index with the backward seek, by name exactly as named."""
    m, score = case["model"], cvis.CategoricalScore(case["classes"])
    H, W = case["hwc"][:2]
    default = cvis.gradcam(m, case["x"], score)
    # from the last layer (dense) the seek lands on the last convolution
    e = cvis.Explainer(m, "gradcam")
    seeked = e(case["x"], score)
    assert m.layers[e.layer].name == case["last_conv"]
    assert np.array_equal(default, seeked)
    # an earlier convolution by name
    first_conv = [l for l in m.layers if l.is_conv][0].name
    cam = cam_reference(case, "gradcam", first_conv)
    compare(cvis.gradcam(m, case["x"], score, layer=first_conv),
            normalize(expand(cam, H, W)), "gradcam first conv")
    if case["name"] == "residual":
        # a residual block's ReLU, used as named although not a convolution
        cam = cam_reference(case, "gradcam", "res_relu")
        compare(cvis.gradcam(m, case["x"], score, layer="res_relu"),
                normalize(expand(cam, H, W)), "gradcam res_relu")


def scorecam_reference(case, layer, max_n=None):
    net, x, classes = case["net"], case["x"], case["classes"]
    H, W = case["hwc"][:2]
    with torch.no_grad():
        _, acts = net.forward(t64(x))
        A = acts[layer]
        B, h, w, K = A.shape
        chans = list(range(K))
        if max_n is not None and max_n < K:
            sd = A.reshape(B, h * w, K).std(dim=1, unbiased=False)
            chosen = set()
            for b in range(B):
                # largest first, the lower index on ties
                order = sorted(range(K), key=lambda k: (-float(sd[b, k]), k))
                chosen.update(order[:max_n])
            chans = sorted(chosen)
        weights = torch.zeros(B, K, dtype=torch.float64)
        for b in range(B):
            for k in chans:
                up = expand(A[b:b + 1, :, :, k], H, W)[0]
                mask = (up - up.min()) / (up.max() - up.min() + 1e-7)
                masked = t64(x[b:b + 1]) * mask[None, :, :, None]
                out, _ = net.forward(masked, logits=True)
                p = torch.softmax(out, dim=-1)
                weights[b, k] = p[0, ..., classes[b]].mean()
        cam = torch.relu(sum(weights[:, k, None, None] * A[..., k] for k in chans))
    return cam


@pytest.mark.parametrize("max_n", [None, 3])
def test_scorecam(case, max_n):
    H, W = case["hwc"][:2]
    cam = scorecam_reference(case, case["last_conv"], max_n)
    ours = cvis.scorecam(case["model"], case["x"], cvis.CategoricalScore(case["classes"]),
                         max_n=max_n, batch_size=5)
    compare(ours, normalize(expand(cam, H, W)), "scorecam max_n=%s" % max_n)


def am_reference(net, layer, seed_img, steps, optimizer, lr, tv_w, norm_w, norm_p,
                 b1=0.9, b2=0.999, eps=1e-7):
    """The reference's loop, modifiers off: L = -score + TV + Norm, with
    Keras's update rules written out."""
    v = t64(seed_img)
    m1, m2 = torch.zeros_like(v), torch.zeros_like(v)
    n = v[0].numel()
    for t in range(1, steps + 1):
        v = v.detach().requires_grad_(True)
        out, _ = net.forward(v, stop_at=layer, drop_act=layer)
        score = categorical(out, [1] * v.shape[0]).sum()
        tv = ((v[:, 1:] - v[:, :-1]).abs().sum() + (v[:, :, 1:] - v[:, :, :-1]).abs().sum()) / n
        norm = ((v.abs() ** norm_p).sum(dim=(1, 2, 3)) ** (1.0 / norm_p)).sum() / n ** (1.0 / norm_p)
        (-score + tv_w * tv + norm_w * norm).backward()
        g = v.grad
        if optimizer == "sgd":
            v = v.detach() - lr * g
        elif optimizer == "adam":
            m1 = b1 * m1 + (1 - b1) * g
            m2 = b2 * m2 + (1 - b2) * g * g
            lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            v = v.detach() - lr_t * m1 / (torch.sqrt(m2) + eps)
        else:  # rmsprop, rho = b2
            m2 = b2 * m2 + (1 - b2) * g * g
            v = v.detach() - lr * g / (torch.sqrt(m2) + eps)
    return torch.clamp(v, 0, 1).detach()


@pytest.mark.parametrize("optimizer,steps,tv_w,norm_w,norm_p", [
    ("sgd", 40, 0.5, 0.3, 2), ("sgd", 40, 0.5, 0.3, 1),
    ("adam", 5, 0.5, 0.0, 2), ("adam", 5, 0.0, 0.3, 2), ("adam", 5, 0.5, 0.3, 2),
    ("rmsprop", 5, 0.0, 0.3, 1), ("rmsprop", 5, 0.5, 0.3, 1)])
def test_activation_maximization_parity(case, optimizer, steps, tv_w, norm_w, norm_p):
    """Modifiers off (their random streams differ).  Plain gradient steps
    on both networks; Adam and RMSprop on the residual network only.  An
    adaptive optimizer moves every pixel by about the learning rate whatever
    the size of its gradient, so wherever a float32 and a float64 gradient
    disagree in sign (near a ReLU kink that the changing input crosses, or
    where the score and a regularizer cancel) the images part by a whole
    step.  Measured on the tutorial model (49152 pixels, seed 5): 85 values
    off by up to 2e-3 after 5 Adam steps with TV and Norm, and one value off
    by 0.43 after 5 RMSprop steps with Norm alone.  The residual network's
    runs stay within 1e-4 with plain steps and 2e-4 with adaptive ones: one
    value reaches 1.2e-4 after 5 RMSprop steps with Norm alone when its
    convolutions run on the AVX-512 direct kernel (under 1e-4 on AVX2),
    whose single passes are as close to float64 as AVX2's (test_ops)."""
    if optimizer != "sgd" and case["name"] == "tutorial":
        pytest.skip("adaptive steps turn float32 sign disagreements into whole steps")
    m, net = case["model"], case["net"]
    layer = case["last_conv"]
    seed_img = np.random.default_rng(5).uniform(0, 1, (2,) + case["hwc"]).astype(np.float32)
    lr = 0.05 if optimizer == "sgd" else 0.01
    opt = {"sgd": cvis.SGD(lr), "adam": cvis.Adam(lr, 0.9, 0.999),
           "rmsprop": cvis.RMSprop(lr, 0.999)}[optimizer]
    ours = cvis.activation_maximization(
        m, cvis.CategoricalScore(1), layer=layer, steps=steps, seed_input=seed_img,
        input_range=(0, 1), input_modifiers=[],
        regularizers=[cvis.TotalVariation2D(tv_w), cvis.Norm(norm_w, p=norm_p)], optimizer=opt)
    ref = am_reference(net, layer, seed_img, steps, optimizer, lr, tv_w, norm_w, norm_p)
    compare(ours, ref, "activation maximization %s" % optimizer,
            TOL if optimizer == "sgd" else 2 * TOL)


def test_custom_and_multi_output_scores(case):
    """A Python callable score and an inactive second output give the same
    maps as the built-in categorical score."""
    m, x, classes = case["model"], case["x"], case["classes"]
    ref = cvis.gradcam(m, x, cvis.CategoricalScore(classes))

    def custom(output):
        s = output[np.arange(len(classes)), classes]
        g = np.zeros_like(output)
        g[np.arange(len(classes)), classes] = 1
        return s, g

    compare(cvis.gradcam(m, x, custom), ref, "custom score")
    last = m.layers[-1].name
    multi = m.submodel([last, m.layers[-2].name])
    e = cvis.Explainer(multi, "gradcam")
    compare(e(x, [cvis.CategoricalScore(classes), cvis.InactiveScore()]), ref, "two outputs")


def test_activation_maximization_climbs_like_adam():
    """SEMANTICS.md: on random weights, with modifiers and regularizers off,
    the filter's objective must rise about as far as a plain Adam ascent of
    the same objective from the same start.  The tutorial's call otherwise:
    third convolution, filter 7, 100 steps, Adam(1.0, 0.999), which in
    Keras's positional order is beta_1 = 0.999."""
    spec_fn, hwc, _ = CASES["tutorial"]
    m, net = nets.make_pair(spec_fn(), hwc, seed=3)
    start = np.random.default_rng(2).uniform(0, 255, (1,) + hwc).astype(np.float32)

    def objective(img):
        out, _ = net.forward(t64(img), stop_at="conv2d_2", drop_act="conv2d_2")
        return float(out[..., 7].mean())

    ours = cvis.activation_maximization(
        m, cvis.CategoricalScore(7), layer="conv2d_2", steps=100, seed_input=start,
        input_modifiers=[], regularizers=[], optimizer=cvis.Adam(1.0, 0.999))
    v = t64(start)
    m1, m2 = torch.zeros_like(v), torch.zeros_like(v)
    for t in range(1, 101):
        v = v.detach().requires_grad_(True)
        out, _ = net.forward(v, stop_at="conv2d_2", drop_act="conv2d_2")
        (-out[..., 7].mean()).backward()
        m1 = 0.999 * m1 + 0.001 * v.grad
        m2 = 0.999 * m2 + 0.001 * v.grad ** 2
        v = v.detach() - np.sqrt(1 - 0.999 ** t) / (1 - 0.999 ** t) * m1 / (torch.sqrt(m2) + 1e-7)
    adam_end = objective(torch.clamp(v, 0, 255).numpy())
    begin, ours_end = objective(start), objective(ours)
    assert adam_end > begin
    assert ours_end - begin >= 0.9 * (adam_end - begin), (begin, ours_end, adam_end)
