// SPDX-License-Identifier: Apache-2.0 OR MIT
// px_ipc_*, px_channel_*, px_listener_*.
#include <fcntl.h>
#include <optional>
#include <unistd.h>

#include "capi/guard.hpp"
#include "capi/handles.hpp"
#include "core/hot.hpp"
#include "core/ipc/channel.hpp"
#include "core/ipc/fd_passing.hpp"
#include "core/ipc/listener.hpp"

using namespace px;
using namespace px::capi;
using px::ipc::Channel;
using px::ipc::Listener;

extern "C" {

px_status_t px_ipc_send_fd(int socket_fd, int fd) {
    return px_guard(__func__, [&] {
        if (socket_fd < 0)
            fail(Status::invalid, "socket_fd " + std::to_string(socket_fd) + " is not an fd");
        if (fd < 0 || ::fcntl(fd, F_GETFD) < 0)
            fail(Status::invalid, "fd " + std::to_string(fd) + " is not an open file descriptor");
        const char byte = 'F';
        ipc::send_message(socket_fd, &byte, 1, &fd, 1);
    });
}

px_status_t px_ipc_recv_fd(int socket_fd, int64_t timeout_ns, int *out_fd) {
    return px_guard(__func__, [&] {
        require(out_fd, "out_fd");
        *out_fd = -1;
        if (socket_fd < 0)
            fail(Status::invalid, "socket_fd " + std::to_string(socket_fd) + " is not an fd");
        if (!ipc::wait_readable(socket_fd, timeout_ns))
            fail(timeout_ns == 0 ? Status::would_block : Status::timeout,
                 "no fd arrived in time");
        char bytes[256]; // the payload is ignored; it only carries the fd
        ipc::Received r = ipc::recv_message(socket_fd, bytes, sizeof bytes, 1, true);
        if (r.would_block) // another reader took it between the poll and the read
            fail(timeout_ns == 0 ? Status::would_block : Status::timeout, "no fd arrived in time");
        if (r.closed)
            fail(Status::closed, "the peer closed the socket");
        if (r.fds.empty())
            fail(Status::protocol, "a message arrived without an fd");
        *out_fd = r.fds[0];
    });
}

px_status_t px_channel_pair(px_channel_t **a, px_channel_t **b) {
    return px_guard(__func__, [&] {
        require_out(a, "a");
        require_out(b, "b");
        auto [ca, cb] = Channel::pair();
        *a = to_handle(ca.detach());
        *b = to_handle(cb.detach());
    });
}

px_status_t px_channel_from_fd(int socket_fd, px_channel_t **out) {
    return px_guard(__func__, [&] {
        if (!out) {
            if (socket_fd >= 0)
                ::close(socket_fd); // ownership was taken, also on failure
            fail(Status::invalid, "out is NULL");
        }
        *out = nullptr;
        *out = to_handle(Channel::from_fd(socket_fd, ipc::default_handshake_timeout_ns).detach());
    });
}

px_status_t px_listener_new(const char *path, px_listener_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        *out = to_handle(Listener::create(require_text(path, "path")).detach());
    });
}

px_status_t px_listener_accept(px_listener_t *listener, int64_t timeout_ns, px_channel_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        *out = to_handle(from_handle(require(listener, "listener"))->accept(timeout_ns).detach());
    });
}

int px_listener_fd(const px_listener_t *listener) {
    return listener ? from_handle(listener)->fd() : -1;
}

void px_listener_release(px_listener_t *listener) {
    if (listener)
        from_handle(listener)->release_ref();
}

px_status_t px_channel_connect(const char *path, int64_t timeout_ns, px_channel_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        *out = to_handle(Channel::connect(require_text(path, "path"), timeout_ns).detach());
    });
}

PX_HOT px_status_t px_channel_send(px_channel_t *ch, const px_buffer_t *buf) {
    return px_guard(__func__, [&] {
        require(ch, "ch");
        from_handle(ch)->send(*from_handle(require(buf, "buf")));
    });
}

PX_HOT px_status_t px_channel_recv(px_channel_t *ch, int64_t timeout_ns, px_buffer_t **out) {
    return px_guard_poll(__func__, [&](bool &nothing) {
        require_out(out);
        if (timeout_ns != 0)
            *out = new_buffer_handle(from_handle(require(ch, "ch"))->recv(timeout_ns));
        else if (std::optional<Buffer> b = from_handle(require(ch, "ch"))->try_recv())
            *out = new_buffer_handle(std::move(*b));
        else
            nothing = true;
    });
}

PX_HOT px_status_t px_channel_send_timeout(px_channel_t *ch, const px_buffer_t *buf, int64_t timeout_ns) {
    return px_guard(__func__, [&] {
        require(ch, "ch");
        from_handle(ch)->send(*from_handle(require(buf, "buf")), timeout_ns);
    });
}

px_status_t px_channel_set_spin_ns(px_channel_t *ch, int64_t spin_ns) {
    return px_guard(__func__, [&] { from_handle(require(ch, "ch"))->set_spin_ns(spin_ns); });
}

int px_channel_fd(const px_channel_t *ch) {
    // The epoll set and doorbell are made at the first call, which can run out of fds: -1, with
    // the reason in px_last_error_message().
    int fd = -1;
    px_guard("px_channel_fd", [&] { fd = from_handle(require(ch, "ch"))->fd(); });
    return fd;
}

void px_channel_release(px_channel_t *ch) {
    if (ch)
        from_handle(ch)->release_ref();
}

px_status_t px_channel_get_stats(const px_channel_t *ch, px_channel_stats_t *out) {
    return px_guard(__func__, [&] {
        require_out(out);
        ipc::ChannelStats s = from_handle(require(ch, "ch"))->stats();
        out->buffers_sent = s.buffers_sent;
        out->buffers_received = s.buffers_received;
        out->segments_registered = s.segments_registered;
        out->slots_lent = s.slots_lent;
        out->returns_accepted = s.returns_accepted;
        out->returns_refused = s.returns_refused;
        out->slots_reclaimed = s.slots_reclaimed;
        out->peer_pid = s.peer_pid;
    });
}

} // extern "C"
