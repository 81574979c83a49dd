// Channel: one end of a connection between two processes that carries buffers zero-copy.
//
// The main socket (AF_UNIX, SOCK_SEQPACKET) carries fixed-size data records; a segment's fd
// crosses it once, attached to the first record that uses the segment (as a read-only file
// description of a memfd sealed against future writes). The return path (return_path.hpp) runs
// on a second socketpair exchanged in the handshake, so that slot returns never sit in front of
// data and the lender can poll for them on their own.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/buffer.hpp"
#include "core/ipc/return_path.hpp"
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

constexpr int64_t default_handshake_timeout_ns = 10'000'000'000;

class Channel final : public RefCounted {
public:
    // Two connected ends in this process, handshake done (made for fork()).
    static std::pair<Ref<Channel>, Ref<Channel>> pair();
    // Adopts a connected AF_UNIX SOCK_SEQPACKET socket (closed on failure) and handshakes.
    static Ref<Channel> from_fd(int socket_fd, int64_t handshake_timeout_ns);
    // Connects to a listener's path, retrying while nobody listens yet, up to timeout_ns.
    static Ref<Channel> connect(const std::string &path, int64_t timeout_ns);

    // timeout_ns bounds the wait while the peer is too far behind (< 0: forever).
    void send(const Buffer &buf, int64_t timeout_ns = -1);
    // recv's busy-poll budget before sleeping: 0 never spins, < 0 never sleeps.
    void set_spin_ns(int64_t ns) noexcept { spin_ns_.store(ns, std::memory_order_relaxed); }
    // timeout_ns: < 0 forever, 0 poll (would_block), > 0 wait (timeout).
    Buffer recv(int64_t timeout_ns);
    int fd() const noexcept { return sock_; }
    ChannelStats stats() const;

    ~Channel() override;

    // For the listener: a freshly accepted socket, not yet greeted.
    static Ref<Channel> adopt_unshaken(int socket_fd);
    // Both halves of the handshake; split so that pair() can run them in one thread.
    void send_hello();
    void receive_hello(int64_t timeout_ns);

private:
    explicit Channel(int socket_fd);
    void drop(const std::string &why); // after a protocol error
    [[noreturn]] void fail_dropped() const;
    void handle_unregister(uint32_t id);
    Buffer handle_data(const wire::Data &d, std::vector<int> &fds);
    void forget_unused_segments_locked();

    int sock_;
    Ref<ReturnInbox> inbox_;   // returns of what this end lends
    Ref<ReturnOutbox> outbox_; // where this end returns what it borrowed
    uint64_t peer_pid_ = 0;
    std::atomic<int64_t> spin_ns_{20000};

    // Send side: segments whose fd the peer has, keyed by Segment::serial().
    struct Sent {
        uint32_t id;
        Ref<Segment> segment;
    };
    mutable std::mutex send_mutex_;
    std::unordered_map<uint64_t, Sent> sent_segments_;
    uint32_t next_segment_id_ = 1;
    uint64_t next_token_ = 1;
    uint64_t buffers_sent_ = 0;
    uint64_t segments_registered_ = 0;

    // Receive side: segments the peer registered, by id.
    mutable std::mutex recv_mutex_;
    std::unordered_map<uint32_t, Ref<Segment>> received_segments_;
    uint64_t buffers_received_ = 0;
    std::string dropped_; // non-empty once a protocol error dropped the connection
};

// Limits against a hostile peer.
constexpr size_t max_segments_per_channel = 1024;
// Registered send-side segments kept before the least useful are forgotten.
constexpr size_t max_sent_segments = 256;

} // namespace px::ipc
