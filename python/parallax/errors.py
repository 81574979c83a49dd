# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Exceptions raised by parallax, one per libparallax status code.

Every exception carries the library's own message (``str(exc)``) and the C status
(``exc.status``, e.g. -1 for PX_E_INVALID). Each also derives from the builtin exception a
Python programmer would reach for, so ``except ValueError`` or ``except TimeoutError`` work
as expected.
"""

from __future__ import annotations

__all__ = [
    "ParallaxError",
    "InvalidArgument",
    "OutOfMemory",
    "Unsupported",
    "IOFailure",
    "WouldBlock",
    "PoolExhausted",
    "Timeout",
    "ChannelClosed",
    "ProtocolError",
    "PermissionDenied",
    "Busy",
    "InternalError",
    "error_class_for",
]

# Status codes of parallax.h (fixed, never renumbered).
PX_E_INVALID = -1
PX_E_NOMEM = -2
PX_E_UNSUPPORTED = -3
PX_E_IO = -4
PX_E_WOULD_BLOCK = -5
PX_E_TIMEOUT = -6
PX_E_CLOSED = -7
PX_E_PROTOCOL = -8
PX_E_PERMISSION = -9
PX_E_BUSY = -10
PX_E_INTERNAL = -11


class ParallaxError(Exception):
    """Base of every parallax error. ``status`` is the libparallax status code."""

    status: int | None = None


class InvalidArgument(ParallaxError, ValueError):
    """A bad argument or range, or an object used after close()/release()."""

    status = PX_E_INVALID


class OutOfMemory(ParallaxError, MemoryError):
    """The library could not allocate memory (a segment, a handle)."""

    status = PX_E_NOMEM


class Unsupported(ParallaxError):
    """Not available here: huge pages not reserved, IPC of a heap segment, ..."""

    status = PX_E_UNSUPPORTED


class IOFailure(ParallaxError, OSError):
    """An OS call failed; the message names the call and errno."""

    status = PX_E_IO


class WouldBlock(ParallaxError, BlockingIOError):
    """A zero timeout found nothing ready (e.g. ``Channel.recv(timeout=0)``)."""

    status = PX_E_WOULD_BLOCK


class PoolExhausted(WouldBlock):
    """``MemoryPool.loan()`` without a timeout found every slot out."""


class Timeout(ParallaxError, TimeoutError):
    """A positive timeout expired."""

    status = PX_E_TIMEOUT


class ChannelClosed(ParallaxError, ConnectionError):
    """The peer is gone or the channel was closed (for a Subscriber: its publisher is gone, or
    dropped it, and everything it sent has been received)."""

    status = PX_E_CLOSED


class ProtocolError(ParallaxError):
    """The peer sent malformed or hostile data; the connection was dropped."""

    status = PX_E_PROTOCOL


class PermissionDenied(ParallaxError, PermissionError):
    """Peer credentials refused, or access denied."""

    status = PX_E_PERMISSION


class Busy(ParallaxError):
    """The resource is in use (e.g. a live listener or publisher already owns the socket path
    or stream name, or a publisher already has max_subscribers)."""

    status = PX_E_BUSY


class InternalError(ParallaxError):
    """A bug in libparallax; please report it."""

    status = PX_E_INTERNAL


_BY_STATUS: dict[int, type[ParallaxError]] = {
    cls.status: cls  # type: ignore[misc]
    for cls in (
        InvalidArgument,
        OutOfMemory,
        Unsupported,
        IOFailure,
        WouldBlock,
        Timeout,
        ChannelClosed,
        ProtocolError,
        PermissionDenied,
        Busy,
        InternalError,
    )
}


def error_class_for(status: int) -> type[ParallaxError]:
    """The exception class for a status code (ParallaxError for unknown codes)."""
    return _BY_STATUS.get(status, ParallaxError)
