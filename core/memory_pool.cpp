// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/memory_pool.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <linux/membarrier.h>
#include <mutex>
#include <new>
#include <poll.h>
#include <pthread.h>
#include <string>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/clock.hpp"
#include "core/cpu_relax.hpp"
#include "core/error.hpp"

namespace px {

// ----------------------------------------------------------------------------------------------
// Return sources (channel return paths) known to this process.

namespace {

struct ReturnRegistry {
    std::mutex mutex;
    std::vector<Ref<ReturnSource>> sources;
    std::atomic<size_t> count{0};
};

ReturnRegistry &registry() {
    static ReturnRegistry *r = new ReturnRegistry; // never destroyed: used from atexit paths
    return *r;
}

std::vector<Ref<ReturnSource>> snapshot_sources() {
    auto &r = registry();
    std::lock_guard lock(r.mutex);
    return r.sources;
}

} // namespace

void register_return_source(ReturnSource *source) {
    auto &r = registry();
    std::lock_guard lock(r.mutex);
    r.sources.emplace_back(source);
    r.count.store(r.sources.size(), std::memory_order_release);
}

void unregister_return_source(ReturnSource *source) noexcept {
    Ref<ReturnSource> keep; // dropped outside the lock
    auto &r = registry();
    std::lock_guard lock(r.mutex);
    auto it = std::find_if(r.sources.begin(), r.sources.end(),
                           [&](const Ref<ReturnSource> &s) { return s.get() == source; });
    if (it != r.sources.end()) {
        keep = std::move(*it);
        r.sources.erase(it);
    }
    r.count.store(r.sources.size(), std::memory_order_release);
}

void collect_all_returns(bool thorough) noexcept {
    if (registry().count.load(std::memory_order_acquire) == 0)
        return;
    // Reused per thread: a pool that runs dry on every frame allocates nothing here.
    thread_local std::vector<Ref<ReturnSource>> sources;
    {
        auto &r = registry();
        std::lock_guard lock(r.mutex);
        sources = r.sources;
    }
    for (auto &s : sources)
        s->collect(thorough);
    sources.clear();
}

// ----------------------------------------------------------------------------------------------
// Per-thread slot caches: the registry of every thread's caches, the process-wide barrier,
// thread exit and fork. (The handshake itself is described in memory_pool.hpp.)

namespace {

struct CacheRegistry {
    // Held by a reclaimer for the whole reclaim, by a thread joining or leaving, and across
    // fork (pthread_atfork), so those never overlap.
    std::mutex mutex;
    std::vector<ThreadSlotCaches *> threads;
};

CacheRegistry &cache_registry() {
    static CacheRegistry *r = new CacheRegistry; // never destroyed: threads exit after main
    return *r;
}

long membarrier_call(int cmd) noexcept { return ::syscall(__NR_membarrier, cmd, 0, 0); }

void fork_prepare() noexcept { cache_registry().mutex.lock(); }
void fork_parent() noexcept { cache_registry().mutex.unlock(); }

// The child runs one thread: the caches of the others are copies nobody will use, and the
// forking thread's own are copies of slots its parent may use too (a pool over shared memory).
// Every cached slot goes back to the child's copy of its bitmap, so that the child's pools are
// exactly what they would have been without caches: no slot is in a cache and free at once,
// none is lost but those a thread was moving at the instant of the fork (a refill claimed in
// the bitmap and not yet in the cache: at most one batch per such thread, in the child only).
void fork_child() noexcept {
    auto &r = cache_registry();
    ThreadSlotCaches *mine = thread_slot_caches;
    for (ThreadSlotCaches *tc : r.threads) {
        tc->release_all();
        tc->busy.store(0, std::memory_order_relaxed);
        tc->stopped.store(0, std::memory_order_relaxed);
        if (tc != mine)
            delete tc;
    }
    std::erase_if(r.threads, [mine](ThreadSlotCaches *tc) { return tc != mine; });
    r.mutex.unlock();
}

// Whether this process can make the reclaimer's barrier (membarrier, Linux >= 4.14, unless a
// seccomp filter forbids it): without it, pools are not cached. Registers once.
bool caching_supported() noexcept {
    static const bool supported = [] {
        long cmds = membarrier_call(MEMBARRIER_CMD_QUERY);
        if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) ||
            membarrier_call(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0)
            return false;
        return ::pthread_atfork(fork_prepare, fork_parent, fork_child) == 0;
    }();
    return supported;
}

// A full memory barrier on every CPU running a thread of this process (see memory_pool.hpp).
void process_wide_barrier() noexcept {
    if (membarrier_call(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0)
        return;
    // The registration is inherited by fork and dropped by exec (which also drops every cache);
    // if the kernel forgot it anyway, register again, or take the slower global barrier.
    if (membarrier_call(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0 &&
        membarrier_call(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0)
        return;
    if (membarrier_call(MEMBARRIER_CMD_GLOBAL) == 0)
        return;
    // Worked when caching was enabled; carrying on could hand one slot to two threads.
    std::fprintf(stderr, "libparallax: membarrier failed after it had worked (errno %d)\n", errno);
    std::abort();
}

// Set for good once this thread's caches are gone (it is exiting): releases that thread_local
// destructors run after that go straight to the bitmap instead of making new caches.
thread_local bool thread_caches_closed = false;

// Flushes this thread's caches when it exits. Constructed, and so registered to run, on the
// thread's first use of a cache.
struct ThreadCachesReaper {
    ThreadCachesReaper() = default;
    ThreadCachesReaper(const ThreadCachesReaper &) = delete;
    ThreadCachesReaper &operator=(const ThreadCachesReaper &) = delete;
    ~ThreadCachesReaper() {
        ThreadSlotCaches *tc = thread_slot_caches;
        thread_caches_closed = true;
        thread_slot_caches = nullptr;
        if (!tc)
            return;
        {
            auto &r = cache_registry();
            std::lock_guard lock(r.mutex); // waits out a reclaim that may be using tc
            std::erase(r.threads, tc);
        }
        tc->release_all(); // out of the registry: no reclaimer can reach it any more
        delete tc;
    }
};
thread_local ThreadCachesReaper thread_caches_reaper;

// This thread's caches, made on first use; null when the thread is exiting or caching is not
// supported. Never called inside a window (it may take the registry's mutex).
ThreadSlotCaches *this_thread_caches() noexcept {
    if (ThreadSlotCaches *tc = thread_slot_caches)
        return tc;
    if (thread_caches_closed || !caching_supported())
        return nullptr;
    auto *tc = new (std::nothrow) ThreadSlotCaches;
    if (!tc)
        return nullptr;
    try {
        [[maybe_unused]] ThreadCachesReaper *reaper = &thread_caches_reaper; // registers it
        auto &r = cache_registry();
        std::lock_guard lock(r.mutex);
        r.threads.push_back(tc);
    } catch (...) {
        delete tc;
        return nullptr;
    }
    thread_slot_caches = tc;
    return tc;
}

} // namespace

void ThreadSlotCaches::release_all() noexcept {
    for (auto &c : caches) {
        uint32_t n = c.count.load(std::memory_order_relaxed);
        c.count.store(0, std::memory_order_relaxed);
        c.pool.store(nullptr, std::memory_order_relaxed);
        MemoryPool::release_uncached(c.items, n);
    }
}

SlotCache &MemoryPool::cache_in(ThreadSlotCaches &tc, Slot **evicted,
                                size_t &n_evicted) noexcept {
    n_evicted = 0;
    if (SlotCache *c = tc.find(this))
        return *c;
    SlotCache *c = nullptr;
    for (auto &e : tc.caches)
        if (e.count.load(std::memory_order_relaxed) == 0) {
            c = &e; // another pool's, empty: nothing of it to give back
            break;
        }
    if (!c) {
        c = &tc.caches[tc.next_victim++ % ThreadSlotCaches::pools];
        n_evicted = c->count.load(std::memory_order_relaxed);
        std::copy(c->items, c->items + n_evicted, evicted);
        c->count.store(0, std::memory_order_relaxed);
    }
    c->pool.store(this, std::memory_order_relaxed);
    // For loan()'s look into other threads' caches (a hint; see there).
    if (!maybe_cached_.load(std::memory_order_relaxed))
        maybe_cached_.store(true, std::memory_order_relaxed);
    return *c;
}

size_t MemoryPool::reclaim_cached() noexcept {
    if (!cache_limit_)
        return 0;
    auto &r = cache_registry();
    std::lock_guard lock(r.mutex);
    if (r.threads.empty())
        return 0;
    // Dekker's handshake with every owner (memory_pool.hpp): stop them, make the stop visible
    // to every CPU, then wait out the windows that began before it.
    for (ThreadSlotCaches *tc : r.threads)
        tc->stopped.store(1, window_store_order);
    process_wide_barrier();
    size_t moved = 0;
    for (ThreadSlotCaches *tc : r.threads) {
        const int64_t start = now_ns();
        while (tc->busy.load(window_load_order) != 0)
            spin_step(now_ns() - start); // an owner descheduled inside its window
        for (auto &c : tc->caches) {
            if (c.pool.load(std::memory_order_relaxed) != this)
                continue;
            uint32_t n = c.count.load(std::memory_order_relaxed);
            c.count.store(0, std::memory_order_relaxed);
            // Forgotten, so that the owner's next use goes through cache_in and sets the hint.
            c.pool.store(nullptr, std::memory_order_relaxed);
            release_uncached(c.items, n); // the caller keeps the pool alive (a reference)
            moved += n;
        }
    }
    maybe_cached_.store(false, std::memory_order_relaxed);
    for (ThreadSlotCaches *tc : r.threads)
        tc->stopped.store(0, std::memory_order_release);
    return moved;
}

size_t MemoryPool::cached() const noexcept {
    if (!cache_limit_)
        return 0;
    auto &r = cache_registry();
    std::lock_guard lock(r.mutex);
    size_t n = 0;
    for (ThreadSlotCaches *tc : r.threads)
        for (auto &c : tc->caches)
            if (c.pool.load(std::memory_order_relaxed) == this)
                n += c.count.load(std::memory_order_relaxed);
    return n;
}

Slot *MemoryPool::claim_uncached() noexcept {
    size_t i = bitmap_.acquire();
    if (i == AtomicBitmap::npos)
        return nullptr;
    slots_[i].reset_refs(1);
    return &slots_[i];
}

Slot *MemoryPool::try_loan_slow() noexcept {
    ThreadSlotCaches *tc = cache_limit_ ? this_thread_caches() : nullptr;
    if (!tc)
        return claim_uncached();
    Slot *got = nullptr;
    bool cached = false;
    Slot *evicted[SlotCache::max_slots];
    size_t n_evicted = 0;
    if (tc->enter() && caching_allowed()) {
        cached = true;
        SlotCache &c = cache_in(*tc, evicted, n_evicted);
        uint32_t n = c.count.load(std::memory_order_relaxed);
        if (n == 0) { // refill: a batch of one bitmap word in one step
            size_t got_idx[SlotCache::max_slots];
            n = static_cast<uint32_t>(bitmap_.acquire_many(cache_batch_, got_idx));
            for (uint32_t i = 0; i < n; ++i)
                c.items[i] = &slots_[got_idx[i]];
        }
        if (n)
            got = c.items[--n];
        c.count.store(n, std::memory_order_relaxed);
    }
    tc->leave();
    release_uncached(evicted, n_evicted); // another pool's slots
    if (!cached)
        return claim_uncached(); // someone waits, the pool is closing, or a reclaim is on
    if (got)
        got->reset_refs(1);
    return got;
}

void MemoryPool::give_back_slow(Slot &slot) noexcept {
    ThreadSlotCaches *tc = cache_limit_ ? this_thread_caches() : nullptr;
    if (tc) {
        bool cached = false;
        Slot *evicted[SlotCache::max_slots], *flushed[SlotCache::max_slots];
        size_t n_evicted = 0, n_flushed = 0;
        if (tc->enter() && caching_allowed()) {
            cached = true;
            SlotCache &c = cache_in(*tc, evicted, n_evicted);
            uint32_t n = c.count.load(std::memory_order_relaxed);
            if (n >= cache_limit_) { // full: those released longest ago go to the bitmap
                n_flushed = cache_batch_;
                std::copy(c.items, c.items + n_flushed, flushed);
                std::copy(c.items + n_flushed, c.items + n, c.items);
                n -= static_cast<uint32_t>(n_flushed);
            }
            c.items[n] = &slot;
            c.count.store(n + 1, std::memory_order_relaxed);
        }
        tc->leave();
        if (cached) {
            release_uncached(evicted, n_evicted); // another pool's
            release_uncached(flushed, n_flushed); // ours, alive: `slot` is still claimed
            return;
        }
    }
    Slot *one = &slot;
    release_uncached(&one, 1);
}

void MemoryPool::release_uncached(Slot *const *slots, size_t n) noexcept {
    for (size_t i = 0; i < n;) {
        // Everything the release needs is read before it: past its step the pool (and the
        // slot) may be gone, unless the bitmap says a waiter or a closed pool awaits us. The
        // slots not yet released keep the pool alive until their turn.
        std::atomic<uint64_t> *word = slots[i]->word_;
        MemoryPool *pool = slots[i]->pool_;
        size_t index = slots[i]->index_;
        uint64_t mask = 0;
        for (; i < n && slots[i]->word_ == word; ++i)
            mask |= slots[i]->mask_;
        AtomicBitmap::Released r = AtomicBitmap::release_in(*word, mask);
        if (r.waker || r.closed) [[unlikely]]
            pool->after_release(index, r);
    }
}

// ----------------------------------------------------------------------------------------------

size_t Slot::size() const noexcept { return pool_->slot_size(); }

void Slot::last_reference_dropped() noexcept { MemoryPool::give_back(*this); }

Ref<MemoryPool> MemoryPool::create(Ref<Segment> segment, size_t slot_size) {
    if (!segment)
        fail(Status::invalid, "segment is NULL");
    if (slot_size == 0)
        fail(Status::invalid, "slot_size is 0");
    if (slot_size > segment->size())
        fail(Status::invalid, "slot_size " + std::to_string(slot_size) +
                                  " is larger than the segment (" +
                                  std::to_string(segment->size()) + " bytes)");
    if (segment->readonly())
        fail(Status::unsupported, "the segment is read-only; a pool needs writable memory");
    size_t capacity = segment->size() / slot_size;
    if (capacity > UINT32_MAX)
        fail(Status::invalid, "slot_size " + std::to_string(slot_size) + " gives " +
                                  std::to_string(capacity) + " slots, more than 2^32");
    return Ref<MemoryPool>::adopt(new MemoryPool(std::move(segment), slot_size, capacity));
}

// A thread may cache a quarter of the slots (at most SlotCache::max_slots), refilled and flushed
// half a cache at a time. A thread that alternates loans and releases keeps about half a cache,
// as many as it kept when a cache held an eighth: a few threads' caches leave most of the pool
// in the bitmap, where every thread finds it without a reclaim. The other half is room for
// bursts: with an eighth, a burst of 64 loans then 64 releases cost 1.22-1.27x what it costs
// now from a 65-slot pool, 1.2x from a 128-slot pool (bench/compare_builds.cpp, both libraries
// in one process; single loans the same). Pools of fewer than 8 slots are not cached.
MemoryPool::MemoryPool(Ref<Segment> segment, size_t slot_size, size_t capacity)
    : segment_(std::move(segment)), slot_size_(slot_size), capacity_(capacity),
      cache_limit_(caching_supported() && capacity >= 8
                       ? static_cast<uint32_t>(std::min<size_t>(SlotCache::max_slots, capacity / 4))
                       : 0),
      cache_batch_(std::max<uint32_t>(1, cache_limit_ / 2)), bitmap_(capacity),
      slots_(new Slot[capacity]) {
    for (size_t i = 0; i < capacity; ++i) {
        slots_[i].pool_ = this;
        slots_[i].index_ = i;
        slots_[i].data_ = segment_->mutable_data() + i * slot_size;
        slots_[i].word_ = &bitmap_.word_of(i);
        slots_[i].mask_ = AtomicBitmap::mask_of(i);
        slots_[i].reset_refs(0);
    }
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
    if (wake_fd_ < 0)
        fail_errno("eventfd", errno);
}

MemoryPool::~MemoryPool() {
    if (wake_fd_ >= 0)
        ::close(wake_fd_);
}

size_t MemoryPool::available() const noexcept {
    collect_all_returns();
    return std::min(capacity_, bitmap_.count_free() + cached());
}

bool MemoryPool::owns(const std::byte *p, size_t len) const noexcept {
    const std::byte *base = segment_->data();
    return p >= base && len <= capacity_ * slot_size_ &&
           static_cast<size_t>(p - base) <= capacity_ * slot_size_ - len;
}

void MemoryPool::wake_waiter(uint64_t slots) noexcept {
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &slots, sizeof slots);
}

void MemoryPool::after_release(size_t index, AtomicBitmap::Released r) noexcept {
    if (r.waker) {
        wake_waiter(r.count);
        if (bitmap_.waker_done(index))
            report_done(1); // the owner left while we were waking
    } else if (r.closed) {
        report_done(r.count);
    }
}

void MemoryPool::report_done(uint32_t n) noexcept {
    if (outstanding_.fetch_sub(n, std::memory_order_acq_rel) == n)
        delete this;
}

void MemoryPool::last_reference_dropped() noexcept {
    // No owner can loan any more. Stop caching this pool, and take its slots out of every
    // thread's cache: a cached slot is claimed, so close() would count it as out, and a thread
    // that never loans or releases again would never report it (nor would it ever be deleted).
    // After the reclaim no cache holds one, and none takes one again (every window checks
    // cache_off_ after the stop the reclaim made visible), and the reclaim forgets the pool in
    // every cache: no thread reaches the pool through a cache after it is gone, and a new pool
    // made at its address is never mistaken for it.
    cache_off_.fetch_or(off_closed, std::memory_order_seq_cst);
    reclaim_cached();
    // Count what is still out, then take the bias away.
    auto counted = static_cast<int64_t>(bitmap_.close());
    if (outstanding_.fetch_add(counted - open_bias, std::memory_order_acq_rel) ==
        open_bias - counted)
        delete this;
}

// A waiter must never sleep while a free slot sits in some thread's cache. The first waiter
// marks the bitmap words waiting (every release to the bitmap from then on wakes a waiter) and
// sets cache_off_ (no window that begins after the reclaim's barrier caches a slot of this
// pool or refills from it: releases go to the bitmap, and wake), then reclaims every cache
// (the slots cached before, and those a window that straddled the barrier left, go to the
// bitmap, waking whoever sleeps already). So while anyone waits, no cache holds a slot of this
// pool for longer than the first waiter's reclaim takes, and every slot leaving a cache in that
// time is a release that wakes. Later waiters find cache_off_ set and need no reclaim.
void MemoryPool::start_waiting() {
    bool first;
    {
        std::lock_guard lock(wait_mutex_);
        first = waiters_++ == 0;
        if (first) {
            bitmap_.set_waiting(true);
            cache_off_.fetch_or(off_waiting, std::memory_order_seq_cst);
        }
    }
    if (first)
        reclaim_cached();
}

void MemoryPool::stop_waiting() noexcept {
    std::lock_guard lock(wait_mutex_);
    if (--waiters_ == 0) {
        bitmap_.set_waiting(false);
        cache_off_.fetch_and(~off_waiting, std::memory_order_seq_cst);
    }
}

Slot *MemoryPool::loan(int64_t timeout_ns) {
    if (Slot *s = try_loan())
        return s;
    collect_all_returns();
    if (Slot *s = try_loan())
        return s;
    // Free slots may sit in other threads' caches. maybe_cached_ is set whenever a thread
    // starts a cache of this pool (inside its window, before it can put a slot in it) and
    // cleared only by a reclaim that emptied every cache: read after whatever made us loan
    // (a release we were told about happens-before this), it is never a stale "no".
    if (maybe_cached_.load(std::memory_order_acquire) && reclaim_cached() != 0)
        if (Slot *s = try_loan())
            return s;
    if (timeout_ns == 0)
        fail(Status::would_block, "every one of the pool's " + std::to_string(capacity_) +
                                      " slots is out");
    const int64_t deadline = deadline_for(timeout_ns);
    if (Slot *s = spin_for_slot(deadline))
        return s;
    return sleep_for_slot(deadline, timeout_ns);
}

Slot *MemoryPool::spin_for_slot(int64_t deadline_ns) {
    // A slot lent to a busy peer usually comes back within microseconds, far sooner than a
    // sleep and a wake-up take. A peer on another CPU returns it while we pause (spin_step's
    // first 2 us); a peer on our CPU only once we yield, so pausing first costs every such wait
    // 2 us (one-core streaming with 8 slots: every 8th frame). Which case we are in is learnt
    // from the last wait: its slot came during the pauses, or only after yields. A wait that
    // yields from the start cannot tell, so every 16th wait pauses first again to re-learn.
    constexpr int64_t max_spin_ns = 50'000;
    constexpr int64_t pause_phase_ns = 2'000; // spin_step's
    auto sources = snapshot_sources();
    const bool probe = spin_waits_.fetch_add(1, std::memory_order_relaxed) % 16 == 0;
    const bool yield_first = !probe && spin_yields_first_.load(std::memory_order_relaxed);
    const int64_t spin_start = now_ns();
    const int64_t spin_until = std::min(deadline_ns, spin_start + max_spin_ns);
    int64_t now = spin_start;
    do {
        for (auto &src : sources)
            src->collect(false);
        if (Slot *s = try_loan()) {
            if (!yield_first) // a wait that paused first tells which case we are in
                spin_yields_first_.store(now - spin_start >= pause_phase_ns,
                                         std::memory_order_relaxed);
            return s;
        }
        if (yield_first)
            ::sched_yield();
        else
            spin_step(now - spin_start);
        now = now_ns();
    } while (now < spin_until);
    return nullptr;
}

Slot *MemoryPool::sleep_for_slot(int64_t deadline_ns, int64_t timeout_ns) {
    // From here on every release in the pool wakes us (see AtomicBitmap): mark the words, then
    // look once more (below), so that a release made in between is not slept through.
    start_waiting();
    struct Leave {
        MemoryPool &pool;
        ~Leave() { pool.stop_waiting(); }
    } leave{*this};

    std::vector<pollfd> fds;
    std::vector<Ref<ReturnSource>> sources;
    // However we leave, the sources we asked to ring the socket (set_waiting(true) below) are
    // told that this pool no longer waits.
    struct UnmarkSources {
        std::vector<Ref<ReturnSource>> &s;
        ~UnmarkSources() {
            for (auto &src : s)
                src->set_waiting(false);
        }
    } unmark_sources{sources};
    for (;;) {
        if (Slot *s = try_loan())
            return s;
        for (auto &src : sources)
            src->set_waiting(false);
        sources = snapshot_sources();
        // Ask borrowers to ring the socket from now on, then look once more, so that a return
        // made in between is not slept through.
        for (auto &src : sources)
            src->set_waiting(true);
        for (auto &src : sources)
            src->collect(true);
        if (Slot *s = try_loan())
            return s;

        fds.clear();
        fds.push_back({wake_fd_, POLLIN, 0});
        for (auto &src : sources)
            src->add_wait_fds(fds);
        const int64_t left = timeout_left(deadline_ns, now_ns());
        if (left == 0)
            fail(Status::timeout, "no slot came back within " + std::to_string(timeout_ns) +
                                      " ns (all " + std::to_string(capacity_) + " are out)");
        const timespec ts = timespec_from_ns(left < 0 ? 0 : left);
        int rc = ::ppoll(fds.data(), fds.size(), left < 0 ? nullptr : &ts, nullptr);
        if (rc < 0 && errno != EINTR)
            fail_errno("ppoll", errno);
        if (fds[0].revents & POLLIN) {
            uint64_t v;
            [[maybe_unused]] ssize_t n = ::read(wake_fd_, &v, sizeof v);
        }
    }
}

} // namespace px
