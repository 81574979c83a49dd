#include "core/error.hpp"

#include <cerrno>
#include <cstring>

namespace px {

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

void fail_errno(const std::string &what, int err) {
    char buf[128];
    const char *text = strerror_r(err, buf, sizeof buf);
    throw Error(status_from_errno(err),
                what + ": " + text + " (errno " + std::to_string(err) + ")");
}

} // namespace px
