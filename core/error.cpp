// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/error.hpp"

#include <cerrno>
#include <cstring>
#include <sys/resource.h>

namespace px {

namespace {

std::string limit_value(rlim_t v) {
    return v == RLIM_INFINITY ? std::string("unlimited") : std::to_string(v);
}

} // namespace

void fail(Status status, const std::string &message) { throw Error(status, message); }

Status status_from_errno(int err) noexcept {
    switch (err) {
    case ENOMEM:
        return Status::nomem;
    case EACCES:
    case EPERM:
        return Status::permission;
    case EAGAIN:
        return Status::would_block;
    case EPIPE:
    case ECONNRESET:
    case ENOTCONN:
        return Status::closed;
    case EBADF:
    case EINVAL:
    case ENOTSOCK:
        return Status::invalid;
    case EBUSY:
    case EADDRINUSE:
        return Status::busy;
    default:
        return Status::io;
    }
}

bool is_out_of_fds(int err) noexcept { return err == EMFILE || err == ENFILE; }

std::string fd_limit_text(int err) {
    // fs.file-max is not read here: reading /proc needs an fd, and there is none to be had.
    if (err == ENFILE)
        return "too many open files in the system (ENFILE): the system-wide limit on open files "
               "(fs.file-max) is reached; close files in some process or raise it (sysctl "
               "fs.file-max)";
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return "too many open files (EMFILE): this process is at its RLIMIT_NOFILE; release "
               "handles or raise the limit (ulimit -n, setrlimit)";
    return "too many open files (EMFILE): this process may have " + limit_value(rl.rlim_cur) +
           " fds (RLIMIT_NOFILE soft " + limit_value(rl.rlim_cur) + ", hard " +
           limit_value(rl.rlim_max) +
           "); release handles or raise the limit (ulimit -n, setrlimit)";
}

void fail_errno(const std::string &what, int err) {
    // Every call that makes an fd ends here when there is none left: say which limit it was.
    if (is_out_of_fds(err))
        throw Error(Status::io, what + ": " + fd_limit_text(err), err);
    char buf[128];
    const char *text = strerror_r(err, buf, sizeof buf);
    throw Error(status_from_errno(err), what + ": " + text + " (errno " + std::to_string(err) + ")",
                err);
}

} // namespace px
