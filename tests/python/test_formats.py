# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Typed frames in Python: Buffer.set_format / format, parallax.Format and DType, the buffer
protocol's shapes, strides and PEP 3118 formats, and MemoryPool.loan_array."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

import parallax as px
from conftest import address

FRAME = (1080, 1920, 3)
ALL = [("uint8", px.DType.U8), ("int8", px.DType.I8), ("uint16", px.DType.U16),
       ("int16", px.DType.I16), ("uint32", px.DType.U32), ("int32", px.DType.I32),
       ("uint64", px.DType.U64), ("int64", px.DType.I64), ("float16", px.DType.F16),
       ("float32", px.DType.F32), ("float64", px.DType.F64)]


@pytest.fixture
def frame_pool():
    seg = px.SharedMemorySegment("pytest-frames", 4 * 6220800)
    pool = px.MemoryPool(seg, 6220800)
    seg.close()
    yield pool
    pool.close()


def slot_buffer(pool, length=None):
    return pool.loan(timeout=1).into_buffer(length)


def test_an_untyped_buffer_has_no_format_and_stays_1d_bytes(shm_pool):
    buf = slot_buffer(shm_pool, 100)
    assert buf.format is None
    view = memoryview(buf)
    assert (view.ndim, view.format, view.nbytes) == (1, "B", 100)


@pytest.mark.parametrize("name,dtype", ALL)
def test_every_dtype_is_exported_with_its_shape_and_pep3118_format(shm_pool, name, dtype):
    buf = slot_buffer(shm_pool)
    buf.set_format(name, (4, 6))
    arr = np.asarray(buf)
    assert arr.dtype == np.dtype(name) == buf.format.dtype
    assert arr.shape == (4, 6) and buf.format.px_dtype is dtype
    assert arr.flags.writeable and arr.ctypes.data == address(buf.slice(0))


def test_dtype_accepts_numpy_dtypes_names_and_the_enum(shm_pool):
    buf = slot_buffer(shm_pool)
    for dtype in (np.float32, np.dtype("<f4"), "float32", px.DType.F32, int(px.DType.F32)):
        buf.set_format(dtype, 8)
        assert buf.format.px_dtype is px.DType.F32 and buf.format.shape == (8,)


def test_bfloat16_is_exported_as_its_raw_bits(shm_pool):
    buf = slot_buffer(shm_pool)
    buf.set_format("bfloat16", (2, 3))
    assert buf.format.px_dtype is px.DType.BF16
    assert np.asarray(buf).dtype == np.uint16 == buf.format.dtype
    assert memoryview(buf).format == "H"


def test_strides_padding_and_fourcc(shm_pool):
    buf = slot_buffer(shm_pool, 64)
    memoryview(buf)[:] = bytes(range(64))
    buf.set_format(np.uint8, (4, 5), strides=(16, 1), fourcc="GREY")
    fmt = buf.format
    assert fmt.strides == (16, 1) and not fmt.c_contiguous and fmt.nbytes == 53
    assert fmt.fourcc == 0x59455247 and "fourcc='GREY'" in repr(fmt)
    arr = np.asarray(buf)
    assert arr.strides == (16, 1) and arr[2, 3] == 35
    assert not memoryview(buf).c_contiguous
    assert memoryview(buf).tobytes() == arr.tobytes() and len(arr.tobytes()) == 20
    # A consumer that asks for plain bytes still gets every byte of the buffer.
    with open(os.devnull, "wb") as f:
        assert f.write(buf) == 64


def test_format_values_compare_hash_pickle_and_apply_elsewhere(shm_pool):
    fmt = px.Format(np.uint16, (3, 4), fourcc=0x10)
    assert fmt.strides == (8, 2) and fmt.itemsize == 2 and fmt.ndim == 2
    again = pickle.loads(pickle.dumps(fmt))
    assert again == fmt and hash(again) == hash(fmt) and fmt != px.Format(np.uint16, (4, 3))
    buf = slot_buffer(shm_pool)
    buf.set_format(fmt)
    assert buf.format == fmt
    buf.set_format(None)
    assert buf.format is None


def test_clones_keep_the_format_and_slices_drop_it(shm_pool):
    buf = slot_buffer(shm_pool)
    buf.set_format(np.int32, (2, 2))
    assert buf.clone().format == buf.format
    assert buf.slice(0, 16).format is None


@pytest.mark.parametrize("args,rule", [
    (("complex64", 4), "no parallax dtype"),
    ((99, 4), "not a parallax dtype"),
    ((">u2", 4), "big-endian"),
    ((np.uint8, ()), "1 to 8"),
    ((np.uint8, (1,) * 9), "1 to 8"),
    ((np.uint8, (2, -1)), ">= 0"),
    ((np.uint8, (64, 65)), None),            # beyond the buffer: the library's message
    ((np.uint16, (4,), (3,)), None),         # stride not a multiple of the element size
    ((np.uint8, (4, 4), (4,)), "strides has 1 entries"),
])
def test_bad_formats_raise_invalid_argument_naming_the_rule(shm_pool, args, rule):
    buf = slot_buffer(shm_pool)
    with pytest.raises(px.InvalidArgument) as exc:
        buf.set_format(*args)
    assert isinstance(exc.value, ValueError) and exc.value.status == -1
    if rule:
        assert rule in str(exc.value)
    assert buf.format is None  # nothing changed


def test_library_messages_name_the_rule(shm_pool):
    buf = slot_buffer(shm_pool, 100)
    with pytest.raises(px.InvalidArgument, match="(?i)buffer|beyond|outside"):
        buf.set_format(np.uint8, (11, 10))
    with pytest.raises(px.InvalidArgument, match="(?i)multiple|element size"):
        buf.set_format(np.uint16, (4,), strides=(3,))


def test_wrong_types_raise_type_error(shm_pool):
    buf = slot_buffer(shm_pool)
    with pytest.raises(TypeError):
        buf.set_format(np.uint8, "abc")
    with pytest.raises(TypeError):
        buf.set_format(True, 4)
    with pytest.raises(TypeError):
        buf.set_format(np.uint8, 4, fourcc=1.5)
    with pytest.raises(TypeError):
        buf.set_format(np.uint8)
    buf.release()
    with pytest.raises(px.InvalidArgument, match="released"):
        buf.set_format(np.uint8, 4)


def test_a_view_keeps_the_buffer_from_being_released(shm_pool):
    buf = slot_buffer(shm_pool)
    buf.set_format(np.uint8, (8, 8))
    arr = np.asarray(buf)
    with pytest.raises(BufferError):
        buf.release()
    del arr
    buf.release()
    assert buf.released


def test_the_format_crosses_a_channel_and_the_frame_is_read_only(shm_pool):
    a, b = px.Channel.pair()
    buf = slot_buffer(shm_pool, 4 * 6 * 2)
    buf.set_format(np.int16, (4, 6), fourcc="Y16 ")
    np.asarray(buf)[:] = np.arange(24, dtype=np.int16).reshape(4, 6)
    a.send(buf, timeout=1)
    got = b.recv(timeout=1)
    assert got.format == buf.format
    arr = np.asarray(got)
    assert arr.shape == (4, 6) and not arr.flags.writeable and arr[3, 5] == 23
    assert memoryview(got).readonly and got.readonly
    with pytest.raises(ValueError):
        arr.setflags(write=True)  # numpy asks the exporter: never writable
    a.close()
    b.close()


def test_a_received_1080p_frame_is_a_read_only_array_over_the_senders_memory(frame_pool):
    """A real producer process: the consumer's array changes when the producer writes."""
    parent, child = px.Channel.pair()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            parent.close()
            frame = frame_pool.loan_array(FRAME, np.uint8, timeout=5)
            frame.array[1079, 1919] = (1, 2, 3)
            buf = frame.into_buffer()
            child.send(buf, timeout=5)
            os.read(go_r, 1)  # the consumer has looked: now change the frame
            np.asarray(buf)[1079, 1919, 0] = 200
            child.send(slot_buffer(frame_pool, 1), timeout=5)  # "done"
            child.recv(timeout=5)  # wait for the consumer before releasing
            status = 0
        finally:
            os._exit(status)
    child.close()
    got = parent.recv(timeout=5)
    arr = np.asarray(got)
    assert arr.shape == FRAME and arr.dtype == np.uint8 and not arr.flags.writeable
    assert tuple(arr[1079, 1919]) == (1, 2, 3)
    assert arr.ctypes.data == address(got.slice(0))
    os.write(go_w, b"g")
    parent.recv(timeout=5).release()
    assert arr[1079, 1919, 0] == 200  # the same memory, not a copy
    del arr
    got.release()
    parent.send(slot_buffer(frame_pool, 1), timeout=5)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    parent.close()


def test_loan_array_gives_a_writable_array_and_a_typed_buffer(frame_pool):
    free = frame_pool.available
    frame = frame_pool.loan_array(FRAME, np.uint8, timeout=1)
    assert frame_pool.available == free - 1
    assert frame.array.shape == FRAME and frame.array.flags.writeable
    assert frame.format == px.Format(np.uint8, FRAME)
    frame.array[0, 0] = (9, 8, 7)
    buf = frame.into_buffer(px.Metadata(sequence=5))
    assert frame.released and buf.format.shape == FRAME and buf.metadata.sequence == 5
    assert len(buf) == 1080 * 1920 * 3 and tuple(np.asarray(buf)[0, 0]) == (9, 8, 7)
    with pytest.raises(px.InvalidArgument):
        frame.into_buffer()
    buf.release()
    assert frame_pool.available == free


def test_loan_array_refuses_to_hand_on_a_frame_still_in_use(frame_pool):
    frame = frame_pool.loan_array((10, 10), np.float32, timeout=1)
    arr = frame.array
    with pytest.raises(BufferError, match="still referenced"):
        frame.into_buffer()
    with pytest.raises(BufferError):
        frame.release()
    assert not frame.released
    del arr
    with frame:
        pass
    assert frame.released and frame_pool.available == frame_pool.capacity


def test_loan_array_checks_the_format_before_taking_a_slot(frame_pool):
    with pytest.raises(px.InvalidArgument, match="does not fit"):
        frame_pool.loan_array((1080, 1920, 4), np.uint8)
    with pytest.raises(px.InvalidArgument, match="multiple"):
        frame_pool.loan_array((4,), np.uint16, strides=(3,))
    assert frame_pool.available == frame_pool.capacity
    frames = [frame_pool.loan_array(16, np.uint8) for _ in range(frame_pool.capacity)]
    with pytest.raises(px.PoolExhausted):
        frame_pool.loan_array(16, np.uint8)
    for f in frames:
        f.release()


def test_loan_array_strides_and_fourcc_are_keywords(frame_pool):
    frame = frame_pool.loan_array((2, 3), "uint16", 1.0, strides=(8, 2), fourcc="Y16 ")
    assert frame.array.strides == (8, 2) and frame.format.fourcc == 0x20363159
    with pytest.raises(TypeError):
        frame_pool.loan_array((2, 3), "uint16", 1.0, (8, 2))
    frame.release()


def test_typed_producer_example_publishes_frames_a_reader_checks():
    import shutil
    import subprocess
    import sys
    import tempfile

    from conftest import REPO_ROOT

    runtime = tempfile.mkdtemp(prefix="pxrt")  # short: socket paths must fit 107 bytes
    env = {**os.environ, "PARALLAX_RUNTIME_DIR": runtime}
    try:
        out = subprocess.run(
            [sys.executable, str(REPO_ROOT / "examples" / "python" / "typed_producer.py"),
             "--frames", "12", "--shape", "48,64,3", "--name", "typed-test"],
            capture_output=True, text=True, timeout=120, env=env)
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    assert out.returncode == 0, out.stderr
    assert "reader typed-test: 12 frames checked" in out.stdout
