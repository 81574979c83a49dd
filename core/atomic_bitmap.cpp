// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/atomic_bitmap.hpp"

#include <atomic>
#include <bit>

namespace px {

size_t first_word_hint() noexcept {
    static std::atomic<size_t> threads{0};
    return threads.fetch_add(1, std::memory_order_relaxed) % 4096;
}

AtomicBitmap::AtomicBitmap(size_t size)
    : size_(size), words_((size + indices_per_word - 1) / indices_per_word),
      padding_(size % indices_per_word ? index_mask & (index_mask << (size % indices_per_word))
                                       : 0),
      bits_(new Word[words_ ? words_ : 1]) {
    for (size_t w = 0; w < words_; ++w)
        bits_[w].v.store(0, std::memory_order_relaxed);
    if (words_)
        bits_[words_ - 1].v.store(padding_, std::memory_order_relaxed);
}

size_t AtomicBitmap::acquire_many(size_t max, size_t *out) noexcept {
    if (max == 0)
        return 0;
    const size_t start = start_word(words_);
    for (size_t n = 0; n < words_; ++n) {
        size_t w = start + n < words_ ? start + n : start + n - words_;
        uint64_t word = bits_[w].v.load(std::memory_order_relaxed);
        while ((~word & index_mask) != 0) {
            // The lowest `max` free indices of the word.
            uint64_t free = ~word & index_mask, take = 0;
            for (size_t k = 0; k < max && free; ++k) {
                take |= free & (~free + 1);
                free &= free - 1;
            }
            // acq_rel, as in acquire(): the previous owners' writes happen-before our use.
            if (bits_[w].v.compare_exchange_weak(word, word | take, std::memory_order_acq_rel,
                                               std::memory_order_relaxed)) {
                thread_word_hint = w;
                size_t got = 0;
                for (; take; take &= take - 1)
                    out[got++] = w * indices_per_word + static_cast<size_t>(std::countr_zero(take));
                return got;
            }
        }
    }
    return 0;
}

bool AtomicBitmap::waker_done(size_t index) noexcept {
    uint64_t old =
        bits_[index / indices_per_word].v.fetch_sub(waker_one, std::memory_order_acq_rel);
    return (old & flag_closed) != 0;
}

void AtomicBitmap::set_waiting(bool waiting) noexcept {
    for (size_t w = 0; w < words_; ++w) {
        if (waiting)
            bits_[w].v.fetch_or(flag_waiting, std::memory_order_acq_rel);
        else
            bits_[w].v.fetch_and(~flag_waiting, std::memory_order_acq_rel);
    }
}

size_t AtomicBitmap::close() noexcept {
    size_t out = 0;
    for (size_t w = 0; w < words_; ++w) {
        uint64_t old = bits_[w].v.fetch_or(flag_closed, std::memory_order_acq_rel);
        uint64_t claimed = old & index_mask & ~(w + 1 == words_ ? padding_ : 0);
        out += static_cast<size_t>(std::popcount(claimed)) +
               static_cast<size_t>((old & waker_mask) / waker_one);
    }
    return out;
}

bool AtomicBitmap::is_set(size_t index) const noexcept {
    if (index >= size_)
        return false;
    return bits_[index / indices_per_word].v.load(std::memory_order_acquire) &
           (uint64_t{1} << (index % indices_per_word));
}

size_t AtomicBitmap::count_free() const noexcept {
    size_t free = 0;
    for (size_t w = 0; w < words_; ++w)
        free += static_cast<size_t>(
            std::popcount(~bits_[w].v.load(std::memory_order_relaxed) & index_mask));
    return free;
}

} // namespace px
