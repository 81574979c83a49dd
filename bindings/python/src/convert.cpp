// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "convert.hpp"

#include <cmath>
#include <cstring>

#include "errors.hpp"

namespace py = pybind11;

namespace pxpy {

namespace {

[[noreturn]] void invalid(const std::string &message) { raise_error(PX_E_INVALID, message); }

// operator.index(value), with a TypeError that names the parameter.
py::int_ index(py::handle value, const char *name) {
    if (!PyIndex_Check(value.ptr()))
        throw py::type_error(std::string(name) + " must be an integer, not " +
                             std::string(py::str(py::type::handle_of(value).attr("__name__"))));
    return py::reinterpret_steal<py::int_>(PyNumber_Index(value.ptr()));
}

} // namespace

uint64_t as_u64(py::handle value, const char *name, uint64_t hi) {
    py::int_ v = index(value, name);
    if (PyObject_RichCompareBool(v.ptr(), py::int_(0).ptr(), Py_LT) == 1)
        invalid(std::string(name) + " must not be negative, got " + std::string(py::str(v)));
    unsigned long long u = PyLong_AsUnsignedLongLong(v.ptr());
    if (u == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
        PyErr_Clear();
        invalid(std::string(name) + " " + std::string(py::str(v)) + " is too large (max " +
                std::to_string(hi) + ")");
    }
    if (u > hi)
        invalid(std::string(name) + " " + std::to_string(u) + " is too large (max " +
                std::to_string(hi) + ")");
    return u;
}

size_t as_size(py::handle value, const char *name) { return as_u64(value, name, SIZE_MAX); }

int64_t as_i64(py::handle value, const char *name) {
    py::int_ v = index(value, name);
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
    if (overflow != 0)
        invalid(std::string(name) + " " + std::string(py::str(v)) +
                " does not fit a signed 64-bit integer");
    return x;
}

namespace {

// The C API counts a timeout in int64_t nanoseconds. A longer one (over ~292 years) cannot end
// before the program does, so it waits forever, as None does: rounding it down to INT64_MAX
// would invent a deadline nobody asked for. The Rust binding follows the same rule.
constexpr int64_t ns_per_s = 1'000'000'000;
constexpr double two_to_63 = 9223372036854775808.0; // INT64_MAX + 1, exact as a double

// Whole seconds, exactly (an int of any size: 10**400 is forever too, not an OverflowError).
int64_t whole_seconds_ns(py::handle value, const char *name) {
    // An exact int (timeout=0, the per-frame poll) needs no operator.index() round trip.
    py::int_ v = PyLong_CheckExact(value.ptr()) ? py::reinterpret_borrow<py::int_>(value)
                                                : index(value, name);
    int overflow = 0;
    long long seconds = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
    if (overflow != 0 || seconds < 0 || seconds > INT64_MAX / ns_per_s)
        return -1; // negative (documented as forever) or longer than INT64_MAX ns
    return seconds * ns_per_s;
}

int64_t float_seconds_ns(double seconds, const char *name) {
    if (std::isnan(seconds))
        invalid(std::string(name) + " is NaN");
    if (seconds < 0)
        return -1;
    if (seconds == 0)
        return 0;
    double ns = seconds * 1e9; // inf stays inf
    if (ns >= two_to_63)
        return -1;
    return ns < 1 ? 1 : static_cast<int64_t>(ns); // a positive wait never becomes a poll
}

} // namespace

int64_t as_timeout_ns(py::handle value, const char *name) {
    if (value.is_none())
        return -1;
    if (PyFloat_Check(value.ptr())) {
        double seconds = PyFloat_AsDouble(value.ptr());
        if (seconds == -1.0 && PyErr_Occurred())
            throw py::error_already_set();
        return float_seconds_ns(seconds, name);
    }
    if (PyIndex_Check(value.ptr()))
        return whole_seconds_ns(value, name);
    throw py::type_error(std::string(name) + " must be a number of seconds or None, not " +
                         std::string(py::str(py::type::handle_of(value).attr("__name__"))));
}

std::string as_path(py::handle value, const char *name) {
    py::object os = py::module_::import("os");
    py::object encoded;
    try {
        encoded = os.attr("fsencode")(value);
    } catch (py::error_already_set &e) {
        if (!e.matches(PyExc_TypeError))
            throw;
        throw py::type_error(std::string(name) + " must be str, bytes or os.PathLike, not " +
                             std::string(py::str(py::type::handle_of(value).attr("__name__"))));
    }
    std::string path = encoded.cast<std::string>();
    if (path.empty())
        invalid(std::string(name) + " is empty");
    if (std::memchr(path.data(), '\0', path.size()))
        invalid(std::string(name) + " contains a NUL byte");
    return path;
}

int as_fd(py::handle value, const char *name) {
    py::object v = py::reinterpret_borrow<py::object>(value);
    if (!PyIndex_Check(value.ptr()) && py::hasattr(value, "fileno"))
        v = value.attr("fileno")();
    int64_t fd = as_i64(v, name);
    if (fd < 0 || fd > INT32_MAX)
        invalid(std::string(name) + " " + std::to_string(fd) + " is not a file descriptor");
    return static_cast<int>(fd);
}

} // namespace pxpy
