// SPDX-License-Identifier: Apache-2.0 OR MIT
// Handle<T>: one reference to a px_* handle, owned by a Python object.
//
// The C API cannot protect a handle from being released while it is in use; a Python object
// must, because any thread can call close() at any time. Two counters, only ever touched with
// the GIL held, make that safe:
//  - users: calls in flight that released the GIL (recv, accept, a waiting loan...). close()
//    during such a call marks the handle closing, and the last of those calls releases it.
//  - exports: buffer-protocol views (memoryview, numpy arrays) over the handle's memory.
//    While any exist, close() raises BufferError instead of unmapping memory a view can read.
#pragma once

#include <cstdint>
#include <utility>

#include <pybind11/pybind11.h>

#include "errors.hpp"

namespace pxpy {

template <class T, void (*Release)(T *)> class Handle {
public:
    Handle() = default;
    explicit Handle(T *p) noexcept : ptr_(p) {}
    ~Handle() {
        if (ptr_)
            Release(ptr_);
    }
    Handle(const Handle &) = delete;
    Handle &operator=(const Handle &) = delete;

    bool is_open() const noexcept { return ptr_ && !closing_; }

    // The handle for a call made with the GIL held; `what` names the object for the error.
    T *get(const char *what) const {
        if (!is_open())
            raise_closed(what);
        return ptr_;
    }

    // Keeps the handle alive across a call that releases the GIL.
    class Lease {
    public:
        explicit Lease(Handle &h) : h_(&h) { ++h_->users_; }
        Lease(const Lease &) = delete;
        Lease &operator=(const Lease &) = delete;
        ~Lease() {
            if (--h_->users_ == 0 && h_->closing_)
                h_->drop();
        }
        T *get() const noexcept { return h_->ptr_; }

    private:
        Handle *h_;
    };

    Lease lease(const char *what) {
        get(what);
        return Lease(*this);
    }

    // Drops the reference (idempotent). BufferError while views are exported.
    void close(const char *what) {
        if (!is_open())
            return;
        refuse_if_exported(what);
        closing_ = true;
        if (users_ == 0)
            drop();
    }

    // Hands the reference to the caller (for calls that consume it, like px_slot_into_buffer).
    T *take(const char *what) {
        T *p = get(what);
        refuse_if_exported(what);
        if (users_ != 0)
            throw pybind11::buffer_error(std::string(what) + " is in use by another thread");
        ptr_ = nullptr;
        return p;
    }

    // Re-arms a released handle with a new reference (object recycling, see PyPool).
    bool can_reset() const noexcept { return !ptr_ && users_ == 0 && exports_ == 0; }
    void reset(T *p) noexcept {
        ptr_ = p;
        closing_ = false;
    }

    void add_export() noexcept { ++exports_; }
    void remove_export() noexcept { --exports_; }
    uint32_t exports() const noexcept { return exports_; }

private:
    void refuse_if_exported(const char *what) const {
        if (exports_ != 0)
            throw pybind11::buffer_error(
                std::string("cannot release ") + what + ": " + std::to_string(exports_) +
                " exported view(s) (memoryview, numpy array...) still use its memory; "
                "delete them first");
    }
    void drop() noexcept {
        T *p = std::exchange(ptr_, nullptr);
        closing_ = false;
        Release(p);
    }

    T *ptr_ = nullptr;
    uint32_t users_ = 0;
    uint32_t exports_ = 0;
    bool closing_ = false;
};

} // namespace pxpy
