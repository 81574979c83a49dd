// The return path of a channel: how slots lent to a peer come back.
//
// Each end of a channel makes a socketpair at the handshake and gives one end to the peer.
//  - ReturnInbox (the lender's side) keeps every loan it made to that peer in a table, holding
//    one reference on the lent slot. A loan's token names its table entry and that entry's
//    generation (bumped at every loan through it), so a return is one indexed look-up, and a
//    loan allocates nothing once the table has grown to the peer's working set. Returns are
//    validated against the table: a token that was never lent, is stale, or is returned twice
//    is refused and counted, never a double free.
//    When the peer's end hangs up (the peer released everything, or died), every loan still in
//    the table is reclaimed. The lender stays the only authority on its pools.
//  - ReturnOutbox (the borrower's side) sends tokens back. Every received buffer that is a
//    loan holds a RemoteLease, whose last release queues its token there. Leases are recycled
//    (the outbox keeps released ones for the receiver's next buffers): no allocation per buffer.
// Tokens travel through the lender's return ring (ring.hpp) without a system call; when that
// ring is full, as `returns` records on the return socket. The socket also carries `wake`
// records for a lender asleep in loan_timeout, and its hang-up says the borrower is gone.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
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

    // Records a loan and returns its token (never 0); `lease` stays referenced until the peer
    // returns the token or goes away. Throws closed once the peer has gone.
    uint64_t lend(Ref<RefCounted> lease);
    // The channel end that lends through this inbox has been released: once nothing is lent
    // any more, the inbox leaves the registry.
    void channel_closed() noexcept;

    int wait_fd() const noexcept override { return fd_; }
    void collect(bool thorough) noexcept override;
    // collect() with the caller's reading of coarse_now_ns() (a channel reads it once per call).
    void collect(bool thorough, int64_t coarse_now) noexcept;
    void set_waiting(bool waiting) noexcept override;
    ReturnCounters counters() const;

private:
    class DropList;
    void reclaim_all_locked(DropList &drop) noexcept;
    // Leaves the registry when done; the reference it held moves to `keep_alive`, which the
    // caller drops after the lock.
    void maybe_unregister_locked(Ref<ReturnInbox> &keep_alive) noexcept;

    void take_back_locked(uint64_t token, DropList &drop);
    void drain_socket_locked(DropList &drop) noexcept;

    // A table entry: a loan when `lease` is set, else free (on the free list).
    struct Loan {
        Ref<RefCounted> lease;
        uint32_t generation = 0; // of the last loan through this entry; tokens carry it
        uint32_t next_free = 0;
    };
    static constexpr uint32_t no_entry = UINT32_MAX;

    int fd_;
    Ref<Segment> control_;
    RingConsumer ring_;
    std::atomic<int64_t> last_socket_check_ns_{0};
    std::atomic<uint64_t> taken_{0}; // return-ring entries consumed so far (mirror of ring_)
    mutable std::mutex mutex_;
    std::vector<Loan> loans_; // token = generation << 32 | index
    uint32_t free_head_ = no_entry;
    size_t lent_count_ = 0;
    ReturnCounters counters_;
    bool hung_up_ = false;
    bool channel_open_ = true;
    bool registered_ = false;
};

class RemoteLease;

class ReturnOutbox final : public RefCounted {
public:
    // Takes the socket; `lender_control` is the lender's control block (its return ring).
    ReturnOutbox(int fd, Ref<Segment> lender_control);
    ~ReturnOutbox() override; // closing it tells the lender that nothing more comes back

    void give_back(uint64_t token) noexcept;
    // Sends what could not be sent before (the lender's socket was full).
    void flush() noexcept;

    // The lease of a received loan: a recycled one when there is one. One consumer at a time
    // (the channel's receive side, under its lock).
    Ref<RefCounted> lease(uint64_t token);

private:
    friend class RemoteLease;
    void flush_locked() noexcept;
    void recycle(RemoteLease *lease) noexcept;

    int fd_;
    Ref<Segment> lender_control_;
    RingProducer ring_;
    bool ring_ok_ = true; // false once the lender's indices were found lying
    std::mutex mutex_;
    std::vector<uint64_t> pending_;
    std::atomic<bool> has_pending_{false};
    bool dead_ = false;
    // Released leases, for lease(): pushed by any releasing thread, taken all at once by the
    // one consumer (so the stack has no ABA problem). spare_ is the consumer's own share.
    std::atomic<RemoteLease *> recycled_{nullptr};
    RemoteLease *spare_ = nullptr;
};

// Lease of a received buffer that the peer lent: its last release returns the token. While it
// is out, it holds a reference on its outbox; a recycled one holds nothing.
class RemoteLease final : public RefCounted {
private:
    friend class ReturnOutbox;
    RemoteLease() = default;
    ~RemoteLease() override = default;
    void last_reference_dropped() noexcept override;

    Ref<ReturnOutbox> outbox_;
    uint64_t token_ = 0;
    RemoteLease *next_ = nullptr; // in the outbox's stack of recycled leases
};

} // namespace px::ipc
