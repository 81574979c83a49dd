# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Exceptions: one class per status, builtin bases, the library's own message."""

from __future__ import annotations

import builtins

import pytest

import parallax as px
from parallax import errors


@pytest.mark.parametrize(
    "cls, status, builtin",
    [
        (px.InvalidArgument, -1, ValueError),
        (px.OutOfMemory, -2, MemoryError),
        (px.Unsupported, -3, None),
        (px.IOFailure, -4, OSError),
        (px.WouldBlock, -5, BlockingIOError),
        (px.PoolExhausted, -5, BlockingIOError),
        (px.Timeout, -6, TimeoutError),
        (px.ChannelClosed, -7, ConnectionError),
        (px.ProtocolError, -8, None),
        (px.PermissionDenied, -9, PermissionError),
        (px.Busy, -10, None),
        (px.InternalError, -11, None),
    ],
)
def test_hierarchy(cls, status, builtin):
    assert issubclass(cls, px.ParallaxError)
    assert cls.status == status
    if builtin is not None:
        assert issubclass(cls, builtin)
    assert px.status_string(status).startswith("PX_E_")


def test_error_class_for_maps_every_status_and_unknown_codes_to_the_base():
    assert errors.error_class_for(-1) is px.InvalidArgument
    assert errors.error_class_for(-5) is px.WouldBlock
    assert errors.error_class_for(-99) is px.ParallaxError
    assert px.status_string(-99) == "PX_E_UNKNOWN"
    assert px.status_string(0) == "PX_OK"


def test_library_message_and_status_reach_python():
    with pytest.raises(px.InvalidArgument) as info:
        px.MemoryPool(px.HeapSegment(4096), 0)
    assert str(info.value) == "px_pool_new: slot_size is 0"
    assert info.value.status == -1
    assert isinstance(info.value, ValueError)


def test_a_ValueError_handler_catches_library_errors():
    try:
        px.HeapSegment(0)
    except ValueError as e:
        assert "size is 0" in str(e)
    else:
        pytest.fail("HeapSegment(0) did not raise")


def test_builtin_IOError_is_not_shadowed():
    assert builtins.IOError is OSError
    assert not hasattr(px, "IOError")
