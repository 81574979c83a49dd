// SPDX-License-Identifier: Apache-2.0 OR MIT
// The per-frame methods (loan, into_buffer, send, recv, release...) as plain CPython
// METH_FASTCALL methods, called through vectorcall.
//
// pybind11's generic dispatcher (argument vectors, type-caster lookups, overload resolution)
// costs several times what these library calls do; a frame makes six such calls. Here each
// method is a method descriptor on the pybind11 class, its arguments are bound by name as
// Python binds them, `self` is reached through the instance's value pointer, and the C++
// exceptions the binding raises become the Python error they carry, as under pybind11.
#pragma once

#include <cstring>
#include <exception>
#include <initializer_list>
#include <string>

#include <pybind11/pybind11.h>

namespace pxpy {

using FastMethod = PyObject *(*)(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames);

// The Python type bound for T (py::class_<T> must have run).
template <class T> PyTypeObject *bound_type() {
    static PyTypeObject *type = reinterpret_cast<PyTypeObject *>(pybind11::type::of<T>().ptr());
    return type;
}

// The C++ object of `o`, which must be a T: the value pointer directly for the bound class
// itself, pybind11's cast otherwise (subclasses; it raises for an object whose __init__ never
// ran). TypeError naming `name` for anything else.
template <class T> T &cast_arg(pybind11::handle o, const char *name, const char *type_name) {
    if (Py_TYPE(o.ptr()) == bound_type<T>()) {
        auto *inst = reinterpret_cast<pybind11::detail::instance *>(o.ptr());
        if (inst->simple_layout && inst->simple_value_holder[0])
            return *static_cast<T *>(inst->simple_value_holder[0]);
    }
    if (!PyObject_TypeCheck(o.ptr(), bound_type<T>()))
        throw pybind11::type_error(std::string(name) + " must be a " + type_name + ", not " +
                                   Py_TYPE(o.ptr())->tp_name);
    return pybind11::cast<T &>(o);
}

// Binds the arguments of a call to `func` to the optional parameters `names`, in order, as
// Python does (positionally, then by keyword): out[i] is the argument or nullptr if absent.
inline void bind_args(const char *func, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                      std::initializer_list<const char *> names, PyObject **out) {
    auto n = static_cast<Py_ssize_t>(names.size());
    if (nargs > n)
        throw pybind11::type_error(std::string(func) + "() takes at most " + std::to_string(n) +
                                   " argument(s) (" + std::to_string(nargs) + " given)");
    for (Py_ssize_t i = 0; i < n; ++i)
        out[i] = i < nargs ? args[i] : nullptr;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; ++k) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        const char *key_utf8 = PyUnicode_AsUTF8(key);
        if (!key_utf8)
            throw pybind11::error_already_set();
        Py_ssize_t i = 0;
        for (const char *name : names) {
            if (std::strcmp(name, key_utf8) == 0)
                break;
            ++i;
        }
        if (i == n)
            throw pybind11::type_error(std::string(func) +
                                       "() got an unexpected keyword "
                                       "argument '" +
                                       key_utf8 + "'");
        if (out[i])
            throw pybind11::type_error(std::string(func) +
                                       "() got multiple values for "
                                       "argument '" +
                                       key_utf8 + "'");
        out[i] = args[nargs + k];
    }
}

// Runs Body, returning its result, or nullptr with the Python error its exception carries.
template <FastMethod Body>
PyObject *guarded(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    try {
        return Body(self, args, nargs, kwnames);
    } catch (pybind11::error_already_set &e) {
        e.restore();
    } catch (pybind11::builtin_exception &e) {
        e.set_error();
    } catch (const std::exception &e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    } catch (...) {
        PyErr_SetString(PyExc_SystemError, "unknown C++ exception in parallax");
    }
    return nullptr;
}

// A PyMethodDef entry for Body. `doc` starts with "name($self, ...)\n--\n\n" so that
// inspect.signature() and help() show the parameters.
template <FastMethod Body> constexpr PyMethodDef fast_method(const char *name, const char *doc) {
    return {name, reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&guarded<Body>)),
            METH_FASTCALL | METH_KEYWORDS, doc};
}

// Installs each entry of `defs` (static storage: the descriptors point into it) on `cls`.
template <size_t N> void def_fast(pybind11::handle cls, PyMethodDef (&defs)[N]) {
    for (PyMethodDef &def : defs) {
        PyObject *d = PyDescr_NewMethod(reinterpret_cast<PyTypeObject *>(cls.ptr()), &def);
        if (!d)
            throw pybind11::error_already_set();
        pybind11::setattr(cls, def.ml_name, pybind11::reinterpret_steal<pybind11::object>(d));
    }
}

// __enter__(): the object itself.
inline PyObject *fast_enter(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames) {
    bind_args("__enter__", args, nargs, kwnames, {}, nullptr);
    Py_INCREF(self);
    return self;
}

// The result of a method that returns None.
inline PyObject *none() {
    Py_INCREF(Py_None); // Py_NewRef is 3.10+
    return Py_None;
}

} // namespace pxpy
