// The return path of a channel: how slots lent to a peer come back.
//
// Each end of a channel makes a socketpair at the handshake and gives one end to the peer.
//  - ReturnInbox (the lender's side) keeps every loan it made to that peer, keyed by a token,
//    holding one reference on the lent slot. Returns are validated against that table: a token
//    that was never lent, or is returned twice, is refused and counted, never a double free.
//    When the peer's end hangs up (the peer released everything, or died), every loan still in
//    the table is reclaimed. The lender stays the only authority on its pools.
//  - ReturnOutbox (the borrower's side) sends tokens back. Every received buffer that is a
//    loan holds a RemoteLease, whose last release queues its token there.
// Tokens travel through the lender's return ring (ring.hpp) without a system call; when that
// ring is full, as `returns` records on the return socket. The socket also carries `wake`
// records for a lender asleep in loan_timeout, and its hang-up says the borrower is gone.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/ipc/ring.hpp"
#include "core/memory_pool.hpp"

namespace px::ipc {

struct ReturnCounters {
    uint64_t lent = 0;      // outstanding now
    uint64_t accepted = 0;
    uint64_t refused = 0;
    uint64_t reclaimed = 0;
};

class ReturnInbox final : public ReturnSource {
public:
    // Takes the socket; `control` is this end's control block (its return ring).
    ReturnInbox(int fd, Ref<Segment> control);
    ~ReturnInbox() override;

    // Records a loan; `lease` stays referenced until the peer returns `token` or goes away.
    void lend(uint64_t token, Ref<RefCounted> lease);
    // Takes back a loan whose record never reached the peer.
    void unlend(uint64_t token) noexcept;
    // The channel end that lends through this inbox has been released: once nothing is lent
    // any more, the inbox leaves the registry.
    void channel_closed() noexcept;

    int wait_fd() const noexcept override { return fd_; }
    void collect(bool thorough) noexcept override;
    void set_waiting(bool waiting) noexcept override;
    ReturnCounters counters() const;

private:
    void reclaim_all_locked(std::vector<Ref<RefCounted>> &drop) noexcept;
    void maybe_unregister_locked() noexcept;

    void take_back_locked(uint64_t token, std::vector<Ref<RefCounted>> &drop);
    void drain_socket_locked(std::vector<Ref<RefCounted>> &drop) noexcept;

    int fd_;
    Ref<Segment> control_;
    RingConsumer ring_;
    std::atomic<int64_t> last_socket_check_ns_{0};
    std::atomic<uint64_t> taken_{0}; // return-ring entries consumed so far (mirror of ring_)
    mutable std::mutex mutex_;
    std::unordered_map<uint64_t, Ref<RefCounted>> lent_;
    ReturnCounters counters_;
    bool hung_up_ = false;
    bool channel_open_ = true;
    bool registered_ = false;
};

class ReturnOutbox final : public RefCounted {
public:
    // Takes the socket; `lender_control` is the lender's control block (its return ring).
    ReturnOutbox(int fd, Ref<Segment> lender_control);
    ~ReturnOutbox() override; // closing it tells the lender that nothing more comes back

    void give_back(uint64_t token) noexcept;
    // Sends what could not be sent before (the lender's socket was full).
    void flush() noexcept;

private:
    void flush_locked() noexcept;

    int fd_;
    Ref<Segment> lender_control_;
    RingProducer ring_;
    bool ring_ok_ = true; // false once the lender's indices were found lying
    std::mutex mutex_;
    std::vector<uint64_t> pending_;
    std::atomic<bool> has_pending_{false};
    bool dead_ = false;
};

// Lease of a received buffer that the peer lent: its last release returns the token.
class RemoteLease final : public RefCounted {
public:
    RemoteLease(Ref<ReturnOutbox> outbox, uint64_t token)
        : outbox_(std::move(outbox)), token_(token) {}

private:
    void last_reference_dropped() noexcept override {
        outbox_->give_back(token_);
        delete this;
    }
    Ref<ReturnOutbox> outbox_;
    uint64_t token_;
};

} // namespace px::ipc
