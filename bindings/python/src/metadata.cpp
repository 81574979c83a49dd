// SPDX-License-Identifier: Apache-2.0 OR MIT
// Metadata: px_metadata_t with Pythonic fields (times are None when PX_TIME_NONE, user is
// bytes of at most 64).
#include <cstring>

#include "convert.hpp"
#include "objects.hpp"

namespace pxpy {

namespace {

py::object time_get(int64_t t) {
    return t == PX_TIME_NONE ? py::object(py::none()) : py::object(py::int_(t));
}

int64_t time_arg(py::handle v, const char *name) {
    return v.is_none() ? PX_TIME_NONE : as_i64(v, name);
}

void set_user(px_metadata_t &m, py::handle v) {
    if (v.is_none()) {
        m.user_len = 0;
        std::memset(m.user, 0, sizeof m.user);
        return;
    }
    if (!PyObject_CheckBuffer(v.ptr()) || PyUnicode_Check(v.ptr()))
        throw py::type_error("user must be bytes-like, not " +
                             std::string(py::str(py::type::handle_of(v).attr("__name__"))));
    py::buffer_info info = py::reinterpret_borrow<py::buffer>(v).request();
    size_t n = static_cast<size_t>(info.size * info.itemsize);
    if (n > PX_METADATA_USER_MAX)
        raise_error(PX_E_INVALID, "user is " + std::to_string(n) + " bytes; at most " +
                                      std::to_string(PX_METADATA_USER_MAX) + " fit");
    std::memset(m.user, 0, sizeof m.user);
    if (n)
        std::memcpy(m.user, info.ptr, n);
    m.user_len = static_cast<uint32_t>(n);
}

py::bytes user_get(const px_metadata_t &m) {
    // user_len is checked by the library on every way in; clamp anyway so no read can overrun.
    size_t n = m.user_len <= PX_METADATA_USER_MAX ? m.user_len : PX_METADATA_USER_MAX;
    return py::bytes(reinterpret_cast<const char *>(m.user), n);
}

bool equal(const px_metadata_t &a, const px_metadata_t &b) {
    return a.sequence == b.sequence && a.pts_ns == b.pts_ns && a.dts_ns == b.dts_ns &&
           a.duration_ns == b.duration_ns && a.offset == b.offset &&
           a.offset_end == b.offset_end && a.flags == b.flags && a.user_len == b.user_len &&
           std::memcmp(a.user, b.user, a.user_len <= 64 ? a.user_len : 64) == 0;
}

PyMetadata make(py::handle sequence, py::handle pts, py::handle dts, py::handle duration,
                py::handle offset, py::handle offset_end, py::handle flags, py::handle user) {
    PyMetadata md;
    md.m.sequence = as_u64(sequence, "sequence", UINT64_MAX);
    md.m.pts_ns = time_arg(pts, "pts_ns");
    md.m.dts_ns = time_arg(dts, "dts_ns");
    md.m.duration_ns = time_arg(duration, "duration_ns");
    md.m.offset = as_u64(offset, "offset", UINT64_MAX);
    md.m.offset_end = as_u64(offset_end, "offset_end", UINT64_MAX);
    md.m.flags = static_cast<uint32_t>(as_u64(flags, "flags", UINT32_MAX));
    set_user(md.m, user);
    return md;
}

// Metadata(...) is built once per frame in a typical producer loop, and pybind11's generic
// keyword matching (a dictionary lookup with a fresh string per declared parameter) costs more
// than everything else in it; this parses *args/**kwargs directly, with the same rules.
constexpr const char *field_names[] = {"sequence", "pts_ns",     "dts_ns", "duration_ns",
                                       "offset",   "offset_end", "flags",  "user"};
constexpr size_t field_count = sizeof field_names / sizeof field_names[0];

PyMetadata make_from_args(const py::args &args, const py::kwargs &kwargs) {
    if (args.size() > field_count)
        throw py::type_error("Metadata() takes at most 8 arguments (" +
                             std::to_string(args.size()) + " given)");
    PyObject *values[field_count] = {};
    for (size_t i = 0; i < args.size(); ++i)
        values[i] = args[i].ptr();
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(kwargs.ptr(), &pos, &key, &value)) {
        const char *name = PyUnicode_AsUTF8(key);
        if (!name)
            throw py::error_already_set();
        size_t i = 0;
        while (i < field_count && std::strcmp(name, field_names[i]) != 0)
            ++i;
        if (i == field_count)
            throw py::type_error(std::string("Metadata() got an unexpected keyword argument '") +
                                 name + "'");
        if (values[i])
            throw py::type_error(std::string("Metadata() got multiple values for argument '") +
                                 name + "'");
        values[i] = value;
    }
    PyMetadata md;
    if (values[0])
        md.m.sequence = as_u64(values[0], "sequence", UINT64_MAX);
    if (values[1])
        md.m.pts_ns = time_arg(values[1], "pts_ns");
    if (values[2])
        md.m.dts_ns = time_arg(values[2], "dts_ns");
    if (values[3])
        md.m.duration_ns = time_arg(values[3], "duration_ns");
    if (values[4])
        md.m.offset = as_u64(values[4], "offset", UINT64_MAX);
    if (values[5])
        md.m.offset_end = as_u64(values[5], "offset_end", UINT64_MAX);
    if (values[6])
        md.m.flags = static_cast<uint32_t>(as_u64(values[6], "flags", UINT32_MAX));
    if (values[7])
        set_user(md.m, values[7]);
    return md;
}

} // namespace

const px_metadata_t *metadata_arg(py::handle value, px_metadata_t &storage) {
    if (value.is_none())
        return nullptr;
    if (!py::isinstance<PyMetadata>(value))
        throw py::type_error("metadata must be a parallax.Metadata or None, not " +
                             std::string(py::str(py::type::handle_of(value).attr("__name__"))));
    storage = value.cast<const PyMetadata &>().m;
    return &storage;
}

void bind_metadata(py::module_ &m) {
    py::class_<PyMetadata>(m, "Metadata", R"doc(
Per-buffer metadata, carried intact across channels.

Times (``pts_ns``, ``dts_ns``, ``duration_ns``) are nanoseconds or ``None`` when unknown.
``user`` is up to 64 bytes of application data. ``Buffer.metadata`` returns a copy: change
the copy, then assign it back (``buf.metadata = md``). Pickles by value (plain pickle too).

Args:
    sequence, offset, offset_end: ints in [0, 2**64); flags: an int in [0, 2**32).
    pts_ns, dts_ns, duration_ns: nanoseconds (signed 64-bit), or None for unknown.
    user: bytes-like, at most 64 bytes (METADATA_USER_MAX).

Raises:
    InvalidArgument: a negative or too large field, or ``user`` longer than 64 bytes.
    TypeError: a field of the wrong type, or an unknown keyword.

Example::

    md = px.Metadata(sequence=7, pts_ns=time.monotonic_ns(), user=b"cam0")
    buf = frame.into_buffer(md)
    assert buf.metadata.sequence == 7
)doc")
        .def(py::init(&make_from_args),
             "Metadata(sequence=0, pts_ns=None, dts_ns=None, duration_ns=None, offset=0, "
             "offset_end=0, flags=0, user=b'')")
        .def_property(
            "sequence", [](const PyMetadata &s) { return s.m.sequence; },
            [](PyMetadata &s, py::handle v) { s.m.sequence = as_u64(v, "sequence", UINT64_MAX); },
            "The frame's number (the producer's choice; streams do not renumber it).")
        .def_property(
            "pts_ns", [](const PyMetadata &s) { return time_get(s.m.pts_ns); },
            [](PyMetadata &s, py::handle v) { s.m.pts_ns = time_arg(v, "pts_ns"); },
            "Presentation time in ns, or None when unknown.")
        .def_property(
            "dts_ns", [](const PyMetadata &s) { return time_get(s.m.dts_ns); },
            [](PyMetadata &s, py::handle v) { s.m.dts_ns = time_arg(v, "dts_ns"); },
            "Decoding time in ns, or None when unknown.")
        .def_property(
            "duration_ns", [](const PyMetadata &s) { return time_get(s.m.duration_ns); },
            [](PyMetadata &s, py::handle v) { s.m.duration_ns = time_arg(v, "duration_ns"); },
            "Duration in ns, or None when unknown.")
        .def_property(
            "offset", [](const PyMetadata &s) { return s.m.offset; },
            [](PyMetadata &s, py::handle v) { s.m.offset = as_u64(v, "offset", UINT64_MAX); },
            "Application-defined position of the first byte (e.g. in a file), default 0.")
        .def_property(
            "offset_end", [](const PyMetadata &s) { return s.m.offset_end; },
            [](PyMetadata &s, py::handle v) {
                s.m.offset_end = as_u64(v, "offset_end", UINT64_MAX);
            },
            "Application-defined position after the last byte, default 0.")
        .def_property(
            "flags", [](const PyMetadata &s) { return s.m.flags; },
            [](PyMetadata &s, py::handle v) {
                s.m.flags = static_cast<uint32_t>(as_u64(v, "flags", UINT32_MAX));
            },
            "Application-defined bits (32).")
        .def_property(
            "user", [](const PyMetadata &s) { return user_get(s.m); },
            [](PyMetadata &s, py::handle v) { set_user(s.m, v); },
            "Up to 64 bytes of application data (bytes; assign any bytes-like or None).")
        .def("__eq__",
             [](const PyMetadata &a, py::handle b) -> py::object {
                 if (!py::isinstance<PyMetadata>(b))
                     return py::reinterpret_borrow<py::object>(Py_NotImplemented);
                 return py::bool_(equal(a.m, b.cast<const PyMetadata &>().m));
             })
        .def("__copy__", [](const PyMetadata &s) { return PyMetadata(s.m); })
        .def("__deepcopy__", [](const PyMetadata &s, py::handle) { return PyMetadata(s.m); })
        .def(py::pickle(
            [](const PyMetadata &s) {
                return py::make_tuple(s.m.sequence, time_get(s.m.pts_ns), time_get(s.m.dts_ns),
                                      time_get(s.m.duration_ns), s.m.offset, s.m.offset_end,
                                      s.m.flags, user_get(s.m));
            },
            [](const py::tuple &t) {
                if (t.size() != 8)
                    raise_error(PX_E_INVALID, "bad Metadata pickle state");
                return make(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]);
            }))
        .def("__repr__", [](const PyMetadata &s) {
            auto t = [](int64_t v) {
                return v == PX_TIME_NONE ? std::string("None") : std::to_string(v);
            };
            return "Metadata(sequence=" + std::to_string(s.m.sequence) +
                   ", pts_ns=" + t(s.m.pts_ns) + ", dts_ns=" + t(s.m.dts_ns) +
                   ", duration_ns=" + t(s.m.duration_ns) + ", offset=" +
                   std::to_string(s.m.offset) + ", offset_end=" + std::to_string(s.m.offset_end) +
                   ", flags=" + std::to_string(s.m.flags) + ", user=" +
                   std::string(py::repr(user_get(s.m))) + ")";
        });
    // __eq__ without __hash__ makes Metadata unhashable, as a mutable value should be.
    m.attr("Metadata").attr("__hash__") = py::none();
}

} // namespace pxpy
