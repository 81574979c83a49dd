/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* A test publisher for `parallax hz`, with what the example publisher never does on purpose.
 *
 *   gap_publisher <name> skip   100 frames, 20 ms apart, alternately 1000 and 3000 bytes, whose
 *                               metadata.sequence skips every tenth number (9 skipped), under
 *                               PX_SLOW_BLOCK: hz must count 100 frames and 9 skipped, none
 *                               missed, and print a line a second for ~2 s
 *   gap_publisher <name> burst  2000 frames back to back under PX_SLOW_DROP with credit for one,
 *                               so a subscriber misses most; then, once nothing is in flight, a
 *                               last frame that reaches it: hz's missed must equal our dropped
 *
 * Waits (polling) for one subscriber before the first frame, releases the publisher at the end
 * (the subscriber then sees PX_E_CLOSED) and prints "published P dropped D skipped S". */
#define _POSIX_C_SOURCE 200809L
#include <parallax/parallax.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SECOND_NS 1000000000LL

static int die(const char *what) {
    fprintf(stderr, "gap_publisher: %s: %s\n", what, px_last_error_message());
    return 1;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SECOND_NS + ts.tv_nsec;
}

static px_status_t publish(px_publisher_t *pub, px_pool_t *pool, size_t len, uint64_t seq) {
    px_slot_t *slot = NULL;
    px_buffer_t *buf = NULL;
    px_metadata_t meta;
    px_status_t rc = px_pool_loan_timeout(pool, 10 * SECOND_NS, &slot);
    if (rc != PX_OK)
        return rc;
    memset(px_slot_data(slot), (int)(seq & 0xff), len);
    px_metadata_init(&meta);
    meta.sequence = seq;
    if ((rc = px_slot_into_buffer(slot, len, &meta, &buf)) != PX_OK)
        return rc;
    rc = px_publisher_publish(pub, buf);
    px_buffer_release(buf);
    return rc;
}

/* Polls until one subscriber is in (10 s), or until nothing is lent any more. */
static int wait_until(px_publisher_t *pub, int want_subscriber) {
    int64_t deadline = now_ns() + 10 * SECOND_NS;
    px_publisher_stats_t st;
    while (now_ns() < deadline) {
        px_publisher_poll(pub, 10000000);
        if (px_publisher_get_stats(pub, &st) != PX_OK)
            return -1;
        if (want_subscriber ? st.subscribers >= 1 : st.slots_lent == 0)
            return 0;
    }
    return -1;
}

int main(int argc, char **argv) {
    px_segment_t *seg = NULL;
    px_pool_t *pool = NULL;
    px_publisher_t *pub = NULL;
    px_publisher_options_t o;
    px_publisher_stats_t st;
    uint64_t i, skipped = 0;
    int burst;
    if (argc != 3 || (strcmp(argv[2], "skip") != 0 && strcmp(argv[2], "burst") != 0)) {
        fprintf(stderr, "usage: gap_publisher <name> skip|burst\n");
        return 2;
    }
    burst = strcmp(argv[2], "burst") == 0;
    px_publisher_options_init(&o);
    o.slow_policy = burst ? PX_SLOW_DROP : PX_SLOW_BLOCK;
    o.max_in_flight = burst ? 1 : 8;
    o.block_timeout_ns = 10 * SECOND_NS;
    if (px_segment_shm_new("gap_publisher", 16 * 3000, &seg) || px_pool_new(seg, 3000, &pool))
        return die("pool");
    px_segment_release(seg);
    if (px_publisher_new(argv[1], &o, &pub))
        return die("px_publisher_new");
    if (wait_until(pub, 1) != 0)
        return die("no subscriber came");
    for (i = 0; i < (burst ? 2000u : 100u); ++i) {
        const uint64_t seq = burst ? i : i + i / 10; /* skip: 0..9, 11..20, 22..31, ... */
        struct timespec gap = {0, 20000000};
        skipped = burst ? 0 : i / 10;
        if (publish(pub, pool, burst || i % 2 ? 1000 : 3000, seq) != PX_OK)
            return die("publish");
        if (!burst)
            nanosleep(&gap, NULL);
    }
    if (burst && (wait_until(pub, 0) != 0 || publish(pub, pool, 1000, i++) != PX_OK))
        return die("the last frame");
    px_publisher_get_stats(pub, &st);
    px_publisher_release(pub);
    printf("published %llu dropped %llu skipped %llu\n", (unsigned long long)st.published,
           (unsigned long long)st.dropped, (unsigned long long)skipped);
    px_pool_release(pool);
    return 0;
}
