// SPDX-License-Identifier: Apache-2.0 OR MIT
// Busy-wait steps (spinning on memory that another core or process writes).
#pragma once

#include <cstdint>
#include <sched.h>

namespace px {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

// One step of a wait loop that has already spun `spun_ns`: pause hints for the first
// microseconds (the peer on another core answers within them), then sched_yield, so that a peer
// the scheduler put on this same core gets to run instead of waiting for our time slice to end.
inline void spin_step(int64_t spun_ns) noexcept {
    if (spun_ns < 2000) {
        for (int i = 0; i < 32; ++i)
            cpu_relax();
    } else {
        ::sched_yield();
    }
}

} // namespace px
