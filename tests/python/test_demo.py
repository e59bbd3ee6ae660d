"""make demo's programs on a reduced setting: a short training, then the
demo, whose report and every picture must exist and show something."""
import os
import re
import subprocess

import numpy as np

import cvis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")


def example(name):
    return os.path.join(ROOT, BUILD, "examples", name)


def test_reduced_demo(tmp_path):
    weights = tmp_path / "w.npz"
    out = subprocess.run([example("train_shapes"), "-o", str(weights), "--train", "96",
                          "--test", "32", "--epochs", "1", "--quiet"],
                         capture_output=True, text=True, check=True).stdout
    assert re.search(r"test accuracy: [0-9.]+", out)
    demo_dir = tmp_path / "demo"
    out = subprocess.run([example("demo"), "-w", str(weights), "-o", str(demo_dir), "--steps",
                          "3", "--pointing", "6"], capture_output=True, text=True,
                         check=True).stdout
    assert "pointing game" in out
    for method in ("Vanilla saliency", "SmoothGrad", "Grad-CAM", "Grad-CAM++", "Score-CAM",
                   "Faster Score-CAM", "Layer-CAM"):
        assert re.search(re.escape(method) + r"\s+[0-9.]+ \(\d+/6\)", out), method
    page = (demo_dir / "index.html").read_text()
    pictures = re.findall(r'src="([^"]+\.png)"', page)
    expected = {"filters_conv2d.png", "filters_conv2d_1.png", "filters_conv2d_2.png",
                "inputs.png", "feature_maps_1.png", "feature_maps_all_1.png",
                "feature_maps_all_2.png", "feature_maps_all_3.png",
                "activation_maximization.png", "saliency.png", "smoothgrad.png", "gradcam.png",
                "gradcampp.png", "scorecam.png", "faster-scorecam.png", "layercam.png"}
    assert expected <= set(pictures), expected - set(pictures)
    assert "<script" not in page
    for name in pictures:
        img = cvis.load_image(str(demo_dir / name))
        assert img.shape[0] > 64 and img.shape[1] > 64, name
        assert img.std() > 10, name  # not blank
