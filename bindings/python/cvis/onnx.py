"""ONNX files: cvis.Model.load(path) opens one, Model.save_onnx(path) writes
one.  Also cvis.onnx.load_bytes / Model.to_onnx_bytes for memory."""
import ctypes
import os

from ._native import api, declare, model_p, c_char_p, c_void_p, P
from .model import Model

declare({
    "cvis_model_load_onnx": ("status", [c_char_p, P(model_p)]),
    "cvis_model_load_onnx_memory": ("status", [c_void_p, ctypes.c_size_t, P(model_p)]),
    "cvis_model_save_onnx": ("status", [model_p, c_char_p]),
    "cvis_model_save_onnx_memory": ("status", [model_p, P(c_void_p), P(ctypes.c_size_t)]),
    "cvis_free": (None, [c_void_p]),
})


def load(path):
    """A Model from an ONNX file (external data is read beside it)."""
    h = model_p()
    api.cvis_model_load_onnx(os.fsencode(path), ctypes.byref(h))
    return Model(_handle=h)


def load_bytes(data):
    """A Model from the bytes of an ONNX file."""
    data = bytes(data)
    buf = ctypes.create_string_buffer(data, len(data))
    h = model_p()
    api.cvis_model_load_onnx_memory(buf, len(data), ctypes.byref(h))
    return Model(_handle=h)


def save(model, path):
    """Writes the model as an ONNX file (NCHW input)."""
    api.cvis_model_save_onnx(model._h, os.fsencode(path))


def to_bytes(model):
    """The model as the bytes of an ONNX file."""
    p, n = c_void_p(), ctypes.c_size_t()
    api.cvis_model_save_onnx_memory(model._h, ctypes.byref(p), ctypes.byref(n))
    try:
        return ctypes.string_at(p, n.value)
    finally:
        api.cvis_free(p)


def _load_classmethod(cls, path):
    """Opens an ONNX file: Model.load("resnet18.onnx")."""
    return load(path)


Model.load = classmethod(_load_classmethod)
Model.save_onnx = save
Model.to_onnx_bytes = to_bytes
