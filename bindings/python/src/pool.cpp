// SPDX-License-Identifier: Apache-2.0 OR MIT
// MemoryPool and Slot.
#include "convert.hpp"
#include "objects.hpp"

namespace pxpy {

namespace {

// Released Slot objects kept for reuse by later loans. Creating a pybind11 instance per loan
// (allocation, instance registry) costs more than the loan itself, and `pool.loan()` ...
// `slot.release()` is the hot loop. Only released objects are kept (a loaned slot must still
// return to its pool when its object is garbage-collected), and one is reused only once
// nothing else refers to it, so the reuse is invisible. Touched only with the GIL held;
// leaked at exit on purpose (it holds only empty objects).
struct FreeSlot {
    py::object object;
    PySlot *slot; // the C++ side of `object`, to skip a cast
};
std::vector<FreeSlot> &free_slots() {
    static auto *list = new std::vector<FreeSlot>();
    return *list;
}
constexpr size_t free_slots_max = 32;

py::object slot_object(px_slot_t *slot) {
    auto &list = free_slots();
    for (size_t i = list.size(); i-- > 0;) {
        FreeSlot &f = list[i];
        if (Py_REFCNT(f.object.ptr()) == 1 && f.slot->handle.can_reset()) {
            py::object reused = std::move(f.object);
            f.slot->handle.reset(slot);
            list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
            return reused;
        }
    }
    return py::cast(std::make_unique<PySlot>(slot));
}

void release_slot(py::object self) {
    PySlot &s = self.cast<PySlot &>();
    if (!s.handle.is_open())
        return; // idempotent, and never listed twice
    s.handle.close("slot");
    auto &list = free_slots();
    if (list.size() == free_slots_max) // full of objects still referenced: make room
        list.erase(list.begin());
    list.push_back({std::move(self), &s});
}

py::object loan(PyPool &p, py::handle timeout) {
    int64_t ns = as_timeout_ns(timeout);
    px_slot_t *slot = nullptr;
    // The hot path, whatever the timeout: a lock-free loan that never blocks, so the GIL stays
    // held. Only when every slot is out and the caller may wait is the GIL released.
    px_status_t st = px_pool_loan(p.get(), &slot);
    if (st == PX_OK)
        return slot_object(slot);
    if (ns == 0 || st != PX_E_WOULD_BLOCK)
        raise_last(st, st == PX_E_WOULD_BLOCK ? "PoolExhausted" : nullptr);
    auto lease = p.handle.lease("pool");
    {
        py::gil_scoped_release nogil;
        st = px_pool_loan_timeout(lease.get(), ns, &slot);
    }
    check(st);
    return slot_object(slot);
}

std::unique_ptr<PyBuffer> into_buffer(PySlot &s, py::handle length, py::handle metadata) {
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
    return std::make_unique<PyBuffer>(buf);
}

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
        .def("loan", &loan, py::arg("timeout") = 0)
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

    py::class_<PySlot>(m, "Slot", buffer_protocol<PySlot>(), R"doc(
A loaned slot: writable memory (buffer protocol) that goes back to its pool on ``release()``,
at the end of a ``with`` block, or when the object is garbage-collected.
``into_buffer()`` consumes it instead. While a memoryview or numpy array of the slot exists,
``release()``/``into_buffer()`` raise BufferError and the slot stays loaned.
)doc")
        .def("__len__", [](const PySlot &s) { return px_slot_len(s.get()); })
        .def_property_readonly("index", [](const PySlot &s) { return px_slot_index(s.get()); })
        .def_property_readonly("released", [](const PySlot &s) { return !s.handle.is_open(); })
        .def("release", &release_slot,
             "Gives the slot back to its pool (idempotent).")
        .def("into_buffer", &into_buffer, py::arg("length") = py::none(),
             py::arg("metadata") = py::none(), R"doc(
Turns the slot into a Buffer of its first ``length`` bytes (default: all) with ``metadata``.
Consumes the slot: it returns to the pool when the last buffer made from it, in this process
or any other, is released.
)doc")
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__", [](py::object self, py::args) { release_slot(std::move(self)); })
        .def("__repr__", [](const PySlot &s) {
            if (!s.handle.is_open())
                return std::string("<Slot released>");
            return "<Slot index=" + std::to_string(px_slot_index(s.get())) +
                   " len=" + std::to_string(px_slot_len(s.get())) + ">";
        });
}

} // namespace pxpy
