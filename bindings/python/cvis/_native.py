"""Finds and loads libcvis, and declares the C prototypes for ctypes.

The library is looked for, in order:
  1. the path in the environment variable CVIS_LIBRARY (nothing else is
     tried when it is set: a wrong path is an error, not a fallback);
  2. the build tree, when this package runs from bindings/python of a
     libcvis checkout (lib/libcvis.so.MAJOR beside include/cvis.h);
  3. the installed library: ctypes.util.find_library("cvis") (ldconfig's
     cache, and the ld search path with LD_LIBRARY_PATH), then the dynamic
     loader's own search for libcvis.so.MAJOR.
Its major version must be the package's.
"""
import ctypes
import ctypes.util
import os
import sys

from . import _errors
from ._version import __version__ as PACKAGE_VERSION

SUPPORTED_MAJOR = int(PACKAGE_VERSION.split(".")[0])

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


def _build_tree():
    """The checkout's lib/ directory when the package runs from
    bindings/python of a libcvis tree, else None."""
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", "..", ".."))
    if os.path.isfile(os.path.join(root, "include", "cvis.h")):
        return os.path.join(root, "lib")
    return None


def _candidates():
    env = os.environ.get("CVIS_LIBRARY")
    if env:
        yield env
        return
    tree = _build_tree()
    if tree:
        yield os.path.join(tree, "libcvis.so.%d" % SUPPORTED_MAJOR)
        yield os.path.join(tree, "libcvis.so")
    found = ctypes.util.find_library("cvis")
    if found:
        yield found
    yield "libcvis.so.%d" % SUPPORTED_MAJOR  # the loader's own search (LD_LIBRARY_PATH, ...)


def _load():
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append("%s (no such file)" % path)
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError("libcvis not found; tried: " + "; ".join(tried) +
                      ". Set CVIS_LIBRARY to the library's path.")


lib, library_path = _load()

# name: (restype, argtypes); restype "status" means a checked cvis_status.
_PROTOTYPES = {
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
            message = api.cvis_last_error().decode("utf-8", "replace")
            name_of = api.cvis_status_string(status)
            raise _errors.from_status(status, message, name,
                                      name_of.decode() if name_of else None)
        return status
    call.__name__ = name
    return call


def _missing(name):
    def call(*args):
        raise _errors.UnsupportedError(
            "%s is not in libcvis %s (%s); this package is written for %s" % (
                name, lib.cvis_version_string().decode(), library_path, PACKAGE_VERSION), name)
    call.__name__ = name
    return call


class _Api:
    """The C functions: status-returning ones raise cvis.Error on failure."""


api = _Api()

# Every C function declared, with the module that declared it (tests check
# that the whole of cvis.h is declared and used).
DECLARED = {}


def declare(prototypes, module=None):
    """Declares C functions {name: (restype or "status", [argtypes])} on
    `api`.  Each module of the package declares the functions it uses.  A
    function missing from an older library raises cvis.UnsupportedError
    when called."""
    for name, (res, args) in prototypes.items():
        DECLARED[name] = module or sys._getframe(1).f_globals.get("__name__")
        fn = getattr(lib, name, None)
        if fn is None:
            setattr(api, name, _missing(name))
            continue
        fn.argtypes = args
        if res == "status":
            fn.restype = c_int
            setattr(api, name, _checked(name, fn))
        else:
            fn.restype = res
            setattr(api, name, fn)


# The version check comes first: nothing else may be assumed of another major.
declare({"cvis_version": (c_int, []), "cvis_version_string": (c_char_p, [])})
_major = api.cvis_version() // 10000
if _major != SUPPORTED_MAJOR:
    raise ImportError("libcvis %s (%s) has major version %d; this package needs %d" % (
        api.cvis_version_string().decode(), library_path, _major, SUPPORTED_MAJOR))

declare(_PROTOTYPES)
