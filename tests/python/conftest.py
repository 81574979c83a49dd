# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Shared helpers for the parallax Python suite.

The suite tests the *installed* package (tests/python/run.sh installs it and runs pytest
from a directory where the source tree's python/ folder is not importable).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import parallax as px

REPO_ROOT = Path(__file__).resolve().parents[2]


def address(obj) -> int:
    """Address of the first byte an object exports through the buffer protocol."""
    return np.frombuffer(obj, dtype=np.uint8).ctypes.data


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def hugepages_reserved() -> int:
    try:
        return int(Path("/proc/sys/vm/nr_hugepages").read_text())
    except OSError:
        return 0


@pytest.fixture
def shm_pool():
    """A pool of 8 slots of 4 KiB over shared memory (channels can carry its buffers)."""
    seg = px.SharedMemorySegment("pytest", 8 * 4096)
    pool = px.MemoryPool(seg, 4096)
    seg.close()  # the pool keeps the segment alive
    yield pool
    pool.close()


@pytest.fixture
def sock_path(tmp_path):
    # Unix socket paths are limited to 107 bytes; pytest's tmp_path can be longer.
    path = tmp_path / "px.sock"
    if len(os.fsencode(path)) <= 100:
        yield path
        return
    short = Path(tempfile.mkdtemp(prefix="pxs"))
    yield short / "px.sock"
    shutil.rmtree(short, ignore_errors=True)
