# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Buffer: ranges, clone/slice without copies, metadata, read-only memory, misuse."""

from __future__ import annotations

import gc
import io

import numpy as np
import pytest

import parallax as px

from conftest import address


def test_buffer_over_a_segment_range_aliases_it():
    seg = px.HeapSegment(4096)
    np.asarray(seg)[:] = np.arange(4096) & 0xFF
    buf = px.Buffer(seg, 100, 50)
    assert len(buf) == 50 and buf.offset == 100 and not buf.readonly
    assert address(buf) == address(seg) + 100
    assert bytes(buf) == bytes((i & 0xFF) for i in range(100, 150))
    whole = px.Buffer(seg)
    assert len(whole) == 4096 and whole.offset == 0
    tail = px.Buffer(seg, 4000)
    assert len(tail) == 96
    assert len(px.Buffer(seg, 4096, 0)) == 0  # empty at the end is fine
    assert bytes(px.Buffer(seg, 10, 0)) == b""


@pytest.mark.parametrize(
    "offset, length",
    [(4090, 16), (4097, 0), (2**64 - 1, 2), (1, 2**64 - 1), (5000, None)],
)
def test_out_of_range_buffers_are_refused_with_the_range_named(offset, length):
    seg = px.HeapSegment(4096)
    with pytest.raises(px.InvalidArgument, match="exceeds"):
        px.Buffer(seg, offset, length)


def test_negative_offsets_and_lengths():
    seg = px.HeapSegment(4096)
    with pytest.raises(px.InvalidArgument, match="offset must not be negative"):
        px.Buffer(seg, -1)
    with pytest.raises(px.InvalidArgument, match="length must not be negative"):
        px.Buffer(seg, 0, -5)
    with pytest.raises(px.InvalidArgument, match="too large"):
        px.Buffer(seg, 2**64)


def test_clone_shares_memory_but_not_metadata():
    seg = px.HeapSegment(4096)
    buf = px.Buffer(seg, 0, 64, px.Metadata(sequence=1))
    clone = buf.clone()
    assert address(clone) == address(buf)
    assert np.shares_memory(np.asarray(clone), np.asarray(buf))
    md = clone.metadata
    md.sequence = 2
    clone.metadata = md
    assert buf.metadata.sequence == 1 and clone.metadata.sequence == 2
    np.asarray(clone)[0] = 77
    assert bytes(buf)[0] == 77


def test_slice_is_relative_and_checked():
    seg = px.HeapSegment(4096)
    buf = px.Buffer(seg, 1000, 1000, px.Metadata(sequence=9))
    s = buf.slice(10, 20)
    assert s.offset == 1010 and len(s) == 20
    assert address(s) == address(buf) + 10
    assert s.metadata.sequence == 9
    assert len(buf.slice(990)) == 10
    with pytest.raises(px.InvalidArgument, match="exceeds"):
        buf.slice(990, 11)
    with pytest.raises(px.InvalidArgument, match="exceeds"):
        buf.slice(1001)
    with pytest.raises(px.InvalidArgument):
        buf.slice(-1, 5)
    with pytest.raises(px.InvalidArgument):
        buf.slice(2**64 - 1, 2)


def test_buffer_segment_is_a_new_reference_of_the_right_class():
    seg = px.SharedMemorySegment("cls", 4096)
    buf = px.Buffer(seg, 0, 10)
    s = buf.segment
    assert isinstance(s, px.SharedMemorySegment)
    assert s.fileno() == seg.fileno()
    s.close()
    assert len(buf) == 10  # closing that reference does not affect the buffer


def test_buffers_outlive_their_segment_object():
    seg = px.HeapSegment(4096)
    np.asarray(seg)[:4] = 1
    buf = px.Buffer(seg, 0, 4)
    seg.close()
    del seg
    gc.collect()
    assert bytes(buf) == b"\x01" * 4


def test_buffers_over_read_only_files_are_read_only(tmp_path):
    path = tmp_path / "ro"
    path.write_bytes(b"abc" * 100)
    buf = px.Buffer(px.MappedFileSegment.open_readonly(path), 3, 3)
    assert buf.readonly and memoryview(buf).readonly
    assert bytes(buf) == b"abc"
    arr = np.frombuffer(buf, np.uint8)
    assert not arr.flags.writeable
    with pytest.raises(TypeError, match="read-write"):
        io.BytesIO(b"z").readinto(buf)
    with pytest.raises(TypeError):
        memoryview(buf)[0:1] = b"z"
    with pytest.raises((BufferError, ValueError)):
        np.asarray(buf)[0] = 1


def test_release_with_an_exported_view_raises_and_keeps_the_memory():
    buf = px.Buffer(px.HeapSegment(4096), 0, 16)
    arr = np.frombuffer(buf, np.uint32)
    with pytest.raises(BufferError):
        buf.release()
    with pytest.raises(BufferError):
        with buf:
            pass
    assert not buf.released and arr.shape == (4,)
    del arr
    buf.release()
    buf.release()  # idempotent
    assert buf.released
    with pytest.raises(px.InvalidArgument, match="buffer was released"):
        len(buf)
    with pytest.raises(px.InvalidArgument, match="buffer was released"):
        buf.clone()
    with pytest.raises(px.InvalidArgument, match="buffer was released"):
        buf.metadata
    assert "released" in repr(buf)


def test_metadata_type_is_checked():
    buf = px.Buffer(px.HeapSegment(64))
    with pytest.raises(TypeError):
        buf.metadata = {"sequence": 1}
    with pytest.raises(TypeError, match="metadata must be"):
        px.Buffer(px.HeapSegment(64), 0, 8, "meta")


def test_dtype_views_and_bytes():
    seg = px.HeapSegment(64)
    buf = px.Buffer(seg)
    f = np.frombuffer(buf, np.float64)
    f[:] = 1.5
    assert f.shape == (8,)
    assert np.frombuffer(bytes(buf), np.float64).tolist() == [1.5] * 8
    mv = memoryview(buf)
    assert mv.format == "B" and mv.ndim == 1 and mv.nbytes == 64 and mv.contiguous
