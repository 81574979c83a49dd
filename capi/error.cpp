// SPDX-License-Identifier: Apache-2.0 OR MIT
// Last-error message, status names, version.
#include <string>

#include "capi/guard.hpp"

namespace px::capi {

// px_guard hands a core Status to C as it is (static_cast), so each one must equal its PX_E_*
// code: a renumbering on either side fails to compile here.
static_assert(static_cast<px_status_t>(Status::ok) == PX_OK);
static_assert(static_cast<px_status_t>(Status::invalid) == PX_E_INVALID);
static_assert(static_cast<px_status_t>(Status::nomem) == PX_E_NOMEM);
static_assert(static_cast<px_status_t>(Status::unsupported) == PX_E_UNSUPPORTED);
static_assert(static_cast<px_status_t>(Status::io) == PX_E_IO);
static_assert(static_cast<px_status_t>(Status::would_block) == PX_E_WOULD_BLOCK);
static_assert(static_cast<px_status_t>(Status::timeout) == PX_E_TIMEOUT);
static_assert(static_cast<px_status_t>(Status::closed) == PX_E_CLOSED);
static_assert(static_cast<px_status_t>(Status::protocol) == PX_E_PROTOCOL);
static_assert(static_cast<px_status_t>(Status::permission) == PX_E_PERMISSION);
static_assert(static_cast<px_status_t>(Status::busy) == PX_E_BUSY);
static_assert(static_cast<px_status_t>(Status::internal) == PX_E_INTERNAL);

namespace {
thread_local std::string last_error;

// A status added to the core without a line above would slip through them; this switch, which
// must name every Status, makes it an error instead (-Wswitch as an error, here only).
#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Wswitch"
[[maybe_unused]] constexpr bool every_status_has_a_c_code(Status s) {
    switch (s) {
    case Status::ok:
    case Status::invalid:
    case Status::nomem:
    case Status::unsupported:
    case Status::io:
    case Status::would_block:
    case Status::timeout:
    case Status::closed:
    case Status::protocol:
    case Status::permission:
    case Status::busy:
    case Status::internal:
        return true;
    }
    return false;
}
#pragma GCC diagnostic pop
} // namespace

void set_last_error(const char *function, Status, const char *message) noexcept {
    try {
        last_error.assign(function).append(": ").append(message);
    } catch (...) {
        last_error.clear(); // out of memory while reporting: keep the status at least
    }
}

} // namespace px::capi

extern "C" {

const char *px_last_error_message(void) { return px::capi::last_error.c_str(); }

const char *px_status_string(px_status_t status) {
    switch (status) {
    case PX_OK:
        return "PX_OK";
    case PX_E_INVALID:
        return "PX_E_INVALID";
    case PX_E_NOMEM:
        return "PX_E_NOMEM";
    case PX_E_UNSUPPORTED:
        return "PX_E_UNSUPPORTED";
    case PX_E_IO:
        return "PX_E_IO";
    case PX_E_WOULD_BLOCK:
        return "PX_E_WOULD_BLOCK";
    case PX_E_TIMEOUT:
        return "PX_E_TIMEOUT";
    case PX_E_CLOSED:
        return "PX_E_CLOSED";
    case PX_E_PROTOCOL:
        return "PX_E_PROTOCOL";
    case PX_E_PERMISSION:
        return "PX_E_PERMISSION";
    case PX_E_BUSY:
        return "PX_E_BUSY";
    case PX_E_INTERNAL:
        return "PX_E_INTERNAL";
    default:
        return "PX_E_UNKNOWN";
    }
}

uint32_t px_version(void) { return PX_VERSION; }

const char *px_version_string(void) { return PX_VERSION_STRING; }

} // extern "C"
