/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* A separate program for fork+exec tests: receives frames over a channel and checks them.
 *   px_ipc_peer fd <socket-fd> <frames> <len>     adopt an inherited socket
 *   px_ipc_peer connect <path> <frames> <len>     connect to a listener
 * Frame k has bytes (k + i) & 0xff and metadata.sequence == k. Exit 0 when all are intact. */
#include <parallax/parallax.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check(const px_buffer_t *buf, uint64_t seq, size_t len) {
    const unsigned char *p = (const unsigned char *)px_buffer_ptr(buf);
    px_metadata_t meta;
    size_t i;
    if (px_buffer_len(buf) != len || px_buffer_metadata(buf, &meta) != PX_OK ||
        meta.sequence != seq)
        return 0;
    for (i = 0; i < len; ++i)
        if (p[i] != (unsigned char)((seq + i) & 0xff))
            return 0;
    return px_buffer_mut_ptr((px_buffer_t *)buf) == NULL; /* received memory is read-only */
}

int main(int argc, char **argv) {
    px_channel_t *ch = NULL;
    px_status_t rc;
    unsigned long frames, k;
    size_t len;
    if (argc != 5) {
        fprintf(stderr, "usage: %s fd|connect <fd-or-path> <frames> <len>\n", argv[0]);
        return 2;
    }
    frames = strtoul(argv[3], NULL, 10);
    len = (size_t)strtoul(argv[4], NULL, 10);
    if (strcmp(argv[1], "fd") == 0)
        rc = px_channel_from_fd(atoi(argv[2]), &ch);
    else
        rc = px_channel_connect(argv[2], 5000000000LL, &ch);
    if (rc != PX_OK) {
        fprintf(stderr, "px_ipc_peer: %s\n", px_last_error_message());
        return 3;
    }
    for (k = 0; k < frames; ++k) {
        px_buffer_t *buf = NULL;
        if (px_channel_recv(ch, 10000000000LL, &buf) != PX_OK) {
            fprintf(stderr, "px_ipc_peer: frame %lu: %s\n", k, px_last_error_message());
            return 4;
        }
        if (!check(buf, k, len)) {
            fprintf(stderr, "px_ipc_peer: frame %lu is not intact\n", k);
            return 5;
        }
        px_buffer_release(buf);
    }
    px_channel_release(ch);
    return 0;
}
