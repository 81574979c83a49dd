/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* Compiles the public header alone, pedantic, warnings as errors (see CMakeLists.txt). */
#include <parallax/parallax.h>

int px_header_check(void);
int px_header_check(void) {
    px_metadata_t meta;
    px_ipc_handle_t handle;
    px_channel_stats_t stats;
    px_metadata_init(&meta);
    handle.kind = PX_IPC_FD;
    stats.buffers_sent = 0;
    return (int)sizeof(meta) + handle.kind + (int)stats.buffers_sent + PX_E_INVALID;
}
