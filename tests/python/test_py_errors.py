"""Every cvis_status is its own Python exception class under cvis.Error,
raised by a real bad input reached from Python through the C API, and
carrying the library's message (cvis_last_error), the failing C function
and the status's name.

CVIS_E_INTERNAL cannot be provoked: every place that returns it guards an
invariant of the library itself (a ZIP member written past its declared
size, a .npy header longer than the 8 dimensions allow, an ONNX node whose
inputs were not computed although the graph is sorted); a Python caller
cannot reach them, so its class is checked through the status mapping only.
"""
import ctypes
import re
from pathlib import Path

import numpy as np
import pytest

import cvis
from cvis import _errors, _native, layers as L

HEADER = Path(__file__).resolve().parents[2] / "include" / "cvis.h"


def header_statuses():
    """{value: name} of enum cvis_status in cvis.h."""
    body = re.search(r"typedef enum cvis_status \{(.*?)\} cvis_status;", HEADER.read_text(),
                     re.S).group(1)
    return {int(v): n for n, v in re.findall(r"(CVIS_\w+) = (\d+)", body)}


CLASSES = {
    "CVIS_E_INVALID_ARG": cvis.InvalidArgumentError, "CVIS_E_NOMEM": cvis.OutOfMemoryError,
    "CVIS_E_IO": cvis.IOError, "CVIS_E_FORMAT": cvis.FormatError,
    "CVIS_E_UNSUPPORTED": cvis.UnsupportedError, "CVIS_E_SHAPE": cvis.ShapeError,
    "CVIS_E_NOT_FOUND": cvis.NotFoundError, "CVIS_E_RANGE": cvis.RangeError,
    "CVIS_E_NONFINITE": cvis.NonFiniteError, "CVIS_E_CANCELLED": cvis.CancelledError,
    "CVIS_E_LIMIT": cvis.LimitError, "CVIS_E_LAYER_KIND": cvis.LayerKindError,
    "CVIS_E_STATE": cvis.StateError, "CVIS_E_CALLBACK": cvis.CallbackError,
    "CVIS_E_INTERNAL": cvis.InternalError,
}


def test_one_class_per_status():
    statuses = header_statuses()
    assert statuses.pop(0) == "CVIS_OK"
    assert set(statuses.values()) == set(CLASSES)
    for value, name in statuses.items():
        cls = CLASSES[name]
        assert cls.status == value and issubclass(cls, cvis.Error), name
        assert _errors.BY_STATUS[value] is cls
        assert cls.__doc__.startswith(name)
    assert len(set(CLASSES.values())) == len(CLASSES)
    # an unknown status still gives a cvis.Error, with its number
    e = _errors.from_status(99, "from the future", "cvis_x")
    assert type(e) is cvis.Error and e.status == 99 and str(e) == "from the future"
    e = _errors.from_status(15, "an invariant broke", "cvis_y", "CVIS_E_INTERNAL: internal error")
    assert type(e) is cvis.InternalError and e.status_string.startswith("CVIS_E_INTERNAL")
    # the Python base classes make them easy to catch the usual way too
    assert issubclass(cvis.IOError, OSError) and issubclass(cvis.NotFoundError, KeyError)
    assert issubclass(cvis.ShapeError, ValueError) and issubclass(cvis.RangeError, IndexError)
    assert cvis.IOError.__name__ == "IOError"


def model():
    return cvis.Model.sequential((8, 8, 3), [
        L.Conv2D(4, 3, activation="relu", name="conv"),
        L.Flatten(),
        L.Dense(3, activation="softmax", name="dense")])


def x(b=1):
    return np.random.default_rng(0).uniform(0, 1, (b, 8, 8, 3)).astype(np.float32)


def check(info, cls, function, pattern):
    """The exception is exactly cls, from `function`, with the library's
    message (which the C status's name does not replace)."""
    e = info.value
    assert type(e) is cls
    assert e.function == function
    assert re.search(pattern, e.message), e.message
    assert str(e) == e.message
    name = [n for n, c in CLASSES.items() if c is cls][0]
    assert e.status_string.startswith(name + ":")


def test_invalid_argument():
    m = model()
    with pytest.raises(cvis.Error) as info:
        m.dense(2, name="conv")
    check(info, cvis.InvalidArgumentError, "cvis_model_add_dense", "already exists")
    with pytest.raises(cvis.Error) as info:
        cvis.set_num_threads(-2)
    check(info, cvis.InvalidArgumentError, "cvis_set_num_threads", "negative")


def test_out_of_memory():
    """An allocation within the limit that the system cannot give: a 4 PiB
    output tensor, with the limit raised far above it."""
    m = cvis.Model(1 << 20, 1 << 20, 1 << 10)
    m.global_avg_pool()
    try:
        cvis.set_alloc_limit(1 << 62)
        with pytest.raises(cvis.Error) as info:
            cvis.activation_maximization(m, 0, steps=1)
    finally:
        cvis.set_alloc_limit(0)
    check(info, cvis.OutOfMemoryError, "cvis_tensor_create", "out of memory allocating")


def test_io(tmp_path):
    with pytest.raises(cvis.Error) as info:
        cvis.Model.load(tmp_path / "missing.onnx")
    check(info, cvis.IOError, "cvis_model_load_onnx", "missing.onnx")


def test_format(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(cvis.Error) as info:
        cvis.load_image(tmp_path / "bad.png")
    check(info, cvis.FormatError, "cvis_image_load", ".")
    with pytest.raises(cvis.FormatError):
        cvis.onnx.load_bytes(b"\x08\x07\x12\xff\xff")


def test_unsupported(tmp_path):
    np.save(tmp_path / "int.npy", np.arange(4))
    with pytest.raises(cvis.Error) as info:
        cvis.load_npy(tmp_path / "int.npy")
    check(info, cvis.UnsupportedError, "cvis_tensor_load_npy", "int|dtype|<i8")


def test_shape():
    with pytest.raises(cvis.Error) as info:
        model().predict(np.zeros((1, 8, 7, 3), np.float32))
    check(info, cvis.ShapeError, "cvis_model_predict", "8x7x3")
    with pytest.raises(cvis.Error) as info:
        cvis.gradcam(model(), x(3), cvis.CategoricalScore([0, 1]))
    check(info, cvis.ShapeError, "cvis_explainer_run", "2 indices for a batch of 3")


def test_not_found(tmp_path):
    with pytest.raises(cvis.Error) as info:
        cvis.gradcam(model(), x(), 0, layer="nope")
    check(info, cvis.NotFoundError, "cvis_explainer_set_string", "nope")
    np.savez(tmp_path / "w.npz", **{"conv/kernel": np.zeros((3, 3, 3, 4), np.float32)})
    with pytest.raises(cvis.Error) as info:
        model().load_weights(tmp_path / "w.npz")
    check(info, cvis.NotFoundError, "cvis_model_load_npz", "conv/bias")


def test_range():
    with pytest.raises(cvis.Error) as info:
        cvis.saliency(model(), x(), cvis.CategoricalScore(5))
    check(info, cvis.RangeError, "cvis_explainer_run", "class index 5 out of range")
    with pytest.raises(cvis.Error) as info:
        cvis.CategoricalScore(-1)
    check(info, cvis.RangeError, "cvis_score_categorical", "negative")


def test_nonfinite():
    bad = x()
    bad[0, 3, 3, 1] = np.inf
    with pytest.raises(cvis.Error) as info:
        cvis.saliency(model(), bad, 0)
    check(info, cvis.NonFiniteError, "cvis_explainer_run", "input")
    with pytest.raises(cvis.Error) as info:
        cvis.colormap(np.array([[0, np.nan]], np.float32))
    check(info, cvis.NonFiniteError, "cvis_map_to_image", ".")


def test_cancelled_by_a_progress_callback():
    steps = []

    def stop_at_3(step, total, values):
        steps.append(step)
        return step == 3

    with pytest.raises(cvis.Error) as info:
        cvis.activation_maximization(model(), 1, layer="conv", steps=10, callbacks=[stop_at_3])
    check(info, cvis.CancelledError, "cvis_explainer_run", "stopped by the progress")
    assert steps == [1, 2, 3]
    with pytest.raises(cvis.CancelledError):
        cvis.scorecam(model(), x(), 0, batch_size=1, progress=lambda *a: True)


def test_limit():
    m = model()
    try:
        cvis.set_alloc_limit(1000)
        with pytest.raises(cvis.Error) as info:
            m.predict(x(4))
    finally:
        cvis.set_alloc_limit(0)
    check(info, cvis.LimitError, "cvis_model_predict", "allocation limit of 1000")
    m.predict(x(4))  # and all is well again


def test_layer_kind():
    with pytest.raises(cvis.Error) as info:
        model().layer("dense").filters()
    check(info, cvis.LayerKindError, "cvis_model_get_filters", "not a convolution")


def test_state():
    m = model()
    p = cvis.Pass(m)  # no weight gradients
    p.forward(x())
    p.backward(np.ones((1, 3), np.float32))
    with pytest.raises(cvis.Error) as info:
        cvis.Optimizer("sgd", 0.1).step_model(m, p)
    check(info, cvis.StateError, "cvis_optimizer_step_model", "weight gradients")
    sub = m.submodel(["conv"])
    with pytest.raises(cvis.Error) as info:
        m.dense(2)
    check(info, cvis.StateError, "cvis_model_add_dense", "submodel")
    del sub


def test_callback_from_a_c_score():
    """A score written in C that reports failure: CallbackError with the
    library's message, which names the code returned."""
    @cvis.methods.SCORE_FN
    def failing(user, output, scores, d_output):
        return 7

    with pytest.raises(cvis.Error) as info:
        cvis.saliency(model(), x(), cvis.CustomScore.from_c(failing))
    check(info, cvis.CallbackError, "cvis_explainer_run", "returned 7")


def test_python_exceptions_in_callbacks_reach_the_caller():
    """A Python score or progress callback that raises: the caller gets
    that very exception; the C status it caused is its context."""
    class Boom(Exception):
        pass

    def score(out):
        raise Boom("from the score")

    for run in (lambda: cvis.saliency(model(), x(), score),
                lambda: cvis.gradcam(model(), x(), score),
                lambda: cvis.CustomScore(score)(np.zeros((1, 3), np.float32))):
        with pytest.raises(Boom, match="from the score") as info:
            run()
        assert isinstance(info.value.__context__, cvis.CallbackError)

    def bad_shape(out):
        return out[:, 0], np.zeros((1, 1), np.float32)

    with pytest.raises(ValueError, match="gradient of the output's shape"):
        cvis.saliency(model(), x(), bad_shape)

    def progress(step, total, values):
        raise Boom("from the progress callback")

    with pytest.raises(Boom, match="progress") as info:
        cvis.activation_maximization(model(), 0, steps=3, callbacks=[progress])
    assert isinstance(info.value.__context__, cvis.CancelledError)
    # nothing is left behind: the next run is clean
    assert cvis.saliency(model(), x(), 0).shape == (1, 8, 8)


def test_missing_function_of_an_older_library():
    """A function that the loaded library lacks raises UnsupportedError when
    called, naming it (the import itself still works)."""
    _native.declare({"cvis_from_a_later_version": (ctypes.c_int, [])})
    try:
        with pytest.raises(cvis.UnsupportedError, match="cvis_from_a_later_version"):
            _native.api.cvis_from_a_later_version()
    finally:
        del _native.DECLARED["cvis_from_a_later_version"]
        del _native.api.cvis_from_a_later_version
