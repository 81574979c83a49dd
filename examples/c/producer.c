/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* Producer: serves frames to one consumer over a socket path.
 *
 *   px_producer <socket_path> <frames> <frame_bytes> [--touch] [--huge] [--socket-copy]
 *
 * Default: every frame is written in full with the pattern of frames.h into a slot of a shared
 * pool (4 slots) and sent zero-copy over a libparallax channel; when all slots are out, the
 * producer waits for the consumer to release one (backpressure).
 *   --touch        write only the first bytes of each frame (the demo: measure the transport,
 *                  not memset)
 *   --huge         allocate the pool from 2 MiB huge pages (falls back to normal pages)
 *   --socket-copy  the baseline: the same frames copied as bytes through a Unix stream socket */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <parallax/parallax.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "frames.h"

#define SLOTS 4

static int die(const char *what) {
    fprintf(stderr, "px_producer: %s: %s\n", what, px_last_error_message());
    return 1;
}

static int write_all(int fd, const void *p, size_t n) {
    const char *c = (const char *)p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int run_socket_copy(const char *path, unsigned long frames, size_t bytes, int touch) {
    struct sockaddr_un addr;
    unsigned char *frame = malloc(bytes);
    int lfd, fd;
    unsigned long k;
    if (!frame)
        return 1;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    unlink(path);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 1) < 0) {
        perror("px_producer: listen");
        return 1;
    }
    fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
        perror("px_producer: accept");
        return 1;
    }
    fill_pattern(frame, bytes, 0);
    for (k = 0; k < frames; ++k) {
        struct copy_header h;
        if (touch)
            memcpy(frame, &k, sizeof k < bytes ? sizeof k : bytes);
        else
            fill_pattern(frame, bytes, k);
        h.sequence = k;
        h.len = bytes;
        h.sent_ns = now_ns();
        if (write_all(fd, &h, sizeof h) < 0 || write_all(fd, frame, bytes) < 0) {
            perror("px_producer: write");
            return 1;
        }
    }
    close(fd);
    close(lfd);
    unlink(path);
    free(frame);
    return 0;
}

int main(int argc, char **argv) {
    px_segment_t *seg = NULL;
    px_pool_t *pool = NULL;
    px_listener_t *listener = NULL;
    px_channel_t *ch = NULL;
    unsigned long frames, k;
    size_t bytes;
    int touch = 0, huge = 0, copy = 0, i;
    if (argc < 4) {
        fprintf(stderr, "usage: %s <socket_path> <frames> <frame_bytes> [--touch] [--huge] "
                        "[--socket-copy]\n", argv[0]);
        return 2;
    }
    frames = strtoul(argv[2], NULL, 10);
    bytes = (size_t)strtoull(argv[3], NULL, 10);
    for (i = 4; i < argc; ++i) {
        touch |= strcmp(argv[i], "--touch") == 0;
        huge |= strcmp(argv[i], "--huge") == 0;
        copy |= strcmp(argv[i], "--socket-copy") == 0;
    }
    if (bytes == 0) {
        fprintf(stderr, "px_producer: frame_bytes must be > 0\n");
        return 2;
    }
    if (copy)
        return run_socket_copy(argv[1], frames, bytes, touch);

    if (huge) {
        if (px_segment_hugepage_new(PX_HUGE_PAGE_2MB, SLOTS * bytes, PX_HUGEPAGE_FALLBACK, &seg))
            return die("px_segment_hugepage_new");
    } else if (px_segment_shm_new("px_producer", SLOTS * bytes, &seg)) {
        return die("px_segment_shm_new");
    }
    if (px_pool_new(seg, bytes, &pool))
        return die("px_pool_new");
    if (px_listener_new(argv[1], &listener))
        return die("px_listener_new");
    if (px_listener_accept(listener, 30000000000LL, &ch))
        return die("px_listener_accept");
    for (k = 0; k < frames; ++k) {
        px_slot_t *slot = NULL;
        px_buffer_t *buf = NULL;
        px_metadata_t meta;
        if (px_pool_loan_timeout(pool, 10000000000LL, &slot))
            return die("px_pool_loan_timeout");
        if (touch)
            memcpy(px_slot_data(slot), &k, sizeof k < bytes ? sizeof k : bytes);
        else
            fill_pattern(px_slot_data(slot), bytes, k);
        px_metadata_init(&meta);
        meta.sequence = k;
        meta.pts_ns = now_ns();
        if (px_slot_into_buffer(slot, bytes, &meta, &buf))
            return die("px_slot_into_buffer");
        if (px_channel_send(ch, buf))
            return die("px_channel_send");
        px_buffer_release(buf); /* the consumer's reference keeps the slot out */
    }
    /* Wait for the consumer to hang up, so that every frame was taken before we exit. */
    {
        px_buffer_t *none = NULL;
        px_channel_recv(ch, 30000000000LL, &none);
        px_buffer_release(none);
    }
    px_channel_release(ch);
    px_listener_release(listener);
    px_pool_release(pool);
    px_segment_release(seg);
    return 0;
}
