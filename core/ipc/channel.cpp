// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/ipc/channel.hpp"

#include <cerrno>
#include <chrono>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/fd_guard.hpp"
#include "core/hot.hpp"
#include "core/ipc/fd_passing.hpp"
#include "core/memory_pool.hpp"

namespace px::ipc {

Channel::Channel(Connection conn)
    : conn_(std::move(conn)), fork_generation_(fork_generation()),
      send_(conn_.sock.fd, conn_.own_control, *conn_.inbox),
      recv_(conn_.sock.fd, conn_.peer_control, *conn_.outbox, *conn_.inbox) {}

Channel::~Channel() {
    send_.on_close(); // a peer asleep on our ring wakes and finds the hang-up
    conn_.inbox->channel_closed();
    const bool peer_here = conn_.inbox->peer_pid() == ::getpid();
    conn_.sock.reset(); // the peer sees PX_E_CLOSED once its ring is drained
    // A peer already gone: what we lent it comes back now, and the inbox lets go of its return
    // socket, pidfd and control block (else it waits for a pool's next shortage).
    conn_.inbox->collect(true);
    conn_.inbox = nullptr;
    conn_.outbox = nullptr;
    // Our return socket closes once our inbox has nothing lent and our received buffers are
    // released. A peer end in this very process (a pair used without fork) may be waiting for
    // that to take back what it lent us: it learns it now, not at its pool's next shortage.
    // Only then: collecting reads the return socket and pidfd of every channel in the process
    // (a publisher with 64 subscribers paid 64 of each per departure).
    if (peer_here)
        collect_all_returns(true);
}

Ref<Channel> Channel::from_connection(Connection conn) {
    return Ref<Channel>::adopt(new Channel(std::move(conn)));
}

std::pair<Ref<Channel>, Ref<Channel>> Channel::pair() {
    auto [a_fd, b_fd] = seqpacket_pair();
    auto [a, b] = handshake_pair(a_fd, b_fd);
    return {from_connection(std::move(a)), from_connection(std::move(b))};
}

Ref<Channel> Channel::from_fd(int socket_fd, int64_t handshake_timeout_ns) {
    FdGuard guard{socket_fd};
    if (socket_fd < 0)
        fail(Status::invalid, "fd " + std::to_string(socket_fd) + " is not a file descriptor");
    check_seqpacket_unix(socket_fd);
    return from_connection(handshake(guard.release(), handshake_timeout_ns));
}

Ref<Channel> Channel::connect(const std::string &path, int64_t timeout_ns,
                              int64_t min_handshake) {
    sockaddr_un addr = unix_address(path);
    const int64_t deadline = deadline_for(timeout_ns);
    for (;;) {
        int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
            fail_errno("socket(AF_UNIX, SOCK_SEQPACKET)", errno);
        FdGuard guard{fd};
        if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0)
            return from_connection(
                handshake(guard.release(), handshake_timeout_within(deadline, min_handshake)));
        int err = errno;
        bool nobody_yet = err == ENOENT || err == ECONNREFUSED || err == EAGAIN;
        if (!nobody_yet)
            fail_errno("connect(" + path + ")", err);
        if (timeout_ns == 0)
            fail(Status::would_block, "nobody is listening on " + path);
        if (now_ns() >= deadline)
            fail(Status::timeout, "nobody listened on " + path + " within " +
                                      std::to_string(timeout_ns) + " ns");
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

int Channel::fd() {
    follow_fork();
    return recv_.fd();
}

PX_HOT void Channel::send(const Buffer &buf, int64_t timeout_ns, wire::StreamTag tag) {
    follow_fork();
    conn_.outbox->flush();
    send_.send(buf, timeout_ns, tag);
}

PX_HOT bool Channel::send_unless_closed(const Buffer &buf, int64_t timeout_ns, wire::StreamTag tag,
                                 Returns returns) {
    follow_fork();
    // A stream publisher's end never receives, so it has no returns to send: its sends skip
    // the outbox (a line of its own, cold at every frame).
    if (!send_.stream_end())
        conn_.outbox->flush();
    return send_.send_unless_closed(buf, timeout_ns, tag, returns);
}

bool Channel::register_ahead(const Ref<Segment> &segment) {
    follow_fork();
    return send_.register_ahead(segment);
}

PX_HOT Buffer Channel::recv(int64_t timeout_ns, wire::StreamTag *tag) {
    follow_fork();
    conn_.outbox->flush();
    conn_.inbox->collect(false); // see SendSide::send
    return recv_.recv(timeout_ns, tag);
}

PX_HOT std::optional<Buffer> Channel::try_recv(wire::StreamTag *tag) {
    return receive(0, tag);
}

PX_HOT std::optional<Buffer> Channel::receive(int64_t timeout_ns, wire::StreamTag *tag,
                                              RecordFilter *filter) {
    follow_fork();
    conn_.outbox->flush();
    conn_.inbox->collect(false);
    return recv_.receive(timeout_ns, tag, filter);
}

size_t Channel::in_flight() {
    follow_fork();
    conn_.inbox->collect(false);
    return conn_.inbox->lent_now();
}

void Channel::adopt_process() {
    std::lock_guard lock(fork_mutex_);
    const uint64_t now = fork_generation();
    if (now == fork_generation_.load(std::memory_order_relaxed))
        return;
    conn_.inbox->adopt_process();
    try {
        conn_.outbox->announce(::getpid());
    } catch (const Error &) {
        // The peer has gone or does not read: the call that brought us here finds out.
    }
    fork_generation_.store(now, std::memory_order_relaxed);
}

ChannelStats Channel::stats() {
    follow_fork();
    ChannelStats s;
    const SendSide::Counters sent = send_.counters();
    s.buffers_sent = sent.buffers_sent;
    s.segments_registered = sent.segments_registered;
    s.buffers_received = recv_.buffers_received();
    conn_.inbox->collect(true);
    ReturnCounters c = conn_.inbox->counters();
    s.slots_lent = c.lent;
    s.returns_accepted = c.accepted;
    s.returns_refused = c.refused;
    s.slots_reclaimed = c.reclaimed;
    s.peer_pid = static_cast<uint64_t>(conn_.inbox->peer_pid());
    return s;
}

} // namespace px::ipc
