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
#include <mutex>
#include <poll.h>
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
    std::atomic<uint64_t> *word_ = nullptr; // its bitmap word and bit: a release touches only
    uint64_t mask_ = 0;                     // these until the bitmap says otherwise
    size_t index_ = 0;
};

// Something that hands slots back to pools from elsewhere: the owner's side of a channel's
// return path. Pools ask every registered source to collect when they run dry or wait.
class ReturnSource : public RefCounted {
public:
    // Appends the fds that become readable (or hang up) when collect() has something to do:
    // a channel's return socket, and the pidfd of the borrower's process.
    virtual void add_wait_fds(std::vector<pollfd> &fds) const = 0;
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

// Lifetime: the pool's reference count counts its owners (handles, Ref<MemoryPool>), not its
// loans, so that a loan and a release are one atomic step each on the bitmap. When the last
// owner goes, the pool closes its bitmap (AtomicBitmap::close), which counts, atomically per
// word, the slots still out and the releasers still waking a waiter; each of those reports once
// when done, and the last report deletes the pool. A releaser therefore never touches a pool
// after its bit is free unless the bitmap told it, in the same atomic step, that it may.
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
    static inline void give_back(Slot &slot) noexcept;
    // The rare paths of give_back: a waiter to wake, or a closed pool to report to.
    void give_back_slow(size_t index, AtomicBitmap::Released r) noexcept;
    void wake_waiter() noexcept;
    void report_done() noexcept; // one of the releases close() counted is over
    void last_reference_dropped() noexcept override; // the last owner is gone: close
    void start_waiting();
    void stop_waiting() noexcept;
    // The two waits of loan(): a short spin (nullptr when it found no slot), then sleeping
    // until a release or a return wakes us (throws timeout at the deadline).
    Slot *spin_for_slot(int64_t deadline_ns);
    Slot *sleep_for_slot(int64_t deadline_ns, int64_t timeout_ns);

    // Outstanding work after close: starts at `open_bias`, so that it cannot reach 0 before
    // close() has added what it counted and taken the bias away.
    static constexpr int64_t open_bias = int64_t{1} << 62;

    Ref<Segment> segment_;
    size_t slot_size_;
    size_t capacity_;
    AtomicBitmap bitmap_;
    std::unique_ptr<Slot[]> slots_;
    std::atomic<int64_t> outstanding_{open_bias};
    std::mutex wait_mutex_; // serializes waiters' arrival and departure (the waiting flag)
    uint32_t waiters_ = 0;
    int wake_fd_ = -1; // eventfd (semaphore mode): one count per slot released while waited on
};

// The loan and give-back fast paths are defined here so that the C entry points inline them
// (bench/bench_pool.cpp, "loan+release").

inline Slot *MemoryPool::try_loan() noexcept {
    size_t i = bitmap_.acquire();
    if (i == AtomicBitmap::npos)
        return nullptr;
    slots_[i].reset_refs(1);
    return &slots_[i];
}

inline void MemoryPool::give_back(Slot &slot) noexcept {
    MemoryPool *pool = slot.pool_;
    size_t index = slot.index_;
    AtomicBitmap::Released r = AtomicBitmap::release_in(*slot.word_, slot.mask_);
    // Past this point the pool (and the slot) may be gone, unless r says that a waiter or a
    // closed pool awaits us.
    if (r.waker || r.closed) [[unlikely]]
        pool->give_back_slow(index, r);
}

inline void Slot::release_sole_reference() noexcept {
    reset_refs(0);
    MemoryPool::give_back(*this);
}

} // namespace px
