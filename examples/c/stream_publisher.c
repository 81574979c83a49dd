/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* Stream publisher: publishes frames by name, zero-copy, to every subscriber that comes.
 *
 *   px_stream_publisher <name> <frames> [--bytes N] [--interval-ms MS] [--subscribers K]
 *                       [--policy drop|block|disconnect] [--history H]
 *
 * Each frame is written with frames.h's pattern into a slot of a shared pool and published;
 * frame k (0 .. frames-1) carries metadata.sequence k. Subscribers may start before or after
 * the publisher: --subscribers K waits for K of them before the first frame, and between
 * frames (--interval-ms) the publisher polls, which is when joiners are admitted. A subscriber
 * that is killed gives its slots back; the policy (default block) says what happens to one
 * that falls behind. When done (or on SIGINT/SIGTERM) it stops publishing, waits until every
 * slot is back in its pool, prints a summary and exits 0 (1 if a slot never came back). */
#define _POSIX_C_SOURCE 200809L
#include <parallax/parallax.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frames.h"

#define SECOND_NS 1000000000LL

static volatile sig_atomic_t stop_requested = 0;

static void on_stop(int sig) {
    (void)sig;
    stop_requested = 1;
}

struct config {
    const char *name;
    unsigned long frames;
    size_t bytes;
    long interval_ms;
    unsigned long subscribers;
    px_publisher_options_t opts;
};

static int die(const char *what) {
    fprintf(stderr, "px_stream_publisher: %s: %s\n", what, px_last_error_message());
    return 1;
}

static int usage(const char *why) {
    fprintf(stderr,
            "px_stream_publisher: %s\nusage: px_stream_publisher <name> <frames> [--bytes N] "
            "[--interval-ms MS] [--subscribers K] [--policy drop|block|disconnect] "
            "[--history H]\n",
            why);
    return 2;
}

/* A whole number in [min, max] from text, or -1. */
static long parse_number(const char *s, long min, long max) {
    char *end = NULL;
    long v = strtol(s, &end, 10);
    return (*s && *end == '\0' && v >= min && v <= max) ? v : -1;
}

static int parse_policy(const char *s, uint32_t *out) {
    if (strcmp(s, "drop") == 0)
        *out = PX_SLOW_DROP;
    else if (strcmp(s, "block") == 0)
        *out = PX_SLOW_BLOCK;
    else if (strcmp(s, "disconnect") == 0)
        *out = PX_SLOW_DISCONNECT;
    else
        return -1;
    return 0;
}

/* Fills cfg from argv; 0, or the exit status of a usage error. */
static int parse_args(int argc, char **argv, struct config *cfg) {
    int i;
    long v;
    if (argc < 3)
        return usage("a name and a frame count are needed");
    cfg->name = argv[1];
    if ((v = parse_number(argv[2], 0, 1000000000L)) < 0)
        return usage("<frames> must be a whole number");
    cfg->frames = (unsigned long)v;
    cfg->bytes = 65536;
    cfg->interval_ms = 0;
    cfg->subscribers = 0;
    px_publisher_options_init(&cfg->opts);
    cfg->opts.slow_policy = PX_SLOW_BLOCK; /* this demo's subscribers see every frame */
    cfg->opts.block_timeout_ns = 10 * SECOND_NS;
    for (i = 3; i < argc; ++i) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val)
            return usage("an option needs a value");
        ++i;
        if (strcmp(opt, "--bytes") == 0 && (v = parse_number(val, 1, 1L << 30)) > 0)
            cfg->bytes = (size_t)v;
        else if (strcmp(opt, "--interval-ms") == 0 && (v = parse_number(val, 0, 60000)) >= 0)
            cfg->interval_ms = v;
        else if (strcmp(opt, "--subscribers") == 0 && (v = parse_number(val, 0, 1024)) >= 0)
            cfg->subscribers = (unsigned long)v;
        else if (strcmp(opt, "--history") == 0 && (v = parse_number(val, 0, 1024)) >= 0)
            cfg->opts.history = (uint32_t)v;
        else if (strcmp(opt, "--policy") == 0 && parse_policy(val, &cfg->opts.slow_policy) == 0)
            ;
        else
            return usage("unknown option or bad value");
    }
    return 0;
}

/* Admits joiners until `n` subscribers are in; 0, or -1 after 30 s (or a stop request). */
static int wait_for_subscribers(px_publisher_t *pub, unsigned long n) {
    int64_t deadline = now_ns() + 30 * SECOND_NS;
    while (px_publisher_subscriber_count(pub) < n) {
        if (stop_requested || now_ns() > deadline)
            return -1;
        px_publisher_poll(pub, 10000000); /* joins happen here */
    }
    return 0;
}

/* Frame k: the pattern written into a pool slot, numbered, then published. */
static px_status_t publish_frame(px_publisher_t *pub, px_pool_t *pool, size_t bytes,
                                 unsigned long k) {
    px_slot_t *slot = NULL;
    px_buffer_t *buf = NULL;
    px_metadata_t meta;
    /* Waits while every slot is out: subscribers hold or have queued that many frames. */
    px_status_t rc = px_pool_loan_timeout(pool, 10 * SECOND_NS, &slot);
    if (rc != PX_OK)
        return rc;
    fill_pattern(px_slot_data(slot), bytes, k);
    px_metadata_init(&meta);
    meta.sequence = k;
    meta.pts_ns = now_ns();
    if ((rc = px_slot_into_buffer(slot, bytes, &meta, &buf)) != PX_OK)
        return rc;
    rc = px_publisher_publish(pub, buf);
    px_buffer_release(buf); /* each subscriber's loan keeps the slot out until it releases */
    return rc;
}

/* Waits up to 10 s for every slot to come back; 0 when they all did. */
static int wait_for_slots(px_pool_t *pool) {
    int64_t deadline = now_ns() + 10 * SECOND_NS;
    while (px_pool_available(pool) < px_pool_capacity(pool)) {
        struct timespec ts = {0, 10000000};
        if (now_ns() > deadline)
            return -1;
        nanosleep(&ts, NULL);
    }
    return 0;
}

int main(int argc, char **argv) {
    struct config cfg;
    px_segment_t *seg = NULL;
    px_pool_t *pool = NULL;
    px_publisher_t *pub = NULL;
    px_publisher_stats_t st;
    char description[128];
    unsigned long k;
    size_t slots;
    int bad = parse_args(argc, argv, &cfg);
    if (bad)
        return bad;
    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
    /* Room for every subscriber's credit twice over, and the history. */
    slots = 2 * cfg.opts.max_in_flight + cfg.opts.history + 1;
    if (px_segment_shm_new("px_stream_publisher", slots * cfg.bytes, &seg))
        return die("px_segment_shm_new");
    if (px_pool_new(seg, cfg.bytes, &pool))
        return die("px_pool_new");
    px_segment_release(seg); /* the pool keeps it */
    if (px_publisher_new(cfg.name, &cfg.opts, &pub))
        return die("px_publisher_new");
    /* Subscribers get it when they join: what the frames are. */
    snprintf(description, sizeof description, "frames.h pattern; bytes=%zu; frames=%lu",
             cfg.bytes, cfg.frames);
    if (px_publisher_set_description(pub, description))
        return die("px_publisher_set_description");
    if (wait_for_subscribers(pub, cfg.subscribers) != 0)
        fprintf(stderr, "px_stream_publisher: only %zu of %lu subscribers came; going on\n",
                px_publisher_subscriber_count(pub), cfg.subscribers);
    for (k = 0; k < cfg.frames && !stop_requested; ++k) {
        px_status_t rc = publish_frame(pub, pool, cfg.bytes, k);
        /* Under PX_SLOW_BLOCK a timeout means some subscriber missed this frame; go on. */
        if (rc != PX_OK && rc != PX_E_TIMEOUT)
            return die("publish");
        if (cfg.interval_ms > 0) /* wait, admitting joiners meanwhile */
            px_publisher_poll(pub, cfg.interval_ms * 1000000LL);
    }
    px_publisher_get_stats(pub, &st);
    /* Subscribers drain what was sent to them, then see PX_E_CLOSED. */
    px_publisher_release(pub);
    printf("px_stream_publisher: published %lu frames of %zu bytes to %llu subscribers "
           "(joined %llu, departed %llu), dropped %llu\n",
           k, cfg.bytes, (unsigned long long)st.subscribers, (unsigned long long)st.joined,
           (unsigned long long)st.departed, (unsigned long long)st.dropped);
    if (wait_for_slots(pool) != 0) {
        printf("px_stream_publisher: only %zu of %zu slots came back\n", px_pool_available(pool),
               px_pool_capacity(pool));
        return 1;
    }
    printf("px_stream_publisher: all %zu slots back\n", px_pool_capacity(pool));
    px_pool_release(pool);
    return 0;
}
