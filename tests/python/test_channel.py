# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Channels inside one process: zero-copy send/recv, metadata, slot return, timeouts, misuse."""

from __future__ import annotations

import io
import os
import select
import socket
import threading
import time

import numpy as np
import pytest

import parallax as px

from conftest import address, wait_until


@pytest.fixture
def pair():
    a, b = px.Channel.pair()
    yield a, b
    a.close()
    b.close()


def test_send_recv_is_zero_copy_read_only_with_metadata_intact(pair, shm_pool):
    a, b = pair
    slot = shm_pool.loan()
    np.asarray(slot)[:100] = np.arange(100)
    meta = px.Metadata(sequence=7, pts_ns=123, dts_ns=None, duration_ns=40,
                       offset=1, offset_end=2, flags=0xF00D, user=b"frame")
    buf = slot.into_buffer(100, meta)
    a.send(buf)
    got = b.recv(timeout=5)
    assert len(got) == 100 and got.readonly
    assert got.metadata == meta
    assert bytes(got) == bytes(range(100))
    # Same memory, not a copy: a write by the sender shows in the receiver's buffer.
    np.asarray(buf)[0] = 200
    assert np.frombuffer(got, np.uint8)[0] == 200
    arr = np.frombuffer(got, np.uint8)
    assert not arr.flags.writeable
    with pytest.raises(TypeError, match="read-write"):
        io.BytesIO(b"x").readinto(got)
    assert isinstance(got.segment, px.SharedMemorySegment) and got.segment.readonly
    del arr


def test_slot_returns_to_the_sender_pool_when_both_sides_release(pair, shm_pool):
    a, b = pair
    buf = shm_pool.loan().into_buffer(10)
    a.send(buf)
    got = b.recv(timeout=5)
    buf.release()
    assert shm_pool.available == shm_pool.capacity - 1  # the receiver still holds it
    view = memoryview(got)
    with pytest.raises(BufferError):
        got.release()
    view.release()
    got.release()
    assert wait_until(lambda: shm_pool.available == shm_pool.capacity)
    st = a.stats()
    assert st.buffers_sent == 1 and st.segments_registered == 1
    assert st.returns_accepted == 1 and st.slots_lent == 0 and st.returns_refused == 0
    assert b.stats().buffers_received == 1
    assert a.stats().peer_pid == os.getpid()


def test_many_frames_register_the_segment_once(pair, shm_pool):
    a, b = pair
    for seq in range(50):
        with shm_pool.loan(timeout=5) as slot:
            np.asarray(slot)[:] = seq & 0xFF
            buf = slot.into_buffer(metadata=px.Metadata(sequence=seq))
        a.send(buf)
        buf.release()
        got = b.recv(timeout=5)
        assert got.metadata.sequence == seq
        assert np.frombuffer(got, np.uint8).min() == seq & 0xFF
        got.release()
    assert a.stats().segments_registered == 1
    assert a.stats().buffers_sent == 50


def test_clones_and_slices_travel(pair, shm_pool):
    a, b = pair
    buf = shm_pool.loan().into_buffer(4096)
    np.asarray(buf)[:] = np.arange(4096) & 0xFF
    part = buf.slice(1000, 24)
    a.send(part)
    got = b.recv(timeout=5)
    assert got.offset == part.offset and bytes(got) == bytes(part)


def test_plain_shared_segment_buffers_travel(pair):
    a, b = pair
    seg = px.SharedMemorySegment("plain", 4096)
    np.asarray(seg)[:5] = 5
    a.send(px.Buffer(seg, 0, 5))
    assert bytes(b.recv(timeout=5)) == b"\x05" * 5


def test_heap_and_file_buffers_are_unsupported(pair, tmp_path):
    a, _ = pair
    with pytest.raises(px.Unsupported):
        a.send(px.Buffer(px.HeapSegment(64)))
    with pytest.raises(px.Unsupported):
        a.send(px.Buffer(px.MappedFileSegment.create(tmp_path / "f", 64)))


def test_recv_timeouts(pair):
    _, b = pair
    with pytest.raises(px.WouldBlock) as info:
        b.recv(timeout=0)
    assert isinstance(info.value, BlockingIOError)
    t0 = time.monotonic()
    with pytest.raises(px.Timeout) as info:
        b.recv(timeout=0.05)
    assert isinstance(info.value, TimeoutError)
    assert time.monotonic() - t0 >= 0.04
    with pytest.raises(px.InvalidArgument, match="NaN"):
        b.recv(timeout=float("nan"))


def test_closed_peer_raises_channel_closed_and_ends_iteration(shm_pool):
    a, b = px.Channel.pair()
    for seq in range(3):
        buf = shm_pool.loan().into_buffer(8, px.Metadata(sequence=seq))
        a.send(buf)
        buf.release()
    a.close()
    assert [buf.metadata.sequence for buf in b] == [0, 1, 2]
    with pytest.raises(px.ChannelClosed) as info:
        b.recv(timeout=1)
    assert isinstance(info.value, ConnectionError)
    b.close()


def test_send_to_a_closed_peer(shm_pool):
    a, b = px.Channel.pair()
    b.close()
    buf = shm_pool.loan().into_buffer(8)
    with pytest.raises((px.ChannelClosed, px.IOFailure)):
        for _ in range(3):  # the first send may be buffered by the kernel
            a.send(buf)
    a.close()


def test_closed_channel_refuses_use(shm_pool):
    a, b = px.Channel.pair()
    with a:
        pass
    assert a.closed
    a.close()
    buf = shm_pool.loan().into_buffer(8)
    for call in (lambda: a.send(buf), lambda: a.recv(0), lambda: a.fileno(), lambda: a.stats()):
        with pytest.raises(px.InvalidArgument, match="channel is closed"):
            call()
    released = shm_pool.loan().into_buffer(8)
    released.release()
    with pytest.raises(px.InvalidArgument, match="buffer was released"):
        b.send(released)
    with pytest.raises(TypeError):
        b.send(b"bytes are not a Buffer")
    b.close()


def test_fileno_is_pollable(pair, shm_pool):
    a, b = pair
    fd = b.fileno()
    assert fd >= 0
    assert select.select([fd], [], [], 0)[0] == []
    buf = shm_pool.loan().into_buffer(8)
    a.send(buf)
    assert select.select([fd], [], [], 5)[0] == [fd]
    b.recv(timeout=0).release()


def test_recv_releases_the_gil_and_close_from_another_thread_is_deferred(shm_pool):
    a, b = px.Channel.pair()
    results = []

    def reader():
        results.append(b.recv(timeout=10))

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.1)
    ticks = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.05:  # this thread keeps running Python meanwhile
        ticks += 1
    assert ticks > 1000
    b.close()  # the reader is inside recv: the handle stays alive until it returns
    assert b.closed
    buf = shm_pool.loan().into_buffer(8, px.Metadata(sequence=99))
    a.send(buf)
    t.join(10)
    assert not t.is_alive()
    assert results and results[0].metadata.sequence == 99
    with pytest.raises(px.InvalidArgument, match="channel is closed"):
        b.recv(0)
    a.close()


def test_from_fd_with_a_socketpair(shm_pool):
    s1, s2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    results = {}

    def other_end():  # the handshake needs both ends at once
        results["b"] = px.Channel.from_fd(s2.detach())

    t = threading.Thread(target=other_end)
    t.start()
    a = px.Channel.from_fd(s1.detach())
    t.join(10)
    b = results["b"]
    buf = shm_pool.loan().into_buffer(16, px.Metadata(sequence=5))
    a.send(buf)
    assert b.recv(timeout=5).metadata.sequence == 5
    a.close()
    b.close()


def test_from_fd_bad_input():
    with pytest.raises(px.InvalidArgument, match="not a file descriptor"):
        px.Channel.from_fd(-1)
    with pytest.raises(TypeError, match="detach"):
        px.Channel.from_fd(socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET))
    r, w = os.pipe()
    os.close(w)
    with pytest.raises((px.InvalidArgument, px.IOFailure, px.ProtocolError)):
        px.Channel.from_fd(r)  # not a socket (and the fd is taken, also on failure)
    with pytest.raises(OSError):
        os.fstat(r)


def test_from_fd_with_a_peer_speaking_garbage_is_protocol_error():
    s1, s2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s2.send(b"\xff" * 64)  # not a handshake
    with pytest.raises((px.ProtocolError, px.ChannelClosed)):
        px.Channel.from_fd(s1.detach())
    s2.close()


def test_listener_connect_accept(sock_path, shm_pool):
    with px.Listener(sock_path) as listener:
        assert listener.path == str(sock_path)
        assert os.stat(sock_path).st_mode & 0o777 == 0o600
        assert listener.fileno() >= 0
        with pytest.raises(px.WouldBlock):
            listener.accept(timeout=0)
        with pytest.raises(px.Timeout):
            listener.accept(timeout=0.05)
        result = {}
        t = threading.Thread(target=lambda: result.update(ch=px.Channel.connect(sock_path, 5)))
        t.start()
        server = listener.accept(timeout=5)
        t.join(10)
        client = result["ch"]
        buf = shm_pool.loan().into_buffer(32, px.Metadata(sequence=12))
        server.send(buf)
        assert client.recv(timeout=5).metadata.sequence == 12
        client.close()
        server.close()
    assert not sock_path.exists()  # close() removes the socket file
    with pytest.raises(px.InvalidArgument, match="listener is closed"):
        listener.accept(0)


def test_listener_errors(sock_path, tmp_path):
    with px.Listener(sock_path):
        with pytest.raises(px.Busy):
            px.Listener(sock_path)  # a live listener owns the path
    regular = tmp_path / "file"
    regular.write_text("x")
    with pytest.raises(px.InvalidArgument):
        px.Listener(regular)  # never replaces something that is not a socket
    with pytest.raises(px.InvalidArgument):
        px.Listener("/tmp/" + "x" * 200)  # longer than sun_path
    with pytest.raises((px.IOFailure, px.PermissionDenied, px.InvalidArgument)):
        px.Listener("/nonexistent-dir/px.sock")


def test_connect_errors(sock_path):
    with pytest.raises((px.Timeout, px.IOFailure, px.ChannelClosed)):
        px.Channel.connect(sock_path, timeout=0.1)  # nobody listens
    with pytest.raises(px.InvalidArgument, match="NUL"):
        px.Channel.connect("a\0b", timeout=0.1)


def test_stats_repr(pair):
    a, _ = pair
    text = repr(a.stats())
    assert text.startswith("ChannelStats(") and "peer_pid=" in text


def test_send_timeout_and_spin_settings(pair, shm_pool):
    a, b = pair
    a.set_spin(0)  # sleep at once
    b.set_spin(None)  # never sleep
    b.set_spin(px.SPIN_DEFAULT)
    assert px.SPIN_DEFAULT == pytest.approx(20e-6)
    with pytest.raises(px.InvalidArgument, match="NaN"):
        b.set_spin(float("nan"))
    buf = shm_pool.loan().into_buffer(8, px.Metadata(sequence=1))
    a.send(buf, timeout=5)
    a.send(buf, timeout=0)  # room in the ring: no wait needed
    assert b.recv(timeout=5).metadata.sequence == 1
    assert b.recv(timeout=5).metadata.sequence == 1


def test_send_to_a_peer_that_never_reads_times_out(pair):
    a, _ = pair
    seg = px.SharedMemorySegment("flood", 4096)
    buf = px.Buffer(seg, 0, 1)
    with pytest.raises((px.Timeout, px.WouldBlock)):
        for _ in range(1_000_000):  # bounded: the ring fills long before this
            a.send(buf, timeout=0.01)
