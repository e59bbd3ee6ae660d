"""Bench rows for explaining a dataset (not a test: figures to read).

    python3 bench/dataset.py [--sizes 1000,10000] [--out bench/dataset.json]

1. images/s of Grad-CAM on the tutorial's network (128x128x3, untrained:
   speed does not depend on the weights) for 1000 images: the cvis command
   in one process, and cvis.dask on a 2-worker distributed.LocalCluster;
2. the peak resident memory of the cvis command against the dataset's size
   (each size in its own process, measured by /usr/bin/time -v): it should
   not grow with the number of images.

Images are 64x64 PNGs (resized to 128x128 by the command), so that ten
thousand of them fit in a temporary directory."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
os.environ.setdefault("CVIS_LIBRARY", os.path.join(ROOT, "lib", "libcvis.so"))
import cvis  # noqa: E402

CVIS = os.path.join(ROOT, "build", "bin", "cvis")


def tutorial_model(path):
    m = cvis.Model(128, 128, 3)
    m.conv2d(8, 7, activation="relu")
    m.conv2d(8, 5, activation="relu")
    m.conv2d(8, 3, activation="relu")
    m.flatten()
    m.dense(128, activation="relu")
    m.dense(3, activation="softmax")
    m.init_weights(1)
    m.save_onnx(path)


def make_images(d, n, rng):
    os.makedirs(d, exist_ok=True)
    paths = []
    for i in range(n):
        p = os.path.join(d, "img%05d.png" % i)
        if not os.path.exists(p):
            cvis.save_png(p, rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
        paths.append(p)
    return paths


def run_command(model, images_dir, out):
    """(seconds, peak RSS in MiB) of one cvis explain run."""
    t0 = time.time()
    r = subprocess.run(["/usr/bin/time", "-v", CVIS, "--quiet", "explain", model, images_dir,
                        "--method", "gradcam", "-o", out], capture_output=True, text=True)
    seconds = time.time() - t0
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    return seconds, kb / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "dataset.json"))
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    results = {"load_average_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "tutorial.onnx")
        tutorial_model(model)
        memory = []
        for n in sizes:
            d = os.path.join(tmp, "images%d" % n)
            make_images(d, n, rng)
            seconds, mib = run_command(model, d, os.path.join(tmp, "out%d" % n))
            memory.append({"images": n, "seconds": round(seconds, 2),
                           "images_per_second": round(n / seconds, 1),
                           "peak_rss_mib": round(mib, 1)})
            print("cvis explain, %6d images: %7.1f s, %6.1f images/s, peak RSS %6.1f MiB" % (
                n, seconds, n / seconds, mib), flush=True)
        results["command"] = memory
        # the same 1000 (or the smallest size) images on a 2-worker cluster
        n = sizes[0]
        paths = make_images(os.path.join(tmp, "images%d" % n), n, rng)
        from distributed import Client, LocalCluster
        import cvis.dask as cdask
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None, silence_logs=40) as lc, Client(lc) as client:
            client.run(lambda: cvis.set_num_threads(1))
            warm = cdask.explain(paths[:8], model, ["gradcam"], client=client, partition_size=4,
                                 size=(128, 128))
            warm.compute()
            t0 = time.time()
            frame = cdask.explain(paths, model, ["gradcam"], client=client, partition_size=50,
                                  size=(128, 128))
            rows = frame.compute()
            seconds = time.time() - t0
        assert len(rows) == n
        results["dask_2_workers"] = {"images": n, "seconds": round(seconds, 2),
                                     "images_per_second": round(n / seconds, 1)}
        print("cvis.dask, 2 workers, %d images: %.1f s, %.1f images/s" % (n, seconds, n / seconds))
    results["load_average_end"] = os.getloadavg()
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print("load average at start %s, at end %s; written %s" % (
        results["load_average_start"], results["load_average_end"], args.out))


if __name__ == "__main__":
    main()
