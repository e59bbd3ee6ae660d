"""The Python examples of the documentation run as written: every ```python
block of docs/python.md, in order and in one namespace (a later block uses
what an earlier one made), and the Python blocks of README.md and
bindings/python/README.md.  They run in a temporary directory holding the
files they name: small stand-ins for resnet18.onnx and the photographs,
made here."""
import ast
import contextlib
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest

import cvis
from cvis import layers as L

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "python.md"
READMES = [ROOT / "README.md", ROOT / "bindings" / "python" / "README.md"]


def python_blocks(path):
    """[(line number, code)] of the ```python blocks of a Markdown file."""
    blocks = []
    lines = path.read_text().splitlines()
    start = None
    for i, line in enumerate(lines):
        if start is None and line.strip() == "```python":
            start = i + 1
        elif start is not None and line.strip() == "```":
            blocks.append((start + 1, "\n".join(lines[start:i]) + "\n"))
            start = None
    assert start is None, "%s: a ```python block is not closed" % path
    return blocks


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """The files the examples name: an ONNX model of 1000 classes on
    224x224 RGB input standing in for ResNet-18, the tutorial model's
    weights, and pictures (PNG data under the names the examples use;
    the image loader goes by content)."""
    d = tmp_path_factory.mktemp("docs")
    net = cvis.Model(224, 224, 3)
    net.conv2d(4, 7, strides=4, activation="relu", name="conv1")
    net.global_avg_pool(name="pool")
    net.dense(1000, activation="softmax", name="fc")
    net.init_weights(3)
    net.save_onnx(str(d / "resnet18.onnx"))
    tutorial = cvis.Model.sequential((128, 128, 3), [
        L.Conv2D(8, 7, activation="relu"), L.Conv2D(8, 5, activation="relu"),
        L.Conv2D(8, 3, activation="relu"), L.Flatten(), L.Dense(128, activation="relu"),
        L.Dense(3, activation="softmax")], seed=5)
    tutorial.save_weights(str(d / "tutorial_model.npz"))
    rng = np.random.default_rng(0)
    for name, (h, w) in {"cat.jpg": (150, 200), "dog.jpg": (180, 160), "a.jpg": (128, 128),
                         "b.png": (100, 90), "goldfish.jpg": (64, 64)}.items():
        cvis.save_png(str(d / name), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return d


@contextlib.contextmanager
def inside(directory):
    old = os.getcwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(old)


def run_blocks(path, blocks, ns):
    for line, code in blocks:
        try:
            exec(compile(code, "%s:%d" % (path.name, line), "exec"), ns)
        except Exception as e:
            raise AssertionError("the example at %s line %d fails: %r" % (path, line, e)) from e


def test_docs_python_md_examples_run_in_order(workdir):
    blocks = python_blocks(DOCS)
    assert len(blocks) == 13, "the page has 13 Python examples; update the count with it"
    ns = {"__name__": "docs_example"}
    err = io.StringIO()
    with inside(workdir), contextlib.redirect_stdout(io.StringIO()) as out, \
            contextlib.redirect_stderr(err):
        run_blocks(DOCS, blocks, ns)
    # what the comments of the examples say they give
    assert ns["probs"].shape == (2, 3)                       # the tutorial model's 3 classes
    assert ns["cams"].shape == (2, 224, 224)
    assert 0 <= ns["cams"].min() and ns["cams"].max() <= 1
    m = ns["m"]
    assert m.layer_index("conv2d_1") == 1
    assert ns["maps"].shape == (2, 116, 116)                 # the Explainer's, expand=False
    assert ns["one"].shape == (2, 122, 122, 8)
    assert ns["fmap"].shape == (1, 122, 122, 8)
    assert ns["images"].shape == (2, 128, 128, 3) and ns["images"].dtype == np.uint8
    # the list the page's comment gives
    with open(DOCS) as f:
        page = f.read()
    listed = re.search(r"cvis\.method_names\(\) +# (\[[^]]*\])", page).group(1)
    assert cvis.method_names() == ast.literal_eval(re.sub(r"\n\s*#", "", listed))
    # the one print of the page: the ShapeError's message, as its comment says
    printed = out.getvalue().strip()
    assert printed == "the input is 64x64x3, the model takes 128x128x3"
    assert "# " + printed in DOCS.read_text()
    assert "100/100" in err.getvalue(), "cvis.Progress drew no bar to the last step"
    for name in ("copy.onnx", "weights.npz", "x.npy", "over.png", "maps.png", "index.html"):
        assert (workdir / name).stat().st_size > 0, name


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_readme_python_examples_run(readme, workdir):
    blocks = python_blocks(readme)
    assert blocks
    with inside(workdir):
        run_blocks(readme, blocks, {"__name__": "readme_example"})
    assert (workdir / "gradcam.png").exists() or (workdir / "cam.png").exists()
