# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Views never outlive their memory: not after close(), not across gc, not at interpreter exit."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import parallax as px

from conftest import wait_until


def test_segment_close_with_a_view_raises_and_the_view_stays_valid():
    seg = px.SharedMemorySegment("v", 4096)
    arr = np.asarray(seg)
    arr[:] = 3
    with pytest.raises(BufferError):
        seg.close()
    with pytest.raises(BufferError):
        with seg:
            pass
    assert not seg.closed and (arr == 3).all()
    del arr
    seg.close()
    assert seg.closed


def test_views_count_independently():
    buf = px.Buffer(px.HeapSegment(64))
    a, b = memoryview(buf), np.frombuffer(buf, np.uint8)
    a.release()
    with pytest.raises(BufferError, match="1 exported"):
        buf.release()
    del b
    buf.release()


def test_a_view_keeps_its_owner_alive_when_every_name_is_gone():
    def make():
        pool = px.MemoryPool(px.HeapSegment(1 << 16), 1 << 12)
        return np.asarray(pool.loan().into_buffer(100)), pool

    arr, pool = make()
    arr[:] = 9
    import gc

    gc.collect()
    assert (arr == 9).all() and pool.available == 15
    del arr
    gc.collect()
    assert pool.available == 16


def test_failed_getbuffer_does_not_count_an_export(tmp_path):
    path = tmp_path / "ro"
    path.write_bytes(bytes(64))
    seg = px.MappedFileSegment.open_readonly(path)
    for _ in range(3):
        with pytest.raises(TypeError, match="read-write"):
            io.BytesIO(b"x").readinto(seg)  # asks for a writable buffer: refused
    seg.close()  # no export was left behind
    assert seg.closed


EXIT_SCRIPT = textwrap.dedent(
    """
    import numpy as np, parallax as px
    seg = px.SharedMemorySegment("exit", 1 << 20)
    pool = px.MemoryPool(seg, 1 << 16)
    # Views in globals, in a reference cycle, in a closure, over every kind of object,
    # all left for interpreter shutdown to tear down in whatever order it picks.
    first = pool.loan()
    slot_view = np.asarray(first)
    buf_view = np.frombuffer(pool.loan().into_buffer(1000), np.uint16)
    seg_view = memoryview(px.HeapSegment(4096))
    cycle = [np.asarray(pool.loan())]
    cycle.append(cycle)
    slot_view[:] = 1
    # The first slot loaned (all ones; which one the pool picks is its business) covers the
    # 7 segment bytes 5 into it: the closure sums 7 ones.
    at = first.index * (1 << 16) + 5
    keep = lambda v=np.frombuffer(px.Buffer(seg, at, 7), np.uint8): v.sum()
    try:
        a, b = px.Channel.pair()
        a.send(pool.loan().into_buffer(64))
        received_view = np.frombuffer(b.recv(timeout=5), np.uint8)
    except px.Unsupported:
        pass
    import atexit
    atexit.register(lambda: print("atexit sum", int(slot_view.sum()), int(keep())))
    del seg, pool
    print("done")
    """
)


def test_interpreter_exit_with_live_views_is_clean():
    out = subprocess.run(
        [sys.executable, "-X", "dev", "-c", EXIT_SCRIPT],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["done", "atexit sum 65536 7"]
    assert "Error" not in out.stderr and "Warning" not in out.stderr, out.stderr


def test_no_leak_across_many_frames_and_errors():
    import gc

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    pool = px.MemoryPool(px.SharedMemorySegment("leak", 1 << 20), 4096)
    a, b = px.Channel.pair()

    def batch(n):
        for i in range(n):
            slot = pool.loan()
            np.asarray(slot)[0] = 1
            buf = slot.into_buffer(100, px.Metadata(sequence=i, user=b"x" * 10))
            clone = buf.clone()
            part = clone.slice(1, 10)
            part.metadata = part.metadata
            a.send(buf)
            got = b.recv(timeout=5)
            for obj in (got, buf, clone, part):
                obj.release()
            with pytest.raises(px.InvalidArgument):
                px.HeapSegment(0)

    batch(5000)  # warm-up: allocator pools, caches
    gc.collect()
    before = rss()
    batch(20000)
    gc.collect()
    assert rss() - before < (1 << 20)
    assert wait_until(lambda: pool.available == pool.capacity)
    a.close()
    b.close()
