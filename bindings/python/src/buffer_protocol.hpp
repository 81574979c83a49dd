// SPDX-License-Identifier: Apache-2.0 OR MIT
// The Python buffer protocol for objects that expose px memory: 1-D bytes (format "B"), or for
// a typed buffer (Buffer.set_format, or received with a format) its shape, strides and PEP 3118
// format, so that np.asarray(buf) is an array of the right shape over the same memory.
//
// pybind11's own def_buffer has no release hook, so it cannot count exported views; this one
// does: every view adds one to the owner's Handle exports count and takes a strong reference
// to the owner (view->obj), so the memory stays mapped for as long as any view exists and
// close()/release() of the owner raises BufferError meanwhile. Obj must have a `handle`
// member (a Handle<>) and `Span span()` (which raises when the object is closed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>

#include <pybind11/pybind11.h>

#include "fastcall.hpp"
#include "format.hpp"

namespace pxpy {

struct Span {
    void *data;
    size_t len;
    bool readonly;
    const char *what;       // for the read-only error message
    px_format_t format{};   // ndim 0: untyped bytes
};

// The shape and strides a typed view points to: they must live as long as the view. The
// view's `internal` holds the address of this block with its low bit set (an Obj* never has
// it), so release_buffer tells the two kinds apart.
struct TypedView {
    void *owner; // the Obj
    Py_ssize_t shape[PX_FORMAT_MAX_DIMS];
    Py_ssize_t strides[PX_FORMAT_MAX_DIMS];
};

inline void *tag_typed(TypedView *t) {
    return reinterpret_cast<void *>(reinterpret_cast<uintptr_t>(t) | 1u);
}
inline TypedView *typed_of(void *internal) {
    auto bits = reinterpret_cast<uintptr_t>(internal);
    return (bits & 1u) ? reinterpret_cast<TypedView *>(bits & ~uintptr_t(1)) : nullptr;
}

// Fills `view` with the typed layout of `s` for a consumer asking with `flags`; BufferError
// when it asks for a layout the format does not have (no strides or a contiguity the strides
// do not give). Returns the block to record, or nullptr with the error set.
inline TypedView *fill_typed(Py_buffer *view, PyObject *self, const Span &s, int flags) {
    const px_format_t &f = s.format;
    int64_t strides[PX_FORMAT_MAX_DIMS];
    byte_strides(f, strides);
    bool c_contig = is_c_contiguous(f, strides);
    bool f_contig = f.ndim == 1 && c_contig;
    bool wants_c = (flags & PyBUF_C_CONTIGUOUS) == PyBUF_C_CONTIGUOUS;
    bool wants_f = (flags & PyBUF_F_CONTIGUOUS) == PyBUF_F_CONTIGUOUS;
    bool wants_any = (flags & PyBUF_ANY_CONTIGUOUS) == PyBUF_ANY_CONTIGUOUS;
    if ((!(flags & PyBUF_STRIDES) || wants_c) && !c_contig) {
        PyErr_Format(PyExc_BufferError,
                     "%s is typed with strides that are not C-contiguous; ask for a strided "
                     "view (memoryview, numpy)",
                     s.what);
        return nullptr;
    }
    if ((wants_f && !f_contig) || (wants_any && !c_contig && !f_contig)) {
        PyErr_Format(PyExc_BufferError, "%s's typed layout is not Fortran-contiguous", s.what);
        return nullptr;
    }
    auto *t = new TypedView;
    t->owner = nullptr;
    size_t items = 1;
    for (uint32_t i = 0; i < f.ndim; ++i) {
        t->shape[i] = static_cast<Py_ssize_t>(f.shape[i]);
        t->strides[i] = static_cast<Py_ssize_t>(strides[i]);
        items *= static_cast<size_t>(f.shape[i]); // fits: the library checked the extent
    }
    size_t itemsize = px_dtype_size(f.dtype);
    Py_INCREF(self);
    view->obj = self;
    view->buf = s.data;
    view->len = static_cast<Py_ssize_t>(items * itemsize);
    view->itemsize = static_cast<Py_ssize_t>(itemsize);
    view->readonly = s.readonly ? 1 : 0;
    view->ndim = static_cast<int>(f.ndim);
    view->format = (flags & PyBUF_FORMAT) ? const_cast<char *>(pep3118_format(f.dtype)) : nullptr;
    view->shape = t->shape;
    view->strides = (flags & PyBUF_STRIDES) ? t->strides : nullptr;
    view->suboffsets = nullptr;
    return t;
}

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
        if (!s.data)
            s.data = &empty_region;
        // A consumer that does not ask for a shape (PyBUF_SIMPLE: file.write, hashlib) gets
        // the bytes, typed or not.
        if (s.format.ndim != 0 && (flags & PyBUF_ND)) {
            TypedView *t = fill_typed(view, self, s, flags);
            if (!t)
                return -1;
            t->owner = &o;
            view->internal = tag_typed(t);
        } else {
            if (PyBuffer_FillInfo(view, self, s.data, static_cast<Py_ssize_t>(s.len),
                                  s.readonly ? 1 : 0, flags) < 0)
                return -1;
            view->internal = &o; // alive as long as view->obj is
        }
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
    if (TypedView *t = typed_of(view->internal)) {
        static_cast<Obj *>(t->owner)->handle.remove_export();
        delete t;
        return;
    }
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
