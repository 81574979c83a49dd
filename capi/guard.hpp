// SPDX-License-Identifier: Apache-2.0 OR MIT
// The exception firewall. Every fallible C entry point is one call to px_guard(): it runs the
// body, turns px::Error / bad_alloc / anything else into a status code, and records
// "<function>: <message>" as this thread's last error. Nothing thrown ever crosses the C ABI.
#pragma once

#include <new>
#include <string>

#include "core/error.hpp"
#include "parallax/parallax.h"

namespace px::capi {

void set_last_error(const char *function, Status status, const char *message) noexcept;

template <class Body> px_status_t px_guard(const char *function, Body &&body) noexcept {
    try {
        body();
        return PX_OK;
    } catch (const Error &e) {
        set_last_error(function, e.status(), e.what());
        return static_cast<px_status_t>(e.status());
    } catch (const std::bad_alloc &) {
        set_last_error(function, Status::nomem, "out of memory");
        return PX_E_NOMEM;
    } catch (const std::exception &e) {
        set_last_error(function, Status::internal, e.what());
        return PX_E_INTERNAL;
    } catch (...) {
        set_last_error(function, Status::internal, "unknown exception");
        return PX_E_INTERNAL;
    }
}

// px_guard for a receive that may find nothing: `body(nothing)` sets `nothing` instead of
// throwing when there is nothing to take now, and the call answers PX_E_WOULD_BLOCK with the
// usual message — a busy poll meets that answer millions of times, and a throw costs ~4 us.
template <class Body> px_status_t px_guard_poll(const char *function, Body &&body) noexcept {
    bool nothing = false;
    const px_status_t st = px_guard(function, [&] { body(nothing); });
    if (st != PX_OK || !nothing)
        return st;
    set_last_error(function, Status::would_block, "nothing to receive");
    return PX_E_WOULD_BLOCK;
}

// Argument checks used inside guarded bodies.
template <class T> T *require(T *p, const char *name) {
    if (!p)
        fail(Status::invalid, std::string(name) + " is NULL");
    return p;
}

// A string argument (a path, a name) as a std::string; NULL is invalid, naming the argument.
inline std::string require_text(const char *text, const char *name) {
    if (!text)
        fail(Status::invalid, std::string(name) + " is NULL");
    return text;
}

// Checks an out-parameter and clears it, so a failing call leaves it NULL/zeroed.
template <class T> T *require_out(T *out, const char *name = "out") {
    if (!out)
        fail(Status::invalid, std::string(name) + " is NULL");
    *out = T{};
    return out;
}

} // namespace px::capi
