# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Timeouts in seconds -> the C API's int64_t nanoseconds: None, negative, inf and anything
longer than 2**63 - 1 ns (about 292 years) wait forever; exactly representable shorter waits
stay finite; NaN and non-numbers are refused."""

from __future__ import annotations

import threading
import time

import pytest

import parallax as px
import parallax._parallax as ext

INT64_MAX = 2**63 - 1
# Every way of saying "longer than the C API can count": each must mean forever (-1).
BEYOND_INT64_NS = [
    float("inf"),
    1e300,
    2**63 / 1e9,  # 2**63 ns as float seconds: one past INT64_MAX ns
    9223372037,  # whole seconds: the first int whose nanoseconds exceed INT64_MAX
    2**63,
    10**400,  # too big for a double: forever, not an OverflowError
]


@pytest.mark.parametrize("seconds", BEYOND_INT64_NS, ids=repr)
def test_longer_than_int64_nanoseconds_is_forever(seconds):
    assert ext._timeout_ns(seconds) == -1


def test_the_longest_finite_waits_stay_finite():
    # The largest whole seconds that fit: 9223372036 s = 9223372036000000000 ns <= INT64_MAX.
    assert ext._timeout_ns(9223372036) == 9223372036 * 10**9
    # Just under 2**63 ns as a float: finite (the old cut-off, 9.2e18 ns, made this forever).
    assert ext._timeout_ns(9.2e9) == 9_200_000_000_000_000_000
    largest_below = 9223372036.854775  # * 1e9 rounds below 2**63
    assert 0 < ext._timeout_ns(largest_below) <= INT64_MAX


def test_the_usual_values():
    assert ext._timeout_ns(None) == -1
    assert ext._timeout_ns(-1) == -1  # negative means forever (documented)
    assert ext._timeout_ns(-0.5) == -1
    assert ext._timeout_ns(-(10**400)) == -1
    assert ext._timeout_ns(0) == 0
    assert ext._timeout_ns(0.0) == 0
    assert ext._timeout_ns(1) == 10**9
    assert ext._timeout_ns(0.25) == 250_000_000
    assert ext._timeout_ns(1e-12) == 1  # a positive wait never becomes a poll


def test_nan_and_non_numbers_are_refused():
    with pytest.raises(px.InvalidArgument, match="timeout is NaN"):
        ext._timeout_ns(float("nan"))
    with pytest.raises(TypeError, match="timeout must be a number of seconds or None, not str"):
        ext._timeout_ns("1")


def send_later(channel, pool, delay=0.2):
    def run():
        time.sleep(delay)
        slot = pool.loan(timeout=5)
        memoryview(slot)[:3] = b"abc"
        channel.send(slot.into_buffer(3, px.Metadata(sequence=9)))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("seconds", [None, *BEYOND_INT64_NS], ids=repr)
def test_recv_with_a_forever_timeout_waits_for_the_sender(shm_pool, seconds):
    # Observable: recv neither times out nor fails at once; it returns what arrives 200 ms later.
    a, b = px.Channel.pair()
    with a, b:
        sender = send_later(a, shm_pool)
        t0 = time.monotonic()
        try:
            got = b.recv(timeout=seconds)
        finally:
            sender.join()
        waited = time.monotonic() - t0
        assert bytes(got) == b"abc" and got.metadata.sequence == 9
        assert waited >= 0.15, waited
        got.release()


@pytest.mark.parametrize("seconds", [float("inf"), 2**63 / 1e9, 10**400], ids=repr)
def test_loan_with_a_forever_timeout_waits_for_a_release(seconds):
    pool = px.MemoryPool(px.HeapSegment(4096), 4096)
    held = pool.loan()
    releaser = threading.Timer(0.2, held.release)
    releaser.start()
    t0 = time.monotonic()
    try:
        slot = pool.loan(timeout=seconds)
    finally:
        releaser.join()
    assert time.monotonic() - t0 >= 0.15
    slot.release()
    pool.close()
