# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Real processes: fork with Channel.pair, subprocesses over a socket path, and a C producer."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import parallax as px

from conftest import REPO_ROOT, wait_until

PEER = str(Path(__file__).with_name("peer.py"))
FORK = mp.get_context("fork")


def fill(slot, k: int) -> None:
    """Frame k of frames.h: byte j is (k + j) & 0xff, written in place."""
    arr = np.asarray(slot)
    arr[:] = np.arange(len(arr), dtype=np.uint64).astype(np.uint8) + np.uint8(k & 0xFF)


def _child_consumer(mine, theirs, frames, result):
    theirs.close()  # the end this process does not use
    sums, seqs, readonly = [], [], True
    for buf in mine:  # until the parent closes its end
        arr = np.frombuffer(buf, np.uint8)
        readonly &= not arr.flags.writeable
        sums.append(int(arr.astype(np.uint64).sum()))
        seqs.append(buf.metadata.sequence)
        del arr
        buf.release()
    result.send({"sums": sums, "seqs": seqs, "readonly": readonly, "frames": frames})


def test_fork_parent_sends_frames_child_sees_the_same_bytes_slots_come_back():
    frames, size = 20, 64 << 10
    pool = px.MemoryPool(px.SharedMemorySegment("fork", 2 * size), size)  # 2 slots: backpressure
    a, b = px.Channel.pair()
    parent_conn, child_conn = FORK.Pipe()
    child = FORK.Process(target=_child_consumer, args=(b, a, frames, child_conn))
    child.start()
    b.close()
    expected = []
    for k in range(frames):
        slot = pool.loan(timeout=10)  # waits for the child to hand a slot back
        fill(slot, k)
        expected.append(int(np.asarray(slot).astype(np.uint64).sum()))
        buf = slot.into_buffer(metadata=px.Metadata(sequence=k))
        a.send(buf)
        buf.release()
    stats = a.stats()
    a.close()
    result = parent_conn.recv()
    child.join(10)
    assert child.exitcode == 0
    assert result["seqs"] == list(range(frames))
    assert result["sums"] == expected
    assert result["readonly"]
    assert stats.buffers_sent == frames and stats.segments_registered == 1
    assert wait_until(lambda: pool.available == pool.capacity)


def _child_hoarder(mine, theirs, count):
    theirs.close()
    held = [mine.recv(timeout=10) for _ in range(count)]
    os.kill(os.getpid(), signal.SIGKILL)  # dies holding every buffer
    del held


def test_slots_held_by_a_killed_peer_are_reclaimed():
    pool = px.MemoryPool(px.SharedMemorySegment("reclaim", 4 * 4096), 4096)
    a, b = px.Channel.pair()
    child = FORK.Process(target=_child_hoarder, args=(b, a, 3))
    child.start()
    b.close()
    for k in range(3):
        buf = pool.loan().into_buffer(16, px.Metadata(sequence=k))
        a.send(buf)
        buf.release()
    child.join(10)
    assert child.exitcode == -signal.SIGKILL
    assert wait_until(lambda: pool.available == pool.capacity)
    assert a.stats().slots_reclaimed == 3
    a.close()


def _child_producer(mine, theirs, frames, size):
    theirs.close()
    pool = px.MemoryPool(px.SharedMemorySegment("child", 2 * size), size)
    for k in range(frames):
        slot = pool.loan(timeout=10)
        fill(slot, k)
        buf = slot.into_buffer(metadata=px.Metadata(sequence=k, pts_ns=k * 1000, user=b"child"))
        mine.send(buf)
        buf.release()
    # Wait for the parent to hang up so that every slot could come back first.
    try:
        mine.recv(timeout=30)
    except px.ChannelClosed:
        pass
    os._exit(0 if pool.available == pool.capacity else 3)


def test_fork_child_produces_parent_receives_zero_copy_numpy():
    frames, size = 10, 1 << 16
    a, b = px.Channel.pair()
    child = FORK.Process(target=_child_producer, args=(b, a, frames, size))
    child.start()
    b.close()
    ramp = np.arange(size, dtype=np.uint64).astype(np.uint8)
    for k in range(frames):
        buf = a.recv(timeout=10)
        md = buf.metadata
        assert (md.sequence, md.pts_ns, md.user) == (k, k * 1000, b"child")
        arr = np.frombuffer(buf, np.uint8)
        assert not arr.flags.writeable
        assert np.array_equal(arr, ramp + np.uint8(k))
        del arr
        buf.release()
    a.close()
    child.join(10)
    assert child.exitcode == 0  # the child's pool got every slot back from us


def test_subprocess_consumer_over_a_socket_path(sock_path):
    frames, size = 12, 1 << 16
    pool = px.MemoryPool(px.SharedMemorySegment("sub", 3 * size), size)
    with px.Listener(sock_path) as listener:
        proc = subprocess.Popen(
            [sys.executable, PEER, "consume", str(sock_path), str(frames), str(size)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            ch = listener.accept(timeout=30)
        except Exception:
            proc.kill()
            raise
    with ch:
        for k in range(frames):
            slot = pool.loan(timeout=10)
            fill(slot, k)
            buf = slot.into_buffer(metadata=px.Metadata(sequence=k))
            ch.send(buf)
            buf.release()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report == {"frames": frames, "first": [0, 1, 2], "bad": [], "readonly": True,
                      "sequence_ok": True}
    assert wait_until(lambda: pool.available == pool.capacity)


def find_c_producer() -> Path | None:
    candidates = []
    if os.environ.get("PX_BUILD_DIR"):
        candidates.append(Path(os.environ["PX_BUILD_DIR"]))
    candidates += [REPO_ROOT / "build" / "release", REPO_ROOT / "build" / "dev"]
    for d in candidates:
        exe = d / "examples" / "c" / "px_producer"
        if exe.is_file() and os.access(exe, os.X_OK):
            return exe
    return None


def test_c_producer_feeds_a_python_consumer(sock_path):
    producer = find_c_producer()
    if producer is None:
        pytest.skip("C producer not built: set PX_BUILD_DIR to a build dir with "
                    "examples/c/px_producer (e.g. cmake --build build/release --target px_producer)")
    frames, size = 16, 1 << 20
    prod = subprocess.Popen([str(producer), str(sock_path), str(frames), str(size)],
                            stderr=subprocess.PIPE, text=True)
    try:
        from peer import consume  # same process: the consumer under test is this interpreter

        report = consume(str(sock_path), frames, size, "connect")
    finally:
        try:
            _, err = prod.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            prod.kill()
            raise
    assert prod.returncode == 0, err
    assert report == {"frames": frames, "first": [0, 1, 2], "bad": [], "readonly": True,
                      "sequence_ok": True}


def _child_takes_one_and_exits(mine, ready):
    buf = mine.recv(timeout=10)  # `theirs` is not closed here either: copies everywhere
    ready.send(buf.metadata.sequence)
    os._exit(0)  # exits holding the buffer


def test_fork_parent_forgets_the_childs_end_the_childs_exit_still_returns_the_slot():
    """Issue 12: a parent that keeps its copy of the child's end (no b.close()) used to leave a
    dead child's slot out forever; the end now watches the child's process."""
    pool = px.MemoryPool(px.SharedMemorySegment("forgot", 2 * 4096), 4096)
    a, b = px.Channel.pair()
    parent_conn, child_conn = FORK.Pipe()
    child = FORK.Process(target=_child_takes_one_and_exits, args=(b, child_conn))
    child.start()
    slot = pool.loan()
    buf = slot.into_buffer(metadata=px.Metadata(sequence=7))
    a.send(buf)
    buf.release()
    assert parent_conn.recv() == 7
    child.join(10)
    assert child.exitcode == 0
    # b is still open in this process: only the watch on the child's process can tell.
    assert wait_until(lambda: pool.available == 2, timeout=1.0), "the dead child's slot stayed out"
    assert a.stats().slots_reclaimed == 1
    with pytest.raises(px.ChannelClosed):
        a.recv(timeout=2)
    b.close()
    a.close()
