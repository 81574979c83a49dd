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

// The typed views are templates too: instantiate them (and the span forms under C++20).
size_t px_cpp_header_strict_formats(parallax::Buffer &b, parallax::Slot &s) {
    b.set_format(parallax::Format::contiguous(parallax::Dtype::f32, {2, 3},
                                              parallax::fourcc("R32F")));
    size_t n = b.typed_view<float>().second + b.typed_view<uint16_t>().second +
               b.format()->elements().value_or(0) + (b.format()->is_contiguous() ? 1u : 0u);
#if PARALLAX_HAS_SPAN
    n += b.as_span<double>().size() + b.as_mutable_span<int8_t>().size() +
         s.as_span<uint64_t>().size();
#else
    (void)s;
#endif
    return n;
}
