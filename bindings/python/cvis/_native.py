"""Finds and loads libcvis, and declares the C prototypes for ctypes."""
import ctypes
import ctypes.util
import os

from . import _errors

SUPPORTED_MAJOR = 1

c_int, c_int64, c_uint64, c_double, c_float = (
    ctypes.c_int, ctypes.c_int64, ctypes.c_uint64, ctypes.c_double, ctypes.c_float)
c_char_p, c_void_p = ctypes.c_char_p, ctypes.c_void_p
P = ctypes.POINTER


class _Opaque(ctypes.Structure):
    pass


tensor_p = P(_Opaque)
model_p = P(_Opaque)
pass_p = P(_Opaque)
optimizer_p = P(_Opaque)


def _candidates():
    env = os.environ.get("CVIS_LIBRARY")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    tree = os.path.normpath(os.path.join(here, "..", "..", "..", "lib"))
    yield os.path.join(tree, "libcvis.so.%d" % SUPPORTED_MAJOR)
    yield os.path.join(tree, "libcvis.so")
    found = ctypes.util.find_library("cvis")
    if found:
        yield found


def _load():
    tried = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError("libcvis not found; tried: " + "; ".join(tried) +
                      ". Set CVIS_LIBRARY to the library's path.")


lib = _load()

# name: (restype, argtypes); restype "status" means a checked cvis_status.
_PROTOTYPES = {
    "cvis_version": (c_int, []),
    "cvis_version_string": (c_char_p, []),
    "cvis_status_string": (c_char_p, [c_int]),
    "cvis_last_error": (c_char_p, []),
    "cvis_set_num_threads": ("status", [c_int]),
    "cvis_get_num_threads": (c_int, []),
    "cvis_set_alloc_limit": ("status", [c_uint64]),
    "cvis_get_alloc_limit": (c_uint64, []),
    "cvis_tensor_create": ("status", [c_int, P(c_int64), P(tensor_p)]),
    "cvis_tensor_wrap": ("status", [c_void_p, c_int, P(c_int64), P(tensor_p)]),
    "cvis_tensor_clone": ("status", [tensor_p, P(tensor_p)]),
    "cvis_tensor_data": (c_void_p, [tensor_p]),
    "cvis_tensor_ndim": (c_int, [tensor_p]),
    "cvis_tensor_dim": (c_int64, [tensor_p, c_int]),
    "cvis_tensor_shape": ("status", [tensor_p, P(c_int64)]),
    "cvis_tensor_size": (c_int64, [tensor_p]),
    "cvis_tensor_free": (None, [tensor_p]),
    "cvis_model_new": ("status", [c_int64, c_int64, c_int64, P(model_p)]),
    "cvis_model_free": (None, [model_p]),
    "cvis_model_add_conv2d": ("status", [model_p, c_char_p, c_int, c_int, c_int, c_int, c_int,
                                         c_int, c_int, P(c_int)]),
    "cvis_model_add_conv2d_ex": ("status", [model_p, c_char_p, c_int, c_int, c_int, c_int, c_int,
                                            c_int, c_int, c_int, c_int, c_int, c_int, c_int,
                                            c_int, c_int, c_int, c_int, P(c_int)]),
    "cvis_model_add_dense": ("status", [model_p, c_char_p, c_int, c_int, c_int, P(c_int)]),
    "cvis_model_add_activation": ("status", [model_p, c_char_p, c_int, c_int, P(c_int)]),
    "cvis_model_add_leaky_relu": ("status", [model_p, c_char_p, c_int, c_float, P(c_int)]),
    "cvis_model_add_pool2d": ("status", [model_p, c_char_p, c_int, c_int, c_int, c_int, c_int,
                                         c_int, c_int, P(c_int)]),
    "cvis_model_add_global_avg_pool": ("status", [model_p, c_char_p, c_int, P(c_int)]),
    "cvis_model_add_batch_norm": ("status", [model_p, c_char_p, c_int, c_float, P(c_int)]),
    "cvis_model_add_flatten": ("status", [model_p, c_char_p, c_int, P(c_int)]),
    "cvis_model_add_dropout": ("status", [model_p, c_char_p, c_int, c_float, P(c_int)]),
    "cvis_model_add_zero_padding": ("status", [model_p, c_char_p, c_int, c_int, c_int, c_int,
                                               c_int, P(c_int)]),
    "cvis_model_add_add": ("status", [model_p, c_char_p, c_int, c_int, P(c_int)]),
    "cvis_model_add_multiply": ("status", [model_p, c_char_p, c_int, c_int, P(c_int)]),
    "cvis_model_add_concat": ("status", [model_p, c_char_p, c_int, P(c_int), P(c_int)]),
    "cvis_model_set_outputs": ("status", [model_p, c_int, P(c_int)]),
    "cvis_model_init_weights": ("status", [model_p, c_uint64]),
    "cvis_model_layer_count": (c_int, [model_p]),
    "cvis_model_layer_name": (c_char_p, [model_p, c_int]),
    "cvis_model_layer_type": (c_char_p, [model_p, c_int]),
    "cvis_model_layer_is_conv": (c_int, [model_p, c_int]),
    "cvis_model_layer_output_shape": ("status", [model_p, c_int, P(c_int), P(c_int64)]),
    "cvis_model_find_layer": ("status", [model_p, c_char_p, P(c_int)]),
    "cvis_model_input_shape": ("status", [model_p, P(c_int64)]),
    "cvis_model_output_count": (c_int, [model_p]),
    "cvis_model_output_layer": (c_int, [model_p, c_int]),
    "cvis_model_weight_count": (c_int, [model_p, c_int]),
    "cvis_model_weight_name": (c_char_p, [model_p, c_int, c_int]),
    "cvis_model_get_weight": ("status", [model_p, c_int, c_int, P(tensor_p)]),
    "cvis_model_set_weight": ("status", [model_p, c_int, c_int, tensor_p]),
    "cvis_model_get_filters": ("status", [model_p, c_int, P(tensor_p), P(tensor_p)]),
    "cvis_model_load_npz": ("status", [model_p, c_char_p]),
    "cvis_model_save_npz": ("status", [model_p, c_char_p]),
    "cvis_tensor_save_npy": ("status", [tensor_p, c_char_p]),
    "cvis_tensor_load_npy": ("status", [c_char_p, P(tensor_p)]),
    "cvis_model_submodel": ("status", [model_p, c_int, P(c_int), P(model_p)]),
    "cvis_model_predict": ("status", [model_p, tensor_p, P(tensor_p)]),
    "cvis_model_predict_all": ("status", [model_p, tensor_p, c_int, P(tensor_p)]),
    "cvis_pass_new": ("status", [model_p, P(pass_p)]),
    "cvis_pass_free": (None, [pass_p]),
    "cvis_pass_set_int": ("status", [pass_p, c_int, c_int64]),
    "cvis_pass_forward": ("status", [pass_p, tensor_p]),
    "cvis_pass_output": (tensor_p, [pass_p, c_int]),
    "cvis_pass_layer_output": (tensor_p, [pass_p, c_int]),
    "cvis_pass_backward": ("status", [pass_p, c_int, P(tensor_p)]),
    "cvis_pass_input_grad": (tensor_p, [pass_p]),
    "cvis_pass_layer_grad": (tensor_p, [pass_p, c_int]),
    "cvis_pass_weight_grad": (tensor_p, [pass_p, c_int, c_int]),
    "cvis_optimizer_new": ("status", [c_int, c_double, P(optimizer_p)]),
    "cvis_optimizer_free": (None, [optimizer_p]),
    "cvis_optimizer_set": ("status", [optimizer_p, c_int, c_double]),
    "cvis_optimizer_step": ("status", [optimizer_p, c_int, c_void_p, c_void_p, c_int64]),
    "cvis_optimizer_step_model": ("status", [optimizer_p, model_p, pass_p]),
    "cvis_optimizer_step_layer": ("status", [optimizer_p, model_p, pass_p, c_int]),
    "cvis_softmax_cross_entropy": ("status", [tensor_p, P(c_int), P(c_double), tensor_p]),
}


def _checked(name, fn):
    def call(*args):
        status = fn(*args)
        if status != 0:
            raise _errors.from_status(status, lib.cvis_last_error().decode("utf-8", "replace"),
                                      name)
        return status
    call.__name__ = name
    return call


class _Api:
    """The C functions: status-returning ones raise cvis.Error on failure."""


api = _Api()


def declare(prototypes):
    """Declares C functions {name: (restype or "status", [argtypes])} on
    `api`.  Each module of the package declares the functions it uses."""
    for name, (res, args) in prototypes.items():
        fn = getattr(lib, name, None)
        if fn is None:
            continue  # an older library: the Python function that needs it raises
        fn.argtypes = args
        if res == "status":
            fn.restype = c_int
            setattr(api, name, _checked(name, fn))
        else:
            fn.restype = res
            setattr(api, name, fn)


declare(_PROTOTYPES)

_major = lib.cvis_version() // 10000
if _major != SUPPORTED_MAJOR:
    raise ImportError("libcvis %s has major version %d; this package needs %d" % (
        lib.cvis_version_string().decode(), _major, SUPPORTED_MAJOR))
