// AtomicBitmap: lock-free set of slot indices. A set bit is a slot in use. Acquire finds a zero
// bit with tzcnt starting from a rotating hint and claims it with CAS; release clears it with
// fetch_and. Bits past `size` are set for good, so they are never handed out.
#pragma once

#include <atomic>
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

} // namespace px
