// SPDX-License-Identifier: Apache-2.0 OR MIT
// Channel: one end of a connection between two processes that carries buffers zero-copy.
//
// Three paths connect two ends:
//   - the main socket (AF_UNIX, SOCK_SEQPACKET): the handshake (handshake.hpp), each segment's
//     fd once (a read-only description of a memfd sealed against future writes), wake records
//     for a peer that polls px_channel_fd (wake.hpp), and hang-up;
//   - the data ring in the sender's control block (ring.hpp): one fixed-size descriptor record
//     per buffer, no system call when the receiver is polling or spinning in recv;
//   - the return path (return_path.hpp): slot returns, by ring or return socket; the peer's
//     death, by hang-up or by its process exiting (peer_watch.hpp).
// An end is a send side and a receive side (send_side.hpp, recv_side.hpp), each with its own
// lock, over the connection the handshake made.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/buffer.hpp"
#include "core/ipc/handshake.hpp"
#include "core/ipc/recv_side.hpp"
#include "core/ipc/send_side.hpp"
#include "core/ref.hpp"

namespace px::ipc {

struct ChannelStats {
    uint64_t buffers_sent = 0;
    uint64_t buffers_received = 0;
    uint64_t segments_registered = 0;
    uint64_t slots_lent = 0;
    uint64_t returns_accepted = 0;
    uint64_t returns_refused = 0;
    uint64_t slots_reclaimed = 0;
    uint64_t peer_pid = 0;
};

class Channel final : public RefCounted {
public:
    // Two connected ends in this process, handshake done (made for fork()).
    static std::pair<Ref<Channel>, Ref<Channel>> pair();
    // Adopts a connected AF_UNIX SOCK_SEQPACKET socket (closed on failure) and handshakes.
    static Ref<Channel> from_fd(int socket_fd, int64_t handshake_timeout_ns);
    // Connects to a listener's path, retrying while nobody listens yet, up to timeout_ns.
    // `min_handshake`: see handshake_timeout_within.
    static Ref<Channel> connect(const std::string &path, int64_t timeout_ns,
                                int64_t min_handshake = min_handshake_ns);
    // An end whose handshake is done (the listener runs handshakes itself).
    static Ref<Channel> from_connection(Connection conn);

    // timeout_ns bounds the wait while the peer is too far behind (< 0: forever). `tag`: what
    // the record is to a stream (core/stream numbers its frames; plain channels leave it).
    void send(const Buffer &buf, int64_t timeout_ns = -1, wire::StreamTag tag = {});
    // send that answers false instead of throwing closed when the peer has gone: for a stream,
    // which meets departed subscribers as a matter of course (see SendSide::send_unless_closed).
    [[nodiscard]] bool send_unless_closed(const Buffer &buf, int64_t timeout_ns,
                                          wire::StreamTag tag = {},
                                          Returns returns = Returns::after);
    // A stream's channels: the publisher's end to a subscriber wakes it through the stream's
    // word (set before its first record; from then on the publisher makes every call on that
    // end under its own lock, and the end's sends take none of theirs); the subscriber's end
    // sleeps on it once it has the publisher's stream_wake record.
    void set_stream_wake(Ref<StreamWake> stream) { send_.set_stream(std::move(stream)); }
    void sleep_on_stream(const Buffer &page) { recv_.sleep_on_stream(page); }
    // See SendSide::register_ahead.
    bool register_ahead(const Ref<Segment> &segment);
    // timeout_ns: < 0 forever, 0 poll (would_block), > 0 wait (timeout). `tag` (nullable):
    // receives the record's stream tag; without it a stream's own record is a protocol error.
    Buffer recv(int64_t timeout_ns, wire::StreamTag *tag = nullptr);
    // recv(0) that answers "nothing yet" with nullopt instead of an exception (RecvSide).
    std::optional<Buffer> try_recv(wire::StreamTag *tag = nullptr);
    // recv that answers "nothing yet" (a poll that found nothing) with nullopt: for a layer
    // above that returns an optional itself (a stream's subscriber), one move of the buffer
    // fewer than recv.
    // `filter` (nullable): see RecvSide::receive.
    std::optional<Buffer> receive(int64_t timeout_ns, wire::StreamTag *tag,
                                  RecordFilter *filter = nullptr);
    // What this end has lent to the peer and not had back: buffers the peer holds plus those
    // queued for it (returns collected first). A stream's per-subscriber credit.
    size_t in_flight();
    // in_flight() as of the last look at the returns: never less than in_flight() (returns only
    // lower it), read without touching the peer's return ring. A credit test before a send
    // that would otherwise pay the ring's cache-line transfers ahead of the record.
    size_t in_flight_at_most() const noexcept { return conn_.inbox->lent_now(); }
    // While waiting for the peer to give something back: from wait_for_returns(true) to its
    // wait_for_returns(false) (counted, like a pool's wait) the peer rings the return socket for
    // each return, and add_return_wait_fds adds the fds that become readable then (the return
    // socket, the peer's pidfd). collect_returns takes back what came, doorbells included.
    void wait_for_returns(bool waiting) noexcept { conn_.inbox->set_waiting(waiting); }
    void add_return_wait_fds(std::vector<pollfd> &fds) const { conn_.inbox->add_wait_fds(fds); }
    void collect_returns() noexcept { conn_.inbox->collect(true); }
    // The peer has gone (hang-up, its process exited, or it broke the protocol of returns).
    bool peer_gone() noexcept { return conn_.inbox->peer_gone(); }
    // See RecvSide::abandon: for a protocol carried over the channel (streams).
    void abandon(const std::string &why) { recv_.abandon(why); }
    // The peer's receiver last slept on this thread's CPU (a hint).
    bool receiver_shares_cpu() const noexcept { return send_.receiver_shares_cpu(); }
    // How many records the peer's receiver has taken so far (a position in the ring: it moves
    // when the receiver runs).
    uint64_t receiver_position() const noexcept { return send_.receiver_position(); }
    // The main socket, to poll for the peer's hang-up (or bytes it should not send) without
    // the epoll set and doorbell fd() makes. Borrowed; never read from it directly.
    int socket_fd() const noexcept { return conn_.sock.fd; }
    // recv's busy-poll budget before sleeping: 0 never spins, < 0 never sleeps.
    void set_spin_ns(int64_t ns) noexcept { recv_.set_spin_ns(ns); }
    // Pollable: readable when recv may not block (an epoll set of the socket and a doorbell,
    // made at the first call: throws io when the process is out of fds).
    int fd();
    ChannelStats stats();

    ~Channel() override;

private:
    explicit Channel(Connection conn);
    // An end used for the first time in a forked child: tell the peer which process it now
    // talks to, and watch the peer from here. One relaxed load when nothing forked.
    void follow_fork() {
        if (fork_generation() != fork_generation_.load(std::memory_order_relaxed))
            adopt_process();
    }
    void adopt_process();

    Connection conn_;
    std::atomic<uint64_t> fork_generation_;
    std::mutex fork_mutex_;
    SendSide send_;
    RecvSide recv_;
};

} // namespace px::ipc
