// SPDX-License-Identifier: Apache-2.0 OR MIT
// Closes an fd at the end of a scope unless release() handed it on. Movable, never copied
// (a copy would close the fd twice).
#pragma once

#include <unistd.h>
#include <utility>

namespace px {

struct FdGuard {
    int fd;
    FdGuard(int f = -1) noexcept : fd(f) {}
    FdGuard(const FdGuard &) = delete;
    FdGuard &operator=(const FdGuard &) = delete;
    FdGuard(FdGuard &&other) noexcept : fd(other.release()) {}
    FdGuard &operator=(FdGuard &&other) noexcept {
        if (this != &other) {
            reset();
            fd = other.release();
        }
        return *this;
    }
    ~FdGuard() { reset(); }
    int release() noexcept { return std::exchange(fd, -1); }
    void reset(int f = -1) noexcept {
        if (fd >= 0)
            ::close(fd);
        fd = f;
    }
};

} // namespace px
