// SPDX-License-Identifier: Apache-2.0 OR MIT
// SCM_RIGHTS helpers: one message, optionally carrying file descriptors, over a connected
// AF_UNIX socket. Received fds are close-on-exec; truncated control data is a protocol error
// (unless this process ran out of fds: then it is Status::io) and every fd that did arrive is
// closed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <sys/un.h>
#include <vector>

namespace px::ipc {

constexpr size_t max_fds_per_message = 4;

// Sends `len` bytes with `nfds` fds attached (MSG_NOSIGNAL: a gone peer is Status::closed).
// Blocking socket semantics; EINTR is retried.
void send_message(int socket_fd, const void *data, size_t len, const int *fds, size_t nfds);

struct Received {
    size_t len = 0;           // bytes received (0 with closed = true at end of stream)
    bool closed = false;      // the peer has gone
    bool would_block = false; // with `dontwait`: nothing was there (not an error: no throw)
    std::vector<int> fds;    // owned by the caller
};

// Receives one message into `buf`. Refuses (Status::protocol, fds closed) truncated data or
// control, more than `max_fds` fds, anything that is not SCM_RIGHTS, and an empty message
// without fds (only the end of the stream reads as 0 bytes with closed = true). Control data
// truncated because this process has no fd left is Status::io naming RLIMIT_NOFILE (fds
// closed too: the message is lost, so the connection cannot go on). With `dontwait` and nothing
// there, it answers would_block = true.
Received recv_message(int socket_fd, void *buf, size_t cap, size_t max_fds, bool dontwait);

// Waits until `fd` is readable (or hung up): true when ready, false on timeout.
// timeout_ns < 0 waits forever.
bool wait_readable(int fd, int64_t timeout_ns);

// The address of a socket path; invalid when empty or longer than sun_path holds.
sockaddr_un unix_address(const std::string &path);

// Closes every fd in the list (and clears it).
void close_all(std::vector<int> &fds) noexcept;

} // namespace px::ipc
