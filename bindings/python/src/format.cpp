// SPDX-License-Identifier: Apache-2.0 OR MIT
// parallax.Format and parallax.DType (see format.hpp).
#include "format.hpp"

#include <cstring>
#include <string>

#include <pybind11/native_enum.h>

#include "convert.hpp"
#include "errors.hpp"

namespace pxpy {

namespace {

// The Python-facing dtype: a real enum.IntEnum whose values are PX_DTYPE_*.
enum class DType : uint32_t {
    U8 = PX_DTYPE_U8,
    I8 = PX_DTYPE_I8,
    U16 = PX_DTYPE_U16,
    I16 = PX_DTYPE_I16,
    U32 = PX_DTYPE_U32,
    I32 = PX_DTYPE_I32,
    U64 = PX_DTYPE_U64,
    I64 = PX_DTYPE_I64,
    F16 = PX_DTYPE_F16,
    BF16 = PX_DTYPE_BF16,
    F32 = PX_DTYPE_F32,
    F64 = PX_DTYPE_F64,
};

struct DTypeInfo {
    const char *name;   // numpy's name (and Format's repr)
    const char *numpy;  // the numpy dtype it maps to: bf16 has none, so its raw bits (uint16)
    const char *pep3118;
    char kind;          // numpy dtype.kind
};

// Indexed by PX_DTYPE_* - 1 (the values are fixed by the C API).
constexpr DTypeInfo dtypes[] = {
    {"uint8", "uint8", "B", 'u'},       {"int8", "int8", "b", 'i'},
    {"uint16", "uint16", "H", 'u'},     {"int16", "int16", "h", 'i'},
    {"uint32", "uint32", "I", 'u'},     {"int32", "int32", "i", 'i'},
    {"uint64", "uint64", "Q", 'u'},     {"int64", "int64", "q", 'i'},
    {"float16", "float16", "e", 'f'},   {"bfloat16", "uint16", "H", 'V'},
    {"float32", "float32", "f", 'f'},   {"float64", "float64", "d", 'f'},
};
constexpr uint32_t dtype_count = sizeof dtypes / sizeof dtypes[0];

const DTypeInfo &info(uint32_t dtype) { return dtypes[dtype - 1]; }

[[noreturn]] void invalid(const std::string &message) { raise_error(PX_E_INVALID, message); }

std::string type_name(py::handle v) { return Py_TYPE(v.ptr())->tp_name; }

PyObject *dtype_enum = nullptr; // parallax.DType, set by bind_format (leaked, as the module)

uint32_t dtype_from_numpy(py::handle value) {
    py::object dt;
    try {
        dt = numpy("a dtype other than a DType or a dtype name").attr("dtype")(value);
    } catch (py::error_already_set &e) {
        if (!e.matches(PyExc_TypeError))
            throw;
        throw py::type_error("dtype: numpy does not understand " + std::string(py::repr(value)) +
                             " as a dtype");
    }
    std::string name = py::str(dt.attr("name"));
    if (name == "bfloat16") // ml_dtypes.bfloat16
        return PX_DTYPE_BF16;
    std::string order = py::str(dt.attr("byteorder"));
    if (order == ">")
        invalid("dtype " + std::string(py::str(dt.attr("str"))) +
                " is big-endian; frames are in the machine's byte order");
    char kind = std::string(py::str(dt.attr("kind")))[0];
    auto size = dt.attr("itemsize").cast<size_t>();
    for (uint32_t d = 1; d <= dtype_count; ++d)
        if (info(d).kind == kind && px_dtype_size(d) == size)
            return d;
    invalid("dtype " + name +
            " has no parallax dtype (supported: (u)int8/16/32/64, float16/32/64, bfloat16)");
}

uint32_t dtype_arg(py::handle value) {
    if (PyBool_Check(value.ptr()))
        throw py::type_error("dtype must be a DType, a numpy dtype or a dtype name, not bool");
    if (PyLong_Check(value.ptr())) { // a DType (an IntEnum) or its value
        int64_t v = as_i64(value, "dtype");
        if (v < 1 || v > dtype_count)
            invalid("dtype " + std::to_string(v) + " is not a parallax dtype (DType.U8 = 1 to " +
                    "DType.F64 = 12)");
        return static_cast<uint32_t>(v);
    }
    if (PyUnicode_Check(value.ptr())) { // the common names, without a numpy round trip
        std::string name = py::str(value);
        if (name == "bf16")
            return PX_DTYPE_BF16;
        for (uint32_t d = 1; d <= dtype_count; ++d)
            if (name == info(d).name)
                return d;
    }
    return dtype_from_numpy(value);
}

void shape_arg(py::handle value, px_format_t &f) {
    if (PyIndex_Check(value.ptr())) {
        f.ndim = 1;
        f.shape[0] = as_i64(value, "shape");
    } else {
        py::tuple items = py::tuple(py::reinterpret_borrow<py::object>(value)); // a snapshot
        if (items.empty() || items.size() > PX_FORMAT_MAX_DIMS)
            invalid("shape has " + std::to_string(items.size()) +
                    " dimensions; a format has 1 to 8");
        f.ndim = static_cast<uint32_t>(items.size());
        for (size_t i = 0; i < items.size(); ++i)
            f.shape[i] = as_i64(items[i], "shape");
    }
    for (uint32_t i = 0; i < f.ndim; ++i)
        if (f.shape[i] < 0)
            invalid("shape[" + std::to_string(i) + "] is " + std::to_string(f.shape[i]) +
                    "; a dimension is >= 0");
}

void strides_arg(py::handle value, px_format_t &f) {
    if (value.is_none())
        return; // C-contiguous
    if (PyIndex_Check(value.ptr()) || !PySequence_Check(value.ptr()) ||
        PyUnicode_Check(value.ptr()))
        throw py::type_error("strides must be None or a sequence of ints (bytes), not " +
                             type_name(value));
    py::tuple items = py::tuple(py::reinterpret_borrow<py::object>(value));
    if (items.size() != f.ndim)
        invalid("strides has " + std::to_string(items.size()) + " entries for " +
                std::to_string(f.ndim) + " dimensions");
    for (size_t i = 0; i < items.size(); ++i)
        f.strides[i] = as_i64(items[i], "strides");
}

uint32_t fourcc_arg(py::handle value) {
    if (value.is_none())
        return 0;
    if (PyIndex_Check(value.ptr()))
        return static_cast<uint32_t>(as_u64(value, "fourcc", UINT32_MAX));
    std::string code;
    if (PyUnicode_Check(value.ptr()))
        code = py::str(value);
    else if (PyBytes_Check(value.ptr()))
        code = py::bytes(py::reinterpret_borrow<py::object>(value));
    else
        throw py::type_error("fourcc must be an int or a 4-character str, not " +
                             type_name(value));
    if (code.size() != 4)
        invalid("fourcc " + std::string(py::repr(value)) + " is not 4 characters");
    // Little-endian, as V4L2 and DRM pack them: 'R','G','B','3' -> 0x33424752.
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i)
        v |= static_cast<uint32_t>(static_cast<unsigned char>(code[i])) << (8 * i);
    return v;
}

py::tuple int_tuple(const int64_t *v, uint32_t n) {
    py::tuple t(n);
    for (uint32_t i = 0; i < n; ++i)
        t[i] = py::int_(v[i]);
    return t;
}

bool strides_set(const px_format_t &f) {
    for (uint32_t i = 0; i < f.ndim; ++i)
        if (f.strides[i] != 0)
            return true;
    return false;
}

// The fourcc as its 4 characters when they are printable, else as an int.
std::string fourcc_repr(uint32_t fourcc) {
    std::string s;
    for (int i = 0; i < 4; ++i) {
        char c = static_cast<char>((fourcc >> (8 * i)) & 0xff);
        if (c < 0x20 || c > 0x7e || c == '\'' || c == '\\')
            return std::to_string(fourcc);
        s += c;
    }
    return "'" + s + "'";
}

std::string repr(const px_format_t &f) {
    std::string s = "Format(dtype='" + std::string(info(f.dtype).name) + "', shape=" +
                    std::string(py::repr(int_tuple(f.shape, f.ndim)));
    if (strides_set(f))
        s += ", strides=" + std::string(py::repr(int_tuple(f.strides, f.ndim)));
    if (f.fourcc)
        s += ", fourcc=" + fourcc_repr(f.fourcc);
    return s + ")";
}

py::object numpy_dtype(uint32_t dtype) {
    static PyObject *cache[dtype_count] = {}; // leaked with the module, like numpy itself
    PyObject *&slot = cache[dtype - 1];
    if (!slot)
        slot = numpy("Format.dtype").attr("dtype")(info(dtype).numpy).release().ptr();
    return py::reinterpret_borrow<py::object>(slot);
}

PyFormat make(py::handle dtype, py::handle shape, py::handle strides, py::handle fourcc) {
    return {format_from_args(dtype, shape, strides, fourcc)};
}

} // namespace

const char *pep3118_format(uint32_t dtype) { return info(dtype).pep3118; }

void byte_strides(const px_format_t &f, int64_t *out) {
    if (strides_set(f)) {
        std::memcpy(out, f.strides, f.ndim * sizeof(int64_t));
        return;
    }
    // Saturating: only a standalone Format can be that large (a buffer's format fits it).
    int64_t step = static_cast<int64_t>(px_dtype_size(f.dtype));
    for (uint32_t i = f.ndim; i-- > 0;) {
        out[i] = step;
        if (f.shape[i] > 0 && __builtin_mul_overflow(step, f.shape[i], &step))
            step = INT64_MAX;
    }
}

bool is_c_contiguous(const px_format_t &f, const int64_t *strides) {
    for (uint32_t i = 0; i < f.ndim; ++i)
        if (f.shape[i] == 0)
            return true;
    int64_t expected = static_cast<int64_t>(px_dtype_size(f.dtype));
    for (uint32_t i = f.ndim; i-- > 0;) {
        if (f.shape[i] != 1 && strides[i] != expected)
            return false;
        if (__builtin_mul_overflow(expected, f.shape[i], &expected))
            return false;
    }
    return true;
}

bool format_extent(const px_format_t &f, size_t &out) {
    int64_t strides[PX_FORMAT_MAX_DIMS];
    byte_strides(f, strides);
    for (uint32_t i = 0; i < f.ndim; ++i)
        if (f.shape[i] < 0 || strides[i] < 0 || strides[i] == INT64_MAX)
            return false; // negative, or a C-contiguous stride that saturated
    for (uint32_t i = 0; i < f.ndim; ++i)
        if (f.shape[i] == 0) {
            out = 0;
            return true;
        }
    uint64_t end = px_dtype_size(f.dtype);
    for (uint32_t i = 0; i < f.ndim; ++i) {
        uint64_t span = 0;
        if (__builtin_mul_overflow(static_cast<uint64_t>(f.shape[i] - 1),
                                   static_cast<uint64_t>(strides[i]), &span) ||
            __builtin_add_overflow(end, span, &end))
            return false;
    }
    out = static_cast<size_t>(end);
    return true;
}

px_format_t format_from_args(py::handle dtype, py::handle shape, py::handle strides,
                             py::handle fourcc) {
    px_format_t f;
    std::memset(&f, 0, sizeof f); // fields beyond ndim must be 0
    f.dtype = dtype_arg(dtype);
    shape_arg(shape, f);
    strides_arg(strides, f);
    f.fourcc = fourcc_arg(fourcc);
    return f;
}

const px_format_t *format_arg(py::handle value) {
    if (!py::isinstance<PyFormat>(value))
        return nullptr;
    return &value.cast<const PyFormat &>().f;
}

py::object format_of(const px_buffer_t *buf) {
    PyFormat out;
    check(px_buffer_format(buf, &out.f));
    if (out.f.ndim == 0)
        return py::none();
    return py::cast(out);
}

py::module_ numpy(const char *what) {
    static PyObject *module = nullptr; // leaked: numpy is never unloaded
    if (!module) {
        try {
            module = py::module_::import("numpy").release().ptr();
        } catch (py::error_already_set &e) {
            if (!e.matches(PyExc_ImportError))
                throw;
            PyErr_Format(PyExc_ImportError, "%s needs numpy (pip install numpy)", what);
            throw py::error_already_set();
        }
    }
    return py::reinterpret_borrow<py::module_>(module);
}

void bind_format(py::module_ &m) {
    py::native_enum<DType>(m, "DType", "enum.IntEnum", R"doc(
The element type of a typed frame (``px_format_t.dtype``; the values are the C API's
``PX_DTYPE_*`` and never change). Wherever a dtype is taken, a DType, a numpy dtype or a dtype
name (``"uint8"``, ``np.float32``, ``"bfloat16"``) are all accepted.

Example::

    fmt = px.Format(px.DType.F32, (480, 640))
    assert fmt.dtype == np.float32 and fmt.px_dtype is px.DType.F32
)doc")
        .value("U8", DType::U8)
        .value("I8", DType::I8)
        .value("U16", DType::U16)
        .value("I16", DType::I16)
        .value("U32", DType::U32)
        .value("I32", DType::I32)
        .value("U64", DType::U64)
        .value("I64", DType::I64)
        .value("F16", DType::F16)
        .value("BF16", DType::BF16)
        .value("F32", DType::F32)
        .value("F64", DType::F64)
        .finalize();
    dtype_enum = py::object(m.attr("DType")).release().ptr();

    py::class_<PyFormat>(m, "Format", R"doc(
What a typed buffer's bytes are: an array of ``shape`` elements of ``dtype`` starting at the
buffer's first byte, ``strides`` bytes apart (``buf.format``; travels with the buffer over
channels and streams). An immutable value: compare, hash, pickle, or pass it to
``Buffer.set_format``.

Args:
    dtype: a DType, a numpy dtype or a dtype name (``"uint8"``, ``np.float32``,
        ``"bfloat16"``). bfloat16 has no numpy dtype and no PEP 3118 code: ``dtype`` and the
        buffer protocol give its raw bits as uint16 (view them with ``ml_dtypes.bfloat16``),
        ``px_dtype`` is ``DType.BF16``, and DLPack exports it as bfloat16.
    shape: an int or a sequence of 1 to 8 ints >= 0.
    strides: bytes between elements of each dimension, or None for C-contiguous (row-major).
    fourcc: an optional pixel-format code: an int or 4 characters (``"RGB3"``), 0 for none.

Raises:
    TypeError: an argument of the wrong type. InvalidArgument: an unknown dtype, 0 or more
    than 8 dimensions, a negative dimension, strides not matching the shape, a fourcc that is
    not 4 characters. What depends on a buffer (strides a multiple of the element size,
    every element inside the buffer) is checked when the format is applied.

Example::

    fmt = px.Format(np.uint8, (1080, 1920, 3), fourcc="RGB3")
    assert fmt.strides == (5760, 3, 1) and fmt.nbytes == 1080 * 1920 * 3
)doc")
        .def(py::init(&make), py::arg("dtype"), py::arg("shape"),
             py::arg("strides") = py::none(), py::arg("fourcc") = 0)
        .def_property_readonly(
            "dtype", [](const PyFormat &f) { return numpy_dtype(f.f.dtype); },
            "The numpy dtype of the elements (bfloat16: uint16, its raw bits). Needs numpy.")
        .def_property_readonly(
            "px_dtype",
            [](const PyFormat &f) { return py::handle(dtype_enum)(f.f.dtype); },
            "The element type as a DType (exact, also for bfloat16).")
        .def_property_readonly(
            "shape", [](const PyFormat &f) { return int_tuple(f.f.shape, f.f.ndim); },
            "Elements per dimension, a tuple of ints.")
        .def_property_readonly(
            "strides",
            [](const PyFormat &f) {
                int64_t s[PX_FORMAT_MAX_DIMS];
                byte_strides(f.f, s);
                return int_tuple(s, f.f.ndim);
            },
            "Bytes between elements of each dimension, a tuple of ints (computed for a "
            "C-contiguous format, as numpy's).")
        .def_property_readonly(
            "c_contiguous",
            [](const PyFormat &f) {
                int64_t s[PX_FORMAT_MAX_DIMS];
                byte_strides(f.f, s);
                return is_c_contiguous(f.f, s);
            },
            "Whether the elements are row-major with no gaps.")
        .def_property_readonly(
            "fourcc", [](const PyFormat &f) { return f.f.fourcc; },
            "The pixel-format code as an int (little-endian: 'RGB3' is 0x33424752), 0 if none.")
        .def_property_readonly(
            "ndim", [](const PyFormat &f) { return f.f.ndim; }, "The number of dimensions.")
        .def_property_readonly(
            "itemsize", [](const PyFormat &f) { return px_dtype_size(f.f.dtype); },
            "Bytes per element.")
        .def_property_readonly(
            "nbytes",
            [](const PyFormat &f) {
                size_t n = 0;
                if (!format_extent(f.f, n))
                    invalid("this format's elements span more than the address space");
                return n;
            },
            "Bytes from the first element to the end of the last (what a buffer must hold).")
        .def("__eq__",
             [](const PyFormat &a, py::handle b) -> py::object {
                 const px_format_t *o = format_arg(b);
                 if (!o)
                     return py::reinterpret_borrow<py::object>(Py_NotImplemented);
                 return py::bool_(std::memcmp(&a.f, o, sizeof a.f) == 0);
             })
        .def("__hash__",
             [](const PyFormat &f) {
                 return py::hash(py::bytes(reinterpret_cast<const char *>(&f.f), sizeof f.f));
             })
        .def(py::pickle(
            [](const PyFormat &f) {
                py::object strides = strides_set(f.f) ? py::object(int_tuple(f.f.strides, f.f.ndim))
                                                      : py::object(py::none());
                return py::make_tuple(f.f.dtype, int_tuple(f.f.shape, f.f.ndim), strides,
                                      f.f.fourcc);
            },
            [](const py::tuple &t) {
                if (t.size() != 4)
                    invalid("bad Format pickle state");
                return make(t[0], t[1], t[2], t[3]);
            }))
        .def("__repr__", [](const PyFormat &f) { return repr(f.f); });
}

} // namespace pxpy
