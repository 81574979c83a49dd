// SPDX-License-Identifier: Apache-2.0 OR MIT
// Shared by the fuzz targets: how a broken invariant is reported (an abort the fuzzer keeps as
// a crash input), and a check that an input leaked no fd.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <unistd.h>

namespace px_fuzz {

// Set by each target to its name, for the messages.
extern const char *const target_name;

[[noreturn]] inline void broken(const char *what) {
    std::fprintf(stderr, "%s: %s\n", target_name, what);
    std::abort();
}

inline void check(bool cond, const char *what) {
    if (!cond)
        broken(what);
}

// Which fds are open, as a mask of the first 256 (what an input opens lands there: the
// kernel hands out the lowest free numbers). Equal masks before and after: nothing leaked.
struct FdMask {
    uint64_t bits[4] = {};
    static FdMask now() {
        FdMask m;
        for (int fd = 0; fd < 256; ++fd)
            if (::fcntl(fd, F_GETFD) >= 0)
                m.bits[fd / 64] |= uint64_t{1} << (fd % 64);
        return m;
    }
    // Names the first fd open now that was not before, if any.
    bool same_as(const FdMask &before) const {
        for (int fd = 0; fd < 256; ++fd) {
            uint64_t bit = uint64_t{1} << (fd % 64);
            if ((bits[fd / 64] & bit) == (before.bits[fd / 64] & bit))
                continue;
            char target[256] = {};
            std::string link = "/proc/self/fd/" + std::to_string(fd);
            ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
            std::fprintf(stderr, "fd %d was %s, is %s (%s)\n", fd,
                         before.bits[fd / 64] & bit ? "open" : "closed",
                         bits[fd / 64] & bit ? "open" : "closed", n > 0 ? target : "?");
            return false;
        }
        return true;
    }
};

} // namespace px_fuzz
