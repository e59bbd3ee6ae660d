"""The methods beyond the tutorial on resnet18 through ONNX: torchvision's
resnet18 (seeded random weights, eval mode, batch-norm statistics away from
the identity) exported by torch.onnx at opset 13 for 64x64 images, opened
by cvis.Model.load, and compared with float64 torch implementations of
each method's definition, written here.  The batch (two images, two
classes) is one where torch's float32 gradients agree with its float64 ones
at every point the gradient methods evaluate (SEMANTICS.md, last section).

Needs the ONNX importer (cvis.Model.load): without it the tests skip, and
under CI=true they fail."""
import copy
import os

import numpy as np
import pytest

import cvis
from conftest import require_torch
from test_methods_beyond import DeconvReLU, GuidedReLU, nodes, rise_masks
from test_methods_parity import TOL, compare, expand, normalize

torch = require_torch()
SIZE, CLASSES = 64, [3, 7]
CAM = "layer4.1.bn2"            # the last convolution-like layer, as the seek finds it
NAMED = "/layer3/layer3.1/relu_1/Relu"  # a residual block's output, by name
NAMED_MODULE = "layer3.1"
IG_STEPS = 4


def require_onnx():
    if not hasattr(cvis.Model, "load"):
        if os.environ.get("CI") == "true":
            pytest.fail("cvis.Model has no load: the ONNX importer is missing from this build")
        pytest.skip("cvis.Model has no load: the ONNX importer is not in this build yet")
    if os.environ.get("CI") == "true":
        import torchvision  # noqa: F401
        import onnx  # noqa: F401
    else:
        pytest.importorskip("torchvision")
        pytest.importorskip("onnx")


def module(model, path):
    for part in path.split("."):
        model = model[int(part)] if part.isdigit() else getattr(model, part)
    return model


class Net:
    """resnet18 in float64 with hooks: the outputs (and gradients) of chosen
    modules, a replacement for every ReLU, edits of a module's output."""

    def __init__(self, model):
        self.m = model

    def __call__(self, x_nhwc, relu=None, keep=(), edit=None):
        """Logits for NHWC x (a tensor); keep: module paths whose NHWC
        outputs are returned with their gradients retained."""
        acts, handles = {}, []
        for path in keep:
            # a residual block adds its shortcut in place to bn2's output:
            # keep a copy, and hand the block another one
            def hook(mod, inp, out, path=path):
                acts[path] = out.clone()
                if out.requires_grad:
                    acts[path].retain_grad()
                return acts[path].clone()
            handles.append(module(self.m, path).register_forward_hook(hook))
        if edit:
            for path, fn in edit.items():
                handles.append(module(self.m, path).register_forward_hook(
                    lambda mod, inp, out, fn=fn: fn(out)))
        saved = []
        if relu is not None:
            for mod in self.m.modules():
                if isinstance(mod, torch.nn.ReLU):
                    saved.append(mod)
                    mod.forward = relu
        try:
            out = self.m(x_nhwc.permute(0, 3, 1, 2))
        finally:
            for h in handles:
                h.remove()
            for mod in saved:
                del mod.forward
        return out, acts


def grad(net, x, relu=None, dtype=torch.float64, keep=()):
    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    out, acts = net(xt, relu=relu, keep=keep)
    out[range(len(CLASSES)), CLASSES].sum().backward()
    return xt.grad.double(), out.detach().double(), acts


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    require_onnx()
    import torchvision
    torch.manual_seed(0)
    m32 = torchvision.models.resnet18(weights=None).eval()
    g = torch.Generator().manual_seed(1)
    for mod in m32.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(c, generator=g) * 0.1)
        if hasattr(mod, "inplace"):
            mod.inplace = False
    path = tmp_path_factory.mktemp("resnet18") / "resnet18.onnx"
    torch.onnx.export(m32, torch.randn(1, 3, SIZE, SIZE), str(path), opset_version=13,
                      input_names=["input"], output_names=["output"])
    model = cvis.Model.load(str(path))
    net32, net64 = Net(m32), Net(copy.deepcopy(m32).double())
    # the points the gradient methods evaluate: x itself (true, guided and
    # deconvnet gradients) and the Integrated Gradients nodes a x
    alphas = [float(np.float32(a)) for a in nodes("gausslegendre", IG_STEPS)[0]]
    tried = []
    for seed in range(20):
        x = np.random.default_rng(seed).uniform(0, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
        worst = 0.0
        points = [(x, None), (x, GuidedReLU.apply), (x, DeconvReLU.apply)] + [
            ((np.float32(a) * x).astype(np.float32), None) for a in alphas]
        for xp, relu in points:
            g64, _, _ = grad(net64, xp, relu)
            g32, _, _ = grad(net32, xp, relu, torch.float32)
            worst = max(worst, float((g32 - g64).abs().max() / g64.abs().max()))
            if worst > 1e-5:
                break
        tried.append((seed, worst))
        if worst <= 1e-5:
            break
    else:
        pytest.fail("no well-conditioned batch: %s" % tried)
    return dict(model=model, net=net64, x=x, score=cvis.CategoricalScore(CLASSES))


def test_import_and_logits(resnet):
    with torch.no_grad():
        ref, _ = resnet["net"](torch.tensor(resnet["x"], dtype=torch.float64))
    ours = resnet["model"].predict(resnet["x"])
    assert np.abs(ours - ref.numpy()).max() / np.abs(ref.numpy()).max() < 1e-4


def check_input(ours_fn, raw, what):
    compare(ours_fn(), normalize(raw.sum(dim=3)), what)
    compare(ours_fn(keepdims=True), normalize(raw), what + " keepdims")


def test_gradient_methods(resnet):
    m, x, s, net = resnet["model"], resnet["x"], resnet["score"], resnet["net"]
    g, _, _ = grad(net, x)
    check_input(lambda **kw: cvis.input_x_gradient(m, x, s, **kw), torch.tensor(x) * g,
                "input x gradient")
    for relu, fn in ((GuidedReLU.apply, cvis.guided_backprop), (DeconvReLU.apply, cvis.deconvnet)):
        gm, _, _ = grad(net, x, relu)
        check_input(lambda **kw: fn(m, x, s, **kw), gm, fn.__name__)
    total = torch.zeros(x.shape, dtype=torch.float64)
    for a, w in zip(*nodes("gausslegendre", IG_STEPS)):
        ga, _, _ = grad(net, (np.float32(a) * x).astype(np.float32))
        total += w * ga
    check_input(lambda **kw: cvis.integrated_gradients(m, x, s, n_steps=IG_STEPS, **kw),
                torch.tensor(x, dtype=torch.float64) * total, "integrated gradients")


def cam_inputs(resnet, path=CAM):
    _, logits, acts = grad(resnet["net"], resnet["x"], keep=(path,))
    A = acts[path].detach().permute(0, 2, 3, 1)
    g = acts[path].grad.permute(0, 2, 3, 1)
    return A, g, logits


def test_cam_methods(resnet):
    m, x, s = resnet["model"], resnet["x"], resnet["score"]
    A, g, _ = cam_inputs(resnet)
    cams = {
        "xgradcam": torch.relu(((g * A).sum(dim=(1, 2), keepdim=True) /
                                (A.sum(dim=(1, 2), keepdim=True) + 1e-7) * A).sum(dim=3)),
        "hirescam": torch.relu((g * A).sum(dim=3)),
    }
    for name, cam in cams.items():
        fn = getattr(cvis, name)
        compare(fn(m, x, s), normalize(expand(cam, SIZE, SIZE)), name)
        compare(fn(m, x, s, expand=False), normalize(cam), name + " layer size")
    gradcam = torch.relu((g.mean(dim=(1, 2), keepdim=True) * A).sum(dim=3))
    gg, _, _ = grad(resnet["net"], x, GuidedReLU.apply)
    check_input(lambda **kw: cvis.guided_gradcam(m, x, s, **kw),
                gg * expand(gradcam, SIZE, SIZE)[..., None], "guided grad-cam")


def test_eigencam(resnet):
    """At layer3's last block output (4x4x256), by name: numpy's SVD of the
    centred activations, the sign that correlates with the channel sum."""
    m, x = resnet["model"], resnet["x"]
    A, _, _ = cam_inputs(resnet, NAMED_MODULE)
    A = A.numpy()
    cams = []
    for b in range(A.shape[0]):
        M = A[b].reshape(-1, A.shape[3])
        Mc = M - M.mean(axis=0)
        _, S, VT = np.linalg.svd(Mc, full_matrices=False)
        assert S[0] > 1.05 * S[1], S[:3]
        proj = Mc @ VT[0]
        sign = 1.0 if proj @ M.sum(axis=1) >= 0 else -1.0
        cams.append(np.maximum(sign * proj, 0).reshape(A.shape[1:3]))
    cam = torch.tensor(np.stack(cams))
    compare(cvis.eigencam(m, x, layer=NAMED), normalize(expand(cam, SIZE, SIZE)), "eigen-cam")


def test_ablationcam(resnet):
    """The first image, the 512 channels of the last convolution-like layer
    (layer4.1's bn2 output) each set to zero in turn.  In torch the rest of
    the network after that layer is what the block computes from it:
    fc(mean(relu(bn2 output + the block's input))), run on all 512 ablated
    copies at once."""
    m, x, net = resnet["model"], resnet["x"][:1], resnet["net"]
    cls = CLASSES[0]
    block_in = {}
    def keep_input(mod, inp):
        # returns None: a value returned by a pre-hook would replace the input
        block_in.setdefault("x", inp[0].detach().clone())
    hook = module(net.m, "layer4.1").register_forward_pre_hook(keep_input)
    try:
        A, _, logits = cam_inputs(resnet)
    finally:
        hook.remove()
    A, s = A[:1], float(logits[0, cls])
    K = A.shape[3]
    with torch.no_grad():
        tail = lambda a: net.m.fc(torch.relu(a.permute(0, 3, 1, 2) + block_in["x"][:1])
                                  .mean(dim=(2, 3)))
        assert abs(float(tail(A)[0, cls]) - s) < 1e-9 * max(1.0, abs(s))  # the tail is right
        ablated = A.repeat(K, 1, 1, 1)
        ablated[range(K), :, :, range(K)] = 0
        w = (s - tail(ablated)[:, cls]) / s
    cam = torch.relu((w * A).sum(dim=3))
    ours = cvis.ablationcam(m, x, cvis.CategoricalScore(cls), batch_size=64)
    compare(ours, normalize(expand(cam, SIZE, SIZE)), "ablation-cam")


def scores(net, x):
    with torch.no_grad():
        out, _ = net(torch.tensor(x, dtype=torch.float64))
    return out[range(len(CLASSES)), CLASSES].numpy()


def test_occlusion_and_rise(resnet):
    m, x, s, net = resnet["model"], resnet["x"], resnet["score"], resnet["net"]
    win, stride = 20, 16  # windows at 0, 16, 32, 48: the last clipped
    s0 = scores(net, x)
    total, count = np.zeros((2, SIZE, SIZE)), np.zeros((SIZE, SIZE))
    for y0 in range(0, 49, stride):
        for x0 in range(0, 49, stride):
            xo = x.copy()
            xo[:, y0:y0 + win, x0:x0 + win] = 0
            total[:, y0:y0 + win, x0:x0 + win] += (s0 - scores(net, xo))[:, None, None]
            count[y0:y0 + win, x0:x0 + win] += 1
    compare(cvis.occlusion(m, x, s, window=win, stride=stride),
            normalize(torch.tensor(total / count)), "occlusion")
    n, p = 16, 0.5
    masks = rise_masks(n, p, -(-SIZE // 7), SIZE, SIZE, 3)
    sal = sum(scores(net, (x * mk[None, :, :, None]).astype(np.float32))[:, None, None] * mk
              for mk in masks)
    compare(cvis.rise(m, x, s, n_masks=n, p=p, seed=3), normalize(torch.tensor(sal / (n * p))),
            "rise")
