// SPDX-License-Identifier: Apache-2.0 OR MIT
// The C++ objects behind the Python classes: each owns one px handle through a Handle<>.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include <pybind11/pybind11.h>

#include "buffer_protocol.hpp"
#include "handle.hpp"
#include "parallax/parallax.h"

namespace pxpy {

namespace py = pybind11;

// Segment and its Python subclasses (which add only constructors).
struct PySegment {
    explicit PySegment(px_segment_t *s) : handle(s) {}
    virtual ~PySegment() = default;
    px_segment_t *get() const { return handle.get("segment"); }
    Span span() const;
    Handle<px_segment_t, px_segment_release> handle;
};
struct PyHeapSegment : PySegment {
    using PySegment::PySegment;
};
struct PySharedMemorySegment : PySegment {
    using PySegment::PySegment;
};
struct PyHugePageSegment : PySegment {
    using PySegment::PySegment;
};
struct PyMappedFileSegment : PySegment {
    using PySegment::PySegment;
};

// Wraps a segment reference the caller owns in the Python class matching its memory type.
py::object wrap_segment(px_segment_t *owned);

struct PyPool {
    explicit PyPool(px_pool_t *p) : handle(p) {}
    px_pool_t *get() const { return handle.get("pool"); }
    Handle<px_pool_t, px_pool_release> handle;
};

struct PySlot {
    static constexpr const char *what = "slot";
    explicit PySlot(px_slot_t *s) : handle(s) {}
    px_slot_t *get() const { return handle.get("slot"); }
    Span span() const;
    Handle<px_slot_t, px_slot_release> handle;
};

struct PyBuffer {
    static constexpr const char *what = "buffer";
    explicit PyBuffer(px_buffer_t *b) : handle(b) {}
    px_buffer_t *get() const { return handle.get("buffer"); }
    Span span() const;
    Handle<px_buffer_t, px_buffer_release> handle;
};

struct PyMetadata {
    PyMetadata() { px_metadata_init(&m); }
    explicit PyMetadata(const px_metadata_t &meta) : m(meta) {}
    px_metadata_t m;
};

struct PyChannel {
    explicit PyChannel(px_channel_t *c) : handle(c) {}
    // The handle for a call made with the GIL held. An end whose pair peer was handed over to
    // a child process (python/parallax/_reduction.py) first waits for the handshake with it.
    px_channel_t *get() {
        if (!pending.is_none())
            adopt_pending();
        return handle.get("channel");
    }
    bool is_open() const { return !pending.is_none() || handle.is_open(); }
    void adopt_pending();
    void close();
    Handle<px_channel_t, px_channel_release> handle;
    // A _reduction.Handover whose result() is the Channel that replaces this end's handle.
    py::object pending = py::none();
    // The other end of Channel.pair() (a weakref.ref), while no process has taken either.
    py::object pair_peer = py::none();
    // The asyncio waiters of this end (python/parallax/_aio.py), told when it closes.
    py::object aio = py::none();
    // How many more blocking recv() calls skip the poll that tries first with the GIL held
    // (channel.cpp, recv_buffer): set when that poll found nothing.
    uint8_t recv_skip_poll = 0;
};

struct PyListener {
    PyListener(px_listener_t *l, std::string p) : handle(l), path(std::move(p)) {}
    px_listener_t *get() const { return handle.get("listener"); }
    Handle<px_listener_t, px_listener_release> handle;
    std::string path;
};

// Argument types as signatures show them (help(), inspect.signature) for parameters the
// binding converts itself (convert.hpp): Typed<"float | None"> accepts any object, as
// py::handle does, but names its type. C++20 string-literal template arguments, as
// pybind11/typing.h's Literal.
template <size_t N> struct TypeText {
    constexpr TypeText(const char (&s)[N]) { std::copy_n(s, N, chars); }
    char chars[N];
};
template <TypeText T> struct Typed : py::object {
    PYBIND11_OBJECT_DEFAULT(Typed, object, PyObject_Type)
};
using TimeoutArg = Typed<"float | None">;
using PathArg = Typed<"str | bytes | os.PathLike[str] | os.PathLike[bytes]">;
using IntArg = Typed<"int">;
using FdArg = Typed<"int | parallax._HasFileno">;
using OptionalStrArg = Typed<"str | None">;
using SlowPolicyArg = Typed<"parallax.SlowPolicy | int | str">;

// Module sections, one per file.
void bind_metadata(py::module_ &m);
void bind_segments(py::module_ &m);
void bind_pool(py::module_ &m);
void bind_buffer(py::module_ &m);
void bind_channel(py::module_ &m);

// Metadata argument: None -> library defaults, else a Metadata (TypeError otherwise).
const px_metadata_t *metadata_arg(py::handle value, px_metadata_t &storage);

} // namespace pxpy

template <pxpy::TypeText T> struct pybind11::detail::handle_type_name<pxpy::Typed<T>> {
    static constexpr auto name = const_name(T.chars);
};
