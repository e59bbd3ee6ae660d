"""Explaining a dataset on a Dask cluster.

    from distributed import Client
    import cvis.dask
    client = Client("tcp://scheduler:8786")        # or None: the local default
    rows = cvis.dask.explain(paths, "model.onnx", methods=["gradcam", "scorecam"],
                             client=client, out_dir="/shared/maps")
    rows.compute()                                  # a pandas DataFrame, one row per image

Each task explains a partition of the paths; a worker process loads the
model once and keeps it for its later tasks.  A task writes its maps under
temporary names and renames them, and returns its rows, so a task that Dask
runs again after a worker died leaves no trace of the first attempt and the
result holds every image exactly once.  The rows are those of
`cvis explain`'s summary: image, predicted, probability, target, then per
method its map's mean, the place of its maximum (max_y, max_x) and its
share above 0.5."""
import os
import threading

import numpy as np

from .images import load_images
from .methods import CategoricalScore, Explainer
from .model import Model

_models = {}
_models_lock = threading.Lock()

# Methods whose result for an image depends on the rest of its batch: run
# one image at a time, as the cvis command does.
_BATCH_DEPENDENT = {"smoothgrad", "faster-scorecam"}


def _model(path):
    """The worker process's copy of the model at `path` (loaded once)."""
    key = (os.path.abspath(path), os.path.getmtime(path))
    with _models_lock:
        m = _models.get(key)
        if m is None:
            m = _models[key] = Model.load(path)
        return m


def _saved_name(method):
    return method.replace("+", "p")


def _columns(methods):
    cols = ["image", "predicted", "probability", "target"]
    for m in methods:
        n = _saved_name(m)
        cols += [n + "_mean", n + "_max_y", n + "_max_x", n + "_above_half"]
    return cols


def _save_npy(path, array):
    tmp = "%s.tmp%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def explain_paths(paths, model_path, methods=("gradcam",), target=None, size=None,
                  mean=None, std=None, batch=16, out_dir=None, options=None):
    """Explains the images at `paths` in this process and returns their rows
    (a list of dicts, in the order of `paths`).  `target` None explains each
    image's predicted class; `size` (H, W) defaults to the model's input
    size; `mean`/`std` normalize as torchvision does; `options` maps a
    method name to its explainer options (e.g. {"scorecam": {"max_n": 10}});
    with `out_dir`, each map is also written as out_dir/STEM_METHOD.npy."""
    m = _model(model_path)
    if size is None:
        size = m.input_shape[:2]
        if min(size) < 1:
            raise ValueError("the model's input size is free: give size=(H, W)")
    options = options or {}
    explainers = {name: Explainer(m, name, **options.get(name, {})) for name in methods}
    rows = []
    for start in range(0, len(paths), batch):
        part = [str(p) for p in paths[start:start + batch]]
        _, x = load_images(part, size=tuple(size), resample="smooth", mean=mean, std=std)
        probs = m.predict(x)
        predicted = probs.argmax(axis=-1)
        classes = predicted if target is None else np.full(len(part), int(target))
        batch_rows = [{"image": p, "predicted": int(predicted[i]),
                       "probability": float(probs[i, predicted[i]]), "target": int(classes[i])}
                      for i, p in enumerate(part)]
        for name in methods:
            e = explainers[name]
            if name in _BATCH_DEPENDENT:
                maps = np.concatenate([e(x[i:i + 1], CategoricalScore([int(classes[i])]))
                                       for i in range(len(part))])
            else:
                maps = e(x, CategoricalScore([int(c) for c in classes]))
            saved = _saved_name(name)
            for i, row in enumerate(batch_rows):
                mp = maps[i]
                y, xx = np.unravel_index(int(mp.argmax()), mp.shape)
                row[saved + "_mean"] = float(mp.mean(dtype=np.float64))
                row[saved + "_max_y"] = int(y)
                row[saved + "_max_x"] = int(xx)
                row[saved + "_above_half"] = float((mp > 0.5).mean())
                if out_dir:
                    stem = os.path.splitext(os.path.basename(row["image"]))[0]
                    _save_npy(os.path.join(out_dir, "%s_%s.npy" % (stem, saved)), mp)
        rows += batch_rows
    return rows


def explain(paths, model_path, methods=("gradcam",), client=None, partition_size=64,
            target=None, size=None, mean=None, std=None, batch=16, out_dir=None, options=None):
    """A Dask DataFrame of the rows of every image in `paths`, explained
    across the cluster of `client`, one task per partition of
    `partition_size` paths: with a client the work starts at once on its
    workers; without one, when the frame is computed, on Dask's default
    scheduler.  With `out_dir` (a directory every worker can
    write), the maps are written there too.  The model file must be readable
    at `model_path` on every worker (a shared file system, or the same
    path on every machine)."""
    import dask
    import dask.dataframe as dd
    import pandas as pd

    paths = [str(p) for p in paths]
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    if out_dir and len(set(stems)) != len(stems):
        raise ValueError("two images share a file name; their maps would overwrite each other")
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    methods = list(methods)
    meta = pd.DataFrame({c: pd.Series(dtype="object" if c == "image" else
                                      "int64" if c.endswith(("predicted", "target", "_y", "_x"))
                                      else "float64")
                         for c in _columns(methods)})

    def part(chunk):
        rows = explain_paths(chunk, model_path, methods, target, size, mean, std, batch, out_dir,
                             options)
        return pd.DataFrame(rows, columns=_columns(methods)).astype(meta.dtypes.to_dict())

    chunks = [paths[i:i + partition_size] for i in range(0, len(paths), partition_size)]
    parts = [dask.delayed(part, pure=True)(c, dask_key_name="cvis-explain-%d-%s" %
                                            (i, dask.base.tokenize(c, model_path, methods)))
             for i, c in enumerate(chunks)]
    frame = dd.from_delayed(parts, meta=meta, verify_meta=False)
    if client is not None:
        # start on that cluster now; a task lost with its worker is run again
        # elsewhere by the scheduler
        frame = client.persist(frame)
    return frame
