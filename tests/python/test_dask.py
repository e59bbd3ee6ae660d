"""cvis.dask on a real distributed.LocalCluster of worker processes: the
same rows as the single-process path, and every row exactly once when a
worker is killed during the run."""
import os
import signal
import time

import numpy as np
import pytest

import cvis

if os.environ.get("CI") == "true":
    import dask  # noqa: F401  (missing Dask fails under CI)
    import distributed  # noqa: F401
else:
    pytest.importorskip("distributed")

import cvis.dask as cdask  # noqa: E402

N = 120
METHODS = ["gradcam", "gradcam++", "smoothgrad"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("dask")
    m = cvis.Model(32, 32, 3)
    m.conv2d(8, 3, activation="relu")
    m.conv2d(16, 3, activation="relu")
    m.global_avg_pool()
    m.dense(4, activation="softmax")
    m.init_weights(5)
    m.save_onnx(str(d / "m.onnx"))
    rng = np.random.default_rng(2)
    paths = []
    for i in range(N):
        p = d / ("img%03d.png" % i)
        cvis.save_png(str(p), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
        paths.append(str(p))
    return str(d / "m.onnx"), paths


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as lc, Client(lc) as client:
        yield client


def sorted_rows(frame):
    return frame.sort_values("image").reset_index(drop=True)


def test_cluster_rows_equal_single_process_rows(data, cluster, tmp_path):
    import pandas as pd
    model, paths = data
    local = pd.DataFrame(cdask.explain_paths(paths, model, METHODS,
                                             options={"smoothgrad": {"smooth_samples": 3}}))
    frame = cdask.explain(paths, model, METHODS, client=cluster, partition_size=16,
                          out_dir=str(tmp_path), options={"smoothgrad": {"smooth_samples": 3}})
    got = frame.compute()
    assert len(got) == N and got["image"].is_unique
    pd.testing.assert_frame_equal(sorted_rows(got), sorted_rows(local[got.columns]),
                                  check_exact=True)
    # the maps were written by the workers
    workers = cluster.run(os.getpid)
    assert len(set(workers.values())) == 2
    assert len(list(tmp_path.glob("*_gradcampp.npy"))) == N


def test_a_killed_worker_loses_no_row(data, cluster):
    model, paths = data
    pids = cluster.run(os.getpid)
    frame = cdask.explain(paths, model, METHODS, client=cluster, partition_size=4,
                          options={"smoothgrad": {"smooth_samples": 3}})
    # wait for the run to be under way, then kill one worker process outright
    deadline = time.time() + 60
    while time.time() < deadline:
        tasks = cluster.processing()
        if any(tasks.values()):
            break
        time.sleep(0.01)
    futures = list(frame.__dask_graph__().values())
    finished = sum(f.status == "finished" for f in futures)
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)
    assert finished < len(futures), "the run ended before the kill"
    got = frame.compute()
    assert len(got) == N
    assert got["image"].is_unique and set(got["image"]) == set(paths)
    # the nanny restarted the worker: the cluster has two processes again
    deadline = time.time() + 60
    while time.time() < deadline and len(cluster.run(os.getpid)) < 2:
        time.sleep(0.2)
    assert victim not in cluster.run(os.getpid).values()
