"""The C examples run and write what they say."""
import os
import subprocess

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")


def example(name):
    return os.path.join(ROOT, BUILD, "examples", name)


def test_layers_prints_the_tutorial_shapes():
    out = subprocess.run([example("layers")], capture_output=True, text=True, check=True).stdout
    assert "filters_weights.shape: (7, 7, 3, 8), biases_weights.shape: (8,)" in out
    for shape in ("(None, 122, 122, 8)", "(None, 118, 118, 8)", "(None, 116, 116, 8)"):
        assert shape in out
    assert "[*] layer: flatten (Flatten) No" in out


def test_tutorial_writes_every_map(tmp_path):
    out = subprocess.run([example("tutorial"), "-o", str(tmp_path), "--steps", "3"],
                         capture_output=True, text=True, check=True).stdout
    assert "[*] feature_maps_1.shape: (1, 122, 122, 8)" in out
    assert "[*] activations.shape: (1, 128, 128, 3)" in out
    f = np.load(tmp_path / "filters_conv2d.npy")
    assert f.shape == (7, 7, 3, 8) and f.min() == 0 and f.max() == 1
    assert np.load(tmp_path / "feature_maps_2_2.npy").shape == (1, 116, 116, 8)
    for name in ("vanilla_saliency", "smoothgrad", "gradcam", "gradcam_plus_plus", "scorecam",
                 "faster_scorecam", "layercam"):
        maps = np.load(tmp_path / (name + ".npy"))
        assert maps.shape == (3, 128, 128), name
        assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1, name
    act = np.load(tmp_path / "activations.npy")
    assert act.shape == (1, 128, 128, 3) and act.min() >= 0 and act.max() <= 255


def test_python_tutorial_matches_the_c_one(tmp_path):
    """examples/python/tutorial.py gives the C example's results to 1e-6."""
    import sys
    c_dir, py_dir = tmp_path / "c", tmp_path / "py"
    subprocess.run([example("tutorial"), "-o", str(c_dir), "--steps", "5"], capture_output=True,
                   check=True)
    env = dict(os.environ)
    subprocess.run([sys.executable, os.path.join(ROOT, "examples", "python", "tutorial.py"), "-o",
                    str(py_dir), "--steps", "5"], capture_output=True, check=True, env=env)
    names = sorted(p.name for p in c_dir.glob("*.npy"))
    assert len(names) == 15 and sorted(p.name for p in py_dir.glob("*.npy")) == names
    for name in names:
        a, b = np.load(c_dir / name), np.load(py_dir / name)
        assert a.shape == b.shape, name
        assert np.abs(a - b).max() <= 1e-6, (name, np.abs(a - b).max())


def test_compare_measures_every_method(tmp_path):
    """examples/compare on a briefly trained Fashion-MNIST model: a row per
    method, values in their ranges, and the Grad-CAM row equal to the
    measures recomputed through the Python bindings."""
    import gzip
    import pytest
    import cvis
    data = "/usr/share/datasets/fashion-mnist"
    if not os.path.exists(os.path.join(data, "t10k-images-idx3-ubyte.gz")):
        if os.environ.get("CI") == "true":
            pytest.fail("dataset-fashion-mnist is missing (make test-deps installs it)")
        pytest.skip("dataset-fashion-mnist not installed (make test-deps)")
    w = tmp_path / "f.npz"
    subprocess.run([example("train_fashion"), "--train", "512", "--test", "16", "--epochs", "1",
                    "--seed", "3", "--quiet", "-o", str(w)], capture_output=True, check=True,
                   timeout=300)
    out = subprocess.run([example("compare"), "--fashion", str(w), "--n", "6", "--step", "0.1",
                          "--rise-masks", "16"], capture_output=True, text=True, check=True,
                         timeout=600).stdout
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and cells[0] != "method":
            rows[cells[0]] = [float(c) for c in cells[1:]]
    assert len(rows) == 19 and "RISE" in rows and "random map" in rows, out
    for name, (dl, ins, drop, inc, pg, ms) in rows.items():
        assert 0 <= dl <= 1 and 0 <= ins <= 1 and 0 <= drop <= 100, (name, out)
        assert 0 <= inc <= 100 and 0 <= pg <= 1 and ms >= 0, (name, out)
    # the same measures of Grad-CAM, from Python
    raw = gzip.open(os.path.join(data, "t10k-images-idx3-ubyte.gz")).read()
    x = (np.frombuffer(raw, np.uint8, offset=16)[:6 * 784].reshape(6, 28, 28, 1)
         .astype(np.float32) / np.float32(255))
    labels = list(gzip.open(os.path.join(data, "t10k-labels-idx1-ubyte.gz")).read()[8:14])
    m = cvis.Model(28, 28, 1)
    m.conv2d(16, 3, padding="same", activation="relu")
    m.pool2d("max", 2)
    m.conv2d(32, 3, padding="same", activation="relu")
    m.pool2d("max", 2)
    m.flatten()
    m.dense(64, activation="relu")
    m.dense(10, activation="softmax")
    m.load_weights(str(w))
    s = cvis.CategoricalScore(labels)
    maps = cvis.gradcam(m, x, s)
    dl = cvis.deletion(m, x, s, maps, step=0.1, baseline="zero").auc.mean()
    ins = cvis.insertion(m, x, s, maps, step=0.1, baseline="blur", blur_sigma=5.0).auc.mean()
    drop = cvis.average_drop_increase(m, x, s, maps)
    pg = cvis.pointing_game(maps, masks=(x[..., 0] > np.float32(0.1)).astype(np.float32),
                            tolerance=0).accuracy
    got = rows["Grad-CAM"]
    assert abs(got[0] - dl) <= 6e-4 and abs(got[1] - ins) <= 6e-4, (got, dl, ins)
    assert abs(got[2] - drop.average_drop) <= 0.06 and abs(got[3] - drop.increase) <= 0.06
    assert abs(got[4] - pg) <= 0.006
