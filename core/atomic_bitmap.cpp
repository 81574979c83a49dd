#include "core/atomic_bitmap.hpp"

#include <bit>

namespace px {

AtomicBitmap::AtomicBitmap(size_t size)
    : size_(size), words_((size + 63) / 64), bits_(new std::atomic<uint64_t>[words_ ? words_ : 1]) {
    for (size_t w = 0; w < words_; ++w)
        bits_[w].store(0, std::memory_order_relaxed);
    if (size % 64)
        bits_[words_ - 1].store(~uint64_t{0} << (size % 64), std::memory_order_relaxed);
}

size_t AtomicBitmap::acquire() noexcept {
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

bool AtomicBitmap::release(size_t index) noexcept {
    if (index >= size_)
        return false;
    uint64_t mask = uint64_t{1} << (index % 64);
    uint64_t old = bits_[index / 64].fetch_and(~mask, std::memory_order_seq_cst);
    return (old & mask) != 0;
}

bool AtomicBitmap::is_set(size_t index) const noexcept {
    if (index >= size_)
        return false;
    return bits_[index / 64].load(std::memory_order_acquire) & (uint64_t{1} << (index % 64));
}

size_t AtomicBitmap::count_free() const noexcept {
    size_t used = 0;
    for (size_t w = 0; w < words_; ++w)
        used += static_cast<size_t>(std::popcount(bits_[w].load(std::memory_order_relaxed)));
    size_t total = words_ * 64;
    return total - used;
}

} // namespace px
