# SPDX-License-Identifier: Apache-2.0 OR MIT
"""MemoryPool and Slot: capacity, loans, timeouts, release, into_buffer, misuse."""

from __future__ import annotations

import gc
import threading
import time

import numpy as np
import pytest

import parallax as px

from conftest import address


def test_the_seed_pool_has_16_slots():
    pool = px.MemoryPool(px.HeapSegment(1 << 20), 64 << 10)
    assert pool.capacity == 16
    assert pool.available == 16
    assert pool.slot_size == 64 << 10
    assert len(pool.segment) == 1 << 20
    assert pool.segment.memory_type is px.MemoryType.HEAP


def test_slots_alias_their_place_in_the_segment():
    seg = px.SharedMemorySegment("alias", 1 << 16)
    pool = px.MemoryPool(seg, 4096)
    base = address(seg)
    slots = [pool.loan() for _ in range(pool.capacity)]
    assert sorted(s.index for s in slots) == list(range(16))
    for s in slots:
        assert len(s) == 4096
        assert address(s) == base + s.index * 4096
        arr = np.asarray(s)
        assert arr.flags.writeable and arr.dtype == np.uint8 and arr.shape == (4096,)
        arr[:] = s.index
        assert np.shares_memory(arr, np.asarray(seg))
        del arr
    view = np.asarray(seg)
    for s in slots:
        assert (view[s.index * 4096 : (s.index + 1) * 4096] == s.index).all()
    del view
    for s in slots:
        s.release()
    assert pool.available == 16


def test_exhaustion_raises_pool_exhausted_and_release_refills():
    pool = px.MemoryPool(px.HeapSegment(4096 * 2), 4096)
    a, b = pool.loan(), pool.loan()
    assert pool.available == 0
    with pytest.raises(px.PoolExhausted, match="slots is out") as info:
        pool.loan()
    assert isinstance(info.value, BlockingIOError)
    with pytest.raises(px.PoolExhausted):
        pool.loan(timeout=0)
    t0 = time.monotonic()
    with pytest.raises(px.Timeout):
        pool.loan(timeout=0.05)
    assert time.monotonic() - t0 >= 0.04
    a_index = a.index
    a.release()
    a.release()  # idempotent
    assert a.released
    assert pool.available == 1
    c = pool.loan()
    assert c.index == a_index
    b.release()
    c.release()


def test_a_slot_collected_by_gc_goes_back_to_the_pool():
    pool = px.MemoryPool(px.HeapSegment(4096), 4096)
    pool.loan()  # dropped at once
    gc.collect()
    assert pool.available == 1
    with pool.loan() as slot:
        assert pool.available == 0
        assert not slot.released
    assert slot.released and pool.available == 1


def test_waiting_loan_releases_the_gil_and_wakes_on_release():
    pool = px.MemoryPool(px.HeapSegment(4096), 4096)
    held = pool.loan()
    got = []

    def waiter():
        got.append(pool.loan(timeout=5))

    t = threading.Thread(target=waiter)
    t0 = time.monotonic()
    t.start()
    time.sleep(0.1)  # the waiter is blocked in C; this thread still runs Python
    assert not got
    held.release()
    t.join(5)
    assert got and time.monotonic() - t0 < 4
    got[0].release()


@pytest.mark.parametrize("forever", [None, -1, float("inf")])
def test_forever_timeouts_wait_until_a_slot_returns(forever):
    pool = px.MemoryPool(px.HeapSegment(4096), 4096)
    held = pool.loan()
    threading.Timer(0.05, held.release).start()
    pool.loan(timeout=forever).release()


def test_bad_timeouts():
    pool = px.MemoryPool(px.HeapSegment(4096), 4096)
    with pytest.raises(px.InvalidArgument, match="NaN"):
        pool.loan(timeout=float("nan"))
    with pytest.raises(TypeError, match="timeout"):
        pool.loan(timeout="1")


def test_pool_bad_input():
    seg = px.HeapSegment(4096)
    with pytest.raises(px.InvalidArgument, match="slot_size is 0"):
        px.MemoryPool(seg, 0)
    with pytest.raises(px.InvalidArgument, match="larger than the segment"):
        px.MemoryPool(seg, 4097)
    with pytest.raises(px.InvalidArgument, match="slot_size"):
        px.MemoryPool(seg, -4096)
    with pytest.raises(px.InvalidArgument, match="too large"):
        px.MemoryPool(seg, 2**64)
    with pytest.raises(TypeError):
        px.MemoryPool(b"not a segment", 64)
    with pytest.raises(TypeError):
        px.MemoryPool(None, 64)


def test_a_pool_needs_writable_memory(tmp_path):
    path = tmp_path / "ro"
    path.write_bytes(bytes(8192))
    with pytest.raises(px.Unsupported, match="read-only"):
        px.MemoryPool(px.MappedFileSegment.open_readonly(path), 4096)


def test_releasing_a_slot_with_an_exported_view_raises_buffer_error():
    pool = px.MemoryPool(px.HeapSegment(4096), 4096)
    slot = pool.loan()
    view = memoryview(slot)
    with pytest.raises(BufferError, match="exported view"):
        slot.release()
    with pytest.raises(BufferError):
        slot.into_buffer()
    with pytest.raises(BufferError):
        slot.__exit__(None, None, None)
    assert not slot.released and pool.available == 0  # nothing was freed
    view[0] = 42  # the memory is still the slot's and writable
    view.release()
    slot.release()
    assert pool.available == 1


def test_a_view_keeps_the_slot_loaned_after_the_slot_object_is_dropped():
    pool = px.MemoryPool(px.HeapSegment(4096), 4096)
    arr = np.asarray(pool.loan())
    arr[:] = 5
    gc.collect()
    assert pool.available == 0  # the array's owner chain holds the slot
    assert (arr == 5).all()
    del arr
    gc.collect()
    assert pool.available == 1


def test_into_buffer_consumes_the_slot():
    pool = px.MemoryPool(px.SharedMemorySegment("ib", 4096 * 2), 4096)
    slot = pool.loan()
    np.asarray(slot)[:8] = np.arange(8)
    slot_addr = address(slot)
    meta = px.Metadata(sequence=3)
    buf = slot.into_buffer(8, meta)
    assert slot.released
    assert len(buf) == 8 and buf.offset == slot_addr - address(pool.segment)
    assert address(buf) == slot_addr
    assert bytes(buf) == bytes(range(8))
    assert buf.metadata.sequence == 3
    assert not buf.readonly
    assert pool.available == 1  # the buffer holds the slot
    clone = buf.clone()
    buf.release()
    assert pool.available == 1
    clone.release()
    assert pool.available == 2
    with pytest.raises(px.InvalidArgument, match="slot was released"):
        slot.into_buffer()


def test_into_buffer_defaults_to_the_whole_slot():
    pool = px.MemoryPool(px.HeapSegment(4096), 4096)
    buf = pool.loan().into_buffer()
    assert len(buf) == 4096
    assert buf.metadata == px.Metadata()


@pytest.mark.parametrize("length", [0, 4097, -1, 2**64])
def test_into_buffer_bad_length_leaves_the_slot_usable(length):
    pool = px.MemoryPool(px.HeapSegment(4096), 4096)
    slot = pool.loan()
    with pytest.raises(px.InvalidArgument, match="length"):
        slot.into_buffer(length)
    assert not slot.released
    assert len(slot.into_buffer(4096)) == 4096


def test_into_buffer_bad_metadata_type_leaves_the_slot_usable():
    pool = px.MemoryPool(px.HeapSegment(4096), 4096)
    slot = pool.loan()
    with pytest.raises(TypeError, match="metadata"):
        slot.into_buffer(16, {"sequence": 1})
    assert not slot.released


def test_released_slot_refuses_use():
    pool = px.MemoryPool(px.HeapSegment(4096), 4096)
    slot = pool.loan()
    slot.release()
    for call in (lambda: len(slot), lambda: slot.index, lambda: memoryview(slot)):
        with pytest.raises(px.InvalidArgument, match="slot was released"):
            call()
    assert "released" in repr(slot)


def test_slots_and_buffers_outlive_pool_and_segment_objects():
    seg = px.SharedMemorySegment("life", 4096 * 4)
    pool = px.MemoryPool(seg, 4096)
    slot = pool.loan()
    buf = pool.loan().into_buffer(100)
    np.asarray(slot)[:] = 1
    np.asarray(buf)[:] = 2
    seg.close()
    pool.close()
    del seg, pool
    gc.collect()
    assert bytes(slot) == b"\x01" * 4096
    assert bytes(buf) == b"\x02" * 100
    slot.release()
    assert len(buf.segment) == 4096 * 4


def test_closed_pool_refuses_use():
    pool = px.MemoryPool(px.HeapSegment(4096), 4096)
    with pool as p:
        assert p is pool
    assert pool.closed
    for call in (lambda: pool.loan(), lambda: pool.capacity, lambda: pool.loan(timeout=1)):
        with pytest.raises(px.InvalidArgument, match="pool is closed"):
            call()


def test_slot_objects_are_recycled_only_when_nobody_holds_them():
    pool = px.MemoryPool(px.HeapSegment(4096), 4096)
    first = pool.loan()
    first.release()
    second = pool.loan()  # same slot index, but `first` is still referenced here
    assert second is not first
    assert first.released and not second.released
    with pytest.raises(px.InvalidArgument, match="slot was released"):
        len(first)
    second.release()
    del first, second
    third = pool.loan()  # an unreferenced released object may come back, fully live
    assert not third.released and len(third) == 4096 and pool.available == 0
    third.release()
    assert pool.available == 1
