"""numpy arrays in and out of cvis_tensor handles, without copies where the
layout allows (float32, C-contiguous)."""
import ctypes
import weakref

import numpy as np

from ._native import api, tensor_p, c_int64


def as_float32(array):
    """A float32 C-contiguous view of `array`, copying only when needed."""
    return np.ascontiguousarray(array, dtype=np.float32)


class Borrowed:
    """A cvis_tensor wrapping a numpy array's memory (no copy).  Keeps the
    array alive; frees the handle on close or collection."""

    def __init__(self, array):
        self.array = as_float32(array)
        shape = (c_int64 * max(1, self.array.ndim))(*self.array.shape)
        self.handle = tensor_p()
        api.cvis_tensor_wrap(self.array.ctypes.data_as(ctypes.c_void_p), self.array.ndim, shape,
                             ctypes.byref(self.handle))
        self._finalizer = weakref.finalize(self, api.cvis_tensor_free, self.handle)

    def close(self):
        self._finalizer()


def shape_of(handle):
    nd = api.cvis_tensor_ndim(handle)
    shape = (c_int64 * 8)()
    api.cvis_tensor_shape(handle, shape)
    return tuple(shape[i] for i in range(nd))


def adopt(handle):
    """A numpy array over a tensor the caller owns; the tensor is freed when
    the last array viewing it is collected."""
    shape = shape_of(handle)
    size = int(np.prod(shape)) if shape else 1
    if size == 0:
        api.cvis_tensor_free(handle)
        return np.zeros(shape, dtype=np.float32)
    buf = (ctypes.c_float * size).from_address(api.cvis_tensor_data(handle))
    weakref.finalize(buf, api.cvis_tensor_free, handle)
    return np.frombuffer(buf, dtype=np.float32).reshape(shape)


def copy_view(handle):
    """A copy of a borrowed tensor (one the library owns), or None for NULL."""
    if not handle:
        return None
    shape = shape_of(handle)
    size = int(np.prod(shape)) if shape else 1
    if size == 0:
        return np.zeros(shape, dtype=np.float32)
    buf = (ctypes.c_float * size).from_address(api.cvis_tensor_data(handle))
    return np.frombuffer(buf, dtype=np.float32).reshape(shape).copy()
