// SPDX-License-Identifier: Apache-2.0 OR MIT
// MemoryPool and Slot.
#include "convert.hpp"
#include "fastcall.hpp"
#include "objects.hpp"
#include "recycle.hpp"

namespace pxpy {

namespace {

// Failures set the Python error and return nullptr without a C++ throw (set_last_error): a
// loan() that finds the pool empty is an ordinary outcome in a loop.
PyObject *loan(PyPool &p, int64_t ns) {
    px_slot_t *slot = nullptr;
    // The hot path, whatever the timeout: a lock-free loan that never blocks, so the GIL stays
    // held. Only when every slot is out and the caller may wait is the GIL released.
    px_status_t st = px_pool_loan(p.get(), &slot);
    if (st == PX_OK)
        return recycler<PySlot>().wrap(slot).release().ptr();
    if (ns == 0 || st != PX_E_WOULD_BLOCK) {
        set_last_error(st, st == PX_E_WOULD_BLOCK ? "PoolExhausted" : nullptr);
        return nullptr;
    }
    auto lease = p.handle.lease("pool");
    {
        py::gil_scoped_release nogil;
        st = px_pool_loan_timeout(lease.get(), ns, &slot);
    }
    if (st != PX_OK) {
        set_last_error(st);
        return nullptr;
    }
    return recycler<PySlot>().wrap(slot).release().ptr();
}

py::object into_buffer(PySlot &s, py::handle length, py::handle metadata) {
    px_slot_t *slot = s.get();
    size_t slot_len = px_slot_len(slot);
    size_t len = length.is_none() ? slot_len : as_size(length, "length");
    // Checked here rather than left to the library so that bad arguments leave the slot
    // usable: the library consumes the slot even when it refuses.
    if (len == 0 || len > slot_len)
        raise_error(PX_E_INVALID, "Slot.into_buffer: length " + std::to_string(len) +
                                      " is not in [1, slot size " + std::to_string(slot_len) +
                                      "]");
    px_metadata_t storage;
    const px_metadata_t *meta = metadata_arg(metadata, storage);
    slot = s.handle.take("slot"); // BufferError (slot intact) while views are exported
    px_buffer_t *buf = nullptr;
    check(px_slot_into_buffer(slot, len, meta, &buf));
    return recycler<PyBuffer>().wrap(buf);
}

// The per-frame methods, through vectorcall (fastcall.hpp).
PyObject *fast_loan(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *timeout;
    bind_args("loan", args, nargs, kwnames, {"timeout"}, &timeout);
    PyPool &pool = cast_arg<PyPool>(self, "self", "MemoryPool");
    return loan(pool, timeout ? as_timeout_ns(timeout) : 0);
}

PyObject *fast_into_buffer(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames) {
    PyObject *a[2]; // length, metadata
    bind_args("into_buffer", args, nargs, kwnames, {"length", "metadata"}, a);
    PySlot &slot = cast_arg<PySlot>(self, "self", "Slot");
    return into_buffer(slot, a[0] ? a[0] : Py_None, a[1] ? a[1] : Py_None).release().ptr();
}

PyMethodDef pool_methods[] = {
    fast_method<fast_loan>("loan", "loan($self, /, timeout=0)\n--\n\n"
                                   "A slot: now (timeout 0, else PoolExhausted), or waiting up "
                                   "to ``timeout`` seconds (None: forever; then Timeout)."),
};

PyMethodDef slot_methods[] = {
    fast_method<fast_release<PySlot>>("release", "release($self, /)\n--\n\n"
                                                 "Gives the slot back to its pool (idempotent)."),
    fast_method<fast_into_buffer>("into_buffer",
                                  R"doc(into_buffer($self, /, length=None, metadata=None)
--

Turns the slot into a Buffer of its first ``length`` bytes (default: all) with ``metadata``.
Consumes the slot: it returns to the pool when the last buffer made from it, in this process
or any other, is released.
)doc"),
    fast_method<fast_enter>("__enter__", "__enter__($self, /)\n--\n\n"),
    fast_method<fast_exit<PySlot>>("__exit__", "__exit__($self, /, *exc_info)\n--\n\n"
                                               "release()"),
};

} // namespace

Span PySlot::span() const {
    px_slot_t *s = get();
    return {px_slot_data(s), px_slot_len(s), false, "slot"};
}

void bind_pool(py::module_ &m) {
    py::class_<PyPool>(m, "MemoryPool", R"doc(
Fixed-size slots over a writable segment (the pool keeps the segment alive).

``loan()`` never blocks: it raises PoolExhausted when every slot is out.
``loan(timeout=seconds)`` waits up to that long (then raises Timeout);
``loan(timeout=None)`` (or any negative timeout, ``float('inf')``, or anything longer than
2**63 nanoseconds, about 292 years) waits forever.
Waiting releases the GIL.
)doc")
        .def(py::init([](PySegment &seg, py::object slot_size) {
                 px_pool_t *pool = nullptr;
                 check(px_pool_new(seg.get(), as_size(slot_size, "slot_size"), &pool));
                 return std::make_unique<PyPool>(pool);
             }),
             py::arg("segment"), py::arg("slot_size"))
        .def_property_readonly("capacity",
                               [](const PyPool &p) { return px_pool_capacity(p.get()); })
        .def_property_readonly("available",
                               [](const PyPool &p) { return px_pool_available(p.get()); })
        .def_property_readonly("slot_size",
                               [](const PyPool &p) { return px_pool_slot_size(p.get()); })
        .def_property_readonly(
            "segment",
            [](const PyPool &p) { return wrap_segment(px_segment_retain(px_pool_segment(p.get()))); },
            "A new Segment object for the pool's segment (its own reference).")
        .def_property_readonly("closed", [](const PyPool &p) { return !p.handle.is_open(); })
        .def("close", [](PyPool &p) { p.handle.close("pool"); },
             "Drops this object's reference; loaned slots and buffers keep the pool alive.")
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__", [](PyPool &p, py::args) { p.handle.close("pool"); })
        .def("__repr__", [](const PyPool &p) {
            if (!p.handle.is_open())
                return std::string("<MemoryPool closed>");
            return "<MemoryPool capacity=" + std::to_string(px_pool_capacity(p.get())) +
                   " available=" + std::to_string(px_pool_available(p.get())) +
                   " slot_size=" + std::to_string(px_pool_slot_size(p.get())) + ">";
        });
    def_fast(m.attr("MemoryPool"), pool_methods);

    py::class_<PySlot>(m, "Slot", buffer_protocol<PySlot>(), R"doc(
A loaned slot: writable memory (buffer protocol) that goes back to its pool on ``release()``,
at the end of a ``with`` block, or when the object is garbage-collected.
``into_buffer()`` consumes it instead. While a memoryview or numpy array of the slot exists,
``release()``/``into_buffer()`` raise BufferError and the slot stays loaned.
)doc")
        .def("__len__", [](const PySlot &s) { return px_slot_len(s.get()); })
        .def_property_readonly("index", [](const PySlot &s) { return px_slot_index(s.get()); })
        .def_property_readonly("released", [](const PySlot &s) { return !s.handle.is_open(); })
        .def("__repr__", [](const PySlot &s) {
            if (!s.handle.is_open())
                return std::string("<Slot released>");
            return "<Slot index=" + std::to_string(px_slot_index(s.get())) +
                   " len=" + std::to_string(px_slot_len(s.get())) + ">";
        });
    def_fast(m.attr("Slot"), slot_methods);
}

} // namespace pxpy
