// SPDX-License-Identifier: Apache-2.0 OR MIT
// Helpers for tests with real processes.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <functional>
#include <poll.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "parallax/parallax.h"

namespace px_test {

// Runs `body` in a forked child; the child exits with what body returns (0 = success).
inline pid_t fork_child(const std::function<int()> &body) {
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        int rc = 99;
        try {
            rc = body();
        } catch (...) {
            rc = 98;
        }
        std::fflush(nullptr);
        ::_exit(rc);
    }
    return pid;
}

// Exit status of a child (or 128 + signal).
inline int wait_child(pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

// Polls `cond` until true or the time is up.
inline bool eventually(const std::function<bool()> &cond,
                       std::chrono::milliseconds limit = std::chrono::milliseconds(2000)) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (cond())
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return cond();
}

inline int count_open_fds() {
    int n = 0;
    DIR *d = ::opendir("/proc/self/fd");
    while (dirent *e = ::readdir(d))
        if (e->d_name[0] != '.')
            ++n;
    ::closedir(d);
    return n - 1; // the directory's own fd
}

// Lines of /proc/self/maps; with `containing`, only those that name it (e.g. "memfd:").
inline size_t count_mappings(const char *containing = nullptr) {
    FILE *f = std::fopen("/proc/self/maps", "r");
    size_t n = 0;
    char line[4096];
    while (f && std::fgets(line, sizeof line, f))
        n += !containing || std::strstr(line, containing) != nullptr;
    if (f)
        std::fclose(f);
    return n;
}

// A pipe for "I am ready" / "go on" between parent and child.
struct Signal {
    int fds[2];
    Signal() {
        if (::pipe(fds) != 0)
            std::abort();
    }
    ~Signal() {
        ::close(fds[0]);
        ::close(fds[1]);
    }
    void post(char c = 'x') { [[maybe_unused]] auto n = ::write(fds[1], &c, 1); }
    // Waits up to 30 s (a test whose other side died must not hang); 0 on time-out.
    char wait() {
        pollfd p{fds[0], POLLIN, 0};
        if (::poll(&p, 1, 30000) != 1)
            return 0;
        char c = 0;
        [[maybe_unused]] auto n = ::read(fds[0], &c, 1);
        return c;
    }
};

// A shared-memory pool of `slots` slots of `slot_size` bytes.
inline px_pool_t *shm_pool(size_t slots, size_t slot_size) {
    px_segment_t *seg = nullptr;
    if (px_segment_shm_new("test-pool", slots * slot_size, &seg) != PX_OK)
        return nullptr;
    px_pool_t *pool = nullptr;
    px_pool_new(seg, slot_size, &pool);
    px_segment_release(seg);
    return pool;
}

// Writes frame `seq` into `p`: bytes (seq + i) & 0xff; returns its metadata (sequence = seq,
// pts = seq us, 4 user bytes).
inline px_metadata_t fill_frame(void *p, size_t len, uint64_t seq) {
    auto *bytes = static_cast<unsigned char *>(p);
    for (size_t i = 0; i < len; ++i)
        bytes[i] = static_cast<unsigned char>((seq + i) & 0xff);
    px_metadata_t meta;
    px_metadata_init(&meta);
    meta.sequence = seq;
    meta.pts_ns = static_cast<int64_t>(seq * 1000);
    meta.user_len = 4;
    meta.user[0] = 'f';
    meta.user[3] = static_cast<uint8_t>(seq);
    return meta;
}

// Loans a slot and makes frame `seq` of `len` bytes in it (fill_frame).
inline px_buffer_t *make_frame(px_pool_t *pool, size_t len, uint64_t seq) {
    px_slot_t *slot = nullptr;
    if (px_pool_loan_timeout(pool, 5'000'000'000, &slot) != PX_OK)
        return nullptr;
    px_metadata_t meta = fill_frame(px_slot_data(slot), len, seq);
    px_buffer_t *buf = nullptr;
    if (px_slot_into_buffer(slot, len, &meta, &buf) != PX_OK)
        return nullptr;
    return buf;
}

inline bool frame_ok(const px_buffer_t *buf, size_t len, uint64_t seq) {
    if (px_buffer_len(buf) != len)
        return false;
    auto *p = static_cast<const unsigned char *>(px_buffer_ptr(buf));
    for (size_t i = 0; i < len; ++i)
        if (p[i] != static_cast<unsigned char>((seq + i) & 0xff))
            return false;
    px_metadata_t meta;
    if (px_buffer_metadata(buf, &meta) != PX_OK)
        return false;
    return meta.sequence == seq && meta.pts_ns == static_cast<int64_t>(seq * 1000) &&
           meta.user_len == 4 && meta.user[0] == 'f' && meta.user[3] == static_cast<uint8_t>(seq) &&
           meta.dts_ns == PX_TIME_NONE;
}

} // namespace px_test
