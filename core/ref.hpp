// SPDX-License-Identifier: Apache-2.0 OR MIT
// Intrusive reference counting. Segments, pools, slots, channels and listeners are RefCounted,
// and their C handles are the core objects themselves (capi/handles.hpp), so a retain or a
// release of such a handle is one atomic operation and a C++ owner (Ref<T>) shares its count.
// A Buffer is not RefCounted: it is a value (core/buffer.hpp) that holds a reference to its
// segment and one to its lease (what keeps its memory lent: a slot of a pool here, or a slot
// a peer process lent us). Its C handle is one heap-allocated Buffer per handle:
// px_buffer_clone copies it, px_buffer_release destroys it.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

namespace px {

class RefCounted {
public:
    RefCounted() = default;
    RefCounted(const RefCounted &) = delete;
    RefCounted &operator=(const RefCounted &) = delete;

    void add_ref() const noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    // Drops one reference; the last one runs last_reference_dropped() (default: delete).
    void release_ref() const noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
            const_cast<RefCounted *>(this)->last_reference_dropped();
    }
    uint32_t ref_count() const noexcept { return refs_.load(std::memory_order_acquire); }

protected:
    virtual ~RefCounted() = default;
    virtual void last_reference_dropped() noexcept { delete this; }
    // For objects whose count is reused (pool slots): starts a fresh life with one reference.
    void reset_refs(uint32_t n) noexcept { refs_.store(n, std::memory_order_relaxed); }

private:
    mutable std::atomic<uint32_t> refs_{1};
};

// Owning pointer to a RefCounted. Ref<T>::adopt takes over an existing reference.
template <class T> class Ref {
public:
    Ref() noexcept = default;
    Ref(std::nullptr_t) noexcept {}
    explicit Ref(T *p) noexcept : p_(p) {
        if (p_)
            p_->add_ref();
    }
    static Ref adopt(T *p) noexcept {
        Ref r;
        r.p_ = p;
        return r;
    }
    template <class... Args> static Ref make(Args &&...args) {
        return adopt(new T(std::forward<Args>(args)...));
    }
    Ref(const Ref &o) noexcept : Ref(o.p_) {}
    Ref(Ref &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    template <class U> Ref(const Ref<U> &o) noexcept : Ref(static_cast<T *>(o.get())) {}
    template <class U> Ref(Ref<U> &&o) noexcept : p_(o.detach()) {}
    Ref &operator=(Ref o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    ~Ref() {
        if (p_)
            p_->release_ref();
    }
    T *get() const noexcept { return p_; }
    T *operator->() const noexcept { return p_; }
    T &operator*() const noexcept { return *p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }
    // Gives up ownership without dropping the reference (for handing a handle to C).
    T *detach() noexcept { return std::exchange(p_, nullptr); }

private:
    T *p_ = nullptr;
};

} // namespace px
