#include "core/stream/stream_stats.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "core/clock.hpp"
#include "core/error.hpp"

namespace px::stream {

namespace {

constexpr uint64_t page_magic = 0x5058535441545331; // "PXSTATS1"
constexpr size_t page_size = 4096;

} // namespace

struct StatsPage::Layout {
    std::atomic<uint64_t> magic;
    std::atomic<uint64_t> sequence; // odd while the counters are being written
    std::atomic<uint64_t> pid;
    std::atomic<uint64_t> counters[7];
};
static_assert(sizeof(StatsPage::Layout) <= page_size);
static_assert(sizeof(PublisherStats) == 7 * sizeof(uint64_t));

namespace {

constexpr size_t counters_offset = 3 * sizeof(uint64_t);

// The lock a live publisher holds: the whole file, for writing.
flock whole_file(short type) {
    flock l{};
    l.l_type = type;
    l.l_whence = SEEK_SET;
    l.l_start = 0;
    l.l_len = 0;
    return l;
}

} // namespace

StatsPage::StatsPage(const std::string &path) : path_(path) {
    fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (fd_.fd < 0) {
        const int err = errno;
        if (err == ELOOP)
            fail(Status::permission, "stats page " + path + " is a symbolic link");
        fail_errno("open(" + path + ")", err);
    }
    struct stat st {};
    if (::fstat(fd_.fd, &st) != 0)
        fail_errno("fstat(" + path + ")", errno);
    if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid())
        fail(Status::permission,
             "stats page " + path + " is not a regular file owned by this process's uid");
    flock l = whole_file(F_WRLCK);
    if (::fcntl(fd_.fd, F_OFD_SETLK, &l) != 0) {
        const int err = errno;
        if (err == EAGAIN || err == EACCES)
            fail(Status::busy, "a live publisher already has this stream (" + path +
                                   " is locked by it)");
        fail_errno("fcntl(" + path + ", F_OFD_SETLK)", err);
    }
    // A dead publisher's page is reused, never truncated: a reader preading it sees no SIGBUS.
    if (static_cast<size_t>(st.st_size) < page_size && ::ftruncate(fd_.fd, page_size) != 0)
        fail_errno("ftruncate(" + path + ")", errno);
    void *p = ::mmap(nullptr, page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.fd, 0);
    if (p == MAP_FAILED)
        fail_errno("mmap(" + path + ")", errno);
    page_ = static_cast<Layout *>(p);
    page_->sequence.store(0, std::memory_order_relaxed);
    for (auto &c : page_->counters)
        c.store(0, std::memory_order_relaxed);
    page_->pid.store(static_cast<uint64_t>(::getpid()), std::memory_order_relaxed);
    page_->magic.store(page_magic, std::memory_order_release);
}

StatsPage::~StatsPage() {
    ::unlink(path_.c_str());
    if (page_)
        ::munmap(page_, page_size);
}

void StatsPage::store(const PublisherStats &s) noexcept {
    uint64_t values[7];
    std::memcpy(values, &s, sizeof values);
    const uint64_t seq = page_->sequence.load(std::memory_order_relaxed);
    page_->sequence.store(seq + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    for (size_t i = 0; i < 7; ++i)
        page_->counters[i].store(values[i], std::memory_order_relaxed);
    page_->sequence.store(seq + 2, std::memory_order_release);
}

bool publisher_alive(const std::string &path) noexcept {
    FdGuard fd{::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)};
    if (fd.fd < 0)
        return false;
    flock l = whole_file(F_RDLCK);
    // F_OFD_GETLK answers the lock that would conflict with a read lock: a publisher's write
    // lock, or F_UNLCK when there is none. Nothing is taken.
    if (::fcntl(fd.fd, F_OFD_GETLK, &l) != 0)
        return false;
    return l.l_type == F_WRLCK;
}

PublisherStats read_stats(const std::string &path, int64_t timeout_ns) {
    FdGuard fd{::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)};
    if (fd.fd < 0) {
        if (errno == ENOENT)
            fail(Status::closed, "no publisher of this stream is live (no " + path + ")");
        fail_errno("open(" + path + ")", errno);
    }
    struct stat st {};
    if (::fstat(fd.fd, &st) != 0)
        fail_errno("fstat(" + path + ")", errno);
    if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid())
        fail(Status::permission,
             "stats page " + path + " is not a regular file owned by this process's uid");
    flock l = whole_file(F_RDLCK);
    if (::fcntl(fd.fd, F_OFD_GETLK, &l) != 0)
        fail_errno("fcntl(" + path + ", F_OFD_GETLK)", errno);
    if (l.l_type != F_WRLCK)
        fail(Status::closed, "no publisher of this stream is live (" + path +
                                 " is a dead publisher's page)");
    const int64_t deadline = deadline_for(timeout_ns);
    for (;;) {
        uint64_t words[3 + 7];
        uint64_t seq_after = 1;
        const ssize_t n = ::pread(fd.fd, words, sizeof words, 0);
        if (n == static_cast<ssize_t>(sizeof words) && words[0] == page_magic &&
            words[1] % 2 == 0 &&
            ::pread(fd.fd, &seq_after, sizeof seq_after, sizeof(uint64_t)) ==
                static_cast<ssize_t>(sizeof seq_after) &&
            seq_after == words[1]) {
            PublisherStats s;
            std::memcpy(&s, reinterpret_cast<const char *>(words) + counters_offset, sizeof s);
            return s;
        }
        if (n < 0)
            fail_errno("pread(" + path + ")", errno);
        if (now_ns() >= deadline)
            fail(timeout_ns == 0 ? Status::would_block : Status::timeout,
                 "no consistent reading of " + path + " in time (the publisher is mid-update "
                 "or starting)");
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
}

} // namespace px::stream
