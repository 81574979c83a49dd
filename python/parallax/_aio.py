# SPDX-License-Identifier: Apache-2.0 OR MIT
"""asyncio for Channel and Subscriber: ``await x.recv_async()`` and ``async for buf in x``.

The event loop waits on the object's pollable fd (``loop.add_reader``): no thread per channel,
and no thread at all. A receive first tries ``recv(0)`` (``_try_recv``: None instead of a
WouldBlock exception), so a buffer that is already there costs no trip through the loop. Only
then does the caller wait, as one future in a FIFO of this object's waiters; the reader
callback takes a buffer from the channel only for the first waiter still pending and hands it
over in the same step (no await in between), so cancelling a wait never loses a buffer: one
cancelled before the callback runs takes nothing, and one that ran has its buffer already.

The reader stays registered while the consumer keeps waiting (one add_reader per burst of
waits, not per frame) and is removed once a step of the loop passes with nobody waiting, or
when the object is closed.
"""

from __future__ import annotations

import asyncio
import collections
import weakref
from typing import Deque, Union

from ._parallax import Buffer, Channel, Subscriber
from .errors import ChannelClosed

_Receiver = Union[Channel, Subscriber]


class _Waiters:
    """The asyncio waiters of one Channel or Subscriber, bound to one event loop."""

    def __init__(self, source: _Receiver, loop: asyncio.AbstractEventLoop) -> None:
        # Weak: the object holds this state, and a strong reference back would be a cycle the
        # collector cannot see through the C++ object (its fd would never be closed).
        self.source = weakref.ref(source)
        self.name = type(source).__name__
        self.loop = loop
        self.fd = source.fileno()
        self.queue: Deque[asyncio.Future[Buffer]] = collections.deque()
        self.reading = False

    def wait(self) -> asyncio.Future[Buffer]:
        fut: asyncio.Future[Buffer] = self.loop.create_future()
        self.queue.append(fut)
        fut.add_done_callback(self._forget)
        if not self.reading:
            self.loop.add_reader(self.fd, self._on_readable)
            self.reading = True
        return fut

    def _on_readable(self) -> None:
        while self.queue:
            fut = self.queue[0]
            if fut.done():  # cancelled: it takes nothing
                self.queue.popleft()
                continue
            source = self.source()
            if source is None:  # unreachable while a task awaits it; kept for safety
                self._closing()
                return
            try:
                buf = source._try_recv()
            except BaseException as exc:  # ChannelClosed (end of stream), ProtocolError...
                self.queue.popleft()
                fut.set_exception(exc)
                continue  # the next waiter gets the same answer from its own try
            if buf is None:  # woken for a description record, or raced: wait again
                return
            self.queue.popleft()
            fut.set_result(buf)
        # Nobody waits now. A streaming consumer usually waits again within the step the
        # result wakes (scheduled just before this check): then the reader stays, since
        # add_reader + remove_reader cost more than a frame. Otherwise it goes, so that an idle
        # object is not watched (and a level-triggered fd never spins the loop).
        self.loop.call_soon(self._stop_if_idle)

    def _stop_if_idle(self) -> None:
        if not self.queue:
            self._stop_reading()

    def _forget(self, fut: asyncio.Future[Buffer]) -> None:
        # A cancelled waiter leaves the queue at once.
        if fut.cancelled():
            try:
                self.queue.remove(fut)
            except ValueError:
                pass
            self._stop_if_idle()

    def _stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            if not self.loop.is_closed():
                self.loop.remove_reader(self.fd)

    def _closing(self) -> None:
        """Called by close() before the fd goes away: every waiter gets ChannelClosed."""
        self._stop_reading()
        while self.queue:
            fut = self.queue.popleft()
            if not fut.done():
                fut.set_exception(ChannelClosed(f"{self.name} was closed while recv_async "
                                                "waited"))


def _waiters(source: _Receiver) -> _Waiters:
    loop = asyncio.get_running_loop()
    state = source._aio
    if not isinstance(state, _Waiters) or state.loop is not loop:
        if isinstance(state, _Waiters) and state.queue:
            raise RuntimeError(f"{type(source).__name__}.recv_async is already awaited in "
                               "another event loop")
        state = _Waiters(source, loop)
        source._aio = state
    return state


async def recv_async(self: _Receiver) -> Buffer:
    """The next buffer, awaited in asyncio (the loop waits on ``fileno()``; no thread).

    As ``recv()`` without a timeout: read-only, zero-copy. Wrap it in ``asyncio.wait_for`` for
    a timeout. Several tasks may await the same object: they get buffers in the order they
    started waiting. Cancelling the await loses no buffer.

    Raises:
        ChannelClosed: the peer (publisher) is gone and everything it sent was received, or
            this object was closed while waiting. ProtocolError: the peer sent malformed data.
        InvalidArgument: the object is closed. RuntimeError: no running event loop, or
            another loop is already waiting on this object.

    Example::

        async def consume(ch: px.Channel) -> None:
            buf = await asyncio.wait_for(ch.recv_async(), timeout=1.0)
            print(len(buf), buf.metadata.sequence)
    """
    state = _waiters(self)
    if not state.queue:  # first in line: a buffer already there costs no loop round trip
        buf = self._try_recv()
        if buf is not None:
            return buf
    return await state.wait()


def __aiter__(self: _Receiver) -> _Receiver:
    """``async for buf in x``: the object itself (see ``__anext__``)."""
    return self


async def __anext__(self: _Receiver) -> Buffer:
    """The next buffer (``recv_async()``); StopAsyncIteration at the end of the stream
    (ChannelClosed: the peer or publisher is gone and everything it sent was received)."""
    try:
        return await recv_async(self)
    except ChannelClosed:
        raise StopAsyncIteration from None


def install() -> None:
    """Adds recv_async, __aiter__ and __anext__ to Channel and Subscriber."""
    for cls in (Channel, Subscriber):
        cls.recv_async = recv_async  # type: ignore[assignment,method-assign]
        cls.__aiter__ = __aiter__  # type: ignore[assignment,method-assign]
        cls.__anext__ = __anext__  # type: ignore[assignment,method-assign]
