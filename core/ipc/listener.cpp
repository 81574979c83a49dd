#include "core/ipc/listener.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <chrono>
#include <cstring>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/ipc/fd_passing.hpp"

namespace px::ipc {

namespace {

// Removes a socket file nobody listens on; refuses a live one or a file of another kind.
void clear_stale(const std::string &path, const sockaddr_un &addr) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) < 0) {
        if (errno == ENOENT)
            return;
        fail_errno("lstat(" + path + ")", errno);
    }
    if (!S_ISSOCK(st.st_mode))
        fail(Status::invalid, path + " exists and is not a socket; refusing to replace it");
    int probe = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (probe < 0)
        fail_errno("socket", errno);
    int rc = ::connect(probe, reinterpret_cast<const sockaddr *>(&addr), sizeof addr);
    int err = errno;
    ::close(probe);
    if (rc == 0)
        fail(Status::busy, "another process is listening on " + path);
    if (err != ECONNREFUSED && err != EPROTOTYPE)
        fail_errno("connect(" + path + ") to test for a stale socket", err);
    if (::unlink(path.c_str()) < 0 && errno != ENOENT)
        fail_errno("unlink(" + path + ")", errno);
}

} // namespace

Ref<Listener> Listener::create(const std::string &path) {
    sockaddr_un addr = unix_address(path);
    clear_stale(path, addr);
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail_errno("socket(AF_UNIX, SOCK_SEQPACKET)", errno);
    auto fail_closing = [&](const std::string &what, int err) {
        ::close(fd);
        fail_errno(what, err);
    };
    if (::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0) {
        int err = errno;
        if (err == EADDRINUSE) {
            ::close(fd);
            fail(Status::busy, path + " was taken by another listener meanwhile");
        }
        fail_closing("bind(" + path + ")", err);
    }
    // Before listen(), nobody can connect: restricting the mode now leaves no window.
    if (::chmod(path.c_str(), 0600) < 0) {
        int err = errno;
        ::unlink(path.c_str());
        fail_closing("chmod(" + path + ", 0600)", err);
    }
    if (::listen(fd, 64) < 0) {
        int err = errno;
        ::unlink(path.c_str());
        fail_closing("listen(" + path + ")", err);
    }
    struct stat st {};
    ::stat(path.c_str(), &st);
    return Ref<Listener>::adopt(new Listener(fd, path, st.st_dev, st.st_ino));
}

Listener::~Listener() {
    ::close(fd_);
    // Remove the file only if it is still ours (not a newer listener's).
    struct stat st {};
    if (::stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
        ::unlink(path_.c_str());
}

Ref<Channel> Listener::accept(int64_t timeout_ns) {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    for (;;) {
        int64_t wait = timeout_ns;
        if (timeout_ns > 0) {
            wait = timeout_ns - std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    clock::now() - start)
                                    .count();
            if (wait <= 0)
                fail(Status::timeout, "no peer connected within " + std::to_string(timeout_ns) +
                                          " ns");
        }
        if (!wait_readable(fd_, wait))
            fail(timeout_ns == 0 ? Status::would_block : Status::timeout,
                 timeout_ns == 0 ? "no peer is waiting to connect"
                                 : "no peer connected within " + std::to_string(timeout_ns) +
                                       " ns");
        int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
                errno == ECONNABORTED)
                continue;
            fail_errno("accept4", errno);
        }
        // Back to blocking sends; reads are always preceded by a poll.
        int flags = ::fcntl(fd, F_GETFL);
        ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        Ref<Channel> ch;
        try {
            ch = Channel::from_connection(
                handshake(fd, handshake_timeout_within(deadline_for(timeout_ns))));
        } catch (const Error &e) {
            // A connection that hung up before greeting (a probe for a stale socket, a client
            // that gave up) is not an error of this listener: wait for the next one.
            if (e.status() == Status::closed)
                continue;
            throw;
        }
        return ch;
    }
}

} // namespace px::ipc
