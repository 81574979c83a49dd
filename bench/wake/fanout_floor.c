/* SPDX-License-Identifier: Apache-2.0 OR MIT */
// fanout_floor: the floor under waking N sleeping subscribers (issue 13's "latency to the last
// of 4 subscribers"). One process stamps the time and wakes N forked processes asleep in the
// kernel, one frame every --pace-us, with nothing around it but the futex calls:
//   each   one futex word per subscriber, one FUTEX_WAKE per subscriber (what a publisher does
//          with one channel per subscriber, libparallax's and iceoryx's way)
//   shared one futex word for all, one FUTEX_WAKE of all of them
// Each subscriber records the time from the stamp to its wake-up; the waker records what its
// wake calls cost. Printed per mode: the waker's cost, the median latency over all
// subscribers, and the median over rounds of the slowest subscriber's latency.
//
// Build: cc -O2 -o fanout_floor bench/wake/fanout_floor.c
// Usage: fanout_floor [--subscribers N] [--rounds R] [--reps K] [--pace-us P]
#define _GNU_SOURCE
#include <linux/futex.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SUBS 16
#define MAX_ROUNDS 4000

struct shared {
    _Atomic uint32_t word[MAX_SUBS]; // "each": subscriber i sleeps on word[i]
    _Atomic uint32_t all;            // "shared": everyone sleeps on it
    _Atomic int64_t stamp;           // when the round's wake started
    _Atomic uint32_t asleep;         // subscribers about to sleep for the next round
    _Atomic int stop;
    int64_t lat[MAX_SUBS][MAX_ROUNDS];
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void futex_wait(_Atomic uint32_t *w, uint32_t old) {
    syscall(SYS_futex, w, FUTEX_WAIT, old, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w, int n) {
    syscall(SYS_futex, w, FUTEX_WAKE, n, NULL, NULL, 0);
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t median(int64_t *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp64);
    return n ? v[n / 2] : 0;
}

static void subscriber(struct shared *s, int i, int shared_word, int rounds) {
    _Atomic uint32_t *w = shared_word ? &s->all : &s->word[i];
    for (int r = 0; r < rounds; ++r) {
        uint32_t old = atomic_load(w);
        atomic_fetch_add(&s->asleep, 1);
        while (atomic_load(w) == old)
            futex_wait(w, old);
        s->lat[i][r] = now_ns() - atomic_load(&s->stamp);
    }
}

// One run of `rounds` frames in `mode` (0 each, 1 shared): medians into out[0..2].
static void run(struct shared *s, int subs, int rounds, int pace_us, int shared_word,
                int64_t out[3]) {
    memset(s, 0, sizeof *s);
    pid_t kids[MAX_SUBS];
    for (int i = 0; i < subs; ++i) {
        kids[i] = fork();
        if (kids[i] == 0) {
            subscriber(s, i, shared_word, rounds);
            _exit(0);
        }
    }
    static int64_t cost[MAX_ROUNDS], slowest[MAX_ROUNDS], all[MAX_SUBS * MAX_ROUNDS];
    for (int r = 0; r < rounds; ++r) {
        // Every subscriber on its way to sleep, then the pace: asleep when the frame comes.
        while (atomic_load(&s->asleep) < (uint32_t)subs * (uint32_t)(r + 1))
            usleep(50);
        usleep((useconds_t)pace_us);
        const int64_t t0 = now_ns();
        atomic_store(&s->stamp, t0);
        if (shared_word) {
            atomic_fetch_add(&s->all, 1);
            futex_wake(&s->all, INT_MAX);
        } else {
            for (int i = 0; i < subs; ++i) {
                atomic_fetch_add(&s->word[i], 1);
                futex_wake(&s->word[i], 1);
            }
        }
        cost[r] = now_ns() - t0;
    }
    for (int i = 0; i < subs; ++i)
        waitpid(kids[i], NULL, 0);
    int n = 0;
    for (int r = 0; r < rounds; ++r) {
        int64_t worst = 0;
        for (int i = 0; i < subs; ++i) {
            all[n++] = s->lat[i][r];
            if (s->lat[i][r] > worst)
                worst = s->lat[i][r];
        }
        slowest[r] = worst;
    }
    out[0] = median(cost, rounds);
    out[1] = median(all, n);
    out[2] = median(slowest, rounds);
}

int main(int argc, char **argv) {
    int subs = 4, rounds = 1000, reps = 5, pace_us = 500;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--subscribers"))
            subs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds"))
            rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--pace-us"))
            pace_us = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "fanout_floor: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (subs < 1 || subs > MAX_SUBS || rounds < 1 || rounds > MAX_ROUNDS || reps < 1 ||
        pace_us < 0) {
        fprintf(stderr, "fanout_floor: --subscribers 1..%d, --rounds 1..%d, --reps >= 1\n",
                MAX_SUBS, MAX_ROUNDS);
        return 2;
    }
    struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                            -1, 0);
    if (s == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    // Repetitions interleaved (each, shared, each, shared, ...); medians of their medians.
    int64_t res[2][3][64];
    if (reps > 64)
        reps = 64;
    for (int k = 0; k < reps; ++k)
        for (int mode = 0; mode < 2; ++mode) {
            int64_t out[3];
            run(s, subs, rounds, pace_us, mode, out);
            for (int m = 0; m < 3; ++m)
                res[mode][m][k] = out[m];
        }
    printf("fanout_floor: %d subscribers asleep on futexes, a wake every %d us, median of %d x %d "
           "rounds\n",
           subs, pace_us, reps, rounds);
    printf("%-34s %12s %12s %8s\n", "", "each (N)", "shared (1)", "ratio");
    const char *labels[3] = {"waker's wake calls ns", "latency p50 ns, all",
                             "latency p50 ns, slowest"};
    for (int m = 0; m < 3; ++m) {
        int64_t e = median(res[0][m], reps), sh = median(res[1][m], reps);
        printf("%-34s %12lld %12lld %7.2fx\n", labels[m], (long long)e, (long long)sh,
               sh ? (double)e / (double)sh : 0.0);
    }
    printf("ratio > 1: one shared word is faster\n");
    return 0;
}
