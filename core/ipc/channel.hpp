// Channel: one end of a connection between two processes that carries buffers zero-copy.
//
// Three paths connect two ends:
//   - the main socket (AF_UNIX, SOCK_SEQPACKET): the handshake, each segment's fd once
//     (a read-only description of a memfd sealed against future writes), wake-ups for a peer
//     that is not polling, and hang-up;
//   - the data ring in the sender's control block (ring.hpp): one fixed-size descriptor record
//     per buffer, no system call when the receiver is polling or spinning in recv;
//   - the return path (return_path.hpp): slot returns, by ring, socket, or hang-up.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/buffer.hpp"
#include "core/ipc/handshake.hpp"
#include "core/ipc/return_path.hpp"
#include "core/ipc/ring.hpp"
#include "core/ipc/wire.hpp"
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

constexpr int64_t default_spin_ns = 20'000;
// Limits against a hostile peer.
constexpr size_t max_segments_per_channel = 1024;
// Registered send-side segments kept alive for the peer before sends are refused.
constexpr size_t max_sent_segments = 256;

class Channel final : public RefCounted {
public:
    // Two connected ends in this process, handshake done (made for fork()).
    static std::pair<Ref<Channel>, Ref<Channel>> pair();
    // Adopts a connected AF_UNIX SOCK_SEQPACKET socket (closed on failure) and handshakes.
    static Ref<Channel> from_fd(int socket_fd, int64_t handshake_timeout_ns);
    // Connects to a listener's path, retrying while nobody listens yet, up to timeout_ns.
    static Ref<Channel> connect(const std::string &path, int64_t timeout_ns);
    // An end whose handshake is done (the listener runs handshakes itself).
    static Ref<Channel> from_connection(Connection conn);

    // timeout_ns bounds the wait while the peer is too far behind (< 0: forever).
    void send(const Buffer &buf, int64_t timeout_ns = -1);
    // timeout_ns: < 0 forever, 0 poll (would_block), > 0 wait (timeout).
    Buffer recv(int64_t timeout_ns);
    // recv's busy-poll budget before sleeping: 0 never spins, < 0 never sleeps.
    void set_spin_ns(int64_t ns) noexcept { spin_ns_.store(ns, std::memory_order_relaxed); }
    // Pollable: readable when recv may not block (an epoll set of the socket and a doorbell).
    // From the first call on, the sender rings the socket for a receiver outside recv.
    int fd() noexcept;
    ChannelStats stats() const;

    ~Channel() override;

private:
    explicit Channel(Connection conn);

    // Send side (send_mutex_ held). A record goes out as reserve_entry (waits while the ring
    // is full; throws), writing it there, then publish_entry.
    uint8_t *reserve_entry(int64_t deadline_ns, int64_t timeout_ns);
    void publish_entry() noexcept;
    void push_record(const wire::Bytes &rec, int64_t deadline_ns, int64_t timeout_ns);
    void wake_consumer() noexcept;
    // Polls the socket for a hang-up at most once a millisecond, unless `now`. coarse_now:
    // the caller's coarse_now_ns(), or < 0 to read it here.
    void check_peer_alive(bool now, int64_t coarse_now = -1);
    void forget_unused_segments(int64_t deadline_ns, int64_t timeout_ns);
    uint32_t register_segment(const Buffer &buf);

    // Receive side (recv_mutex_ held).
    std::optional<Buffer> take_record();
    // Reads what the socket holds; returns how many segments were registered.
    size_t pump_socket();
    void handle_segment(const wire::SegmentInfo &info, std::vector<int> &fds);
    Buffer make_buffer(const wire::Data &d);
    void forget_received_segment_cache() noexcept; // before any erase from received_segments_
    void drop(const std::string &why);
    [[noreturn]] void fail_dropped() const;

    int sock_;
    int poll_fd_ = -1;  // epoll: the socket (wake records, registrations, hang-up) + doorbell
    int doorbell_ = -1; // eventfd we ring ourselves when recv leaves records in the ring
    bool doorbell_rung_ = false;
    Ref<Segment> own_control_;  // our rings: we produce data, we consume returns
    Ref<Segment> peer_control_; // the peer's: we consume its data, we produce returns
    Ref<ReturnInbox> inbox_;    // returns of what this end lends
    Ref<ReturnOutbox> outbox_;  // where this end returns what it borrowed
    uint64_t peer_pid_ = 0;
    std::atomic<int64_t> spin_ns_{default_spin_ns};

    // Send side: segments whose fd the peer has, keyed by Segment::serial().
    struct Sent {
        uint32_t id;
        Ref<Segment> segment;
    };
    mutable std::mutex send_mutex_;
    RingProducer data_out_;
    std::unordered_map<uint64_t, Sent> sent_segments_;
    uint32_t next_segment_id_ = 1;
    uint64_t last_sent_serial_ = 0; // the segment of the last send (0: none) and its id
    uint32_t last_sent_id_ = 0;
    uint64_t buffers_sent_ = 0;
    uint64_t segments_registered_ = 0;
    int64_t last_alive_check_ns_ = 0;
    bool peer_gone_ = false;
    std::string send_broken_; // non-empty once the peer lied about the ring

    // Receive side: segments the peer registered, by id.
    mutable std::mutex recv_mutex_;
    RingConsumer data_in_;
    std::unordered_map<uint32_t, Ref<Segment>> received_segments_;
    uint32_t last_received_id_ = 0; // the segment of the last record (0: none) and its entry
    const Ref<Segment> *last_received_segment_ = nullptr;
    uint64_t buffers_received_ = 0;
    bool peer_hung_up_ = false;
    std::string dropped_; // non-empty once a protocol error dropped the connection
};

} // namespace px::ipc
