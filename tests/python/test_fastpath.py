# SPDX-License-Identifier: Apache-2.0 OR MIT
"""The per-frame methods (loan, into_buffer, send, recv, release, with) are vectorcall
methods that reuse released Slot and Buffer objects (issue 14). Neither may be visible: the
arguments bind as under pybind11, errors are the same, and a reused object is one nobody
can observe any more."""

from __future__ import annotations

import gc
import inspect
import weakref

import numpy as np
import pytest

import parallax as px


@pytest.fixture
def pair():
    a, b = px.Channel.pair()
    yield a, b
    a.close()
    b.close()


def frame(pool, a, b, n=8):
    """One frame through the channel; returns (the sender's buffer, the received one)."""
    buf = pool.loan().into_buffer(n, px.Metadata(sequence=n))
    a.send(buf)
    return buf, b.recv(0)


def test_a_released_object_still_referenced_is_never_handed_out_again(pair, shm_pool):
    a, b = pair
    sent, got = frame(shm_pool, a, b)
    sent.release()
    got.release()
    slot = shm_pool.loan()
    slot.release()
    for _ in range(40):  # more than the objects kept for reuse
        s, g = frame(shm_pool, a, b)
        assert s is not sent and g is not got and s is not g
        assert not s.released and not g.released
        s.release()
        g.release()
        fresh = shm_pool.loan()
        assert fresh is not slot and not fresh.released
        fresh.release()
    assert sent.released and got.released and slot.released
    with pytest.raises(px.InvalidArgument, match="buffer was released"):
        len(got)
    assert shm_pool.available == shm_pool.capacity


def test_a_released_object_with_a_weak_reference_is_not_reused(pair, shm_pool):
    a, b = pair
    sent, got = frame(shm_pool, a, b)
    refs = [weakref.ref(sent), weakref.ref(got)]
    sent.release()
    got.release()
    del sent, got
    gc.collect()
    made = [frame(shm_pool, a, b) for _ in range(3)]
    made_ids = {id(x) for m in made for x in m}
    for ref in refs:
        obj = ref()
        # Either gone, or still the released object it was: never a live buffer again.
        assert obj is None or (obj.released and id(obj) not in made_ids)
    for m in made:
        for x in m:
            x.release()


def test_a_python_subclass_instance_is_not_handed_out_as_a_buffer(pair, shm_pool):
    class Tagged(px.Buffer):
        pass

    a, b = pair
    seg = px.SharedMemorySegment("fastpath", 4096)
    mine = Tagged(seg, 0, 16)
    mine.tag = "mine"
    mine.release()
    del mine
    for _ in range(3):
        sent, got = frame(shm_pool, a, b)
        assert type(sent) is px.Buffer and type(got) is px.Buffer
        sent.release()
        got.release()
    seg.close()


def test_release_with_a_live_view_is_refused_and_the_buffer_stays_usable(pair, shm_pool):
    a, b = pair
    sent, got = frame(shm_pool, a, b)
    view = np.frombuffer(got, np.uint8)
    with pytest.raises(BufferError, match="exported view"):
        got.release()
    with pytest.raises(BufferError):
        with got:
            pass
    assert not got.released and view.sum() >= 0
    del view
    got.release()
    sent.release()
    slot = shm_pool.loan()
    mv = memoryview(slot)
    with pytest.raises(BufferError):
        slot.into_buffer(8)
    with pytest.raises(BufferError):
        slot.release()
    mv.release()
    slot.release()
    assert slot.released and shm_pool.available == shm_pool.capacity


def test_with_blocks_release_and_let_exceptions_through(pair, shm_pool):
    a, b = pair
    with pytest.raises(KeyError):
        with shm_pool.loan() as slot:
            raise KeyError("boom")
    assert slot.released
    sent, got = frame(shm_pool, a, b)
    with sent as s, got as g:
        assert s is sent and g is got
    assert sent.released and got.released
    assert shm_pool.available == shm_pool.capacity


def test_arguments_bind_by_position_and_keyword(pair, shm_pool):
    a, b = pair
    buf = shm_pool.loan(timeout=None).into_buffer(metadata=px.Metadata(sequence=7), length=16)
    a.send(buffer=buf, timeout=1)
    a.send(buf, 0.5)
    first = b.recv(timeout=0)
    second = b.recv(1.0)
    assert len(first) == 16 and first.metadata.sequence == 7 and len(second) == 16
    for x in (buf, first, second):
        x.release()
    assert str(inspect.signature(px.Channel.recv)) == "(self, /, timeout=None)"
    assert str(inspect.signature(px.Channel.send)) == "(self, /, buffer, timeout=None)"
    assert str(inspect.signature(px.MemoryPool.loan)) == "(self, /, timeout=0)"
    assert str(inspect.signature(px.Slot.into_buffer)) == "(self, /, length=None, metadata=None)"
    assert "idempotent" in px.Buffer.release.__doc__


def test_bad_arguments_are_type_errors_naming_what_was_wrong(pair, shm_pool):
    a, b = pair
    buf = shm_pool.loan().into_buffer(8)
    with pytest.raises(TypeError, match="at most 1 argument"):
        b.recv(0, 1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'wait'"):
        b.recv(wait=0)
    with pytest.raises(TypeError, match="missing required argument 'buffer'"):
        a.send()
    with pytest.raises(TypeError, match="multiple values for argument 'buffer'"):
        a.send(buf, buffer=buf)
    with pytest.raises(TypeError, match="buffer must be a Buffer, not bytes"):
        a.send(b"bytes")
    with pytest.raises(TypeError, match="timeout must be a number"):
        a.send(buf, "1")
    with pytest.raises(TypeError, match="at most 0 argument"):
        buf.release(True)
    with pytest.raises(TypeError, match="timeout"):
        shm_pool.loan("1")
    with pytest.raises(TypeError, match="descriptor 'recv'"):
        px.Channel.recv(buf)
    with pytest.raises(px.InvalidArgument, match="timeout is NaN"):
        b.recv(float("nan"))
    buf.release()
    with pytest.raises(px.InvalidArgument, match="buffer was released"):
        a.send(buf)
    assert shm_pool.available == shm_pool.capacity


def test_failures_raise_the_library_error_with_its_status(pair, shm_pool):
    a, b = pair
    with pytest.raises(px.WouldBlock) as e:
        b.recv(0)
    assert e.value.status == -5 and str(e.value)
    with pytest.raises(px.Timeout):
        b.recv(timeout=0.001)
    slots = [shm_pool.loan() for _ in range(shm_pool.capacity)]
    with pytest.raises(px.PoolExhausted) as e:
        shm_pool.loan()
    assert e.value.status == -5
    with pytest.raises(px.Timeout):
        shm_pool.loan(timeout=0.001)
    for s in slots:
        s.release()
    heap = px.MemoryPool(px.HeapSegment(4096), 4096)
    with pytest.raises(px.Unsupported):
        a.send(heap.loan().into_buffer(8))
    heap.close()
    a.close()
    with pytest.raises(px.InvalidArgument, match="channel is closed"):
        a.recv(0)
    with pytest.raises(px.ChannelClosed):
        b.recv(0)
    assert list(b) == []
