// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/segment.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.hpp"

namespace px {

namespace {

std::atomic<uint64_t> next_serial{1};

// Regular files cannot be sealed (F_GET_SEALS fails): they may always shrink.
bool fd_may_shrink(int fd) noexcept {
    if (fd < 0)
        return false;
    int seals = ::fcntl(fd, F_GET_SEALS);
    return seals < 0 || !(seals & F_SEAL_SHRINK);
}

void unmap_and_close(const Segment::Mapping &m) noexcept {
    if (m.addr)
        ::munmap(m.addr, m.map_len);
    if (m.fd >= 0)
        ::close(m.fd);
}

std::string range_text(size_t offset, size_t len) {
    return "[" + std::to_string(offset) + ", +" + std::to_string(len) + ")";
}

} // namespace

const char *memory_type_name(MemoryType type) noexcept {
    switch (type) {
    case MemoryType::heap:
        return "heap";
    case MemoryType::shared:
        return "shared";
    case MemoryType::huge_pages:
        return "huge_pages";
    case MemoryType::mapped_file:
        return "mapped_file";
    }
    return "unknown";
}

Segment::Segment(const Mapping &m) noexcept
    : m_(m), serial_(next_serial.fetch_add(1, std::memory_order_relaxed)),
      may_shrink_(fd_may_shrink(m.fd)) {}

Segment::~Segment() {
    unmap_and_close(m_);
    if (peer_fd_ >= 0) // a release missed: nothing may borrow it past the segment
        ::close(peer_fd_);
}

MappingGuard::~MappingGuard() { unmap_and_close(m_); }

void Segment::flush() const {}

void Segment::populate(size_t offset, size_t len) const noexcept {
    if (!m_.addr || offset >= m_.map_len)
        return;
    const size_t page = system_page_size();
    const size_t start = offset & ~(page - 1);
    const size_t end = std::min(m_.map_len, offset + std::min(len, m_.map_len - offset));
    ::madvise(static_cast<std::byte *>(m_.addr) + start, end - start, MADV_POPULATE_WRITE);
}

void Segment::drop_pages() const noexcept {
    if (m_.addr)
        ::madvise(m_.addr, m_.map_len, MADV_DONTNEED);
}

void Segment::read_into(size_t offset, void *dst, size_t len) const {
    if (!dst)
        fail(Status::invalid, "dst is NULL");
    if (offset > m_.size || len > m_.size - offset)
        fail(Status::invalid, "range " + range_text(offset, len) + " exceeds segment length " +
                                  std::to_string(m_.size));
    if (len == 0)
        return;
    if (!may_shrink_) {
        std::memcpy(dst, data() + offset, len);
        return;
    }
    // The page cache is shared by the mapping and the file, so pread sees exactly what the
    // mapping holds, but past the end of a truncated file it answers 0 bytes instead of a SIGBUS.
    auto *out = static_cast<std::byte *>(dst);
    size_t done = 0;
    while (done < len) {
        ssize_t n = ::pread(m_.fd, out + done, len - done, static_cast<off_t>(offset + done));
        if (n > 0) {
            done += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail_errno("pread(" + range_text(offset + done, len - done) + ")", errno);
        struct stat st {};
        std::string now = ::fstat(m_.fd, &st) == 0 ? std::to_string(st.st_size) : "fewer";
        fail(Status::io, "the file is now " + now + " bytes, shorter than the " +
                             std::to_string(m_.size) + " mapped: another process truncated it, "
                             "so " + range_text(offset, len) + " cannot be read");
    }
}

int Segment::open_readonly_for_peer() const {
    if (m_.type != MemoryType::shared && m_.type != MemoryType::huge_pages)
        fail(Status::unsupported,
             std::string("a ") + memory_type_name(m_.type) +
                 " segment cannot cross a channel (only shared and huge-page memory can)");
    // Future writes are sealed first: our own mapping stays writable, but nobody can create a
    // new writable mapping, not even by reopening /proc/<pid>/fd/<n> read-write.
    int seals = ::fcntl(m_.fd, F_GET_SEALS);
    if (seals < 0)
        fail_errno("fcntl(F_GET_SEALS)", errno);
    if (!(seals & F_SEAL_FUTURE_WRITE) && !(seals & F_SEAL_SEAL)) {
        if (::fcntl(m_.fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) < 0)
            fail_errno("fcntl(F_ADD_SEALS, F_SEAL_FUTURE_WRITE)", errno);
    }
    std::string path = "/proc/self/fd/" + std::to_string(m_.fd);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail_errno("open(" + path + ", O_RDONLY)", errno);
    return fd;
}

int Segment::acquire_peer_fd() const {
    std::lock_guard lock(peer_mutex_);
    if (peer_fd_ < 0)
        peer_fd_ = open_readonly_for_peer(); // throws before anything is counted
    ++peer_fd_users_;
    return peer_fd_;
}

void Segment::release_peer_fd() const noexcept {
    std::lock_guard lock(peer_mutex_);
    if (peer_fd_users_ > 0)
        --peer_fd_users_;
    if (peer_fd_users_ == 0 && peer_fd_ >= 0) { // the last registration: nobody passes it now
        ::close(peer_fd_);
        peer_fd_ = -1;
    }
}

size_t system_page_size() noexcept {
    static const size_t size = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    return size;
}

bool round_up(size_t value, size_t multiple, size_t &out) noexcept {
    size_t mask = multiple - 1;
    if (value > SIZE_MAX - mask)
        return false;
    out = (value + mask) & ~mask;
    return true;
}

} // namespace px
