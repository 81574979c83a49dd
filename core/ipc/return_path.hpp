// SPDX-License-Identifier: Apache-2.0 OR MIT
// The return path of a channel: how slots lent to a peer come back.
//
// The two ends share one return socket (one end of a socketpair each, chosen in the handshake):
// each end reads the returns of what it lent from it and writes the returns of what it borrowed
// to it, so a channel end holds one return fd, not two.
//  - ReturnInbox (the lender's side) keeps every loan it made to that peer in a table, holding
//    one reference on the lent slot. A loan's token names its table entry and that entry's
//    generation (bumped at every loan through it), so a return is one indexed look-up, and a
//    loan allocates nothing once the table has grown to the peer's working set. Returns are
//    validated against the table: a token that was never lent, is stale, or is returned twice
//    is refused and counted, never a double free.
//    When the peer has gone — its return socket hangs up (it released everything, or died), or
//    its process exits (PeerWatch: a copy of its socket may live on elsewhere) — every loan
//    still in the table is reclaimed. The lender stays the only authority on its pools.
//  - ReturnOutbox (the borrower's side) sends tokens back. Every received buffer that is a
//    loan holds a RemoteLease, whose last release queues its token there. Leases are recycled
//    (the outbox keeps released ones for the receiver's next buffers): no allocation per buffer.
// Tokens travel through the lender's return ring (ring.hpp) without a system call; when that
// ring is full, as `returns` records on the return socket. The socket also carries `wake`
// records for a lender asleep in loan_timeout, and `hello` records: an end used for the first
// time in a forked child announces its new pid, so that the lender watches the right process.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "core/fd_guard.hpp"
#include "core/ipc/peer_watch.hpp"
#include "core/ipc/ring.hpp"
#include "core/memory_pool.hpp"

namespace px::ipc {

struct ReturnCounters {
    uint64_t lent = 0;      // outstanding now
    uint64_t accepted = 0;
    uint64_t refused = 0;
    uint64_t reclaimed = 0;
};

// The return socket, shared by an end's inbox and outbox: it closes (and the peer sees the
// hang-up) once both are gone.
class ReturnSocket final : public RefCounted {
public:
    explicit ReturnSocket(int fd) noexcept : fd_(fd) {}
    int fd() const noexcept { return fd_.fd; }

private:
    ~ReturnSocket() override = default;
    FdGuard fd_;
};

class ReturnInbox final : public ReturnSource {
public:
    // `control` is this end's control block (its return ring); `peer_pid` the borrower's
    // process, watched from now on.
    ReturnInbox(Ref<ReturnSocket> socket, Ref<Segment> control, pid_t peer_pid);
    ~ReturnInbox() override;

    // Records a loan and returns its token (never 0); `lease` stays referenced until the peer
    // returns the token or goes away. Throws closed once the peer has gone.
    uint64_t lend(Ref<RefCounted> lease);
    // The channel end that lends through this inbox has been released: once nothing is lent
    // any more, the inbox leaves the registry.
    void channel_closed() noexcept;

    // The return socket and the borrower's pidfd; nothing in a forked child whose copy of the
    // channel end is unused there (such a copy must not take the parent's returns: it stays
    // inert until its end is used).
    void add_wait_fds(std::vector<pollfd> &fds) const override;
    void collect(bool thorough) noexcept override;
    // collect() with the caller's reading of coarse_now_ns() (a channel reads it once per call).
    void collect(bool thorough, int64_t coarse_now) noexcept;
    void set_waiting(bool waiting) noexcept override;
    ReturnCounters counters() const;
    // Loans outstanding now (as of the last collect), without the lock.
    size_t lent_now() const noexcept { return lent_now_.load(std::memory_order_relaxed); }
    // The borrower has gone (hang-up, its process exited, or it broke the protocol). Looks at
    // the socket and the process at most once a millisecond.
    bool peer_gone() noexcept;
    // This end is used in this process (after a fork: the copy here becomes the live one, and
    // the peer, which may have been in this very process before, is watched from here).
    void adopt_process();
    // The borrower's process, as last announced.
    pid_t peer_pid() const;

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

    void check_peer_locked(DropList &drop) noexcept;

    Ref<ReturnSocket> socket_;
    Ref<Segment> control_;
    RingConsumer ring_;
    PeerWatch watch_;             // under mutex_
    std::atomic<uint64_t> fork_generation_; // of the process that uses this end
    std::atomic<int64_t> last_socket_check_ns_{0};
    std::atomic<uint64_t> taken_{0}; // return-ring entries consumed so far (mirror of ring_)
    mutable std::mutex mutex_;
    std::vector<Loan> loans_; // token = generation << 32 | index
    uint32_t free_head_ = no_entry;
    size_t lent_count_ = 0;
    std::atomic<size_t> lent_now_{0}; // mirror of lent_count_, for lent_now()
    ReturnCounters counters_;
    bool hung_up_ = false;
    bool channel_open_ = true;
    bool registered_ = false;
};

class RemoteLease;

class ReturnOutbox final : public RefCounted {
public:
    // `lender_control` is the lender's control block (its return ring).
    ReturnOutbox(Ref<ReturnSocket> socket, Ref<Segment> lender_control);
    ~ReturnOutbox() override;

    void give_back(uint64_t token) noexcept;
    // Tells the lender that this end now lives in process `pid` (a hello record). Throws closed
    // when the lender has gone, io when the socket is full or failing.
    void announce(pid_t pid);
    // The connection is dropped: the return socket goes down both ways (the lender reclaims
    // what it lent us; what we lent comes back to our inbox), and nothing more is sent.
    void shut_down() noexcept;
    // Sends what could not be sent before (the lender's socket was full).
    void flush() noexcept;

    // The lease of a received loan: a recycled one when there is one. One consumer at a time
    // (the channel's receive side, under its lock).
    Ref<RefCounted> lease(uint64_t token);

private:
    friend class RemoteLease;
    void flush_locked() noexcept;
    void recycle(RemoteLease *lease) noexcept;

    Ref<ReturnSocket> socket_;
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
