// SPDX-License-Identifier: Apache-2.0 OR MIT
// Recycler<T>: released Python objects of one class kept for reuse by later calls that return
// a new one (Slot from loan; Buffer from recv and into_buffer).
//
// Creating a pybind11 instance (allocation, holder, instance registry) costs more than the
// library call it wraps, and these calls are the per-frame loop. Only released objects are
// kept (a live one must still release its reference when it is garbage-collected), and one is
// reused only once nothing can observe it: no other reference, no weak reference, no exported
// view, no call in flight, and exactly the bound class (a Python subclass may carry state).
// Touched only with the GIL held; leaked at exit on purpose (it holds only empty objects).
#pragma once

#include <cstddef>
#include <vector>

#include <pybind11/pybind11.h>

#include "fastcall.hpp"

namespace pxpy {

template <class T> class Recycler {
  public:
    // The object for `owned` (a reference the caller hands over): a kept one re-armed, or new.
    template <class P> pybind11::object wrap(P *owned) {
        for (size_t i = kept_.size(); i-- > 0;) {
            Kept &k = kept_[i];
            if (unobserved(k.object.ptr()) && k.cpp->handle.can_reset()) {
                pybind11::object reused = std::move(k.object);
                k.cpp->handle.reset(owned);
                kept_.erase(kept_.begin() + static_cast<std::ptrdiff_t>(i));
                return reused;
            }
        }
        return pybind11::cast(std::make_unique<T>(owned));
    }

    // Keeps `self` (whose C++ side `cpp` was just released) for a later wrap().
    void keep(pybind11::object self, T &cpp) {
        if (Py_TYPE(self.ptr()) != bound_type<T>())
            return; // a Python subclass instance: never handed out as the base class
        if (kept_.size() == max_kept) // full of objects still referenced: make room
            kept_.erase(kept_.begin());
        kept_.push_back({std::move(self), &cpp});
    }

  private:
    struct Kept {
        pybind11::object object;
        T *cpp; // the C++ side of `object`, to skip a cast
    };
    static constexpr size_t max_kept = 32;

    static bool unobserved(PyObject *o) {
        return Py_REFCNT(o) == 1 &&
               reinterpret_cast<pybind11::detail::instance *>(o)->weakrefs == nullptr;
    }

    std::vector<Kept> kept_;
};

// One per class, shared by every function that makes or releases its objects.
template <class T> Recycler<T> &recycler() {
    static auto *r = new Recycler<T>();
    return *r;
}

// release() of a T: drops its reference (idempotent) and keeps the object for reuse.
template <class T> void release_and_keep(pybind11::object self, const char *what) {
    T &cpp = cast_arg<T>(self, "self", what);
    if (!cpp.handle.is_open())
        return;             // idempotent, and never kept twice
    cpp.handle.close(what); // BufferError while views are exported: then not kept
    recycler<T>().keep(std::move(self), cpp);
}

// release() and __exit__(*exc_info) of T (vectorcall methods, fastcall.hpp); T::what names it.
template <class T>
PyObject *fast_release(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    bind_args("release", args, nargs, kwnames, {}, nullptr);
    release_and_keep<T>(pybind11::reinterpret_borrow<pybind11::object>(self), T::what);
    return none();
}
template <class T>
PyObject *fast_exit(PyObject *self, PyObject *const *, Py_ssize_t, PyObject *kwnames) {
    if (kwnames && PyTuple_GET_SIZE(kwnames) != 0)
        throw pybind11::type_error("__exit__() takes no keyword arguments");
    release_and_keep<T>(pybind11::reinterpret_borrow<pybind11::object>(self), T::what);
    return none();
}

} // namespace pxpy
