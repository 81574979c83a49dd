// SPDX-License-Identifier: Apache-2.0 OR MIT
// parallax.hpp alone, compiled with every warning an error (C++17 and C++20 in CMake).
#include "parallax/parallax.hpp"

int px_cpp_header_strict_check() {
    parallax::Metadata m(1);
    return m.has_pts() ? 1 : 0;
}

// The timeout conversion is a template: instantiate each of its paths (signed, unsigned and
// narrow ticks, floating point, ticks finer than a nanosecond) under the same warnings.
int64_t px_cpp_header_strict_timeouts() {
    using std::chrono::duration;
    return parallax::Timeout(std::chrono::hours(1)).ns() +
           parallax::Timeout(duration<uint64_t, std::milli>(1)).ns() +
           parallax::Timeout(duration<int16_t, std::ratio<60>>(1)).ns() +
           parallax::Timeout(duration<double>(0.5)).ns() +
           parallax::Timeout(duration<float, std::micro>(2.0f)).ns() +
           parallax::Timeout(duration<int64_t, std::pico>(1)).ns() + parallax::wait_forever.count();
}
