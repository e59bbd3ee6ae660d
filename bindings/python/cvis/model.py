"""Models: building, enumerating, weights, prediction, passes, optimizers."""
import collections
import ctypes
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
    """One layer of a model: its weights and description."""

    def __init__(self, model, index):
        self.model = model
        self.index = index

    @property
    def name(self):
        return self.model.layers[self.index].name

    def weight_names(self):
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
        names = self.weight_names()
        if len(values) != len(names):
            raise ValueError("layer %s has %d weights, got %d" % (self.name, len(names), len(values)))
        for k, v in enumerate(values):
            b = Borrowed(v)
            api.cvis_model_set_weight(self.model._h, self.index, k, b.handle)
            b.close()

    def filters(self):
        """(filters (kh,kw,cin,cout), bias) of a convolution layer."""
        f, b = tensor_p(), tensor_p()
        api.cvis_model_get_filters(self.model._h, self.index, ctypes.byref(f), ctypes.byref(b))
        return adopt(f), adopt(b)


class Model:
    """A libcvis model.  Build one with Model(height, width, channels) and
    the add_* methods, or load one (Model.load for ONNX files)."""

    def __init__(self, height=None, width=None, channels=None, _handle=None, _parent=None):
        if _handle is None:
            h = model_p()
            api.cvis_model_new(height, width, channels, ctypes.byref(h))
            _handle = h
        self._h = _handle
        self._parent = _parent
        self._finalizer = weakref.finalize(self, api.cvis_model_free, self._h)

    def close(self):
        self._finalizer()

    # ------------------------------------------------------------ building
    def _add(self, fn, *args):
        idx = c_int()
        fn(self._h, *args, ctypes.byref(idx))
        return idx.value

    def conv2d(self, filters, kernel, strides=1, padding="valid", activation=None, name=None,
               input=PREV, dilation=1, groups=1, pads=(0, 0, 0, 0), use_bias=True):
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        sh, sw = (strides, strides) if isinstance(strides, int) else strides
        dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
        pt, pl, pb, pr = pads
        return self._add(api.cvis_model_add_conv2d_ex, _name(name), input, filters, kh, kw, sh, sw,
                         dh, dw, groups, _enum(PADDINGS, padding, "padding"), pt, pl, pb, pr,
                         int(use_bias), _enum(ACTIVATIONS, activation, "activation"))

    def dense(self, units, activation=None, name=None, input=PREV):
        return self._add(api.cvis_model_add_dense, _name(name), input, units,
                         _enum(ACTIVATIONS, activation, "activation"))

    def activation(self, activation, name=None, input=PREV):
        return self._add(api.cvis_model_add_activation, _name(name), input,
                         _enum(ACTIVATIONS, activation, "activation"))

    def leaky_relu(self, alpha=0.3, name=None, input=PREV):
        return self._add(api.cvis_model_add_leaky_relu, _name(name), input, alpha)

    def pool2d(self, kind="max", pool=2, strides=None, padding="valid", name=None, input=PREV):
        ph, pw = (pool, pool) if isinstance(pool, int) else pool
        strides = (ph, pw) if strides is None else strides
        sh, sw = (strides, strides) if isinstance(strides, int) else strides
        return self._add(api.cvis_model_add_pool2d, _name(name), input, _enum(POOLS, kind, "pool"),
                         ph, pw, sh, sw, _enum(PADDINGS, padding, "padding"))

    def global_avg_pool(self, name=None, input=PREV):
        return self._add(api.cvis_model_add_global_avg_pool, _name(name), input)

    def batch_norm(self, epsilon=1e-3, name=None, input=PREV):
        return self._add(api.cvis_model_add_batch_norm, _name(name), input, epsilon)

    def flatten(self, name=None, input=PREV):
        return self._add(api.cvis_model_add_flatten, _name(name), input)

    def dropout(self, rate, name=None, input=PREV):
        return self._add(api.cvis_model_add_dropout, _name(name), input, rate)

    def zero_padding(self, top, bottom, left, right, name=None, input=PREV):
        return self._add(api.cvis_model_add_zero_padding, _name(name), input, top, bottom, left,
                         right)

    def add(self, a, b, name=None):
        return self._add(api.cvis_model_add_add, _name(name), a, b)

    def multiply(self, a, b, name=None):
        return self._add(api.cvis_model_add_multiply, _name(name), a, b)

    def concat(self, inputs, name=None):
        arr = (c_int * len(inputs))(*inputs)
        return self._add(api.cvis_model_add_concat, _name(name), len(inputs), arr)

    def set_outputs(self, layers):
        idx = [self.layer_index(l) for l in layers]
        api.cvis_model_set_outputs(self._h, len(idx), (c_int * len(idx))(*idx))

    def init_weights(self, seed):
        api.cvis_model_init_weights(self._h, seed)

    # ----------------------------------------------------------- querying
    @property
    def layers(self):
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
        if isinstance(layer, str):
            idx = c_int()
            api.cvis_model_find_layer(self._h, layer.encode("utf-8"), ctypes.byref(idx))
            return idx.value
        return int(layer)

    def layer(self, layer):
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
        hwc = (c_int64 * 3)()
        api.cvis_model_input_shape(self._h, hwc)
        return tuple(hwc)

    @property
    def outputs(self):
        return [api.cvis_model_output_layer(self._h, k)
                for k in range(api.cvis_model_output_count(self._h))]

    # ------------------------------------------------------------ weights
    def load_weights(self, path):
        api.cvis_model_load_npz(self._h, str(path).encode())

    def save_weights(self, path):
        api.cvis_model_save_npz(self._h, str(path).encode())

    # ---------------------------------------------------------- computing
    def submodel(self, layers):
        idx = [self.layer_index(l) for l in layers]
        h = model_p()
        api.cvis_model_submodel(self._h, len(idx), (c_int * len(idx))(*idx), ctypes.byref(h))
        return Model(_handle=h, _parent=self)

    def predict(self, x):
        """The model's output for x (B,H,W,C); a list for several outputs."""
        b = Borrowed(x)
        n = api.cvis_model_output_count(self._h)
        outs = (tensor_p * n)()
        api.cvis_model_predict_all(self._h, b.handle, n, outs)
        b.close()
        arrays = [adopt(outs[k]) for k in range(n)]
        return arrays[0] if n == 1 else arrays


PASS_OPTIONS = {"logits": 0, "weight_grads": 1, "input_grad": 2, "drop_activation": 3,
                "grad_layer": 4, "forward_only": 5}


class Pass:
    """Forward and backward through a model, keeping buffers across calls."""

    def __init__(self, model, **options):
        self.model = model
        h = pass_p()
        api.cvis_pass_new(model._h, ctypes.byref(h))
        self._h = h
        self._finalizer = weakref.finalize(self, api.cvis_pass_free, h)
        for k, v in options.items():
            self.set(k, v)

    def set(self, key, value):
        if key in ("drop_activation", "grad_layer") and value is not None:
            value = self.model.layer_index(value)
        api.cvis_pass_set_int(self._h, PASS_OPTIONS[key], -1 if value is None else int(value))

    def forward(self, x):
        b = Borrowed(x)
        api.cvis_pass_forward(self._h, b.handle)
        b.close()
        n = api.cvis_model_output_count(self.model._h)
        outs = [copy_view(api.cvis_pass_output(self._h, k)) for k in range(n)]
        return outs[0] if n == 1 else outs

    def layer_output(self, layer):
        return copy_view(api.cvis_pass_layer_output(self._h, self.model.layer_index(layer)))

    def backward(self, d_outputs):
        if isinstance(d_outputs, np.ndarray):
            d_outputs = [d_outputs]
        borrowed = [None if d is None else Borrowed(d) for d in d_outputs]
        arr = (tensor_p * len(borrowed))(*[b.handle if b else tensor_p() for b in borrowed])
        api.cvis_pass_backward(self._h, len(borrowed), arr)
        for b in borrowed:
            if b:
                b.close()

    def input_grad(self):
        return copy_view(api.cvis_pass_input_grad(self._h))

    def layer_grad(self, layer):
        return copy_view(api.cvis_pass_layer_grad(self._h, self.model.layer_index(layer)))

    def weight_grad(self, layer, k):
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
        api.cvis_optimizer_step_model(self._h, model._h, pass_._h)

    def step_layer(self, model, pass_, layer):
        """Steps one layer's weights (by index or name)."""
        api.cvis_optimizer_step_layer(self._h, model._h, pass_._h, model.layer_index(layer))


def softmax_cross_entropy(logits, labels):
    """(loss, d_logits) of softmax cross-entropy, averaged over the batch."""
    z = Borrowed(logits)
    lab = np.ascontiguousarray(labels, dtype=np.intc).reshape(-1)
    if z.array.ndim != 2 or lab.size != z.array.shape[0]:
        # the C function reads one label per row of logits
        z.close()
        raise ShapeError("softmax_cross_entropy: %d labels for logits of shape %s" % (
            lab.size, z.array.shape))
    d = np.zeros(z.array.shape, dtype=np.float32)
    db = Borrowed(d)
    loss = c_double()
    api.cvis_softmax_cross_entropy(z.handle, lab.ctypes.data_as(ctypes.POINTER(c_int)),
                                   ctypes.byref(loss), db.handle)
    z.close()
    db.close()
    return loss.value, d


def save_npy(path, array):
    """Writes a float32 .npy file through libcvis (numpy reads it)."""
    b = Borrowed(array)
    api.cvis_tensor_save_npy(b.handle, str(path).encode())
    b.close()


def load_npy(path):
    """Reads a .npy file (float16/32/64) through libcvis as float32."""
    t = tensor_p()
    api.cvis_tensor_load_npy(str(path).encode(), ctypes.byref(t))
    return adopt(t)
