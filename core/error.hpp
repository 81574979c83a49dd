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
    Error(Status status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    Status status() const noexcept { return status_; }

private:
    Status status_;
};

// Throws Error{status, message}.
[[noreturn]] void fail(Status status, const std::string &message);
// Throws Error{io (or a better fit for errno), "<what>: <strerror(errno)> (errno N)"}.
[[noreturn]] void fail_errno(const std::string &what, int err);
// The status that best describes an errno from an OS call.
Status status_from_errno(int err) noexcept;

} // namespace px
