// Last-error message, status names, version.
#include <string>

#include "capi/guard.hpp"

namespace px::capi {

namespace {
thread_local std::string last_error;
}

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
