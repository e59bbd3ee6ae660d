"""Scores and attribution methods: saliency, SmoothGrad, Grad-CAM,
Grad-CAM++, Score-CAM, Faster Score-CAM, Layer-CAM, activation maximization
(named as the reference toolkit the tutorial uses names them), and
Integrated Gradients, Input x Gradient, guided backpropagation, deconvnet,
Guided Grad-CAM, XGrad-CAM, HiRes-CAM, Eigen-CAM, Ablation-CAM, Occlusion,
RISE and the noise tunnel (named as Captum and pytorch-grad-cam name
them)."""
import ctypes
import threading
import weakref

import numpy as np

from . import _errors
from ._native import api, declare, model_p, tensor_p, c_int, c_int64, c_double, c_char_p, \
    c_void_p, P, _Opaque
from ._tensor import Borrowed, adopt, copy_view, new

score_p = P(_Opaque)
explainer_p = P(_Opaque)
SCORE_FN = ctypes.CFUNCTYPE(c_int, c_void_p, tensor_p, P(ctypes.c_float), tensor_p)
PROGRESS_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_int, c_int, c_int, P(ctypes.c_float))

declare({
    "cvis_score_categorical": ("status", [c_int, P(c_int), P(score_p)]),
    "cvis_score_binary": ("status", [c_int, P(c_int), P(score_p)]),
    "cvis_score_inactive": ("status", [P(score_p)]),
    "cvis_score_custom": ("status", [SCORE_FN, c_void_p, P(score_p)]),
    "cvis_score_free": (None, [score_p]),
    "cvis_score_eval": ("status", [score_p, tensor_p, P(ctypes.c_float), tensor_p]),
    "cvis_explainer_new": ("status", [model_p, c_int, P(explainer_p)]),
    "cvis_explainer_free": (None, [explainer_p]),
    "cvis_explainer_set_int": ("status", [explainer_p, c_int, c_int64]),
    "cvis_explainer_set_float": ("status", [explainer_p, c_int, c_double]),
    "cvis_explainer_set_string": ("status", [explainer_p, c_int, c_char_p]),
    "cvis_explainer_set_progress": ("status", [explainer_p, PROGRESS_FN, c_void_p]),
    "cvis_explainer_set_tensor": ("status", [explainer_p, c_int, tensor_p]),
    "cvis_explainer_get_info": ("status", [explainer_p, c_int, c_int64, P(c_double)]),
    "cvis_explainer_output_shape": ("status", [explainer_p, tensor_p, P(c_int), P(c_int64)]),
    "cvis_explainer_run": ("status", [explainer_p, tensor_p, c_int, P(score_p), tensor_p]),
    "cvis_explainer_layer": (c_int, [explainer_p]),
    "cvis_explain": ("status", [model_p, c_int, tensor_p, score_p, P(tensor_p)]),
    "cvis_method_name": (c_char_p, [c_int]),
    "cvis_method_from_name": ("status", [c_char_p, P(c_int)]),
    "cvis_model_get_filters_normalized": ("status", [model_p, c_int, P(tensor_p)]),
    "cvis_model_feature_maps": ("status", [model_p, tensor_p, c_int, P(c_int), P(tensor_p)]),
})

OPTIONS = {"logits": 0, "layer": 1, "layer_name": 2, "seek": 3, "normalize": 4, "expand": 5,
           "keepdims": 6, "smooth_samples": 7, "smooth_noise": 8, "seed": 9, "max_n": 10,
           "batch_size": 11, "steps": 12, "input_min": 13, "input_max": 14, "jitter": 15,
           "rotate": 16, "scale_min": 17, "scale_max": 18, "tv_weight": 19, "norm_weight": 20,
           "norm_p": 21, "optimizer": 22, "learning_rate": 23, "beta_1": 24, "beta_2": 25,
           "batch": 26, "output_layer": 27, "output_layer_name": 28, "reduce": 29, "ig_steps": 30,
           "ig_rule": 31, "baseline": 32, "baseline_tensor": 33, "blur_sigma": 34, "nt_type": 35,
           "nt_samples": 36, "nt_stdev": 37, "window": 38, "stride": 39, "baseline_value": 40,
           "rise_masks": 41, "rise_p": 42, "rise_cell": 43}
FLOAT_OPTIONS = {"smooth_noise", "input_min", "input_max", "rotate", "scale_min", "scale_max",
                 "tv_weight", "norm_weight", "norm_p", "learning_rate", "beta_1", "beta_2",
                 "blur_sigma", "nt_stdev", "baseline_value", "rise_p"}
# options whose values may be given by name
ENUMS = {
    "reduce": {"sum": 0, "abs_sum": 1, "max_abs": 2},
    # Captum's method names for the quadrature
    "ig_rule": {"gausslegendre": 0, "riemann_left": 1, "riemann_right": 2, "riemann_middle": 3,
                "riemann_trapezoid": 4},
    "baseline": {"zero": 0, "blur": 1, "uniform": 2, "mean": 3, "tensor": 4},
    "nt_type": {None: 0, "none": 0, "smoothgrad": 1, "smoothgrad_sq": 2, "vargrad": 3},
}
INFO = {"completeness_delta": 0, "score": 1, "baseline_score": 2}


# ------------------------------------------------------------------ scores
class Score:
    """A libcvis score (one number per image from a model output).  Scores
    are immutable and may be shared by threads."""

    def __init__(self, handle, keep=None):
        self._h = handle
        self._keep = keep  # a ctypes callback must outlive the score
        self._finalizer = weakref.finalize(self, api.cvis_score_free, handle)

    def __call__(self, output):
        """Evaluates the score on an output (B, ...): (scores (B,),
        d(scores)/d(output))."""
        with Borrowed(output) as out:
            if out.array.ndim < 1:
                raise _errors.ShapeError("a score needs an output with a batch axis")
            s = np.zeros(out.array.shape[0], dtype=np.float32)
            g = np.zeros(out.array.shape, dtype=np.float32)
            with Borrowed(g) as gb:
                _with_callbacks([self], None, api.cvis_score_eval, self._h, out.handle,
                                s.ctypes.data_as(P(ctypes.c_float)), gb.handle)
        return s, g


def _ints(values):
    vals = [int(v) for v in np.atleast_1d(np.asarray(values)).ravel()]
    return len(vals), (c_int * len(vals))(*vals)


class CategoricalScore(Score):
    """s_b = mean of output[b, ..., index_b]; one index, or one per image."""

    def __init__(self, indices):
        n, arr = _ints(indices)
        h = score_p()
        api.cvis_score_categorical(n, arr, ctypes.byref(h))
        super().__init__(h)


class BinaryScore(Score):
    """For (B,1) outputs: +y for a true target, -y for a false one."""

    def __init__(self, targets):
        n, arr = _ints([1 if bool(t) else 0 for t in np.atleast_1d(targets)])
        h = score_p()
        api.cvis_score_binary(n, arr, ctypes.byref(h))
        super().__init__(h)


class InactiveScore(Score):
    """Zero score and gradient (silences an output)."""

    def __init__(self):
        h = score_p()
        api.cvis_score_inactive(ctypes.byref(h))
        super().__init__(h)


class CustomScore(Score):
    """A score written in Python: fn(output) -> (scores (B,), d_output), where
    output is a copy of the model output (B, ...) and d_output, of the
    output's shape, is d(scores)/d(output).  An exception raised in fn stops
    the method and reaches its caller unchanged (the C status behind it,
    cvis.CallbackError, is its __context__).  fn runs on the thread that
    called the method, holding the GIL.

    CustomScore.from_c(function_pointer) uses a score written in C (or a
    ctypes SCORE_FN) directly; a non-zero return from it raises
    cvis.CallbackError."""

    def __init__(self, fn):
        self.fn = fn
        self._errors = threading.local()  # one score may serve several threads

        def trampoline(user, output, scores, d_output):
            try:
                out = copy_view(output)
                s, g = fn(out)
                s = np.asarray(s, dtype=np.float32).reshape(-1)
                g = np.asarray(g, dtype=np.float32)
                if s.shape[0] != out.shape[0] or g.shape != out.shape:
                    raise ValueError("a custom score must return (B,) scores and a gradient of "
                                     "the output's shape %s" % (out.shape,))
                ctypes.memmove(scores, s.ctypes.data, s.nbytes)
                ctypes.memmove(api.cvis_tensor_data(d_output), np.ascontiguousarray(g).ctypes.data,
                               g.nbytes)
                return 0
            except BaseException as e:  # reported to the caller after the C call returns
                self._errors.value = e
                return 1

        cb = SCORE_FN(trampoline)
        h = score_p()
        api.cvis_score_custom(cb, None, ctypes.byref(h))
        super().__init__(h, keep=cb)

    def _pop_error(self):
        """The exception fn raised on this thread since the last call, or None."""
        return self._errors.__dict__.pop("value", None)

    @classmethod
    def from_c(cls, fn, user=None):
        """A score whose callback is a C function: a SCORE_FN instance, or
        the address of a function int fn(void *user, const cvis_tensor
        *output, float *scores, cvis_tensor *d_output).  `user` (an int
        address or None) is passed to it."""
        if not isinstance(fn, SCORE_FN):
            fn = SCORE_FN(fn)
        h = score_p()
        api.cvis_score_custom(fn, user, ctypes.byref(h))
        return Score(h, keep=fn)


def _with_callbacks(scores, explainer, fn, *args):
    """Calls fn(*args) (a checked C call that may run Python callbacks); a
    Python exception raised in a callback beats the C status it caused."""
    try:
        return fn(*args)
    except _errors.Error:
        for s in scores:
            err = s._pop_error() if isinstance(s, CustomScore) else None
            if err is not None:
                raise err
        err = explainer._pop_progress_error() if explainer is not None else None
        if err is not None:
            raise err
        raise


def as_score(score):
    """A Score from a Score, a Python callable (CustomScore), or class
    indices (CategoricalScore)."""
    if isinstance(score, Score):
        return score
    if callable(score):
        return CustomScore(score)
    return CategoricalScore(score)


def as_scores(score):
    """The scores of a run, one per model output: a list of Score objects or
    callables gives one each; anything else is one score (so that a list of
    class indices stays one CategoricalScore)."""
    if isinstance(score, (list, tuple)) and score and all(
            isinstance(s, Score) or callable(s) for s in score):
        return [as_score(s) for s in score]
    return [as_score(score)]


def method_names():
    """The names of the library's methods, in the order of cvis_method."""
    names = []
    while True:
        name = api.cvis_method_name(len(names))
        if not name:
            return names
        names.append(name.decode())


def method_id(method):
    """The cvis_method value of a method name ("gradcam", "gradcam++", ...)
    or value."""
    if isinstance(method, str):
        out = c_int()
        api.cvis_method_from_name(method.encode("utf-8"), ctypes.byref(out))
        return out.value
    return int(method)


# ------------------------------------------------------------ explainers
class Explainer:
    """One method on one model, options by name (see OPTIONS and
    docs/methods.md): Explainer(model, "gradcam", layer="conv2d_2").
    Calling it runs the method: e(x, score) -> maps.  Reusable (it keeps
    buffers between calls); one per thread (they may share the model and
    the scores)."""

    def __init__(self, model, method, **options):
        self.model = model
        h = explainer_p()
        api.cvis_explainer_new(model._h, method_id(method), ctypes.byref(h))
        self._h = h
        self._finalizer = weakref.finalize(self, api.cvis_explainer_free, h)
        self.method = api.cvis_method_name(method_id(method)).decode()
        self._progress = None
        self._progress_error = None
        for k, v in options.items():
            self.set(k, v)

    def set(self, key, value):
        """Sets an option by name; None leaves the default.  A layer given by
        name sets the *_name option."""
        if key == "baseline" and value is not None and not isinstance(value, (str, int)):
            key = "baseline_tensor"  # an image, or one per image
        if key == "baseline_tensor":
            b = Borrowed(value) if value is not None else None
            api.cvis_explainer_set_tensor(self._h, OPTIONS[key], b.handle if b else tensor_p())
            if b:
                b.close()
            return
        if key in ENUMS and (isinstance(value, str) or value is None):
            if value not in ENUMS[key]:
                raise ValueError("unknown %s %r; one of %s" % (
                    key, value, ", ".join(sorted(k for k in ENUMS[key] if k))))
            value = ENUMS[key][value]
        if value is None:
            return
        if key in ("layer", "output_layer") and isinstance(value, str):
            key = key + "_name"
        if key not in OPTIONS:
            raise ValueError("unknown option %r; one of %s" % (key, ", ".join(OPTIONS)))
        k = OPTIONS[key]
        if key.endswith("_name"):
            api.cvis_explainer_set_string(self._h, k, value.encode("utf-8"))
        elif key in FLOAT_OPTIONS:
            api.cvis_explainer_set_float(self._h, k, float(value))
        else:
            api.cvis_explainer_set_int(self._h, k, int(value))

    def set_progress(self, fn):
        """fn(step, total, values) is called during long runs (activation
        maximization: every step, values = scores then the weighted total
        variation and norm; Score-CAM: every forward batch, values None).
        A truthy return stops the run with cvis.CancelledError; an
        exception stops it and reaches the caller."""
        if fn is None:
            self._progress = None
            api.cvis_explainer_set_progress(self._h, PROGRESS_FN(), None)
            return
        self._progress_error = None

        def trampoline(user, step, total, n, values):
            try:
                vals = np.ctypeslib.as_array(values, (n,)).copy() if n and values else None
                return 1 if fn(step, total, vals) else 0
            except BaseException as e:
                self._progress_error = e
                return 1

        self._progress = PROGRESS_FN(trampoline)
        api.cvis_explainer_set_progress(self._h, self._progress, None)

    def _pop_progress_error(self):
        err, self._progress_error = self._progress_error, None
        return err

    @property
    def layer(self):
        """The layer the last run explained (CAM methods: after the search
        for a convolution), or -1."""
        return api.cvis_explainer_layer(self._h)

    def output_shape(self, x=None):
        """The shape of the maps a run on x gives (x may be None for
        activation maximization)."""
        with Borrowed(x) if x is not None else _NoTensor() as xb:
            nd = c_int()
            shape = (c_int64 * 8)()
            api.cvis_explainer_output_shape(self._h, xb.handle, ctypes.byref(nd), shape)
        return tuple(shape[i] for i in range(nd.value))

    def info(self, key, n):
        """A per-image figure of the last run of n images (see INFO):
        "completeness_delta", "score" or "baseline_score"."""
        out = np.zeros(n, dtype=np.float64)
        api.cvis_explainer_get_info(self._h, INFO[key], n, out.ctypes.data_as(P(c_double)))
        return out

    def __call__(self, x, score):
        """Runs the method on the batch x (B,H,W,C) with one score per model
        output; returns the maps as a float32 array over the library's
        memory.  x is None for activation maximization from noise; score is
        None for methods that use none (Eigen-CAM)."""
        if score is None:
            score = [InactiveScore()
                     for _ in range(api.cvis_model_output_count(self.model._h))]
        scores = as_scores(score)
        with Borrowed(x) if x is not None else _NoTensor() as xb:
            nd = c_int()
            shape = (c_int64 * 8)()
            api.cvis_explainer_output_shape(self._h, xb.handle, ctypes.byref(nd), shape)
            out = new(shape[i] for i in range(nd.value))  # the library's memory, given out as is
            arr = (score_p * len(scores))(*[s._h for s in scores])
            try:
                _with_callbacks(scores, self, api.cvis_explainer_run, self._h, xb.handle,
                                len(scores), arr, out)
            except BaseException:
                api.cvis_tensor_free(out)
                raise
        return adopt(out)


class _NoTensor:
    """Stands for a NULL tensor where a Borrowed would go."""
    handle = tensor_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def explain(model, method, x, score):
    """One method with its default options (cvis_explain): the maps for x
    (B,H,W,C) under one score, for a single-output model.  method: a name
    from method_names() or a value."""
    s = as_score(score)
    with Borrowed(x) as xb:
        out = tensor_p()
        _with_callbacks([s], None, api.cvis_explain, model._h, method_id(method), xb.handle,
                        s._h, ctypes.byref(out))
    return adopt(out)


def _run(model, method, x, score, **options):
    return Explainer(model, method, **options)(x, score)


def saliency(model, x, score, logits=True, smooth_samples=0, smooth_noise=0.2, keepdims=False,
             normalize=True, seed=0):
    """|d score / d x| (max over channels unless keepdims); SmoothGrad when
    smooth_samples > 0.  Returns (B,H,W) or (B,H,W,C)."""
    return _run(model, "saliency", x, score, logits=logits, smooth_samples=smooth_samples,
                smooth_noise=smooth_noise, keepdims=keepdims, normalize=normalize, seed=seed)


def smoothgrad(model, x, score, smooth_samples=20, smooth_noise=0.2, **kw):
    return saliency(model, x, score, smooth_samples=smooth_samples, smooth_noise=smooth_noise, **kw)


def _cam(method, model, x, score, layer, logits, seek, expand, normalize, **extra):
    return _run(model, method, x, score, layer=layer, logits=logits, seek=seek, expand=expand,
                normalize=normalize, **extra)


def gradcam(model, x, score, layer=None, logits=True, seek=True, expand=True, normalize=True):
    """Grad-CAM maps (B,H,W) (or (B,h,w) with expand=False).  layer: index
    (searched back to a convolution when seek) or name (used as named)."""
    return _cam("gradcam", model, x, score, layer, logits, seek, expand, normalize)


def gradcam_plus_plus(model, x, score, layer=None, logits=True, seek=True, expand=True,
                      normalize=True):
    return _cam("gradcam++", model, x, score, layer, logits, seek, expand, normalize)


def layercam(model, x, score, layer=None, logits=True, seek=True, expand=True, normalize=True):
    return _cam("layercam", model, x, score, layer, logits, seek, expand, normalize)


def scorecam(model, x, score, layer=None, logits=True, max_n=None, batch_size=32, seek=True,
             expand=True, normalize=True, progress=None):
    """Score-CAM; Faster Score-CAM with max_n channels (1 <= max_n <= K)."""
    e = Explainer(model, "scorecam", layer=layer, logits=logits, max_n=max_n,
                  batch_size=batch_size, seek=seek, expand=expand, normalize=normalize)
    if progress:
        e.set_progress(progress)
    return e(x, score)


# ------------------------------------------- methods beyond the tutorial
def _input_method(method, model, x, score, logits, keepdims, reduce, normalize, **extra):
    return _run(model, method, x, score, logits=logits, keepdims=keepdims, reduce=reduce,
                normalize=normalize, **extra)


def integrated_gradients(model, x, score, baselines="zero", n_steps=50, method="gausslegendre",
                         internal_batch_size=32, return_convergence_delta=False, blur_sigma=5.0,
                         seed=0, logits=True, keepdims=False, reduce="sum", normalize=True):
    """Integrated Gradients: (X - X0) * sum_i w_i dT/dX(X0 + a_i (X - X0)).
    baselines: "zero", "blur" (Gaussian, blur_sigma pixels), "uniform"
    (noise within each image's range, seeded), "mean", or an array (1,H,W,C)
    or (B,H,W,C).  method: Captum's "gausslegendre", "riemann_left",
    "riemann_right", "riemann_middle" or "riemann_trapezoid", with n_steps
    nodes; the interpolated images run internal_batch_size at a time.
    Returns the maps ((B,H,W), or (B,H,W,C) with keepdims; raw with
    normalize=False), and with return_convergence_delta also the completeness
    delta per image: sum of attributions - (s(X) - s(X0))."""
    e = Explainer(model, "integrated-gradients", logits=logits, keepdims=keepdims, reduce=reduce,
                  normalize=normalize, ig_steps=n_steps, ig_rule=method,
                  batch_size=internal_batch_size, blur_sigma=blur_sigma, seed=seed)
    e.set("baseline", baselines)
    maps = e(x, score)
    if return_convergence_delta:
        return maps, e.info("completeness_delta", np.shape(x)[0])
    return maps


def input_x_gradient(model, x, score, logits=True, keepdims=False, reduce="sum", normalize=True):
    """X * dT/dX per channel, reduced over channels unless keepdims."""
    return _input_method("input-x-gradient", model, x, score, logits, keepdims, reduce, normalize)


def guided_backprop(model, x, score, logits=True, keepdims=False, reduce="sum", normalize=True):
    """dT/dX with every ReLU passing back dy * [dy > 0] * [x > 0]."""
    return _input_method("guided-backprop", model, x, score, logits, keepdims, reduce, normalize)


def deconvnet(model, x, score, logits=True, keepdims=False, reduce="sum", normalize=True):
    """dT/dX with every ReLU passing back relu(dy)."""
    return _input_method("deconvnet", model, x, score, logits, keepdims, reduce, normalize)


def guided_gradcam(model, x, score, layer=None, logits=True, seek=True, keepdims=False,
                   reduce="sum", normalize=True):
    """Guided backprop times the Grad-CAM map of `layer` expanded to the input."""
    return _input_method("guided-gradcam", model, x, score, logits, keepdims, reduce, normalize,
                         layer=layer, seek=seek)


def xgradcam(model, x, score, layer=None, logits=True, seek=True, expand=True, normalize=True):
    """XGrad-CAM: w_k = sum(g * A) / (sum A + eps)."""
    return _cam("xgradcam", model, x, score, layer, logits, seek, expand, normalize)


def hirescam(model, x, score, layer=None, logits=True, seek=True, expand=True, normalize=True):
    """HiRes-CAM: relu(sum_k g_k * A_k), element-wise."""
    return _cam("hirescam", model, x, score, layer, logits, seek, expand, normalize)


def eigencam(model, x, score=None, layer=None, seek=True, expand=True, normalize=True):
    """Eigen-CAM: the activations' first principal component (no score
    needed; one may be given for models with several outputs)."""
    return _cam("eigencam", model, x, score, layer, True, seek, expand, normalize)


def ablationcam(model, x, score, layer=None, logits=True, batch_size=32, seek=True, expand=True,
                normalize=True, progress=None):
    """Ablation-CAM: w_k = (s - s with channel k zeroed) / s."""
    e = Explainer(model, "ablationcam", layer=layer, logits=logits, batch_size=batch_size,
                  seek=seek, expand=expand, normalize=normalize)
    if progress:
        e.set_progress(progress)
    return e(x, score)


def occlusion(model, x, score, window=0, stride=0, baseline_value=0.0, logits=True,
              batch_size=32, normalize=True, progress=None):
    """Occlusion (Captum's): the mean score drop of the window x window
    squares, every `stride` pixels, set to baseline_value, over each pixel.
    0 = automatic (window min(H,W)/8, stride window/2).  Maps (B,H,W)."""
    e = Explainer(model, "occlusion", window=window, stride=stride,
                  baseline_value=baseline_value, logits=logits, batch_size=batch_size,
                  normalize=normalize)
    if progress:
        e.set_progress(progress)
    return e(x, score)


def rise(model, x, score, n_masks=1000, p=0.5, cell=0, seed=0, logits=True, batch_size=32,
         normalize=True, progress=None):
    """RISE: sum_i score(X * mask_i) * mask_i / (N p) over N random masks of
    cells of `cell` pixels (0: ceil(max(H,W)/7)) kept with probability p.
    Maps (B,H,W)."""
    e = Explainer(model, "rise", rise_masks=n_masks, rise_p=p, rise_cell=cell, seed=seed,
                  logits=logits, batch_size=batch_size, normalize=normalize)
    if progress:
        e.set_progress(progress)
    return e(x, score)


def noise_tunnel(model, x, score, method="saliency", nt_type="smoothgrad", nt_samples=5,
                 stdevs=1.0, seed=0, **options):
    """Captum's NoiseTunnel over a gradient method ("saliency",
    "integrated-gradients", "input-x-gradient", "guided-backprop",
    "deconvnet", "guided-gradcam"): the method's per-channel maps of
    nt_samples copies X + N(0, stdevs^2), combined by nt_type "smoothgrad"
    (mean), "smoothgrad_sq" (mean of squares) or "vargrad" (variance), then
    reduced and normalized as the method does.  options: the method's own
    (logits, keepdims, reduce, normalize, layer, ig_steps, ...)."""
    return _run(model, method, x, score, nt_type=nt_type, nt_samples=nt_samples,
                nt_stdev=stdevs, seed=seed, **options)


# ------------------------------------------------- activation maximization
class Jitter:
    """Input modifier: rolls the image by up to `jitter` pixels each step."""

    def __init__(self, jitter=8):
        self.jitter = int(jitter)


class Rotate2D:
    """Input modifier: rotates by an angle drawn from U(-degree, degree)."""

    def __init__(self, degree=3.0):
        self.degree = float(degree)


class Scale:
    """Input modifier: zooms by a factor drawn from U(low, high)."""

    def __init__(self, low=0.9, high=1.1):
        self.low, self.high = float(low), float(high)


class TotalVariation2D:
    """Regularizer: weight * total variation / (H*W*C)."""

    def __init__(self, weight=10.0):
        self.weight = float(weight)


class Norm:
    """Regularizer: weight * ||x||_p / N^(1/p)."""

    def __init__(self, weight=10.0, p=2):
        self.weight, self.p = float(weight), float(p)


class Adam:
    """Adam, in Keras's order: Adam(learning_rate, beta_1, beta_2)."""
    kind = 2

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999):
        self.learning_rate, self.beta_1, self.beta_2 = learning_rate, beta_1, beta_2


class RMSprop:
    """RMSprop(learning_rate, rho)."""
    kind = 1

    def __init__(self, learning_rate=0.001, rho=0.9):
        self.learning_rate, self.beta_1, self.beta_2 = learning_rate, 0.9, rho


class SGD:
    """Plain gradient ascent: SGD(learning_rate)."""
    kind = 0

    def __init__(self, learning_rate=0.01):
        self.learning_rate, self.beta_1, self.beta_2 = learning_rate, 0.9, 0.999


class Progress:
    """A text progress bar on stderr: step, score and regularization values."""

    def __init__(self, width=30, stream=None):
        import sys
        self.width = width
        self.stream = stream or sys.stderr

    def __call__(self, step, total, values):
        done = int(self.width * step / max(total, 1))
        text = ""
        if values is not None and len(values) >= 2:
            text = " score %s  tv %.4g  norm %.4g" % (
                " ".join("%.4g" % v for v in values[:-2]), values[-2], values[-1])
        self.stream.write("\r[%s%s] %d/%d%s" % ("#" * done, "." * (self.width - done), step,
                                                total, text))
        if step == total:
            self.stream.write("\n")
        self.stream.flush()
        return False


def activation_maximization(model, score, layer=None, steps=200, seed_input=None,
                            input_range=(0, 255), input_modifiers=None, regularizers=None,
                            optimizer=None, callbacks=None, seed=0, logits=True, batch=1):
    """Optimizes an input so that `score` of the model (or of `layer`'s
    output, the reference's ExtractIntermediateLayer) rises.  Defaults are
    the reference's: Jitter(4), Rotate2D(1), TotalVariation2D(1.0),
    Norm(0.3, p=1), RMSprop(1.0, 0.999), 200 steps, range (0, 255).
    Returns the images (B,H,W,C) clipped to the range."""
    if input_modifiers is None:
        input_modifiers = [Jitter(4), Rotate2D(1)]
    if regularizers is None:
        regularizers = [TotalVariation2D(1.0), Norm(0.3, p=1)]
    if optimizer is None:
        optimizer = RMSprop(1.0, 0.999)
    opts = dict(output_layer=layer, steps=steps, input_min=input_range[0],
                input_max=input_range[1], seed=seed, logits=logits, batch=batch, jitter=0,
                rotate=0, scale_min=1, scale_max=1, tv_weight=0, norm_weight=0,
                optimizer=optimizer.kind, learning_rate=optimizer.learning_rate,
                beta_1=optimizer.beta_1, beta_2=optimizer.beta_2)
    for mod in input_modifiers:
        if isinstance(mod, Jitter):
            opts["jitter"] = mod.jitter
        elif isinstance(mod, Rotate2D):
            opts["rotate"] = mod.degree
        elif isinstance(mod, Scale):
            opts["scale_min"], opts["scale_max"] = mod.low, mod.high
        else:
            raise TypeError("unsupported input modifier %r" % (mod,))
    for reg in regularizers:
        if isinstance(reg, TotalVariation2D):
            opts["tv_weight"] = reg.weight
        elif isinstance(reg, Norm):
            opts["norm_weight"], opts["norm_p"] = reg.weight, reg.p
        else:
            raise TypeError("unsupported regularizer %r" % (reg,))
    e = Explainer(model, "activation-maximization", **opts)
    cbs = callbacks if isinstance(callbacks, (list, tuple)) else ([callbacks] if callbacks else [])
    if cbs:
        e.set_progress(lambda step, total, values: any(bool(cb(step, total, values)) for cb in cbs))
    return e(seed_input, score)


# ---------------------------------------------------- filters, feature maps
def normalized_filters(model, layer):
    """The layer's filters (kh,kw,cin,cout) min-max scaled to [0,1]."""
    t = tensor_p()
    api.cvis_model_get_filters_normalized(model._h, model.layer_index(layer), ctypes.byref(t))
    return adopt(t)


def feature_maps(model, x, layers):
    """Outputs of the given layers for x: a list of arrays."""
    idx = [model.layer_index(l) for l in layers]
    xb = Borrowed(x)
    outs = (tensor_p * len(idx))()
    api.cvis_model_feature_maps(model._h, xb.handle, len(idx), (c_int * len(idx))(*idx), outs)
    xb.close()
    return [adopt(outs[i]) for i in range(len(idx))]
