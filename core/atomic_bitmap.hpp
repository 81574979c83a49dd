// SPDX-License-Identifier: Apache-2.0 OR MIT
// AtomicBitmap: lock-free set of slot indices. A set bit is a slot in use. Acquire finds a zero
// bit with tzcnt, starting at the word where this thread last found one, and claims it with CAS;
// release clears it with one CAS. Index bits past `size` are set for good, so they are never
// handed out. The hint is per thread, and threads start on different words, so that threads
// loaning from one pool mostly work on words (cache lines) of their own.
//
// Each 64-bit word holds 56 indices; its top 8 bits are flags of the owner's protocol (see
// MemoryPool), so that one atomic step both frees an index and tells the releaser what it must
// still do:
//   waiting   someone sleeps until an index is freed: the releaser becomes a "waker", counted
//             in the word's waker field until it calls waker_done();
//   closed    the owner is gone: whoever frees an index (or finishes waking) reports it, and
//             the last report ends the owner's life.
// acquire() and release() are defined in this header: they are most of a pool loan and of a
// slot release, and the C entry points that call them live in another translation unit
// (bench/bench_pool.cpp measures the difference).
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/cpu_relax.hpp"

namespace px {

class AtomicBitmap {
public:
    static constexpr size_t npos = SIZE_MAX;
    static constexpr size_t indices_per_word = 56;

    explicit AtomicBitmap(size_t size);

    // Claims a free index, or npos when every one is taken. Never returns an index that is
    // already claimed; never returns npos when an index is free and no one else is claiming.
    size_t acquire() noexcept;
    // Claims up to `max` free indices of one word in one atomic step (a pool's thread cache
    // refills with it) and writes them to `out`; 0 when every index is taken.
    size_t acquire_many(size_t max, size_t *out) noexcept;

    struct Released {
        bool freed = false;  // false: no index was claimed (a double release; no change)
        bool waker = false;  // the word was marked waiting: wake, then call waker_done()
        bool closed = false; // the word was closed: each freed index is one the closer counted
        uint32_t count = 0;  // how many indices this step freed
    };
    // Frees `index` in one atomic step and reports the word's flags as they were.
    Released release(size_t index) noexcept;
    // The same, given where the index lives (word_of, mask_of), for callers that keep them.
    // `mask` may hold several indices of the word (mask_of of each, or-ed): they are freed in
    // one step, and only those that were claimed count.
    static Released release_in(std::atomic<uint64_t> &word, uint64_t mask) noexcept;
    std::atomic<uint64_t> &word_of(size_t index) const noexcept {
        return bits_[index / indices_per_word].v;
    }
    static uint64_t mask_of(size_t index) noexcept {
        return uint64_t{1} << (index % indices_per_word);
    }
    // Ends a wake-up started by release(); true when the word was closed meanwhile (the waker
    // was counted by close()).
    bool waker_done(size_t index) noexcept;
    // Marks every word waiting, or clears the mark. Callers serialize these (a mutex).
    void set_waiting(bool waiting) noexcept;
    // Marks every word closed; returns how many indices were claimed and wakers active in each
    // word at the instant it was closed, summed: the releases and waker_done() calls that will
    // report `closed`.
    size_t close() noexcept;

    bool is_set(size_t index) const noexcept;
    size_t size() const noexcept { return size_; }
    size_t count_free() const noexcept;

private:
    static constexpr uint64_t index_mask = (uint64_t{1} << indices_per_word) - 1;
    static constexpr uint64_t waker_one = uint64_t{1} << indices_per_word;
    static constexpr uint64_t waker_mask = uint64_t{63} << indices_per_word;
    static constexpr uint64_t flag_closed = uint64_t{1} << 62;
    static constexpr uint64_t flag_waiting = uint64_t{1} << 63;

    size_t size_;
    size_t words_;
    uint64_t padding_; // index bits of the last word past `size` (set for good)
    struct alignas(64) Word { // a cache line each: threads on different words share nothing
        std::atomic<uint64_t> v{0};
    };
    std::unique_ptr<Word[]> bits_;
};

// The word this thread last claimed an index in (of any bitmap: a hint, checked against the
// bitmap's size). A new thread starts at its own number (first_word_hint), so that threads
// spread out. Initial-exec TLS: one instruction to read, where the default model of a shared
// library costs a call to __tls_get_addr on every loan (8 bytes of the static TLS space that
// glibc keeps for libraries loaded with dlopen).
__attribute__((tls_model("initial-exec"))) inline thread_local size_t thread_word_hint = SIZE_MAX;
size_t first_word_hint() noexcept;

// The word this thread starts looking at in a bitmap of `words` words.
inline size_t start_word(size_t words) noexcept {
    // A copy, written back by name: GCC's UBSan takes a reference to this initial-exec variable,
    // in the PIC code of the library, for a null pointer (a false "store to null pointer").
    size_t hint = thread_word_hint;
    if (hint == SIZE_MAX) [[unlikely]]
        thread_word_hint = hint = first_word_hint();
    return hint < words ? hint : hint % (words ? words : 1);
}

inline size_t AtomicBitmap::acquire() noexcept {
    const size_t start = start_word(words_);
    for (size_t n = 0; n < words_; ++n) {
        size_t w = start + n < words_ ? start + n : start + n - words_;
        uint64_t word = bits_[w].v.load(std::memory_order_relaxed);
        while ((~word & index_mask) != 0) {
            unsigned bit = static_cast<unsigned>(std::countr_zero(~word & index_mask));
            uint64_t mask = uint64_t{1} << bit;
            // acq_rel: the slot's previous owner's writes happen-before our use of it.
            if (bits_[w].v.compare_exchange_weak(word, word | mask, std::memory_order_acq_rel,
                                               std::memory_order_relaxed)) {
                thread_word_hint = w;
                return w * indices_per_word + bit;
            }
        }
    }
    return npos;
}

inline AtomicBitmap::Released AtomicBitmap::release(size_t index) noexcept {
    if (index >= size_)
        return Released{};
    return release_in(word_of(index), mask_of(index));
}

inline AtomicBitmap::Released AtomicBitmap::release_in(std::atomic<uint64_t> &word,
                                                       uint64_t mask) noexcept {
    Released r;
    uint64_t old = word.load(std::memory_order_relaxed);
    uint64_t claimed;
    for (;;) {
        claimed = old & mask & index_mask;
        if (!claimed)
            return Released{}; // not claimed (a double release): nothing changes
        uint64_t next = old & ~claimed;
        // Nobody waits once the word is closed.
        r.waker = (old & (flag_waiting | flag_closed)) == flag_waiting;
        if (r.waker) {
            if ((old & waker_mask) == waker_mask) [[unlikely]] {
                cpu_relax(); // 63 wakers at work in this word: wait for room
                old = word.load(std::memory_order_relaxed);
                continue;
            }
            next += waker_one;
        }
        // acq_rel: our writes to the slot happen-before its next owner's use; acquire, so that
        // a closed word's last report sees everything the closer did.
        if (word.compare_exchange_weak(old, next, std::memory_order_acq_rel,
                                       std::memory_order_relaxed))
            break;
    }
    r.freed = true;
    r.closed = (old & flag_closed) != 0;
    r.count = static_cast<uint32_t>(std::popcount(claimed));
    return r;
}

} // namespace px
