// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/ipc/ring.hpp"

#include <cerrno>
#include <ctime>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <linux/futex.h>
#include <new>
#include <string>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/hot.hpp"
#include "core/shared_memory_segment.hpp"

namespace px::ipc {

namespace {

thread_local std::vector<Ref<Segment>> *deferred_unmaps = nullptr;

// A control block's mapping: unmapped with its last reference, unless a DeferControlUnmaps on
// this thread has room to keep it.
class ControlSegment final : public Segment {
public:
    using Segment::Segment;

private:
    void last_reference_dropped() noexcept override {
        std::vector<Ref<Segment>> *sink = deferred_unmaps;
        // Only without reallocating: push_back cannot throw here, and the reference it takes
        // is the one this object is brought back to life with.
        if (sink && sink->size() < sink->capacity()) {
            reset_refs(1);
            sink->push_back(Ref<Segment>::adopt(this));
            return;
        }
        delete this;
    }
};

// Maps a control block's memfd read-write. The segment keeps no fd: once both ends have mapped
// their blocks, neither needs the fds again (a channel end costs that many fds fewer). Not
// through shm::map_shared, which makes a plain Segment: a ControlSegment can defer its unmap.
Ref<Segment> map_control(int fd) {
    Segment::Mapping m;
    round_up(sizeof(ControlBlock), system_page_size(), m.map_len); // a constant: no overflow
    m.addr = ::mmap(nullptr, m.map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m.addr == MAP_FAILED)
        fail_errno("mmap(a control block, " + std::to_string(m.map_len) + " bytes)", errno);
    m.size = sizeof(ControlBlock);
    m.type = MemoryType::shared;
    m.page_size = system_page_size();
    MappingGuard owned{m}; // until the segment exists (making it may throw bad_alloc)
    return owned.hand_over<ControlSegment>();
}

} // namespace

DeferControlUnmaps::DeferControlUnmaps(std::vector<Ref<Segment>> &sink) noexcept
    : outer_(deferred_unmaps) {
    deferred_unmaps = &sink;
}

DeferControlUnmaps::~DeferControlUnmaps() {
    deferred_unmaps = outer_;
}

NewControlBlock create_control_block() {
    NewControlBlock out;
    out.fd = create_control_memfd();
    out.block = map_new_control_block(out.fd.fd);
    return out;
}

FdGuard create_control_memfd() {
    return FdGuard{shm::create_sealed_memfd(control_memfd_name, sizeof(ControlBlock), 0)};
}

Ref<Segment> map_new_control_block(int fd) {
    Ref<Segment> block = map_control(fd);
    // A fresh memfd reads as zeros, which is every index and state at its start: no
    // construction writes the block (that would fault in each of its pages at once, ~10 us on
    // a handshake's path); the peer maps it the same way.
    auto *cb = control_of(*block);
    cb->magic = ControlBlock::magic_value;
    cb->data_state.store(consumer_away, std::memory_order_relaxed);
    return block;
}

Ref<Segment> map_peer_control_block(int fd) {
    // The peer could truncate an unsealed file under us (SIGBUS): only a memfd sealed against
    // shrinking, at least as large as the block, is mapped.
    struct stat st {};
    if (::fstat(fd, &st) < 0)
        fail_errno("fstat(the peer's control block)", errno);
    if (!S_ISREG(st.st_mode))
        fail(Status::protocol, "the peer's control block is not a memory file");
    if (st.st_size < static_cast<off_t>(sizeof(ControlBlock)))
        fail(Status::protocol, "the peer's control block has " + std::to_string(st.st_size) +
                                   " bytes, not " + std::to_string(sizeof(ControlBlock)));
    const int seals = ::fcntl(fd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK))
        fail(Status::protocol, "the peer's control block is not sealed against shrinking");
    Ref<Segment> seg = map_control(fd);
    if (control_of(*seg)->magic != ControlBlock::magic_value)
        fail(Status::protocol, "the peer's control block has a bad magic");
    return seg;
}

PX_HOT long RingProducer::reserve() {
    // The consumer's index lives on a cache line it keeps writing: read it only when the last
    // value seen says the ring is full.
    if (mine_ - seen_head_ >= capacity_) {
        uint64_t head = head_->load(std::memory_order_acquire);
        uint64_t used = mine_ - head;
        if (used > capacity_)
            fail(Status::protocol, "the peer published an impossible ring index");
        seen_head_ = head;
        if (used == capacity_)
            return -1;
    }
    return static_cast<long>(mine_ % capacity_);
}

PX_HOT long RingConsumer::peek() {
    // Entries up to the tail seen last are published (that load was an acquire): read the
    // producer's index again only when they are used up.
    if (seen_tail_ == mine_) {
        uint64_t tail = tail_->load(std::memory_order_acquire);
        uint64_t avail = tail - mine_;
        if (avail > capacity_)
            fail(Status::protocol, "the peer published an impossible ring index");
        seen_tail_ = tail;
        if (avail == 0)
            return -1;
    }
    return static_cast<long>(mine_ % capacity_);
}

void futex_wake_all(std::atomic<uint32_t> *word) noexcept {
    ::syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAKE, INT32_MAX, nullptr,
              nullptr, 0);
}

void futex_wait(std::atomic<uint32_t> *word, uint32_t expected, int64_t timeout_ns) noexcept {
    const timespec ts = timespec_from_ns(timeout_ns);
    ::syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAIT, expected, &ts, nullptr,
              0);
}

} // namespace px::ipc
