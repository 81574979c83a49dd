"""The Python example runs (so that it never rots)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "python" / "frames.py"


def test_frames_example_demo_runs_and_checks_every_frame():
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), "--frames", "12", "--frame-bytes", str(1 << 16)],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "producer: sent 12 frames of 65536 bytes" in out.stdout
    assert "consumer: 12/12 frames checked" in out.stdout


def test_frames_example_over_a_socket_path(sock_path):
    args = ["--frames", "8", "--frame-bytes", "4096"]
    prod = subprocess.Popen([sys.executable, str(EXAMPLE), "produce", str(sock_path), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cons = subprocess.run([sys.executable, str(EXAMPLE), "consume", str(sock_path), *args],
                          capture_output=True, text=True, timeout=120)
    p_out, p_err = prod.communicate(timeout=60)
    assert prod.returncode == 0 and cons.returncode == 0, (p_err, cons.stderr)
    assert "consumer: 8/8 frames checked" in cons.stdout
