"""The cvis command: every subcommand on a small ONNX model, --help, and
one-line errors with a non-zero status."""
import os
import subprocess

import numpy as np
import pytest

import cvis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CVIS = os.path.join(ROOT, os.environ.get("BUILD", "build"), "bin", "cvis")


def run(*args, ok=True):
    r = subprocess.run([CVIS, *map(str, args)], capture_output=True, text=True)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    m = cvis.Model(32, 32, 3)
    m.conv2d(8, 3, activation="relu", name="c1")
    m.conv2d(16, 3, activation="relu", name="c2")
    m.global_avg_pool(name="gap")
    m.dense(4, activation="softmax", name="fc")
    m.init_weights(7)
    m.save_onnx(str(d / "m.onnx"))
    rng = np.random.default_rng(0)
    images = []
    for i in range(3):
        path = d / ("img%d.png" % i)
        cvis.save_png(str(path), rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
        images.append(path)
    return d, d / "m.onnx", images


def test_help_for_every_subcommand():
    assert "usage: cvis" in run("--help").stdout
    for sub in ("layers", "filters", "features", "explain", "maximize"):
        assert run(sub, "--help").stdout.startswith("usage: cvis " + sub)


def test_layers(files):
    _, model, _ = files
    out = run("layers", model).stdout
    assert "input (32, 32, 3), 4 layers" in out
    lines = [l.split() for l in out.splitlines()[2:]]
    assert [l[1] for l in lines] == ["c1", "c2", "gap", "fc"]
    assert lines[0][3:5] == ["(30,", "30,"] and "yes" in lines[0]


def test_filters_and_features(files):
    d, model, images = files
    run("filters", model, "c2", "-o", d / "f.png")
    f = cvis.load_image(str(d / "f.png"))
    assert f.shape[0] > 8 * 48 and f.std() > 10  # 16 filters x 8 channels
    run("features", model, images[0], "c1", "-3", "--size", "32x32", "-o", d / "fm.png")
    assert cvis.load_image(str(d / "fm.png")).std() > 10
    r = run("features", model, images[0], "gap", "-o", d / "x.png", ok=False)
    assert r.returncode == 1 and "gives no maps" in r.stderr


def test_explain_writes_overlays_maps_and_a_page(files):
    d, model, images = files
    out = d / "explain"
    run("explain", model, *images, "--method", "gradcam,gradcam++,saliency", "--class", "2",
        "-o", out, "--batch", "2", "--quiet")
    for img in images:
        stem = img.stem
        for method, saved in (("gradcam", "gradcam"), ("gradcam++", "gradcampp"),
                              ("saliency", "saliency")):
            pic = cvis.load_image(str(out / ("%s_%s.png" % (stem, saved))))
            assert pic.shape == (40, 48, 3)
            maps = np.load(out / ("%s_%s.npy" % (stem, saved)))
            assert maps.shape == (32, 32) and 0 <= maps.min() and maps.max() <= 1
    # the maps are the library's, for the images as the command prepared them
    m = cvis.Model.load(str(model))
    _, x = cvis.load_images([str(images[0])], size=(32, 32), resample="smooth")
    ref = cvis.gradcam(m, x, cvis.CategoricalScore(2))
    assert np.abs(np.load(out / ("%s_gradcam.npy" % images[0].stem)) - ref[0]).max() < 1e-5
    page = (out / "index.html").read_text()
    assert page.count("<img") == 9 and "<script" not in page


def test_maximize(files):
    d, model, _ = files
    run("maximize", model, "c2", "5", "--steps", "5", "--range", "0,1", "-o", d / "am.png",
        "--picture", "64")
    a = cvis.load_image(str(d / "am.png"))
    assert a.shape == (64, 64, 3) and a.std() > 1
    run("maximize", model, "c2", "5", "--steps", "5", "--range", "0,1", "-o", d / "am2.png",
        "--picture", "64")
    assert np.array_equal(a, cvis.load_image(str(d / "am2.png")))


@pytest.mark.parametrize("args,status,text", [
    (("layers", "missing.onnx"), 1, "cannot open"),
    (("layers", "x.png"), 1, "ONNX"),
    (("explain", "MODEL", "missing.png"), 1, "missing.png"),
    (("explain", "MODEL", "IMG", "--method", "nope"), 2, "unknown method"),
    (("explain", "MODEL", "IMG", "--class", "9"), 1, "out of range"),
    (("filters", "MODEL", "zzz", "-o", "f.png"), 1, "no layer called"),
    (("filters", "MODEL", "gap", "-o", "f.png"), 1, "not a convolution"),
    (("maximize", "MODEL", "c2", "x", "-o", "a.png"), 2, "FILTER"),
    (("frobnicate",), 2, "unknown command"),
    (("layers",), 2, "give a model"),
])
def test_errors_are_one_line(files, args, status, text):
    d, model, images = files
    args = [str(model) if a == "MODEL" else str(images[0]) if a == "IMG" else a for a in args]
    r = subprocess.run([CVIS, *args], capture_output=True, text=True, cwd=d)
    assert r.returncode == status, (args, r.returncode, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) >= 1 and text in lines[0], r.stderr
    if status == 1:
        assert len(lines) == 1, r.stderr
