// SPDX-License-Identifier: Apache-2.0 OR MIT
// The baselines built from plain kernel primitives, as a C programmer would write them:
//  - socket: an AF_UNIX SOCK_STREAM socketpair; the frame's bytes are copied through it
//            (write, read into the consumer's own buffer, allocated once).
//  - pipe:   two pipes, one each way; the frame's bytes are copied through them.
//  - eventfd, futex, spin: wake-up only (the frame would sit in shared memory next to them):
//            eventfd write/read, a futex word in a shared memfd, or a busy-polled atomic in
//            one. These are the floors a shared-memory transport builds on.
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/futex.h>
#include <new>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <vector>

#include "ipc_bench.hpp"

namespace pxipc {
namespace {

std::string err(const char *what) {
    return std::string(what) + ": " + std::strerror(errno);
}

void write_all(int fd, const void *p, size_t n) {
    const char *c = static_cast<const char *>(p);
    while (n > 0) {
        ssize_t w = ::write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die(err("write"));
        c += w;
        n -= static_cast<size_t>(w);
    }
}

// false at a clean end of stream before the first byte.
bool read_all(int fd, void *p, size_t n) {
    char *c = static_cast<char *>(p);
    size_t got = 0;
    while (got < n) {
        ssize_t r = ::read(fd, c + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 && got == 0)
            return false;
        if (r <= 0)
            die(r == 0 ? std::string("peer hung up mid-frame") : err("read"));
        got += static_cast<size_t>(r);
    }
    return true;
}

// ---- copy transports (socket, pipe): read end and write end per side -------------------------

struct CopyEnds {
    int rd = -1, wr = -1;
};

// Leader ends, follower ends (in the order the follower receives them).
void make_copy_transport(const Case &c, CopyEnds &leader, std::vector<int> &follower_fds) {
    if (c.transport == "socket") {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
            die(err("socketpair(AF_UNIX, SOCK_STREAM)"));
        leader = {sv[0], sv[0]};
        follower_fds = {sv[1]};
    } else {
        int ab[2], ba[2];
        if (pipe2(ab, O_CLOEXEC) < 0 || pipe2(ba, O_CLOEXEC) < 0)
            die(err("pipe2"));
        leader = {ba[0], ab[1]};
        follower_fds = {ab[0], ba[1]};
    }
}

CopyEnds follower_copy_ends(const Case &c, const std::vector<int> &fds) {
    if (c.transport == "socket")
        return {fds.at(0), fds.at(0)};
    return {fds.at(0), fds.at(1)};
}

Result copy_leader(const Case &c) {
    CopyEnds me;
    std::vector<int> theirs;
    make_copy_transport(c, me, theirs);
    int pid = spawn_follower(c, theirs);
    for (int fd : theirs)
        close(fd);
    std::vector<unsigned char> frame(c.payload), echo(c.payload);
    fill_frame(frame.data(), frame.size());
    Result r;
    if (c.kind == Kind::pingpong) {
        time_round_trips(c, r, [&](uint64_t seq) {
            store_seq(frame.data(), seq);
            write_all(me.wr, frame.data(), frame.size());
            if (!read_all(me.rd, echo.data(), echo.size()) || load_seq(echo.data()) != seq)
                die("the echo did not come back intact");
        });
    } else {
        auto drain = [&] {
            store_seq(frame.data(), seq_mark);
            write_all(me.wr, frame.data(), frame.size());
            uint64_t ack = 0;
            if (!read_all(me.rd, &ack, sizeof ack) || ack != seq_mark)
                die("no ack from the consumer");
        };
        uint64_t seq = 0;
        const int64_t warm_end = now_ns() + static_cast<int64_t>(c.seconds * 0.1e9);
        while (now_ns() < warm_end || seq < 2) {
            store_seq(frame.data(), seq++);
            write_all(me.wr, frame.data(), frame.size());
            note_cpu();
        }
        drain();
        const int64_t t0 = now_ns(), deadline = t0 + static_cast<int64_t>(c.seconds * 1e9);
        uint64_t n = 0;
        do {
            store_seq(frame.data(), seq++);
            write_all(me.wr, frame.data(), frame.size());
            note_cpu();
            ++n;
        } while (now_ns() < deadline);
        drain();
        r.ok = true;
        r.frames = n;
        r.elapsed_s = static_cast<double>(now_ns() - t0) / 1e9;
    }
    close(me.wr);
    if (me.rd != me.wr)
        close(me.rd);
    reap(pid);
    return r;
}

int copy_follower(const Case &c, const std::vector<int> &fds) {
    CopyEnds me = follower_copy_ends(c, fds);
    std::vector<unsigned char> frame(c.payload); // the consumer's own buffer, allocated once
    volatile uint64_t sink = 0;
    while (read_all(me.rd, frame.data(), frame.size())) {
        note_cpu();
        uint64_t seq = load_seq(frame.data());
        if (c.kind == Kind::pingpong) {
            write_all(me.wr, frame.data(), frame.size()); // echo: copied back the same way
            continue;
        }
        if (seq == seq_mark) {
            write_all(me.wr, &seq, sizeof seq);
            continue;
        }
        sink = sink + (c.read_all ? read_every_byte(frame.data(), frame.size()) : seq);
    }
    return 0;
}

// ---- wake-up only ----------------------------------------------------------------------------

struct alignas(64) SharedWords {
    alignas(64) std::atomic<uint32_t> ping{0};
    alignas(64) std::atomic<uint32_t> pong{0};
};
constexpr uint32_t word_stop = 0xffffffffu;

SharedWords *map_words(int fd) {
    void *p = mmap(nullptr, sizeof(SharedWords), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        die(err("mmap"));
    return static_cast<SharedWords *>(p);
}

void futex_wait(std::atomic<uint32_t> *w, uint32_t expected) {
    syscall(SYS_futex, reinterpret_cast<uint32_t *>(w), FUTEX_WAIT, expected, nullptr, nullptr, 0);
}

void futex_wake(std::atomic<uint32_t> *w) {
    syscall(SYS_futex, reinterpret_cast<uint32_t *>(w), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

// Waits until *w differs from `old`, sleeping in the kernel (futex) or spinning.
uint32_t await_change(std::atomic<uint32_t> *w, uint32_t old, bool spin) {
    uint32_t v;
    while ((v = w->load(std::memory_order_acquire)) == old) {
        if (spin)
            cpu_relax();
        else
            futex_wait(w, old);
    }
    return v;
}

Result words_leader(const Case &c) {
    bool spin = c.transport == "spin";
    int fd = memfd_create("px_bench_words", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, sizeof(SharedWords)) < 0)
        die(err("memfd_create"));
    SharedWords *w = map_words(fd);
    new (w) SharedWords;
    int pid = spawn_follower(c, {fd});
    close(fd);
    Result r;
    uint32_t last_pong = 0;
    time_round_trips(c, r, [&](uint64_t seq) {
        auto s = static_cast<uint32_t>(seq);
        w->ping.store(s, std::memory_order_release);
        if (!spin)
            futex_wake(&w->ping);
        last_pong = await_change(&w->pong, last_pong, spin);
        if (last_pong != s)
            die("futex/spin echo out of step");
    });
    w->ping.store(word_stop, std::memory_order_release);
    futex_wake(&w->ping);
    reap(pid);
    return r;
}

int words_follower(const Case &c, const std::vector<int> &fds) {
    bool spin = c.transport == "spin";
    SharedWords *w = map_words(fds.at(0));
    uint32_t last = 0;
    for (;;) {
        last = await_change(&w->ping, last, spin);
        if (last == word_stop)
            return 0;
        note_cpu();
        w->pong.store(last, std::memory_order_release);
        if (!spin)
            futex_wake(&w->pong);
    }
}

constexpr uint64_t eventfd_stop = uint64_t{1} << 40;

Result eventfd_leader(const Case &c) {
    int ab = eventfd(0, EFD_CLOEXEC), ba = eventfd(0, EFD_CLOEXEC);
    if (ab < 0 || ba < 0)
        die(err("eventfd"));
    int pid = spawn_follower(c, {ab, ba});
    Result r;
    time_round_trips(c, r, [&](uint64_t) {
        uint64_t one = 1, v = 0;
        write_all(ab, &one, sizeof one);
        if (!read_all(ba, &v, sizeof v))
            die("eventfd read failed");
    });
    write_all(ab, &eventfd_stop, sizeof eventfd_stop);
    reap(pid);
    return r;
}

int eventfd_follower(const Case &, const std::vector<int> &fds) {
    int ab = fds.at(0), ba = fds.at(1);
    for (;;) {
        uint64_t v = 0, one = 1;
        if (!read_all(ab, &v, sizeof v) || v >= eventfd_stop)
            return 0;
        note_cpu();
        write_all(ba, &one, sizeof one);
    }
}

} // namespace

Result posix_leader(const Case &c) {
    if (c.transport == "socket" || c.transport == "pipe")
        return copy_leader(c);
    if (c.kind != Kind::pingpong)
        die(c.transport + " carries no frames: only its wake-up (ping-pong) is measured");
    if (c.transport == "eventfd")
        return eventfd_leader(c);
    return words_leader(c);
}

int posix_follower(const Case &c, const std::vector<int> &fds) {
    if (c.transport == "socket" || c.transport == "pipe")
        return copy_follower(c, fds);
    if (c.transport == "eventfd")
        return eventfd_follower(c, fds);
    return words_follower(c, fds);
}

} // namespace pxipc
