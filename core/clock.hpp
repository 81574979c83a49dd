// SPDX-License-Identifier: Apache-2.0 OR MIT
// Monotonic time in nanoseconds, for deadlines and spin budgets.
#pragma once

#include <cstdint>
#include <ctime>

namespace px {

inline int64_t now_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Cheaper and a few milliseconds coarse: for "at most once a millisecond" throttles.
inline int64_t coarse_now_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// The absolute deadline of a timeout as the API defines it (< 0: none, INT64_MAX).
// With the caller's reading of now_ns() (a caller that needs the time anyway reads it once).
inline int64_t deadline_for(int64_t timeout_ns, int64_t now) noexcept {
    if (timeout_ns < 0)
        return INT64_MAX;
    return timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
}

inline int64_t deadline_for(int64_t timeout_ns) noexcept {
    return timeout_ns < 0 ? INT64_MAX : deadline_for(timeout_ns, now_ns());
}

// The time left until a deadline from deadline_for, as a timeout in the API's meaning: -1
// (forever) for no deadline, 0 once it has passed, else the nanoseconds left. For a wait that
// is cut into steps, each step waiting for what is left.
inline int64_t timeout_left(int64_t deadline_ns, int64_t now) noexcept {
    if (deadline_ns == INT64_MAX)
        return -1;
    return deadline_ns > now ? deadline_ns - now : 0;
}

// A timeout >= 0 as the timespec that ppoll and futex take.
inline timespec timespec_from_ns(int64_t ns) noexcept {
    return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

} // namespace px
