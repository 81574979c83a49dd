/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* Stream subscriber: receives a stream's frames by name and checks every byte.
 *
 *   px_stream_subscriber <name> <frames> [--hold K] [--delay-ms MS]
 *
 * Starts before or after the publisher (it waits up to 30 s for it). Verifies each frame
 * against frames.h's pattern for its metadata.sequence, until it has received frame
 * <frames>-1 or the publisher has gone (PX_E_CLOSED after everything sent was received).
 * --hold K keeps the latest K frames instead of releasing each at once (they stay valid
 * however long it keeps them); --delay-ms makes it slow. Prints a summary; exits 0 when no
 * frame was damaged, 1 otherwise. */
#define _POSIX_C_SOURCE 200809L
#include <parallax/parallax.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frames.h"

#define SECOND_NS 1000000000LL
#define MAX_HOLD 64

struct tally {
    unsigned long received;
    unsigned long damaged;
    uint64_t first;
    uint64_t last;
};

static int usage(const char *why) {
    fprintf(stderr,
            "px_stream_subscriber: %s\nusage: px_stream_subscriber <name> <frames> [--hold K] "
            "[--delay-ms MS]\n",
            why);
    return 2;
}

static long parse_number(const char *s, long min, long max) {
    char *end = NULL;
    long v = strtol(s, &end, 10);
    return (*s && *end == '\0' && v >= min && v <= max) ? v : -1;
}

/* Checks one frame's bytes against the pattern of its sequence number. */
static void check_frame(px_buffer_t *buf, struct tally *t) {
    px_metadata_t meta;
    size_t len = px_buffer_len(buf), bad;
    px_buffer_metadata(buf, &meta);
    bad = check_pattern(px_buffer_ptr(buf), len, meta.sequence);
    if (bad != len) {
        fprintf(stderr, "px_stream_subscriber: frame %llu damaged at byte %zu\n",
                (unsigned long long)meta.sequence, bad);
        ++t->damaged;
    }
    if (t->received == 0)
        t->first = meta.sequence;
    t->last = meta.sequence;
    ++t->received;
}

/* Frame n (counting from 0) joins the latest `hold` kept, and the oldest of them is released;
 * with hold 0 it is released at once, which returns its slot to the publisher's pool. */
static void keep(px_buffer_t **ring, long hold, unsigned long n, px_buffer_t *buf) {
    size_t at;
    if (hold == 0) {
        px_buffer_release(buf);
        return;
    }
    at = n % (unsigned long)hold;
    px_buffer_release(ring[at]); /* NULL at first: does nothing */
    ring[at] = buf;
}

int main(int argc, char **argv) {
    px_subscriber_t *sub = NULL;
    px_buffer_t *buf = NULL;
    px_buffer_t *held[MAX_HOLD] = {NULL};
    px_subscriber_stats_t st;
    struct tally t = {0, 0, 0, 0};
    char description[256];
    size_t desc_len = 0;
    long frames, hold = 0, delay_ms = 0, v;
    int i;
    px_status_t rc;
    if (argc < 3 || (frames = parse_number(argv[2], 1, 1000000000L)) < 0)
        return usage("a name and a frame count (> 0) are needed");
    for (i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--hold") == 0 && (v = parse_number(argv[i + 1], 0, MAX_HOLD)) >= 0)
            hold = v;
        else if (strcmp(argv[i], "--delay-ms") == 0 &&
                 (v = parse_number(argv[i + 1], 0, 60000)) >= 0)
            delay_ms = v;
        else
            return usage("unknown option or bad value");
    }
    if (i != argc)
        return usage("an option needs a value");
    if (px_subscriber_new(argv[1], 30 * SECOND_NS, &sub)) {
        fprintf(stderr, "px_stream_subscriber: %s\n", px_last_error_message());
        return 1;
    }
    while ((rc = px_subscriber_recv(sub, 30 * SECOND_NS, &buf)) == PX_OK) {
        check_frame(buf, &t);
        keep(held, hold, t.received - 1, buf);
        if (delay_ms > 0) { /* a slow consumer: what the publisher's policy is for */
            struct timespec ts;
            ts.tv_sec = delay_ms / 1000;
            ts.tv_nsec = (delay_ms % 1000) * 1000000L;
            nanosleep(&ts, NULL);
        }
        if (t.last + 1 >= (uint64_t)frames)
            break;
    }
    if (rc != PX_OK && rc != PX_E_CLOSED) {
        fprintf(stderr, "px_stream_subscriber: recv: %s\n", px_last_error_message());
        return 1;
    }
    px_subscriber_get_stats(sub, &st);
    if (px_subscriber_description(sub, description, sizeof description, &desc_len) != PX_OK)
        strcpy(description, "(too long to show)");
    printf("px_stream_subscriber %ld: received %lu frames (%llu..%llu), missed %llu, "
           "damaged %lu; description \"%s\"\n",
           (long)getpid(), t.received, (unsigned long long)t.first, (unsigned long long)t.last,
           (unsigned long long)st.missed, t.damaged, description);
    for (i = 0; i < MAX_HOLD; ++i)
        px_buffer_release(held[i]);
    px_subscriber_release(sub);
    return t.damaged == 0 ? 0 : 1;
}
