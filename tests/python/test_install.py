"""The library as a consumer sees it: exported symbols, SONAME, the header
under strict C and C++ compilers, and `make install` followed by builds
through pkg-config against the shared and the static library."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEADER = ROOT / "include" / "cvis.h"
SHARED = Path(os.environ.get("CVIS_LIBRARY", ROOT / "lib" / "libcvis.so"))


def header_version():
    text = HEADER.read_text()
    parts = [re.search(r"#define CVIS_VERSION_%s (\d+)" % k, text).group(1)
             for k in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


def public_functions():
    """Names of the functions cvis.h declares with CVIS_API."""
    text = re.sub(r"/\*.*?\*/", " ", HEADER.read_text(), flags=re.S)
    names = set(re.findall(r"CVIS_API\s[^;{(]*?\b(cvis_\w+)\s*\(", text))
    assert len(names) > 50, "the header parser found too few functions"
    return names


def run(cmd, **kw):
    """Runs cmd; on failure the assertion shows its output."""
    env = dict(os.environ)
    # a make started by this test must not join the outer make's jobserver
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(k, None)
    env.update(kw.pop("env", {}))
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)
    assert p.returncode == 0, "%s failed (%d):\n%s\n%s" % (cmd, p.returncode, p.stdout, p.stderr)
    return p.stdout


def test_only_cvis_symbols_are_exported():
    out = run(["nm", "-D", "--defined-only", str(SHARED)])
    names = [line.split()[-1] for line in out.splitlines() if line.strip()]
    assert names, "nm listed nothing"
    strays = [n for n in names if not n.startswith("cvis_") or n.startswith("cvis__")]
    assert strays == []
    # and everything the header promises is there
    missing = public_functions() - set(names)
    assert missing == set()


def test_soname_carries_the_major_version():
    out = run(["readelf", "-d", str(SHARED)])
    major = header_version().split(".")[0]
    assert re.search(r"\(SONAME\)\s+Library soname: \[libcvis\.so\.%s\]" % major, out), out


CONSUMER = r"""
#include <cvis.h>
#include <cvis.h> /* twice: the include guard holds */
#include <stdio.h>

int main(void)
{
    cvis_model *m = NULL;
    cvis_tensor *x = NULL, *y = NULL;
    int64_t shape[4] = {1, 6, 6, 2};
    /* a little work, so that the BLAS dependency is really linked */
    if (cvis_model_new(6, 6, 2, &m) != CVIS_OK ||
        cvis_model_add_conv2d(m, NULL, CVIS_PREV, 3, 3, 3, 1, CVIS_PADDING_SAME, CVIS_ACT_RELU,
                              NULL) != CVIS_OK ||
        cvis_model_add_global_avg_pool(m, NULL, CVIS_PREV, NULL) != CVIS_OK ||
        cvis_tensor_create(4, shape, &x) != CVIS_OK ||
        cvis_model_predict(m, x, &y) != CVIS_OK) {
        fprintf(stderr, "error: %s\n", cvis_last_error());
        return 1;
    }
    printf("%s %d %lld\n", cvis_version_string(), cvis_version() == CVIS_VERSION_NUMBER,
           (long long)cvis_tensor_size(y));
    cvis_tensor_free(y);
    cvis_tensor_free(x);
    cvis_model_free(m);
    return 0;
}
"""


@pytest.mark.parametrize("compiler,flags,suffix", [
    ("gcc", ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"], ".c"),
    ("gcc", ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wstrict-prototypes"], ".c"),
    ("g++", ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic"], ".cpp"),
    ("g++", ["-std=c++11", "-Wall", "-Wextra", "-Werror"], ".cpp"),
])
def test_header_compiles(tmp_path, compiler, flags, suffix):
    src = tmp_path / ("consumer" + suffix)
    src.write_text(CONSUMER)
    run([compiler] + flags + ["-I", str(ROOT / "include"), "-c", str(src), "-o",
                              str(tmp_path / "consumer.o")])


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`make install DESTDIR=... PREFIX=/usr` into a fresh directory."""
    dest = tmp_path_factory.mktemp("destdir")
    run(["make", "-s", "--no-print-directory", "install", "DESTDIR=%s" % dest, "PREFIX=/usr"],
        cwd=ROOT)
    return dest


def pkg_config(dest, *args):
    env = {"PKG_CONFIG_SYSROOT_DIR": str(dest),
           "PKG_CONFIG_LIBDIR": str(dest / "usr" / "lib" / "pkgconfig"),
           "PKG_CONFIG_PATH": ""}
    return run(["pkg-config"] + list(args) + ["cvis"], env=env).split()


def test_install_layout(installed):
    lib = installed / "usr" / "lib"
    version = header_version()
    major = version.split(".")[0]
    assert (installed / "usr" / "include" / "cvis.h").read_text() == HEADER.read_text()
    assert (lib / ("libcvis.so." + version)).is_file()
    assert os.readlink(lib / ("libcvis.so." + major)) == "libcvis.so." + version
    assert os.readlink(lib / "libcvis.so") == "libcvis.so." + major
    assert (lib / "libcvis.a").is_file()
    pc = (lib / "pkgconfig" / "cvis.pc").read_text()
    assert "prefix=/usr\n" in pc and "Version: %s\n" % version in pc
    assert pkg_config(installed, "--modversion") == [version]


def test_the_command_is_installed(installed):
    """make install puts the cvis command in BINDIR, linked to the installed
    library (found here through LD_LIBRARY_PATH, as DESTDIR is not /)."""
    exe = installed / "usr" / "bin" / "cvis"
    assert exe.is_file() and os.access(exe, os.X_OK)
    env = dict(os.environ, LD_LIBRARY_PATH=str(installed / "usr" / "lib"))
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, env=env,
                         check=True).stdout
    assert out.strip() == "cvis " + header_version()
    rpath = subprocess.run(["readelf", "-d", str(exe)], capture_output=True, text=True).stdout
    assert "/usr/lib" in rpath and "build" not in rpath


def test_consumer_builds_with_pkg_config(installed, tmp_path):
    src = tmp_path / "app.c"
    src.write_text(CONSUMER)
    exe = tmp_path / "app"
    cflags = pkg_config(installed, "--cflags")
    libs = pkg_config(installed, "--libs")
    assert "-I%s/usr/include" % installed in cflags
    assert "-lcvis" in libs
    run(["gcc", "-std=c99", "-Wall", "-Werror", str(src), "-o", str(exe)] + cflags + libs)
    assert "libcvis.so.%s" % header_version().split(".")[0] in run(["readelf", "-d", str(exe)])
    out = run([str(exe)], env={"LD_LIBRARY_PATH": str(installed / "usr" / "lib")})
    assert out.split() == [header_version(), "1", "3"]


def test_consumer_links_the_static_library(installed, tmp_path):
    src = tmp_path / "app.c"
    src.write_text(CONSUMER)
    exe = tmp_path / "app_static"
    cflags = pkg_config(installed, "--cflags")
    libs = pkg_config(installed, "--static", "--libs")
    assert "-lopenblas" in libs
    # -lcvis taken from the archive, the rest (BLAS, zlib, libm) as usual
    libs = [("-Wl,-Bstatic -lcvis -Wl,-Bdynamic" if f == "-lcvis" else f) for f in libs]
    libs = " ".join(libs).split()
    run(["gcc", "-std=c99", "-Wall", "-Werror", str(src), "-o", str(exe)] + cflags + libs)
    assert "libcvis" not in run(["readelf", "-d", str(exe)])
    out = run([str(exe)], env={"LD_LIBRARY_PATH": ""})
    assert out.split() == [header_version(), "1", "3"]


def test_tools_present():
    for tool in ("nm", "readelf", "gcc", "g++", "pkg-config", "make"):
        assert shutil.which(tool), tool
