# SPDX-License-Identifier: Apache-2.0 OR MIT
"""DLPack: Buffer.__dlpack__ / __dlpack_device__ hand a frame to array libraries without a
copy, never as a writable view of read-only (received) memory."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import parallax as px
from conftest import address


class Legacy:
    """A consumer from before DLPack 1.0: it passes no max_version, so it gets the legacy
    capsule (which numpy still accepts)."""

    def __init__(self, buf, **kwargs):
        self.buf, self.kwargs = buf, kwargs

    def __dlpack__(self, **_ignored):
        return self.buf.__dlpack__(**self.kwargs)

    def __dlpack_device__(self):
        return self.buf.__dlpack_device__()


@pytest.fixture
def pair():
    a, b = px.Channel.pair()
    yield a, b
    a.close()
    b.close()


def typed(pool, dtype="float32", shape=(4, 8)):
    buf = pool.loan(timeout=1).into_buffer()
    buf.set_format(dtype, shape)
    return buf


def received(pool, pair):
    buf = typed(pool)
    np.asarray(buf)[:] = np.arange(32, dtype=np.float32).reshape(4, 8)
    pair[0].send(buf, timeout=1)
    return pair[1].recv(timeout=1)


def test_device_is_the_cpu(shm_pool):
    assert typed(shm_pool).__dlpack_device__() == (1, 0)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32",
                                   "uint64", "int64", "float16", "float32", "float64"])
def test_from_dlpack_is_zero_copy_with_the_format(shm_pool, dtype):
    buf = typed(shm_pool, dtype, (3, 5))
    arr = np.from_dlpack(buf)
    assert arr.shape == (3, 5) and arr.dtype == np.dtype(dtype) and arr.flags.writeable
    assert arr.ctypes.data == address(buf.slice(0))
    arr[2, 4] = 7
    assert np.asarray(buf)[2, 4] == 7


def test_an_untyped_buffer_is_a_1d_uint8_tensor(shm_pool):
    buf = shm_pool.loan(timeout=1).into_buffer(10)
    arr = np.from_dlpack(buf)
    assert arr.shape == (10,) and arr.dtype == np.uint8


def test_padded_strides_are_kept(shm_pool):
    buf = shm_pool.loan(timeout=1).into_buffer(64)
    buf.set_format(np.uint16, (4, 3), strides=(16, 2))
    assert np.from_dlpack(buf).strides == (16, 2)


def test_a_received_frame_is_read_only_and_zero_copy(shm_pool, pair):
    got = received(shm_pool, pair)
    arr = np.from_dlpack(got)
    assert not arr.flags.writeable and arr[3, 7] == 31
    assert arr.ctypes.data == address(got.slice(0))
    with pytest.raises(ValueError):
        arr.setflags(write=True)


def test_versioned_capsule_when_the_consumer_asks_for_1_0(shm_pool):
    buf = typed(shm_pool)
    assert "dltensor_versioned" in repr(buf.__dlpack__(max_version=(1, 0)))
    assert "dltensor_versioned" in repr(buf.__dlpack__(max_version=(1, 3)))
    assert '"dltensor"' in repr(buf.__dlpack__(max_version=(0, 8)))
    assert '"dltensor"' in repr(buf.__dlpack__())


def test_legacy_consumers_get_writable_memory_only(shm_pool, pair):
    buf = typed(shm_pool)
    arr = np.from_dlpack(Legacy(buf))  # numpy marks any legacy tensor read-only itself
    assert arr.ctypes.data == address(buf.slice(0))
    got = received(shm_pool, pair)
    with pytest.raises(BufferError, match="read-only"):
        got.__dlpack__()
    with pytest.raises(BufferError, match="copy=False"):
        got.__dlpack__(copy=False)


def test_copy_true_hands_out_a_private_copy(shm_pool, pair):
    got = received(shm_pool, pair)
    copy = np.from_dlpack(Legacy(got, copy=True))
    assert copy.ctypes.data != address(got.slice(0)) and copy[3, 7] == 31
    again = np.from_dlpack(got, copy=True)  # through numpy's own copy argument
    assert again.ctypes.data != address(got.slice(0)) and again[3, 7] == 31
    del copy, again
    got.release()  # a copy holds no view of the buffer


def test_the_tensor_keeps_the_buffer_alive(shm_pool):
    buf = typed(shm_pool)
    arr = np.from_dlpack(buf)
    with pytest.raises(BufferError):
        buf.release()
    del arr
    gc.collect()
    buf.release()
    assert shm_pool.available == shm_pool.capacity


def test_an_unconsumed_capsule_gives_its_export_back(shm_pool):
    buf = typed(shm_pool)
    capsule = buf.__dlpack__(max_version=(1, 0))
    with pytest.raises(BufferError):
        buf.release()
    del capsule
    buf.release()


def test_bad_requests(shm_pool):
    buf = typed(shm_pool)
    with pytest.raises(BufferError, match="kDLCPU"):
        buf.__dlpack__(dl_device=(2, 0))
    with pytest.raises(px.InvalidArgument, match="stream"):
        buf.__dlpack__(stream=1)
    with pytest.raises(TypeError):
        buf.__dlpack__(None)
    with pytest.raises(TypeError):
        buf.__dlpack__(copy="yes")
    with pytest.raises(TypeError):
        buf.__dlpack__(max_version=1)
    buf.__dlpack__(dl_device=(1, 0), stream=None)
    buf.release()
    with pytest.raises(px.InvalidArgument, match="released"):
        buf.__dlpack__()
