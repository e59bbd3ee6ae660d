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
