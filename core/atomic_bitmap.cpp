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
