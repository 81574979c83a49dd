// SPDX-License-Identifier: Apache-2.0 OR MIT
// Helpers for the fault suite: a fixed seed, waits that are always bounded, a killer that lands
// at a random moment, and leak probes (fds, mappings) for the process that survives.
#pragma once

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <dirent.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <poll.h>
#include <random>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "ipc_support.hpp" // tests/ipc: fork_child, eventually, count_open_fds, frames...

namespace px_fault {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

// PX_FAULT_SEED overrides the fixed default, to replay or widen a run.
inline uint64_t suite_seed() {
    const char *env = std::getenv("PX_FAULT_SEED");
    return env && *env ? std::strtoull(env, nullptr, 0) : 0x5eed0008u;
}

// One stream per suite, derived from the seed so that suites do not shift each other.
inline std::mt19937_64 rng_for(const char *suite) {
    uint64_t h = suite_seed();
    for (const char *p = suite; *p; ++p)
        h = (h ^ static_cast<unsigned char>(*p)) * 0x100000001b3ull;
    return std::mt19937_64(h);
}

inline uint64_t uniform(std::mt19937_64 &rng, uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
}

// Exit status of a child as fault tests read it: the code, or 128 + signal, or -1 when it did
// not end within `limit` (it is then killed and reaped, so nothing outlives the test).
inline int wait_child_for(pid_t pid, std::chrono::milliseconds limit = 5000ms) {
    const auto end = clock::now() + limit;
    int status = 0;
    for (;;) {
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0)
            return -2;
        if (clock::now() > end) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return -1;
        }
        std::this_thread::sleep_for(1ms);
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -3;
}

// Waits for a byte on a pipe for at most `limit`: true when one arrived.
inline bool wait_posted(px_test::Signal &s, std::chrono::milliseconds limit) {
    pollfd p{s.fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) != 1)
        return false;
    s.wait();
    return true;
}

// Spins for `us` microseconds: a sleep would round short delays up to the scheduler tick and
// so make every kill land in the same place.
inline void spin_for_us(uint64_t us) {
    const auto end = clock::now() + std::chrono::microseconds(us);
    while (clock::now() < end) {
    }
}

// "fd -> target" for every open fd, to say what leaked when a count is off.
inline std::string describe_fds() {
    std::string out;
    DIR *d = ::opendir("/proc/self/fd");
    if (!d)
        return " (cannot list /proc/self/fd)";
    while (dirent *e = ::readdir(d)) {
        if (e->d_name[0] == '.')
            continue;
        char target[256] = {};
        std::string link = std::string("/proc/self/fd/") + e->d_name;
        ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
        out += std::string(" ") + e->d_name + "->" + (n > 0 ? target : "?");
    }
    ::closedir(d);
    return out;
}

// Mappings of memfds (segments and channel control blocks) in this process. Counting every
// mapping would also count the allocator's, which a sanitizer's runtime grows as it likes.
inline size_t count_shared_mappings() {
    FILE *f = std::fopen("/proc/self/maps", "r");
    if (!f)
        return SIZE_MAX;
    size_t n = 0;
    char line[512];
    while (std::fgets(line, sizeof line, f))
        n += std::strstr(line, "/memfd:") != nullptr;
    std::fclose(f);
    return n;
}

// What a surviving process must get back to after each round.
struct Footprint {
    int fds = px_test::count_open_fds();
    size_t mappings = count_shared_mappings();
    std::string fd_list = describe_fds();
};

// Bytes of frame `seq` (as px_test::make_frame writes them) and its metadata, at any length.
inline bool frame_intact(const px_buffer_t *buf, uint64_t seq) {
    return buf && px_buffer_len(buf) > 0 && px_test::frame_ok(buf, px_buffer_len(buf), seq);
}

using px_test::fill_frame;

// A child that must never outlive a hung test: SIGALRM kills it.
inline void limit_child_lifetime(unsigned seconds) { ::alarm(seconds); }

} // namespace px_fault
