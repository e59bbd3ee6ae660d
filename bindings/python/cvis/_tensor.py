"""numpy arrays in and out of cvis_tensor handles, without copies where the
layout allows.

In:  Borrowed(x) wraps x's own memory when x is float32, C-contiguous and
     aligned (Borrowed(x).array is x); anything else (float64, Fortran
     order, strided or reversed views, other byte orders) is converted to
     such an array first, once, and that copy is what the library reads.
Out: adopt(handle) turns a tensor the library made for the caller into a
     numpy array over the library's memory (no copy); the tensor is freed
     when the last array viewing it is collected.
"""
import ctypes
import weakref

import numpy as np

from ._native import api, tensor_p, c_int64

MAX_DIMS = 8  # CVIS_MAX_DIMS


def as_float32(array):
    """A float32, C-contiguous, aligned array of `array`'s values: `array`
    itself when it already is one, else a converted copy."""
    return np.require(np.asarray(array), np.float32, "CA")


class Borrowed:
    """A cvis_tensor over a numpy array's memory (no copy).  Keeps the array
    alive; frees the handle (never the memory) on close or collection."""

    def __init__(self, array):
        self.array = as_float32(array)
        shape = (c_int64 * max(1, self.array.ndim))(*self.array.shape)
        self.handle = tensor_p()
        api.cvis_tensor_wrap(self.array.ctypes.data_as(ctypes.c_void_p), self.array.ndim, shape,
                             ctypes.byref(self.handle))
        self._finalizer = weakref.finalize(self, api.cvis_tensor_free, self.handle)

    def close(self):
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def shape_of(handle):
    """The shape of a tensor handle, as a tuple."""
    nd = api.cvis_tensor_ndim(handle)
    shape = (c_int64 * MAX_DIMS)()
    api.cvis_tensor_shape(handle, shape)
    return tuple(shape[i] for i in range(nd))


def new(shape):
    """A new zero-filled tensor of the library (cvis_tensor_create), as an
    owned handle: give it to adopt() to read it from numpy."""
    shape = tuple(int(s) for s in shape)
    h = tensor_p()
    api.cvis_tensor_create(len(shape), (c_int64 * max(1, len(shape)))(*shape), ctypes.byref(h))
    return h


def adopt(handle):
    """A numpy array over a tensor the caller owns (no copy); the tensor is
    freed when the last array viewing it is collected."""
    shape = shape_of(handle)
    size = api.cvis_tensor_size(handle)
    if size == 0:
        api.cvis_tensor_free(handle)
        return np.zeros(shape, dtype=np.float32)
    buf = (ctypes.c_float * size).from_address(api.cvis_tensor_data(handle))
    weakref.finalize(buf, api.cvis_tensor_free, handle)
    return np.frombuffer(buf, dtype=np.float32).reshape(shape)


def copy_view(handle):
    """A copy of a borrowed tensor (one the library owns and may reuse), made
    by the library (cvis_tensor_clone); None for NULL."""
    if not handle:
        return None
    out = tensor_p()
    api.cvis_tensor_clone(handle, ctypes.byref(out))
    return adopt(out)
