// SPDX-License-Identifier: Apache-2.0 OR MIT
// Channel, Listener and ChannelStats. Every call that may wait releases the GIL.
#include "convert.hpp"
#include "fastcall.hpp"
#include "objects.hpp"
#include "recycle.hpp"

namespace pxpy {

namespace {

// Receives with the GIL released only when it has to wait: a poll first (a buffer is often
// already there in a streaming consumer), then the blocking call.
px_status_t recv_buffer(PyChannel &c, int64_t ns, px_buffer_t **buf) {
    px_status_t st = px_channel_recv(c.get(), 0, buf);
    if (st != PX_E_WOULD_BLOCK || ns == 0)
        return st;
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

void set_spin(PyChannel &c, py::handle seconds) {
    check(px_channel_set_spin_ns(c.get(), as_timeout_ns(seconds, "seconds")));
}

px_channel_stats_t stats(const PyChannel &c) {
    px_channel_stats_t s{};
    check(px_channel_get_stats(c.get(), &s));
    return s;
}

std::unique_ptr<PyChannel> connect(py::handle path, py::handle timeout) {
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

std::unique_ptr<PyChannel> from_fd(py::handle fd) {
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

std::unique_ptr<PyChannel> accept(PyListener &l, py::handle timeout) {
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

PyObject *fast_next(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    bind_args("__next__", args, nargs, kwnames, {}, nullptr);
    return next_buffer(self_channel(self)).release().ptr();
}

PyMethodDef channel_methods[] = {
    fast_method<fast_send>("send", R"doc(send($self, /, buffer, timeout=None)
--

Sends a buffer of a shared-memory segment zero-copy; the sender keeps its reference.
Unsupported for heap and mapped-file segments. Waits up to ``timeout`` (None: forever) while
the peer is too far behind to take another buffer (then Timeout / WouldBlock).
)doc"),
    fast_method<fast_recv>("recv", R"doc(recv($self, /, timeout=None)
--

The next buffer from the peer (read-only, zero-copy). Waits up to ``timeout`` seconds (None:
forever; 0 polls: WouldBlock when none is ready); ChannelClosed once the peer has closed.
)doc"),
    fast_method<fast_next>("__next__", "__next__($self, /)\n--\n\nThe next buffer (recv()); "
                                       "StopIteration once the peer has closed."),
};

} // namespace

void bind_channel(py::module_ &m) {
    py::class_<px_channel_stats_t>(m, "ChannelStats", "Counters of one channel end.")
        .def_readonly("buffers_sent", &px_channel_stats_t::buffers_sent)
        .def_readonly("buffers_received", &px_channel_stats_t::buffers_received)
        .def_readonly("segments_registered", &px_channel_stats_t::segments_registered)
        .def_readonly("slots_lent", &px_channel_stats_t::slots_lent)
        .def_readonly("returns_accepted", &px_channel_stats_t::returns_accepted)
        .def_readonly("returns_refused", &px_channel_stats_t::returns_refused)
        .def_readonly("slots_reclaimed", &px_channel_stats_t::slots_reclaimed)
        .def_readonly("peer_pid", &px_channel_stats_t::peer_pid)
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

Make one with ``Channel.pair()`` (before ``fork``: each process then closes the end it does
not use), ``Channel.connect(path)`` to a ``Listener``, or ``Channel.from_fd(fd)``.
``recv()`` gives read-only buffers that point straight into the sender's memory; when the
receiver releases the last one from a sender's pool slot, the slot goes back to that pool.

Timeouts are seconds: None (the default) waits forever, 0 polls (WouldBlock when nothing is
ready), a positive value waits up to that long (Timeout). Waiting releases the GIL.
Iterating over a channel yields received buffers until the peer closes it.
)doc")
        .def_static(
            "pair",
            []() {
                px_channel_t *a = nullptr, *b = nullptr;
                check(px_channel_pair(&a, &b));
                auto pa = std::make_unique<PyChannel>(a);
                auto pb = std::make_unique<PyChannel>(b);
                return py::make_tuple(py::cast(std::move(pa)), py::cast(std::move(pb)));
            },
            R"doc(
Two connected ends, made for ``os.fork()``. After the fork the parent keeps one end and
closes the other; the child keeps the other and closes the first. Close the unused end even
though the library now copes: a parent that kept the child's end open used to hold a dead
child's slots out of the pool for good (the connection still looked alive); the library now
watches the peer process and takes them back when it dies, but an open copy still pins the
socket and memory until it is closed. Also usable within one process, e.g. between threads.

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
                    "Connects to a Listener's socket path.")
        .def_static("from_fd", &from_fd, py::arg("fd"),
                    "Adopts a connected AF_UNIX SOCK_SEQPACKET socket fd (takes ownership, "
                    "also on failure) and runs the handshake.")
        .def("set_spin", &set_spin, py::arg("seconds"), R"doc(
How long recv() busy-polls before it sleeps: 0 sleeps at once (no core spent waiting), None or
a negative value never sleeps (lowest latency, one core busy while waiting), a positive value
polls that long (the default is SPIN_DEFAULT, 20 us).
)doc")
        .def("fileno",
             [](const PyChannel &c) { return px_channel_fd(c.get()); },
             "Pollable fd: readable when recv() may not block.")
        .def("stats", &stats)
        .def_property_readonly("closed", [](const PyChannel &c) { return !c.handle.is_open(); })
        .def("close", [](PyChannel &c) { c.handle.close("channel"); },
             "Closes this end (the peer sees ChannelClosed). Received buffers stay valid.")
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__", [](PyChannel &c, py::args) { c.handle.close("channel"); })
        .def("__iter__", [](py::object self) { return self; })
        .def("__repr__", [](const PyChannel &c) {
            if (!c.handle.is_open())
                return std::string("<Channel closed>");
            return "<Channel fd=" + std::to_string(px_channel_fd(c.get())) + ">";
        });
    def_fast(m.attr("Channel"), channel_methods);

    py::class_<PyListener>(m, "Listener", R"doc(
Listens on a Unix socket path (mode 0600) for Channel.connect(). A stale socket file is
replaced; a live one raises Busy. ``close()`` removes the socket file.
)doc")
        .def(py::init([](py::object path) {
                 std::string p = as_path(path);
                 px_listener_t *l = nullptr;
                 check(px_listener_new(p.c_str(), &l));
                 std::string shown = py::module_::import("os").attr("fsdecode")(path).cast<std::string>();
                 return std::make_unique<PyListener>(l, std::move(shown));
             }),
             py::arg("path"))
        .def("accept", &accept, py::arg("timeout") = py::none(),
             "Waits for a peer (None: forever) and returns the connected Channel.")
        .def("fileno", [](const PyListener &l) { return px_listener_fd(l.get()); })
        .def_property_readonly("path", [](const PyListener &l) { return l.path; })
        .def_property_readonly("closed", [](const PyListener &l) { return !l.handle.is_open(); })
        .def("close", [](PyListener &l) { l.handle.close("listener"); })
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__", [](PyListener &l, py::args) { l.handle.close("listener"); })
        .def("__repr__", [](const PyListener &l) {
            return "<Listener path=" + l.path + (l.handle.is_open() ? ">" : " closed>");
        });
}

} // namespace pxpy
