"""The package as users get it: its version agrees with the header and the
library; it installs offline into a virtual environment with Debian's
setuptools; it finds libcvis through CVIS_LIBRARY, then the build tree,
then the installed library; and it refuses a library of another major
version."""
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import cvis

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "bindings" / "python"
TREE_LIB = ROOT / "lib"
LIBRARY = Path(os.environ.get("CVIS_LIBRARY", TREE_LIB / "libcvis.so"))


def header_version():
    text = (ROOT / "include" / "cvis.h").read_text()
    return ".".join(re.search(r"#define CVIS_VERSION_%s (\d+)" % k, text).group(1)
                    for k in ("MAJOR", "MINOR", "PATCH"))


def run_python(python, code, cwd, **env_changes):
    """Runs `code` in a fresh interpreter with a clean environment (no
    PYTHONPATH, no CVIS_LIBRARY unless given); returns the process."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "CVIS_LIBRARY", "LD_LIBRARY_PATH")}
    env.update({k: str(v) for k, v in env_changes.items()})
    return subprocess.run([str(python), "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_versions_agree():
    meta = tomllib.loads((SRC / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "cvis"
    assert meta["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "cvis._version.__version__"
    assert meta["project"]["dependencies"] == ["numpy"]
    assert cvis.__version__ == header_version() == cvis.library_version()


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A virtual environment (seeing Debian's packages) with the package
    installed offline from a copy of bindings/python (pip builds in the
    source directory: the copy keeps the tree clean)."""
    top = tmp_path_factory.mktemp("pkg")
    src = top / "src"
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    env = dict(os.environ, PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    p = subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages",
                        str(top / "venv")], capture_output=True, text=True, env=env)
    if p.returncode != 0 and os.environ.get("CI") != "true" and "ensurepip" in p.stdout + p.stderr:
        pytest.skip("python3-venv is not installed (make test-deps)")
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run([str(top / "venv" / "bin" / "pip"), "install", "--no-build-isolation",
                        "--no-index", str(src)], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    return top


def test_offline_install_into_a_venv(venv):
    out = run_python(venv / "venv" / "bin" / "python", """
        import importlib.metadata, numpy as np, cvis
        print(cvis.__file__)
        print(importlib.metadata.version("cvis"))
        print(cvis.library_path)
        m = cvis.Model.sequential((4, 4, 1), [cvis.layers.Flatten(),
                                              cvis.layers.Dense(2, activation="softmax")])
        print(m.predict(np.ones((1, 4, 4, 1), np.float32)).sum())
        """, cwd=venv, CVIS_LIBRARY=LIBRARY)
    assert out.returncode == 0, out.stderr
    file, version, library, total = out.stdout.split()
    assert file.startswith(str(venv / "venv")) and file.endswith("cvis/__init__.py")
    assert version == header_version()
    assert library == str(LIBRARY)
    assert abs(float(total) - 1) < 1e-6


def test_installed_package_finds_the_installed_library(venv, tmp_path):
    """Without CVIS_LIBRARY and outside a build tree the library comes from
    the system's search (here LD_LIBRARY_PATH, as after make install into
    a prefix the loader knows)."""
    libdir = tmp_path / "prefix" / "lib"
    libdir.mkdir(parents=True)
    real = LIBRARY.resolve()
    shutil.copy(real, libdir / real.name)
    os.symlink(real.name, libdir / "libcvis.so.1")
    os.symlink("libcvis.so.1", libdir / "libcvis.so")
    out = run_python(venv / "venv" / "bin" / "python",
                     "import cvis; print(cvis.library_path); print(cvis.library_version())",
                     cwd=tmp_path, LD_LIBRARY_PATH=libdir)
    assert out.returncode == 0, out.stderr
    path, version = out.stdout.split()
    assert "libcvis.so" in path and str(TREE_LIB) not in path
    assert version == header_version()
    # and with no library anywhere, the error says what to do
    out = run_python(venv / "venv" / "bin" / "python", "import cvis", cwd=tmp_path)
    assert out.returncode != 0
    assert "libcvis not found" in out.stderr and "CVIS_LIBRARY" in out.stderr


def test_the_build_tree_is_used_without_cvis_library(tmp_path):
    if not (TREE_LIB / "libcvis.so.1").exists():
        pytest.skip("no build in this tree")
    out = run_python(sys.executable, "import cvis; print(cvis.library_path)", cwd=tmp_path,
                     PYTHONPATH=SRC)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(TREE_LIB / "libcvis.so.1")


def test_cvis_library_wins_and_a_wrong_one_is_an_error(tmp_path):
    out = run_python(sys.executable, "import cvis; print(cvis.library_path)", cwd=tmp_path,
                     PYTHONPATH=SRC, CVIS_LIBRARY=LIBRARY)
    assert out.returncode == 0 and out.stdout.strip() == str(LIBRARY), out.stderr
    missing = tmp_path / "nowhere" / "libcvis.so"
    out = run_python(sys.executable, "import cvis", cwd=tmp_path, PYTHONPATH=SRC,
                     CVIS_LIBRARY=missing)
    assert out.returncode != 0
    # CVIS_LIBRARY set means that library or nothing: no silent fallback
    assert "ImportError: libcvis not found; tried: %s (no such file). Set CVIS_LIBRARY" % missing \
        in out.stderr


def test_another_major_version_is_refused(tmp_path):
    if not shutil.which("gcc"):
        pytest.skip("no C compiler")
    src = tmp_path / "fake.c"
    src.write_text('int cvis_version(void) { return 20001; }\n'
                   'const char *cvis_version_string(void) { return "2.0.1"; }\n')
    lib = tmp_path / "libcvis.so.2"
    subprocess.run(["gcc", "-shared", "-fPIC", str(src), "-o", str(lib)], check=True)
    out = run_python(sys.executable, "import cvis", cwd=tmp_path, PYTHONPATH=SRC, CVIS_LIBRARY=lib)
    assert out.returncode != 0
    assert "ImportError" in out.stderr
    assert "2.0.1" in out.stderr and "major version 2" in out.stderr and "needs 1" in out.stderr
