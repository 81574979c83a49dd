# SPDX-License-Identifier: Apache-2.0 OR MIT
"""multiprocessing under spawn and forkserver: a Channel.pair() end, a Subscriber and a
SharedMemorySegment passed in a Process's args (or through a Queue) work in the child, over
the same memory; plain pickle refuses them with a TypeError that says what to do."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import parallax as px

FRAME = 8 << 20  # 8 MiB frames
METHODS = ["spawn", "forkserver"]


def fill(slot, k: int) -> None:
    arr = np.asarray(slot)
    arr[:4096] = k & 0xFF
    arr[-4096:] = (k + 1) & 0xFF


def check(buf, k: int) -> bool:
    arr = np.asarray(buf)
    return bool(np.all(arr[:4096] == (k & 0xFF)) and np.all(arr[-4096:] == ((k + 1) & 0xFF)))


def _receive_frames(ch: px.Channel, frames: int, report) -> None:
    ok, readonly, seqs = True, True, []
    for buf in ch:  # until the parent closes its end
        ok &= len(buf) == FRAME and check(buf, buf.metadata.sequence)
        readonly &= buf.readonly and not np.asarray(buf).flags.writeable
        seqs.append(buf.metadata.sequence)
        buf.release()
    report.send({"ok": ok, "readonly": readonly, "seqs": seqs, "pid": os.getpid()})


@pytest.mark.parametrize("method", METHODS)
def test_a_pair_end_passed_to_a_child_carries_8_mib_frames_and_slots_come_back(method):
    ctx = mp.get_context(method)
    frames = 24
    pool = px.MemoryPool(px.SharedMemorySegment("mp", 3 * FRAME), FRAME)  # 3 slots: returns
    mine, theirs = px.Channel.pair()
    report_r, report_w = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_receive_frames, args=(theirs, frames, report_w))
    child.start()
    report_w.close()
    assert theirs.closed  # it lives in the child now
    assert not mine.closed
    for k in range(frames):
        slot = pool.loan(timeout=20)  # only comes back once the child released frame k - 3
        fill(slot, k)
        with slot.into_buffer(metadata=px.Metadata(sequence=k)) as buf:
            mine.send(buf, timeout=20)
    assert mine.stats().peer_pid == child.pid
    mine.close()
    result = report_r.recv()
    child.join(20)
    assert child.exitcode == 0
    assert result == {"ok": True, "readonly": True, "seqs": list(range(frames)),
                      "pid": child.pid}
    assert pool.available == pool.capacity


def _echo(ch: px.Channel) -> None:
    # The child answers on the same channel: both directions cross the handover.
    pool = px.MemoryPool(px.SharedMemorySegment("echo", 4 * 4096), 4096)
    with ch.recv(timeout=20) as got:
        n = bytes(got)[:5]
    slot = pool.loan(timeout=5)
    memoryview(slot)[:5] = n.upper()
    ch.send(slot.into_buffer(5), timeout=5)
    ch.recv(timeout=20)  # until the parent closes


@pytest.mark.parametrize("method", METHODS)
def test_the_kept_end_talks_both_ways_with_the_child(method):
    ctx = mp.get_context(method)
    pool = px.MemoryPool(px.SharedMemorySegment("echo", 4 * 4096), 4096)
    child_end, kept = px.Channel.pair()  # either end may be the one passed
    child = ctx.Process(target=_echo, args=(child_end,))
    child.start()
    slot = pool.loan(timeout=5)
    memoryview(slot)[:5] = b"hello"
    kept.send(slot.into_buffer(5), timeout=20)
    with kept.recv(timeout=20) as answer:
        assert bytes(answer) == b"HELLO"
    kept.close()
    child.join(20)
    assert child.exitcode == 1  # its last recv saw ChannelClosed


def _write_marker(seg: px.SharedMemorySegment, report) -> None:
    view = np.asarray(seg)
    report.send(bytes(view[:5]))
    view[5:10] = np.frombuffer(b"child", np.uint8)  # the parent must see it: same memory
    del view
    seg.close()


@pytest.mark.parametrize("method", METHODS)
def test_a_segment_passed_to_a_child_maps_the_same_memory(method):
    ctx = mp.get_context(method)
    seg = px.SharedMemorySegment("marker", 4096)
    memoryview(seg)[:5] = b"paren"
    report_r, report_w = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_write_marker, args=(seg, report_w))
    child.start()
    assert report_r.recv() == b"paren"
    child.join(20)
    assert child.exitcode == 0
    assert seg.read(5, 5) == b"child"
    assert not seg.closed  # a segment is shared, not moved


def _queue_consumer(q, report) -> None:
    seg = q.get(timeout=20)  # through the resource sharer, not at the child's start
    report.send((seg.readonly, seg.read(0, 4)))


def test_a_received_read_only_segment_passes_through_a_queue_read_only():
    ctx = mp.get_context("spawn")
    pool = px.MemoryPool(px.SharedMemorySegment("q", 2 * 4096), 4096)
    a, b = px.Channel.pair()
    slot = pool.loan(timeout=5)
    memoryview(slot)[:4] = b"qseg"
    a.send(slot.into_buffer(4))
    received = b.recv(timeout=5).segment  # mapped read-only in this "receiver"
    assert received.readonly
    q, (report_r, report_w) = ctx.Queue(), ctx.Pipe(duplex=False)
    child = ctx.Process(target=_queue_consumer, args=(q, report_w))
    child.start()
    q.put(received)
    assert report_r.recv() == (True, b"qseg")
    child.join(20)
    assert child.exitcode == 0


def _subscribe_and_count(sub: px.Subscriber, report) -> None:
    seqs = [buf.metadata.sequence for buf in sub]  # until the publisher is gone
    report.send(seqs)


@pytest.mark.parametrize("method", METHODS)
def test_a_subscriber_passed_to_a_child_moves_there(method, monkeypatch):
    runtime = tempfile.mkdtemp(prefix="pxmp")
    os.chmod(runtime, 0o700)
    monkeypatch.setenv("PARALLAX_RUNTIME_DIR", runtime)  # inherited by the child
    ctx = mp.get_context(method)
    pool = px.MemoryPool(px.SharedMemorySegment("sub", 8 * 4096), 4096)
    try:
        with px.Publisher("mp-cam", history=4, max_in_flight=8) as pub:
            got: list = []
            import threading

            t = threading.Thread(target=lambda: got.append(px.Subscriber("mp-cam", timeout=10)))
            t.start()
            while t.is_alive():
                pub.poll(0.01)
            sub = got[0]
            for k in range(4):  # the history the child's new subscription starts with
                with pool.loan(timeout=5).into_buffer(metadata=px.Metadata(sequence=k)) as b:
                    pub.publish(b)
            report_r, report_w = ctx.Pipe(duplex=False)
            child = ctx.Process(target=_subscribe_and_count, args=(sub, report_w))
            child.start()
            assert sub.closed  # this process's subscriber left the stream
            deadline = time.monotonic() + 30
            while pub.stats().joined < 2:  # the child's subscription
                assert time.monotonic() < deadline
                pub.poll(0.01)
            for k in range(4, 8):
                with pool.loan(timeout=5).into_buffer(metadata=px.Metadata(sequence=k)) as b:
                    pub.publish(b)
        assert report_r.recv() == list(range(8))
        child.join(20)
        assert child.exitcode == 0
    finally:
        for f in Path(runtime).iterdir():
            f.unlink()
        os.rmdir(runtime)


def test_plain_pickle_refuses_with_a_clear_type_error():
    a, b = px.Channel.pair()
    seg = px.SharedMemorySegment("p", 4096)
    for obj in (a, seg):
        with pytest.raises(TypeError, match="multiprocessing.Process"):
            pickle.dumps(obj)
    with pytest.raises(TypeError, match="cannot be shared"):
        pickle.dumps(px.HeapSegment(4096))
    assert not a.closed and not b.closed  # nothing happened to them


def test_only_an_unused_pair_end_can_move(sock_path):
    ctx = mp.get_context("spawn")
    pool = px.MemoryPool(px.SharedMemorySegment("used", 2 * 4096), 4096)
    a, b = px.Channel.pair()
    a.send(pool.loan(timeout=5).into_buffer(4))
    with pytest.raises(px.InvalidArgument, match="after either end has sent or received"):
        ctx.Process(target=_echo, args=(b,)).start()
    assert not a.closed and not b.closed
    with px.Listener(sock_path) as listener:
        import threading

        got: list = []
        t = threading.Thread(target=lambda: got.append(listener.accept(timeout=10)))
        t.start()
        c = px.Channel.connect(sock_path, timeout=10)
        t.join()
        with pytest.raises(TypeError, match="Channel.connect"):
            ctx.Process(target=_echo, args=(c,)).start()


def test_a_kept_end_closed_before_the_child_came_does_not_hang():
    from parallax import _reduction
    from multiprocessing.reduction import ForkingPickler

    a, b = px.Channel.pair()
    data = ForkingPickler.dumps(b)  # through the resource sharer: nobody unpickles it
    assert b.closed and not a.closed and "handshaking" in repr(a)
    t0 = time.monotonic()
    a.close()
    assert a.closed and time.monotonic() - t0 < 1.0
    del data, _reduction
