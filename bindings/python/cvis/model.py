"""Models: building, enumerating, weights, prediction, passes, optimizers."""
import collections
import ctypes
import os
import weakref

import numpy as np

from ._native import api, model_p, pass_p, optimizer_p, tensor_p, c_int, c_int64, c_double
from ._errors import ShapeError
from ._tensor import Borrowed, adopt, copy_view

ACTIVATIONS = {"linear": 0, None: 0, "relu": 1, "relu6": 2, "leaky_relu": 3, "sigmoid": 4,
               "tanh": 5, "softmax": 6, "hard_sigmoid": 7, "hard_swish": 8}
PADDINGS = {"valid": 0, "same": 1, "explicit": 2}
POOLS = {"max": 0, "avg": 1, "average": 1}
PREV, INPUT = -1, -2

Layer = collections.namedtuple("Layer", "index name type output_shape is_conv")
Layer.__doc__ = """One layer of a model: its index, name, type ("Conv2D", "Dense", ...),
output shape without the batch axis, and whether CAM methods can use it."""


def _name(name):
    return None if name is None else name.encode("utf-8")


def _enum(table, value, what):
    if isinstance(value, int):
        return value
    try:
        return table[value.lower() if isinstance(value, str) else value]
    except KeyError:
        raise ValueError("unknown %s %r; one of %s" % (
            what, value, ", ".join(sorted(k for k in table if k)))) from None


class LayerRef:
    """One layer of a model (Model.layer(name or index)): its description
    and its weights."""

    def __init__(self, model, index):
        self.model = model
        self.index = index

    @property
    def name(self):
        return api.cvis_model_layer_name(self.model._h, self.index).decode()

    @property
    def info(self):
        """The layer's Layer(index, name, type, output_shape, is_conv)."""
        return self.model.layers[self.index]

    def __repr__(self):
        return "<cvis layer %d %r>" % (self.index, self.name)

    def weight_names(self):
        """The names of the layer's weights ("kernel", "bias", ...)."""
        m = self.model._h
        return [api.cvis_model_weight_name(m, self.index, k).decode()
                for k in range(api.cvis_model_weight_count(m, self.index))]

    def weights(self):
        """Copies of the layer's weights, in order (kernel, bias for conv and
        dense; gamma, beta, moving_mean, moving_variance for batch norm)."""
        out = []
        for k in range(api.cvis_model_weight_count(self.model._h, self.index)):
            t = tensor_p()
            api.cvis_model_get_weight(self.model._h, self.index, k, ctypes.byref(t))
            out.append(adopt(t))
        return out

    def set_weights(self, values):
        """Overwrites the layer's weights (same shapes, finite values), in
        the order of weights()."""
        names = self.weight_names()
        if len(values) != len(names):
            raise ValueError("layer %s has %d weights, got %d" % (self.name, len(names),
                                                                  len(values)))
        for k, v in enumerate(values):
            with Borrowed(v) as b:
                api.cvis_model_set_weight(self.model._h, self.index, k, b.handle)

    def filters(self):
        """(filters (kh,kw,cin,cout), bias) of a convolution layer."""
        f, b = tensor_p(), tensor_p()
        api.cvis_model_get_filters(self.model._h, self.index, ctypes.byref(f), ctypes.byref(b))
        return adopt(f), adopt(b)


class Model:
    """A libcvis model: Model(height, width, channels) and the builder
    methods (conv2d, dense, ...), Model.sequential(input_shape, layers), or
    Model.load(path) for an ONNX file.  A model may be shared by threads
    once built (nothing that computes changes it)."""

    @classmethod
    def sequential(cls, input_shape, layers, seed=None, weights=None):
        """A chain of layers from cvis.layers descriptions:

            Model.sequential((128, 128, 3), [cvis.layers.Conv2D(8, 7, activation="relu"),
                                             cvis.layers.Flatten(),
                                             cvis.layers.Dense(3, activation="softmax")])

        input_shape is (height, width, channels).  Weights start from the
        library's seed 0 (Glorot-uniform kernels, zero biases), or from
        `seed`; `weights` names an NPZ file to load them from."""
        if len(input_shape) != 3:
            raise ValueError("input_shape is (height, width, channels), not %r" % (input_shape,))
        m = cls(*input_shape)
        for desc in layers:
            if not hasattr(desc, "build"):
                raise TypeError("not a layer description (cvis.layers): %r" % (desc,))
            desc.build(m)
        if seed is not None:
            m.init_weights(seed)
        if weights is not None:
            m.load_weights(weights)
        return m

    def __init__(self, height=None, width=None, channels=None, _handle=None, _parent=None):
        """An empty model whose input is (batch, height, width, channels)."""
        if _handle is None:
            if None in (height, width, channels):
                raise TypeError("Model(height, width, channels) needs the input size")
            h = model_p()
            api.cvis_model_new(height, width, channels, ctypes.byref(h))
            _handle = h
        self._h = _handle
        self._parent = _parent
        self._finalizer = weakref.finalize(self, api.cvis_model_free, self._h)

    def close(self):
        self._finalizer()

    # ------------------------------------------------------------ building
    def _in(self, layer):
        """A builder's input: PREV, INPUT, a layer index or a layer name."""
        return self.layer_index(layer)

    def _add(self, fn, *args):
        idx = c_int()
        fn(self._h, *args, ctypes.byref(idx))
        return idx.value

    def conv2d(self, filters, kernel, strides=1, padding="valid", activation=None, name=None,
               input=PREV, dilation=1, groups=1, pads=(0, 0, 0, 0), use_bias=True):
        """A convolution of `filters` kernels (kernel: int or (kh, kw)).
        padding: "valid", "same", or "explicit" with pads = (top, left,
        bottom, right).  Returns the new layer's index."""
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        sh, sw = (strides, strides) if isinstance(strides, int) else strides
        dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
        pad = _enum(PADDINGS, padding, "padding")
        act = _enum(ACTIVATIONS, activation, "activation")
        if sh == sw and dh == dw == 1 and groups == 1 and pad != PADDINGS["explicit"] and use_bias:
            return self._add(api.cvis_model_add_conv2d, _name(name), self._in(input), filters,
                             kh, kw, sh, pad, act)
        pt, pl, pb, pr = pads
        return self._add(api.cvis_model_add_conv2d_ex, _name(name), self._in(input), filters, kh,
                         kw, sh, sw, dh, dw, groups, pad, pt, pl, pb, pr, int(use_bias), act)

    def dense(self, units, activation=None, name=None, input=PREV):
        """A fully connected layer over the last axis."""
        return self._add(api.cvis_model_add_dense, _name(name), self._in(input), units,
                         _enum(ACTIVATIONS, activation, "activation"))

    def activation(self, activation, name=None, input=PREV):
        """An activation layer: "relu", "relu6", "leaky_relu", "sigmoid", "tanh",
        "softmax", "hard_sigmoid", "hard_swish" or "linear"."""
        return self._add(api.cvis_model_add_activation, _name(name), self._in(input),
                         _enum(ACTIVATIONS, activation, "activation"))

    def leaky_relu(self, alpha=0.3, name=None, input=PREV):
        """max(x, alpha * x)."""
        return self._add(api.cvis_model_add_leaky_relu, _name(name), self._in(input), alpha)

    def pool2d(self, kind="max", pool=2, strides=None, padding="valid", name=None, input=PREV):
        """Max ("max") or average ("avg") pooling; strides default to the
        window; padding "valid" or "same"."""
        ph, pw = (pool, pool) if isinstance(pool, int) else pool
        strides = (ph, pw) if strides is None else strides
        sh, sw = (strides, strides) if isinstance(strides, int) else strides
        return self._add(api.cvis_model_add_pool2d, _name(name), self._in(input),
                         _enum(POOLS, kind, "pool"), ph, pw, sh, sw,
                         _enum(PADDINGS, padding, "padding"))

    def global_avg_pool(self, name=None, input=PREV):
        """Mean over height and width: (B,H,W,C) -> (B,C)."""
        return self._add(api.cvis_model_add_global_avg_pool, _name(name), self._in(input))

    def batch_norm(self, epsilon=1e-3, name=None, input=PREV):
        """Inference batch normalization (weights gamma, beta, moving_mean,
        moving_variance; identity until set)."""
        return self._add(api.cvis_model_add_batch_norm, _name(name), self._in(input), epsilon)

    def flatten(self, name=None, input=PREV):
        return self._add(api.cvis_model_add_flatten, _name(name), self._in(input))

    def dropout(self, rate, name=None, input=PREV):
        """Identity at inference."""
        return self._add(api.cvis_model_add_dropout, _name(name), self._in(input), rate)

    def zero_padding(self, top, bottom, left, right, name=None, input=PREV):
        return self._add(api.cvis_model_add_zero_padding, _name(name), self._in(input), top,
                         bottom, left, right)

    def add(self, a, b, name=None):
        """Element-wise sum of two layers (indices or names) of one shape."""
        return self._add(api.cvis_model_add_add, _name(name), self._in(a), self._in(b))

    def multiply(self, a, b, name=None):
        """Element-wise product of two layers of one shape."""
        return self._add(api.cvis_model_add_multiply, _name(name), self._in(a), self._in(b))

    def concat(self, inputs, name=None):
        """Concatenation of layers along the channel axis."""
        idx = [self._in(i) for i in inputs]
        arr = (c_int * len(idx))(*idx)
        return self._add(api.cvis_model_add_concat, _name(name), len(idx), arr)

    def set_outputs(self, layers):
        """The model's outputs (by default the last layer added)."""
        idx = [self.layer_index(l) for l in layers]
        api.cvis_model_set_outputs(self._h, len(idx), (c_int * len(idx))(*idx))

    def init_weights(self, seed):
        """Every weight afresh from `seed`: Glorot-uniform kernels, zero
        biases, identity batch norm."""
        api.cvis_model_init_weights(self._h, seed)

    # ----------------------------------------------------------- querying
    @property
    def layers(self):
        """Every layer, in the order they run: a list of Layer(index, name,
        type, output_shape (without the batch axis), is_conv)."""
        out = []
        for i in range(api.cvis_model_layer_count(self._h)):
            nd = c_int()
            shape = (c_int64 * 8)()
            api.cvis_model_layer_output_shape(self._h, i, ctypes.byref(nd), shape)
            out.append(Layer(i, api.cvis_model_layer_name(self._h, i).decode(),
                             api.cvis_model_layer_type(self._h, i).decode(),
                             tuple(shape[k] for k in range(nd.value)),
                             bool(api.cvis_model_layer_is_conv(self._h, i))))
        return out

    def layer_index(self, layer):
        """The index of a layer given by name (also the names of ONNX nodes
        merged into it) or by index (returned as is; negative indices count
        from the end where the library takes them)."""
        if isinstance(layer, str):
            idx = c_int()
            api.cvis_model_find_layer(self._h, layer.encode("utf-8"), ctypes.byref(idx))
            return idx.value
        return int(layer)

    def layer(self, layer):
        """The layer (by name or index, negative from the end) as a LayerRef:
        .weights(), .set_weights(), .filters(), .weight_names()."""
        idx = self.layer_index(layer)
        n = api.cvis_model_layer_count(self._h)
        if idx < 0:
            idx += n
        if not 0 <= idx < n:
            from ._errors import RangeError
            raise RangeError("layer %d out of range (the model has %d layers)" % (idx, n))
        return LayerRef(self, idx)

    @property
    def input_shape(self):
        """(height, width, channels); -1 where an imported model leaves the
        size free."""
        hwc = (c_int64 * 3)()
        api.cvis_model_input_shape(self._h, hwc)
        return tuple(hwc)

    @property
    def outputs(self):
        """The layer indices the model's outputs are taken from."""
        return [api.cvis_model_output_layer(self._h, k)
                for k in range(api.cvis_model_output_count(self._h))]

    # ------------------------------------------------------------ weights
    def load_weights(self, path):
        """Every weight from an NPZ file keyed "<layer>/<weight>" (all or
        nothing; see docs/npz.md)."""
        api.cvis_model_load_npz(self._h, os.fsencode(path))

    def save_weights(self, path):
        """Every weight to an NPZ file that np.load reads."""
        api.cvis_model_save_npz(self._h, os.fsencode(path))

    # ---------------------------------------------------------- computing
    def submodel(self, layers):
        """A model sharing this one's layers and weights whose outputs are
        the given layers (names or indices): its predict gives their
        outputs (feature maps)."""
        idx = [self.layer_index(l) for l in layers]
        h = model_p()
        api.cvis_model_submodel(self._h, len(idx), (c_int * len(idx))(*idx), ctypes.byref(h))
        return Model(_handle=h, _parent=self)

    def predict(self, x):
        """The model's output for x (B,H,W,C) as a float32 array over the
        library's memory; a list of arrays for a model with several outputs
        (a submodel of several layers)."""
        n = api.cvis_model_output_count(self._h)
        with Borrowed(x) as b:
            if n == 1:
                out = tensor_p()
                api.cvis_model_predict(self._h, b.handle, ctypes.byref(out))
                return adopt(out)
            outs = (tensor_p * n)()
            api.cvis_model_predict_all(self._h, b.handle, n, outs)
        return [adopt(outs[k]) for k in range(n)]


PASS_OPTIONS = {"logits": 0, "weight_grads": 1, "input_grad": 2, "drop_activation": 3,
                "grad_layer": 4, "forward_only": 5}


class Pass:
    """Forward and backward through a model, keeping buffers across calls
    (one per thread).  Options as keywords: Pass(m, logits=True,
    weight_grads=True, input_grad=False, drop_activation=layer,
    grad_layer=layer).  Outputs and gradients are returned as copies: the
    pass reuses its buffers on the next forward."""

    def __init__(self, model, **options):
        self.model = model
        h = pass_p()
        api.cvis_pass_new(model._h, ctypes.byref(h))
        self._h = h
        self._finalizer = weakref.finalize(self, api.cvis_pass_free, h)
        for k, v in options.items():
            self.set(k, v)

    def set(self, key, value):
        """Sets a pass option: logits, weight_grads, input_grad (booleans),
        drop_activation, grad_layer (a layer, or None)."""
        if key not in PASS_OPTIONS:
            raise ValueError("unknown pass option %r; one of %s" % (key, ", ".join(PASS_OPTIONS)))
        if key in ("drop_activation", "grad_layer") and value is not None:
            value = self.model.layer_index(value)
        api.cvis_pass_set_int(self._h, PASS_OPTIONS[key], -1 if value is None else int(value))

    def forward(self, x):
        """Runs the model on x (B,H,W,C); returns the output (a list for
        several outputs)."""
        with Borrowed(x) as b:
            api.cvis_pass_forward(self._h, b.handle)
        n = api.cvis_model_output_count(self.model._h)
        outs = [copy_view(api.cvis_pass_output(self._h, k)) for k in range(n)]
        return outs[0] if n == 1 else outs

    def layer_output(self, layer):
        """A layer's output in the last forward (None if not kept)."""
        return copy_view(api.cvis_pass_layer_output(self._h, self.model.layer_index(layer)))

    def backward(self, d_outputs):
        """Propagates d(scalar)/d(output) back: one array per output (None
        counts as zero)."""
        if isinstance(d_outputs, np.ndarray):
            d_outputs = [d_outputs]
        borrowed = [None if d is None else Borrowed(d) for d in d_outputs]
        try:
            arr = (tensor_p * len(borrowed))(*[b.handle if b else tensor_p() for b in borrowed])
            api.cvis_pass_backward(self._h, len(borrowed), arr)
        finally:
            for b in borrowed:
                if b:
                    b.close()

    def input_grad(self):
        """d(scalar)/dx after backward (None when input_grad is off)."""
        return copy_view(api.cvis_pass_input_grad(self._h))

    def layer_grad(self, layer):
        """d(scalar)/d(layer output) after backward (None if not kept)."""
        return copy_view(api.cvis_pass_layer_grad(self._h, self.model.layer_index(layer)))

    def weight_grad(self, layer, k):
        """d(scalar)/d(weight k of layer) (needs weight_grads=True)."""
        return copy_view(api.cvis_pass_weight_grad(self._h, self.model.layer_index(layer), k))


OPTIMIZERS = {"sgd": 0, "rmsprop": 1, "adam": 2}
OPTIMIZER_OPTIONS = {"learning_rate": 0, "beta_1": 1, "beta_2": 2, "epsilon": 3, "rho": 4,
                     "momentum": 5}


class Optimizer:
    """SGD, RMSprop or Adam (Keras's update rules and defaults)."""

    def __init__(self, kind, learning_rate, **options):
        h = optimizer_p()
        api.cvis_optimizer_new(_enum(OPTIMIZERS, kind, "optimizer"), learning_rate, ctypes.byref(h))
        self._h = h
        self._finalizer = weakref.finalize(self, api.cvis_optimizer_free, h)
        for k, v in options.items():
            if k not in OPTIMIZER_OPTIONS:
                raise ValueError("unknown optimizer option %r; one of %s" % (
                    k, ", ".join(OPTIMIZER_OPTIONS)))
            api.cvis_optimizer_set(h, OPTIMIZER_OPTIONS[k], v)

    def step(self, slot, param, grad):
        """Steps `param` (a float32 C-contiguous array, updated in place)."""
        if param.dtype != np.float32 or not param.flags.c_contiguous:
            raise ValueError("param must be a float32 C-contiguous array (it is updated in place)")
        g = np.ascontiguousarray(grad, dtype=np.float32)
        if g.size != param.size:
            raise ValueError("grad and param differ in size")
        api.cvis_optimizer_step(self._h, slot, param.ctypes.data, g.ctypes.data, param.size)

    def step_model(self, model, pass_):
        """Steps every weight of model from the weight gradients of pass_
        (made with weight_grads=True)."""
        api.cvis_optimizer_step_model(self._h, model._h, pass_._h)

    def step_layer(self, model, pass_, layer):
        """Steps one layer's weights (by index or name)."""
        api.cvis_optimizer_step_layer(self._h, model._h, pass_._h, model.layer_index(layer))


def softmax_cross_entropy(logits, labels):
    """(loss, d_logits) of softmax cross-entropy, averaged over the batch."""
    lab = np.ascontiguousarray(labels, dtype=np.intc).reshape(-1)
    with Borrowed(logits) as z:
        if z.array.ndim != 2 or lab.size != z.array.shape[0]:
            # the C function reads one label per row of logits
            raise ShapeError("softmax_cross_entropy: %d labels for logits of shape %s" % (
                lab.size, z.array.shape))
        d = np.zeros(z.array.shape, dtype=np.float32)
        loss = c_double()
        with Borrowed(d) as db:
            api.cvis_softmax_cross_entropy(z.handle, lab.ctypes.data_as(ctypes.POINTER(c_int)),
                                           ctypes.byref(loss), db.handle)
    return loss.value, d


def save_npy(path, array):
    """Writes a float32 .npy file through libcvis (numpy reads it)."""
    with Borrowed(array) as b:
        api.cvis_tensor_save_npy(b.handle, os.fsencode(path))


def load_npy(path):
    """Reads a .npy file (float16/32/64) through libcvis as float32."""
    t = tensor_p()
    api.cvis_tensor_load_npy(os.fsencode(path), ctypes.byref(t))
    return adopt(t)
