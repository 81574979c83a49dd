// SPDX-License-Identifier: Apache-2.0 OR MIT
// Which process is at the other end of a channel, and whether it still lives.
//
// A socket's hang-up is not enough to learn that a peer died: copies of its end survive in
// processes that inherited it (the parent that made a pair and forgot to release the child's
// end; a child the peer forked). So each end watches its peer's process with a pidfd
// (pidfd_open, Linux >= 5.3), which becomes readable when that process exits.
//
// The peer's process is the one that last used its end: the handshake names it, and an end used
// for the first time in a forked child announces its new pid (a hello record on the return
// socket, see ReturnOutbox::announce), which the other end follows.
#pragma once

#include <cstdint>
#include <sys/types.h>

#include "core/fd_guard.hpp"

namespace px::ipc {

class PeerWatch {
public:
    PeerWatch() = default;
    // Starts watching `pid`. No pidfd is needed (nor opened) for this very process: a pair's
    // ends in one process. A pid that no longer exists is a peer that has gone.
    void follow(pid_t pid);
    // True once the watched process has exited. Never blocks. A watch that could not be set up
    // (the process was out of fds) is tried again here.
    bool gone() noexcept;
    pid_t pid() const noexcept { return pid_; }
    // Readable when the watched process exits; -1 when nothing is watched.
    int fd() const noexcept { return pidfd_.fd; }

private:
    // Opens the pidfd; false when the process is out of fds (tried again later).
    bool open_pidfd() noexcept;

    pid_t pid_ = 0;
    FdGuard pidfd_{-1};
    bool retry_ = false;    // no pidfd for a foreign pid yet: out of fds when we tried
    bool vanished_ = false; // the pid was gone when we went to watch it
};

// Bumped in every child that fork() makes (a pthread_atfork handler): an end compares it with
// the value it saw last to learn that it now lives in a new process. One relaxed load.
uint64_t fork_generation() noexcept;

} // namespace px::ipc
