/* SPDX-License-Identifier: Apache-2.0 OR MIT */
// recv_syscalls: what a receiver costs per frame in system calls and CPU (issue 14), for each
// way of receiving. The receiver is this process (the parent); the sender is a forked child that
// sends 4 KiB frames as fast as its pool of 8 slots lets it (so frames are usually waiting), then
// leaves. Run it under `perf stat --no-inherit -e raw_syscalls:sys_enter,context-switches` to
// count the receiver's system calls alone (the child is not counted); divide by the frames it
// prints. Setup (handshake, mapping) is a few hundred calls: take --frames large.
//
// Modes (the receiver's loop):
//   chan-poll     px_channel_recv(ch, 0) in a loop (busy-poll; empty polls are counted)
//   chan-fd       poll(px_channel_fd) then px_channel_recv(ch, 0) until PX_E_WOULD_BLOCK
//   chan-block    px_channel_recv(ch, 10 s) (spin per --spin, library default when unset)
//   stream-poll   px_subscriber_recv(sub, 0) in a loop
//   stream-fd     poll(px_subscriber_fd) then px_subscriber_recv(sub, 0) until WOULD_BLOCK
//   stream-block  px_subscriber_recv(sub, 10 s)
//
// Prints one line: mode, frames, empty polls, wall ns/frame, receiver CPU ns/frame, and the
// sender's CPU ns/frame (its whole process, setup included: from getrusage once it has gone).
// Build (from the repository root, against a build directory B):
//   cc -O2 -Iinclude -IB/include -o recv_syscalls bench/wake/recv_syscalls.c -LB -lparallax
//      -Wl,-rpath,$PWD/B   (one line)
// Usage: recv_syscalls --mode M [--frames N] [--spin NS] [--pin same|cross|none]
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "parallax/parallax.h"

static void check(px_status_t st, const char *what) {
    if (st != PX_OK) {
        fprintf(stderr, "recv_syscalls: %s: %s\n", what, px_last_error_message());
        exit(1);
    }
}

static int64_t clock_ns(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pin_to(int cpu) {
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static px_pool_t *make_pool(void) {
    px_segment_t *seg = NULL;
    check(px_segment_shm_new("recv_syscalls", 8 * 4096, &seg), "px_segment_shm_new");
    px_pool_t *pool = NULL;
    check(px_pool_new(seg, 4096, &pool), "px_pool_new");
    px_segment_release(seg);
    return pool;
}

static px_buffer_t *next_frame(px_pool_t *pool, uint64_t seq) {
    px_slot_t *slot = NULL;
    check(px_pool_loan_timeout(pool, 10000000000, &slot), "px_pool_loan_timeout");
    memcpy(px_slot_data(slot), &seq, sizeof seq);
    px_buffer_t *buf = NULL;
    check(px_slot_into_buffer(slot, 4096, NULL, &buf), "px_slot_into_buffer");
    return buf;
}

static void channel_sender(int fd, long frames) {
    px_channel_t *ch = NULL;
    check(px_channel_from_fd(fd, &ch), "px_channel_from_fd (sender)");
    px_pool_t *pool = make_pool();
    for (long i = 0; i < frames; ++i) {
        px_buffer_t *buf = next_frame(pool, (uint64_t)i);
        check(px_channel_send(ch, buf), "px_channel_send");
        px_buffer_release(buf);
    }
    px_channel_release(ch);
    px_pool_release(pool);
}

static void stream_sender(const char *name, long frames) {
    px_publisher_options_t opts;
    px_publisher_options_init(&opts);
    opts.slow_policy = PX_SLOW_BLOCK; // every frame reaches the subscriber
    opts.block_timeout_ns = 10000000000;
    px_publisher_t *pub = NULL;
    check(px_publisher_new(name, &opts, &pub), "px_publisher_new");
    const int64_t give_up = clock_ns(CLOCK_MONOTONIC) + 10000000000;
    while (px_publisher_subscriber_count(pub) == 0) {
        px_status_t st = px_publisher_poll(pub, 10000000);
        if (st != PX_OK && st != PX_E_TIMEOUT && st != PX_E_WOULD_BLOCK)
            check(st, "px_publisher_poll");
        if (clock_ns(CLOCK_MONOTONIC) > give_up) {
            fprintf(stderr, "recv_syscalls: no subscriber came\n");
            exit(1);
        }
    }
    px_pool_t *pool = make_pool();
    for (long i = 0; i < frames; ++i) {
        px_buffer_t *buf = next_frame(pool, (uint64_t)i);
        check(px_publisher_publish(pub, buf), "px_publisher_publish");
        px_buffer_release(buf);
    }
    px_publisher_release(pub);
    px_pool_release(pool);
}

// Waits until `fd` is readable (the fd modes' loop).
static void wait_readable(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) {
        fprintf(stderr, "recv_syscalls: poll: nothing for 10 s\n");
        exit(1);
    }
}

int main(int argc, char **argv) {
    const char *mode = NULL;
    long frames = 200000;
    int64_t spin = INT64_MIN;
    const char *pin = "none";
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--mode") && i + 1 < argc)
            mode = argv[++i];
        else if (!strcmp(argv[i], "--frames") && i + 1 < argc)
            frames = atol(argv[++i]);
        else if (!strcmp(argv[i], "--spin") && i + 1 < argc)
            spin = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--pin") && i + 1 < argc)
            pin = argv[++i];
        else
            mode = NULL, i = argc;
    }
    if (!mode || frames <= 0) {
        fprintf(stderr, "usage: recv_syscalls --mode chan-poll|chan-fd|chan-block|stream-poll|"
                        "stream-fd|stream-block [--frames N] [--spin NS] "
                        "[--pin same|cross|none]\n");
        return 2;
    }
    const int stream = !strncmp(mode, "stream-", 7);
    const char *how = mode + (stream ? 7 : 5);
    const int sender_cpu = !strcmp(pin, "none") ? -1 : !strcmp(pin, "same") ? 0 : 1;
    pin_to(!strcmp(pin, "none") ? -1 : 0);

    char name[64];
    snprintf(name, sizeof name, "recv_syscalls_%d", (int)getpid());
    int sv[2];
    if (!stream && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("socketpair");
        return 1;
    }
    pid_t child = fork();
    if (child == 0) {
        pin_to(sender_cpu);
        if (stream)
            stream_sender(name, frames);
        else
            close(sv[0]), channel_sender(sv[1], frames);
        _exit(0);
    }

    px_channel_t *ch = NULL;
    px_subscriber_t *sub = NULL;
    if (stream) {
        check(px_subscriber_new(name, 10000000000, &sub), "px_subscriber_new");
    } else {
        close(sv[1]);
        check(px_channel_from_fd(sv[0], &ch), "px_channel_from_fd (receiver)");
        if (spin != INT64_MIN)
            check(px_channel_set_spin_ns(ch, spin), "px_channel_set_spin_ns");
    }
    const int by_fd = !strcmp(how, "fd");
    const int blocking = !strcmp(how, "block");
    const int fd = !by_fd ? -1 : stream ? px_subscriber_fd(sub) : px_channel_fd(ch);
    if (by_fd && fd < 0)
        check(PX_E_IO, "px_*_fd");

    long got = 0, empty = 0;
    const int64_t t0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    for (;;) {
        if (by_fd)
            wait_readable(fd);
        for (;;) {
            const int64_t timeout = blocking ? 10000000000 : 0;
            px_buffer_t *buf = NULL;
            const px_status_t st = stream ? px_subscriber_recv(sub, timeout, &buf)
                                          : px_channel_recv(ch, timeout, &buf);
            if (st == PX_E_WOULD_BLOCK) {
                ++empty;
                if (by_fd)
                    break;
                continue;
            }
            if (st == PX_E_CLOSED)
                goto done;
            check(st, "recv");
            (void)*(volatile const uint8_t *)px_buffer_ptr(buf);
            px_buffer_release(buf);
            ++got;
        }
    }
done:;
    const int64_t wall = clock_ns(CLOCK_MONOTONIC) - t0;
    const int64_t cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    int status;
    waitpid(child, &status, 0);
    if (got != frames) {
        fprintf(stderr, "recv_syscalls: received %ld of %ld frames\n", got, frames);
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    const double sender_ns = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 +
                              (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
    printf("%s frames %ld empty %ld wall_ns/frame %.1f cpu_ns/frame %.1f sender_cpu_ns/frame "
           "%.1f\n",
           mode, got, empty, (double)wall / (double)got, (double)cpu / (double)got,
           sender_ns / (double)got);
    if (stream)
        px_subscriber_release(sub);
    else
        px_channel_release(ch);
    return 0;
}
