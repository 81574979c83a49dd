# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Every call that may block releases the GIL: another thread keeps running Python meanwhile."""

from __future__ import annotations

import threading
import time

import pytest

import parallax as px


def python_progress_while(blocking_call) -> int:
    """Runs blocking_call in a thread; counts loop turns this thread makes in the meantime."""
    errors = []

    def run():
        try:
            blocking_call()
        except px.ParallaxError as e:  # the calls below end in Timeout/WouldBlock by design
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.02)  # let it get into the C call
    ticks = 0
    while t.is_alive():
        ticks += 1
    t.join()
    assert errors and isinstance(errors[0], (px.Timeout, px.WouldBlock)), errors
    return ticks


def test_loan_with_timeout():
    pool = px.MemoryPool(px.HeapSegment(4096), 4096)
    held = pool.loan()
    assert python_progress_while(lambda: pool.loan(timeout=0.3)) > 10_000
    held.release()


def test_recv():
    a, b = px.Channel.pair()
    assert python_progress_while(lambda: b.recv(timeout=0.3)) > 10_000
    a.close()
    b.close()


def test_accept(sock_path):
    with px.Listener(sock_path) as listener:
        assert python_progress_while(lambda: listener.accept(timeout=0.3)) > 10_000


def test_connect(sock_path):
    # Nobody listens: connect keeps retrying until its timeout.
    def connect():
        try:
            px.Channel.connect(sock_path, timeout=0.3)
        except (px.IOFailure, px.ChannelClosed) as e:  # if the library gives up early
            raise px.Timeout(str(e)) from e

    assert python_progress_while(connect) > 10_000


def test_send_into_a_full_ring():
    a, b = px.Channel.pair()
    buf = px.Buffer(px.SharedMemorySegment("full", 4096), 0, 1)
    with pytest.raises((px.Timeout, px.WouldBlock)):
        for _ in range(1_000_000):  # fill the ring: the peer never reads
            a.send(buf, timeout=0)
    assert python_progress_while(lambda: a.send(buf, timeout=0.3)) > 10_000
    a.close()
    b.close()
