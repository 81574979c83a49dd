/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* Consumer: takes frames from px_producer and reports what the transport achieved.
 *
 *   px_consumer <socket_path> <frames> [--verify] [--socket-copy]
 *
 * Default: connects a libparallax channel and receives each frame zero-copy (it reads the
 * producer's memory in place), touches one byte (or, with --verify, checks every byte and the
 * metadata) and releases it, which returns the slot to the producer's pool.
 * --socket-copy: the baseline, the same frames read as bytes from a Unix stream socket.
 * Prints one line: mode frames bytes seconds frames_per_s GB_per_s p50_latency_us p99_latency_us */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <parallax/parallax.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "frames.h"

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void report(const char *mode, unsigned long frames, size_t bytes, int64_t t0, int64_t t1,
                   int64_t *lat) {
    double secs = (double)(t1 - t0) / 1e9;
    qsort(lat, frames, sizeof *lat, cmp_i64);
    printf("%s frames=%lu bytes=%zu seconds=%.4f frames_per_s=%.1f GB_per_s=%.3f "
           "p50_latency_us=%.1f p99_latency_us=%.1f\n",
           mode, frames, bytes, secs, (double)frames / secs,
           (double)frames * (double)bytes / secs / 1e9, (double)lat[frames / 2] / 1e3,
           (double)lat[(frames * 99) / 100] / 1e3);
}

static int read_all(int fd, void *p, size_t n) {
    char *c = (char *)p;
    while (n > 0) {
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

static int run_socket_copy(const char *path, unsigned long frames, int verify, int64_t *lat) {
    struct sockaddr_un addr;
    unsigned char *frame = NULL;
    size_t bytes = 0;
    int64_t t0 = 0;
    unsigned long k;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0), tries;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    for (tries = 0; connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0; ++tries) {
        struct timespec ts = {0, 2000000};
        if (tries > 5000) {
            perror("px_consumer: connect");
            return 1;
        }
        nanosleep(&ts, NULL);
    }
    for (k = 0; k < frames; ++k) {
        struct copy_header h;
        if (read_all(fd, &h, sizeof h) < 0) {
            fprintf(stderr, "px_consumer: producer hung up at frame %lu\n", k);
            return 1;
        }
        if (!frame) {
            bytes = h.len;
            frame = malloc(bytes);
            t0 = now_ns();
        }
        if (h.len != bytes || read_all(fd, frame, bytes) < 0)
            return 1;
        lat[k] = now_ns() - h.sent_ns;
        if (verify && (h.sequence != k || check_pattern(frame, bytes, k) != bytes)) {
            fprintf(stderr, "px_consumer: frame %lu is not intact\n", k);
            return 1;
        }
    }
    report("socket-copy", frames, bytes, t0, now_ns(), lat);
    free(frame);
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    px_channel_t *ch = NULL;
    unsigned long frames, k;
    size_t bytes = 0;
    int64_t t0 = 0, *lat;
    int verify = 0, copy = 0, i;
    volatile unsigned char sink = 0;
    if (argc < 3) {
        fprintf(stderr, "usage: %s <socket_path> <frames> [--verify] [--socket-copy]\n", argv[0]);
        return 2;
    }
    frames = strtoul(argv[2], NULL, 10);
    for (i = 3; i < argc; ++i) {
        verify |= strcmp(argv[i], "--verify") == 0;
        copy |= strcmp(argv[i], "--socket-copy") == 0;
    }
    if (frames == 0) {
        fprintf(stderr, "px_consumer: frames must be > 0\n");
        return 2;
    }
    lat = calloc(frames, sizeof *lat);
    if (copy) {
        int rc = run_socket_copy(argv[1], frames, verify, lat);
        free(lat);
        return rc;
    }

    if (px_channel_connect(argv[1], 10000000000LL, &ch)) {
        fprintf(stderr, "px_consumer: %s\n", px_last_error_message());
        return 1;
    }
    for (k = 0; k < frames; ++k) {
        px_buffer_t *buf = NULL;
        px_metadata_t meta;
        const unsigned char *p;
        if (px_channel_recv(ch, 10000000000LL, &buf)) {
            fprintf(stderr, "px_consumer: frame %lu: %s\n", k, px_last_error_message());
            return 1;
        }
        px_buffer_metadata(buf, &meta);
        lat[k] = now_ns() - meta.pts_ns;
        p = (const unsigned char *)px_buffer_ptr(buf);
        if (k == 0) {
            bytes = px_buffer_len(buf);
            t0 = now_ns();
        }
        sink ^= p[0]; /* the frame is read in place: no copy */
        if (verify) {
            size_t bad = check_pattern(p, px_buffer_len(buf), k);
            if (meta.sequence != k || px_buffer_len(buf) != bytes || bad != bytes) {
                fprintf(stderr, "px_consumer: frame %lu is not intact (byte %zu)\n", k, bad);
                return 1;
            }
        }
        px_buffer_release(buf); /* the slot goes back to the producer's pool */
    }
    report("parallax", frames, bytes, t0, now_ns(), lat);
    px_channel_release(ch);
    free(lat);
    (void)sink;
    return 0;
}
