// SPDX-License-Identifier: Apache-2.0 OR MIT
// Segments: HeapSegment, SharedMemorySegment, HugePageSegment, MappedFileSegment.
#include <pybind11/native_enum.h>
#include <pybind11/typing.h>

#include "convert.hpp"
#include "objects.hpp"

namespace pxpy {

namespace {

// The Python-facing memory type: a real enum.IntEnum through pybind11's native_enum.
enum class MemoryType : uint32_t {
    HEAP = PX_MEMORY_HEAP,
    SHARED = PX_MEMORY_SHARED,
    HUGE_PAGES = PX_MEMORY_HUGE_PAGES,
    MAPPED_FILE = PX_MEMORY_MAPPED_FILE,
};

// Call as `st = px_...(&seg); adopt<T>(st, seg)`: never with the call as an argument, since
// argument evaluation order would let `seg` be read before the call sets it.
template <class T> std::unique_ptr<T> adopt(px_status_t st, px_segment_t *seg) {
    check(st);
    return std::make_unique<T>(seg);
}

std::string repr(const PySegment &s, const char *cls) {
    if (!s.handle.is_open())
        return std::string("<") + cls + " closed>";
    px_segment_t *seg = s.get();
    return std::string("<") + cls + " len=" + std::to_string(px_segment_len(seg)) +
           " page_size=" + std::to_string(px_segment_page_size(seg)) +
           (px_segment_is_readonly(seg) ? " readonly" : "") + ">";
}

// px_segment_read: pread for files (a truncated file is IOFailure, never SIGBUS), memcpy
// otherwise. The GIL is released: a file read may wait for the disk.
void read_segment(PySegment &s, size_t offset, void *dst, size_t len) {
    auto lease = s.handle.lease("segment");
    px_status_t st;
    {
        py::gil_scoped_release nogil;
        st = px_segment_read(lease.get(), offset, dst, len);
    }
    check(st);
}

py::bytes read(PySegment &s, IntArg offset, Typed<"int | None"> length) {
    size_t off = as_size(offset, "offset");
    size_t total = px_segment_len(s.get());
    size_t len = length.is_none() ? (off <= total ? total - off : 1) : as_size(length, "length");
    if (len > static_cast<size_t>(PY_SSIZE_T_MAX))
        raise_error(PX_E_INVALID, "length " + std::to_string(len) + " is too large");
    if (off > total || len > total - off) // checked before allocating `len` bytes
        raise_error(PX_E_INVALID, "Segment.read: range [" + std::to_string(off) + ", +" +
                                      std::to_string(len) + ") exceeds segment length " +
                                      std::to_string(total));
    py::bytes out(nullptr, static_cast<Py_ssize_t>(len));
    read_segment(s, off, PyBytes_AS_STRING(out.ptr()), len);
    return out;
}

size_t readinto(PySegment &s, py::buffer dst, IntArg offset) {
    size_t off = as_size(offset, "offset");
    Py_buffer view;
    if (PyObject_GetBuffer(dst.ptr(), &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) != 0)
        throw py::error_already_set();
    struct Release {
        Py_buffer *v;
        ~Release() { PyBuffer_Release(v); }
    } release{&view};
    size_t len = static_cast<size_t>(view.len);
    read_segment(s, off, view.buf, len);
    return len;
}

px_ipc_handle_t ipc_handle(const PySegment &s) {
    px_ipc_handle_t h{};
    check(px_segment_ipc_handle(s.get(), &h));
    return h;
}

} // namespace

Span PySegment::span() const {
    px_segment_t *seg = get();
    bool ro = px_segment_is_readonly(seg) != 0;
    void *data = ro ? const_cast<void *>(px_segment_ptr(seg)) : px_segment_mut_ptr(seg);
    return {data, px_segment_len(seg), ro, "segment"};
}

py::object wrap_segment(px_segment_t *owned) {
    switch (px_segment_memory_type(owned)) {
    case PX_MEMORY_SHARED:
        return py::cast(std::make_unique<PySharedMemorySegment>(owned));
    case PX_MEMORY_HUGE_PAGES:
        return py::cast(std::make_unique<PyHugePageSegment>(owned));
    case PX_MEMORY_MAPPED_FILE:
        return py::cast(std::make_unique<PyMappedFileSegment>(owned));
    default:
        return py::cast(std::make_unique<PyHeapSegment>(owned));
    }
}

void bind_segments(py::module_ &m) {
    py::native_enum<MemoryType>(m, "MemoryType", "enum.IntEnum",
                                "The kind of memory behind a segment.")
        .value("HEAP", MemoryType::HEAP)
        .value("SHARED", MemoryType::SHARED)
        .value("HUGE_PAGES", MemoryType::HUGE_PAGES)
        .value("MAPPED_FILE", MemoryType::MAPPED_FILE)
        .finalize();
    m.attr("HUGE_PAGE_2MB") = PX_HUGE_PAGE_2MB;
    m.attr("HUGE_PAGE_1GB") = PX_HUGE_PAGE_1GB;

    py::class_<PySegment>(m, "Segment", buffer_protocol<PySegment>(), R"doc(
One contiguous mapped region of memory. Not created directly: use HeapSegment,
SharedMemorySegment, HugePageSegment or MappedFileSegment.

Supports the buffer protocol (writable unless read-only), ``len()``, and ``with`` (which calls
``close()``). ``close()`` drops this object's reference; pools and buffers made from the
segment keep the memory alive on their own.

Example::

    with px.SharedMemorySegment("scratch", 4096) as seg:
        memoryview(seg)[:5] = b"hello"
        assert seg.read(0, 5) == b"hello" and len(seg) == 4096
)doc")
        .def("__len__", [](const PySegment &s) { return px_segment_len(s.get()); })
        .def_property_readonly(
            "memory_type",
            [](const PySegment &s) {
                return static_cast<MemoryType>(px_segment_memory_type(s.get()));
            },
            "The kind of memory (a MemoryType); a huge-page segment that fell back says SHARED.")
        .def_property_readonly(
            "page_size", [](const PySegment &s) { return px_segment_page_size(s.get()); },
            "The page size actually in use, in bytes (4096 after a huge-page fallback).")
        .def_property_readonly(
            "readonly", [](const PySegment &s) { return px_segment_is_readonly(s.get()) != 0; },
            "True when the memory is mapped read-only (received, or opened read-only).")
        .def_property_readonly(
            "closed", [](const PySegment &s) { return !s.handle.is_open(); },
            "True once close() was called.")
        .def(
            "fileno", [](const PySegment &s) { return ipc_handle(s).fd; }, R"doc(
The fd that shares this segment (owned by the segment: ``os.dup`` it to keep it).

Raises:
    Unsupported: a heap segment (nothing to share). InvalidArgument: closed.

Example::

    fd = os.dup(seg.fileno())
)doc")
        .def(
            "ipc_handle",
            [](const PySegment &s) {
                px_ipc_handle_t h = ipc_handle(s);
                return py::typing::Tuple<int, size_t>(py::make_tuple(h.fd, h.size));
            },
            R"doc(
``(fd, size)`` to map this segment in another process with ``SharedMemorySegment.from_fd``.
The fd stays owned by the segment. (A ``multiprocessing.Process`` can simply be given the
segment in its ``args``.)

Raises:
    Unsupported: a heap segment. InvalidArgument: closed.

Example::

    fd, size = seg.ipc_handle()
)doc")
        .def(
            "flush",
            [](PySegment &s) {
                auto lease = s.handle.lease("segment");
                px_status_t st;
                {
                    py::gil_scoped_release nogil; // msync may wait for the disk
                    st = px_segment_flush(lease.get());
                }
                check(st);
            },
            R"doc(
msync the file behind a MappedFileSegment (waits for the disk, GIL released); a no-op for
other segments.

Raises:
    IOFailure: msync failed. InvalidArgument: closed.

Example::

    seg.flush()
)doc")
        .def("read", &read, py::arg("offset") = 0, py::arg("length") = py::none(), R"doc(
Copies [offset, offset + length) (default: to the end) into new bytes. For a mapped file (or
an unsealed fd) it reads through the file, so a file another process truncated raises
IOFailure instead of crashing with SIGBUS, which touching the mapping (memoryview, numpy)
would do. Use it for files not under this process's sole control.

Args:
    offset: the first byte.
    length: how many bytes (None: to the end).

Raises:
    InvalidArgument: the range exceeds the segment. IOFailure: the file was truncated.

Example::

    header = seg.read(0, 16)
)doc")
        .def("readinto", &readinto, py::arg("buffer"), py::arg("offset") = 0,
             R"doc(
Fills a writable, contiguous buffer with ``len(buffer)`` bytes from ``offset``, as read()
(through the file for mapped files); returns the byte count.

Raises:
    InvalidArgument: the range exceeds the segment. IOFailure: the file was truncated.
    BufferError: ``buffer`` is not writable and contiguous.

Example::

    out = bytearray(16)
    seg.readinto(out, 4096)
)doc")
        .def(
            "close", [](PySegment &s) { s.handle.close("segment"); }, R"doc(
Drops this object's reference (idempotent): pools and buffers made from the segment keep the
memory alive on their own.

Raises:
    BufferError: a memoryview or array of the segment still exists.
)doc")
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__", [](PySegment &s, py::args) { s.handle.close("segment"); })
        .def("__repr__", [](py::object self) {
            return repr(self.cast<const PySegment &>(),
                        py::str(py::type::handle_of(self).attr("__name__")).cast<std::string>()
                            .c_str());
        });

    py::class_<PyHeapSegment, PySegment>(m, "HeapSegment", buffer_protocol<PySegment>(),
                                         R"doc(
Private zero-filled memory of ``size`` bytes. Not shareable: channels refuse its buffers and
multiprocessing cannot pass it.

``HeapSegment(size)``

Raises:
    InvalidArgument: size 0. OutOfMemory.

Example::

    pool = px.MemoryPool(px.HeapSegment(1 << 20), 64 * 1024)
)doc")
        .def(py::init([](IntArg size) {
                 px_segment_t *seg = nullptr;
                 px_status_t st = px_segment_heap_new(as_size(size, "size"), &seg);
                 return adopt<PyHeapSegment>(st, seg);
             }),
             py::arg("size"));

    py::class_<PySharedMemorySegment, PySegment>(m, "SharedMemorySegment",
                                                 buffer_protocol<PySegment>(), R"doc(
Shared memory (a sealed memfd) that channels can pass to other processes.

``SharedMemorySegment(name, size)``

Args:
    name: a debugging label (may be None); it names nothing in the file system.
    size: bytes (rounded up to whole pages by the kernel's mapping).

Raises:
    InvalidArgument: size 0. IOFailure: memfd_create or mmap failed.

Passed to a ``multiprocessing.Process`` (any start method) or through a multiprocessing Queue
or Pipe, the child maps the same memory (read-only if this mapping is). Plain ``pickle``
refuses it (TypeError).

Example::

    seg = px.SharedMemorySegment("frames", 16 << 20)
    pool = px.MemoryPool(seg, 1 << 20)
)doc")
        .def(py::init([](OptionalStrArg name, IntArg size) {
                 std::string label = name.is_none() ? std::string() : as_path(name, "name");
                 px_segment_t *seg = nullptr;
                 px_status_t st = px_segment_shm_new(name.is_none() ? nullptr : label.c_str(),
                                                     as_size(size, "size"), &seg);
                 return adopt<PySharedMemorySegment>(st, seg);
             }),
             py::arg("name"), py::arg("size"))
        .def_static(
            "from_fd",
            [](FdArg fd, IntArg size, bool readonly, bool allow_unsealed) {
                uint32_t flags = (readonly ? PX_MAP_READONLY : 0u) |
                                 (allow_unsealed ? PX_MAP_ALLOW_UNSEALED : 0u);
                px_segment_t *seg = nullptr;
                px_status_t st =
                    px_segment_shm_from_fd(as_fd(fd), as_size(size, "size"), flags, &seg);
                return adopt<PySharedMemorySegment>(st, seg);
            },
            py::arg("fd"), py::arg("size"), py::kw_only(), py::arg("readonly") = false,
            py::arg("allow_unsealed") = false, R"doc(
Maps ``size`` bytes of a shared-memory fd from another process (an int or an object with
``fileno()``). The caller keeps its fd: the segment holds a dup. Refuses fds that are not
memfds/regular files, are smaller than ``size`` or lack shrink seals (unless
``allow_unsealed``).

Args:
    fd: the segment's fd (int or an object with ``fileno()``); the caller keeps it.
    size: bytes to map, at most the file's size.
    readonly: map read-only (required for the read-only fd a channel sends).
    allow_unsealed: accept an fd without shrink seals (a peer could then truncate it).

Raises:
    InvalidArgument / PermissionDenied: not a memfd or regular file, smaller than ``size``,
    unsealed, or a read-only fd mapped writable.

Example::

    seg = px.SharedMemorySegment.from_fd(fd, size, readonly=True)
)doc");

    py::class_<PyHugePageSegment, PySegment>(m, "HugePageSegment", buffer_protocol<PySegment>(),
                                             R"doc(
Huge-page shared memory. ``page_size`` is HUGE_PAGE_2MB or HUGE_PAGE_1GB. Without reserved
huge pages this raises Unsupported, unless ``fallback=True``: then the segment uses normal
shared pages and says so (memory_type SHARED, page_size 4096).

``HugePageSegment(page_size, size, *, fallback=False)``

Raises:
    Unsupported: no huge pages reserved (the message says how to reserve them) and no
    fallback. InvalidArgument: a page size that is neither constant, or size 0.

Example::

    seg = px.HugePageSegment(px.HUGE_PAGE_2MB, 64 << 20, fallback=True)
)doc")
        .def(py::init([](IntArg page_size, IntArg size, bool fallback) {
                 uint64_t ps = as_u64(page_size, "page_size", UINT32_MAX);
                 px_segment_t *seg = nullptr;
                 px_status_t st = px_segment_hugepage_new(static_cast<uint32_t>(ps),
                                                          as_size(size, "size"),
                                                          fallback ? PX_HUGEPAGE_FALLBACK : 0u,
                                                          &seg);
                 return adopt<PyHugePageSegment>(st, seg);
             }),
             py::arg("page_size"), py::arg("size"), py::kw_only(), py::arg("fallback") = false);

    py::class_<PyMappedFileSegment, PySegment>(m, "MappedFileSegment",
                                               buffer_protocol<PySegment>(), R"doc(
A file mapped into memory. Use the create/open/open_readonly constructors. Channels do not
carry its buffers (a file cannot be sealed); processes share a file by its path.

Example::

    seg = px.MappedFileSegment.create("/tmp/frames.bin", 1 << 20)
    memoryview(seg)[:4] = b"PXF1"
    seg.flush()
)doc")
        .def_static(
            "create",
            [](PathArg path, IntArg size) {
                std::string p = as_path(path);
                px_segment_t *seg = nullptr;
                px_status_t st = px_segment_file_create(p.c_str(), as_size(size, "size"), &seg);
                return adopt<PyMappedFileSegment>(st, seg);
            },
            py::arg("path"), py::arg("size"),
            R"doc(
Creates a new file (mode 0600) of ``size`` bytes and maps it read-write.

Raises:
    IOFailure: the path exists (never truncated) or cannot be created. InvalidArgument: size 0.

Example::

    seg = px.MappedFileSegment.create("/tmp/frames.bin", 1 << 20)
)doc")
        .def_static(
            "open",
            [](PathArg path) {
                std::string p = as_path(path);
                px_segment_t *seg = nullptr;
                px_status_t st = px_segment_file_open(p.c_str(), &seg);
                return adopt<PyMappedFileSegment>(st, seg);
            },
            py::arg("path"), R"doc(
Maps an existing non-empty file read-write.

Raises:
    IOFailure: missing or not readable and writable. InvalidArgument: an empty file.

Example::

    seg = px.MappedFileSegment.open("/tmp/frames.bin")
)doc")
        .def_static(
            "open_readonly",
            [](PathArg path) {
                std::string p = as_path(path);
                px_segment_t *seg = nullptr;
                px_status_t st = px_segment_file_open_readonly(p.c_str(), &seg);
                return adopt<PyMappedFileSegment>(st, seg);
            },
            py::arg("path"), R"doc(
Maps an existing non-empty file read-only.

Raises:
    IOFailure: missing or not readable. InvalidArgument: an empty file.

Example::

    seg = px.MappedFileSegment.open_readonly("/tmp/frames.bin")
)doc");
}

} // namespace pxpy
