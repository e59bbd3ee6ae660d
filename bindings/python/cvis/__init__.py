"""libcvis from Python: CNN visualization and attribution over numpy.

    import cvis
    m = cvis.Model.load("resnet18.onnx")          # or cvis.Model.sequential(...)
    probs = m.predict(x)                           # x: (B,H,W,C) float32
    cams = cvis.gradcam(m, x, cvis.CategoricalScore([1, 2]))

Every libcvis status becomes a subclass of cvis.Error carrying the library's
message.  See docs/python.md.
"""
from ._version import __version__
from ._errors import (Error, InvalidArgumentError, OutOfMemoryError, FormatError,
                      UnsupportedError, ShapeError, NotFoundError, RangeError, NonFiniteError,
                      CancelledError, LimitError, LayerKindError, StateError, CallbackError,
                      InternalError)
from ._errors import IOError_ as IOError  # noqa: A001 (cvis.IOError, like the C status)
from ._native import api as _api, library_path
from .model import (Model, Layer, LayerRef, Pass, Optimizer, softmax_cross_entropy, save_npy,
                    load_npy, PREV, INPUT)
from . import layers
from .methods import (Score, CategoricalScore, BinaryScore, InactiveScore, CustomScore, Explainer,
                      saliency, smoothgrad, gradcam, gradcam_plus_plus, layercam, scorecam,
                      activation_maximization, explain, method_names, Jitter, Rotate2D, Scale,
                      TotalVariation2D, Norm, Adam, RMSprop, SGD, Progress, normalized_filters,
                      feature_maps, integrated_gradients, input_x_gradient, guided_backprop,
                      deconvnet, guided_gradcam, xgradcam, hirescam, eigencam, ablationcam,
                      occlusion, rise, noise_tunnel)
from . import metrics
from .metrics import deletion, insertion, average_drop_increase, pointing_game
from . import images
from .images import (load_image, load_images, decode_image, resize, to_tensor, to_image, colormap,
                     overlay, save_png, draw_text, text_width, Grid, Report)
from . import onnx  # noqa: F401 (adds Model.load, Model.save_onnx, Model.to_onnx_bytes)


def library_version():
    """The version of the libcvis actually loaded, "MAJOR.MINOR.PATCH"
    (cvis.__version__ is the version this package is written for; the
    majors agree, or the import fails)."""
    return _api.cvis_version_string().decode()


# The loaded library's version as MAJOR*10000+MINOR*100+PATCH.
version = _api.cvis_version()


def set_num_threads(n):
    """Threads that compute (libcvis's worker pool, which also runs its
    matrix products; OpenBLAS itself is kept at one thread); 0 = all cores.
    Process-wide."""
    _api.cvis_set_num_threads(n)


def get_num_threads():
    return _api.cvis_get_num_threads()


def set_alloc_limit(nbytes):
    """The largest single allocation (and tensor) libcvis will make, in
    bytes; larger requests raise cvis.LimitError before anything is
    allocated.  0 restores the default (8 GiB).  Process-wide."""
    _api.cvis_set_alloc_limit(nbytes)


def get_alloc_limit():
    return _api.cvis_get_alloc_limit()


__all__ = [n for n in dir() if not n.startswith("_")]
