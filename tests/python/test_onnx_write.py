"""Saving models as ONNX: models built with libcvis load back with the same
outputs, pass the onnx package's checker, and mean the same thing to
PyTorch."""
import os

import numpy as np
import pytest

import cvis

if os.environ.get("CI") == "true":
    import onnx
    from onnx import numpy_helper
else:
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper


def tutorial_model(classes=3, seed=11):
    m = cvis.Model(128, 128, 3)
    m.conv2d(8, 7, activation="relu")
    m.conv2d(8, 5, activation="relu")
    m.conv2d(8, 3, activation="relu")
    m.flatten()
    m.dense(128, activation="relu")
    m.dense(classes, activation="softmax")
    m.init_weights(seed)
    return m


def residual_model():
    m = cvis.Model(32, 32, 3)
    stem = m.conv2d(16, 3, padding="same", name="stem")
    bn = m.batch_norm(1e-3, name="stem_bn", input=stem)
    act = m.activation("relu", name="stem_relu", input=bn)
    dw = m.conv2d(16, 3, groups=16, padding="explicit", pads=(1, 1, 1, 1), activation="relu6",
                  name="depthwise", input=act)
    pw = m.conv2d(16, 1, use_bias=False, name="pointwise", input=dw)
    s = m.add(act, pw, name="residual")
    mp = m.pool2d("max", 2, input=s, name="maxpool")
    ap = m.pool2d("avg", 3, strides=2, padding="same", input=s, name="avgpool")
    cat = m.concat([mp, ap], name="concat")
    m.conv2d(32, 3, strides=2, padding="same", activation="leaky_relu", name="top", input=cat)
    m.global_avg_pool(name="gap")
    m.dropout(0.25, name="dropout")
    m.dense(5, activation="softmax", name="logits")
    rng = np.random.default_rng(3)
    for layer in m.layers:
        ref = m.layer(layer.index)
        ws = []
        for name, w in zip(ref.weight_names(), ref.weights()):
            lo = 0.5 if name in ("gamma", "moving_variance") else -0.5
            ws.append(rng.uniform(lo, lo + 1, w.shape).astype(np.float32))
        if ws:
            ref.set_weights(ws)
    return m


@pytest.mark.parametrize("build,size", [(tutorial_model, 128), (residual_model, 32)])
def test_round_trip_and_checker(tmp_path, build, size):
    m = build()
    path = tmp_path / "model.onnx"
    m.save_onnx(str(path))
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value == 3  # NCHW
    back = cvis.Model.load(str(path))
    x = np.random.default_rng(1).standard_normal((2, size, size, 3)).astype(np.float32)
    assert np.array_equal(m.predict(x), back.predict(x))
    # the same bytes through memory
    again = cvis.onnx.load_bytes(m.to_onnx_bytes())
    assert np.array_equal(m.predict(x), again.predict(x))
    names = {l.name for l in m.layers}
    for l in back.layers:
        assert l.name in names


def run_in_torch(torch, proto, x):
    """Evaluates the node kinds that the writer emits with torch functions,
    in float64: an independent reading of the file."""
    F = torch.nn.functional
    env = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in proto.graph.initializer}
    env = {k: v.double() if v.is_floating_point() else v for k, v in env.items()}
    env[proto.graph.input[0].name] = torch.from_numpy(x).double()

    def attrs(node):
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    def same_pads(size, k, s):
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        return total // 2, total - total // 2

    for node in proto.graph.node:
        a, ins = attrs(node), [env[i] if i else None for i in node.input]
        op, x0 = node.op_type, ins[0]
        if op in ("Conv", "MaxPool", "AveragePool"):
            k = a["kernel_shape"]
            st = a.get("strides", [1, 1])
            if a.get("auto_pad", b"NOTSET") == b"SAME_UPPER":
                (t, b_), (l, r) = same_pads(x0.shape[2], k[0], st[0]), same_pads(x0.shape[3], k[1], st[1])
            else:
                t, l, b_, r = a.get("pads", [0, 0, 0, 0])
        if op == "Conv":
            y = F.conv2d(F.pad(x0, (l, r, t, b_)), ins[1], ins[2] if len(ins) > 2 else None,
                         stride=st, dilation=a.get("dilations", [1, 1]), groups=a.get("group", 1))
        elif op == "MaxPool":
            y = F.max_pool2d(F.pad(x0, (l, r, t, b_), value=-np.inf), k, st)
        elif op == "AveragePool":
            ones = torch.ones_like(x0)
            y = F.avg_pool2d(F.pad(x0, (l, r, t, b_)), k, st) / F.avg_pool2d(F.pad(ones, (l, r, t, b_)), k, st)
        elif op == "BatchNormalization":
            y = F.batch_norm(x0, ins[3], ins[4], ins[1], ins[2], False, 0.0, a["epsilon"])
        elif op == "Relu":
            y = F.relu(x0)
        elif op == "LeakyRelu":
            y = F.leaky_relu(x0, a["alpha"])
        elif op == "Sigmoid":
            y = torch.sigmoid(x0)
        elif op == "HardSigmoid":
            y = torch.clamp(a["alpha"] * x0 + a["beta"], 0, 1)
        elif op == "Clip":
            y = torch.clamp(x0, float(ins[1]), float(ins[2]))
        elif op == "Softmax":
            y = torch.softmax(x0, a["axis"])
        elif op == "Transpose":
            y = x0.permute(*a["perm"])
        elif op == "Flatten":
            y = x0.flatten(a["axis"])
        elif op == "Gemm":
            y = x0 @ ins[1] + ins[2]
        elif op in ("Add", "Mul"):
            y = x0 + ins[1] if op == "Add" else x0 * ins[1]
        elif op == "Concat":
            y = torch.cat(ins, a["axis"])
        elif op == "Pad":
            p = ins[1].tolist()
            n = len(p) // 2
            y = F.pad(x0, [v for ax in reversed(range(n)) for v in (p[ax], p[n + ax])])
        elif op == "ReduceMean":
            y = x0.mean(dim=a["axes"], keepdim=bool(a["keepdims"]))
        elif op in ("Dropout", "Identity"):
            y = x0
        else:
            raise AssertionError("node %s not evaluated" % op)
        env[node.output[0]] = y
    return env[proto.graph.output[0].name].numpy()


@pytest.mark.parametrize("build,size", [(tutorial_model, 128), (residual_model, 32)])
def test_saved_file_means_the_same_to_torch(tmp_path, build, size):
    """Evaluated node by node with PyTorch on NCHW input, the saved file
    gives libcvis's output."""
    if os.environ.get("CI") == "true":
        import torch
    else:
        torch = pytest.importorskip("torch")
    m = build()
    proto = onnx.load_from_string(m.to_onnx_bytes())
    x = np.random.default_rng(2).standard_normal((2, 3, size, size)).astype(np.float32)
    ref = run_in_torch(torch, proto, x)
    got = m.predict(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() < 1e-5


def test_free_sizes_are_named(tmp_path):
    m = cvis.onnx.load_bytes(residual_model().to_onnx_bytes())
    assert m.input_shape == (32, 32, 3)
    proto = onnx.load_from_string(m.to_onnx_bytes())
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [3, 32, 32]


def test_save_errors(tmp_path):
    m = tutorial_model()
    with pytest.raises(cvis.IOError):
        m.save_onnx(str(tmp_path / "missing" / "dir" / "model.onnx"))
    with pytest.raises(cvis.IOError):
        cvis.Model.load(str(tmp_path / "nothing.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"PK\x03\x04not a model")
    with pytest.raises(cvis.FormatError, match="zip"):
        cvis.Model.load(str(bad))
