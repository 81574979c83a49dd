// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/ipc/peer_watch.hpp"

#include <atomic>
#include <cerrno>
#include <poll.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/error.hpp"

namespace px::ipc {

namespace {

std::atomic<uint64_t> generation{0};

void bump_generation() noexcept { generation.fetch_add(1, std::memory_order_relaxed); }

// Registered once, when the first channel end asks (a static's initialiser runs once).
uint64_t install_fork_handler() noexcept {
    ::pthread_atfork(nullptr, nullptr, bump_generation);
    return 0;
}

} // namespace

uint64_t fork_generation() noexcept {
    static const uint64_t installed = install_fork_handler();
    (void)installed;
    return generation.load(std::memory_order_relaxed);
}

void PeerWatch::follow(pid_t pid) {
    if (pid == pid_ && (pidfd_.fd >= 0 || vanished_))
        return;
    pid_ = pid;
    vanished_ = false;
    retry_ = false;
    pidfd_.reset();
    if (pid <= 0 || pid == ::getpid())
        return; // unknown (the socket's hang-up still tells), or ourselves
    retry_ = !open_pidfd();
}

bool PeerWatch::open_pidfd() noexcept {
    const long fd = ::syscall(SYS_pidfd_open, pid_, 0);
    if (fd >= 0) {
        pidfd_.reset(static_cast<int>(fd));
        return true;
    }
    const int err = errno;
    if (err == ESRCH)
        vanished_ = true; // exited (and reaped) before we looked: gone
    // EMFILE/ENFILE: not now. Anything else (ENOSYS: an old kernel, EPERM: a sandbox): no
    // pidfds here, and hang-ups alone tell.
    return err != EMFILE && err != ENFILE;
}

bool PeerWatch::gone() noexcept {
    if (retry_)
        retry_ = !open_pidfd();
    if (vanished_)
        return true;
    if (pidfd_.fd < 0)
        return false;
    pollfd p{pidfd_.fd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

} // namespace px::ipc
