/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* The C publisher of tests/bridge/run.sh: frames whose every part can be checked on the far
 * side of two bridges.
 *
 *   bridge_publisher <name> <frames> <bytes> <interval-ms> [--describe-every N]
 *
 * Frame k (0 .. frames-1): byte j is (k + j) & 0xff; metadata sequence k, pts 1000k, dts
 * 1000k - 1, duration 1000, offset k, offset_end k + 1, flags 0xA5000000 | k & 0xffff, user
 * "frame-<k>"; format u8, 1 dimension of <bytes> elements, fourcc 'P','X','B','R'. Description
 * "bridge-test;generation=<g>", g = k / N (so it changes every N frames, default 5), set
 * before frame k is published. Policy block (an exporter that is killed is dropped when its
 * death is seen). Polls between frames so that late subscribers join. Exits 0 when done or on
 * SIGTERM/SIGINT. Waits for a first subscriber (the exporter) before frame 0. */
#define _POSIX_C_SOURCE 200809L
#include <parallax/parallax.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop_requested = 0;

static void on_stop(int sig) {
    (void)sig;
    stop_requested = 1;
}

static int die(const char *what) {
    fprintf(stderr, "bridge_publisher: %s: %s\n", what, px_last_error_message());
    return 1;
}

static px_status_t publish_frame(px_publisher_t *pub, px_pool_t *pool, size_t bytes,
                                 unsigned long k) {
    px_slot_t *slot = NULL;
    px_buffer_t *buf = NULL;
    px_metadata_t meta;
    px_format_t fmt;
    size_t j;
    unsigned char *p;
    px_status_t rc = px_pool_loan_timeout(pool, 10000000000LL, &slot);
    if (rc != PX_OK)
        return rc;
    p = px_slot_data(slot);
    for (j = 0; j < bytes; ++j)
        p[j] = (unsigned char)((k + j) & 0xff);
    px_metadata_init(&meta);
    meta.sequence = k;
    meta.pts_ns = (int64_t)k * 1000;
    meta.dts_ns = (int64_t)k * 1000 - 1;
    meta.duration_ns = 1000;
    meta.offset = k;
    meta.offset_end = k + 1;
    meta.flags = 0xA5000000u | (uint32_t)(k & 0xffff);
    meta.user_len = (uint32_t)snprintf((char *)meta.user, sizeof meta.user, "frame-%lu", k);
    if ((rc = px_slot_into_buffer(slot, bytes, &meta, &buf)) != PX_OK)
        return rc;
    memset(&fmt, 0, sizeof fmt);
    fmt.dtype = PX_DTYPE_U8;
    fmt.ndim = 1;
    fmt.fourcc = 'P' | 'X' << 8 | 'B' << 16 | (uint32_t)'R' << 24;
    fmt.shape[0] = (int64_t)bytes;
    if ((rc = px_buffer_set_format(buf, &fmt)) == PX_OK)
        rc = px_publisher_publish(pub, buf);
    px_buffer_release(buf);
    return rc;
}

int main(int argc, char **argv) {
    px_segment_t *seg = NULL;
    px_pool_t *pool = NULL;
    px_publisher_t *pub = NULL;
    px_publisher_options_t opts;
    unsigned long frames, k, every = 5;
    size_t bytes;
    long interval_ms;
    char description[64];
    if (argc != 5 && !(argc == 7 && strcmp(argv[5], "--describe-every") == 0)) {
        fprintf(stderr, "usage: bridge_publisher <name> <frames> <bytes> <interval-ms> "
                        "[--describe-every N]\n");
        return 2;
    }
    frames = strtoul(argv[2], NULL, 10);
    bytes = strtoul(argv[3], NULL, 10);
    interval_ms = strtol(argv[4], NULL, 10);
    if (argc == 7)
        every = strtoul(argv[6], NULL, 10);
    if (bytes == 0 || every == 0) {
        fprintf(stderr, "bridge_publisher: bytes and N must be > 0\n");
        return 2;
    }
    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
    px_publisher_options_init(&opts);
    opts.slow_policy = PX_SLOW_BLOCK;
    opts.block_timeout_ns = 5000000000LL;
    if (px_segment_shm_new("bridge_publisher", (2 * opts.max_in_flight + 1) * bytes, &seg))
        return die("px_segment_shm_new");
    if (px_pool_new(seg, bytes, &pool))
        return die("px_pool_new");
    px_segment_release(seg);
    if (px_publisher_new(argv[1], &opts, &pub))
        return die("px_publisher_new");
    /* The exporter first: frames published before it joined would reach nobody. */
    while (px_publisher_subscriber_count(pub) == 0 && !stop_requested)
        px_publisher_poll(pub, 10000000);
    for (k = 0; k < frames && !stop_requested; ++k) {
        px_status_t rc;
        if (k % every == 0) {
            snprintf(description, sizeof description, "bridge-test;generation=%lu", k / every);
            if (px_publisher_set_description(pub, description))
                return die("px_publisher_set_description");
        }
        rc = publish_frame(pub, pool, bytes, k);
        if (rc != PX_OK && rc != PX_E_TIMEOUT)
            return die("publish");
        if (interval_ms > 0)
            px_publisher_poll(pub, interval_ms * 1000000LL);
    }
    printf("bridge_publisher: published %lu frames of %zu bytes\n", k, bytes);
    px_publisher_release(pub);
    px_pool_release(pool);
    return 0;
}
