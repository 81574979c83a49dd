// SPDX-License-Identifier: Apache-2.0 OR MIT
// MemoryPool, Slot and ArraySlot (a loaned slot as a typed numpy array: loan_array).
#include <utility>

#include "convert.hpp"
#include "fastcall.hpp"
#include "format.hpp"
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

} // namespace

// ArraySlot: a new frame as a writable numpy array. The slot is made into a typed buffer at
// once (the library then checks the format against it, and nothing is left to do but drop the
// array when the frame is done); the array is a view of that buffer.
struct PyArraySlot {
    py::object buffer; // the typed Buffer; None once into_buffer() or release() gave it up
    py::object array;  // np.asarray(buffer); None likewise

    PyBuffer &buf() const {
        if (buffer.is_none())
            raise_closed("array slot");
        return cast_arg<PyBuffer>(buffer, "buffer", "Buffer");
    }
    // Drops the array, refusing (BufferError, nothing changed) while anything else uses it:
    // the frame must not change once it is handed on.
    void drop_array(const char *doing) {
        PyBuffer &b = buf();
        if (Py_REFCNT(array.ptr()) != 1 || b.handle.exports() != 1)
            throw py::buffer_error(std::string("cannot ") + doing +
                                   ": the array (or a view of it, a memoryview or another "
                                   "array of this frame) is still referenced; delete those "
                                   "references first");
        array = py::none();
    }
};

namespace {

// Frees what a failed loan_array took: the buffer (its slot goes back to the pool), keeping
// the Python error already set.
[[noreturn]] void fail_loan(py::object &buffer) {
    py::error_already_set error; // fetches the error, so the release below cannot lose it
    cast_arg<PyBuffer>(buffer, "buffer", "Buffer").handle.close("buffer");
    throw error;
}

py::object loan_array(PyPool &pool, py::handle shape, py::handle dtype, int64_t ns,
                      py::handle strides, py::handle fourcc) {
    px_format_t f = format_from_args(dtype, shape, strides, fourcc);
    size_t need = 0;
    size_t slot_size = px_pool_slot_size(pool.get());
    if (!format_extent(f, need) || need > slot_size)
        raise_error(PX_E_INVALID, "loan_array: a " + std::string(py::repr(py::cast(PyFormat{f}))) +
                                      " frame does not fit the pool's slots of " +
                                      std::to_string(slot_size) + " bytes");
    py::module_ np = numpy("MemoryPool.loan_array"); // before a slot is taken
    PyObject *slot_obj = loan(pool, ns);
    if (!slot_obj)
        throw py::error_already_set();
    py::object slot = py::reinterpret_steal<py::object>(slot_obj);
    // An empty array still needs a buffer of at least one byte.
    py::object buffer = into_buffer(cast_arg<PySlot>(slot, "slot", "Slot"),
                                    py::int_(need ? need : 1), py::none());
    px_status_t st = px_buffer_set_format(cast_arg<PyBuffer>(buffer, "b", "Buffer").get(), &f);
    if (st != PX_OK) {
        set_last_error(st);
        fail_loan(buffer);
    }
    py::object array;
    try {
        array = np.attr("asarray")(buffer);
    } catch (py::error_already_set &e) {
        e.restore();
        fail_loan(buffer);
    }
    return py::cast(PyArraySlot{std::move(buffer), std::move(array)});
}

PyObject *fast_loan_array(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames) {
    PyObject *a[5]; // shape, dtype, timeout, strides, fourcc
    bind_args("loan_array", args, nargs, kwnames,
              {"shape", "dtype", "timeout", "strides", "fourcc"}, a);
    if (nargs > 3)
        throw py::type_error("loan_array() takes strides and fourcc as keywords only");
    if (!a[0] || !a[1])
        throw py::type_error("loan_array() missing required argument 'shape' or 'dtype'");
    PyPool &pool = cast_arg<PyPool>(self, "self", "MemoryPool");
    int64_t ns = a[2] ? as_timeout_ns(a[2]) : 0;
    return loan_array(pool, a[0], a[1], ns, a[3] ? a[3] : Py_None, a[4] ? a[4] : Py_None)
        .release()
        .ptr();
}

PyObject *fast_array_into_buffer(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames) {
    PyObject *metadata;
    bind_args("into_buffer", args, nargs, kwnames, {"metadata"}, &metadata);
    PyArraySlot &a = cast_arg<PyArraySlot>(self, "self", "ArraySlot");
    PyBuffer &b = a.buf();
    if (metadata && metadata != Py_None) {
        px_metadata_t storage;
        check(px_buffer_set_metadata(b.get(), metadata_arg(metadata, storage)));
    }
    a.drop_array("turn the array slot into a buffer");
    return std::exchange(a.buffer, py::none()).release().ptr();
}

void release_array_slot(PyArraySlot &a) {
    if (a.buffer.is_none())
        return; // idempotent
    a.drop_array("release the array slot");
    cast_arg<PyBuffer>(a.buffer, "buffer", "Buffer").handle.close("buffer");
    a.buffer = py::none();
}

PyObject *fast_array_release(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames) {
    bind_args("release", args, nargs, kwnames, {}, nullptr);
    release_array_slot(cast_arg<PyArraySlot>(self, "self", "ArraySlot"));
    return none();
}

PyObject *fast_array_exit(PyObject *self, PyObject *const *, Py_ssize_t, PyObject *kwnames) {
    if (kwnames && PyTuple_GET_SIZE(kwnames) != 0)
        throw py::type_error("__exit__() takes no keyword arguments");
    release_array_slot(cast_arg<PyArraySlot>(self, "self", "ArraySlot"));
    return none();
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
    fast_method<fast_loan>("loan", R"doc(loan($self, /, timeout=0)
--

A free slot of the pool, writable (buffer protocol), for a new frame.

Args:
    timeout: 0 (the default): now or never, without blocking; seconds to wait for a slot to
        come back; None (or a negative number, inf, or more than 2**63 ns): forever.
        Waiting releases the GIL.

Returns:
    A Slot: fill it (``memoryview(slot)``, ``np.frombuffer(slot, ...)``), then
    ``slot.into_buffer(n)`` to send it, or ``release()`` it.

Raises:
    PoolExhausted: every slot is out and timeout is 0. Timeout: none came back in time.
    InvalidArgument: the pool was closed.

Example::

    with pool.loan(timeout=1.0) as slot:
        memoryview(slot)[:5] = b"hello"
        ch.send(slot.into_buffer(5))
)doc"),
    fast_method<fast_loan_array>("loan_array", R"doc(loan_array($self, /, shape, dtype, timeout=0, *, strides=None, fourcc=0)
--

A new typed frame in one call: a free slot, as an ArraySlot whose ``array`` is a writable
numpy array of ``shape`` and ``dtype`` over the slot's memory (no copy), and which
``into_buffer()`` turns into a Buffer with that format, ready to send.

Args:
    shape, dtype, strides, fourcc: the frame's format (see Format); it must fit a slot.
    timeout: as for ``loan()``: 0 (the default) never waits, None waits forever.

Raises:
    InvalidArgument: a bad format (the rule broken, named) or one larger than the pool's
    slot_size (no slot is taken). PoolExhausted / Timeout: as for ``loan()``.
    ImportError: numpy is not installed.

Example::

    frame = pool.loan_array((1080, 1920, 3), np.uint8, timeout=1.0)
    frame.array[:] = 255                     # fill it in place
    ch.send(frame.into_buffer(px.Metadata(sequence=1)))
)doc"),
};

PyMethodDef array_slot_methods[] = {
    fast_method<fast_array_into_buffer>("into_buffer", R"doc(into_buffer($self, /, metadata=None)
--

The frame as a typed Buffer (its format set, writable, the slot's memory), with ``metadata``;
this ArraySlot is then used up. The slot goes back to the pool when the last buffer made from
it, in this process or any other, is released.

Raises:
    BufferError: the array, a view of it or another view of the frame is still referenced
    (``del`` it first: a frame must not change while it is being sent); nothing is changed.
    InvalidArgument: already used up or released. TypeError: metadata is not a Metadata.

Example::

    buf = frame.into_buffer(px.Metadata(sequence=7, pts_ns=time.monotonic_ns()))
    publisher.publish(buf)
)doc"),
    fast_method<fast_array_release>("release", R"doc(release($self, /)
--

Gives the slot back to its pool without sending it (idempotent).

Raises:
    BufferError: the array or a view of it is still referenced (nothing is released).
)doc"),
    fast_method<fast_enter>("__enter__", "__enter__($self, /)\n--\n\n"),
    fast_method<fast_array_exit>("__exit__", "__exit__($self, /, *exc_info)\n--\n\n"
                                             "release() (nothing to do after into_buffer())"),
};

PyMethodDef slot_methods[] = {
    fast_method<fast_release<PySlot>>("release", R"doc(release($self, /)
--

Gives the slot back to its pool (idempotent).

Raises:
    BufferError: a memoryview or numpy array of the slot still exists (it stays loaned).
)doc"),
    fast_method<fast_into_buffer>("into_buffer",
                                  R"doc(into_buffer($self, /, length=None, metadata=None)
--

Turns the slot into a Buffer of its first ``length`` bytes (default: all) with ``metadata``.
Consumes the slot: it returns to the pool when the last buffer made from it, in this process
or any other, is released. Give the buffer a format with ``Buffer.set_format`` (or use
``MemoryPool.loan_array``).

Raises:
    InvalidArgument: length is 0 or larger than the slot (the slot stays usable), or the
    slot was released. BufferError: a view of the slot still exists (the slot stays usable).
    TypeError: metadata is not a Metadata.

Example::

    buf = slot.into_buffer(5, px.Metadata(sequence=1))
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
Fixed-size slots over a writable segment (the pool keeps the segment alive). A producer loans
a slot, fills it in place, turns it into a Buffer and sends it; the slot comes back when the
last buffer on it is released, in whichever process.

``loan()`` never blocks: it raises PoolExhausted when every slot is out.
``loan(timeout=seconds)`` waits up to that long (then raises Timeout);
``loan(timeout=None)`` (or any negative timeout, ``float('inf')``, or anything longer than
2**63 nanoseconds, about 292 years) waits forever.
Waiting releases the GIL. ``loan_array()`` gives a typed numpy array of a new frame.

Args:
    segment: a writable Segment (a SharedMemorySegment to send the buffers to other
        processes).
    slot_size: bytes per slot (> 0); the pool holds ``len(segment) // slot_size`` of them.

Raises:
    InvalidArgument: a read-only or closed segment, a slot_size of 0 or larger than it.

Example::

    pool = px.MemoryPool(px.SharedMemorySegment("frames", 8 * 6220800), 6220800)
    frame = pool.loan_array((1080, 1920, 3), np.uint8, timeout=1.0)
    frame.array[...] = 0
    ch.send(frame.into_buffer())
)doc")
        .def(py::init([](PySegment &seg, py::object slot_size) {
                 px_pool_t *pool = nullptr;
                 check(px_pool_new(seg.get(), as_size(slot_size, "slot_size"), &pool));
                 return std::make_unique<PyPool>(pool);
             }),
             py::arg("segment"), py::arg("slot_size"))
        .def_property_readonly(
            "capacity", [](const PyPool &p) { return px_pool_capacity(p.get()); },
            "The number of slots.")
        .def_property_readonly(
            "available", [](const PyPool &p) { return px_pool_available(p.get()); },
            "Slots free right now (a snapshot: other threads and processes move it).")
        .def_property_readonly(
            "slot_size", [](const PyPool &p) { return px_pool_slot_size(p.get()); },
            "Bytes per slot.")
        .def_property_readonly(
            "segment",
            [](const PyPool &p) { return wrap_segment(px_segment_retain(px_pool_segment(p.get()))); },
            "A new Segment object for the pool's segment (its own reference).")
        .def_property_readonly(
            "closed", [](const PyPool &p) { return !p.handle.is_open(); },
            "True once close() was called.")
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
A loaned slot (``MemoryPool.loan()``): writable memory (buffer protocol, 1-D bytes) that goes
back to its pool on ``release()``, at the end of a ``with`` block, or when the object is
garbage-collected. ``into_buffer()`` consumes it instead. While a memoryview or numpy array of
the slot exists, ``release()``/``into_buffer()`` raise BufferError and the slot stays loaned.

Example::

    with pool.loan(timeout=1.0) as slot:
        np.frombuffer(slot, np.float32)[:4] = (1, 2, 3, 4)
        buf = slot.into_buffer(16)
    buf.set_format(np.float32, 4)
)doc")
        .def("__len__", [](const PySlot &s) { return px_slot_len(s.get()); })
        .def_property_readonly(
            "index", [](const PySlot &s) { return px_slot_index(s.get()); },
            "The slot's position in its pool (0 to capacity - 1).")
        .def_property_readonly(
            "released", [](const PySlot &s) { return !s.handle.is_open(); },
            "True once released or turned into a buffer.")
        .def("__repr__", [](const PySlot &s) {
            if (!s.handle.is_open())
                return std::string("<Slot released>");
            return "<Slot index=" + std::to_string(px_slot_index(s.get())) +
                   " len=" + std::to_string(px_slot_len(s.get())) + ">";
        });
    def_fast(m.attr("Slot"), slot_methods);

    py::class_<PyArraySlot>(m, "ArraySlot", R"doc(
A loaned slot as a typed, writable numpy array (``MemoryPool.loan_array()``): write the frame
into ``array``, then ``into_buffer()`` gives the typed Buffer to send. ``release()``, the end
of a ``with`` block or garbage collection give the slot back if it was not sent.

Example::

    with pool.loan_array((480, 640), np.float32, timeout=1.0) as frame:
        np.copyto(frame.array, image)
        ch.send(frame.into_buffer())
)doc")
        .def_property_readonly(
            "array",
            [](const PyArraySlot &a) {
                a.buf(); // InvalidArgument once used up
                return a.array;
            },
            "The frame: a writable numpy array over the slot (shape and dtype as loaned).")
        .def_property_readonly(
            "format", [](const PyArraySlot &a) { return format_of(a.buf().get()); },
            "The frame's Format.")
        .def_property_readonly(
            "released", [](const PyArraySlot &a) { return a.buffer.is_none(); },
            "True once into_buffer() or release() was called.")
        .def("__repr__", [](const PyArraySlot &a) {
            if (a.buffer.is_none())
                return std::string("<ArraySlot released>");
            return "<ArraySlot " + std::string(py::repr(format_of(a.buf().get()))) + ">";
        });
    def_fast(m.attr("ArraySlot"), array_slot_methods);
}

} // namespace pxpy
