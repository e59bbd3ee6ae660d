"""numpy in and out without copies where the layout allows, and correct
results where it does not.

In: a float32, C-contiguous, aligned array is handed to the library as is
(the tensor wraps its memory).  Anything else (float64, Fortran order,
strided, reversed or transposed views, big-endian, unaligned) is converted
once and gives the same results as its contiguous float32 twin.
Out: arrays the library makes for the caller (predictions, maps, weights)
are numpy views of the library's memory, freed when the last view goes.
"""
import ctypes
import gc

import numpy as np
import pytest

import cvis
from cvis import _native, _tensor, layers as L


def model():
    return cvis.Model.sequential((10, 10, 3), [
        L.Conv2D(6, 3, activation="relu", name="conv1"),
        L.Conv2D(6, 3, activation="relu", name="conv2"),
        L.GlobalAveragePooling2D(),
        L.Dense(4, activation="softmax", name="out")], seed=2)


def batch():
    return np.random.default_rng(1).uniform(0, 1, (2, 10, 10, 3)).astype(np.float32)


def root_buffer(a):
    """The object at the bottom of a numpy array's .base chain."""
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return a


def test_contiguous_float32_input_is_not_copied():
    x = batch()
    b = _tensor.Borrowed(x)
    assert b.array is x
    assert _native.api.cvis_tensor_data(b.handle) == x.ctypes.data
    b.close()
    ro = batch()
    ro.setflags(write=False)  # the library only reads inputs: read-only arrays are fine
    with _tensor.Borrowed(ro) as b:
        assert b.array is ro and _native.api.cvis_tensor_data(b.handle) == ro.ctypes.data


def test_the_model_reads_the_callers_memory():
    """The model reads x's own memory: changing x between two calls changes
    the result, with no copy kept anywhere."""
    m = model()
    x = batch()
    first = m.predict(x)
    x[:] = 0.5
    second = m.predict(x)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(second, m.predict(np.full((2, 10, 10, 3), 0.5, np.float32)))


def test_the_c_calls_get_the_callers_buffer(monkeypatch):
    """What the C functions receive for x is a tensor over x's own buffer:
    the address the library reports (cvis_tensor_data, asked during the
    call) is x's, and a write to x shows through the library's tensor."""
    m = model()
    x = batch()
    seen = []

    def spy(name):
        real = getattr(_native.api, name)

        def call(*args):
            t = args[1]  # (model or explainer, x, ...)
            addr = _native.api.cvis_tensor_data(t)
            seen.append((name, addr, _native.api.cvis_tensor_size(t)))
            x[0, 0, 0, 0] += 1.0  # the tensor sees it: no copy between x and C
            assert ctypes.c_float.from_address(addr).value == x[0, 0, 0, 0]
            x[0, 0, 0, 0] -= 1.0
            return real(*args)
        call.__name__ = name
        monkeypatch.setattr(_native.api, name, call)

    for name in ("cvis_model_predict", "cvis_model_predict_all", "cvis_explainer_run",
                 "cvis_model_feature_maps"):
        spy(name)
    m.predict(x)
    cvis.gradcam(m, x, cvis.CategoricalScore([0, 1]))
    cvis.saliency(m, x, cvis.CategoricalScore([0, 1]))
    cvis.feature_maps(m, x, ["conv1"])
    assert [n for n, _, _ in seen] == ["cvis_model_predict", "cvis_explainer_run",
                                       "cvis_explainer_run", "cvis_model_feature_maps"]
    assert all(addr == x.ctypes.data and size == x.size for _, addr, size in seen)


def layouts(x):
    """The same values as x in layouts that need converting."""
    big = np.zeros((2, 14, 13, 5), np.float32)
    big[:, 2:12, 1:11, 1:4] = x
    unaligned = np.frombuffer(b"\0" + x.tobytes(), np.float32, offset=1).reshape(x.shape)
    return {
        "float64": x.astype(np.float64),
        "fortran": np.asfortranarray(x),
        "strided": big[:, 2:12, 1:11, 1:4],
        "reversed": np.ascontiguousarray(x[:, ::-1])[:, ::-1],
        "nchw_transposed": np.ascontiguousarray(x.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1),
        "big_endian": x.astype(">f4"),
        "unaligned": unaligned,
        "list": x.tolist(),
    }


@pytest.mark.parametrize("kind", list(layouts(batch())))
def test_other_layouts_are_converted_and_give_the_same_results(kind):
    m = model()
    x = batch()
    other = layouts(x)[kind]
    if isinstance(other, np.ndarray):
        assert np.array_equal(other, x)
        b = _tensor.Borrowed(other)
        assert b.array is not other and b.array.flags.c_contiguous and b.array.flags.aligned
        assert b.array.dtype == np.float32 and b.array.dtype.isnative
        b.close()
    score = cvis.CategoricalScore([1, 3])
    np.testing.assert_array_equal(m.predict(other), m.predict(x))
    np.testing.assert_array_equal(cvis.saliency(m, other, score), cvis.saliency(m, x, score))
    np.testing.assert_array_equal(cvis.gradcam(m, other, score), cvis.gradcam(m, x, score))
    np.testing.assert_array_equal(cvis.feature_maps(m, other, ["conv1"])[0],
                                  cvis.feature_maps(m, x, ["conv1"])[0])


def test_outputs_are_views_of_library_memory(monkeypatch):
    m = model()
    x = batch()
    # the library's pointer is the array's pointer: adopt() makes no copy
    h = _native.tensor_p()
    with _tensor.Borrowed(x) as xb:
        _native.api.cvis_model_predict(m._h, xb.handle, ctypes.byref(h))
    data = _native.api.cvis_tensor_data(h)
    out = _tensor.adopt(h)
    assert out.ctypes.data == data
    # and what the public functions return is such a view
    for array in (m.predict(x), cvis.gradcam(m, x, 0), m.layer("conv1").weights()[0],
                  cvis.to_tensor([np.zeros((2, 2, 3), np.uint8)]),
                  cvis.explain(m, "layercam", x, 0)):
        root = root_buffer(array)
        assert isinstance(root, ctypes.Array) and root._type_ is ctypes.c_float
        assert ctypes.addressof(root) == array.ctypes.data
        assert array.dtype == np.float32 and array.flags.c_contiguous

    # the tensor is freed when the last view goes, not before
    freed = []
    real_free = _native.api.cvis_tensor_free
    monkeypatch.setattr(_native.api, "cvis_tensor_free",
                        lambda t: (freed.append(ctypes.addressof(t.contents)), real_free(t)))
    probs = m.predict(x)
    view = probs[1:]
    gc.collect()
    n = len(freed)
    del probs
    gc.collect()
    assert len(freed) == n  # `view` still holds it
    del view
    gc.collect()
    assert len(freed) == n + 1


def test_what_the_library_keeps_is_copied_out():
    """Weights and a pass's buffers belong to the library: the arrays given
    out are copies, so changing them or running again changes nothing."""
    m = model()
    x = batch()
    k, b = m.layer("conv1").weights()
    k[:] = 0
    assert m.layer("conv1").weights()[0].any()
    p = cvis.Pass(m)
    first = p.forward(x)
    kept = first.copy()
    p.forward(x[::-1].copy())
    np.testing.assert_array_equal(first, kept)


def test_optimizer_steps_the_callers_array_in_place():
    w = np.ones(5, np.float32)
    address = w.ctypes.data
    cvis.Optimizer("sgd", 0.5).step(0, w, np.arange(5))
    assert w.ctypes.data == address
    np.testing.assert_array_equal(w, 1 - 0.5 * np.arange(5, dtype=np.float32))
