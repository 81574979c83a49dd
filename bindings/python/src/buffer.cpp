// SPDX-License-Identifier: Apache-2.0 OR MIT
// Buffer: a window on a segment with its own metadata and format; clone and slice never copy
// the bytes.
#include <cstring>

#include "convert.hpp"
#include "dlpack.hpp"
#include "format.hpp"
#include "objects.hpp"
#include "recycle.hpp"

namespace pxpy {

namespace {

std::unique_ptr<PyBuffer> make(PySegment &seg, py::handle offset, py::handle length,
                               py::handle metadata) {
    px_segment_t *s = seg.get();
    size_t off = as_size(offset, "offset");
    px_metadata_t storage;
    const px_metadata_t *meta = metadata_arg(metadata, storage);
    size_t len;
    if (length.is_none()) // the rest of the segment (an offset past the end fails below)
        len = off <= px_segment_len(s) ? px_segment_len(s) - off : 1;
    else
        len = as_size(length, "length");
    px_buffer_t *buf = nullptr;
    check(px_buffer_new(s, off, len, meta, &buf));
    return std::make_unique<PyBuffer>(buf);
}

std::unique_ptr<PyBuffer> slice(const PyBuffer &b, py::handle offset, py::handle length) {
    px_buffer_t *buf = b.get();
    size_t off = as_size(offset, "offset");
    size_t len;
    if (length.is_none())
        len = off <= px_buffer_len(buf) ? px_buffer_len(buf) - off : 1;
    else
        len = as_size(length, "length");
    px_buffer_t *out = nullptr;
    check(px_buffer_slice(buf, off, len, &out));
    return std::make_unique<PyBuffer>(out);
}

// set_format(dtype, shape, strides=None, fourcc=0), set_format(format) or set_format(None).
px_format_t format_for(PyObject *const *a) {
    px_format_t f;
    std::memset(&f, 0, sizeof f);
    bool more = a[1] || a[2] || a[3];
    if (a[0] == Py_None || format_arg(a[0])) {
        if (more)
            throw py::type_error("set_format(None) and set_format(format) take no other "
                                 "argument");
        if (a[0] != Py_None)
            f = *format_arg(a[0]);
        return f;
    }
    if (!a[1])
        throw py::type_error("set_format() missing required argument 'shape'");
    return format_from_args(a[0], a[1], a[2] ? a[2] : Py_None, a[3] ? a[3] : Py_None);
}

// Failures set the Python error without a C++ throw, as the other per-frame methods.
PyObject *fast_set_format(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames) {
    PyObject *a[4]; // dtype, shape, strides, fourcc
    bind_args("set_format", args, nargs, kwnames, {"dtype", "shape", "strides", "fourcc"}, a);
    if (!a[0])
        throw py::type_error("set_format() missing required argument 'dtype' (None makes the "
                             "buffer untyped)");
    px_buffer_t *buf = cast_arg<PyBuffer>(self, "self", "Buffer").get();
    px_format_t f = format_for(a);
    px_status_t st = px_buffer_set_format(buf, &f);
    if (st != PX_OK) {
        set_last_error(st);
        return nullptr;
    }
    return none();
}

// Pickling, for multiprocessing only: the segment goes by its own reduction (its fd, which
// only multiprocessing can pass; plain pickle refuses it with a TypeError that says so), the
// rest by value. The child's buffer is read-only whatever this one is (_rebuild_buffer).
PyObject *rebuild_function = nullptr; // parallax._parallax._rebuild_buffer (leaked: pickling
                                      // may run at exit)

py::tuple reduce(const PyBuffer &b) {
    px_buffer_t *buf = b.get();
    PyMetadata md;
    check(px_buffer_metadata(buf, &md.m));
    py::object seg = wrap_segment(px_segment_retain(px_buffer_segment(buf)));
    return py::make_tuple(py::handle(rebuild_function),
                          py::make_tuple(seg, px_buffer_offset(buf), px_buffer_len(buf), md,
                                         format_of(buf)));
}

// A read-only mapping of `seg`'s memory: the segment itself when it is read-only already, else
// a second, read-only mapping of its fd.
px_segment_t *readonly_segment(PySegment &seg) {
    px_segment_t *s = seg.get();
    if (px_segment_is_readonly(s))
        return px_segment_retain(s);
    px_ipc_handle_t h;
    check(px_segment_ipc_handle(s, &h));
    px_segment_t *ro = nullptr;
    check(px_segment_shm_from_fd(h.fd, static_cast<size_t>(h.size), PX_MAP_READONLY, &ro));
    return ro;
}

std::unique_ptr<PyBuffer> rebuild(PySegment &seg, py::handle offset, py::handle length,
                                  py::handle metadata, py::handle format) {
    px_metadata_t storage;
    const px_metadata_t *meta = metadata_arg(metadata, storage);
    const px_format_t *fmt = format.is_none() ? nullptr : format_arg(format);
    if (!format.is_none() && !fmt)
        throw py::type_error("format must be a parallax.Format or None");
    px_segment_t *ro = readonly_segment(seg);
    px_buffer_t *buf = nullptr;
    px_status_t st = px_buffer_new(ro, as_size(offset, "offset"), as_size(length, "length"),
                                   meta, &buf);
    px_segment_release(ro); // the buffer holds its own reference
    check(st);
    auto out = std::make_unique<PyBuffer>(buf);
    if (fmt)
        check(px_buffer_set_format(buf, fmt));
    return out;
}

// The per-frame methods, through vectorcall (fastcall.hpp).
PyMethodDef buffer_methods[] = {
    fast_method<fast_set_format>("set_format",
                                 R"doc(set_format($self, /, dtype, shape, strides=None, fourcc=0)
--

Types this buffer: its bytes are an array of ``shape`` elements of ``dtype`` from its first
byte (see Format for the arguments). The format travels with the buffer over channels and
streams, clones made afterwards keep it, slices do not. ``set_format(fmt)`` applies a Format
(e.g. another buffer's), ``set_format(None)`` makes the buffer untyped bytes again. Views
(memoryview, numpy arrays) made earlier keep the layout they were made with.

Raises:
    InvalidArgument: the rule broken, named: an unknown dtype, 0 or more than 8 dimensions,
    a negative dimension or stride, a stride that is not a multiple of the element size, or
    an element beyond the end of the buffer (nothing is changed). TypeError: an argument of
    the wrong type. InvalidArgument: the buffer was released.

Example::

    buf = pool.loan(timeout=1).into_buffer(480 * 640 * 2)
    buf.set_format(np.uint16, (480, 640))
    assert np.asarray(buf).shape == (480, 640)
)doc"),
    fast_method<fast_release<PyBuffer>>("release", R"doc(release($self, /)
--

Drops this reference (idempotent). The memory stays valid for the other buffers that share it;
the last buffer of a pool slot, in any process, gives the slot back.

Raises:
    BufferError: a memoryview, numpy array or DLPack tensor of this buffer still exists
    (nothing is released).

Example::

    buf.release()  # or: with ch.recv(timeout=1) as buf: ...
)doc"),
    fast_method<fast_enter>("__enter__", "__enter__($self, /)\n--\n\n"),
    fast_method<fast_exit<PyBuffer>>("__exit__", "__exit__($self, /, *exc_info)\n--\n\n"
                                                 "release()"),
};

} // namespace

Span PyBuffer::span() const {
    px_buffer_t *b = get();
    void *mut = px_buffer_mut_ptr(b);
    void *data = mut ? mut : const_cast<void *>(px_buffer_ptr(b));
    Span s{data, px_buffer_len(b), mut == nullptr, "buffer"};
    check(px_buffer_format(b, &s.format));
    return s;
}

void bind_buffer(py::module_ &m) {
    bind_format(m);
    py::class_<PyBuffer>(m, "Buffer", buffer_protocol<PyBuffer>(), R"doc(
A window [offset, offset + len) on a segment, with metadata and an optional format.
``clone()`` and ``slice()`` share the memory.

Buffer protocol: writable when its memory is (pool slots, writable segments), read-only
otherwise (buffers received from a channel or stream, read-only mappings): a received frame is
never writable here. An untyped buffer is 1-D bytes (format ``B``). A typed buffer
(``set_format``, or received with a format) exports its shape, strides and PEP 3118 format,
so ``np.asarray(buf)`` is an array of that shape and dtype over the same memory (bfloat16,
which has no PEP 3118 code, is exported as its raw bits, ``H``: uint16); a consumer that asks
for plain bytes (``file.write``, ``hashlib``) still gets all ``len(buf)`` bytes. DLPack
(``np.from_dlpack(buf)``, ``torch.from_dlpack(buf)``): see ``__dlpack__``.

multiprocessing: a Buffer of a SharedMemorySegment (including a received one) can be passed
to a Process (its args, a Queue, a Pipe); it arrives read-only, over the same memory, with
its metadata and format. Plain ``pickle`` refuses it (TypeError): it needs the segment's fd.

``release()`` (or the end of a ``with`` block, or garbage collection) drops this reference;
the memory stays valid for the other buffers that share it. While a memoryview, numpy array or
DLPack tensor of this buffer exists, ``release()`` raises BufferError.

Args:
    segment: the Segment the buffer is a window on (the buffer keeps it alive).
    offset: its first byte in the segment.
    length: its size in bytes (default: to the end of the segment).
    metadata: a Metadata, or None for the defaults.

Raises:
    InvalidArgument: [offset, offset + length) is not inside the segment, or the segment
    was closed. TypeError: metadata is not a Metadata.

Example::

    frame = ch.recv(timeout=1)               # a typed frame from a producer
    img = np.asarray(frame)                  # (1080, 1920, 3) uint8, read-only, zero-copy
    print(frame.format, frame.metadata.sequence)
    del img
    frame.release()
)doc")
        .def(py::init(&make), py::arg("segment"), py::arg("offset") = 0,
             py::arg("length") = py::none(), py::arg("metadata") = py::none(),
             "A buffer over [offset, offset + length) of ``segment`` (default: to its end).")
        .def("__len__", [](const PyBuffer &b) { return px_buffer_len(b.get()); })
        .def_property_readonly("offset",
                               [](const PyBuffer &b) { return px_buffer_offset(b.get()); },
                               "Offset of the first byte within the segment.")
        .def_property_readonly(
            "readonly", [](const PyBuffer &b) { return px_buffer_mut_ptr(b.get()) == nullptr; },
            "True when the memory cannot be written through this buffer (received from another "
            "process, or a read-only mapping).")
        .def_property_readonly(
            "released", [](const PyBuffer &b) { return !b.handle.is_open(); },
            "True once release() was called (every other use then raises InvalidArgument).")
        .def_property_readonly(
            "segment",
            [](const PyBuffer &b) {
                return wrap_segment(px_segment_retain(px_buffer_segment(b.get())));
            },
            "A new Segment object for the buffer's segment (its own reference).")
        .def_property_readonly(
            "format", [](const PyBuffer &b) { return format_of(b.get()); },
            "The buffer's Format (dtype, shape, strides, fourcc), or None for untyped bytes.")
        .def_property(
            "metadata",
            [](const PyBuffer &b) {
                PyMetadata md;
                check(px_buffer_metadata(b.get(), &md.m));
                return md;
            },
            [](PyBuffer &b, const PyMetadata &md) {
                check(px_buffer_set_metadata(b.get(), &md.m));
            },
            "A copy of the metadata; assign a Metadata to change it.")
        .def("clone",
             [](const PyBuffer &b) {
                 px_buffer_t *out = nullptr;
                 check(px_buffer_clone(b.get(), &out));
                 return std::make_unique<PyBuffer>(out);
             },
             "Same memory (no copy), its own copy of the metadata, the same format.")
        .def("slice", &slice, py::arg("offset"), py::arg("length") = py::none(),
             "[offset, offset + length) of this buffer (default: to its end), same memory, "
             "untyped bytes (give it a format with set_format).")
        .def("__reduce__", &reduce)
        .def("__repr__", [](const PyBuffer &b) {
            if (!b.handle.is_open())
                return std::string("<Buffer released>");
            px_buffer_t *buf = b.get();
            px_metadata_t md;
            px_buffer_metadata(buf, &md);
            py::object fmt = format_of(buf);
            return "<Buffer offset=" + std::to_string(px_buffer_offset(buf)) +
                   " len=" + std::to_string(px_buffer_len(buf)) +
                   " sequence=" + std::to_string(md.sequence) +
                   (px_buffer_mut_ptr(buf) ? "" : " readonly") +
                   (fmt.is_none() ? std::string() : " " + std::string(py::repr(fmt))) + ">";
        });
    def_fast(m.attr("Buffer"), buffer_methods);
    bind_dlpack(m.attr("Buffer"));

    // Private: the other half of Buffer.__reduce__ (multiprocessing).
    m.def("_rebuild_buffer", &rebuild, py::arg("segment"), py::arg("offset"),
          py::arg("length"), py::arg("metadata"), py::arg("format"));
    rebuild_function = py::object(m.attr("_rebuild_buffer")).release().ptr();
}

} // namespace pxpy
