// SPDX-License-Identifier: Apache-2.0 OR MIT
// MemoryPool: fixed-size slots over a segment. Slot i lives at data + i * slot_size.
// A loan claims a bit in the AtomicBitmap (lock-free); the slot object is preallocated per index,
// so a loan allocates nothing. A loaned slot keeps its pool alive. The slot's reference count
// covers every buffer made from it, local or lent to another process (see ipc/channel): the
// slot goes back when the count reaches zero.
//
// Each thread keeps a small cache of free slots per pool (ThreadSlotCaches, below), the way
// DPDK's mempool keeps one per lcore: a loan pops a slot from it and a release pushes one onto
// it with plain loads and stores, no atomic read-modify-write; the cache refills from and
// flushes to the bitmap a batch at a time. A cached slot stays claimed in the bitmap. Whoever
// needs those slots back (a loan that found none, a waiter, the pool's closing) takes them from
// every thread's cache with MemoryPool::reclaim_cached(); see there for how that is safe.
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
    // A waiter is about to sleep waiting for returns (true) or has woken (false). Counted: a
    // pool and a stream's BLOCK publish may wait on the same source at once, and each true is
    // followed by one false.
    virtual void set_waiting(bool waiting) noexcept = 0;
};

// ----------------------------------------------------------------------------------------------
// Per-thread slot caches.
//
// The owning thread touches its caches only inside a *window*: enter() stores busy = 1, then
// reads `stopped`; leave() stores busy = 0 (release). A thread that wants the caches of every
// thread (MemoryPool::reclaim_cached, under the registry's mutex) stores stopped = 1 in each,
// runs a process-wide memory barrier (membarrier(2), MEMBARRIER_CMD_PRIVATE_EXPEDITED), then
// waits for each busy to read 0. This is Dekker's handshake with the expensive half on the rare
// side: the barrier runs a full fence on every CPU that runs one of our threads, so for each
// owner either its busy = 1 was visible before the barrier returned (the reclaimer waits for the
// window to end) or its later read of `stopped` sees 1 (the owner keeps out of its caches and
// goes to the bitmap). The owner pays two plain stores and a load. Under ThreadSanitizer (which
// knows nothing of membarrier) both sides use seq_cst atomics instead, which makes the same
// handshake correct in the C++ memory model.
//
// A window never blocks, takes a lock, allocates or makes a system call, so a reclaimer never
// waits for more than the time an owner may be descheduled inside one.
#if defined(__SANITIZE_THREAD__)
#define PX_SLOT_CACHE_SEQ_CST 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PX_SLOT_CACHE_SEQ_CST 1
#endif
#endif
#ifdef PX_SLOT_CACHE_SEQ_CST
inline constexpr std::memory_order window_store_order = std::memory_order_seq_cst;
inline constexpr std::memory_order window_load_order = std::memory_order_seq_cst;
#else
inline constexpr std::memory_order window_store_order = std::memory_order_relaxed;
inline constexpr std::memory_order window_load_order = std::memory_order_acquire;
#endif

// One thread's free slots of one pool, most recently released last. Read and written only by the
// owning thread inside a window, or by a reclaimer that has stopped it; the atomics (all relaxed)
// let available() read counts of other threads without a data race.
struct SlotCache {
    static constexpr uint32_t max_slots = 32;
    std::atomic<MemoryPool *> pool{nullptr}; // cleared by the reclaim at the pool's close
    std::atomic<uint32_t> count{0};
    Slot *items[max_slots];
};

struct ThreadSlotCaches {
    static constexpr size_t pools = 4; // several pools per thread; a fifth evicts one
    std::atomic<uint32_t> busy{0};     // the owner is inside a window
    std::atomic<uint32_t> stopped{0};  // a reclaimer has taken the caches: keep out
    uint32_t next_victim = 0;          // the owner's round-robin choice of a cache to evict
    SlotCache caches[pools];

    SlotCache *find(const MemoryPool *p) noexcept {
        for (auto &c : caches)
            if (c.pool.load(std::memory_order_relaxed) == p)
                return &c;
        return nullptr;
    }
    // True when the caches are ours to use; call leave() either way.
    bool enter() noexcept {
        busy.store(1, window_store_order);
        // A compiler barrier only: the reclaimer's membarrier is the CPU fence (see above).
        std::atomic_signal_fence(std::memory_order_seq_cst);
        return stopped.load(window_load_order) == 0;
    }
    void leave() noexcept { busy.store(0, std::memory_order_release); }
    // Gives every cached slot back to its pool's bitmap and forgets the pools. For a thread that
    // has left the registry (it is exiting) or a fork child (no other thread runs).
    void release_all() noexcept;
};

// This thread's caches: null until its first slow-path loan or release, and again once the
// thread is exiting (or where membarrier is not available: then every loan uses the bitmap).
// Initial-exec TLS, like thread_word_hint: one instruction to read on every loan and release.
__attribute__((tls_model("initial-exec"))) inline thread_local ThreadSlotCaches
    *thread_slot_caches = nullptr;

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
    // Free slots, after taking in returns from other processes: those free in the bitmap plus
    // those sitting in any thread's cache. Exact while no other thread loans or releases on
    // this pool. Meanwhile it is a count taken word by word and cache by cache, not at one
    // instant: a slot moving between a cache and the bitmap while it counts may be counted
    // twice or not at all (at most one cache's worth per thread doing so); never above
    // capacity().
    size_t available() const noexcept;
    // How many free slots threads' caches hold now (part of available()), and how many one
    // thread may hold (0: this pool is not cached, e.g. fewer than 8 slots).
    size_t cached() const noexcept;
    size_t cache_limit() const noexcept { return cache_limit_; }
    // Takes every slot of this pool out of every thread's cache into the bitmap; returns how
    // many. See the definition for why it is safe against the owners' plain loads and stores.
    size_t reclaim_cached() noexcept;
    Segment &segment() const noexcept { return *segment_; }
    const Ref<Segment> &segment_ref() const noexcept { return segment_; }

    // A free slot with one reference, or nullptr when this thread's cache and the bitmap have
    // none (other threads' caches are not searched: loan() does that). Lock-free.
    inline Slot *try_loan() noexcept;
    // Waits up to timeout_ns (< 0: forever; 0: poll) for a slot. Throws would_block/timeout;
    // would_block only when no slot is free in the bitmap or in any thread's cache.
    Slot *loan(int64_t timeout_ns);
    // Slot by index, for validating returns from peers (nullptr when out of range).
    Slot *slot_at(size_t index) noexcept { return index < capacity_ ? &slots_[index] : nullptr; }
    bool owns(const std::byte *p, size_t len) const noexcept;

    ~MemoryPool() override;

private:
    friend class Slot;
    friend struct ThreadSlotCaches;
    MemoryPool(Ref<Segment> segment, size_t slot_size, size_t capacity);
    // The cache of this pool in `tc` (inside its window), made if there is none: in a cache
    // with no slots, else in place of another pool's, whose slots go to `evicted` for the
    // caller to release once the window is over.
    SlotCache &cache_in(ThreadSlotCaches &tc, Slot **evicted, size_t &n_evicted) noexcept;
    static inline void give_back(Slot &slot) noexcept;
    // give_back when this thread's cache could not take the slot: another cache, a flush, or
    // straight to the bitmap.
    void give_back_slow(Slot &slot) noexcept;
    // try_loan when this thread's cache was empty: refill it from the bitmap, or claim there.
    Slot *try_loan_slow() noexcept;
    // A free slot from the bitmap, bypassing every cache.
    Slot *claim_uncached() noexcept;
    // Frees slots in the bitmap, those of one word in one step. The pool may be gone after the
    // last of them, unless the caller holds another of its slots.
    static void release_uncached(Slot *const *slots, size_t n) noexcept;
    // The rare paths of a bitmap release: a waiter to wake, or a closed pool to report to.
    void after_release(size_t index, AtomicBitmap::Released r) noexcept;
    // Whether a thread may keep this pool's slots in its cache now.
    bool caching_allowed() const noexcept {
        return cache_off_.load(window_load_order) == 0;
    }
    void wake_waiter(uint64_t slots) noexcept;
    void report_done(uint32_t n) noexcept; // n of the releases close() counted are over
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

    // cache_off_ bits: someone sleeps in loan(), or the owner is gone. Either stops threads
    // from keeping this pool's slots (see start_waiting and last_reference_dropped).
    static constexpr uint32_t off_waiting = 1, off_closed = 2;

    Ref<Segment> segment_;
    size_t slot_size_;
    size_t capacity_;
    uint32_t cache_limit_;             // slots one thread's cache may hold (0: none)
    uint32_t cache_batch_;             // slots moved between a cache and the bitmap at a time
    std::atomic<uint32_t> cache_off_{0};
    std::atomic<bool> maybe_cached_{false}; // some thread has a cache for this pool
    AtomicBitmap bitmap_;
    std::unique_ptr<Slot[]> slots_;
    std::atomic<int64_t> outstanding_{open_bias};
    std::mutex wait_mutex_; // serializes waiters' arrival and departure (the waiting flag)
    uint32_t waiters_ = 0;
    int wake_fd_ = -1; // eventfd (semaphore mode): one count per slot released while waited on
    // spin_for_slot's lesson: the last wait's slot came back only after the spin had begun to
    // yield (whoever returns slots runs on our CPU), so the next waits yield from the start.
    std::atomic<bool> spin_yields_first_{false};
    std::atomic<uint32_t> spin_waits_{0}; // every 16th wait probes with pauses again
};

// The loan and give-back fast paths are defined here so that the C entry points inline them
// (bench/bench_pool.cpp, "loan+release").

inline Slot *MemoryPool::try_loan() noexcept {
    // The fast path: pop from this thread's cache of this pool, inside a window.
    if (ThreadSlotCaches *tc = thread_slot_caches) [[likely]] {
        Slot *s = nullptr;
        if (tc->enter()) [[likely]] {
            if (SlotCache *c = tc->find(this)) [[likely]] {
                uint32_t n = c->count.load(std::memory_order_relaxed);
                if (n) [[likely]] {
                    s = c->items[n - 1];
                    c->count.store(n - 1, std::memory_order_relaxed);
                }
            }
        }
        tc->leave();
        if (s) [[likely]] {
            s->reset_refs(1);
            return s;
        }
    }
    return try_loan_slow();
}

inline void MemoryPool::give_back(Slot &slot) noexcept {
    // The fast path: push onto this thread's cache of the slot's pool, inside a window. The
    // pool is alive: the slot is still claimed in its bitmap.
    MemoryPool *pool = slot.pool_;
    if (ThreadSlotCaches *tc = thread_slot_caches) [[likely]] {
        bool cached = false;
        if (tc->enter() && pool->caching_allowed()) [[likely]] {
            if (SlotCache *c = tc->find(pool)) [[likely]] {
                uint32_t n = c->count.load(std::memory_order_relaxed);
                if (n < pool->cache_limit_) [[likely]] {
                    c->items[n] = &slot;
                    c->count.store(n + 1, std::memory_order_relaxed);
                    cached = true;
                }
            }
        }
        tc->leave();
        if (cached) [[likely]]
            return;
    }
    pool->give_back_slow(slot);
}

inline void Slot::release_sole_reference() noexcept {
    reset_refs(0);
    MemoryPool::give_back(*this);
}

} // namespace px
