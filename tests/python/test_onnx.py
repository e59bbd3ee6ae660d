"""ONNX import against PyTorch: models exported by torch.onnx.export give the
same logits, input gradients and Grad-CAM maps in libcvis as in torch.

References are computed in float64 (SEMANTICS.md, last section); inputs
are chosen where torch's own float32 gradient agrees with its float64 one,
so that a ReLU kink or a pooling tie cannot route gradients differently."""
import copy
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from onnx_export_worker import job_file
from onnx_models import SPECS, build, export, nhwc, submodule, torch_modules

torch, torchvision, onnx = torch_modules()
import cvis  # noqa: E402

# vgg11_bn has its own test at the end of the module, so that its exports
# (500 MB each) are made by the helper process while the others run
PARITY_MODELS = ["tutorial", "resnet18", "mobilenet_v2", "squeezenet1_1"]
OPSETS = [11, 13, 17]
FAMILIES = ["alexnet", "resnext50_32x4d", "wide_resnet", "squeezenet1_0", "densenet121",
            "inception_v3", "googlenet", "shufflenet_v2_x0_5", "mobilenet_v3_small", "mnasnet0_5",
            "efficientnet_b0", "efficientnet_v2_s", "regnet_y_400mf", "convnext_tiny"]
# exported with symbolic batch, height and width (alexnet's adaptive
# pooling needs fixed sizes to export)
DYNAMIC = set(FAMILIES) - {"alexnet"}


def rel_err(a, b):
    """max |a - b| / max |b|."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

# exported by a helper process while the tests run (they are the slow ones)
# (in the order the tests need them)
BACKGROUND = [("alexnet", 13, False), ("efficientnet_v2_s", 13, True),
              ("convnext_tiny", 13, True), ("convnext_tiny", 17, True),
              ("vgg11_bn", 11, False), ("vgg11_bn", 13, False), ("vgg11_bn", 17, False)]


_worker_jobs = {"jobs": []}


def _wanted(session, name, opset):
    """Whether a collected test of this module uses the export."""
    for item in session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if item.module.__name__ == __name__ and params.get("name") == name and \
                params.get("opset", 13) == opset:
            return True
    return False


@pytest.fixture(scope="session")
def workdir(tmp_path_factory, request):
    d = tmp_path_factory.mktemp("onnx")
    jobs = ["%s:%d:%d" % (n, o, dyn) for n, o, dyn in BACKGROUND
            if _wanted(request.session, n, o)]
    _worker_jobs["jobs"] = jobs
    worker = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__),
                                                            "onnx_export_worker.py"), str(d)] + jobs,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if jobs else None
    yield d
    if worker:
        worker.kill()
        worker.wait()


def exported(workdir, ref, opset, dynamic):
    """The file of an export: the helper process's when it makes it, else
    made here."""
    path = workdir / job_file(ref.name, opset, dynamic)
    if "%s:%d:%d" % (ref.name, opset, dynamic) in _worker_jobs["jobs"]:
        done, failed = path.with_name(path.name + ".done"), path.with_name(path.name + ".failed")
        while not done.exists() and not failed.exists():
            time.sleep(0.2)
        if done.exists():
            return path
    export(ref.model32, ref.size, path, opset, dynamic)
    return path


class Reference:
    """A torch model in float32 and float64, a well-conditioned input batch
    and torch's answers on it; shared by every opset's export."""

    def __init__(self, name):
        self.name = name
        self.size, self.cam_module = SPECS[name]
        self.model32 = build(name)
        self.model64 = copy.deepcopy(self.model32).double()
        self.batch = 1 if self.size >= 224 else 2
        self._x = None
        self._cam = None

    def net(self, double):
        m = self.model64 if double else self.model32
        # the tutorial's network ends in softmax: scores are taken on logits
        if self.name == "tutorial":
            return m[:-1]
        if self.name.startswith("op_mix"):
            return lambda x: torch.log(m(x))  # log-softmax: logits up to a constant
        return m

    def logits64(self, x):
        with torch.no_grad():
            return self.net(True)(torch.from_numpy(x).double()).numpy()

    def torch_grad(self, x, k, double):
        t = torch.from_numpy(x).to(torch.float64 if double else torch.float32)
        t.requires_grad_(True)
        self.net(double)(t)[:, k].sum().backward()
        return t.grad.numpy()

    def _float64_pass(self, x):
        """Logits, the class scored (the first image's top class), the input
        gradient of its logit summed over the batch and, for Grad-CAM, the
        last convolution's output and gradient: one float64 pass."""
        acts = {}
        hook = None
        if self.cam_module:
            def keep(_m, _inp, out):
                # torchvision adds residuals in place: hand the block a copy
                # so that this layer's output and gradient stay untouched
                acts["A"] = out
                out.register_hook(lambda grad: acts.__setitem__("g", grad))
                return out.clone()
            hook = submodule(self.model64, self.cam_module).register_forward_hook(keep)
        try:
            t = torch.from_numpy(x).double().requires_grad_(True)
            logits = self.net(True)(t)
            k = int(torch.argmax(logits[0]))
            logits[:, k].sum().backward()
        finally:
            if hook:
                hook.remove()
        cam = (nhwc(acts["A"].detach().numpy()), nhwc(acts["g"].numpy())) if acts else None
        return logits.detach().numpy(), k, t.grad.numpy(), cam

    def input(self):
        """A batch where torch's float32 and float64 input gradients agree."""
        if self._x is not None:
            return self._x
        for seed in range(6):
            rng = np.random.default_rng(100 + seed)
            x = rng.standard_normal((self.batch, 3, self.size, self.size)).astype(np.float32)
            logits, k, g64, cam = self._float64_pass(x)
            if rel_err(self.torch_grad(x, k, False), g64) < 1e-5:
                self._x, self.k, self.g64, self.ref_logits, self._cam = x, k, g64, logits, cam
                return x
        raise AssertionError("no well-conditioned input found for %s" % self.name)

    def gradcam(self):
        """The last convolution's activations and gradients (NHWC), float64."""
        self.input()
        return self._cam


class Case:
    """An ONNX export of a reference model and the libcvis model loaded
    from it."""

    def __init__(self, workdir, ref, opset, dynamic):
        self.ref, self.name, self.opset = ref, ref.name, opset
        self.path = exported(workdir, ref, opset, dynamic)
        self.cvis = cvis.Model.load(str(self.path))


_refs, _cases = {}, {}


def case(workdir, name, opset, dynamic=False):
    if name not in _refs:
        _refs[name] = Reference(name)
    key = (name, opset, dynamic)
    if key not in _cases:
        _cases[key] = Case(workdir, _refs[name], opset, dynamic)
    return _cases[key]


def last_conv_layer(model):
    for layer in reversed(model.layers):
        if layer.is_conv:
            return layer
    raise AssertionError("no convolution-like layer")


def cvis_pass(c, x, k):
    """A pass on logits, backward from the sum over the batch of logit k."""
    p = cvis.Pass(c.cvis, logits=True)
    out = p.forward(nhwc(x))
    seed = np.zeros_like(out)
    seed[:, k] = 1
    p.backward(seed)
    return p, out


def normalize(cam):
    lo = cam.min(axis=(1, 2), keepdims=True)
    hi = cam.max(axis=(1, 2), keepdims=True)
    return (cam - lo) / (hi - lo + 1e-7)


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", PARITY_MODELS)
def test_logits(workdir, name, opset):
    check_logits(workdir, name, opset)


def check_logits(workdir, name, opset):
    c = case(workdir, name, opset)
    r = c.ref
    x = r.input()
    got = cvis.Pass(c.cvis, logits=True).forward(nhwc(x))
    assert got.shape == r.ref_logits.shape
    assert rel_err(got, r.ref_logits) < 1e-4
    if name == "tutorial":  # without logits mode the output is the softmax
        probs = c.cvis.predict(nhwc(x))
        e = np.exp(r.ref_logits - r.ref_logits.max(axis=1, keepdims=True))
        assert np.abs(probs - e / e.sum(axis=1, keepdims=True)).max() < 1e-5


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", PARITY_MODELS)
def test_input_gradient(workdir, name, opset):
    check_input_gradient(workdir, name, opset)


def check_input_gradient(workdir, name, opset):
    c = case(workdir, name, opset)
    r = c.ref
    p, _ = cvis_pass(c, r.input(), r.k)
    got = p.input_grad()
    assert got.shape == (r.batch, r.size, r.size, 3)
    assert rel_err(got, nhwc(r.g64)) < 1e-3


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", PARITY_MODELS)
def test_gradcam_last_conv(workdir, name, opset):
    check_gradcam_last_conv(workdir, name, opset)


def check_gradcam_last_conv(workdir, name, opset):
    c = case(workdir, name, opset)
    r = c.ref
    layer = last_conv_layer(c.cvis)
    p, _ = cvis_pass(c, r.input(), r.k)
    A, g = p.layer_output(layer.index), p.layer_grad(layer.index)
    cam = normalize(np.maximum(np.einsum("bhwk,bk->bhw", A, g.mean(axis=(1, 2))), 0))
    A_t, g_t = r.gradcam()
    assert A.shape == A_t.shape
    assert rel_err(A, A_t) < 1e-4
    ref = normalize(np.maximum(np.einsum("bhwk,bk->bhw", A_t, g_t.mean(axis=(1, 2))), 0))
    assert np.abs(cam - ref).max() < 1e-4


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", ["op_mix", "op_mix_dynamic"])
def test_op_mix(workdir, name, opset):
    """Many ops in one small network: softmax probabilities and the input
    gradient of one log-probability, at every opset, with fixed or free
    input sizes."""
    dyn = name.endswith("dynamic")
    c = case(workdir, name, opset, dyn)
    r = c.ref
    x = r.input()
    p = cvis.Pass(c.cvis)
    probs = p.forward(nhwc(x))
    assert rel_err(probs, np.exp(r.ref_logits)) < 1e-5
    seed = np.zeros_like(probs)
    seed[:, r.k] = 1 / probs[:, r.k]  # d log p_k
    p.backward(seed)
    assert rel_err(p.input_grad(), nhwc(r.g64)) < 1e-3
    if dyn:
        x2 = np.random.default_rng(3).standard_normal((1, 3, 48, 40)).astype(np.float32)
        assert rel_err(c.cvis.predict(nhwc(x2)), np.exp(r.logits64(x2))) < 1e-5
    # the layer table keeps the node names; the LayerNormalization of opset 17
    # is one layer, earlier opsets spell it out
    types = [l.type for l in c.cvis.layers]
    assert ("LayerNormalization" in types) == (opset == 17)
    conv = c.cvis.layer_index("/c1/Conv")
    assert c.cvis.layer_index("/Relu") == conv and c.cvis.layers[conv].is_conv
    # channel selection at the input: Gather, Slice, Split are layers
    assert {"Gather", "Slice", "Split"} <= set(types)


@pytest.mark.parametrize("name", FAMILIES)
def test_family_logits(workdir, name):
    dyn = name in DYNAMIC
    c = case(workdir, name, 13, dyn)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 3, c.ref.size, c.ref.size)).astype(np.float32)
    got = cvis.Pass(c.cvis, logits=True).forward(nhwc(x))
    assert rel_err(got, c.ref.logits64(x)) < 1e-4
    if dyn:
        assert c.cvis.input_shape == (-1, -1, 3)
        # a size other than the exported one
        x = rng.standard_normal((1, 3, c.ref.size + 16, c.ref.size + 32)).astype(np.float32)
        got = c.cvis.predict(nhwc(x))
        assert rel_err(got, c.ref.logits64(x)) < 1e-4


def test_layer_table_names_and_fusion(workdir):
    c = case(workdir, "resnet18", 13)
    layers = c.cvis.layers
    names = [l.name for l in layers]
    # ONNX node names, as Netron shows them
    assert names[0] == "/conv1/Conv" and layers[0].type == "Conv" and layers[0].is_conv
    # the ReLU that followed the first convolution was merged into it
    assert c.cvis.layer_index("/relu/Relu") == 0
    assert layers[0].output_shape == (32, 32, 64)
    assert layers[-1].type == "Gemm" and layers[-1].output_shape == (1000,)
    # a ReLU after a residual Add stays a layer of its own
    relu = c.cvis.layer("/layer1/layer1.0/relu_1/Relu")
    assert layers[relu.index].type == "Relu" and not layers[relu.index].is_conv
    # filters come back in (kh, kw, cin, cout), the folded weights of torch
    f, b = c.cvis.layer(0).filters()
    assert f.shape == (7, 7, 3, 64) and b.shape == (64,)


def test_dense_rows_follow_flatten(workdir):
    """Flatten of an NHWC map feeds Gemm without a transpose layer: the
    dense weights' rows are reordered at load time."""
    c = case(workdir, "tutorial", 13)
    types = [l.type for l in c.cvis.layers]
    assert types == ["Conv", "Conv", "Conv", "Flatten", "Gemm", "Gemm"]
    k = c.cvis.layer(4).weights()[0]
    w = c.ref.model32[7].weight.detach().numpy()  # (128, 8*116*116) over (c, h, w)
    assert np.array_equal(k.reshape(116, 116, 8, 128).transpose(2, 0, 1, 3).reshape(-1, 128), w.T)


def test_softmax_fused_into_dense(workdir):
    c = case(workdir, "tutorial", 13)
    assert c.cvis.layer_index("/10/Softmax") == len(c.cvis.layers) - 1


# models whose ops cover every layer kind that imports make
RESAVE = [("shufflenet_v2_x0_5", 13, True), ("mobilenet_v3_small", 13, True),
          ("efficientnet_b0", 13, True), ("inception_v3", 13, True), ("convnext_tiny", 13, True),
          ("convnext_tiny", 17, True), ("mobilenet_v2", 17, False)]


@pytest.mark.parametrize("name,opset,dyn", RESAVE)
def test_imported_model_saved_again(workdir, name, opset, dyn):
    """An imported model saved by libcvis passes the checker and loads back
    with the same outputs (every op of the family can be written)."""
    c = case(workdir, name, opset, dyn)
    data = c.cvis.to_onnx_bytes()
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    back = cvis.onnx.load_bytes(data)
    assert len(back.layers) <= len(c.cvis.layers) + 2
    x = np.random.default_rng(5).standard_normal((1, c.ref.size, c.ref.size, 3)).astype(np.float32)
    assert np.array_equal(c.cvis.predict(x), back.predict(x))


def test_nhwc_input_graph(workdir):
    """A graph that takes NHWC images and transposes them to NCHW first (as
    tf2onnx writes them) takes NHWC images in libcvis too, unchanged."""
    nn = torch.nn

    class FromNHWC(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 3, stride=2)
            self.fc = nn.Linear(6 * 7 * 7, 4)

        def forward(self, x):
            y = torch.relu(self.conv(x.permute(0, 3, 1, 2)))
            return self.fc(y.flatten(1))

    torch.manual_seed(4)
    m = FromNHWC().eval()
    path = workdir / "nhwc.onnx"
    torch.onnx.export(m, torch.randn(1, 16, 16, 3), str(path), opset_version=13)
    c = cvis.Model.load(str(path))
    assert c.input_shape == (16, 16, 3)
    assert [l.type for l in c.layers] == ["Conv", "Flatten", "Gemm"]
    x = np.random.default_rng(0).standard_normal((2, 16, 16, 3)).astype(np.float32)
    with torch.no_grad():
        ref = m.double()(torch.from_numpy(x).double()).numpy()
    assert rel_err(c.predict(x), ref) < 1e-5


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", ["vgg11_bn"])
def test_vgg11_bn(workdir, name, opset):
    """vgg11_bn at 224x224: logits, input gradient and Grad-CAM as above."""
    check_logits(workdir, name, opset)
    check_input_gradient(workdir, name, opset)
    check_gradcam_last_conv(workdir, name, opset)
    del _cases[(name, opset, False)]  # 500 MB of weights


def test_weights_in_other_encodings(workdir):
    """The same network with its weights stored as float16 raw data, as
    double_data, as float_data, and its shapes as int64_data: float32 and
    double give the same model bit for bit, float16 the rounded weights."""
    from onnx import numpy_helper, TensorProto
    c = case(workdir, "op_mix", 13)
    x = nhwc(c.ref.input())
    want = c.cvis.predict(x)
    base = onnx.load(str(c.path))
    results, n_int = {}, 0
    for kind in ("float16", "double", "float_data", "int64_data"):
        m = copy.deepcopy(base)
        for t in m.graph.initializer:
            a = numpy_helper.to_array(t)
            if a.dtype == np.float32 and kind != "int64_data":
                if kind == "float16":
                    t.CopyFrom(numpy_helper.from_array(a.astype(np.float16), t.name))
                elif kind == "double":
                    t.ClearField("raw_data")
                    t.data_type = TensorProto.DOUBLE
                    t.double_data.extend(a.astype(np.float64).ravel().tolist())
                else:
                    t.ClearField("raw_data")
                    t.float_data.extend(a.ravel().tolist())
        for t in [a.t for n in m.graph.node if n.op_type == "Constant" for a in n.attribute
                  if a.name == "value"] + list(m.graph.initializer):
            a = numpy_helper.to_array(t)
            if a.dtype == np.int64 and kind == "int64_data":
                t.ClearField("raw_data")
                t.int64_data.extend(a.ravel().tolist())
                n_int += 1
        if kind in ("float16", "double"):
            elem = TensorProto.FLOAT16 if kind == "float16" else TensorProto.DOUBLE
            m.graph.input[0].type.tensor_type.elem_type = elem
        results[kind] = cvis.onnx.load_bytes(m.SerializeToString()).predict(x)
    assert np.array_equal(results["double"], want)
    assert np.array_equal(results["float_data"], want)
    assert np.array_equal(results["int64_data"], want)
    assert n_int > 0  # the shape constants were rewritten
    assert 0 < np.abs(results["float16"] - want).max() < 1e-2


def test_flattened_features_used_elsewhere(workdir):
    """A flattened feature map feeds a Gemm (rows reordered at load time)
    and, through element-wise layers, a second output (reordered by layers
    at the end): both outputs are torch's."""
    nn = torch.nn

    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4 * 6 * 6, 5)

        def forward(self, x):
            f = torch.flatten(torch.relu(self.conv(x)), 1)
            return self.fc(f), torch.sigmoid(f) * 2

    torch.manual_seed(5)
    m = TwoHeads().eval()
    path = workdir / "two_heads.onnx"
    torch.onnx.export(m, torch.randn(1, 3, 8, 8), str(path), opset_version=13)
    c = cvis.Model.load(str(path))
    types = [l.type for l in c.layers]
    assert types[-3:] == ["Reshape", "Transpose", "Flatten"]
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():
        ref = [t.numpy() for t in m.double()(torch.from_numpy(x).double())]
    for got, want in zip(c.predict(nhwc(x)), ref):
        assert rel_err(got, want) < 1e-5
