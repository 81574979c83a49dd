// SPDX-License-Identifier: Apache-2.0 OR MIT
// Buffer: a window on a segment with its own metadata; clone and slice never copy the bytes.
#include "convert.hpp"
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

// The per-frame methods, through vectorcall (fastcall.hpp).
PyMethodDef buffer_methods[] = {
    fast_method<fast_release<PyBuffer>>("release", "release($self, /)\n--\n\n"
                                                   "Drops this reference (idempotent)."),
    fast_method<fast_enter>("__enter__", "__enter__($self, /)\n--\n\n"),
    fast_method<fast_exit<PyBuffer>>("__exit__", "__exit__($self, /, *exc_info)\n--\n\n"
                                                 "release()"),
};

} // namespace

Span PyBuffer::span() const {
    px_buffer_t *b = get();
    void *mut = px_buffer_mut_ptr(b);
    void *data = mut ? mut : const_cast<void *>(px_buffer_ptr(b));
    return {data, px_buffer_len(b), mut == nullptr, "buffer"};
}

void bind_buffer(py::module_ &m) {
    py::class_<PyBuffer>(m, "Buffer", buffer_protocol<PyBuffer>(), R"doc(
A window [offset, offset + len) on a segment, with metadata. Supports the buffer protocol:
writable when its memory is (slots, writable segments), read-only otherwise (buffers received
from a channel, read-only files). ``clone()`` and ``slice()`` share the memory.

``release()`` (or the end of a ``with`` block, or garbage collection) drops this reference;
the memory stays valid for the other buffers that share it. While a memoryview or numpy array
of this buffer exists, ``release()`` raises BufferError.
)doc")
        .def(py::init(&make), py::arg("segment"), py::arg("offset") = 0,
             py::arg("length") = py::none(), py::arg("metadata") = py::none(),
             "A buffer over [offset, offset + length) of ``segment`` (default: to its end).")
        .def("__len__", [](const PyBuffer &b) { return px_buffer_len(b.get()); })
        .def_property_readonly("offset",
                               [](const PyBuffer &b) { return px_buffer_offset(b.get()); },
                               "Offset of the first byte within the segment.")
        .def_property_readonly(
            "readonly", [](const PyBuffer &b) { return px_buffer_mut_ptr(b.get()) == nullptr; })
        .def_property_readonly("released", [](const PyBuffer &b) { return !b.handle.is_open(); })
        .def_property_readonly(
            "segment",
            [](const PyBuffer &b) {
                return wrap_segment(px_segment_retain(px_buffer_segment(b.get())));
            },
            "A new Segment object for the buffer's segment (its own reference).")
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
             "Same memory (no copy), its own copy of the metadata.")
        .def("slice", &slice, py::arg("offset"), py::arg("length") = py::none(),
             "[offset, offset + length) of this buffer (default: to its end), same memory.")
        .def("__repr__", [](const PyBuffer &b) {
            if (!b.handle.is_open())
                return std::string("<Buffer released>");
            px_buffer_t *buf = b.get();
            px_metadata_t md;
            px_buffer_metadata(buf, &md);
            return "<Buffer offset=" + std::to_string(px_buffer_offset(buf)) +
                   " len=" + std::to_string(px_buffer_len(buf)) +
                   " sequence=" + std::to_string(md.sequence) +
                   (px_buffer_mut_ptr(buf) ? "" : " readonly") + ">";
        });
    def_fast(m.attr("Buffer"), buffer_methods);
}

} // namespace pxpy
