# SPDX-License-Identifier: Apache-2.0 OR MIT
"""A Buffer passed to a multiprocessing child (spawn, forkserver) arrives read-only over the
same memory, with its metadata and format; plain pickle refuses it."""

from __future__ import annotations

import multiprocessing as mp
import pickle
from multiprocessing.reduction import ForkingPickler

import numpy as np
import pytest

import parallax as px

# The segment's fd reduction (parallax._reduction) is what carries a Buffer's memory.
REDUCER = px.SharedMemorySegment in getattr(ForkingPickler, "_extra_reducers", {})
needs_reducer = pytest.mark.skipif(not REDUCER, reason="parallax._reduction (the segment's "
                                   "multiprocessing reduction) is not installed")
METHODS = [m for m in ("spawn", "forkserver") if m in mp.get_all_start_methods()]


def look(buf, results, go):
    """In the child: report what arrived, wait for the parent to write, look again."""
    arr = np.asarray(buf)
    first = int(arr[1, 2])
    writable = arr.flags.writeable
    go.wait(20)
    results.put((arr.shape, str(arr.dtype), buf.readonly, writable, buf.metadata.sequence,
                 buf.format.fourcc, first, int(arr[1, 2])))


@pytest.fixture
def typed_buffer(shm_pool):
    buf = shm_pool.loan(timeout=1).into_buffer(4 * 6 * 4, px.Metadata(sequence=42))
    buf.set_format(np.int32, (4, 6), fourcc="TEST")
    np.asarray(buf)[1, 2] = 7
    return buf


def test_plain_pickle_refuses_a_buffer(typed_buffer):
    with pytest.raises(TypeError, match="multiprocessing"):
        pickle.dumps(typed_buffer)


@needs_reducer
@pytest.mark.parametrize("method", METHODS)
def test_a_child_gets_a_read_only_typed_buffer_over_the_same_memory(typed_buffer, method):
    ctx = mp.get_context(method)
    results, go = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=look, args=(typed_buffer, results, go))
    child.start()
    try:
        np.asarray(typed_buffer)[1, 2] = 8  # may land before or after the child's first look
        go.set()
        shape, dtype, readonly, writable, seq, fourcc, first, later = results.get(timeout=30)
    finally:
        child.join(30)
    assert (shape, dtype, seq) == ((4, 6), "int32", 42)
    assert readonly and not writable
    assert fourcc == px.Format(np.int32, 1, fourcc="TEST").fourcc
    assert first in (7, 8) and later == 8  # the parent's write is seen: same memory
    assert child.exitcode == 0


@needs_reducer
def test_a_received_buffer_can_be_passed_on(typed_buffer):
    a, b = px.Channel.pair()
    a.send(typed_buffer, timeout=1)
    got = b.recv(timeout=1)
    ctx = mp.get_context("spawn")
    results, go = ctx.Queue(), ctx.Event()
    go.set()
    child = ctx.Process(target=look, args=(got, results, go))
    child.start()
    try:
        shape, _, readonly, writable, seq, _, first, _ = results.get(timeout=30)
    finally:
        child.join(30)
    assert (shape, readonly, writable, seq, first) == ((4, 6), True, False, 42, 7)
    a.close()
    b.close()


@needs_reducer
def test_a_heap_buffer_cannot_be_passed():
    buf = px.Buffer(px.HeapSegment(64))
    with pytest.raises(TypeError, match="HeapSegment"):
        ForkingPickler.dumps(buf)
