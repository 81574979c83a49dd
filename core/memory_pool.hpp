// MemoryPool: fixed-size slots over a segment. Slot i lives at data + i * slot_size.
// A loan claims a bit in the AtomicBitmap (lock-free); the slot object is preallocated per index,
// so a loan allocates nothing. A loaned slot keeps its pool alive. The slot's reference count
// covers every buffer made from it, local or lent to another process (see ipc/channel): the
// slot goes back when the count reaches zero.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/atomic_bitmap.hpp"
#include "core/ref.hpp"
#include "core/segment.hpp"

namespace px {

class MemoryPool;

class Slot final : public RefCounted {
public:
    MemoryPool &pool() const noexcept { return *pool_; }
    size_t index() const noexcept { return index_; }
    std::byte *data() const noexcept { return data_; }
    size_t size() const noexcept;
    // release_ref() for a caller that holds the only reference (ref_count() == 1): a loan not
    // turned into buffers. No one can take a reference without holding one, so the count
    // cannot change under us and the atomic decrement is skipped.
    inline void release_sole_reference() noexcept;

private:
    friend class MemoryPool;
    Slot() = default;
    void last_reference_dropped() noexcept override;
    MemoryPool *pool_ = nullptr;
    std::byte *data_ = nullptr; // set once: the pool's segment is writable and outlives it
    size_t index_ = 0;
};

// Something that hands slots back to pools from elsewhere: the owner's side of a channel's
// return path. Pools ask every registered source to collect when they run dry or wait.
class ReturnSource : public RefCounted {
public:
    // An fd that becomes readable (or hangs up) when collect() has something to do.
    virtual int wait_fd() const noexcept = 0;
    // Takes in whatever returns have arrived, without blocking. `thorough` also reads the
    // socket (hang-ups, overflow records), which a quick collect does at most once a
    // millisecond.
    virtual void collect(bool thorough) noexcept = 0;
    // A pool is about to sleep waiting for returns (true) or has woken (false).
    virtual void set_waiting(bool waiting) noexcept = 0;
};

void register_return_source(ReturnSource *source);
void unregister_return_source(ReturnSource *source) noexcept;
// Runs collect() on every registered source (cheap when there are none).
void collect_all_returns(bool thorough = false) noexcept;

class MemoryPool final : public RefCounted {
public:
    // slot_size > 0 and <= segment size; the segment must be writable.
    static Ref<MemoryPool> create(Ref<Segment> segment, size_t slot_size);

    size_t capacity() const noexcept { return capacity_; }
    size_t slot_size() const noexcept { return slot_size_; }
    // Free slots now, after taking in returns from other processes.
    size_t available() const noexcept;
    Segment &segment() const noexcept { return *segment_; }
    const Ref<Segment> &segment_ref() const noexcept { return segment_; }

    // A free slot with one reference, or nullptr when all are out. Lock-free.
    inline Slot *try_loan() noexcept;
    // Waits up to timeout_ns (< 0: forever; 0: poll) for a slot. Throws would_block/timeout.
    Slot *loan(int64_t timeout_ns);
    // Slot by index, for validating returns from peers (nullptr when out of range).
    Slot *slot_at(size_t index) noexcept { return index < capacity_ ? &slots_[index] : nullptr; }
    bool owns(const std::byte *p, size_t len) const noexcept;

    ~MemoryPool() override;

private:
    friend class Slot;
    MemoryPool(Ref<Segment> segment, size_t slot_size, size_t capacity);
    inline void give_back(size_t index) noexcept;
    void wake_waiter() noexcept;

    Ref<Segment> segment_;
    size_t slot_size_;
    size_t capacity_;
    AtomicBitmap bitmap_;
    std::unique_ptr<Slot[]> slots_;
    std::atomic<uint32_t> waiters_{0};
    int wake_fd_ = -1; // eventfd (semaphore mode): one count per slot released while waited on
};

// The loan and give-back fast paths are defined here so that the C entry points inline them
// (bench/bench_pool.cpp, "loan+release").

inline Slot *MemoryPool::try_loan() noexcept {
    size_t i = bitmap_.acquire();
    if (i == AtomicBitmap::npos)
        return nullptr;
    add_ref(); // a loaned slot keeps its pool alive
    slots_[i].reset_refs(1);
    return &slots_[i];
}

inline void MemoryPool::give_back(size_t index) noexcept {
    bitmap_.release(index);
    // seq_cst pairs with the waiter's increment before its last try: either it sees the bit
    // free, or we see it waiting and wake it.
    if (waiters_.load(std::memory_order_seq_cst) > 0) [[unlikely]]
        wake_waiter();
    release_ref(); // may delete this pool: nothing after it
}

inline void Slot::release_sole_reference() noexcept {
    reset_refs(0);
    pool_->give_back(index_);
}

} // namespace px
