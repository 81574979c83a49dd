// SPDX-License-Identifier: Apache-2.0 OR MIT
// Publisher, Subscriber, their stats, stream_stats() and list_streams() (streams, issue 13).
//
// Every call that may wait releases the GIL. For a publisher that is every call that takes its
// lock (publish, poll, subscriber_count, description, stats): a publish under the BLOCK policy
// waits for room while holding that lock, so a call made with the GIL held from another thread
// would stall the whole interpreter meanwhile. For the same reason a subscriber's recv always
// releases it: a recv waiting in another thread holds the subscriber's receive lock.
#include <pybind11/native_enum.h>
#include <pybind11/typing.h>

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <utility>
#include <vector>

#include "convert.hpp"
#include "objects.hpp"

namespace pxpy {

namespace {

// The Python-facing slow-subscriber policy: a real enum.IntEnum, as MemoryType.
enum class SlowPolicy : uint32_t {
    DROP = PX_SLOW_DROP,
    BLOCK = PX_SLOW_BLOCK,
    DISCONNECT = PX_SLOW_DISCONNECT,
};

struct PyPublisher {
    PyPublisher(px_publisher_t *p, std::string n) : handle(p), name(std::move(n)) {}
    px_publisher_t *get() const { return handle.get("publisher"); }
    Handle<px_publisher_t, px_publisher_release> handle;
    std::string name;
    // The C API has no getter: the last description set through this object (UTF-8).
    std::string description;
};

struct PySubscriber {
    PySubscriber(px_subscriber_t *s, std::string n) : handle(s), name(std::move(n)) {}
    px_subscriber_t *get() const { return handle.get("subscriber"); }
    void close() {
        if (!aio.is_none()) // its asyncio waiters leave the event loop before the fd goes away
            aio.attr("_closing")();
        handle.close("subscriber");
    }
    Handle<px_subscriber_t, px_subscriber_release> handle;
    std::string name;
    // The asyncio waiters of this subscriber (python/parallax/_aio.py).
    py::object aio = py::none();
};

// A stream name as the library takes it: a bare name, or a socket path (str, bytes, PathLike).
std::string name_arg(py::handle name) {
    return as_path(name, "name");
}

// The name as given, for repr and the `name` property.
std::string shown_name(py::handle name) {
    return py::module_::import("os").attr("fsdecode")(name).cast<std::string>();
}

// The library's text (opaque bytes, UTF-8 by convention) as str; bytes that are not UTF-8
// (a C publisher may set any) survive as surrogates, as os.fsdecode does for paths.
py::str text_to_str(const std::string &text) {
    PyObject *s =
        PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "surrogateescape");
    if (!s)
        throw py::error_already_set();
    return py::reinterpret_steal<py::str>(s);
}

std::string str_to_text(py::handle value, const char *name) {
    if (!PyUnicode_Check(value.ptr()))
        throw py::type_error(std::string(name) + " must be str, not " +
                             std::string(py::str(py::type::handle_of(value).attr("__name__"))));
    PyObject *b = PyUnicode_AsEncodedString(value.ptr(), "utf-8", "surrogateescape");
    if (!b)
        throw py::error_already_set();
    std::string text = py::reinterpret_steal<py::bytes>(b).cast<std::string>();
    // The C API takes a NUL-terminated string: an embedded NUL would cut it short silently.
    if (text.find('\0') != std::string::npos)
        raise_error(PX_E_INVALID, std::string(name) + " contains a NUL character");
    return text;
}

// "drop" / "block" / "disconnect" (any case), a SlowPolicy or its int value (the library
// checks the range and names the field).
uint32_t slow_policy_arg(py::handle value) {
    if (PyUnicode_Check(value.ptr())) {
        std::string s = value.cast<std::string>();
        std::transform(s.begin(), s.end(), s.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (s == "drop")
            return PX_SLOW_DROP;
        if (s == "block")
            return PX_SLOW_BLOCK;
        if (s == "disconnect")
            return PX_SLOW_DISCONNECT;
        raise_error(PX_E_INVALID, "Publisher: slow_policy '" + value.cast<std::string>() +
                                      "' is not one of 'drop', 'block', 'disconnect'");
    }
    return static_cast<uint32_t>(as_u64(value, "slow_policy", UINT32_MAX));
}

uint32_t u32_arg(py::handle value, const char *name) {
    return static_cast<uint32_t>(as_u64(value, name, UINT32_MAX));
}

const px_publisher_options_t &default_options() {
    static const px_publisher_options_t o = [] {
        px_publisher_options_t d;
        px_publisher_options_init(&d);
        return d;
    }();
    return o;
}

std::unique_ptr<PyPublisher> make_publisher(PathArg name, SlowPolicyArg slow_policy,
                                            IntArg max_subscribers, IntArg max_in_flight,
                                            IntArg history, TimeoutArg block_timeout) {
    std::string n = name_arg(name);
    px_publisher_options_t o = default_options();
    o.slow_policy = slow_policy_arg(slow_policy);
    o.max_subscribers = u32_arg(max_subscribers, "max_subscribers");
    o.max_in_flight = u32_arg(max_in_flight, "max_in_flight");
    o.history = u32_arg(history, "history");
    o.block_timeout_ns = as_timeout_ns(block_timeout, "block_timeout");
    px_publisher_t *pub = nullptr;
    check(px_publisher_new(n.c_str(), &o, &pub)); // never waits: a stale socket is replaced
    return std::make_unique<PyPublisher>(pub, shown_name(name));
}

// Runs `call(px_publisher_t *)` with the publisher leased and the GIL released (see the top).
template <class F> px_status_t without_gil(PyPublisher &p, F call) {
    auto lease = p.handle.lease("publisher");
    py::gil_scoped_release nogil;
    return call(lease.get());
}

void publish(PyPublisher &p, PyBuffer &b) {
    auto buf = b.handle.lease("buffer"); // another thread may release it meanwhile
    check(
        without_gil(p, [&](px_publisher_t *pub) { return px_publisher_publish(pub, buf.get()); }));
}

bool poll(PyPublisher &p, TimeoutArg timeout) {
    int64_t ns = as_timeout_ns(timeout);
    px_status_t st =
        without_gil(p, [&](px_publisher_t *pub) { return px_publisher_poll(pub, ns); });
    if (st == PX_E_WOULD_BLOCK || st == PX_E_TIMEOUT)
        return false; // nothing came: an expected answer of a poll, not an error
    check(st);
    return true;
}

size_t subscriber_count(PyPublisher &p) {
    size_t n = 0;
    without_gil(p, [&](px_publisher_t *pub) {
        n = px_publisher_subscriber_count(pub);
        return PX_OK;
    });
    return n;
}

void set_description(PyPublisher &p, py::handle value) {
    std::string text = str_to_text(value, "Publisher.description");
    check(without_gil(
        p, [&](px_publisher_t *pub) { return px_publisher_set_description(pub, text.c_str()); }));
    p.description = std::move(text);
}

void skip(PyPublisher &p, IntArg count) {
    const uint64_t n = as_u64(count, "count", UINT64_MAX);
    check(without_gil(p, [&](px_publisher_t *pub) { return px_publisher_skip(pub, n); }));
}

px_publisher_stats_t publisher_stats(PyPublisher &p) {
    px_publisher_stats_t s{};
    check(without_gil(p, [&](px_publisher_t *pub) { return px_publisher_get_stats(pub, &s); }));
    return s;
}

std::unique_ptr<PySubscriber> make_subscriber(PathArg name, TimeoutArg timeout) {
    std::string n = name_arg(name);
    int64_t ns = as_timeout_ns(timeout);
    px_subscriber_t *sub = nullptr;
    px_status_t st;
    {
        py::gil_scoped_release nogil; // waits for the publisher to appear and admit us
        st = px_subscriber_new(n.c_str(), ns, &sub);
    }
    check(st);
    return std::make_unique<PySubscriber>(sub, shown_name(name));
}

px_status_t recv_frame(PySubscriber &s, int64_t ns, px_buffer_t **buf) {
    auto lease = s.handle.lease("subscriber");
    py::gil_scoped_release nogil;
    return px_subscriber_recv(lease.get(), ns, buf);
}

std::unique_ptr<PyBuffer> recv(PySubscriber &s, TimeoutArg timeout) {
    int64_t ns = as_timeout_ns(timeout);
    px_buffer_t *buf = nullptr;
    check(recv_frame(s, ns, &buf));
    return std::make_unique<PyBuffer>(buf);
}

// recv(0) that answers None instead of raising WouldBlock (for _aio.py: see channel.cpp).
std::unique_ptr<PyBuffer> try_recv(PySubscriber &s) {
    px_buffer_t *buf = nullptr;
    px_status_t st = recv_frame(s, 0, &buf);
    if (st == PX_E_WOULD_BLOCK)
        return nullptr;
    check(st);
    return std::make_unique<PyBuffer>(buf);
}

std::unique_ptr<PyBuffer> next_frame(PySubscriber &s) {
    px_buffer_t *buf = nullptr;
    px_status_t st = recv_frame(s, -1, &buf);
    if (st == PX_E_CLOSED) // the publisher is gone and everything it sent was received
        throw py::stop_iteration();
    check(st);
    return std::make_unique<PyBuffer>(buf);
}

py::str subscriber_description(const PySubscriber &s) {
    px_subscriber_t *sub = s.get();
    std::string text;
    // Ask for the length, then copy; again if a recv in another thread changed it between.
    for (;;) {
        size_t len = 0;
        px_status_t st = px_subscriber_description(sub, text.data(), text.size(), &len);
        if (st == PX_OK)
            return text_to_str(text.substr(0, len));
        if (st != PX_E_INVALID || len + 1 <= text.size())
            raise_last(st);
        text.assign(len + 1, '\0');
    }
}

px_subscriber_stats_t subscriber_stats(const PySubscriber &s) {
    px_subscriber_stats_t st{};
    check(px_subscriber_get_stats(s.get(), &st));
    return st;
}

void subscriber_set_spin(PySubscriber &s, TimeoutArg seconds) {
    check(px_subscriber_set_spin_ns(s.get(), as_timeout_ns(seconds, "seconds")));
}

int subscriber_fd(const PySubscriber &s) {
    int fd = px_subscriber_fd(s.get());
    if (fd < 0) // out of fds: the library's message says so
        raise_last(PX_E_IO);
    return fd;
}

px_publisher_stats_t stream_stats(PathArg name, TimeoutArg timeout) {
    std::string n = name_arg(name);
    int64_t ns = as_timeout_ns(timeout);
    px_publisher_stats_t s{};
    px_status_t st;
    {
        py::gil_scoped_release nogil;
        st = px_stream_stats(n.c_str(), ns, &s);
    }
    check(st);
    return s;
}

py::typing::List<px_stream_subscriber_info_t> stream_subscribers(PathArg name, TimeoutArg timeout) {
    std::string n = name_arg(name);
    int64_t ns = as_timeout_ns(timeout);
    std::vector<px_stream_subscriber_info_t> rows(16);
    for (;;) { // read again with room for all when more joined than there was room for
        size_t count = 0;
        px_status_t st;
        {
            py::gil_scoped_release nogil;
            st = px_stream_subscribers(n.c_str(), ns, rows.data(), rows.size(), &count);
        }
        check(st);
        if (count <= rows.size()) {
            py::list out;
            for (size_t i = 0; i < count; ++i)
                out.append(py::cast(rows[i]));
            return py::reinterpret_steal<py::typing::List<px_stream_subscriber_info_t>>(
                out.release());
        }
        rows.resize(count);
    }
}

py::typing::List<py::str> list_streams() {
    std::vector<std::string> names;
    px_status_t st;
    {
        py::gil_scoped_release nogil; // reads the runtime directory and each stream's page
        st = px_stream_list(
            [](const char *name, void *ctx) {
                // Called from C: nothing may be thrown through it.
                try {
                    static_cast<std::vector<std::string> *>(ctx)->emplace_back(name);
                } catch (...) {
                }
            },
            &names);
    }
    check(st);
    std::sort(names.begin(), names.end()); // directory order means nothing to a reader
    py::list out;
    for (const std::string &n : names)
        out.append(py::str(n));
    return py::reinterpret_steal<py::typing::List<py::str>>(out.release());
}

std::string fields_repr(const char *type,
                        std::initializer_list<std::pair<const char *, uint64_t>> fields) {
    std::string s = std::string(type) + "(";
    for (const auto &[name, value] : fields) {
        if (s.back() != '(')
            s += ", ";
        s += std::string(name) + "=" + std::to_string(value);
    }
    return s + ")";
}

void bind_stats(py::module_ &m) {
    using P = px_publisher_stats_t;
    py::class_<P>(m, "PublisherStats", R"doc(
Counters of a publisher: ``Publisher.stats()`` in its own process, ``stream_stats(name)`` from
any process of the same user.

- ``published``: frames published; ``subscribers``: admitted now;
- ``joined`` / ``departed``: admitted / left, died or were disconnected since the start;
- ``dropped``: frames a subscriber missed for want of room (DROP, or a BLOCK that timed out);
- ``disconnected_slow``: subscribers dropped by the DISCONNECT policy;
- ``slots_lent``: buffers subscribers hold or have queued now.

Example::

    st = px.stream_stats("camera")
    print(st.published, st.subscribers, st.dropped)
)doc")
        .def_readonly("published", &P::published, "Frames published.")
        .def_readonly("subscribers", &P::subscribers, "Subscribers admitted now.")
        .def_readonly("joined", &P::joined, "Subscribers admitted since the start.")
        .def_readonly("departed", &P::departed,
                      "Subscribers that left, died or were disconnected since the start.")
        .def_readonly("dropped", &P::dropped, "Frames a subscriber missed for want of room.")
        .def_readonly("disconnected_slow", &P::disconnected_slow,
                      "Subscribers dropped by the DISCONNECT policy.")
        .def_readonly("slots_lent", &P::slots_lent,
                      "Buffers subscribers hold or have queued now.")
        .def("__repr__", [](const P &s) {
            return fields_repr("PublisherStats", {{"published", s.published},
                                                  {"subscribers", s.subscribers},
                                                  {"joined", s.joined},
                                                  {"departed", s.departed},
                                                  {"dropped", s.dropped},
                                                  {"disconnected_slow", s.disconnected_slow},
                                                  {"slots_lent", s.slots_lent}});
        });

    using I = px_stream_subscriber_info_t;
    py::class_<I>(m, "SubscriberInfo", R"doc(
One admitted subscriber of a stream as its publisher knows it (``stream_subscribers(name)``):
``pid`` (its process), ``in_flight`` (buffers it holds plus those queued for it), ``delivered``
(frames sent to it since it joined, history included), ``dropped`` (frames it had no room for:
what its own ``missed`` counts once a later frame reaches it).
)doc")
        .def_readonly("pid", &I::pid, "The subscriber's process.")
        .def_readonly("in_flight", &I::in_flight,
                      "Buffers it holds plus those queued for it.")
        .def_readonly("delivered", &I::delivered,
                      "Frames sent to it since it joined, history included.")
        .def_readonly("dropped", &I::dropped, "Frames it had no room for.")
        .def("__repr__", [](const I &s) {
            return fields_repr("SubscriberInfo", {{"pid", s.pid},
                                                  {"in_flight", s.in_flight},
                                                  {"delivered", s.delivered},
                                                  {"dropped", s.dropped}});
        });

    using S = px_subscriber_stats_t;
    py::class_<S>(m, "SubscriberStats", R"doc(
Counters of a subscriber: ``received`` frames, ``missed`` frames (gaps in the stream's
numbering: frames the publisher had no room for), and ``publisher_pid``.

Example::

    with px.Subscriber("camera", timeout=5) as sub:
        frame = sub.recv(timeout=5)
        print(sub.stats().received, sub.stats().missed)
)doc")
        .def_readonly("received", &S::received, "Frames received.")
        .def_readonly("missed", &S::missed,
                      "Frames missed: gaps in the stream's numbering.")
        .def_readonly("publisher_pid", &S::publisher_pid, "The publisher's process.")
        .def("__repr__", [](const S &s) {
            return fields_repr("SubscriberStats", {{"received", s.received},
                                                   {"missed", s.missed},
                                                   {"publisher_pid", s.publisher_pid}});
        });
}

void bind_publisher(py::module_ &m) {
    const px_publisher_options_t &d = default_options();
    py::class_<PyPublisher>(m, "Publisher", R"doc(
Publishes buffers of a shared-memory pool, zero-copy, to every process subscribed to ``name``.

``Publisher(name, *, slow_policy="drop", max_subscribers=64, max_in_flight=8, history=0,
block_timeout=1.0)``

Args:
    name: a stream name (``[A-Za-z0-9._-]``, 1-100 characters, not starting with ``.``) that
        lives in the runtime directory ($PARALLAX_RUNTIME_DIR, else $XDG_RUNTIME_DIR/parallax,
        else /tmp/parallax-<uid>), or a socket path (any name with a ``/``).
    slow_policy: what ``publish`` does for a subscriber that already holds or has queued
        ``max_in_flight`` buffers: ``"drop"`` (it misses that frame, counted on both sides),
        ``"block"`` (wait up to ``block_timeout`` for room at every subscriber, then raise
        Timeout having delivered to those with room) or ``"disconnect"`` (it is dropped: it
        drains what it has, then sees ChannelClosed). A SlowPolicy member works too.
    max_subscribers: 1..1024; one more gets Busy from ``Subscriber(...)``.
    max_in_flight: 1..128; what one subscriber may hold plus what is queued for it.
    history: 0..1024; how many of the latest frames a joining subscriber gets first (at most
        ``max_in_flight`` of them); the publisher keeps holding them.
    block_timeout: seconds the BLOCK policy waits (None: forever).

Raises:
    Busy: a live publisher already has this name (a stale one, whose process died, is
        replaced). InvalidArgument: a malformed name or an option out of range (the message
        names it). PermissionDenied: the runtime directory is not this user's or is writable
        by others.

There is no library thread: subscribers are admitted inside ``publish`` and ``poll``. A
publisher that goes a while without publishing calls ``poll()`` (or waits on ``fileno()``
with select/asyncio and then calls ``poll(0)``). Every call that may wait releases the GIL.
``close()`` (or the end of a ``with`` block) stops publishing: subscribers receive what was
sent to them, then ChannelClosed; the buffers they hold stay valid.

Example::

    import numpy as np
    import parallax as px

    pool = px.MemoryPool(px.SharedMemorySegment("camera", 16 * 4096), 4096)
    with px.Publisher("camera", history=2) as pub:
        pub.description = '{"shape": [64, 64], "dtype": "u1"}'
        for k in range(100):
            slot = pool.loan(timeout=1)
            np.asarray(slot)[:] = k
            pub.publish(slot.into_buffer(metadata=px.Metadata(sequence=k)))
            pub.poll(0.01)  # admit joiners between frames
)doc")
        .def(py::init(&make_publisher), py::arg("name"), py::kw_only(),
             py::arg("slow_policy") = "drop", py::arg("max_subscribers") = d.max_subscribers,
             py::arg("max_in_flight") = d.max_in_flight, py::arg("history") = d.history,
             py::arg("block_timeout") = static_cast<double>(d.block_timeout_ns) / 1e9)
        .def("publish", &publish, py::arg("buffer"), R"doc(
Publishes ``buffer`` to every admitted subscriber, zero-copy: its slot is lent once to each and
returns to its pool when this process and every subscriber have released it (or died). The
caller keeps its reference and may release it at once.

Args:
    buffer: a Buffer of a shared-memory (or huge-page) segment, e.g. ``slot.into_buffer()``.

Raises:
    Unsupported: a heap or mapped-file buffer (subscribers could not map it).
    Timeout: under the BLOCK policy, some subscriber had no room within ``block_timeout``
        (the others got the frame). InvalidArgument: the publisher is closed or the buffer
        released.

Example::

    pub.publish(pool.loan(timeout=1).into_buffer(64))
)doc")
        .def("poll", &poll, py::arg("timeout") = 0, R"doc(
Waits up to ``timeout`` seconds (0: just looks; None: forever) for housekeeping (a subscriber
joining or leaving), does it, and says whether there was any. The GIL is released meanwhile.

Returns:
    True when something was done, False when nothing came in time.

Example::

    while pub.subscriber_count < 3:
        pub.poll(0.1)
)doc")
        .def(
            "fileno", [](const PyPublisher &p) { return px_publisher_fd(p.get()); }, R"doc(
Pollable fd: readable when poll() has work (a joiner, a departure). Owned by the publisher:
never close it.

Raises:
    InvalidArgument: the publisher is closed.

Example::

    loop.add_reader(pub.fileno(), lambda: pub.poll(0))  # admit joiners from asyncio
)doc")
        .def_property_readonly(
            "fd", [](const PyPublisher &p) { return px_publisher_fd(p.get()); },
            "The same fd as fileno() (InvalidArgument once closed).")
        .def_property_readonly("subscriber_count", &subscriber_count,
                               "Subscribers admitted now (InvalidArgument once closed).")
        .def_property(
            "description",
            [](const PyPublisher &p) {
                p.get();
                return text_to_str(p.description);
            },
            &set_description, R"doc(
The stream's description: a text of at most 64 KiB (UTF-8) describing the frames, e.g.
GStreamer caps or JSON. Every subscriber gets the current one when it joins, and each change in
order with the frames: it is in force for the frames published after it. Reading it gives the
last one set through this object ("" at first).

Raises:
    InvalidArgument: longer than 64 KiB, or contains a NUL. TypeError: not a str.

Example::

    pub.description = "video/x-raw,format=GRAY8,width=64,height=64"
)doc")
        .def("skip", &skip, py::arg("count"), R"doc(
Advances the stream's numbering by ``count`` without sending anything, for a relay whose source
lost frames (e.g. a network bridge): each subscriber's next frame shows the gap, so its
``stats().missed`` grows by ``count``. No counter of ``stats()`` changes (``published`` counts
frames published, ``dropped`` frames a subscriber had no room for). 0 does nothing.

Args:
    count: how many stream numbers to leave out (an int >= 0).

Raises:
    InvalidArgument: ``count`` is negative, or would run the stream's number past 2**64 - 1;
        the publisher is closed. TypeError: not an int.

Example::

    # Upstream frames 10..12 never arrived: local subscribers count 3 missed.
    pub.publish(frame_9)
    pub.skip(3)
    pub.publish(frame_13)
)doc")
        .def("stats", &publisher_stats, R"doc(
The publisher's counters now (a PublisherStats).

Raises:
    InvalidArgument: the publisher is closed.

Example::

    print(pub.stats().published, pub.stats().dropped)
)doc")
        .def_property_readonly(
            "name", [](const PyPublisher &p) { return p.name; }, "The stream's name as given.")
        .def_property_readonly(
            "closed", [](const PyPublisher &p) { return !p.handle.is_open(); },
            "True once close() was called.")
        .def(
            "close", [](PyPublisher &p) { p.handle.close("publisher"); },
            "Stops publishing (idempotent): subscribers drain, then see ChannelClosed. The "
            "name is free again at once.")
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__", [](PyPublisher &p, py::args) { p.handle.close("publisher"); })
        .def("__repr__", [](const PyPublisher &p) {
            return "<Publisher name=" + p.name + (p.handle.is_open() ? ">" : " closed>");
        });
}

void bind_subscriber(py::module_ &m) {
    py::class_<PySubscriber>(m, "Subscriber", R"doc(
Receives the frames of stream ``name`` from its publisher in another process (or this one).

``Subscriber(name, timeout=None)``

Args:
    name: the stream's name or socket path, as given to Publisher.
    timeout: seconds to wait for the publisher to appear and admit this subscriber (start
        order does not matter; None waits forever, 0 only tries once).

Raises:
    Timeout / WouldBlock: no publisher admitted it in time (a publisher admits inside its
        publish and poll calls). Busy: the publisher is full (max_subscribers).
    InvalidArgument: a malformed name. PermissionDenied: a bad runtime directory.

``recv()`` gives first the publisher's history (if any), then live frames, in order; frames
the publisher had no room for are skipped and counted in ``stats().missed``. Buffers are
read-only and point straight into the publisher's memory (``np.frombuffer(buf, np.uint8)``
or ``np.asarray(buf)`` alias it); they stay valid after the subscriber and the publisher are
gone. Iterating yields frames until the publisher is gone and everything it sent has been
received. Waiting releases the GIL. In asyncio, ``await sub.recv_async()`` and ``async for``
wait through the event loop (``fileno()``), without a thread.

Passed to a ``multiprocessing.Process`` (any start method) or through a multiprocessing Queue
or Pipe, a subscriber moves: this process's object leaves the stream and the child subscribes
to the same name when it unpickles the object (waiting up to 10 s for the publisher to admit
it); it starts from the publisher's history, like any new subscriber. Plain ``pickle`` refuses
it (TypeError).

Example::

    import numpy as np
    import parallax as px

    with px.Subscriber("camera", timeout=5) as sub:
        for buf in sub:  # until the publisher closes
            frame = np.asarray(buf)  # read-only, zero-copy
            print(buf.metadata.sequence, sub.description, frame[:4])
            del frame
            buf.release()  # hands the slot back to the publisher's pool
)doc")
        .def(py::init(&make_subscriber), py::arg("name"), py::arg("timeout") = py::none())
        .def("recv", &recv, py::arg("timeout") = py::none(), R"doc(
The next frame, waiting up to ``timeout`` seconds (None: forever, 0: only if one is there).

Returns:
    A read-only Buffer over the publisher's memory.

Raises:
    ChannelClosed: the publisher is gone (or dropped this subscriber) and everything it sent
        has been received. Timeout / WouldBlock: nothing came in time.

Example::

    buf = sub.recv(timeout=1.0)
    print(len(buf), buf.metadata.sequence)
)doc")
        .def_property_readonly("description", &subscriber_description, R"doc(
The description in force for the last frame received (the one set before it was published,
history included); before the first frame, the one current at join; "" when none was set.
)doc")
        .def("set_spin", &subscriber_set_spin, py::arg("seconds"), R"doc(
How long recv() (and iteration) busy-polls for the next frame before it sleeps, as
Channel.set_spin: 0 sleeps at once (no core spent waiting), None or a negative value never
sleeps (lowest latency, one core busy while waiting), a positive value polls that long (the
default is SPIN_DEFAULT, 20 us) unless the stream has more processes than this one has CPUs
(then it sleeps at once: its spin would hold a CPU another subscriber needs).

Raises:
    InvalidArgument: NaN, or the subscriber is closed.

Example::

    sub.set_spin(None)  # a latency-critical consumer with a core of its own
)doc")
        .def("fileno", &subscriber_fd, R"doc(
Pollable fd: readable when recv() may not block (it may still find only a description and
raise WouldBlock). Owned by the subscriber: never close it. ``recv_async`` waits on it.

Raises:
    InvalidArgument: the subscriber is closed. IOFailure: the process is out of fds.

Example::

    select.select([sub], [], [], 1.0)
)doc")
        .def("stats", &subscriber_stats, R"doc(
The subscriber's counters now (a SubscriberStats).

Raises:
    InvalidArgument: the subscriber is closed.

Example::

    print(sub.stats().missed)
)doc")
        .def_property_readonly(
            "name", [](const PySubscriber &s) { return s.name; }, "The stream's name as given.")
        .def_property_readonly(
            "closed", [](const PySubscriber &s) { return !s.handle.is_open(); },
            "True once close() was called (or the subscriber was handed to a child process).")
        .def(
            "close", [](PySubscriber &s) { s.close(); },
            "Leaves the stream (idempotent); buffers received stay valid; ``recv_async`` "
            "waiters get ChannelClosed.")
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__", [](PySubscriber &s, py::args) { s.close(); })
        // Private, for python/parallax/_aio.py.
        .def("_try_recv", &try_recv)
        .def_property(
            "_aio", [](const PySubscriber &s) { return s.aio; },
            [](PySubscriber &s, py::object state) { s.aio = std::move(state); })
        .def("__iter__", [](py::object self) { return self; })
        .def("__next__", &next_frame)
        .def("__repr__", [](const PySubscriber &s) {
            return "<Subscriber name=" + s.name + (s.handle.is_open() ? ">" : " closed>");
        });
}

} // namespace

void bind_stream(py::module_ &m) {
    py::native_enum<SlowPolicy>(m, "SlowPolicy", "enum.IntEnum", R"doc(
What Publisher.publish does for a subscriber with no room (max_in_flight held or queued):
DROP (it misses the frame), BLOCK (wait up to block_timeout, then Timeout), DISCONNECT (it is
dropped). ``Publisher(slow_policy=...)`` also takes "drop", "block", "disconnect".

Example::

    pub = px.Publisher("camera", slow_policy=px.SlowPolicy.BLOCK, block_timeout=0.5)
)doc")
        .value("DROP", SlowPolicy::DROP)
        .value("BLOCK", SlowPolicy::BLOCK)
        .value("DISCONNECT", SlowPolicy::DISCONNECT)
        .finalize();
    bind_stats(m);
    bind_publisher(m);
    bind_subscriber(m);
    m.def("stream_stats", &stream_stats, py::arg("name"), py::arg("timeout") = 1.0, R"doc(
The counters of the live publisher of ``name``, in any process of this user, whether or not it
is publishing or polling (read from a page it keeps current). Waits up to ``timeout`` seconds.

Returns:
    A PublisherStats.

Raises:
    ChannelClosed: no live publisher has that name. InvalidArgument: a malformed name.

Example::

    print(px.stream_stats("camera").subscribers)
)doc");
    m.def("stream_subscribers", &stream_subscribers, py::arg("name"), py::arg("timeout") = 1.0,
          R"doc(
The admitted subscribers of the live publisher of ``name`` (any process of this user), in the
order they joined, as of the publisher's last publish or poll: a list of SubscriberInfo.

Raises:
    ChannelClosed: no live publisher has that name. InvalidArgument: a malformed name.

Example::

    for s in px.stream_subscribers("camera"):
        print(s.pid, s.in_flight, s.dropped)
)doc");
    m.def("list_streams", &list_streams, R"doc(
The names of the live streams in the runtime directory, sorted (stale sockets are skipped;
streams named by a socket path elsewhere are not listed).

Raises:
    IOFailure: the runtime directory cannot be read. PermissionDenied: it is not this user's.

Example::

    for name in px.list_streams():
        print(name, px.stream_stats(name).subscribers)
)doc");
}

} // namespace pxpy
