// The pause hint for busy-wait loops (spinning on memory that another core or process writes).
#pragma once

namespace px {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

} // namespace px
