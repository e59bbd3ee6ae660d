"""One model shared by several Python threads: every call gives exactly what
it gives when run alone, and long calls let other threads run (ctypes
releases the GIL around each C call).

Each call makes its own explainer or pass (the objects that compute belong
to one thread); the model and the scores are shared.  libcvis's worker pool
runs a loop serially when another thread is using it, so the same call may
run in parallel once and serially the next time: its result must not
depend on that.
"""
import threading
import time

import numpy as np

import cvis
from cvis import layers as L

N_THREADS = 4
ROUNDS = 3


def shared_model():
    return cvis.Model.sequential((24, 24, 3), [
        L.Conv2D(16, 3, activation="relu", name="conv1"),
        L.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
        L.MaxPooling2D(2),
        L.Conv2D(8, 3, activation="relu", name="conv3"),
        L.Flatten(),
        L.Dense(4, activation="softmax", name="out")], seed=5)


def tasks(m, x):
    score = cvis.CategoricalScore([0, 1, 3])

    def python_score(out):  # a custom score written in Python, run from every thread
        g = np.zeros_like(out)
        g[:, 2] = 1
        return out[:, 2], g

    def pass_gradient():
        p = cvis.Pass(m)
        out = p.forward(x)
        p.backward(np.ones_like(out))
        return p.input_grad()

    def weight_gradient():  # sums of per-range partials in the worker pool
        p = cvis.Pass(m, weight_grads=True)
        out = p.forward(x)
        p.backward(np.ones_like(out))
        return np.concatenate([p.weight_grad(layer, 0).ravel() for layer in ("conv1", "conv2")])

    return {
        "predict": lambda: m.predict(x),
        "feature_maps": lambda: m.submodel(["conv1", "conv3"]).predict(x)[1],
        "saliency": lambda: cvis.saliency(m, x, score),
        "smoothgrad": lambda: cvis.saliency(m, x, score, smooth_samples=3, seed=4),
        "gradcam": lambda: cvis.gradcam(m, x, score),
        "gradcam++": lambda: cvis.gradcam_plus_plus(m, x, score),
        "layercam": lambda: cvis.layercam(m, x, score, layer="conv2"),
        "scorecam": lambda: cvis.scorecam(m, x, score, max_n=4, batch_size=8),
        "python_score": lambda: cvis.gradcam(m, x, python_score),
        "activation_maximization": lambda: cvis.activation_maximization(
            m, cvis.CategoricalScore(3), layer="conv2", steps=4, seed=2),
        "pass": pass_gradient,
        "weight_gradient": weight_gradient,
    }


def test_threads_sharing_a_model_give_the_serial_results():
    m = shared_model()
    x = np.random.default_rng(3).uniform(0, 1, (3, 24, 24, 3)).astype(np.float32)
    work = tasks(m, x)
    serial = {name: fn() for name, fn in work.items()}
    names = list(work)
    results = {k: [] for k in range(N_THREADS)}
    errors = []
    start = threading.Barrier(N_THREADS)

    def worker(k):
        try:
            start.wait()
            # every thread runs every task, each starting at a different one
            order = names[k * len(names) // N_THREADS:] + names[:k * len(names) // N_THREADS]
            for _ in range(ROUNDS):
                for name in order:
                    results[k].append((name, work[name]()))
        except BaseException as e:  # reported below, with the thread's number
            errors.append((k, e))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for k in range(N_THREADS):
        assert len(results[k]) == ROUNDS * len(names)
        for name, got in results[k]:
            assert np.array_equal(got, serial[name]), (k, name)


def test_a_long_call_lets_other_threads_run():
    """While one thread is inside Score-CAM (a C call of a few hundred
    milliseconds), the main thread keeps running Python code."""
    m = shared_model()
    x = np.random.default_rng(4).uniform(0, 1, (4, 24, 24, 3)).astype(np.float32)
    inside = threading.Event()
    done = threading.Event()
    progress_seen = []

    def progress(step, total, values):
        progress_seen.append(step)
        inside.set()  # the C call has started (called back from inside it)

    def long_call():
        cvis.scorecam(m, x, 0, batch_size=2, progress=progress)
        done.set()

    t = threading.Thread(target=long_call)
    t0 = time.perf_counter()
    t.start()
    assert inside.wait(30)
    spins = 0
    while not done.is_set():
        spins += 1
    t.join()
    elapsed = time.perf_counter() - t0
    assert len(progress_seen) > 1
    # with the GIL held for the whole C call this loop could not have run
    # between the first progress callback and the end
    assert spins > 1000, (spins, elapsed)
