"""libcvis from Python: CNN visualization and attribution over numpy.

    import cvis
    m = cvis.Model(128, 128, 3)
    m.conv2d(8, 7, activation="relu") ...
    probs = m.predict(x)          # x: (B,H,W,C) float32

Every libcvis error becomes a subclass of cvis.Error carrying the library's
message.
"""
from ._errors import (Error, InvalidArgumentError, OutOfMemoryError, FormatError,
                      UnsupportedError, ShapeError, NotFoundError, RangeError, NonFiniteError,
                      CancelledError, LimitError, LayerKindError, StateError, CallbackError,
                      InternalError)
from ._errors import IOError_ as IOError  # noqa: A001 (cvis.IOError, like the C status)
from ._native import api as _api, lib as _lib
from .model import (Model, Layer, LayerRef, Pass, Optimizer, softmax_cross_entropy, save_npy,
                    load_npy, PREV, INPUT)
from .methods import (Score, CategoricalScore, BinaryScore, InactiveScore, CustomScore, Explainer,
                      saliency, smoothgrad, gradcam, gradcam_plus_plus, layercam, scorecam,
                      activation_maximization, Jitter, Rotate2D, Scale, TotalVariation2D, Norm,
                      Adam, RMSprop, SGD, Progress, normalized_filters, feature_maps,
                      integrated_gradients, input_x_gradient, guided_backprop, deconvnet,
                      guided_gradcam, xgradcam, hirescam, eigencam, ablationcam, occlusion, rise,
                      noise_tunnel)
from . import metrics
from .metrics import deletion, insertion, average_drop_increase, pointing_game
from . import images
from .images import (load_image, load_images, decode_image, resize, to_tensor, to_image, colormap,
                     overlay, save_png, draw_text, Grid, Report)
from . import onnx  # noqa: F401 (adds Model.load and Model.save_onnx)

__version__ = _lib.cvis_version_string().decode()
version = _lib.cvis_version()


def set_num_threads(n):
    """Threads that compute (BLAS and libcvis's own); 0 = all cores."""
    _api.cvis_set_num_threads(n)


def get_num_threads():
    return _api.cvis_get_num_threads()


def set_alloc_limit(nbytes):
    """Largest single allocation libcvis will make; 0 restores the default."""
    _api.cvis_set_alloc_limit(nbytes)


def get_alloc_limit():
    return _api.cvis_get_alloc_limit()
