#include "core/ipc/fd_passing.hpp"

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

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

Received recv_message(int socket_fd, void *buf, size_t cap, size_t max_fds, bool dontwait) {
    iovec iov{buf, cap};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    // Room for more than we accept, so that "too many" is seen as such rather than truncated.
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * (max_fds_per_message + 4))];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    for (;;) {
        n = ::recvmsg(socket_fd, &msg, MSG_CMSG_CLOEXEC | (dontwait ? MSG_DONTWAIT : 0));
        if (n >= 0 || errno != EINTR)
            break;
    }
    if (n < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK) {
            Received none;
            none.would_block = true;
            return none;
        }
        if (err == ECONNRESET)
            return Received{0, true, false, {}};
        if (err == EBADF || err == ENOTSOCK)
            fail(Status::invalid, "socket fd " + std::to_string(socket_fd) +
                                      " is not an open socket");
        fail_errno("recvmsg", err);
    }
    Received r;
    r.len = static_cast<size_t>(n);
    bool bad_control = false;
    for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < count; ++i) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                r.fds.push_back(fd);
            }
        } else {
            bad_control = true;
        }
    }
    if (msg.msg_flags & MSG_CTRUNC) {
        close_all(r.fds);
        fail(Status::protocol, "control data was truncated (too many fds in one message); "
                               "every fd that arrived was closed");
    }
    if (msg.msg_flags & MSG_TRUNC) {
        close_all(r.fds);
        fail(Status::protocol, "message larger than the " + std::to_string(cap) +
                                   " bytes expected");
    }
    if (bad_control) {
        close_all(r.fds);
        fail(Status::protocol, "unexpected control message (not SCM_RIGHTS)");
    }
    if (r.fds.size() > max_fds) {
        size_t got = r.fds.size();
        close_all(r.fds);
        fail(Status::protocol, std::to_string(got) + " fds in one message, more than the " +
                                   std::to_string(max_fds) + " allowed");
    }
    if (n == 0 && r.fds.empty())
        r.closed = true;
    return r;
}

bool wait_readable(int fd, int64_t timeout_ns) {
    pollfd p{fd, POLLIN, 0};
    timespec ts{};
    timespec *tsp = nullptr;
    if (timeout_ns >= 0) {
        ts.tv_sec = static_cast<time_t>(timeout_ns / 1000000000);
        ts.tv_nsec = static_cast<long>(timeout_ns % 1000000000);
        tsp = &ts;
    }
    for (;;) {
        int rc = ::ppoll(&p, 1, tsp, nullptr);
        if (rc > 0)
            return true;
        if (rc == 0)
            return false;
        if (errno != EINTR)
            fail_errno("ppoll", errno);
    }
}

} // namespace px::ipc
