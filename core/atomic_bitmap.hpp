// AtomicBitmap: lock-free set of slot indices. A set bit is a slot in use. Acquire finds a zero
// bit with tzcnt starting from a rotating hint and claims it with CAS; release clears it with
// fetch_and. Bits past `size` are set for good, so they are never handed out.
// acquire() and release() are defined in this header: they are most of a pool loan and of a
// slot release, and the C entry points that call them live in another translation unit
// (bench/bench_pool.cpp measures the difference).
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace px {

class AtomicBitmap {
public:
    static constexpr size_t npos = SIZE_MAX;

    explicit AtomicBitmap(size_t size);

    // Claims a free index, or npos when every one is taken. Never returns an index that is
    // already claimed; never returns npos when an index is free and no one else is claiming.
    size_t acquire() noexcept;
    // Frees `index`; false when it was not claimed (a double release, which changes nothing).
    bool release(size_t index) noexcept;
    bool is_set(size_t index) const noexcept;
    size_t size() const noexcept { return size_; }
    size_t count_free() const noexcept;

private:
    size_t size_;
    size_t words_;
    std::unique_ptr<std::atomic<uint64_t>[]> bits_;
    std::atomic<size_t> hint_{0};
};

inline size_t AtomicBitmap::acquire() noexcept {
    size_t start = hint_.load(std::memory_order_relaxed);
    if (start >= words_)
        start = 0;
    for (size_t n = 0; n < words_; ++n) {
        size_t w = start + n < words_ ? start + n : start + n - words_;
        uint64_t word = bits_[w].load(std::memory_order_relaxed);
        while (~word != 0) {
            unsigned bit = static_cast<unsigned>(std::countr_zero(~word));
            uint64_t mask = uint64_t{1} << bit;
            // acq_rel: the slot's previous owner's writes happen-before our use of it.
            if (bits_[w].compare_exchange_weak(word, word | mask, std::memory_order_acq_rel,
                                               std::memory_order_relaxed)) {
                if (w != start)
                    hint_.store(w, std::memory_order_relaxed);
                return w * 64 + bit;
            }
        }
    }
    return npos;
}

inline bool AtomicBitmap::release(size_t index) noexcept {
    if (index >= size_)
        return false;
    uint64_t mask = uint64_t{1} << (index % 64);
    uint64_t old = bits_[index / 64].fetch_and(~mask, std::memory_order_seq_cst);
    return (old & mask) != 0;
}

} // namespace px
