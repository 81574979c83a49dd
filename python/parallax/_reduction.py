# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Passing parallax objects to multiprocessing children (``spawn``, ``forkserver``, ``fork``)
and through multiprocessing Queues and Pipes.

Their file descriptors travel the way multiprocessing passes sockets: ``reduction.DupFd``,
which hands the fd to a child being started (spawn, forkserver) or serves it through the
``resource_sharer`` to whichever process unpickles the object. The reducers are registered
with multiprocessing's ForkingPickler only; plain ``pickle`` cannot carry an fd, so it raises
a TypeError that says what to do instead.

What moves, and what this process keeps:

- SharedMemorySegment (and HugePageSegment): its memfd; the child maps the same memory
  (read-only if this mapping is). This process's segment is untouched.
- Channel: a channel end is a socket plus state (rings in shared memory, a return path) that
  the C API cannot rebuild in another process. So only an end of ``Channel.pair()`` whose
  other end is still open in this process, and which has not carried anything yet, can be
  passed: a fresh socketpair is made, one socket goes to the child, which runs the handshake
  on it there (``Channel.from_fd``); the other end of the pair, which this process keeps,
  switches to the other socket (its handshake runs in a short-lived thread while the child
  starts; the kept end's first call waits for it). The passed end is closed in this process.
- Subscriber: its connection is the publisher's state too; this process's subscriber leaves
  the stream and the child subscribes to the same stream (by its socket path, resolved here)
  when it unpickles it.
"""

from __future__ import annotations

import concurrent.futures
import os
import socket
import threading
from multiprocessing import reduction
from typing import Any, Callable, Tuple

from ._parallax import Channel, HugePageSegment, Segment, SharedMemorySegment, Subscriber
from .errors import InvalidArgument

# How long a child has to start and unpickle a Subscriber before its publisher admits it.
SUBSCRIBE_TIMEOUT = 10.0


class Handover:
    """The kept end's side of a handover: the handshake with the child, run in a thread
    (``Channel.from_fd`` waits up to 10 s for the child's hello, with the GIL released)."""

    def __init__(self, keep: socket.socket, child: socket.socket) -> None:
        self._future: concurrent.futures.Future[Channel] = concurrent.futures.Future()
        self._discarded = False
        self._lock = threading.Lock()
        self._child = child
        threading.Thread(target=self._run, args=(keep,), name="parallax-handover",
                         daemon=True).start()

    def _run(self, keep: socket.socket) -> None:
        try:
            channel = Channel.from_fd(keep.detach())
        except BaseException as exc:  # noqa: BLE001 - the kept end raises it on its next call
            self._future.set_exception(exc)
        else:
            with self._lock:
                discarded = self._discarded
                if not discarded:
                    self._future.set_result(channel)
            if discarded:
                channel.close()
        finally:
            # The child has its copy now (or never will): ours must not keep its end open.
            self._child.close()

    def result(self) -> Channel:
        """The connected Channel; raises what the handshake raised (e.g. Timeout)."""
        return self._future.result()

    def discard(self) -> None:
        """The kept end was closed before the handshake finished: close what it yields."""
        with self._lock:
            self._discarded = True
            done = self._future.done() and self._future.exception() is None
        if done:
            self._future.result().close()


def _reduce_channel(end: Channel) -> Tuple[Callable[..., Channel], Tuple[Any, ...]]:
    if end.closed:
        raise InvalidArgument("cannot pass a closed Channel to another process")
    keeper = end._pair_peer
    if keeper is None:
        raise TypeError(
            "only an end of Channel.pair() whose other end is still open in this process can "
            "be passed to another process (a channel end's state cannot move); to connect a "
            "child otherwise, pass a Listener's path and Channel.connect() in the child")
    for ch in (end, keeper):
        st = ch.stats()
        if st.buffers_sent or st.buffers_received:
            raise InvalidArgument(
                "cannot pass a Channel.pair() end to another process after either end has "
                "sent or received (what is in flight would be lost): pass it first")
    keep, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    child_fd = reduction.DupFd(child.fileno())
    keeper._hand_over(Handover(keep, child))
    end.close()  # it lives in the child now; its old peer is gone
    return _rebuild_channel, (child_fd,)


def _rebuild_channel(dup_fd: Any) -> Channel:
    return Channel.from_fd(dup_fd.detach())


def _reduce_segment(seg: Segment) -> Tuple[Callable[..., Segment], Tuple[Any, ...]]:
    fd, size = seg.ipc_handle()  # Unsupported for memory that has no fd
    return _rebuild_segment, (reduction.DupFd(fd), size, seg.readonly)


def _rebuild_segment(dup_fd: Any, size: int, readonly: bool) -> Segment:
    fd = dup_fd.detach()
    try:
        return SharedMemorySegment.from_fd(fd, size, readonly=readonly)
    finally:
        os.close(fd)  # from_fd keeps its own dup


def stream_socket_path(name: str) -> str:
    """The socket path of stream ``name`` as this process resolves it (API.md, Streams: a
    name with '/' is a path; else $PARALLAX_RUNTIME_DIR, $XDG_RUNTIME_DIR/parallax or
    /tmp/parallax-<uid>). A child resolves a bare name in its own environment, which a
    forkserver started earlier may not share; the path means the same stream everywhere.
    (The C API has no call for this; px_stream_path would replace this function.)"""
    if "/" in name:
        return name
    runtime = os.environ.get("PARALLAX_RUNTIME_DIR")
    if not runtime:
        xdg = os.environ.get("XDG_RUNTIME_DIR")
        runtime = os.path.join(xdg, "parallax") if xdg else f"/tmp/parallax-{os.getuid()}"
    return os.path.join(runtime, name)


def _reduce_subscriber(sub: Subscriber) -> Tuple[Callable[..., Subscriber], Tuple[Any, ...]]:
    path = stream_socket_path(sub.name)
    sub.close()  # it lives in the child now; an unread copy here would only hold frames back
    return _rebuild_subscriber, (path,)


def _rebuild_subscriber(name: str) -> Subscriber:
    return Subscriber(name, timeout=SUBSCRIBE_TIMEOUT)


def _refuse_plain_pickle(self: object, protocol: object = None) -> None:
    name = type(self).__name__
    if isinstance(self, Segment) and not isinstance(self, (SharedMemorySegment,
                                                           HugePageSegment)):
        raise TypeError(
            f"cannot pass a parallax.{name} to another process: its memory cannot be shared "
            "through a file descriptor (use a SharedMemorySegment; a mapped file is opened "
            "by its path in the other process)")
    raise TypeError(
        f"cannot pickle parallax.{name}: it holds file descriptors, which only "
        f"multiprocessing can hand to another process; pass the {name} to a "
        "multiprocessing.Process (args=...) or send it through a multiprocessing Queue or "
        "Pipe")


def install() -> None:
    """Registers the reducers with multiprocessing and refuses plain pickling."""
    reduction.register(Channel, _reduce_channel)
    reduction.register(Subscriber, _reduce_subscriber)
    reduction.register(SharedMemorySegment, _reduce_segment)
    reduction.register(HugePageSegment, _reduce_segment)
    for cls in (Channel, Subscriber, Segment):
        cls.__reduce_ex__ = _refuse_plain_pickle  # type: ignore[assignment,method-assign]
