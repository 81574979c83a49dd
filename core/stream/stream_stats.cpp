// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/stream/stream_stats.hpp"

#include <algorithm>
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

constexpr uint64_t page_magic = 0x5058535441545331;  // "PXSTATS1"
constexpr uint64_t table_magic = 0x5058535542533031; // "PXSUBS01"
constexpr size_t page_size = 4096;
constexpr size_t row_words = sizeof(SubscriberRow) / sizeof(uint64_t);

} // namespace

struct StatsPage::Layout {
    std::atomic<uint64_t> magic;
    std::atomic<uint64_t> sequence; // odd while the counters or the table are being written
    std::atomic<uint64_t> pid;
    std::atomic<uint64_t> counters[7];
};
static_assert(sizeof(StatsPage::Layout) <= page_size);
static_assert(sizeof(PublisherStats) == 7 * sizeof(uint64_t));
static_assert(sizeof(SubscriberRow) == row_words * sizeof(uint64_t));

namespace {

// The subscriber table, on the pages after the counters' (a reader of the first page alone, as
// before the table existed, is not disturbed).
struct TableLayout {
    std::atomic<uint64_t> magic;
    std::atomic<uint64_t> count;
    std::atomic<uint64_t> rows[max_subscriber_rows * row_words];
};
constexpr size_t table_offset = page_size;
constexpr size_t table_rows_offset = 2 * sizeof(uint64_t);
static_assert(sizeof(std::atomic<uint64_t>) == sizeof(uint64_t));
constexpr size_t file_size =
    (table_offset + sizeof(TableLayout) + page_size - 1) / page_size * page_size;

constexpr size_t counters_offset = 3 * sizeof(uint64_t);

TableLayout *table_of(StatsPage::Layout *page) {
    return reinterpret_cast<TableLayout *>(reinterpret_cast<char *>(page) + table_offset);
}

// The lock a live publisher holds: the whole file, for writing.
flock whole_file(short type) {
    flock l{};
    l.l_type = type;
    l.l_whence = SEEK_SET;
    l.l_start = 0;
    l.l_len = 0;
    return l;
}

bool pread_exact(int fd, void *dst, size_t len, size_t offset) {
    const ssize_t n = ::pread(fd, dst, len, static_cast<off_t>(offset));
    if (n < 0)
        fail_errno("pread", errno);
    return static_cast<size_t>(n) == len;
}

// The page of a live publisher, opened for reading: closed at once when no live publisher holds
// it, permission when it is not a regular file of this uid.
FdGuard open_live_page(const std::string &path) {
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
    return fd;
}

// Runs read_body(fd) between two readings of the sequence lock until both readings are the same
// even number and read_body found what it wanted (true): a reading no update overlapped.
template <class ReadBody>
void read_consistent(int fd, const std::string &path, int64_t timeout_ns, ReadBody read_body) {
    const int64_t deadline = deadline_for(timeout_ns);
    for (;;) {
        uint64_t head[2] = {0, 1}; // magic, sequence
        uint64_t seq_after = 1;
        if (pread_exact(fd, head, sizeof head, 0) && head[0] == page_magic && head[1] % 2 == 0 &&
            read_body(fd) && pread_exact(fd, &seq_after, sizeof seq_after, sizeof(uint64_t)) &&
            seq_after == head[1])
            return;
        if (now_ns() >= deadline)
            fail(timeout_ns == 0 ? Status::would_block : Status::timeout,
                 "no consistent reading of " + path + " in time (the publisher is mid-update "
                 "or starting)");
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
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
    if (static_cast<size_t>(st.st_size) < file_size && ::ftruncate(fd_.fd, file_size) != 0)
        fail_errno("ftruncate(" + path + ")", errno);
    void *p = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.fd, 0);
    if (p == MAP_FAILED)
        fail_errno("mmap(" + path + ")", errno);
    page_ = static_cast<Layout *>(p);
    page_->sequence.store(0, std::memory_order_relaxed);
    for (auto &c : page_->counters)
        c.store(0, std::memory_order_relaxed);
    page_->pid.store(static_cast<uint64_t>(::getpid()), std::memory_order_relaxed);
    table_of(page_)->count.store(0, std::memory_order_relaxed);
    table_of(page_)->magic.store(table_magic, std::memory_order_relaxed);
    page_->magic.store(page_magic, std::memory_order_release);
    owner_pid_ = ::getpid();
    dev_ = st.st_dev;
    ino_ = st.st_ino;
}

StatsPage::~StatsPage() {
    struct stat st {};
    if (::getpid() == owner_pid_ && ::stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ &&
        st.st_ino == ino_)
        ::unlink(path_.c_str());
    if (page_)
        ::munmap(page_, file_size);
}

void StatsPage::store(const PublisherStats &s, const SubscriberRow *rows,
                      size_t row_count) noexcept {
    uint64_t values[7];
    std::memcpy(values, &s, sizeof values);
    row_count = std::min(row_count, max_subscriber_rows);
    TableLayout *table = table_of(page_);
    const uint64_t seq = page_->sequence.load(std::memory_order_relaxed);
    page_->sequence.store(seq + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    for (size_t i = 0; i < 7; ++i)
        page_->counters[i].store(values[i], std::memory_order_relaxed);
    for (size_t r = 0; r < row_count; ++r) {
        uint64_t row[row_words];
        std::memcpy(row, &rows[r], sizeof row);
        for (size_t w = 0; w < row_words; ++w)
            table->rows[r * row_words + w].store(row[w], std::memory_order_relaxed);
    }
    table->count.store(row_count, std::memory_order_relaxed);
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
    const FdGuard fd = open_live_page(path);
    PublisherStats s;
    read_consistent(fd.fd, path, timeout_ns, [&](int f) {
        return pread_exact(f, &s, sizeof s, counters_offset);
    });
    return s;
}

std::vector<SubscriberRow> read_subscribers(const std::string &path, int64_t timeout_ns) {
    const FdGuard fd = open_live_page(path);
    std::vector<SubscriberRow> rows;
    read_consistent(fd.fd, path, timeout_ns, [&](int f) {
        uint64_t head[2] = {0, 0}; // magic, count
        if (!pread_exact(f, head, sizeof head, table_offset) || head[0] != table_magic)
            fail(Status::unsupported, "the publisher's page " + path +
                                          " has no subscriber table (an older libparallax)");
        // The count is the publisher's word, read from a file: bounded before it sizes anything.
        if (head[1] > max_subscriber_rows)
            return false;
        rows.resize(head[1]);
        return rows.empty() ||
               pread_exact(f, rows.data(), rows.size() * sizeof(SubscriberRow),
                           table_offset + table_rows_offset);
    });
    return rows;
}

} // namespace px::stream
