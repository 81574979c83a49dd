# SPDX-License-Identifier: Apache-2.0 OR MIT
"""parallax: zero-copy memory segments, slot pools, buffers, IPC channels and streams.

Python bindings of libparallax (the library ships inside this package).

Memory is exposed through the buffer protocol, so ``numpy.asarray(slot)`` or
``numpy.frombuffer(buffer, dtype)`` alias it without copying. An object whose memory is
exported to a memoryview or array refuses ``close()``/``release()`` with BufferError until
those views are gone, so no view can ever read unmapped memory.

Timeouts are seconds everywhere: ``None`` waits forever (any negative value or
``float('inf')`` too), ``0`` polls, a positive value waits up to that long and then raises
Timeout. The one exception is ``MemoryPool.loan``, whose default is ``timeout=0``: a loan
never blocks unless asked to, and raises PoolExhausted when every slot is out.

Streams publish each frame once, zero-copy, to every process subscribed by name:
``Publisher(name)`` / ``Subscriber(name)``, ``stream_stats(name)``, ``stream_subscribers(name)`` and
``list_streams()``.

Every call that can wait releases the GIL.

asyncio: ``await ch.recv_async()`` / ``await sub.recv_async()`` and ``async for buf in ch``
wait through the event loop on the object's fd (no thread). multiprocessing: a
``Channel.pair()`` end, a ``Subscriber`` and a ``SharedMemorySegment`` can be passed to a
``Process`` under any start method (see parallax._reduction for what moves and what stays).
"""

from __future__ import annotations

from . import errors
from ._parallax import (
    HEADER_VERSION,
    HUGE_PAGE_1GB,
    HUGE_PAGE_2MB,
    METADATA_USER_MAX,
    SPIN_DEFAULT,
    TIME_NONE,
    ArraySlot,
    Buffer,
    Channel,
    ChannelStats,
    DType,
    Format,
    HeapSegment,
    HugePageSegment,
    Listener,
    MappedFileSegment,
    MemoryPool,
    MemoryType,
    Metadata,
    Publisher,
    PublisherStats,
    Segment,
    SharedMemorySegment,
    Slot,
    SlowPolicy,
    Subscriber,
    SubscriberInfo,
    SubscriberStats,
    __version__,
    list_streams,
    status_string,
    stream_stats,
    stream_subscribers,
    version,
)
from . import _aio, _reduction
from .errors import (
    Busy,
    ChannelClosed,
    InternalError,
    InvalidArgument,
    IOFailure,
    OutOfMemory,
    ParallaxError,
    PermissionDenied,
    PoolExhausted,
    ProtocolError,
    Timeout,
    Unsupported,
    WouldBlock,
)

__all__ = [
    "__version__",
    "version",
    "HEADER_VERSION",
    "status_string",
    "HUGE_PAGE_1GB",
    "HUGE_PAGE_2MB",
    "METADATA_USER_MAX",
    "SPIN_DEFAULT",
    "TIME_NONE",
    "MemoryType",
    "Segment",
    "HeapSegment",
    "SharedMemorySegment",
    "HugePageSegment",
    "MappedFileSegment",
    "MemoryPool",
    "Slot",
    "ArraySlot",
    "Buffer",
    "Format",
    "DType",
    "Metadata",
    "Channel",
    "ChannelStats",
    "Listener",
    "Publisher",
    "PublisherStats",
    "SlowPolicy",
    "Subscriber",
    "SubscriberStats",
    "SubscriberInfo",
    "stream_subscribers",
    "stream_stats",
    "list_streams",
    "errors",
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
]

_aio.install()
_reduction.install()
