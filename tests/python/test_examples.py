# SPDX-License-Identifier: Apache-2.0 OR MIT
"""The Python examples run (so that they never rot)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

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


STREAMS = REPO_ROOT / "examples" / "python" / "streams.py"


def test_streams_example_three_subscribers_one_killed_the_others_get_every_frame():
    runtime = tempfile.mkdtemp(prefix="pxrt")  # short: socket paths must fit 107 bytes
    os.chmod(runtime, 0o700)
    env = {**os.environ, "PARALLAX_RUNTIME_DIR": runtime}
    try:
        out = subprocess.run([sys.executable, str(STREAMS), "--frames", "30", "--side", "64"],
                             capture_output=True, text=True, timeout=120, env=env)
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    assert out.returncode == 0, out.stderr
    assert "subscriber 3: killed with SIGKILL after frame 14" in out.stdout
    assert "subscriber 1: 30/30 frames, 0 missed, every pixel checked" in out.stdout
    assert "subscriber 2: 30/30 frames, 0 missed, every pixel checked" in out.stdout
    assert ("publisher: 30 frames published, 3 joined, 1 departed, 0 dropped; "
            "16/16 slots back in the pool") in out.stdout
