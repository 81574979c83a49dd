// TEMPORARY: channel entry points until core/ipc lands (replaced in the IPC work, issue 4).
#include "capi/guard.hpp"

using namespace px;
using namespace px::capi;

namespace {
px_status_t not_yet(const char *fn) {
    return px_guard(fn, [] { fail(Status::unsupported, "channels are not built yet"); });
}
} // namespace

extern "C" {
px_status_t px_ipc_send_fd(int, int) { return not_yet(__func__); }
px_status_t px_ipc_recv_fd(int, int64_t, int *) { return not_yet(__func__); }
px_status_t px_channel_pair(px_channel_t **, px_channel_t **) { return not_yet(__func__); }
px_status_t px_channel_from_fd(int, px_channel_t **) { return not_yet(__func__); }
px_status_t px_listener_new(const char *, px_listener_t **) { return not_yet(__func__); }
px_status_t px_listener_accept(px_listener_t *, int64_t, px_channel_t **) { return not_yet(__func__); }
int px_listener_fd(const px_listener_t *) { return -1; }
void px_listener_release(px_listener_t *) {}
px_status_t px_channel_connect(const char *, int64_t, px_channel_t **) { return not_yet(__func__); }
px_status_t px_channel_send(px_channel_t *, const px_buffer_t *) { return not_yet(__func__); }
px_status_t px_channel_recv(px_channel_t *, int64_t, px_buffer_t **) { return not_yet(__func__); }
int px_channel_fd(const px_channel_t *) { return -1; }
void px_channel_release(px_channel_t *) {}
px_status_t px_channel_get_stats(const px_channel_t *, px_channel_stats_t *) { return not_yet(__func__); }
}
