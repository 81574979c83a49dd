#include "core/segment.hpp"

#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

#include "core/error.hpp"

namespace px {

namespace {
std::atomic<uint64_t> next_serial{1};
}

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
    : m_(m), serial_(next_serial.fetch_add(1, std::memory_order_relaxed)) {}

Segment::~Segment() {
    if (m_.addr)
        ::munmap(m_.addr, m_.map_len);
    if (m_.fd >= 0)
        ::close(m_.fd);
}

void Segment::flush() const {}

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
