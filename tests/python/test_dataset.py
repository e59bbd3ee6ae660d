"""cvis explain over a dataset: streaming batches give what single-image
calls give, an interrupted run resumes to the same output, and shards
split the work without overlap."""
import csv
import os
import signal
import subprocess
import time

import numpy as np
import pytest

import cvis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CVIS = os.path.join(ROOT, os.environ.get("BUILD", "build"), "bin", "cvis")
METHODS = "gradcam,gradcam++,layercam,saliency,smoothgrad,faster-scorecam"
SAVED = ["gradcam", "gradcampp", "layercam", "saliency", "smoothgrad", "faster-scorecam"]
N = 200


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    d = tmp_path_factory.mktemp("dataset")
    m = cvis.Model(32, 32, 3)
    m.conv2d(8, 3, activation="relu", name="c1")
    m.pool2d("max", 2, name="p1")
    m.conv2d(16, 3, activation="relu", name="c2")
    m.global_avg_pool(name="gap")
    m.dense(5, activation="softmax", name="fc")
    m.init_weights(11)
    m.save_onnx(str(d / "m.onnx"))
    rng = np.random.default_rng(1)
    paths = []
    for i in range(N):
        sub = d / "images" / ("part%d" % (i % 4))
        sub.mkdir(parents=True, exist_ok=True)
        p = sub / ("img%03d.png" % i)
        h, w = 28 + i % 9, 30 + i % 7  # sizes vary: every image is resized
        cvis.save_png(str(p), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        paths.append(p)
    return d, d / "m.onnx", d / "images", paths


def explain(*args, check=True):
    cmd = [CVIS, "--quiet", "explain", *map(str, args), "--method", METHODS, "--samples", "4",
           "--max-n", "3"]
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def key_of(image_dir, path):
    rel = os.path.relpath(path, image_dir)
    return os.path.splitext(rel)[0].replace("/", "__")


def test_batches_give_what_single_images_give(dataset, tmp_path):
    d, model, images, paths = dataset
    out = tmp_path / "out"
    explain(model, images, "-o", out, "--batch", "16")
    table = rows(out / "summary.csv")
    assert len(table) == N and sorted(r["image"] for r in table) == sorted(map(str, paths))
    m = cvis.Model.load(str(model))
    names = ["gradcam", "gradcam++", "layercam", "saliency", "smoothgrad", "faster-scorecam"]
    for p in paths[::7]:  # 29 images, each through the library alone
        _, x = cvis.load_images([str(p)], size=(32, 32), resample="smooth")
        cls = int(np.argmax(m.predict(x)[0]))
        score = cvis.CategoricalScore([cls])
        for name, saved in zip(names, SAVED):
            opts = {"smooth_samples": 4} if name == "smoothgrad" else \
                {"max_n": 3} if name == "faster-scorecam" else {}
            ref = cvis.Explainer(m, name, **opts)(x, score)[0]
            got = np.load(out / ("%s_%s.npy" % (key_of(images, p), saved)))
            assert np.array_equal(got, ref), (p, name, np.abs(got - ref).max())
    row = next(r for r in table if r["image"] == str(paths[0]))
    got = np.load(out / ("%s_gradcam.npy" % key_of(images, paths[0])))
    assert abs(float(row["gradcam_mean"]) - got.mean()) < 1e-5
    assert (int(row["gradcam_max_y"]), int(row["gradcam_max_x"])) == \
        np.unravel_index(got.argmax(), got.shape)


def test_an_interrupted_run_resumes_to_the_same_output(dataset, tmp_path):
    d, model, images, _ = dataset
    full, cut = tmp_path / "full", tmp_path / "cut"
    explain(model, images, "-o", full, "--batch", "8")
    proc = subprocess.Popen([CVIS, "--quiet", "explain", str(model), str(images), "--method",
                             METHODS, "--samples", "4", "--max-n", "3", "-o", str(cut),
                             "--batch", "8"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill it once about half the images are done
        done = len(list(cut.glob("*.row.json"))) if cut.exists() else 0
        if done >= N // 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(cut.glob("*.row.json")))
    assert 0 < done < N, done
    leftovers = [p.name for p in cut.iterdir() if ".tmp" in p.name]
    r = explain(model, images, "-o", cut, "--batch", "8")
    assert r.returncode == 0
    assert not [p.name for p in cut.iterdir() if ".tmp" in p.name and p.name not in leftovers]
    assert (full / "summary.csv").read_text() == (cut / "summary.csv").read_text()
    for f in full.glob("*.npy"):
        assert np.array_equal(np.load(f), np.load(cut / f.name)), f.name


def test_shards_split_without_overlap(dataset, tmp_path):
    d, model, images, paths = dataset
    out = tmp_path / "shards"
    for i in range(3):
        explain(model, images, "-o", out, "--shard", "%d/3" % i, "--batch", "32")
    parts = [rows(out / ("summary-%d-of-3.csv" % i)) for i in range(3)]
    seen = [r["image"] for part in parts for r in part]
    assert len(seen) == N and sorted(seen) == sorted(map(str, paths))
    assert all(abs(len(part) - N / 3) < 1 for part in parts)


def test_inputs_from_a_list_and_a_glob(dataset, tmp_path):
    d, model, images, paths = dataset
    listing = tmp_path / "list.txt"
    listing.write_text("".join("%s\n" % p for p in paths[:5]))
    out = tmp_path / "list"
    explain(model, "@%s" % listing, str(images / "part1" / "img00*.png"), "-o", out,
            "--summary", str(out / "rows.jsonl"))
    lines = (out / "rows.jsonl").read_text().splitlines()
    expect = set(map(str, paths[:5])) | {str(p) for p in (images / "part1").glob("img00*.png")}
    import json
    assert {json.loads(l)["image"] for l in lines} == expect
    # two inputs that would write under one name are refused up front
    clash = tmp_path / "clash"
    (clash / "x").mkdir(parents=True)
    (clash / "y").mkdir()
    for sub in ("x", "y"):
        cvis.save_png(str(clash / sub / "same.png"), np.zeros((8, 8, 3), np.uint8))
    r = explain(model, clash / "x" / "same.png", clash / "y" / "same.png", "-o", tmp_path / "o",
                check=False)
    assert r.returncode == 1 and "same name" in r.stderr
