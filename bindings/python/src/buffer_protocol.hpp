// SPDX-License-Identifier: Apache-2.0 OR MIT
// The Python buffer protocol (1-D, format "B") for objects that expose px memory.
//
// pybind11's own def_buffer has no release hook, so it cannot count exported views; this one
// does: every view adds one to the owner's Handle exports count and takes a strong reference
// to the owner (view->obj), so the memory stays mapped for as long as any view exists and
// close()/release() of the owner raises BufferError meanwhile. Obj must have a `handle`
// member (a Handle<>) and `Span span()` (which raises when the object is closed).
#pragma once

#include <cstddef>
#include <exception>

#include <pybind11/pybind11.h>

#include "fastcall.hpp"

namespace pxpy {

struct Span {
    void *data;
    size_t len;
    bool readonly;
    const char *what; // for the read-only error message
};

template <class Obj> int get_buffer(PyObject *self, Py_buffer *view, int flags) {
    namespace py = pybind11;
    view->obj = nullptr;
    try {
        Obj &o = cast_arg<Obj>(self, "self", "parallax object"); // no type-caster lookup
        Span s = o.span();
        if ((flags & PyBUF_WRITABLE) && s.readonly) {
            PyErr_Format(PyExc_BufferError,
                         "%s is read-only (received from a channel or mapped read-only); "
                         "ask for a read-only view, e.g. np.frombuffer or memoryview",
                         s.what);
            return -1;
        }
        static char empty_region; // a zero-length region still needs a valid address
        void *data = s.data ? s.data : &empty_region;
        if (PyBuffer_FillInfo(view, self, data, static_cast<Py_ssize_t>(s.len),
                              s.readonly ? 1 : 0, flags) < 0)
            return -1;
        view->internal = &o; // alive as long as view->obj is
        o.handle.add_export();
        return 0;
    } catch (py::error_already_set &e) {
        e.restore();
    } catch (py::builtin_exception &e) {
        e.set_error();
    } catch (const std::exception &e) {
        PyErr_SetString(PyExc_BufferError, e.what());
    }
    return -1;
}

template <class Obj> void release_buffer(PyObject *, Py_buffer *view) {
    static_cast<Obj *>(view->internal)->handle.remove_export();
}

// Pass to py::class_<...>(m, "Name", buffer_protocol<Obj>()) (also for every subclass: Python
// does not inherit buffer slots into types created without them).
template <class Obj> pybind11::custom_type_setup buffer_protocol() {
    return pybind11::custom_type_setup([](PyHeapTypeObject *type) {
        type->as_buffer.bf_getbuffer = &get_buffer<Obj>;
        type->as_buffer.bf_releasebuffer = &release_buffer<Obj>;
        type->ht_type.tp_as_buffer = &type->as_buffer;
    });
}

} // namespace pxpy
