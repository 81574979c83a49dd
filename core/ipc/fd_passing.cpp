// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/ipc/fd_passing.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.hpp"
#include "core/error.hpp"

namespace px::ipc {

sockaddr_un unix_address(const std::string &path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty())
        fail(Status::invalid, "socket path is empty");
    if (path.size() >= sizeof addr.sun_path)
        fail(Status::invalid, "socket path is " + std::to_string(path.size()) +
                                  " bytes; at most " + std::to_string(sizeof addr.sun_path - 1) +
                                  " fit");
    std::memcpy(addr.sun_path, path.data(), path.size());
    return addr;
}

void close_all(std::vector<int> &fds) noexcept {
    for (int fd : fds)
        ::close(fd);
    fds.clear();
}

void send_message(int socket_fd, const void *data, size_t len, const int *fds, size_t nfds) {
    if (nfds > max_fds_per_message)
        fail(Status::invalid, "at most " + std::to_string(max_fds_per_message) +
                                  " fds per message");
    iovec iov{const_cast<void *>(data), len};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_fds_per_message)];
    if (nfds > 0) {
        std::memset(control, 0, sizeof control);
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    for (;;) {
        ssize_t n = ::sendmsg(socket_fd, &msg, MSG_NOSIGNAL);
        if (n >= 0) {
            if (static_cast<size_t>(n) != len)
                fail(Status::io, "sendmsg sent " + std::to_string(n) + " of " +
                                     std::to_string(len) + " bytes");
            return;
        }
        if (errno == EINTR)
            continue;
        int err = errno;
        if (err == EPIPE || err == ECONNRESET || err == ENOTCONN)
            fail(Status::closed, "the peer has closed the connection (sendmsg: " +
                                     std::string(std::strerror(err)) + ")");
        if (err == EBADF || err == ENOTSOCK)
            fail(Status::invalid, "socket fd " + std::to_string(socket_fd) +
                                      " is not an open socket");
        fail_errno("sendmsg", err);
    }
}

namespace {

// Closes the fds a message brought unless they are handed to the caller: every way out of
// recv_message that throws (a refused message, bad_alloc while building the error) closes them.
struct ArrivedFds {
    std::vector<int> &fds;
    bool handed_over = false;
    ~ArrivedFds() {
        if (!handed_over)
            close_all(fds);
    }
};

// Calls fn(fd) for every fd of the SCM_RIGHTS control data; false when there was a control
// message of another kind.
template <class Fn> bool for_each_passed_fd(msghdr &msg, Fn fn) noexcept {
    bool only_rights = true;
    for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            only_rights = false;
            continue;
        }
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            fn(fd);
        }
    }
    return only_rights;
}

// Moves the fds of the control data into `fds`, which owns them from then on. Room is made
// first; if that throws (bad_alloc) they are closed straight from the control data, so that no
// fd is ever owned by nothing. False when there was a control message other than SCM_RIGHTS.
bool collect_fds(msghdr &msg, std::vector<int> &fds) {
    size_t count = 0;
    const bool only_rights = for_each_passed_fd(msg, [&](int) { ++count; });
    try {
        fds.reserve(fds.size() + count);
    } catch (...) {
        for_each_passed_fd(msg, [](int fd) { ::close(fd); });
        throw;
    }
    for_each_passed_fd(msg, [&](int fd) { fds.push_back(fd); }); // within the room: no throw
    return only_rights;
}

// The kernel truncates SCM_RIGHTS (MSG_CTRUNC) when our control buffer is too small (a peer
// sending too many fds) and also when this process has no fd number left for the next one
// (it installs fds until one fails). Called before the fds that did arrive are closed: at our
// limit they filled the last free numbers, so one more fd cannot be had. A dup is the very
// allocation the kernel failed; counting /proc/self/fd against the soft limit is not (fds
// numbered above a lowered limit count but take no number below it, and listing the directory
// needs an fd itself).
bool at_own_fd_limit(int socket_fd) noexcept {
    int probe = ::fcntl(socket_fd, F_DUPFD_CLOEXEC, 0);
    if (probe >= 0) {
        ::close(probe);
        return false;
    }
    return is_out_of_fds(errno);
}

// recvmsg answers 0 both for an empty message and at the end of the stream; only the latter
// has the receive side shut down (POLLRDHUP: the peer closed or shut down writing, or we shut
// down reading). An empty message followed by a close reads as closed, which is then true.
bool read_side_shut(int socket_fd) noexcept {
    pollfd p{socket_fd, POLLRDHUP, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP));
}

} // namespace

Received recv_message(int socket_fd, void *buf, size_t cap, size_t max_fds, bool dontwait) {
    iovec iov{buf, cap};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    // Room for more than we accept, so that "too many" is seen as such rather than truncated.
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * (max_fds_per_message + 4))];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    Received r;
    ssize_t n;
    for (;;) {
        n = ::recvmsg(socket_fd, &msg, MSG_CMSG_CLOEXEC | (dontwait ? MSG_DONTWAIT : 0));
        if (n >= 0 || errno != EINTR)
            break;
    }
    if (n < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK) {
            r.would_block = true;
            return r;
        }
        if (err == ECONNRESET) {
            r.closed = true;
            return r;
        }
        if (err == EBADF || err == ENOTSOCK)
            fail(Status::invalid, "socket fd " + std::to_string(socket_fd) +
                                      " is not an open socket");
        fail_errno("recvmsg", err);
    }
    ArrivedFds arrived{r.fds};
    r.len = static_cast<size_t>(n);
    const bool only_rights = collect_fds(msg, r.fds);
    if (msg.msg_flags & MSG_CTRUNC) {
        if (at_own_fd_limit(socket_fd))
            fail_errno("recvmsg: the fds attached to a message could not all be received (every "
                       "one that arrived was closed)",
                       EMFILE);
        fail(Status::protocol, "control data was truncated (too many fds in one message); "
                               "every fd that arrived was closed");
    }
    if (msg.msg_flags & MSG_TRUNC)
        fail(Status::protocol, "message larger than the " + std::to_string(cap) +
                                   " bytes expected");
    if (!only_rights)
        fail(Status::protocol, "unexpected control message (not SCM_RIGHTS)");
    if (r.fds.size() > max_fds)
        fail(Status::protocol, std::to_string(r.fds.size()) +
                                   " fds in one message, more than the " +
                                   std::to_string(max_fds) + " allowed");
    if (n == 0 && r.fds.empty()) {
        if (!read_side_shut(socket_fd))
            fail(Status::protocol, "the peer sent an empty message");
        r.closed = true;
    }
    arrived.handed_over = true;
    return r;
}

bool wait_readable(int fd, int64_t timeout_ns) {
    pollfd p{fd, POLLIN, 0};
    const int64_t deadline = deadline_for(timeout_ns);
    for (;;) {
        // Each try waits for what is left: an interrupted wait does not start over.
        const int64_t left = timeout_left(deadline, now_ns());
        const timespec ts = timespec_from_ns(left < 0 ? 0 : left);
        int rc = ::ppoll(&p, 1, left < 0 ? nullptr : &ts, nullptr);
        if (rc > 0)
            return true;
        if (rc == 0)
            return false;
        if (errno != EINTR)
            fail_errno("ppoll", errno);
    }
}

} // namespace px::ipc
