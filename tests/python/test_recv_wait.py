# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Channel.recv() after a recv that had to wait: it then goes straight to the blocking call,
without the poll it makes first with the GIL held (channel.cpp, recv_buffer; a poll that finds
nothing costs a system call, and a caller that waits for answers would pay it every time).
Whichever way a recv goes, it must answer the same: buffers in order, the GIL released while it
waits, Timeout, ChannelClosed."""

from __future__ import annotations

import threading
import time

import parallax as px


def make_waiting(rx: px.Channel) -> None:
    """One recv that waits (finds nothing, times out): the next ones skip the poll."""
    t0 = time.monotonic()
    try:
        rx.recv(timeout=0.01)
    except px.Timeout:
        pass
    else:
        raise AssertionError("recv on an empty channel returned")
    assert time.monotonic() - t0 >= 0.009


def send_bytes(tx: px.Channel, pool: px.MemoryPool, payload: bytes) -> None:
    slot = pool.loan(timeout=1)
    with memoryview(slot) as view:
        view[: len(payload)] = payload
    buf = slot.into_buffer(len(payload))
    tx.send(buf)
    buf.release()


def test_ping_pong_answers_come_from_another_thread_while_recv_waits():
    # The answering thread needs the GIL to send: a recv that skipped its poll and then waited
    # with the GIL held would never get its answer (Timeout below).
    a, b = px.Channel.pair()
    pool_a = px.MemoryPool(px.SharedMemorySegment("recv_wait_a", 4 * 4096), 4096)
    pool_b = px.MemoryPool(px.SharedMemorySegment("recv_wait_b", 4 * 4096), 4096)
    rounds = 100  # several times the 16 calls between two polls

    def echo():
        for _ in range(rounds):
            with b.recv(timeout=5) as got:
                data = bytes(memoryview(got))
            time.sleep(0.0002)  # so that the other side is surely waiting
            send_bytes(b, pool_b, data)

    t = threading.Thread(target=echo)
    t.start()
    try:
        for i in range(rounds):
            send_bytes(a, pool_a, i.to_bytes(4, "little"))
            with a.recv(timeout=5) as back:
                assert int.from_bytes(memoryview(back), "little") == i
    finally:
        t.join()
    a.close()
    b.close()


def test_buffers_already_there_arrive_in_order_after_a_wait():
    a, b = px.Channel.pair()
    pool = px.MemoryPool(px.SharedMemorySegment("recv_wait_order", 64 * 256), 256)
    make_waiting(b)
    for i in range(40):  # the skipped polls and the poll after them
        send_bytes(a, pool, bytes([i]))
    t0 = time.monotonic()
    for i in range(40):
        with b.recv(timeout=5) as got:
            assert bytes(memoryview(got)) == bytes([i])
    assert time.monotonic() - t0 < 1.0  # taken at once, not after some wait
    a.close()
    b.close()


def test_timeout_and_would_block_after_a_wait():
    a, b = px.Channel.pair()
    make_waiting(b)
    t0 = time.monotonic()
    try:
        b.recv(timeout=0.05)
    except px.Timeout:
        pass
    else:
        raise AssertionError("recv on an empty channel returned")
    assert 0.045 <= time.monotonic() - t0 < 2.0
    try:  # timeout 0 always polls: WouldBlock at once
        b.recv(timeout=0)
    except px.WouldBlock:
        pass
    else:
        raise AssertionError("recv(timeout=0) on an empty channel returned")
    a.close()
    b.close()


def test_peer_close_is_reported_after_a_wait():
    a, b = px.Channel.pair()
    pool = px.MemoryPool(px.SharedMemorySegment("recv_wait_close", 4 * 256), 256)
    make_waiting(b)
    send_bytes(a, pool, b"last")
    a.close()
    with b.recv(timeout=5) as got:  # sent before the close: still delivered
        assert bytes(memoryview(got)) == b"last"
    t0 = time.monotonic()
    try:
        b.recv(timeout=5)
    except px.ChannelClosed:
        pass
    else:
        raise AssertionError("recv after the peer closed returned a buffer")
    assert time.monotonic() - t0 < 1.0
    b.close()


def test_a_busy_poll_notices_a_killed_peer():
    # recv(timeout=0) on an empty ring reads the socket at most every 20 us (recv_side.cpp,
    # socket_due), and a peer killed with SIGKILL sets no flag of its own: its death must still
    # end the poll loop with ChannelClosed, soon. (The peer is another process that uses its
    # end, so that only its exit closes the socket.)
    import os
    import signal
    import socket

    s0, s1 = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:  # the peer: greets, sends one buffer, then waits to be killed
        try:
            s0.close()
            tx = px.Channel.from_fd(s1.detach())
            pool = px.MemoryPool(px.SharedMemorySegment("recv_wait_kill", 4 * 256), 256)
            send_bytes(tx, pool, b"alive")
            time.sleep(60)
        finally:
            os._exit(0)
    s1.close()
    rx = px.Channel.from_fd(s0.detach())
    try:
        with rx.recv(timeout=10) as got:
            assert bytes(memoryview(got)) == b"alive"
        polls = 0
        for _ in range(1000):  # a busy poll, as a spinning consumer does
            try:
                rx.recv(timeout=0)
            except px.WouldBlock:
                polls += 1
        assert polls == 1000
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        t0 = time.monotonic()
        while True:
            try:
                rx.recv(timeout=0)
            except px.WouldBlock:
                assert time.monotonic() - t0 < 1.0, "a dead peer went unnoticed for 1 s"
            except px.ChannelClosed:
                break
        # noticed within a few of the socket's 20 us looks (or the pidfd's 1 ms), not seconds
        assert time.monotonic() - t0 < 0.25
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        rx.close()
