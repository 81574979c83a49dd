/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* Shared by producer.c and consumer.c: the frame pattern, clocks and the socket-copy baseline's
 * framing. Frame k of n bytes: byte j is (k + j) & 0xff; metadata.sequence is k and
 * metadata.pts_ns the producer's CLOCK_MONOTONIC time when it sent the frame. */
#ifndef PX_EXAMPLE_FRAMES_H
#define PX_EXAMPLE_FRAMES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

static inline int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void fill_pattern(unsigned char *p, size_t n, uint64_t k) {
    size_t j;
    for (j = 0; j < n; ++j)
        p[j] = (unsigned char)((k + j) & 0xff);
}

/* Index of the first byte that breaks the pattern, or n when the frame is intact. */
static inline size_t check_pattern(const unsigned char *p, size_t n, uint64_t k) {
    size_t j;
    for (j = 0; j < n; ++j)
        if (p[j] != (unsigned char)((k + j) & 0xff))
            return j;
    return n;
}

/* The socket-copy baseline sends this header before each frame's bytes. */
struct copy_header {
    uint64_t sequence;
    int64_t sent_ns;
    uint64_t len;
};

#endif
