// SPDX-License-Identifier: Apache-2.0 OR MIT
// Turning library statuses into Python exceptions.
//
// The exception classes live in python/parallax/errors.py (multiple inheritance from the
// builtin exceptions is natural there); this side only picks the class for a status and
// attaches the library's own message, so the user sees exactly what libparallax said.
#pragma once

#include <string>

#include <pybind11/pybind11.h>

#include "parallax/parallax.h"

namespace pxpy {

// Imports parallax.errors once; called at module initialisation.
void init_errors();

// Raises the exception for `status` with `message`. `class_name` overrides the class chosen
// by status (e.g. "PoolExhausted" for a loan that would block).
[[noreturn]] void raise_error(px_status_t status, const std::string &message,
                              const char *class_name = nullptr);

// Raises for a failed library call, with px_last_error_message() as the message. Must be
// called on the thread that made the call, before any other library call.
[[noreturn]] void raise_last(px_status_t status, const char *class_name = nullptr);

// Sets the Python exception that raise_last would raise, without throwing: for the vectorcall
// methods (fastcall.hpp), which then return nullptr. A C++ throw costs microseconds, and an
// empty poll (recv(0), loan()) is an ordinary outcome in a loop.
void set_last_error(px_status_t status, const char *class_name = nullptr);

// Checks a status: returns on PX_OK, raises otherwise.
inline void check(px_status_t status, const char *class_name = nullptr) {
    if (status != PX_OK)
        raise_last(status, class_name);
}

// InvalidArgument "<what> is closed" ("was released" for slots and buffers): every method
// of a closed object raises it.
[[noreturn]] void raise_closed(const char *what);

} // namespace pxpy
