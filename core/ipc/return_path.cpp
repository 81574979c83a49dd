// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/ipc/return_path.hpp"

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/hot.hpp"
#include "core/ipc/fd_passing.hpp"
#include "core/ipc/wire.hpp"

namespace px::ipc {

namespace {

constexpr int64_t socket_check_interval_ns = 1'000'000;

} // namespace

// ---------------------------------------------------------------------------------------------
// DropList: leases taken back under the inbox's lock, released after it (a returned slot may
// wake or free its pool). The first few live on the stack; a longer list (a full ring, a
// reclaim) in a vector reused by the thread, so that taking back frames allocates nothing.

class ReturnInbox::DropList {
public:
    DropList() = default;
    DropList(const DropList &) = delete;
    DropList &operator=(const DropList &) = delete;
    ~DropList() {
        for (size_t i = 0; i < n_; ++i)
            near_[i] = nullptr;
        if (far_)
            far_->clear();
    }
    void push_back(Ref<RefCounted> lease) {
        if (n_ < near_size) {
            near_[n_++] = std::move(lease);
            return;
        }
        if (!far_) {
            thread_local std::vector<Ref<RefCounted>> reused;
            far_ = &reused;
        }
        far_->push_back(std::move(lease));
    }

private:
    static constexpr size_t near_size = 8;
    Ref<RefCounted> near_[near_size];
    size_t n_ = 0;
    std::vector<Ref<RefCounted>> *far_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// ReturnInbox: the lender's side.

ReturnInbox::ReturnInbox(Ref<ReturnSocket> socket, Ref<Segment> control, pid_t peer_pid)
    : socket_(std::move(socket)), control_(std::move(control)),
      ring_(&control_of(*control_)->return_tail, &control_of(*control_)->return_head,
            return_ring_entries),
      fork_generation_(fork_generation()) {
    watch_.follow(peer_pid);
    register_return_source(this);
    registered_ = true;
}

ReturnInbox::~ReturnInbox() = default;

void ReturnInbox::add_wait_fds(std::vector<pollfd> &fds) const {
    if (fork_generation_.load(std::memory_order_relaxed) != fork_generation())
        return;
    fds.push_back({socket_->fd(), POLLIN, 0});
    std::lock_guard lock(mutex_);
    // The pidfd changes only when the borrower announces a new process; a waiter polling the
    // one it replaced wakes (POLLNVAL) and looks again.
    if (watch_.fd() >= 0)
        fds.push_back({watch_.fd(), POLLIN, 0});
}

void ReturnInbox::adopt_process() {
    std::lock_guard lock(mutex_);
    watch_.follow(watch_.pid()); // from here, the peer may be another process than before
    fork_generation_.store(fork_generation(), std::memory_order_relaxed);
}

pid_t ReturnInbox::peer_pid() const {
    std::lock_guard lock(mutex_);
    return watch_.pid();
}

bool ReturnInbox::peer_gone() noexcept {
    collect(false);
    std::lock_guard lock(mutex_);
    return hung_up_;
}

void ReturnInbox::check_peer_locked(DropList &drop) noexcept {
    drain_socket_locked(drop);
    if (!hung_up_ && watch_.gone())
        hung_up_ = true; // its process exited, whoever still holds a copy of its socket
}

PX_HOT uint64_t ReturnInbox::lend(Ref<RefCounted> lease) {
    std::lock_guard lock(mutex_);
    if (hung_up_)
        fail(Status::closed, "the peer has gone; nothing can be lent to it");
    uint32_t i = free_head_;
    if (i == no_entry) {
        if (loans_.size() >= no_entry)
            fail(Status::busy, "too many slots lent to one peer");
        loans_.emplace_back(); // the table grows to the largest number of loans out at once
        i = static_cast<uint32_t>(loans_.size() - 1);
    } else {
        free_head_ = loans_[i].next_free;
    }
    Loan &loan = loans_[i];
    loan.lease = std::move(lease);
    if (++loan.generation == 0) // 0 would make token 0 (no loan) possible
        loan.generation = 1;
    counters_.lent = ++lent_count_;
    lent_now_.store(lent_count_, std::memory_order_relaxed);
    return uint64_t{loan.generation} << 32 | i;
}

void ReturnInbox::channel_closed() noexcept {
    Ref<ReturnInbox> keep_alive; // outlives the lock
    std::lock_guard lock(mutex_);
    channel_open_ = false;
    maybe_unregister_locked(keep_alive);
}

void ReturnInbox::set_waiting(bool waiting) noexcept {
    // A count of this process's waiters (the borrower rings while it is not 0): one waiter's
    // false leaves another's true in force.
    auto &word = control_of(*control_)->owner_waits_for_returns;
    if (waiting)
        word.fetch_add(1, std::memory_order_seq_cst);
    else
        word.fetch_sub(1, std::memory_order_seq_cst);
}

void ReturnInbox::maybe_unregister_locked(Ref<ReturnInbox> &keep_alive) noexcept {
    if (registered_ && (hung_up_ || (!channel_open_ && lent_count_ == 0))) {
        registered_ = false;
        keep_alive = Ref<ReturnInbox>(this); // the registry's reference may be the last one
        unregister_return_source(this);
    }
}

void ReturnInbox::reclaim_all_locked(DropList &drop) noexcept {
    counters_.reclaimed += lent_count_;
    for (uint32_t i = 0; i < loans_.size(); ++i) {
        Loan &loan = loans_[i];
        if (loan.lease) {
            drop.push_back(std::move(loan.lease));
            loan.next_free = free_head_;
            free_head_ = i;
        }
    }
    lent_count_ = 0;
    counters_.lent = 0;
}

void ReturnInbox::take_back_locked(uint64_t token, DropList &drop) {
    // The token is the peer's word: it names an entry only if that entry is lent now, under
    // the generation the token carries.
    const uint64_t i = token & 0xffffffffu;
    const uint32_t generation = static_cast<uint32_t>(token >> 32);
    if (i >= loans_.size() || !loans_[i].lease || loans_[i].generation != generation) {
        ++counters_.refused; // never lent, stale, or already returned
        return;
    }
    Loan &loan = loans_[i];
    drop.push_back(std::move(loan.lease));
    loan.next_free = free_head_;
    free_head_ = static_cast<uint32_t>(i);
    --lent_count_;
    ++counters_.accepted;
}

void ReturnInbox::drain_socket_locked(DropList &drop) noexcept {
    // Bounded for the same reason as the ring: a flood is read in portions.
    for (int n = 0; n < 256 && !hung_up_; ++n) {
        uint8_t buf[wire::max_record_size];
        Received r;
        try {
            r = recv_message(socket_->fd(), buf, sizeof buf, 0, true);
        } catch (const Error &) {
            // Garbage, fds, truncation: the peer is not speaking our protocol. Count it, and
            // stop trusting this return path: everything lent comes back now.
            ++counters_.refused;
            hung_up_ = true;
            return;
        }
        if (r.would_block)
            return;
        if (r.closed) {
            hung_up_ = true;
            return;
        }
        try {
            wire::Record rec = wire::decode(buf, r.len);
            if (rec.type == wire::Type::wake)
                continue;
            if (rec.type == wire::Type::hello) { // the borrower moved to a forked child
                watch_.follow(static_cast<pid_t>(rec.hello.pid));
                continue;
            }
            if (rec.type != wire::Type::returns)
                fail(Status::protocol, "not a returns record");
            for (uint64_t token : rec.returns.tokens)
                take_back_locked(token, drop);
        } catch (...) {
            ++counters_.refused;
            hung_up_ = true;
        }
    }
}

void ReturnInbox::collect(bool thorough) noexcept { collect(thorough, coarse_now_ns()); }

void ReturnInbox::collect(bool thorough, int64_t now) noexcept {
    // A copy of the end inherited by a forked child that does not use it: the returns on the
    // socket are the parent's to take.
    if (fork_generation_.load(std::memory_order_relaxed) != fork_generation())
        return;
    // The common case on every send and recv: nothing new in the ring, and the socket was
    // looked at less than a millisecond ago. Answer it without the lock.
    if (!thorough &&
        control_of(*control_)->return_tail.load(std::memory_order_acquire) ==
            taken_.load(std::memory_order_relaxed) &&
        now - last_socket_check_ns_.load(std::memory_order_relaxed) < socket_check_interval_ns)
        return;
    // Declared before the lock, so destroyed after it.
    Ref<ReturnInbox> keep_alive;
    DropList drop;
    std::lock_guard lock(mutex_);
    if (!hung_up_) {
        try {
            auto *cb = control_of(*control_);
            // At most one ring's worth per call: a borrower that refills the ring as fast as we
            // take it must not keep the caller (a loan with a deadline) here.
            long i;
            for (size_t n = 0; n < return_ring_entries && (i = ring_.peek()) >= 0; ++n) {
                uint64_t token = cb->return_entries[i].load(std::memory_order_relaxed);
                ring_.consume();
                // Only written under the lock: no read-modify-write needed.
                taken_.store(taken_.load(std::memory_order_relaxed) + 1,
                             std::memory_order_relaxed);
                take_back_locked(token, drop);
            }
        } catch (...) {
            ++counters_.refused; // the borrower published an impossible index
            hung_up_ = true;
        }
    }
    if (thorough ||
        now - last_socket_check_ns_.load(std::memory_order_relaxed) >= socket_check_interval_ns) {
        last_socket_check_ns_.store(now, std::memory_order_relaxed);
        check_peer_locked(drop);
    }
    counters_.lent = lent_count_;
    if (hung_up_ && lent_count_ != 0)
        reclaim_all_locked(drop);
    lent_now_.store(lent_count_, std::memory_order_relaxed);
    maybe_unregister_locked(keep_alive);
}

ReturnCounters ReturnInbox::counters() const {
    std::lock_guard lock(mutex_);
    return counters_;
}

// ---------------------------------------------------------------------------------------------
// ReturnOutbox: the borrower's side.

ReturnOutbox::ReturnOutbox(Ref<ReturnSocket> socket, Ref<Segment> lender_control)
    : socket_(std::move(socket)), lender_control_(std::move(lender_control)),
      ring_(&control_of(*lender_control_)->return_tail,
            &control_of(*lender_control_)->return_head, return_ring_entries) {}

ReturnOutbox::~ReturnOutbox() {
    flush();
    // Every lease still out holds a reference on this outbox: these are all recycled ones.
    for (RemoteLease *list : {spare_, recycled_.load(std::memory_order_acquire)}) {
        while (RemoteLease *l = list) {
            list = l->next_;
            delete l;
        }
    }
}

Ref<RefCounted> ReturnOutbox::lease(uint64_t token) {
    if (!spare_) // take everything released since last time, at once
        spare_ = recycled_.exchange(nullptr, std::memory_order_acquire);
    RemoteLease *l = spare_;
    if (l) {
        spare_ = l->next_;
        l->next_ = nullptr;
        l->reset_refs(1);
    } else {
        l = new RemoteLease;
    }
    l->outbox_ = Ref<ReturnOutbox>(this);
    l->token_ = token;
    return Ref<RefCounted>::adopt(l);
}

void ReturnOutbox::recycle(RemoteLease *lease) noexcept {
    RemoteLease *head = recycled_.load(std::memory_order_relaxed);
    do {
        lease->next_ = head;
    } while (!recycled_.compare_exchange_weak(head, lease, std::memory_order_release,
                                              std::memory_order_relaxed));
}

void RemoteLease::last_reference_dropped() noexcept {
    // The outbox stays referenced (here) until this lease is on its stack: once there, the
    // lease may be reused at once, or freed with the outbox, so nothing touches it after.
    Ref<ReturnOutbox> outbox = std::move(outbox_);
    outbox->give_back(token_);
    outbox->recycle(this);
}

void ReturnOutbox::give_back(uint64_t token) noexcept {
    std::lock_guard lock(mutex_);
    if (dead_)
        return;
    auto *cb = control_of(*lender_control_);
    if (ring_ok_ && pending_.empty()) {
        long i = -1;
        try {
            i = ring_.reserve();
        } catch (...) {
            ring_ok_ = false; // the lender lies about its ring: use the socket only
        }
        if (i >= 0) {
            cb->return_entries[i].store(token, std::memory_order_relaxed);
            ring_.publish();
            std::atomic_thread_fence(std::memory_order_seq_cst);
            if (cb->owner_waits_for_returns.load(std::memory_order_relaxed)) {
                auto wake = wire::encode_wake();
                [[maybe_unused]] ssize_t n =
                    ::send(socket_->fd(), wake.data, wake.size, MSG_DONTWAIT | MSG_NOSIGNAL);
            }
            return;
        }
    }
    try {
        pending_.push_back(token);
    } catch (...) {
        return; // out of memory: the lender reclaims it when this outbox closes
    }
    flush_locked();
}

void ReturnOutbox::announce(pid_t pid) {
    wire::Hello hello;
    hello.pid = static_cast<uint64_t>(pid);
    const wire::Bytes bytes = wire::encode(hello);
    std::lock_guard lock(mutex_);
    for (;;) {
        if (::send(socket_->fd(), bytes.data, bytes.size, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
            return;
        const int err = errno;
        if (err == EINTR)
            continue;
        if (err == EPIPE || err == ECONNRESET || err == ENOTCONN)
            fail(Status::closed, "the peer closed the channel");
        // EAGAIN: the lender has not read a socket's worth of return records. It reads at
        // least once a millisecond while it has anything lent, so this is a lender that is
        // stuck or gone: say so rather than wait.
        fail_errno("send(announcing this process to the peer)", err);
    }
}

void ReturnOutbox::shut_down() noexcept {
    std::lock_guard lock(mutex_);
    ::shutdown(socket_->fd(), SHUT_RDWR);
    dead_ = true;
    pending_.clear();
    has_pending_.store(false, std::memory_order_release);
}

PX_HOT void ReturnOutbox::flush() noexcept {
    if (!has_pending_.load(std::memory_order_acquire))
        return;
    std::lock_guard lock(mutex_);
    flush_locked();
}

void ReturnOutbox::flush_locked() noexcept {
    while (!pending_.empty() && !dead_) {
        size_t n = std::min(pending_.size(), wire::max_returns_per_record);
        wire::Bytes bytes;
        try {
            wire::Returns rec;
            rec.tokens.assign(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(n));
            bytes = wire::encode(rec);
        } catch (...) {
            break;
        }
        ssize_t rc = ::send(socket_->fd(), bytes.data, bytes.size, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                dead_ = true; // the lender is gone: nothing to return to
                pending_.clear();
            }
            break;
        }
        pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(n));
    }
    has_pending_.store(!pending_.empty(), std::memory_order_release);
}

} // namespace px::ipc
