"""Networks described once and built twice: in libcvis (through the Python
API) and in torch, with the same weights, so that tests compare the two.

A spec is a list of layers (name, kind, params, inputs); inputs are layer
names, or "input"; a missing inputs list means the previous layer.  The
torch side works on NCHW internally and hands out NHWC tensors, like libcvis.
"""
import numpy as np

import cvis

ACT = {"relu", "relu6", "sigmoid", "tanh", "softmax", "linear", None}


def tutorial_spec(classes=3):
    return [
        ("conv2d", "conv", dict(filters=8, kernel=7, act="relu")),
        ("conv2d_1", "conv", dict(filters=8, kernel=5, act="relu")),
        ("conv2d_2", "conv", dict(filters=8, kernel=3, act="relu")),
        ("flatten", "flatten", {}),
        ("dense", "dense", dict(units=128, act="relu")),
        ("dense_1", "dense", dict(units=classes, act="softmax")),
    ]


def residual_spec(classes=5):
    """Batch norm, pooling, depthwise convolution, concat, add, multiply,
    strides, dilation, zero padding and global pooling in one small net
    (32x32x3 input; the last convolution is 7x7x12)."""
    return [
        ("stem", "conv", dict(filters=8, kernel=3, padding="same", act="relu")),
        ("stem_bn", "bn", {}),
        ("pool", "pool", dict(kind="max", pool=2, padding="same")),
        ("dw", "conv", dict(filters=8, kernel=3, padding="same", groups=8, act="relu6")),
        ("pw", "conv", dict(filters=8, kernel=1, act="linear")),
        ("pw_bn", "bn", {}),
        ("res", "add", {}, ["pool", "pw_bn"]),
        ("res_relu", "act", dict(act="relu")),
        ("branch_a", "conv", dict(filters=6, kernel=3, strides=2, padding="same", act="relu"),
         ["res_relu"]),
        ("branch_b", "conv", dict(filters=4, kernel=3, dilation=2, padding="same", act="tanh"),
         ["res_relu"]),
        ("branch_b_pool", "pool", dict(kind="avg", pool=3, strides=2, padding="same")),
        ("cat", "concat", {}, ["branch_a", "branch_b_pool"]),
        ("cat_conv", "conv", dict(filters=10, kernel=1, act="linear")),
        ("gate", "conv", dict(filters=10, kernel=1, act="sigmoid")),
        ("gated", "mul", {}, ["cat_conv", "gate"]),
        ("pad", "zeropad", dict(pads=(1, 0, 0, 1))),
        ("last_conv", "conv", dict(filters=12, kernel=3, act="relu")),
        ("gap", "gap", {}),
        ("logits", "dense", dict(units=classes, act="softmax")),
    ]


def _inputs(spec, i):
    layer = spec[i]
    if len(layer) > 3:
        return list(layer[3])
    return [spec[i - 1][0]] if i > 0 else ["input"]


def build_cvis(spec, hwc):
    m = cvis.Model(*hwc)
    index = {"input": cvis.INPUT}
    for i, layer in enumerate(spec):
        name, kind, p = layer[0], layer[1], layer[2]
        ins = [index[n] for n in _inputs(spec, i)]
        if kind == "conv":
            idx = m.conv2d(p["filters"], p["kernel"], strides=p.get("strides", 1),
                           padding=p.get("padding", "valid"), activation=p.get("act"),
                           name=name, input=ins[0], dilation=p.get("dilation", 1),
                           groups=p.get("groups", 1))
        elif kind == "dense":
            idx = m.dense(p["units"], p.get("act"), name=name, input=ins[0])
        elif kind == "flatten":
            idx = m.flatten(name=name, input=ins[0])
        elif kind == "bn":
            idx = m.batch_norm(p.get("eps", 1e-3), name=name, input=ins[0])
        elif kind == "pool":
            idx = m.pool2d(p["kind"], p["pool"], p.get("strides"), p.get("padding", "valid"),
                           name=name, input=ins[0])
        elif kind == "add":
            idx = m.add(ins[0], ins[1], name=name)
        elif kind == "mul":
            idx = m.multiply(ins[0], ins[1], name=name)
        elif kind == "concat":
            idx = m.concat(ins, name=name)
        elif kind == "act":
            idx = m.activation(p["act"], name=name, input=ins[0])
        elif kind == "zeropad":
            t, b, l, r = p["pads"]
            idx = m.zero_padding(t, b, l, r, name=name, input=ins[0])
        elif kind == "gap":
            idx = m.global_avg_pool(name=name, input=ins[0])
        else:
            raise ValueError(kind)
        index[name] = idx
    return m


def randomize(model, seed=0, scale=1.0):
    """Non-trivial weights: kernels scaled by fan-in, biases and batch-norm
    statistics away from identity."""
    rng = np.random.default_rng(seed)
    for i, layer in enumerate(model.layers):
        ref = model.layer(i)
        names = ref.weight_names()
        if not names:
            continue
        vals = []
        for w, name in zip(ref.weights(), names):
            if name == "kernel":
                fan_in = np.prod(w.shape[:-1])
                v = rng.normal(0, scale * np.sqrt(2.0 / fan_in), w.shape)
            elif name == "bias":
                v = rng.normal(0, 0.1, w.shape)
            elif name == "gamma":
                v = rng.uniform(0.5, 1.5, w.shape)
            elif name == "beta":
                v = rng.normal(0, 0.2, w.shape)
            elif name == "moving_mean":
                v = rng.normal(0, 0.2, w.shape)
            elif name == "moving_variance":
                v = rng.uniform(0.5, 2.0, w.shape)
            else:
                raise ValueError(name)
            vals.append(v.astype(np.float32))
        ref.set_weights(vals)


def same_pads(size, k, s, d):
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


class TorchNet:
    """The same network in torch (float64 by default), weights from a cvis
    model.  forward(x_nhwc) -> (outputs, {layer name: NHWC tensor})."""

    def __init__(self, spec, model, dtype=None):
        import torch
        self.torch = torch
        self.spec = spec
        self.dtype = dtype or torch.float64
        self.w = {}
        for i, layer in enumerate(model.layers):
            ref = model.layer(i)
            self.w[layer.name] = dict(zip(ref.weight_names(),
                                          [torch.tensor(v, dtype=self.dtype) for v in ref.weights()]))
        self.outputs = [spec[-1][0]]
        # every ReLU (fused into a layer or a layer of its own) goes through
        # this function: tests of guided methods replace it
        self.relu = torch.nn.functional.relu

    def _act(self, x, act, nchw):
        F = self.torch.nn.functional
        if act in (None, "linear"):
            return x
        if act == "relu":
            return self.relu(x)
        if act == "relu6":
            return self.torch.clamp(x, 0, 6)
        if act == "sigmoid":
            return self.torch.sigmoid(x)
        if act == "tanh":
            return self.torch.tanh(x)
        if act == "softmax":
            return self.torch.softmax(x, dim=1 if nchw and x.dim() == 4 else -1)
        raise ValueError(act)

    def forward(self, x_nhwc, logits=False, drop_act=None, stop_at=None, edit=None):
        """x: torch tensor (B,H,W,C).  logits drops the last layer's
        activation, drop_act drops the named layer's; edit maps layer names
        to functions that replace that layer's NHWC output before later
        layers read it.  Returns (output, acts) where acts maps layer names
        to NHWC tensors (retain_grad'ed)."""
        torch, F = self.torch, self.torch.nn.functional
        vals = {"input": x_nhwc.permute(0, 3, 1, 2)}
        acts = {}
        for i, layer in enumerate(self.spec):
            name, kind, p = layer[0], layer[1], layer[2]
            ins = [vals[n] for n in _inputs(self.spec, i)]
            x = ins[0]
            act = p.get("act")
            if (logits and i == len(self.spec) - 1) or name == drop_act:
                act = None
            if kind == "conv":
                k, s, d = p["kernel"], p.get("strides", 1), p.get("dilation", 1)
                if p.get("padding", "valid") == "same":
                    t, b = same_pads(x.shape[2], k, s, d)
                    l, r = same_pads(x.shape[3], k, s, d)
                    x = F.pad(x, (l, r, t, b))
                w = self.w[name]["kernel"].permute(3, 2, 0, 1)
                y = F.conv2d(x, w, self.w[name].get("bias"), stride=s, dilation=d,
                             groups=p.get("groups", 1))
                y = self._act(y, act, True)
            elif kind == "dense":
                y = x @ self.w[name]["kernel"] + self.w[name]["bias"]
                y = self._act(y, act, False)
            elif kind == "flatten":
                y = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
            elif kind == "bn":
                w = self.w[name]
                shape = (1, -1, 1, 1) if x.dim() == 4 else (1, -1)
                eps = p.get("eps", 1e-3)
                y = (x - w["moving_mean"].view(shape)) / torch.sqrt(
                    w["moving_variance"].view(shape) + eps) * w["gamma"].view(shape) + \
                    w["beta"].view(shape)
            elif kind == "pool":
                k = p["pool"]
                s = p.get("strides") or k
                if p.get("padding", "valid") == "same":
                    t, b = same_pads(x.shape[2], k, s, 1)
                    l, r = same_pads(x.shape[3], k, s, 1)
                else:
                    t = b = l = r = 0
                if p["kind"] == "max":
                    y = F.max_pool2d(F.pad(x, (l, r, t, b), value=-float("inf")), k, s)
                else:
                    num = F.avg_pool2d(F.pad(x, (l, r, t, b)), k, s)
                    den = F.avg_pool2d(F.pad(torch.ones_like(x[:, :1]), (l, r, t, b)), k, s)
                    y = num / den
            elif kind == "add":
                y = ins[0] + ins[1]
            elif kind == "mul":
                y = ins[0] * ins[1]
            elif kind == "concat":
                y = torch.cat(ins, dim=1)
            elif kind == "act":
                y = self._act(x, act, True)
            elif kind == "zeropad":
                t, b, l, r = p["pads"]
                y = F.pad(x, (l, r, t, b))
            elif kind == "gap":
                y = x.mean(dim=(2, 3))
            else:
                raise ValueError(kind)
            # later layers read through the NHWC view, so its .grad is dT/dA
            nhwc = y.permute(0, 2, 3, 1) if y.dim() == 4 else y
            if edit and name in edit:
                nhwc = edit[name](nhwc)
            if nhwc.requires_grad:
                nhwc.retain_grad()
            acts[name] = nhwc
            vals[name] = nhwc.permute(0, 3, 1, 2) if y.dim() == 4 else nhwc
            if name == stop_at:
                return nhwc, acts
        return acts[self.spec[-1][0]], acts


def make_pair(spec, hwc, seed=0, dtype=None, scale=1.0):
    m = build_cvis(spec, hwc)
    randomize(m, seed, scale)
    return m, TorchNet(spec, m, dtype)
