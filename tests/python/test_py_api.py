"""The Python package covers the whole public C API, and every public Python
function works and gives arrays of the documented shapes.

Two checks of coverage:
- statically, every CVIS_API function of include/cvis.h is declared through
  _native.declare and called as api.<name> somewhere in the package (except
  a short allow-list, each entry with its reason);
- at run time, the tests of this module (a tour of the whole package) call
  every public Python function and method of the package, and through them
  every declared C function (the module's last test checks both).
"""
import ast
import ctypes
import gc
import importlib
import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import cvis
from cvis import _native, layers as L

ROOT = Path(__file__).resolve().parents[2]
HEADER = ROOT / "include" / "cvis.h"
PACKAGE = ROOT / "bindings" / "python" / "cvis"

# C functions the package deliberately does not call, and why.
NOT_WRAPPED = {
    "cvis_tensor_dim": "shapes are read whole with cvis_tensor_shape; one axis at a time adds "
                       "nothing in Python",
}
# Called once when the package is imported (the major version check), not
# by any function afterwards: cvis.version holds the result.
AT_IMPORT = {"cvis_version"}


def header_functions():
    text = re.sub(r"/\*.*?\*/", " ", HEADER.read_text(), flags=re.S)
    names = set(re.findall(r"CVIS_API\s[^;{(]*?\b(cvis_\w+)\s*\(", text))
    assert len(names) > 100, "the header parser found too few functions"
    return names


def package_calls():
    """{C function name: [where the package calls it]} from the package's
    source: every api.<name> / lib.<name> attribute, named by the function
    it is in ("<import>" at module level)."""
    calls = {}

    def visit(node, where, stem):
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            where = getattr(node, "name", "<lambda>")
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in ("api", "_api", "lib") and node.attr.startswith("cvis_")):
            calls.setdefault(node.attr, []).append("%s:%s" % (stem, where))
        for child in ast.iter_child_nodes(node):
            visit(child, where, stem)

    for path in sorted(PACKAGE.glob("*.py")):
        visit(ast.parse(path.read_text()), "<import>", path.stem)
    return calls


def test_every_header_function_is_declared_and_called_by_the_package():
    names = header_functions()
    assert set(NOT_WRAPPED) <= names, "the allow-list names functions the header lacks"
    undeclared = names - set(_native.DECLARED)
    assert undeclared == set()
    extra = set(_native.DECLARED) - names
    assert extra == set(), "declared but not in cvis.h"
    calls = package_calls()
    unused = {n for n in names - set(NOT_WRAPPED) if n not in calls}
    assert unused == set()
    at_import = {n for n, where in calls.items() if all(w.endswith(":<import>") for w in where)}
    assert at_import == AT_IMPORT
    # the allow-list stays honest: nothing on it is in fact used
    assert {n for n in NOT_WRAPPED if n in calls} == set()
    # and every declared prototype is bound to the loaded library
    for n in names:
        assert getattr(_native.api, n).__name__ == n


# ------------------------------------------------------------ run-time tour
C_CALLS = {}
PY_CALLS = set()


def _counting(name, fn):
    def call(*args):
        C_CALLS[name] = C_CALLS.get(name, 0) + 1
        return fn(*args)
    call.__name__ = name
    return call


def _profile(frame, event, arg):
    if event == "call":
        PY_CALLS.add(frame.f_code)


@pytest.fixture(scope="module", autouse=True)
def tour():
    """Counts the C calls and the Python functions run by this module."""
    saved = {n: getattr(_native.api, n) for n in _native.DECLARED}
    for n, fn in saved.items():
        setattr(_native.api, n, _counting(n, fn))
    yield
    for n, fn in saved.items():
        setattr(_native.api, n, fn)


@pytest.fixture(autouse=True)
def profiled():
    old = sys.getprofile()
    sys.setprofile(_profile)
    yield
    sys.setprofile(old)


def rng(seed=0):
    return np.random.default_rng(seed)


def small_model(seed=1, weights=None):
    return cvis.Model.sequential((12, 12, 3), [
        L.Conv2D(4, 3, activation="relu", name="conv1"),
        L.Conv2D(5, 3, padding="same", activation="relu", name="conv2"),
        L.MaxPooling2D(2),
        L.Flatten(),
        L.Dense(3, activation="softmax", name="out"),
    ], seed=seed, weights=weights)


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def conv_ref(x, k, b, stride=(1, 1)):
    """Valid cross-correlation, NHWC, with the kernel (kh,kw,cin,cout)."""
    kh, kw = k.shape[:2]
    B, H, W, _ = x.shape
    oh, ow = (H - kh) // stride[0] + 1, (W - kw) // stride[1] + 1
    out = np.zeros((B, oh, ow, k.shape[3]))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw, :]
            out[:, i, j, :] = np.tensordot(patch, k, axes=([1, 2, 3], [0, 1, 2]))
    return out + b


# ------------------------------------------------------------- the package
def test_version_and_process_settings():
    text = HEADER.read_text()
    header = ".".join(re.search(r"#define CVIS_VERSION_%s (\d+)" % k, text).group(1)
                      for k in ("MAJOR", "MINOR", "PATCH"))
    assert cvis.__version__ == header == cvis.library_version()
    major, minor, patch = map(int, header.split("."))
    assert cvis.version == major * 10000 + minor * 100 + patch
    assert Path(cvis.library_path).exists() or "/" not in cvis.library_path
    assert cvis.method_names()[:8] == ["saliency", "smoothgrad", "gradcam", "gradcam++",
                                       "scorecam", "faster-scorecam", "layercam",
                                       "activation-maximization"]
    assert cvis.method_names()[8:] == ["integrated-gradients", "input-x-gradient",
                                       "guided-backprop", "deconvnet", "guided-gradcam",
                                       "xgradcam", "hirescam", "eigencam", "ablationcam",
                                       "occlusion", "rise"]

    threads = cvis.get_num_threads()
    try:
        cvis.set_num_threads(1)
        assert cvis.get_num_threads() == 1
    finally:
        cvis.set_num_threads(threads)
    limit = cvis.get_alloc_limit()
    assert limit == 8 << 30
    try:
        cvis.set_alloc_limit(1 << 20)
        assert cvis.get_alloc_limit() == 1 << 20
    finally:
        cvis.set_alloc_limit(0)
    assert cvis.get_alloc_limit() == limit


def test_sequential_maps_every_description_to_its_builder():
    """Shapes (worked out by hand) and values (numpy) show that each
    description passes its arguments in the right order."""
    m = cvis.Model.sequential((12, 12, 3), [
        L.ZeroPadding2D(((1, 0), (0, 2))),
        L.Conv2D(4, 3, activation="relu", name="conv1"),
        L.Conv2D(4, (3, 2), strides=(1, 2), use_bias=False, name="conv2"),
        L.BatchNormalization(epsilon=1e-3),
        L.LeakyReLU(0.1),
        L.Conv2D(4, 3, padding="same", groups=4, activation="relu6"),
        L.AveragePooling2D(2, padding="same"),
        L.MaxPooling2D((2, 1), strides=1),
        L.Activation("tanh"),
        L.Dropout(0.5),
        L.GlobalAveragePooling2D(),
        L.Dense(5, activation="relu"),
        L.Dense(3, activation="softmax", name="out"),
    ], seed=3)
    got = [(l.type, l.output_shape, l.is_conv) for l in m.layers]
    assert got == [
        ("ZeroPadding2D", (13, 14, 3), False), ("Conv2D", (11, 12, 4), True),
        ("Conv2D", (9, 6, 4), True), ("BatchNormalization", (9, 6, 4), False),
        ("LeakyReLU", (9, 6, 4), False), ("DepthwiseConv2D", (9, 6, 4), True),
        ("AveragePooling2D", (5, 3, 4), False), ("MaxPooling2D", (4, 3, 4), False),
        ("Activation", (4, 3, 4), False), ("Dropout", (4, 3, 4), False),
        ("GlobalAveragePooling2D", (4,), False), ("Dense", (5,), False),
        ("Dense", (3,), False)]
    assert [l.index for l in m.layers] == list(range(13))
    assert m.input_shape == (12, 12, 3) and m.outputs == [12]
    assert "Conv2D(" in repr(L.Conv2D(4, 3)) and "filters=4" in repr(L.Conv2D(4, 3))

    bn = m.layer("batch_normalization")
    assert bn.weight_names() == ["gamma", "beta", "moving_mean", "moving_variance"]
    gamma, beta, mean, var = [rng(1).uniform(0.5, 1.5, 4).astype(np.float32) for _ in range(4)]
    bn.set_weights([gamma, beta, mean, var])

    x = rng(2).uniform(-1, 1, (2, 12, 12, 3)).astype(np.float32)
    outs = m.submodel(range(13)).predict(x)
    assert len(outs) == 13 and all(o.shape[1:] == l.output_shape for o, l in zip(outs, m.layers))
    pad = np.pad(x, ((0, 0), (1, 0), (0, 2), (0, 0)))
    np.testing.assert_array_equal(outs[0], pad)
    k1, b1 = m.layer("conv1").weights()
    np.testing.assert_allclose(outs[1], np.maximum(conv_ref(pad, k1, b1), 0), atol=1e-5)
    (k2,) = m.layer("conv2").weights()
    np.testing.assert_allclose(outs[2], conv_ref(outs[1], k2, 0, (1, 2)), atol=1e-5)
    bn_ref = (outs[2] - mean) / np.sqrt(var + 1e-3) * gamma + beta
    np.testing.assert_allclose(outs[3], bn_ref, atol=1e-5)
    np.testing.assert_allclose(outs[4], np.where(outs[3] > 0, outs[3], 0.1 * outs[3]), atol=1e-6)
    mp = np.maximum(outs[6][:, :-1], outs[6][:, 1:])
    np.testing.assert_array_equal(outs[7], mp)
    np.testing.assert_allclose(outs[8], np.tanh(outs[7]), atol=1e-6)
    np.testing.assert_array_equal(outs[9], outs[8])
    np.testing.assert_allclose(outs[10], outs[9].mean((1, 2)), atol=1e-6)
    w, b = m.layer(-2).weights()
    np.testing.assert_allclose(outs[11], np.maximum(outs[10] @ w + b, 0), atol=1e-5)
    w, b = m.layer("out").weights()
    np.testing.assert_allclose(outs[12], softmax(outs[11] @ w + b), atol=1e-6)
    np.testing.assert_allclose(m.predict(x), outs[12], atol=0)

    with pytest.raises(TypeError):
        cvis.Model.sequential((4, 4, 1), ["conv"])
    with pytest.raises(ValueError):
        cvis.Model.sequential((4, 4), [])


def test_graph_builders_and_several_outputs():
    m = cvis.Model(6, 6, 2)
    a = m.conv2d(3, 1, name="a")
    b = m.conv2d(3, 3, padding="explicit", pads=(1, 1, 1, 1), input=cvis.INPUT, name="b")
    c = m.conv2d(3, (3, 3), strides=(1, 1), dilation=(2, 2), padding="same", input=cvis.INPUT,
                 name="c")
    assert (a, b, c) == (0, 1, 2)
    s = m.add("a", b, name="s")
    p = m.multiply(a, "c", name="p")
    cat = m.concat([s, p, "a"], name="cat")
    act = m.activation("sigmoid", input=cat)
    lr = m.leaky_relu(0.2, input=cvis.PREV)
    m.pool2d("avg", 3, strides=3, input=lr)
    m.global_avg_pool()
    m.flatten(input=act, name="flat")
    m.dropout(0.1)
    m.dense(2, input="flat", name="head")
    m.set_outputs(["head", lr])
    assert m.outputs == [m.layer_index("head"), lr]
    assert m.layers[cat].output_shape == (6, 6, 9)
    assert m.layer_index(-1) == -1 and m.layer(-1).name == "head"
    x = rng(3).normal(size=(2, 6, 6, 2)).astype(np.float32)
    head, feat = m.predict(x)
    assert head.shape == (2, 2) and feat.shape == (2, 6, 6, 9)
    sa, sb, sp, scat = m.submodel(["a", "b", "p", "cat"]).predict(x)
    np.testing.assert_allclose(scat, np.concatenate([sa + sb, sp, sa], -1), atol=1e-6)
    ka, ba = m.layer("a").weights()
    np.testing.assert_allclose(sa, x @ ka[0, 0] + ba, atol=1e-5)
    maps = cvis.feature_maps(m, x, ["a", "cat"])
    np.testing.assert_array_equal(maps[0], sa)
    np.testing.assert_array_equal(maps[1], scat)
    m.init_weights(7)
    m2 = cvis.Model(6, 6, 2)
    m2.conv2d(3, 1, name="a")
    m2.init_weights(7)
    np.testing.assert_array_equal(m.layer("a").weights()[0], m2.layer("a").weights()[0])
    m.close()
    m2.close()


def test_weights_filters_and_files(tmp_path):
    m = small_model()
    ref = m.layer("conv1")
    assert ref.name == "conv1" and ref.info.type == "Conv2D" and "conv1" in repr(ref)
    f, b = ref.filters()
    k, kb = ref.weights()
    assert f.shape == (3, 3, 3, 4) and b.shape == (4,)
    np.testing.assert_array_equal(f, k)
    np.testing.assert_array_equal(b, kb)
    nf = cvis.normalized_filters(m, "conv1")
    np.testing.assert_allclose(nf, (f - f.min()) / (f.max() - f.min()), atol=1e-6)
    new_b = np.arange(4, dtype=np.float32)
    ref.set_weights([k, new_b])
    np.testing.assert_array_equal(ref.filters()[1], new_b)

    x = rng(4).uniform(0, 1, (2, 12, 12, 3)).astype(np.float32)
    probs = m.predict(x)
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-6)

    m.save_weights(tmp_path / "w.npz")
    z = np.load(tmp_path / "w.npz")
    np.testing.assert_array_equal(z["conv1/bias"], new_b)
    other = small_model(seed=9)
    assert not np.array_equal(other.predict(x), probs)
    other.load_weights(tmp_path / "w.npz")
    np.testing.assert_array_equal(other.predict(x), probs)
    np.testing.assert_array_equal(small_model(weights=tmp_path / "w.npz").predict(x), probs)

    cvis.save_npy(tmp_path / "x.npy", x)
    np.testing.assert_array_equal(cvis.load_npy(tmp_path / "x.npy"), x)

    m.save_onnx(tmp_path / "m.onnx")
    loaded = cvis.Model.load(tmp_path / "m.onnx")
    np.testing.assert_allclose(loaded.predict(x), probs, atol=1e-6)
    data = m.to_onnx_bytes()
    assert data == (tmp_path / "m.onnx").read_bytes()
    np.testing.assert_allclose(cvis.onnx.load_bytes(data).predict(x), probs, atol=1e-6)
    cvis.onnx.save(m, tmp_path / "again.onnx")
    np.testing.assert_allclose(cvis.onnx.load(tmp_path / "again.onnx").predict(x), probs, atol=1e-6)


def test_pass_gradients_match_numpy():
    """A linear model: y = x W + b, so d(sum y*g)/dx = g W^T and the kernel
    gradient is x^T g."""
    m = cvis.Model(1, 1, 4)
    m.flatten(name="flat")
    m.dense(3, name="lin")
    W, bias = m.layer("lin").weights()
    x = rng(5).normal(size=(2, 1, 1, 4)).astype(np.float32)
    g = rng(6).normal(size=(2, 3)).astype(np.float32)
    p = cvis.Pass(m, weight_grads=True, logits=False, drop_activation=None, grad_layer="flat")
    y = p.forward(x)
    np.testing.assert_allclose(y, x.reshape(2, 4) @ W + bias, atol=1e-6)
    np.testing.assert_array_equal(p.layer_output("flat"), x.reshape(2, 4))
    p.backward(g)
    np.testing.assert_allclose(p.input_grad(), (g @ W.T).reshape(2, 1, 1, 4), atol=1e-6)
    np.testing.assert_allclose(p.layer_grad("flat"), g @ W.T, atol=1e-6)
    np.testing.assert_allclose(p.weight_grad("lin", 0), x.reshape(2, 4).T @ g, atol=1e-6)
    np.testing.assert_allclose(p.weight_grad("lin", 1), g.sum(0), atol=1e-6)
    p.set("input_grad", False)
    p.forward(x)
    p.backward([g])
    assert p.input_grad() is None
    with pytest.raises(ValueError, match="unknown pass option"):
        p.set("speed", 1)

    sgd = cvis.Optimizer("sgd", 0.5, momentum=0.0)
    w = np.ones(4, np.float32)
    sgd.step(0, w, np.arange(4))
    np.testing.assert_allclose(w, 1 - 0.5 * np.arange(4))
    with pytest.raises(ValueError, match="in place"):
        sgd.step(0, w.astype(np.float64), w)

    p.set("input_grad", True)
    p.forward(x)
    p.backward(g)
    before = m.layer("lin").weights()
    cvis.Optimizer("sgd", 0.1).step_layer(m, p, "lin")
    after = m.layer("lin").weights()
    np.testing.assert_allclose(after[0], before[0] - 0.1 * (x.reshape(2, 4).T @ g), atol=1e-6)
    cvis.Optimizer("adam", 0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7).step_model(m, p)
    assert not np.array_equal(m.layer("lin").weights()[0], after[0])
    loss, d = cvis.softmax_cross_entropy(y, [0, 2])
    assert loss > 0 and d.shape == (2, 3)


def test_scores_evaluate_as_documented():
    out = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]], np.float32)
    s, g = cvis.CategoricalScore([1, 0])(out)
    np.testing.assert_array_equal(s, out[[0, 1], [1, 0]])
    np.testing.assert_array_equal(g, [[0, 1, 0], [1, 0, 0]])
    maps = rng(7).normal(size=(2, 2, 2, 3)).astype(np.float32)
    s, g = cvis.CategoricalScore(2)(maps)  # a filter: the spatial mean of channel 2
    np.testing.assert_allclose(s, maps[..., 2].mean((1, 2)), atol=1e-6)
    np.testing.assert_array_equal(g[..., 2], 0.25)
    s, g = cvis.BinaryScore([True, False])(np.array([[0.8], [0.3]], np.float32))
    np.testing.assert_array_equal(s, np.float32([0.8, -0.3]))
    np.testing.assert_array_equal(g, [[1], [-1]])
    s, g = cvis.InactiveScore()(out)
    assert not s.any() and not g.any()

    def mine(o):
        return o[:, 0] * 2, np.tile([[2.0, 0, 0]], (o.shape[0], 1))

    s, g = cvis.CustomScore(mine)(out)
    np.testing.assert_array_equal(s, out[:, 0] * 2)
    np.testing.assert_array_equal(g, [[2, 0, 0], [2, 0, 0]])

    # a score written in C (here a ctypes function): scores = first output value
    @cvis.methods.SCORE_FN
    def first(user, output, scores, d_output):
        data = ctypes.cast(_native.api.cvis_tensor_data(output), ctypes.POINTER(ctypes.c_float))
        per = 3
        for b in range(2):
            scores[b] = data[b * per]
        return 0

    s, g = cvis.CustomScore.from_c(first)(out)
    np.testing.assert_array_equal(s, out[:, 0])


def test_every_method_gives_its_documented_shape():
    m = small_model()
    x = rng(8).uniform(0, 1, (2, 12, 12, 3)).astype(np.float32)
    score = cvis.CategoricalScore([0, 2])
    sal = cvis.saliency(m, x, score)
    assert sal.shape == (2, 12, 12) and sal.min() >= 0 and sal.max() <= 1
    assert cvis.saliency(m, x, score, keepdims=True).shape == (2, 12, 12, 3)
    sg = cvis.smoothgrad(m, x, score, smooth_samples=3, seed=1)
    np.testing.assert_array_equal(sg, cvis.saliency(m, x, score, smooth_samples=3, seed=1))
    assert not np.array_equal(sg, sal)
    raw = cvis.saliency(m, x, score, normalize=False)
    assert raw.max() > 0

    # a Python score equal to the categorical one gives the same maps
    def py_score(out):
        idx = np.array([0, 2])
        grad = np.zeros_like(out)
        grad[np.arange(2), idx] = 1
        return out[np.arange(2), idx], grad

    np.testing.assert_array_equal(cvis.saliency(m, x, py_score), sal)
    np.testing.assert_array_equal(cvis.saliency(m, x, [0, 2]), sal)

    for fn in (cvis.gradcam, cvis.gradcam_plus_plus, cvis.layercam):
        cam = fn(m, x, score)
        assert cam.shape == (2, 12, 12), fn
        assert fn(m, x, score, layer="conv1", expand=False).shape == (2, 10, 10), fn
    assert cvis.gradcam(m, x, score, layer=-1, seek=True, expand=False).shape == (2, 10, 10)
    seen = []
    sc = cvis.scorecam(m, x, score, batch_size=4,
                       progress=lambda step, total, values: seen.append((step, total)))
    assert sc.shape == (2, 12, 12) and seen and seen[-1][0] == seen[-1][1]
    assert cvis.scorecam(m, x, score, max_n=2).shape == (2, 12, 12)

    e = cvis.Explainer(m, "gradcam", layer=-1)
    assert e.method == "gradcam" and e.output_shape(x) == (2, 12, 12)
    np.testing.assert_array_equal(e(x, score), cvis.gradcam(m, x, score))
    assert e.layer == m.layer_index("conv2")
    with pytest.raises(ValueError, match="unknown option"):
        e.set("colour", 1)
    for name in cvis.method_names():
        if name == "activation-maximization":
            continue
        np.testing.assert_array_equal(cvis.explain(m, name, x, score),
                                      cvis.Explainer(m, name)(x, score))
    np.testing.assert_array_equal(cvis.explain(m, 2, x, score), cvis.gradcam(m, x, score))

    log = io.StringIO()
    act = cvis.activation_maximization(
        m, cvis.CategoricalScore(3), layer="conv2", steps=4,
        input_modifiers=[cvis.Jitter(2), cvis.Rotate2D(1), cvis.Scale(0.9, 1.1)],
        regularizers=[cvis.TotalVariation2D(1.0), cvis.Norm(0.3, p=1)],
        optimizer=cvis.Adam(1.0, 0.999), callbacks=[cvis.Progress(stream=log)], seed=0)
    assert act.shape == (1, 12, 12, 3) and act.min() >= 0 and act.max() <= 255
    assert "4/4" in log.getvalue() and "score" in log.getvalue()
    again = cvis.activation_maximization(
        m, cvis.CategoricalScore(3), layer="conv2", steps=4,
        input_modifiers=[cvis.Jitter(2), cvis.Rotate2D(1), cvis.Scale(0.9, 1.1)],
        regularizers=[cvis.TotalVariation2D(1.0), cvis.Norm(0.3, p=1)],
        optimizer=cvis.Adam(1.0, 0.999), seed=0)
    np.testing.assert_array_equal(act, again)
    for opt in (cvis.RMSprop(1.0), cvis.SGD(1.0)):
        out = cvis.activation_maximization(m, cvis.CategoricalScore(1), steps=2, optimizer=opt,
                                           input_range=(0, 1), batch=2, seed_input=None)
        assert out.shape == (2, 12, 12, 3) and out.max() <= 1
    seeded = cvis.activation_maximization(m, 0, steps=2, seed_input=x[:1] * 255, input_modifiers=[],
                                          regularizers=[])
    assert seeded.shape == (1, 12, 12, 3)


def test_methods_beyond_the_tutorial_and_the_measures():
    m = small_model()
    x = rng(9).uniform(0.1, 1, (2, 12, 12, 3)).astype(np.float32)
    score = cvis.CategoricalScore([0, 2])
    # X * dT/dX per channel: its size is |X| times the saliency's |dT/dX|
    ixg = cvis.input_x_gradient(m, x, score, keepdims=True, normalize=False)
    grad = cvis.saliency(m, x, score, keepdims=True, normalize=False)
    np.testing.assert_allclose(np.abs(ixg), x * grad, rtol=1e-5, atol=1e-7)
    # Integrated Gradients from the image itself attributes nothing
    maps, delta = cvis.integrated_gradients(m, x, score, baselines=x, normalize=False,
                                            return_convergence_delta=True)
    assert maps.shape == (2, 12, 12) and np.abs(maps).max() == 0 and np.abs(delta).max() < 1e-6
    # completeness: the attributions add up to s(X) - s(0)
    e = cvis.Explainer(m, "integrated-gradients", normalize=False, ig_steps=64)
    e.set("baseline", "zero")
    ig = e(x, score)
    gap = e.info("score", 2) - e.info("baseline_score", 2)
    np.testing.assert_allclose(e.info("completeness_delta", 2), ig.sum(axis=(1, 2)) - gap,
                               rtol=1e-4, atol=1e-6)
    assert np.all(np.abs(e.info("completeness_delta", 2)) < 1e-3 * np.abs(gap))
    for fn in (cvis.guided_backprop, cvis.deconvnet, cvis.guided_gradcam):
        out = fn(m, x, score)
        assert out.shape == (2, 12, 12) and 0 <= out.min() and abs(out.max() - 1) < 1e-3, fn
    for fn in (cvis.xgradcam, cvis.hirescam, cvis.ablationcam):
        cam = fn(m, x, score, layer="conv2")
        assert cam.shape == (2, 12, 12) and 0 <= cam.min() and cam.max() <= 1, fn
    assert cvis.eigencam(m, x, layer="conv2", expand=False).shape == (2, 10, 10)
    occ = cvis.occlusion(m, x, score, window=4, stride=2)
    assert occ.shape == (2, 12, 12)
    r1 = cvis.rise(m, x, score, n_masks=40, seed=3)
    np.testing.assert_array_equal(r1, cvis.rise(m, x, score, n_masks=40, seed=3))
    nt = cvis.noise_tunnel(m, x, score, method="saliency", nt_samples=3, stdevs=0.1, seed=2)
    assert nt.shape == (2, 12, 12)
    assert not np.array_equal(nt, cvis.saliency(m, x, score))

    # measures on maps with known answers
    frac = cvis.metrics.curve_fractions(144, 0.25)
    np.testing.assert_allclose(frac, [0, 0.25, 0.5, 0.75, 1.0])
    d = cvis.deletion(m, x, score, ig, step=0.25)
    i = cvis.insertion(m, x, score, ig, step=0.25)
    assert d.curves.shape == (2, 5) and i.curves.shape == (2, 5)
    assert np.all((0 <= d.auc) & (d.auc <= 1)) and np.all((0 <= i.auc) & (i.auc <= 1))
    probs = m.predict(x)  # the full image starts the deletion curve
    np.testing.assert_allclose(d.curves[:, 0], probs[[0, 1], [0, 2]], rtol=1e-4)
    # a constant map normalizes to zero: only a black image is kept
    drop = cvis.average_drop_increase(m, x, score, np.ones((2, 12, 12), np.float32))
    black = m.predict(np.zeros_like(x))[[0, 1], [0, 2]]
    np.testing.assert_allclose(drop.confidences, np.stack([probs[[0, 1], [0, 2]], black], 1),
                               rtol=1e-5)
    full, kept = drop.confidences[:, 0], drop.confidences[:, 1]
    assert drop.average_drop == pytest.approx(100 * np.mean(np.maximum(0, full - kept) / full))
    assert drop.increase == pytest.approx(100 * np.mean(kept > full))
    peaks = np.zeros((2, 12, 12), np.float32)
    peaks[0, 3, 4] = peaks[1, 10, 10] = 1
    masks = np.zeros((2, 12, 12), np.float32)
    masks[:, 2:6, 2:6] = 1
    hit = cvis.pointing_game(peaks, masks=masks, tolerance=0)
    assert hit.accuracy == 0.5 and list(hit.hits) == [1, 0]
    boxed = cvis.pointing_game(peaks, boxes=[[2, 2, 6, 6], [2, 2, 6, 6]], tolerance=0)
    assert list(boxed.hits) == [1, 0]
    # (10, 10) is 7.07 pixels from the mask's nearest pixel (5, 5)
    assert list(cvis.pointing_game(peaks, masks=masks, tolerance=7).hits) == [1, 0]
    assert list(cvis.pointing_game(peaks, masks=masks, tolerance=8).hits) == [1, 1]


def test_images_and_pictures(tmp_path):
    gray = (np.arange(48).reshape(6, 8) * 5).astype(np.uint8)
    rgb = np.stack([gray, 255 - gray, gray // 2], -1)
    cvis.save_png(tmp_path / "a.png", rgb)
    np.testing.assert_array_equal(cvis.load_image(tmp_path / "a.png"), rgb)
    np.testing.assert_array_equal(cvis.decode_image((tmp_path / "a.png").read_bytes()), rgb)
    cvis.save_png(tmp_path / "b.png", np.zeros((6, 8, 3), np.float32) + 0.5)
    assert cvis.resize(rgb, (3, 4), "nearest").shape == (3, 4, 3)
    np.testing.assert_array_equal(cvis.resize(rgb, (6, 8), "bilinear"), rgb)

    images, x = cvis.load_images([tmp_path / "a.png", tmp_path / "b.png"], size=(6, 8))
    assert images.shape == (2, 6, 8, 3) and images.dtype == np.uint8
    assert x.shape == (2, 6, 8, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], rgb / 255.0, atol=1e-7)
    t = cvis.to_tensor([rgb], mean=[0.5, 0.5, 0.5], std=[0.25, 0.5, 1.0])
    np.testing.assert_allclose(t[0], (rgb / 255.0 - 0.5) / [0.25, 0.5, 1.0], atol=1e-6)
    np.testing.assert_array_equal(cvis.to_image(x, 0), rgb)

    cam = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    heat = cvis.colormap(cam, "jet")
    assert heat.shape == (3, 4, 3) and tuple(heat[0, 0]) == (0, 0, 128)
    assert tuple(cvis.colormap(cam, "gray", normalize=True)[-1, -1]) == (255, 255, 255)
    over = cvis.overlay(rgb, cam, cmap="viridis", alpha=0.0)
    np.testing.assert_array_equal(over, rgb)
    assert cvis.overlay(gray, cam).shape == (6, 8, 3)
    text = cvis.draw_text(np.full((20, 40, 3), 255, np.uint8), 1, 1, "Hi", scale=1)
    assert (text < 255).any()
    assert cvis.text_width("Hi", 1) > 0 and cvis.text_width("Hi", 2) == 2 * cvis.text_width("Hi", 1)

    g = cvis.Grid(1, 2, cell_size=(16, 16))
    g.set(0, 0, rgb, "rgb")
    g.set(0, 1, gray)
    g.caption = "two cells"
    assert g.caption == "two cells"
    pic = g.render()
    assert pic.ndim == 3 and pic.shape[2] == 3
    g.save(tmp_path / "grid.png")
    g.close()

    r = cvis.Report("A run")
    r.add_section("Inputs", "Two pictures.")
    r.add_image("grid.png", "the grid")
    r.add_image_inline(rgb, "inline")
    r.add_table([["name", "value"], ["a", None]])
    r.save(tmp_path / "index.html")
    r.close()
    html = (tmp_path / "index.html").read_text()
    assert "A run" in html and "grid.png" in html and "data:image/png;base64," in html


def test_errors_carry_the_library_message():
    m = small_model()
    with pytest.raises(cvis.NotFoundError) as info:
        m.layer("missing")
    e = info.value
    assert str(e) == 'no layer called "missing"' == e.message
    assert e.function == "cvis_model_find_layer" and e.status == 7
    assert e.status_string.startswith("CVIS_E_NOT_FOUND")
    with pytest.raises(cvis.NotFoundError, match="no method"):
        cvis.Explainer(m, "gradcam+++")
    with pytest.raises(cvis.RangeError, match="out of range"):
        m.layer(99)


# ----------------------------------------------- the tour's own verdict
# Public modules whose functions other test files run, and why not here.
TESTED_ELSEWHERE = {
    "dask": "tests/python/test_dask.py runs it on a local Dask cluster (needs dask.distributed)",
}


def public_modules():
    """cvis and each of its public modules (found on disk, so that a new
    module cannot escape the check), less TESTED_ELSEWHERE."""
    names = sorted(p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_"))
    assert set(TESTED_ELSEWHERE) <= set(names)
    return [cvis] + [importlib.import_module("cvis." + n) for n in names
                     if n not in TESTED_ELSEWHERE]


def public_code():
    """{qualified name: code object} of every public function and method of
    the package."""
    found = {}

    def add(name, obj):
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        if isinstance(obj, property):
            for part, f in (("get", obj.fget), ("set", obj.fset)):
                if f is not None:
                    found["%s.%s" % (name, part)] = f.__code__
            return
        code = getattr(obj, "__code__", None)
        if code is not None and code.co_filename.startswith(str(PACKAGE)):
            found[name] = code

    for mod in public_modules():
        for name in getattr(mod, "__all__", dir(mod)):
            if name.startswith("_"):
                continue
            obj = getattr(mod, name)
            home = getattr(obj, "__module__", None) or ""
            if not home.startswith("cvis") or any(p.startswith("_") for p in home.split(".")):
                continue  # imported from elsewhere, or from a private module
            if isinstance(obj, type):
                for attr, member in vars(obj).items():
                    if not attr.startswith("_") or attr in ("__init__", "__call__", "__str__"):
                        add("%s.%s" % (obj.__name__, attr), member)
            elif callable(obj):
                add(name, obj)
    return found


def test_zz_the_tour_reached_every_function(request):
    """Last in this module: every public Python function ran, and every
    declared C function was called (NOT_WRAPPED and AT_IMPORT aside)."""
    names = {item.name for item in request.session.items if item.module.__name__ == __name__}
    everything = {n for n in dir(sys.modules[__name__]) if n.startswith("test_")}
    if names != everything:
        pytest.skip("run the whole module to check coverage")
    gc.collect()  # finalizers free the handles of collected objects
    missing_c = set(_native.DECLARED) - set(C_CALLS) - set(NOT_WRAPPED) - AT_IMPORT
    assert missing_c == set()
    missing_py = sorted(name for name, code in public_code().items() if code not in PY_CALLS)
    assert missing_py == []
