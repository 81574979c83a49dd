// SPDX-License-Identifier: Apache-2.0 OR MIT
// Channel, Listener and ChannelStats. Every call that may wait releases the GIL.
#include "convert.hpp"
#include "fastcall.hpp"
#include "objects.hpp"
#include "recycle.hpp"

namespace pxpy {

namespace {

// After a poll that found nothing, this many blocking recv() calls go straight to the wait.
constexpr uint8_t recv_polls_skipped = 15;

// Receives with the GIL released only when it has to wait: a poll first (a buffer is often
// already there in a streaming consumer), then the blocking call. But a poll that finds nothing
// is wasted work (a clock read, and at most every 20 us a read of the socket for a hang-up or a
// protocol error: RecvSide::socket_due), and a caller that waits for answers (ping-pong) meets
// that case every time, with the blocking call's cost on top; so after one the
// next calls skip the poll (the blocking call takes a buffer that is there at once, only the
// GIL goes and comes back, ~0.1 us) and every 16th polls again, so that a consumer that has
// fallen behind again goes back to polling within 16 frames.
px_status_t recv_buffer(PyChannel &c, int64_t ns, px_buffer_t **buf) {
    px_channel_t *ch = c.get();
    if (ns != 0 && c.recv_skip_poll > 0) {
        --c.recv_skip_poll;
    } else {
        px_status_t st = px_channel_recv(ch, 0, buf);
        if (st != PX_E_WOULD_BLOCK || ns == 0)
            return st;
        c.recv_skip_poll = recv_polls_skipped;
    }
    auto lease = c.handle.lease("channel");
    py::gil_scoped_release nogil;
    return px_channel_recv(lease.get(), ns, buf);
}

px_status_t send(PyChannel &c, PyBuffer &b, int64_t ns) {
    // First without waiting, GIL held (the ring usually has room); then, if the peer is
    // behind and the caller may wait, with the GIL released and both objects leased (another
    // thread may close either meanwhile).
    px_status_t st = px_channel_send_timeout(c.get(), b.get(), 0);
    if (st != PX_E_WOULD_BLOCK || ns == 0)
        return st;
    auto ch = c.handle.lease("channel");
    auto buf = b.handle.lease("buffer");
    py::gil_scoped_release nogil;
    return px_channel_send_timeout(ch.get(), buf.get(), ns);
}

void set_spin(PyChannel &c, TimeoutArg seconds) {
    check(px_channel_set_spin_ns(c.get(), as_timeout_ns(seconds, "seconds")));
}

px_channel_stats_t stats(PyChannel &c) {
    px_channel_stats_t s{};
    check(px_channel_get_stats(c.get(), &s));
    return s;
}

std::unique_ptr<PyChannel> connect(PathArg path, TimeoutArg timeout) {
    std::string p = as_path(path);
    int64_t ns = as_timeout_ns(timeout);
    px_channel_t *ch = nullptr;
    px_status_t st;
    {
        py::gil_scoped_release nogil;
        st = px_channel_connect(p.c_str(), ns, &ch);
    }
    check(st);
    return std::make_unique<PyChannel>(ch);
}

std::unique_ptr<PyChannel> from_fd(IntArg fd) {
    // Only a plain int: the channel takes ownership, and an object with fileno() (a socket)
    // would close the same fd again when it is collected.
    if (!PyIndex_Check(fd.ptr()))
        throw py::type_error("fd must be an int (the channel takes ownership: pass "
                             "sock.detach(), not the socket)");
    int f = as_fd(fd);
    px_channel_t *ch = nullptr;
    px_status_t st;
    {
        py::gil_scoped_release nogil; // the handshake waits for the peer
        st = px_channel_from_fd(f, &ch);
    }
    check(st);
    return std::make_unique<PyChannel>(ch);
}

std::unique_ptr<PyChannel> accept(PyListener &l, TimeoutArg timeout) {
    int64_t ns = as_timeout_ns(timeout);
    auto lease = l.handle.lease("listener");
    px_channel_t *ch = nullptr;
    px_status_t st;
    {
        py::gil_scoped_release nogil;
        st = px_listener_accept(lease.get(), ns, &ch);
    }
    check(st);
    return std::make_unique<PyChannel>(ch);
}

int channel_fd(PyChannel &c) {
    int fd = px_channel_fd(c.get());
    if (fd < 0) // out of fds at the first call: the library's message says so
        raise_last(PX_E_IO);
    return fd;
}

// Channel.pair(): two ends that know each other (weakly) until one is handed to a child.
py::tuple make_pair() {
    px_channel_t *a = nullptr, *b = nullptr;
    check(px_channel_pair(&a, &b));
    py::object oa = py::cast(std::make_unique<PyChannel>(a));
    py::object ob = py::cast(std::make_unique<PyChannel>(b));
    oa.cast<PyChannel &>().pair_peer = py::weakref(ob);
    ob.cast<PyChannel &>().pair_peer = py::weakref(oa);
    return py::make_tuple(oa, ob);
}

// The other end of a pair while it is alive and open in this process, else None.
py::object pair_peer(PyChannel &c) {
    if (c.pair_peer.is_none())
        return py::none();
    py::object peer = c.pair_peer();
    if (peer.is_none() || !peer.cast<PyChannel &>().is_open())
        return py::none();
    return peer;
}

// This end stops being the in-process pair end it was: its handle is released now, and the
// next call on it waits for `handover` (see _reduction.py) to deliver the replacement.
void hand_over(PyChannel &c, py::object handover) {
    px_channel_release(c.handle.take("channel")); // refuses while another thread uses it
    c.pending = std::move(handover);
    c.pair_peer = py::none();
}

py::object next_buffer(PyChannel &c) {
    px_buffer_t *buf = nullptr;
    px_status_t st = recv_buffer(c, -1, &buf);
    if (st == PX_E_CLOSED)
        throw py::stop_iteration();
    check(st);
    return recycler<PyBuffer>().wrap(buf);
}

// The per-frame methods, through vectorcall (fastcall.hpp).
PyChannel &self_channel(PyObject *self) {
    return cast_arg<PyChannel>(self, "self", "Channel");
}

// Failures set the Python error and return nullptr without a C++ throw (set_last_error).
PyObject *fast_recv(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *timeout;
    bind_args("recv", args, nargs, kwnames, {"timeout"}, &timeout);
    PyChannel &c = self_channel(self);
    int64_t ns = as_timeout_ns(timeout ? timeout : Py_None);
    px_buffer_t *buf = nullptr;
    px_status_t st = recv_buffer(c, ns, &buf);
    if (st != PX_OK) {
        set_last_error(st);
        return nullptr;
    }
    return recycler<PyBuffer>().wrap(buf).release().ptr();
}

PyObject *fast_send(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *a[2]; // buffer, timeout
    bind_args("send", args, nargs, kwnames, {"buffer", "timeout"}, a);
    if (!a[0])
        throw py::type_error("send() missing required argument 'buffer'");
    PyChannel &c = self_channel(self);
    PyBuffer &b = cast_arg<PyBuffer>(a[0], "buffer", "Buffer");
    px_status_t st = send(c, b, as_timeout_ns(a[1] ? a[1] : Py_None));
    if (st != PX_OK) {
        set_last_error(st);
        return nullptr;
    }
    return none();
}

// recv(0) that answers None instead of raising WouldBlock: the asyncio layer (_aio.py) tries
// it before every wait, and an exception costs microseconds.
PyObject *fast_try_recv(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames) {
    bind_args("_try_recv", args, nargs, kwnames, {}, nullptr);
    px_buffer_t *buf = nullptr;
    px_status_t st = px_channel_recv(self_channel(self).get(), 0, &buf);
    if (st == PX_E_WOULD_BLOCK)
        return none();
    if (st != PX_OK) {
        set_last_error(st);
        return nullptr;
    }
    return recycler<PyBuffer>().wrap(buf).release().ptr();
}

PyObject *fast_next(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    bind_args("__next__", args, nargs, kwnames, {}, nullptr);
    return next_buffer(self_channel(self)).release().ptr();
}

PyMethodDef channel_methods[] = {
    fast_method<fast_send>("send", R"doc(send($self, /, buffer, timeout=None)
--

Sends ``buffer`` zero-copy: the first time its segment crosses this channel the segment's fd
goes over, then only a small descriptor. The sender keeps its reference and may release it
at once (a pool slot stays out until the peer has released what it received).

Args:
    buffer: a Buffer of a shared-memory or huge-page segment.
    timeout: seconds to wait while the peer is too far behind to take another buffer (None:
        forever, 0: not at all).

Raises:
    Unsupported: a heap or mapped-file buffer. WouldBlock / Timeout: the peer stayed behind.
    ChannelClosed: the peer is gone. InvalidArgument: the channel or buffer was closed.

Example::

    ch.send(pool.loan(timeout=1).into_buffer(64), timeout=1.0)
)doc"),
    fast_method<fast_recv>("recv", R"doc(recv($self, /, timeout=None)
--

The next buffer from the peer: read-only, zero-copy (it points into the sender's memory), with
its metadata; it stays valid after the channel is closed.

Args:
    timeout: seconds to wait (None: forever; 0 polls).

Raises:
    WouldBlock: timeout 0 and nothing there. Timeout: nothing came in time. ChannelClosed:
    the peer has closed and everything it sent was received. ProtocolError: the peer sent
    malformed data (the connection is dropped). InvalidArgument: the channel is closed.

Example::

    with ch.recv(timeout=1.0) as buf:
        print(len(buf), buf.metadata.sequence)
)doc"),
    fast_method<fast_try_recv>("_try_recv", "_try_recv($self, /)\n--\n\nrecv(0), or None "
                                            "when nothing is there (for parallax._aio)."),
    fast_method<fast_next>("__next__", "__next__($self, /)\n--\n\nThe next buffer (recv()); "
                                       "StopIteration once the peer has closed."),
};

} // namespace

void PyChannel::adopt_pending() {
    py::object handover = std::exchange(pending, py::none());
    // Waits (Future.result releases the GIL) for the peer's hello; what the handshake raised
    // propagates and leaves this end closed.
    py::object fresh = handover.attr("result")();
    handle.reset(cast_arg<PyChannel>(fresh, "handover", "Channel").handle.take("channel"));
}

void PyChannel::close() {
    if (!aio.is_none()) // its waiters leave the event loop before the fd goes away
        aio.attr("_closing")();
    if (!pending.is_none()) {
        std::exchange(pending, py::none()).attr("discard")();
        return;
    }
    handle.close("channel");
}

void bind_channel(py::module_ &m) {
    py::class_<px_channel_stats_t>(m, "ChannelStats", R"doc(
Counters of one channel end (``Channel.stats()``), for monitoring and tests.

- ``buffers_sent`` / ``buffers_received``: buffers this end sent / received;
- ``segments_registered``: segments whose fd this end has sent (once per segment);
- ``slots_lent``: pool slots sent to the peer and not yet returned;
- ``returns_accepted`` / ``returns_refused``: slot returns from the peer that matched a loan /
  that did not (never lent, or returned twice: a buggy or hostile peer);
- ``slots_reclaimed``: slots taken back because the peer went away;
- ``peer_pid``: the peer's process at the handshake (for ``pair()``: the creator).

Example::

    a, b = px.Channel.pair()
    print(a.stats().buffers_sent, a.stats().peer_pid)
)doc")
        .def_readonly("buffers_sent", &px_channel_stats_t::buffers_sent, "Buffers sent.")
        .def_readonly("buffers_received", &px_channel_stats_t::buffers_received,
                      "Buffers received.")
        .def_readonly("segments_registered", &px_channel_stats_t::segments_registered,
                      "Segments whose fd this end has sent.")
        .def_readonly("slots_lent", &px_channel_stats_t::slots_lent,
                      "Pool slots sent to the peer and not yet returned.")
        .def_readonly("returns_accepted", &px_channel_stats_t::returns_accepted,
                      "Slot returns from the peer that matched a loan.")
        .def_readonly("returns_refused", &px_channel_stats_t::returns_refused,
                      "Slot returns of slots never lent, or returned twice.")
        .def_readonly("slots_reclaimed", &px_channel_stats_t::slots_reclaimed,
                      "Slots taken back because the peer went away.")
        .def_readonly("peer_pid", &px_channel_stats_t::peer_pid,
                      "The peer's process at the handshake (pair(): the creator).")
        .def("__repr__", [](const px_channel_stats_t &s) {
            return "ChannelStats(buffers_sent=" + std::to_string(s.buffers_sent) +
                   ", buffers_received=" + std::to_string(s.buffers_received) +
                   ", segments_registered=" + std::to_string(s.segments_registered) +
                   ", slots_lent=" + std::to_string(s.slots_lent) +
                   ", returns_accepted=" + std::to_string(s.returns_accepted) +
                   ", returns_refused=" + std::to_string(s.returns_refused) +
                   ", slots_reclaimed=" + std::to_string(s.slots_reclaimed) +
                   ", peer_pid=" + std::to_string(s.peer_pid) + ")";
        });

    py::class_<PyChannel>(m, "Channel", R"doc(
A connection to another process that carries buffers zero-copy.

Make one with ``Channel.pair()`` (before ``fork``, or to hand one end to a
``multiprocessing.Process``), ``Channel.connect(path)`` to a ``Listener``, or
``Channel.from_fd(fd)``. ``recv()`` gives read-only buffers that point straight into the
sender's memory; when the receiver releases the last one from a sender's pool slot, the slot
goes back to that pool.

Timeouts are seconds: None (the default) waits forever, 0 polls (WouldBlock when nothing is
ready), a positive value waits up to that long (Timeout). Waiting releases the GIL.
Iterating over a channel yields received buffers until the peer closes it; ``async for`` and
``await recv_async()`` do the same in asyncio, through the event loop (``fileno()``).

An end of ``Channel.pair()`` may be passed to a ``multiprocessing.Process`` (``spawn``,
``forkserver`` or ``fork``) or through a multiprocessing Queue or Pipe: the child gets that
end, this process keeps the other one (see ``pair``). Plain ``pickle`` refuses it (TypeError).

Example::

    import parallax as px

    pool = px.MemoryPool(px.SharedMemorySegment("frames", 1 << 20), 4096)
    tx, rx = px.Channel.pair()
    slot = pool.loan(timeout=1)
    memoryview(slot)[:2] = b"hi"
    tx.send(slot.into_buffer(2))
    with rx.recv(timeout=1) as buf:
        assert bytes(buf) == b"hi"
)doc")
        .def_static("pair", &make_pair, R"doc(
Two connected ends, made for ``os.fork()``. After the fork the parent keeps one end and
closes the other; the child keeps the other and closes the first. Close the unused end even
though the library now copes: a parent that kept the child's end open used to hold a dead
child's slots out of the pool for good (the connection still looked alive); the library now
watches the peer process and takes them back when it dies, but an open copy still pins the
socket and memory until it is closed. Also usable within one process, e.g. between threads.

With ``multiprocessing`` (``spawn``, ``forkserver`` or ``fork``), pass one end in the
Process's ``args`` (or through a multiprocessing Queue or Pipe): the child keeps that end and
this process keeps the other, now connected to the child; this process's object for the
passed end is closed for it. Neither end may have sent or received yet. The handshake with the
child runs in the background; the first call on the kept end waits for it (up to 10 s for the
child to start, then Timeout). For instance
``Process(target=work, args=(child_end,)).start(); parent_end.send(buf)``.

Example::

    import os
    import parallax as px

    pool = px.MemoryPool(px.SharedMemorySegment("frames", 1 << 20), 4096)
    parent_end, child_end = px.Channel.pair()
    pid = os.fork()
    if pid == 0:  # the child keeps child_end
        parent_end.close()
        status = 1
        try:
            with child_end.recv(timeout=5) as frame:
                print("child got", bytes(frame), frame.metadata.sequence, flush=True)
            status = 0
        finally:
            os._exit(status)
    child_end.close()  # the parent keeps parent_end
    slot = pool.loan(timeout=5)
    memoryview(slot)[:5] = b"hello"
    parent_end.send(slot.into_buffer(5, px.Metadata(sequence=1)))
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    parent_end.close()
)doc")
        .def_static("connect", &connect, py::arg("path"), py::arg("timeout") = py::none(),
                    R"doc(
Connects to the ``Listener`` on socket ``path``, handshake done (protocol version, and the
peer's credentials: same uid).

Args:
    path: the listener's socket path.
    timeout: seconds to wait for the listener to accept (None: forever).

Raises:
    ChannelClosed: nothing listens there. Timeout: no answer in time. PermissionDenied: the
    listener runs as another user. ProtocolError: the peer is not a parallax listener.

Example::

    ch = px.Channel.connect("/tmp/camera.sock", timeout=5)
)doc")
        .def_static("from_fd", &from_fd, py::arg("fd"), R"doc(
Adopts a connected AF_UNIX SOCK_SEQPACKET socket and runs the handshake with the process at
its other end (which does the same), waiting up to 10 s for it.

Args:
    fd: the socket's fd, as an int: the channel takes ownership (also on failure), so pass
        ``sock.detach()``, not the socket.

Raises:
    TypeError: not an int. InvalidArgument: not a connected SOCK_SEQPACKET Unix socket.
    Timeout: the peer did not answer. ProtocolError: the peer answered garbage.

Example::

    import socket
    s1, s2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    # ... hand s2 to another process, which calls Channel.from_fd(s2.detach()) ...
    ch = px.Channel.from_fd(s1.detach())
)doc")
        .def("set_spin", &set_spin, py::arg("seconds"), R"doc(
How long recv() busy-polls before it sleeps: 0 sleeps at once (no core spent waiting), None or
a negative value never sleeps (lowest latency, one core busy while waiting), a positive value
polls that long (the default is SPIN_DEFAULT, 20 us).

Raises:
    InvalidArgument: NaN, or the channel is closed.

Example::

    ch.set_spin(0)  # a consumer that must not burn a core
)doc")
        .def("fileno", &channel_fd, R"doc(
The pollable fd: readable when recv() may not block (use with select, selectors or
``loop.add_reader``; ``recv_async`` does). Owned by the channel: never close it.

Raises:
    InvalidArgument: the channel is closed. IOFailure: the process is out of fds.

Example::

    import select
    select.select([ch], [], [], 1.0)
)doc")
        .def("stats", &stats, R"doc(
This end's counters now (a ChannelStats).

Raises:
    InvalidArgument: the channel is closed.

Example::

    print(ch.stats().slots_lent)
)doc")
        .def_property_readonly(
            "closed", [](const PyChannel &c) { return !c.is_open(); },
            "True once close() was called (or the end was handed to a child process).")
        .def(
            "close", [](PyChannel &c) { c.close(); }, R"doc(
Closes this end (idempotent); the peer sees ChannelClosed once it has received what was sent.
Received buffers stay valid; ``recv_async`` waiters get ChannelClosed.

Example::

    with px.Channel.connect(path) as ch:  # closed at the end of the block
        ...
)doc")
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__", [](PyChannel &c, py::args) { c.close(); })
        .def("__iter__", [](py::object self) { return self; })
        .def("__repr__",
             [](PyChannel &c) {
                 if (!c.pending.is_none())
                     return std::string("<Channel handshaking with a child process>");
                 if (!c.handle.is_open())
                     return std::string("<Channel closed>");
                 return "<Channel fd=" + std::to_string(px_channel_fd(c.get())) + ">";
             })
        // Private, for python/parallax/_reduction.py and _aio.py.
        .def_property_readonly("_pair_peer", &pair_peer)
        .def("_hand_over", &hand_over, py::arg("handover"))
        .def_property(
            "_aio", [](const PyChannel &c) { return c.aio; },
            [](PyChannel &c, py::object state) { c.aio = std::move(state); });
    def_fast(m.attr("Channel"), channel_methods);

    py::class_<PyListener>(m, "Listener", R"doc(
Listens on a Unix socket path (mode 0600) for ``Channel.connect()``. A stale socket file (no
one listening) is replaced; a live one raises Busy. ``close()`` removes the socket file (only
in the process that made the listener).

``Listener(path)``

Args:
    path: the socket path (at most 107 bytes).

Raises:
    Busy: a live listener has that path. InvalidArgument: another kind of file is there, or
    the path is too long. IOFailure: the directory is missing or not writable.

Example::

    with px.Listener("/tmp/camera.sock") as listener:
        ch = listener.accept(timeout=10)
        buf = ch.recv(timeout=1)
)doc")
        .def(py::init([](PathArg path) {
                 std::string p = as_path(path);
                 px_listener_t *l = nullptr;
                 check(px_listener_new(p.c_str(), &l));
                 std::string shown = py::module_::import("os").attr("fsdecode")(path).cast<std::string>();
                 return std::make_unique<PyListener>(l, std::move(shown));
             }),
             py::arg("path"))
        .def("accept", &accept, py::arg("timeout") = py::none(), R"doc(
Waits for a peer (None: forever) and returns the connected Channel, handshake done. A peer that
stays silent, sends garbage or runs as another user never delays the others.

Raises:
    Timeout / WouldBlock: no peer finished its handshake in time. InvalidArgument: closed.

Example::

    ch = listener.accept(timeout=10)
)doc")
        .def(
            "fileno", [](const PyListener &l) { return px_listener_fd(l.get()); }, R"doc(
Pollable fd: readable when accept() may make progress (it may still raise WouldBlock). Owned
by the listener: never close it.

Example::

    select.select([listener], [], [])
    ch = listener.accept(0)
)doc")
        .def_property_readonly(
            "path", [](const PyListener &l) { return l.path; }, "The socket path as given.")
        .def_property_readonly(
            "closed", [](const PyListener &l) { return !l.handle.is_open(); },
            "True once close() was called.")
        .def(
            "close", [](PyListener &l) { l.handle.close("listener"); },
            "Stops listening and removes the socket file (idempotent); accepted channels stay "
            "open.")
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__", [](PyListener &l, py::args) { l.handle.close("listener"); })
        .def("__repr__", [](const PyListener &l) {
            return "<Listener path=" + l.path + (l.handle.is_open() ? ">" : " closed>");
        });
}

} // namespace pxpy
