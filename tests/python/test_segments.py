# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Segments: the four backends, their properties, bad input and closing."""

from __future__ import annotations

import io
import os
import stat

import numpy as np
import pytest

import parallax as px

from conftest import address, hugepages_reserved


def test_heap_segment_properties_and_zero_fill():
    seg = px.HeapSegment(10000)
    assert len(seg) == 10000
    assert seg.memory_type is px.MemoryType.HEAP
    assert seg.memory_type == 0  # an IntEnum
    assert seg.page_size == 4096
    assert seg.readonly is False
    assert bytes(seg) == bytes(10000)
    assert "HeapSegment" in repr(seg)


def test_heap_segment_is_not_shareable():
    seg = px.HeapSegment(4096)
    with pytest.raises(px.Unsupported, match="no fd to share"):
        seg.fileno()
    with pytest.raises(px.Unsupported):
        seg.ipc_handle()


def test_heap_segment_flush_is_a_noop():
    px.HeapSegment(64).flush()


@pytest.mark.parametrize("size", [0, -1, 2**64, 2**100])
def test_bad_sizes_are_invalid_argument(size):
    with pytest.raises(px.InvalidArgument, match="size"):
        px.HeapSegment(size)
    with pytest.raises(px.InvalidArgument, match="size"):
        px.SharedMemorySegment("x", size)


def test_huge_sizes_fail_cleanly():
    with pytest.raises((px.OutOfMemory, px.InvalidArgument, px.IOFailure)):
        px.HeapSegment(2**62)


@pytest.mark.parametrize("size", ["10", 1.5, None, b"1"])
def test_non_integer_sizes_are_type_errors(size):
    with pytest.raises(TypeError, match="size must be an integer"):
        px.HeapSegment(size)


def test_shared_memory_segment_shares_through_its_fd():
    seg = px.SharedMemorySegment("pytest-shm", 8192)
    assert seg.memory_type is px.MemoryType.SHARED
    assert len(seg) == 8192
    fd, size = seg.ipc_handle()
    assert fd == seg.fileno() and size == 8192
    np.asarray(seg)[:4] = [1, 2, 3, 4]
    other = px.SharedMemorySegment.from_fd(fd, 8192)
    assert bytes(other)[:4] == b"\x01\x02\x03\x04"
    assert address(other) != address(seg)  # a second mapping of the same memory
    np.asarray(other)[4] = 5
    assert bytes(seg)[4] == 5


def test_shared_memory_name_may_be_none():
    assert len(px.SharedMemorySegment(None, 4096)) == 4096


def test_from_fd_readonly_and_with_a_fileno_object():
    seg = px.SharedMemorySegment("ro", 4096)

    class HasFileno:
        def fileno(self):
            return seg.fileno()

    ro = px.SharedMemorySegment.from_fd(HasFileno(), 4096, readonly=True)
    assert ro.readonly
    assert memoryview(ro).readonly
    with pytest.raises(ValueError, match="read-only"):
        np.asarray(ro)[0] = 1  # numpy sees a read-only buffer...
    with pytest.raises(TypeError, match="read-write"):
        io.BytesIO(b"x").readinto(ro)  # ...and a writable request is refused
    rw = px.SharedMemorySegment.from_fd(seg.fileno(), 4096)
    assert io.BytesIO(b"x").readinto(rw) == 1 and bytes(ro)[:1] == b"x"


def test_from_fd_bad_input():
    seg = px.SharedMemorySegment("x", 4096)
    with pytest.raises(px.InvalidArgument):
        px.SharedMemorySegment.from_fd(seg.fileno(), 8192)  # larger than the file
    with pytest.raises(px.InvalidArgument, match="not a file descriptor"):
        px.SharedMemorySegment.from_fd(-1, 4096)
    r, w = os.pipe()
    try:
        with pytest.raises((px.InvalidArgument, px.PermissionDenied)):
            px.SharedMemorySegment.from_fd(r, 4096)  # a pipe is not shared memory
    finally:
        os.close(r)
        os.close(w)
    with pytest.raises((px.InvalidArgument, px.IOFailure)):
        px.SharedMemorySegment.from_fd(987654, 4096)  # not open


def test_from_fd_refuses_unsealed_regular_files_unless_allowed(tmp_path):
    path = tmp_path / "plain"
    path.write_bytes(b"\x07" * 4096)
    with open(path, "rb+") as f:
        with pytest.raises((px.InvalidArgument, px.PermissionDenied), match="seal"):
            px.SharedMemorySegment.from_fd(f.fileno(), 4096)
        seg = px.SharedMemorySegment.from_fd(f, 4096, allow_unsealed=True)
        assert bytes(seg)[:2] == b"\x07\x07"


def test_huge_pages_without_reservation_explain_or_fall_back():
    if hugepages_reserved() == 0:
        with pytest.raises(px.Unsupported, match="nr_hugepages"):
            px.HugePageSegment(px.HUGE_PAGE_2MB, 1 << 20)
    seg = px.HugePageSegment(px.HUGE_PAGE_2MB, 1 << 20, fallback=True)
    if seg.memory_type is px.MemoryType.SHARED:  # fell back: says so honestly
        assert seg.page_size == 4096
    else:
        assert seg.memory_type is px.MemoryType.HUGE_PAGES
        assert seg.page_size == px.HUGE_PAGE_2MB
    assert len(seg) >= 1 << 20
    seg.fileno()  # shareable either way


def test_huge_page_bad_page_size():
    with pytest.raises(px.InvalidArgument):
        px.HugePageSegment(12345, 1 << 20, fallback=True)
    with pytest.raises(px.InvalidArgument, match="page_size"):
        px.HugePageSegment(2**40, 1 << 20)


def test_mapped_file_create_open_readonly_flush(tmp_path):
    path = tmp_path / "frames.bin"
    seg = px.MappedFileSegment.create(path, 8192)
    assert seg.memory_type is px.MemoryType.MAPPED_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    np.asarray(seg)[:3] = [9, 8, 7]
    seg.flush()
    assert path.read_bytes()[:3] == b"\x09\x08\x07"
    assert os.path.getsize(path) == 8192
    seg.close()

    rw = px.MappedFileSegment.open(str(path))
    assert not rw.readonly and bytes(rw)[:3] == b"\x09\x08\x07"
    ro = px.MappedFileSegment.open_readonly(os.fsencode(path))
    assert ro.readonly and bytes(ro)[:3] == b"\x09\x08\x07"
    assert not np.asarray(ro).flags.writeable


def test_mapped_file_errors(tmp_path):
    path = tmp_path / "f"
    px.MappedFileSegment.create(path, 10).close()
    with pytest.raises(px.InvalidArgument):
        px.MappedFileSegment.create(path, 10)  # never truncates an existing file
    with pytest.raises((px.IOFailure, px.InvalidArgument)):
        px.MappedFileSegment.open(tmp_path / "missing")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(px.InvalidArgument):
        px.MappedFileSegment.open(tmp_path / "empty")
    with pytest.raises(px.InvalidArgument, match="NUL"):
        px.MappedFileSegment.open("a\0b")
    with pytest.raises(px.InvalidArgument, match="empty"):
        px.MappedFileSegment.open("")
    with pytest.raises(TypeError, match="path must be"):
        px.MappedFileSegment.open(42)
    with pytest.raises(TypeError):
        px.MappedFileSegment()  # no public constructor: use create/open


def test_segment_base_class_cannot_be_instantiated():
    with pytest.raises(TypeError):
        px.Segment()


def test_closed_segment_refuses_use_and_close_is_idempotent():
    seg = px.SharedMemorySegment("c", 4096)
    with seg as s:
        assert s is seg
    assert seg.closed
    seg.close()
    for call in (lambda: len(seg), lambda: seg.fileno(), lambda: seg.memory_type,
                 lambda: memoryview(seg), lambda: px.MemoryPool(seg, 64),
                 lambda: px.Buffer(seg)):
        with pytest.raises(px.InvalidArgument, match="segment is closed"):
            call()
    assert "closed" in repr(seg)


def test_read_and_readinto_copy_out_bounds_checked():
    seg = px.SharedMemorySegment("read", 4096)
    np.asarray(seg)[:] = np.arange(4096) & 0xFF
    assert seg.read(10, 3) == bytes([10, 11, 12])
    assert seg.read(4090) == bytes(range(250, 256))
    assert len(seg.read()) == 4096
    assert seg.read(4096, 0) == b""
    dst = bytearray(5)
    assert seg.readinto(dst, 100) == 5 and dst == bytes(range(100, 105))
    with pytest.raises(px.InvalidArgument, match="exceeds"):
        seg.read(4000, 100)
    with pytest.raises(px.InvalidArgument, match="exceeds"):
        seg.read(2**64 - 1, 2)
    with pytest.raises(px.InvalidArgument, match="exceeds"):
        seg.readinto(bytearray(10), 4090)
    with pytest.raises(BufferError, match="not writable"):
        seg.readinto(b"read-only bytes")


def test_read_of_a_truncated_file_is_an_error_not_a_crash(tmp_path):
    path = tmp_path / "shrinks"
    seg = px.MappedFileSegment.create(path, 3 * 4096)
    np.asarray(seg)[:] = 1
    seg.flush()
    os.truncate(path, 4096)  # another process could do this at any time
    assert seg.read(0, 10) == b"\x01" * 10
    with pytest.raises(px.IOFailure, match="4096"):
        seg.read(2 * 4096, 10)
