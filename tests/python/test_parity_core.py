"""Parity of libcvis's core with PyTorch autograd.

The same networks are built through the Python API and, independently, as
PyTorch computations in float64 from the same weights (Keras layout in
libcvis, converted here: conv kernels (kh,kw,cin,cout) -> (cout,cin,kh,kw),
the dense rows after a Flatten permuted from NHWC to NCHW order, Keras SAME
padding applied explicitly since it is asymmetric).  Forward outputs,
logits, input gradients of class scores, a layer's output and gradient, and
weight gradients must agree to 1e-4 of the compared quantity's scale
(max |reference|).

Gradients jump at ReLU kinks.  A unit whose float64 pre-activation lies
within rounding distance of 0 may be gated differently by a correct float32
computation.  So libcvis's gates (its ReLU outputs > 0) are read back: any
gate that differs from the float64 reference's must belong to such a
near-kink unit (else the test fails), and the reference is then recomputed
with exactly those gates flipped before gradients are compared.  Max-pool
windows must hold no near-ties (exact ties, which any implementation
computes alike and routes to the first maximum, are allowed); this is
asserted on the reference.
"""
import os

import numpy as np
import pytest


def _import_torch():
    if os.environ.get("CI") == "true":
        import torch  # under CI the reference must run, not skip
        return torch
    return pytest.importorskip("torch")


torch = _import_torch()
F = torch.nn.functional

import cvis  # noqa: E402

TOL = 1e-4          # relative to the scale of the compared quantity
# |pre-activation| below KINK * (the layer's max |pre-activation|) counts as
# near a kink: libcvis's float32 pre-activations were measured within 6e-7
# of that scale from the float64 reference, so KINK leaves a margin of ~7.
KINK = 4e-6
MEASURED = {}       # name -> relative max difference, printed at the end


# --------------------------------------------------------------------------- networks
# A network is a list of (builder method, keyword arguments); the same list
# builds the libcvis model and drives the PyTorch reference below.

def tutorial_spec(classes=3):
    return (128, 128, 3), [
        ("conv2d", dict(filters=8, kernel=7, activation="relu")),
        ("conv2d", dict(filters=8, kernel=5, activation="relu")),
        ("conv2d", dict(filters=8, kernel=3, activation="relu")),
        ("flatten", dict()),
        ("dense", dict(units=128, activation="relu")),
        ("dense", dict(units=classes, activation="softmax")),
    ]


def residual_spec():
    return (18, 18, 3), [
        ("zero_padding", dict(top=1, bottom=2, left=2, right=2)),                # 0: 21x22x3
        ("conv2d", dict(filters=8, kernel=3)),                                   # 1: 19x20x8
        ("batch_norm", dict(epsilon=1e-3)),                                      # 2
        ("activation", dict(activation="relu")),                                 # 3
        ("pool2d", dict(kind="max", pool=2)),                                    # 4: 9x10x8 VALID
        ("conv2d", dict(filters=8, kernel=3, padding="same", groups=8,           # 5: depthwise
                        activation="relu")),
        ("conv2d", dict(filters=8, kernel=1)),                                   # 6: 1x1 linear
        ("add", dict(a=4, b=6)),                                                 # 7: residual
        ("conv2d", dict(filters=6, kernel=3, padding="same", dilation=2,         # 8: dilated
                        activation="relu", input=4)),
        ("concat", dict(inputs=[7, 8])),                                         # 9: 9x10x14
        ("conv2d", dict(filters=12, kernel=3, strides=2, padding="same",         # 10: 5x5x12
                        activation="relu")),
        ("pool2d", dict(kind="avg", pool=2, strides=1, padding="same")),         # 11: 5x5
        ("pool2d", dict(kind="max", pool=3, strides=1, padding="same", input=10)),  # 12: 5x5
        ("multiply", dict(a=11, b=12)),                                          # 13
        ("pool2d", dict(kind="max", pool=2, strides=2, padding="same")),         # 14: 3x3
        ("pool2d", dict(kind="avg", pool=2, strides=1)),                         # 15: 2x2 VALID
        ("pool2d", dict(kind="avg", pool=2, strides=2, padding="same", input=13)),  # 16: 3x3
        ("global_avg_pool", dict(input=15)),                                     # 17: 12
        ("global_avg_pool", dict(input=16)),                                     # 18: 12
        ("concat", dict(inputs=[17, 18])),                                       # 19: 24
        ("dense", dict(units=10, activation="relu")),                            # 20
        ("batch_norm", dict(epsilon=1e-2)),                                      # 21
        ("dense", dict(units=4, activation="softmax")),                          # 22
    ]


def build_cvis(spec):
    (h, w, c), layers = spec
    m = cvis.Model(h, w, c)
    for method, kw in layers:
        kw = dict(kw)
        if method in ("add", "multiply"):
            getattr(m, method)(kw.pop("a"), kw.pop("b"), **kw)
        elif method == "concat":
            m.concat(kw.pop("inputs"), **kw)
        else:
            getattr(m, method)(**kw)
    return m


def random_weights(model, rng):
    """Non-trivial weights for every layer (biases and batch-norm
    statistics included), set through LayerRef.set_weights."""
    weights = []
    for i in range(len(model.layers)):
        ref = model.layer(i)
        values = []
        for name, w in zip(ref.weight_names(), ref.weights()):
            if name == "kernel":
                fan_in = np.prod(w.shape[:-1])
                fan_out = w.shape[-1] * (np.prod(w.shape[:-2]) if w.ndim == 4 else 1)
                a = 1.5 * np.sqrt(6.0 / (fan_in + fan_out))
                v = rng.uniform(-a, a, w.shape)
            elif name == "bias":
                v = rng.uniform(-0.1, 0.1, w.shape)
            elif name == "gamma":
                v = rng.uniform(0.5, 1.5, w.shape)
            elif name in ("beta", "moving_mean"):
                v = rng.uniform(-0.3, 0.3, w.shape)
            elif name == "moving_variance":
                v = rng.uniform(0.5, 2.0, w.shape)
            else:
                raise AssertionError("unexpected weight " + name)
            values.append(v.astype(np.float32))
        ref.set_weights(values)
        # what the model holds now is what the reference must use
        got = ref.weights()
        for v, g in zip(values, got):
            np.testing.assert_array_equal(v, g)
        weights.append(dict(zip(ref.weight_names(), got)))
    return weights


# --------------------------------------------------------------------------- reference

def keras_same(n, k, s, d=1):
    """Keras/TensorFlow SAME padding along one axis: (before, after)."""
    o = -(-n // s)
    total = max((o - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class Reference:
    """The network in PyTorch, float64, NCHW.  Weights are leaves in the
    Keras layout, so that their gradients come out in that layout."""

    def __init__(self, spec, weights):
        self.spec = spec
        self.leaves = [{k: torch.tensor(v, dtype=torch.float64, requires_grad=k in (
            "kernel", "bias", "gamma", "beta")) for k, v in w.items()} for w in weights]

    def relu(self, z):
        """ReLU whose gate can be flipped for near-kink units (see module doc)."""
        k = len(self.pre)
        self.pre.append((self.layer, z.detach()))
        gate = z.detach() > 0
        if self.flips is not None:
            gate = gate ^ self.flips[k]
        return z * gate.to(z.dtype)

    def act(self, z, name, last):
        if name in (None, "linear"):
            return z
        if name == "relu":
            return self.relu(z)
        if name == "softmax":
            return z if self.logits and last else torch.softmax(z, dim=1)
        raise AssertionError(name)

    def run(self, x_nhwc, logits=False, flips=None, keep=()):
        """Forward from an NHWC batch.  Returns the output; the input (a
        leaf), the kept layers' outputs (NCHW or 2-D) and the ReLU
        pre-activations stay on self."""
        self.logits, self.flips, self.pre = logits, flips, []
        self.pool_gaps = []
        x = torch.tensor(x_nhwc, dtype=torch.float64, requires_grad=True)
        self.x = x
        outs = []
        self.kept = {}
        layers = self.spec[1]
        for i, (method, kw) in enumerate(layers):
            self.layer = i
            src = kw.get("input", -1)
            inp = x.permute(0, 3, 1, 2) if (src == -2 or (src == -1 and i == 0)) else (
                outs[src] if src >= 0 else outs[-1])
            w = self.leaves[i]
            last = i == len(layers) - 1
            y = getattr(self, "_" + method)(inp, w, kw, outs, last)
            if i in keep:
                y.retain_grad()
                self.kept[i] = y
            outs.append(y)
        return outs[-1]

    # one function per layer kind -------------------------------------------------
    def _conv2d(self, x, w, kw, outs, last):
        kh, kw_ = pair(kw["kernel"])
        sh, sw = pair(kw.get("strides", 1))
        dh, dw = pair(kw.get("dilation", 1))
        if kw.get("padding", "valid") == "same":
            t, b = keras_same(x.shape[2], kh, sh, dh)
            l, r = keras_same(x.shape[3], kw_, sw, dw)
            x = F.pad(x, (l, r, t, b))
        weight = w["kernel"].permute(3, 2, 0, 1)
        z = F.conv2d(x, weight, w.get("bias"), stride=(sh, sw), dilation=(dh, dw),
                     groups=kw.get("groups", 1))
        return self.act(z, kw.get("activation"), last)

    def _dense(self, x, w, kw, outs, last):
        k = w["kernel"]
        if getattr(x, "flattened_from", None) is not None:
            # the kernel's rows follow libcvis's (h,w,c) flatten order;
            # this flatten is torch's (c,h,w) one
            c, h, wd = x.flattened_from
            k = k.reshape(h, wd, c, -1).permute(2, 0, 1, 3).reshape(c * h * wd, -1)
        return self.act(x @ k + w["bias"], kw.get("activation"), last)

    def _flatten(self, x, w, kw, outs, last):
        y = x.flatten(1)
        y.flattened_from = tuple(x.shape[1:])
        return y

    def _activation(self, x, w, kw, outs, last):
        return self.act(x, kw["activation"], last)

    def _batch_norm(self, x, w, kw, outs, last):
        return F.batch_norm(x, w["moving_mean"], w["moving_variance"], w["gamma"], w["beta"],
                            training=False, eps=kw["epsilon"])

    def _zero_padding(self, x, w, kw, outs, last):
        return F.pad(x, (kw["left"], kw["right"], kw["top"], kw["bottom"]))

    def _pool2d(self, x, w, kw, outs, last):
        kh, kw_ = pair(kw["pool"])
        sh, sw = pair(kw.get("strides") or (kh, kw_))
        pads = (0, 0, 0, 0)
        if kw.get("padding", "valid") == "same":
            t, b = keras_same(x.shape[2], kh, sh)
            l, r = keras_same(x.shape[3], kw_, sw)
            pads = (l, r, t, b)
        if kw["kind"] == "max":
            xp = F.pad(x, pads, value=-np.inf)
            self._record_pool_gaps(xp, (kh, kw_), (sh, sw))
            return F.max_pool2d(xp, (kh, kw_), (sh, sw))
        # average over the window's part inside the image (pads not counted)
        total = F.avg_pool2d(F.pad(x, pads), (kh, kw_), (sh, sw)) * (kh * kw_)
        count = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), pads), (kh, kw_),
                             (sh, sw)) * (kh * kw_)
        return total / count

    def _record_pool_gaps(self, xp, k, s):
        """Relative gap between each window's two largest values, for the
        windows whose maximum is not 0 (exact ties of ReLU zeros route the
        same way in any implementation and carry no gradient)."""
        win = xp.detach().unfold(2, k[0], s[0]).unfold(3, k[1], s[1])
        win = win.reshape(*win.shape[:4], -1)
        top2 = win.topk(2, dim=-1).values
        live = top2[..., 0] != 0
        gap = (top2[..., 0] - top2[..., 1])[live]
        scale = xp[torch.isfinite(xp)].abs().max()
        self.pool_gaps.append((gap.min() / scale).item() if gap.numel() else np.inf)

    def _global_avg_pool(self, x, w, kw, outs, last):
        return x.mean(dim=(2, 3))

    def _add(self, x, w, kw, outs, last):
        return outs[kw["a"]] + outs[kw["b"]]

    def _multiply(self, x, w, kw, outs, last):
        return outs[kw["a"]] * outs[kw["b"]]

    def _concat(self, x, w, kw, outs, last):
        return torch.cat([outs[i] for i in kw["inputs"]], dim=1)


def nhwc(t):
    t = t.detach()
    return (t.permute(0, 2, 3, 1) if t.dim() == 4 else t).numpy()


def class_seed(shape, classes):
    seed = np.zeros(shape, dtype=np.float32)
    seed[np.arange(shape[0]), classes] = 1
    return seed


def nchw(a):
    a = torch.from_numpy(np.ascontiguousarray(a))
    return a.permute(0, 3, 1, 2) if a.dim() == 4 else a


class Case:
    """One network with weights and inputs, and its float64 reference with
    libcvis's gates at near-kink units (see the module's doc)."""

    def __init__(self, name, spec, seed, batch, classes, keep=(), logits=False):
        rng = np.random.default_rng(seed)
        self.name = name
        self.spec = spec
        self.model = build_cvis(spec)
        self.weights = random_weights(self.model, rng)
        h, w, c = spec[0]
        self.x = rng.uniform(0, 1, (batch, h, w, c)).astype(np.float32)
        self.classes = classes
        self.keep = keep
        self.logits = logits
        self.ref = Reference(spec, self.weights)
        self.expected = self._reference(None)
        self.pre, self.pool_gaps = self.ref.pre, self.ref.pool_gaps
        flips = self._gates_of_libcvis()
        n_flips = int(sum(f.sum().item() for f in flips))
        MEASURED["%s: gates flipped to follow libcvis" % name] = n_flips
        if n_flips:
            self.expected = self._reference(flips)

    def _gates_of_libcvis(self):
        p = cvis.Pass(self.model, logits=self.logits)
        p.forward(self.x)
        flips = []
        for layer, z in self.pre:
            gate = nchw(p.layer_output(layer) > 0)
            differ = gate != (z > 0)
            near = z.abs() <= KINK * z.abs().max()
            bad = differ & ~near
            assert not bad.any(), "%s: layer %d gates %d units unlike the reference, " \
                "away from any kink (|z| up to %.3g of the scale)" % (
                    self.name, layer, int(bad.sum()),
                    (z.abs()[bad].max() / z.abs().max()).item())
            flips.append(differ)
        return flips

    def _reference(self, flips):
        r = self.ref
        for leaves in r.leaves:
            for t in leaves.values():
                t.grad = None
        out = r.run(self.x, logits=self.logits, flips=flips, keep=self.keep)
        score = out[np.arange(len(self.classes)), list(self.classes)].sum()
        score.backward()
        return {"out": out.detach().numpy(), "dx": r.x.grad.numpy().copy(),
                "layers": {i: (nhwc(t), nhwc(t.grad)) for i, t in r.kept.items()},
                "dw": [{k: t.grad.numpy().copy() for k, t in leaves.items()
                        if t.grad is not None} for leaves in r.leaves]}


def compare(name, got, ref):
    assert got is not None, name + ": libcvis returned nothing"
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == ref.shape, (name, got.shape, ref.shape)
    scale = np.abs(ref).max()
    assert scale > 0, name + ": the reference is all zeros; the comparison would mean nothing"
    rel = np.abs(got - ref).max() / scale
    MEASURED[name] = rel
    assert rel < TOL, "%s: max |diff| / scale = %.3g (scale %.3g)" % (name, rel, scale)


# --------------------------------------------------------------------------- tests

@pytest.fixture(scope="module")
def tutorial():
    return Case("tutorial", tutorial_spec(), seed=7, batch=2, classes=(0, 2), keep=(2,))


@pytest.fixture(scope="module")
def tutorial_logits():
    return Case("tutorial logits", tutorial_spec(), seed=8, batch=2, classes=(1, 2),
                logits=True)


@pytest.fixture(scope="module")
def residual():
    return Case("residual", residual_spec(), seed=11, batch=3, classes=(3, 0, 2),
                keep=(7, 9, 13))


@pytest.fixture(scope="module")
def residual_logits():
    return Case("residual logits", residual_spec(), seed=12, batch=2, classes=(1, 3),
                keep=(19,), logits=True)


def test_tutorial_layer_table(tutorial):
    layers = tutorial.model.layers
    assert [l.name for l in layers] == ["conv2d", "conv2d_1", "conv2d_2", "flatten", "dense",
                                        "dense_1"]
    assert [l.output_shape for l in layers] == [(122, 122, 8), (118, 118, 8), (116, 116, 8),
                                                (116 * 116 * 8,), (128,), (3,)]


def assert_no_pool_near_ties(case):
    for gap in case.pool_gaps:
        assert gap == 0 or gap > 1e-5, case.pool_gaps


def check_pass(case):
    m, name, exp = case.model, case.name, case.expected
    p = cvis.Pass(m, logits=case.logits)
    if not case.logits:
        compare(name + ": predict", m.predict(case.x), exp["out"])
    out = p.forward(case.x)
    compare(name + ": forward", out, exp["out"])
    p.backward(class_seed(out.shape, list(case.classes)))
    compare(name + ": input grad", p.input_grad(), exp["dx"])
    for i in case.keep:
        compare(name + ": layer %d output" % i, p.layer_output(i), exp["layers"][i][0])
        compare(name + ": layer %d grad" % i, p.layer_grad(i), exp["layers"][i][1])


def check_weight_grads(case):
    m, exp = case.model, case.expected
    p = cvis.Pass(m, logits=case.logits, weight_grads=True)
    out = p.forward(case.x)
    p.backward(class_seed(out.shape, list(case.classes)))
    n = 0
    for i in range(len(m.layers)):
        for k, wname in enumerate(m.layer(i).weight_names()):
            g = p.weight_grad(i, k)
            ref = exp["dw"][i].get(wname)
            if ref is None:  # batch-norm statistics: not trained
                assert g is None or not np.any(g), (i, wname)
                continue
            compare("%s: d %s/%s" % (case.name, m.layers[i].name, wname), g, ref)
            n += 1
    assert n > 0


@pytest.mark.parametrize("case", ["tutorial", "tutorial_logits", "residual", "residual_logits"])
def test_forward_and_gradients(case, request):
    c = request.getfixturevalue(case)
    assert_no_pool_near_ties(c)
    check_pass(c)


@pytest.mark.parametrize("case", ["tutorial", "tutorial_logits", "residual", "residual_logits"])
def test_weight_gradients(case, request):
    check_weight_grads(request.getfixturevalue(case))


def test_pool_windows_exercised(residual):
    """The residual network's max pools really have live windows to route."""
    assert len(residual.pool_gaps) == 3
    assert any(np.isfinite(g) and g > 0 for g in residual.pool_gaps)


def test_logits_mode_leaves_the_model_alone(residual):
    """A logits pass must not change what predict or a plain pass give."""
    m = residual.model
    p = cvis.Pass(m, logits=True)
    logits = p.forward(residual.x)
    assert not np.allclose(logits.sum(axis=1), 1)
    compare("residual: predict after a logits pass", m.predict(residual.x),
            residual.expected["out"])


def test_report_measured():
    """Prints the figures (pytest -s shows them)."""
    for name in sorted(MEASURED):
        print("%-52s %.2e" % (name, MEASURED[name]))
    assert MEASURED
