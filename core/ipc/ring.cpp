#include "core/ipc/ring.hpp"

#include <cerrno>
#include <ctime>
#include <linux/futex.h>
#include <new>
#include <string>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/error.hpp"
#include "core/shared_memory_segment.hpp"

namespace px::ipc {

Ref<Segment> create_control_block() {
    Ref<Segment> seg = SharedMemorySegment::create("parallax-channel", sizeof(ControlBlock));
    auto *cb = new (seg->mutable_data()) ControlBlock; // zero-filled memory: indices start at 0
    cb->magic = ControlBlock::magic_value;
    cb->data_state.store(consumer_away, std::memory_order_relaxed);
    return seg;
}

Ref<Segment> map_peer_control_block(int fd) {
    Ref<Segment> seg;
    try {
        seg = SharedMemorySegment::from_fd(fd, sizeof(ControlBlock), 0);
    } catch (const Error &e) {
        fail(Status::protocol, std::string("the peer's control block was refused: ") + e.what());
    }
    if (control_of(*seg)->magic != ControlBlock::magic_value)
        fail(Status::protocol, "the peer's control block has a bad magic");
    return seg;
}

long RingProducer::reserve() {
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

long RingConsumer::peek() {
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
    timespec ts{static_cast<time_t>(timeout_ns / 1000000000),
                static_cast<long>(timeout_ns % 1000000000)};
    ::syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAIT, expected, &ts, nullptr,
              0);
}

} // namespace px::ipc
