// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/mapped_file_segment.hpp"

#include <cerrno>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.hpp"
#include "core/fd_guard.hpp"

namespace px::mapped_file {

namespace {

class FileSegment final : public Segment {
public:
    using Segment::Segment;
    void flush() const override {
        if (readonly())
            return;
        if (::msync(const_cast<std::byte *>(data()), size(), MS_SYNC) < 0)
            fail_errno("msync", errno);
    }
};

void check_path(const char *path) {
    if (!path)
        fail(Status::invalid, "path is NULL");
    if (!*path)
        fail(Status::invalid, "path is empty");
}

// Maps the file and makes its segment, which takes the fd over (closed on any failure).
Ref<Segment> map_file(FdGuard &fd, const std::string &path, size_t size, bool readonly) {
    Segment::Mapping m;
    if (!round_up(size, system_page_size(), m.map_len))
        fail(Status::invalid, "size " + std::to_string(size) + " overflows when page-rounded");
    int prot = readonly ? PROT_READ : PROT_READ | PROT_WRITE;
    m.addr = ::mmap(nullptr, m.map_len, prot, MAP_SHARED, fd.fd, 0);
    if (m.addr == MAP_FAILED)
        fail_errno("mmap(" + path + ")", errno);
    m.size = size;
    m.readonly = readonly;
    m.type = MemoryType::mapped_file;
    m.page_size = system_page_size();
    m.fd = fd.release();
    MappingGuard owned{m}; // until the segment exists (making it may throw bad_alloc)
    return owned.hand_over<FileSegment>();
}

} // namespace

Ref<Segment> create(const char *path, size_t size) {
    check_path(path);
    if (size == 0)
        fail(Status::invalid, "size is 0; a file segment needs at least one byte");
    if (size > static_cast<size_t>(INT64_MAX))
        fail(Status::invalid, "size " + std::to_string(size) + " is larger than a file can be");
    FdGuard fd{::open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
    if (fd.fd < 0) {
        if (errno == EEXIST)
            fail(Status::invalid, std::string(path) +
                                      " already exists; px_segment_file_create never truncates "
                                      "(use px_segment_file_open)");
        fail_errno(std::string("open(") + path + ", O_CREAT | O_EXCL)", errno);
    }
    if (::ftruncate(fd.fd, static_cast<off_t>(size)) < 0) {
        int err = errno;
        ::unlink(path);
        fail_errno(std::string("ftruncate(") + path + ", " + std::to_string(size) + ")", err);
    }
    try {
        return map_file(fd, path, size, false);
    } catch (...) {
        ::unlink(path);
        throw;
    }
}

Ref<Segment> open(const char *path, bool readonly) {
    check_path(path);
    // O_NONBLOCK so that a FIFO at that path is refused instead of blocking the open.
    FdGuard fd{::open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK)};
    if (fd.fd < 0) {
        if (errno == EISDIR)
            fail(Status::invalid, std::string(path) + " is a directory, not a file");
        fail_errno(std::string("open(") + path + (readonly ? ", O_RDONLY)" : ", O_RDWR)"), errno);
    }
    struct stat st {};
    if (::fstat(fd.fd, &st) < 0)
        fail_errno(std::string("fstat(") + path + ")", errno);
    if (!S_ISREG(st.st_mode))
        fail(Status::invalid, std::string(path) + " is not a regular file");
    if (st.st_size == 0)
        fail(Status::invalid, std::string(path) + " is empty; a mapping needs at least one byte");
    return map_file(fd, path, static_cast<size_t>(st.st_size), readonly);
}

} // namespace px::mapped_file
