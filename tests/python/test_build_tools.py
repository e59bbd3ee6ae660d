"""The build and test machinery itself: what `make check` and
`make check-asan` rely on."""
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def clean_env(**extra):
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(k, None)
    env.update(extra)
    return env


def test_sanitizer_build_keeps_the_normal_static_library():
    """`make check-asan` must build its instrumented archive elsewhere: a
    replaced lib/libcvis.a breaks the next plain `make check`."""
    p = subprocess.run(["make", "-n", "-B", "check-asan"], cwd=ROOT, capture_output=True,
                       text=True, env=clean_env())
    assert p.returncode == 0, p.stderr
    archives = re.findall(r"\bar rcs (\S+)", p.stdout)
    assert archives and all(a != "lib/libcvis.a" for a in archives), archives


@pytest.mark.parametrize("pytest_line,passed,failed", [
    ("13 passed in 1.20s", 13, 0),
    ("========== 2 failed, 113 passed, 3 skipped in 9.01s ==========", 113, 2),
    ("1 failed, 1 error in 0.5s", 0, 2),
    ("4 skipped in 0.1s", 0, 0),
])
def test_summary_line_counts(tmp_path, pytest_line, passed, failed):
    """tests/run_all.sh adds pytest's counts to the C tests' (none here)."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\n"
                    "case \"$*\" in *pytest*-q*) echo '%s';; esac\n"
                    "exit 0\n" % pytest_line)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    build = tmp_path / "build"
    (build / "tests").mkdir(parents=True)
    p = subprocess.run(["bash", str(ROOT / "tests" / "run_all.sh")], capture_output=True,
                       text=True, env=clean_env(PYTHON=str(fake), BUILD=str(build)))
    assert p.stdout.splitlines()[-1] == "TOTAL: %d passed, %d failed" % (passed, failed), p.stdout
