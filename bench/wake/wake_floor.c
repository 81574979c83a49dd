/* SPDX-License-Identifier: Apache-2.0 OR MIT */
// wake_floor: the floor under a blocking receive (issue 14). Two processes ping-pong a counter
// and each side sleeps in the kernel until the other wakes it, through one raw mechanism with
// nothing around it: a futex on shared memory, an eventfd, a unix socket, a pipe. Half the
// median round trip is the one-way wake latency a library that sleeps at once (libparallax
// with spin 0, iceoryx2's WaitSet) cannot beat with the same mechanism on this machine.
//
// The futex row is the floor of libparallax's spin-0 path (its receiver sleeps on a futex in
// the sender's control block); the unix socket row is the floor of iceoryx2's default event
// (a unix datagram socket under its WaitSet).
//
// With -DWITH_PARALLAX (and -lparallax) a fifth row measures libparallax itself in the same run:
// a channel whose ends recv with spin 0 (sleep at once), 4 KiB frames loaned from a pool of
// each side, as bench/iceoryx2 measures it.
//
// Build: see bench/wake/README.md (one cc line, with or without libparallax).
// Usage: wake_floor [--reps N] [--seconds S] [--placements cross,same,unpinned]
//                   [--mechanisms futex,eventfd,unix,pipe,parallax] [--spin NS] [--csv]
//        (--spin: the parallax row's px_channel_set_spin_ns, default 0; -1 busy-polls)
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef WITH_PARALLAX
#include "parallax/parallax.h"
#endif

enum mechanism { m_futex, m_eventfd, m_unix, m_pipe, m_parallax, m_count };
static const char *const mechanism_names[m_count] = {"futex", "eventfd", "unix", "pipe",
                                                     "parallax"};

enum placement { p_cross, p_same, p_unpinned, p_count };
static const char *const placement_names[p_count] = {"cross-core (0, 1)", "same core (0)",
                                                     "unpinned"};
static const char *const placement_keys[p_count] = {"cross", "same", "unpinned"};

static void die(const char *what) {
    fprintf(stderr, "wake_floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (cpu < 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        for (long i = 0; i < n && i < CPU_SETSIZE; ++i)
            CPU_SET(i, &set);
    } else {
        CPU_SET(cpu, &set);
    }
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        die("sched_setaffinity");
}

// One direction of the link: "post" wakes the other side, "wait" sleeps until posted.
// The futex words live in a shared anonymous mapping, one cache line each.
struct shared {
    _Alignas(64) _Atomic uint32_t word[2];
};

struct link {
    enum mechanism m;
    struct shared *sh;
    int fd[2][2]; // per direction: [read end, write end] (eventfd: the same fd twice)
    uint32_t seen[2];
#ifdef WITH_PARALLAX
    int sv[2];           // the channel's socket pair, before each process takes its end
    px_channel_t *ch;    // this process's end
    px_pool_t *pool;     // this process's frames
#endif
};

#ifdef WITH_PARALLAX
static int64_t px_spin_ns = 0; // --spin: the parallax row's recv spin (0: sleep at once)

static void px_check(px_status_t st, const char *what) {
    if (st != PX_OK) {
        fprintf(stderr, "wake_floor: %s: %s\n", what, px_last_error_message());
        exit(1);
    }
}

// After the fork: this process's end (side 0: the leader) and a pool of 4 frames of 4 KiB.
static void px_side_open(struct link *l, int side) {
    close(l->sv[1 - side]);
    px_check(px_channel_from_fd(l->sv[side], &l->ch), "px_channel_from_fd");
    px_check(px_channel_set_spin_ns(l->ch, px_spin_ns), "px_channel_set_spin_ns");
    px_segment_t *seg = NULL;
    px_check(px_segment_shm_new("wake_floor", 4 * 4096, &seg), "px_segment_shm_new");
    px_check(px_pool_new(seg, 4096, &l->pool), "px_pool_new");
    px_segment_release(seg);
}

static void px_side_close(struct link *l) {
    px_channel_release(l->ch);
    px_pool_release(l->pool);
}

static void px_post(struct link *l) {
    px_slot_t *slot = NULL;
    px_check(px_pool_loan_timeout(l->pool, 10000000000, &slot), "px_pool_loan_timeout");
    ((volatile uint8_t *)px_slot_data(slot))[0] = 1;
    px_buffer_t *buf = NULL;
    px_check(px_slot_into_buffer(slot, 4096, NULL, &buf), "px_slot_into_buffer");
    px_status_t st = px_channel_send(l->ch, buf);
    px_buffer_release(buf);
    px_check(st, "px_channel_send");
}

static void px_wait(struct link *l) {
    px_buffer_t *buf = NULL;
    px_check(px_channel_recv(l->ch, 10000000000, &buf), "px_channel_recv");
    (void)((const volatile uint8_t *)px_buffer_ptr(buf))[0];
    px_buffer_release(buf);
}
#endif

static void link_open(struct link *l, enum mechanism m) {
    memset(l, 0, sizeof *l);
    l->m = m;
    l->sh = mmap(NULL, sizeof *l->sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (l->sh == MAP_FAILED)
        die("mmap");
#ifdef WITH_PARALLAX
    if (m == m_parallax && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, l->sv) != 0)
        die("socketpair");
#endif
    for (int d = 0; d < 2; ++d) {
        switch (m) {
        case m_futex:
            l->fd[d][0] = l->fd[d][1] = -1;
            break;
        case m_eventfd:
            l->fd[d][0] = l->fd[d][1] = eventfd(0, 0);
            if (l->fd[d][0] < 0)
                die("eventfd");
            break;
        case m_unix:
            if (socketpair(AF_UNIX, SOCK_DGRAM, 0, l->fd[d]) != 0)
                die("socketpair");
            break;
        case m_pipe:
            if (pipe(l->fd[d]) != 0)
                die("pipe");
            break;
        case m_parallax:
            l->fd[d][0] = l->fd[d][1] = -1;
            break;
        default:
            break;
        }
    }
}

static void futex(_Atomic uint32_t *w, int op, uint32_t v) {
    syscall(SYS_futex, (uint32_t *)w, op, v, NULL, NULL, 0);
}

static void post(struct link *l, int d) {
    uint64_t one = 1;
    ssize_t n = 0;
    switch (l->m) {
    case m_futex:
        // What a sleeping-receiver wake costs at least: one store and one FUTEX_WAKE (shared,
        // not private: the word is in memory both processes map).
        atomic_fetch_add(&l->sh->word[d], 1);
        futex(&l->sh->word[d], FUTEX_WAKE, 1);
        return;
    case m_eventfd:
        n = write(l->fd[d][1], &one, sizeof one);
        break;
    case m_unix:
        n = send(l->fd[d][1], &one, 1, 0);
        break;
    case m_pipe:
        n = write(l->fd[d][1], &one, 1);
        break;
#ifdef WITH_PARALLAX
    case m_parallax:
        px_post(l);
        return;
#endif
    default:
        break;
    }
    if (n <= 0)
        die("post");
}

static void wait_for(struct link *l, int d) {
    uint64_t v;
    ssize_t n = 0;
    switch (l->m) {
    case m_futex:
        for (;;) {
            uint32_t w = atomic_load(&l->sh->word[d]);
            if (w != l->seen[d]) {
                l->seen[d] = w;
                return;
            }
            futex(&l->sh->word[d], FUTEX_WAIT, w);
        }
    case m_eventfd:
        n = read(l->fd[d][0], &v, sizeof v);
        break;
    case m_unix:
        n = recv(l->fd[d][0], &v, sizeof v, 0);
        break;
    case m_pipe:
        n = read(l->fd[d][0], &v, 1);
        break;
#ifdef WITH_PARALLAX
    case m_parallax:
        px_wait(l);
        return;
#endif
    default:
        break;
    }
    if (n <= 0)
        die("wait");
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

struct outcome {
    double median_ns, p99_ns; // one way: half the round trip
    long count;
};

// Direction 0: leader -> follower; 1: follower -> leader. The follower answers until the
// leader's stop flag (word beyond the counters) is seen after a wake.
static struct outcome run_one(enum mechanism m, enum placement p, double seconds) {
    struct link l;
    link_open(&l, m);
    _Atomic int *stop = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                             -1, 0);
    if (stop == MAP_FAILED)
        die("mmap");
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        pin_to(p == p_cross ? 1 : p == p_same ? 0 : -1);
#ifdef WITH_PARALLAX
        if (m == m_parallax)
            px_side_open(&l, 1);
#endif
        for (;;) {
            wait_for(&l, 0);
            if (atomic_load(stop)) {
#ifdef WITH_PARALLAX
                if (m == m_parallax)
                    px_side_close(&l);
#endif
                _exit(0);
            }
            post(&l, 1);
        }
    }
    pin_to(p == p_unpinned ? -1 : 0);
#ifdef WITH_PARALLAX
    if (m == m_parallax)
        px_side_open(&l, 0);
#endif
    const long cap = 4000000;
    int64_t *rt = malloc(sizeof *rt * cap);
    if (!rt)
        die("malloc");
    // A warm-up of 2000 round trips, not counted.
    for (int i = 0; i < 2000; ++i) {
        post(&l, 0);
        wait_for(&l, 1);
    }
    long count = 0;
    const int64_t end = now_ns() + (int64_t)(seconds * 1e9);
    int64_t t = now_ns();
    while (count < cap) {
        post(&l, 0);
        wait_for(&l, 1);
        const int64_t t2 = now_ns();
        rt[count++] = t2 - t;
        t = t2;
        if (t >= end)
            break;
    }
    atomic_store(stop, 1);
    post(&l, 0);
    int status;
    if (waitpid(child, &status, 0) != child)
        die("waitpid");
#ifdef WITH_PARALLAX
    if (m == m_parallax)
        px_side_close(&l);
#endif
    qsort(rt, (size_t)count, sizeof *rt, cmp_i64);
    struct outcome o = {rt[count / 2] / 2.0, rt[count * 99 / 100] / 2.0, count};
    free(rt);
    for (int d = 0; d < 2; ++d)
        for (int e = 0; e < 2; ++e)
            if (l.fd[d][e] >= 0 && (e == 0 || l.fd[d][1] != l.fd[d][0]))
                close(l.fd[d][e]);
    munmap(l.sh, sizeof *l.sh);
    munmap(stop, 4096);
    return o;
}

static int parse_list(const char *arg, const char *const *names, int n) {
    int mask = 0;
    char *copy = strdup(arg), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int i = 0; i < n; ++i)
            if (strcmp(tok, names[i]) == 0)
                found = i;
        if (found < 0) {
            fprintf(stderr, "wake_floor: unknown name '%s'\n", tok);
            exit(2);
        }
        mask |= 1 << found;
    }
    free(copy);
    return mask;
}

static double median(double *v, int n) {
    for (int i = 1; i < n; ++i) // insertion sort: a handful of repetitions
        for (int j = i; j > 0 && v[j - 1] > v[j]; --j) {
            double x = v[j];
            v[j] = v[j - 1];
            v[j - 1] = x;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
    int reps = 5;
    double seconds = 0.2;
    int placements = (1 << p_count) - 1, mechanisms = (1 << m_count) - 1, csv = 0;
#ifndef WITH_PARALLAX
    mechanisms &= ~(1 << m_parallax);
#endif
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--placements") && i + 1 < argc)
            placements = parse_list(argv[++i], placement_keys, p_count);
        else if (!strcmp(argv[i], "--mechanisms") && i + 1 < argc)
            mechanisms = parse_list(argv[++i], mechanism_names, m_count);
        else if (!strcmp(argv[i], "--csv"))
            csv = 1;
#ifdef WITH_PARALLAX
        else if (!strcmp(argv[i], "--spin") && i + 1 < argc)
            px_spin_ns = atoll(argv[++i]);
#endif
        else {
            fprintf(stderr, "usage: %s [--reps N] [--seconds S] [--placements cross,same,unpinned]"
                            " [--mechanisms futex,eventfd,unix,pipe,parallax] [--spin NS] [--csv]\n",
                    argv[0]);
            return 2;
        }
    }
#ifndef WITH_PARALLAX
    if (mechanisms & (1 << m_parallax)) {
        fprintf(stderr, "wake_floor: built without -DWITH_PARALLAX\n");
        return 2;
    }
#endif
    if (reps < 1 || reps > 101 || seconds <= 0) {
        fprintf(stderr, "wake_floor: --reps 1..101, --seconds > 0\n");
        return 2;
    }
    double med[p_count][m_count][101], p99[p_count][m_count][101];
    long count[p_count][m_count] = {{0}};
    // Interleaved: every repetition runs each case once, so a slow minute of the VM hits all
    // mechanisms alike.
    for (int r = 0; r < reps; ++r)
        for (int p = 0; p < p_count; ++p)
            for (int m = 0; m < m_count; ++m) {
                if (!(placements & (1 << p)) || !(mechanisms & (1 << m)))
                    continue;
                struct outcome o = run_one(m, p, seconds);
                med[p][m][r] = o.median_ns;
                p99[p][m][r] = o.p99_ns;
                count[p][m] += o.count;
                if (csv)
                    printf("run,%s,%s,%d,%.0f,%.0f,%ld\n", placement_keys[p], mechanism_names[m],
                           r, o.median_ns, o.p99_ns, o.count);
            }
    char load[64] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(load, sizeof load, f))
            strcpy(load, "?");
        fclose(f);
        load[strcspn(load, "\n")] = 0;
    }
    printf("wake_floor: one-way wake latency (median round trip / 2), medians of %d repetitions "
           "of %.2f s; load %s\n",
           reps, seconds, load);
    printf("| placement | mechanism | median of medians | min - max | median p99 |\n");
    printf("|---|---|---:|---:|---:|\n");
    for (int p = 0; p < p_count; ++p)
        for (int m = 0; m < m_count; ++m) {
            if (!(placements & (1 << p)) || !(mechanisms & (1 << m)))
                continue;
            double lo = med[p][m][0], hi = lo;
            for (int r = 1; r < reps; ++r) {
                lo = med[p][m][r] < lo ? med[p][m][r] : lo;
                hi = med[p][m][r] > hi ? med[p][m][r] : hi;
            }
            const double mm = median(med[p][m], reps), mp = median(p99[p][m], reps);
            printf("| %s | %s | %.2f us | %.2f - %.2f us | %.2f us |\n", placement_names[p],
                   mechanism_names[m], mm / 1e3, lo / 1e3, hi / 1e3, mp / 1e3);
        }
    return 0;
}
