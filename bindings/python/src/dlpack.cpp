// SPDX-License-Identifier: Apache-2.0 OR MIT
// Buffer.__dlpack__ and __dlpack_device__: the buffer's memory handed to another array library
// (numpy, PyTorch, JAX...) without a copy. The tensor keeps the Buffer alive (and counts as an
// exported view, so release() raises BufferError meanwhile) until the consumer's deleter runs.
// Read-only memory (received from another process) goes out only with DLPack 1.0's read-only
// flag, or as a private copy when the consumer asks for one: never as a writable tensor.
#include "dlpack.hpp"

#include <algorithm>
#include <cstring>
#include <memory>

#include "errors.hpp"
#include "fastcall.hpp"
#include "format.hpp"
#include "objects.hpp"

namespace pxpy {

namespace {

constexpr const char *versioned_name = "dltensor_versioned";
constexpr const char *legacy_name = "dltensor";

// One exported tensor: the struct the consumer sees, the shape and strides it points to, and
// what keeps its memory alive (the Buffer, or a copy of its bytes).
struct Export {
    dl::ManagedTensorVersioned versioned;
    dl::ManagedTensor legacy;
    int64_t shape[PX_FORMAT_MAX_DIMS];
    int64_t strides[PX_FORMAT_MAX_DIMS];
    PyObject *owner = nullptr; // a strong reference to the Buffer; null for a copy
    PyBuffer *cpp = nullptr;   // its C++ side, whose export count this tensor holds one of
    std::unique_ptr<uint8_t[]> copy;
};

// The consumer's deleter may run on any thread, with or without the GIL.
void finish(Export *e) {
    if (e->owner && Py_IsInitialized()) { // at exit, leak rather than touch a dead interpreter
        PyGILState_STATE gil = PyGILState_Ensure();
        e->cpp->handle.remove_export();
        Py_DECREF(e->owner);
        PyGILState_Release(gil);
    }
    delete e;
}

void delete_versioned(dl::ManagedTensorVersioned *t) {
    finish(static_cast<Export *>(t->manager_ctx));
}
void delete_legacy(dl::ManagedTensor *t) { finish(static_cast<Export *>(t->manager_ctx)); }

// A capsule nobody consumed (its name was not changed to "used_...") still owns its tensor.
template <class Managed, const char *const *Name> void destroy_capsule(PyObject *capsule) {
    if (!PyCapsule_IsValid(capsule, *Name))
        return; // consumed: the consumer calls the deleter
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback); // may run while an exception is being raised
    auto *t = static_cast<Managed *>(PyCapsule_GetPointer(capsule, *Name));
    if (t && t->deleter)
        t->deleter(t);
    PyErr_Restore(type, value, traceback);
}

dl::DataType data_type(uint32_t dtype) {
    auto bits = static_cast<uint8_t>(8 * px_dtype_size(dtype));
    switch (dtype) {
    case PX_DTYPE_I8:
    case PX_DTYPE_I16:
    case PX_DTYPE_I32:
    case PX_DTYPE_I64:
        return {dl::code_int, bits, 1};
    case PX_DTYPE_F16:
    case PX_DTYPE_F32:
    case PX_DTYPE_F64:
        return {dl::code_float, bits, 1};
    case PX_DTYPE_BF16:
        return {dl::code_bfloat, bits, 1};
    default:
        return {dl::code_uint, bits, 1};
    }
}

// The tensor over `data`: the format's array, or an untyped buffer's `len` bytes as uint8.
dl::Tensor tensor(Export &e, void *data, const px_format_t &f, size_t len) {
    dl::Tensor t{};
    t.data = data;
    t.device = {dl::device_cpu, 0};
    if (f.ndim == 0) {
        t.ndim = 1;
        t.dtype = {dl::code_uint, 8, 1};
        e.shape[0] = static_cast<int64_t>(len);
        e.strides[0] = 1;
    } else {
        int64_t bytes[PX_FORMAT_MAX_DIMS];
        byte_strides(f, bytes);
        auto itemsize = static_cast<int64_t>(px_dtype_size(f.dtype));
        t.ndim = static_cast<int32_t>(f.ndim);
        t.dtype = data_type(f.dtype);
        for (uint32_t i = 0; i < f.ndim; ++i) {
            e.shape[i] = f.shape[i];
            e.strides[i] = bytes[i] / itemsize; // a multiple: the library checked it
        }
    }
    t.shape = e.shape;
    t.strides = e.strides;
    return t;
}

// The bytes a tensor of `buf` covers: what a copy must hold.
size_t covered(const px_format_t &f, size_t len) {
    size_t n = len;
    if (f.ndim != 0 && !format_extent(f, n))
        n = len; // cannot happen for a buffer's format (checked against its length)
    return std::min(n, len);
}

bool wants_versioned(PyObject *max_version) {
    if (!max_version || max_version == Py_None)
        return false;
    py::tuple v = py::tuple(py::reinterpret_borrow<py::object>(max_version));
    if (v.size() != 2)
        throw py::type_error("max_version must be a (major, minor) tuple or None");
    return v[0].cast<int64_t>() >= static_cast<int64_t>(dl::major_version);
}

void check_device(PyObject *dl_device) {
    if (!dl_device || dl_device == Py_None)
        return;
    py::tuple d = py::tuple(py::reinterpret_borrow<py::object>(dl_device));
    if (d.size() != 2 || d[0].cast<int64_t>() != dl::device_cpu || d[1].cast<int64_t>() != 0)
        throw py::buffer_error("a parallax buffer is CPU memory: it can only be exported to "
                               "dl_device (1, 0) (kDLCPU), not " +
                               std::string(py::repr(d)));
}

// copy: None (copy only if needed, which here is never), True (always), False (never).
int copy_arg(PyObject *copy) {
    if (!copy || copy == Py_None)
        return -1;
    if (!PyBool_Check(copy))
        throw py::type_error("copy must be True, False or None");
    return copy == Py_True ? 1 : 0;
}

py::object export_buffer(PyObject *self, bool versioned, int copy) {
    PyBuffer &b = cast_arg<PyBuffer>(self, "self", "Buffer");
    px_buffer_t *buf = b.get();
    bool readonly = px_buffer_mut_ptr(buf) == nullptr;
    bool make_copy = copy == 1;
    if (readonly && !versioned && !make_copy)
        throw py::buffer_error(
            copy == 0 ? "this buffer is read-only (received from another process or mapped "
                        "read-only) and the consumer cannot mark a tensor read-only (it did "
                        "not ask for DLPack >= 1.0), so it can only be exported as a copy, "
                        "which copy=False forbids"
                      : "this buffer is read-only (received from another process or mapped "
                        "read-only) and the consumer cannot mark a tensor read-only (it did "
                        "not pass max_version >= (1, 0)): use a consumer that supports DLPack "
                        "1.0 (numpy >= 2.1, e.g. np.from_dlpack), or pass copy=True for a "
                        "private writable copy");
    px_format_t f;
    check(px_buffer_format(buf, &f));
    size_t len = px_buffer_len(buf);
    auto e = std::make_unique<Export>();
    void *data = readonly ? const_cast<void *>(px_buffer_ptr(buf)) : px_buffer_mut_ptr(buf);
    if (make_copy) {
        size_t n = covered(f, len);
        e->copy.reset(new uint8_t[n ? n : 1]);
        std::memcpy(e->copy.get(), data, n);
        data = e->copy.get();
    }
    dl::Tensor t = tensor(*e, data, f, len);
    PyObject *capsule;
    if (versioned) {
        uint64_t flags = make_copy ? dl::flag_is_copied : (readonly ? dl::flag_read_only : 0);
        e->versioned = {{dl::major_version, dl::minor_version}, e.get(), &delete_versioned,
                        flags, t};
        capsule = PyCapsule_New(&e->versioned, versioned_name,
                                &destroy_capsule<dl::ManagedTensorVersioned, &versioned_name>);
    } else {
        e->legacy = {t, e.get(), &delete_legacy};
        capsule = PyCapsule_New(&e->legacy, legacy_name,
                                &destroy_capsule<dl::ManagedTensor, &legacy_name>);
    }
    if (!capsule)
        throw py::error_already_set();
    if (!make_copy) { // the tensor is the buffer's memory: keep it mapped until the deleter
        Py_INCREF(self);
        e->owner = self;
        e->cpp = &b;
        b.handle.add_export();
    }
    e.release(); // the capsule owns it now
    return py::reinterpret_steal<py::object>(capsule);
}

PyObject *fast_dlpack(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames) {
    if (nargs != 0)
        throw py::type_error("__dlpack__() takes keyword arguments only");
    PyObject *a[4]; // stream, max_version, dl_device, copy
    bind_args("__dlpack__", args, nargs, kwnames, {"stream", "max_version", "dl_device", "copy"},
              a);
    if (a[0] && a[0] != Py_None)
        raise_error(PX_E_INVALID, "__dlpack__: stream must be None for CPU memory, not " +
                                      std::string(py::repr(a[0])));
    check_device(a[2]);
    return export_buffer(self, wants_versioned(a[1]), copy_arg(a[3])).release().ptr();
}

PyObject *fast_dlpack_device(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames) {
    bind_args("__dlpack_device__", args, nargs, kwnames, {}, nullptr);
    cast_arg<PyBuffer>(self, "self", "Buffer").get(); // InvalidArgument once released
    return py::make_tuple(dl::device_cpu, 0).release().ptr();
}

PyMethodDef dlpack_methods[] = {
    fast_method<fast_dlpack>(
        "__dlpack__",
        R"doc(__dlpack__($self, /, *, stream=None, max_version=None, dl_device=None, copy=None)
--

The buffer as a DLPack capsule, for ``np.from_dlpack(buf)``, ``torch.from_dlpack(buf)`` and
other array libraries: zero-copy, with the buffer's format (an untyped buffer is a 1-D uint8
tensor of its bytes). The tensor keeps the buffer alive; until the consumer frees it,
``release()`` raises BufferError.

Args:
    stream: must be None (CPU memory).
    max_version: the highest DLPack version the consumer supports. ``(1, 0)`` or later gets
        a versioned capsule whose read-only flag is set for read-only memory; older
        consumers get a legacy capsule, which cannot say read-only.
    dl_device: None or ``(1, 0)`` (kDLCPU).
    copy: True for a private copy of the bytes (DLPack's is-copied flag set), False to
        forbid one, None for no copy.

Raises:
    BufferError: read-only memory (a received frame) asked for by a consumer that did not
    pass max_version >= (1, 0), unless copy=True (then it gets a writable copy: never a
    writable view of another process's memory); a device other than the CPU.
    InvalidArgument: a stream, or the buffer was released.

Example::

    frame = ch.recv(timeout=1)
    arr = np.from_dlpack(frame)  # zero-copy, read-only for a received frame
)doc"),
    fast_method<fast_dlpack_device>("__dlpack_device__", R"doc(__dlpack_device__($self, /)
--

``(1, 0)``: the buffer is CPU memory (kDLCPU, device 0).
)doc"),
};

} // namespace

void bind_dlpack(py::handle buffer_class) { def_fast(buffer_class, dlpack_methods); }

} // namespace pxpy
