# SPDX-License-Identifier: Apache-2.0 OR MIT
"""The examples type-check under ``mypy --strict`` against the installed package's stubs
(run.sh installs mypy), so the stubs describe what the examples really do."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO_ROOT

EXAMPLES = sorted(str(p) for p in (REPO_ROOT / "examples" / "python").glob("*.py"))


def test_examples_pass_mypy_strict(tmp_path):
    pytest.importorskip("mypy", reason="mypy is not installed (tests/python/run.sh installs it)")
    assert EXAMPLES
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--cache-dir", str(tmp_path / "cache"), *EXAMPLES],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_strict_catches_a_misuse_of_the_api(tmp_path):
    # The check above could pass vacuously if parallax resolved to Any; it must not.
    pytest.importorskip("mypy", reason="mypy is not installed (tests/python/run.sh installs it)")
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import parallax as px\n\n\n"
        "async def f(ch: px.Channel) -> None:\n"
        "    buf: px.Buffer = await ch.recv_async()\n"
        "    n: str = len(buf)\n"
        "    ch.recv(timeout='soon')\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--cache-dir", str(tmp_path / "cache"), str(bad)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert out.returncode == 1, out.stdout
    assert "bad.py:6" in out.stdout and "bad.py:7" in out.stdout, out.stdout
