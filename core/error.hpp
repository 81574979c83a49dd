// SPDX-License-Identifier: Apache-2.0 OR MIT
// px::Error — the one exception type of the core. The C API turns it into a status code and
// the thread-local message (capi/guard.hpp); nothing else catches it.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace px {

enum class Status : int32_t {
    ok = 0,
    invalid = -1,
    nomem = -2,
    unsupported = -3,
    io = -4,
    would_block = -5,
    timeout = -6,
    closed = -7,
    protocol = -8,
    permission = -9,
    busy = -10,
    internal = -11,
};

class Error : public std::runtime_error {
public:
    Error(Status status, const std::string &message, int os_errno = 0)
        : std::runtime_error(message), status_(status), os_errno_(os_errno) {}
    Status status() const noexcept { return status_; }
    // The errno of the OS call that failed (fail_errno), 0 when the error is not an OS one: lets
    // a caller that rewraps errors (e.g. "the peer's fd was refused") keep those that are not
    // the peer's doing, such as this process running out of fds.
    int os_errno() const noexcept { return os_errno_; }

private:
    Status status_;
    int os_errno_;
};

// Throws Error{status, message}.
[[noreturn]] void fail(Status status, const std::string &message);
// Throws Error{io (or a better fit for errno), "<what>: <strerror(errno)> (errno N)"}, carrying
// errno. Running out of fds (EMFILE, ENFILE) is always Status::io, and the message says which
// limit was hit, its values and how to raise it (fd_limit_text).
[[noreturn]] void fail_errno(const std::string &what, int err);
// The status that best describes an errno from an OS call.
Status status_from_errno(int err) noexcept;

// EMFILE (this process's RLIMIT_NOFILE) or ENFILE (the system-wide fs.file-max).
bool is_out_of_fds(int err) noexcept;
// The error came from an OS call that found no fd left (see is_out_of_fds).
inline bool ran_out_of_fds(const Error &e) noexcept { return is_out_of_fds(e.os_errno()); }
// What running out of fds means and how to fix it, e.g. "too many open files (EMFILE): this
// process may have 256 fds (RLIMIT_NOFILE soft 256, hard 1048576); release handles or raise
// the limit (ulimit -n, setrlimit)". Only for EMFILE and ENFILE.
std::string fd_limit_text(int err);

} // namespace px
