// SPDX-License-Identifier: Apache-2.0 OR MIT
// Python argument -> C argument conversions that reject bad input with a clear exception
// (InvalidArgument naming the parameter) instead of pybind11's generic "incompatible function
// arguments" TypeError or a silent wrap-around of negative numbers into size_t.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <pybind11/pybind11.h>

namespace pxpy {

// A non-negative integer that fits size_t. TypeError for non-integers.
size_t as_size(pybind11::handle value, const char *name);
// An integer in [lo, hi] (used for the metadata fields).
uint64_t as_u64(pybind11::handle value, const char *name, uint64_t hi);
int64_t as_i64(pybind11::handle value, const char *name);
// Seconds (int or float) -> timeout_ns: None, negative, inf or anything longer than INT64_MAX ns
// -> -1 (forever); 0 -> 0 (poll); positive -> at least 1 ns. NaN is InvalidArgument.
int64_t as_timeout_ns(pybind11::handle value, const char *name = "timeout");
// str, bytes or os.PathLike -> file-system bytes; embedded NUL is InvalidArgument.
std::string as_path(pybind11::handle value, const char *name = "path");
// A file descriptor: an int >= 0, or an object with fileno().
int as_fd(pybind11::handle value, const char *name = "fd");

} // namespace pxpy
