// SPDX-License-Identifier: Apache-2.0 OR MIT
// Closes an fd at the end of a scope unless release() handed it on. Movable, never copied
// (a copy would close the fd twice).
#pragma once

#include <unistd.h>
#include <utility>
#include <vector>

namespace px {

// Whether a DeferCloses on this thread took `fd`, to be closed later by its owner.
bool defer_close(int fd) noexcept;

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
        if (fd >= 0 && !defer_close(fd))
            ::close(fd);
        fd = f;
    }
};

// While one lives on a thread, an fd an FdGuard closes there is handed to `sink` instead (when
// it has room: reserve it first), and the caller closes it later. Closing a departed peer's
// sockets and pidfd takes 5-15 us each on a loaded VM: a publisher taking a departed
// subscriber down closes them one per later call.
class DeferCloses {
public:
    explicit DeferCloses(std::vector<int> &sink) noexcept;
    ~DeferCloses();
    DeferCloses(const DeferCloses &) = delete;
    DeferCloses &operator=(const DeferCloses &) = delete;

private:
    std::vector<int> *outer_;
};

} // namespace px
