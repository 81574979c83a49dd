#include "core/ipc/return_path.hpp"

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/ipc/fd_passing.hpp"
#include "core/ipc/wire.hpp"

namespace px::ipc {

namespace {

constexpr int64_t socket_check_interval_ns = 1'000'000;

} // namespace

// ---------------------------------------------------------------------------------------------
// ReturnInbox: the lender's side.

ReturnInbox::ReturnInbox(int fd, Ref<Segment> control)
    : fd_(fd), control_(std::move(control)),
      ring_(&control_of(*control_)->return_tail, &control_of(*control_)->return_head,
            return_ring_entries) {
    register_return_source(this);
    registered_ = true;
}

ReturnInbox::~ReturnInbox() { ::close(fd_); }

void ReturnInbox::lend(uint64_t token, Ref<RefCounted> lease) {
    std::lock_guard lock(mutex_);
    if (hung_up_)
        fail(Status::closed, "the peer has gone; nothing can be lent to it");
    lent_.emplace(token, std::move(lease));
    counters_.lent = lent_.size();
}

void ReturnInbox::unlend(uint64_t token) noexcept {
    Ref<RefCounted> drop;
    std::lock_guard lock(mutex_);
    auto it = lent_.find(token);
    if (it != lent_.end()) {
        drop = std::move(it->second);
        lent_.erase(it);
        counters_.lent = lent_.size();
    }
}

void ReturnInbox::channel_closed() noexcept {
    std::lock_guard lock(mutex_);
    channel_open_ = false;
    maybe_unregister_locked();
}

void ReturnInbox::set_waiting(bool waiting) noexcept {
    control_of(*control_)->owner_waits_for_returns.store(waiting ? 1 : 0,
                                                         std::memory_order_seq_cst);
}

void ReturnInbox::maybe_unregister_locked() noexcept {
    if (registered_ && (hung_up_ || (!channel_open_ && lent_.empty()))) {
        registered_ = false;
        unregister_return_source(this); // the registry's reference; the caller still holds one
    }
}

void ReturnInbox::reclaim_all_locked(std::vector<Ref<RefCounted>> &drop) noexcept {
    counters_.reclaimed += lent_.size();
    for (auto &entry : lent_)
        drop.push_back(std::move(entry.second));
    lent_.clear();
    counters_.lent = 0;
}

void ReturnInbox::take_back_locked(uint64_t token, std::vector<Ref<RefCounted>> &drop) {
    auto it = lent_.find(token);
    if (it == lent_.end()) {
        ++counters_.refused; // never lent, or already returned
        return;
    }
    drop.push_back(std::move(it->second));
    lent_.erase(it);
    ++counters_.accepted;
}

void ReturnInbox::drain_socket_locked(std::vector<Ref<RefCounted>> &drop) noexcept {
    // Bounded for the same reason as the ring: a flood is read in portions.
    for (int n = 0; n < 256 && !hung_up_; ++n) {
        uint8_t buf[wire::max_record_size];
        Received r;
        try {
            r = recv_message(fd_, buf, sizeof buf, 0, true);
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

void ReturnInbox::collect(bool thorough) noexcept {
    // The common case on every send and recv: nothing new in the ring, and the socket was
    // looked at less than a millisecond ago. Answer it without the lock.
    int64_t now = coarse_now_ns();
    if (!thorough &&
        control_of(*control_)->return_tail.load(std::memory_order_acquire) ==
            taken_.load(std::memory_order_relaxed) &&
        now - last_socket_check_ns_.load(std::memory_order_relaxed) < socket_check_interval_ns)
        return;
    // Released after the lock (a returned slot may wake or free its pool); reused per thread,
    // so that taking back a frame allocates nothing.
    thread_local std::vector<Ref<RefCounted>> drop;
    struct Release {
        std::vector<Ref<RefCounted>> &d;
        ~Release() { d.clear(); }
    } release{drop};
    Ref<ReturnInbox> self(this); // unregistering may drop the registry's reference
    {
        std::lock_guard lock(mutex_);
        if (!hung_up_) {
            try {
                auto *cb = control_of(*control_);
                // At most one ring's worth per call: a borrower that refills the ring as fast
                // as we take it must not keep the caller (a loan with a deadline) here.
                long i;
                for (size_t n = 0; n < return_ring_entries && (i = ring_.peek()) >= 0; ++n) {
                    uint64_t token = cb->return_entries[i].load(std::memory_order_relaxed);
                    ring_.consume();
                    taken_.fetch_add(1, std::memory_order_relaxed);
                    take_back_locked(token, drop);
                }
            } catch (...) {
                ++counters_.refused; // the borrower published an impossible index
                hung_up_ = true;
            }
        }
        if (thorough || now - last_socket_check_ns_.load(std::memory_order_relaxed) >=
                            socket_check_interval_ns) {
            last_socket_check_ns_.store(now, std::memory_order_relaxed);
            drain_socket_locked(drop);
        }
        counters_.lent = lent_.size();
        if (hung_up_ && !lent_.empty())
            reclaim_all_locked(drop);
        maybe_unregister_locked();
    }
}

ReturnCounters ReturnInbox::counters() const {
    std::lock_guard lock(mutex_);
    return counters_;
}

// ---------------------------------------------------------------------------------------------
// ReturnOutbox: the borrower's side.

ReturnOutbox::ReturnOutbox(int fd, Ref<Segment> lender_control)
    : fd_(fd), lender_control_(std::move(lender_control)),
      ring_(&control_of(*lender_control_)->return_tail,
            &control_of(*lender_control_)->return_head, return_ring_entries) {}

ReturnOutbox::~ReturnOutbox() {
    flush();
    ::close(fd_); // the lender sees the hang-up and reclaims whatever is still lent
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
                    ::send(fd_, wake.data, wake.size, MSG_DONTWAIT | MSG_NOSIGNAL);
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

void ReturnOutbox::flush() noexcept {
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
        ssize_t rc = ::send(fd_, bytes.data, bytes.size, MSG_DONTWAIT | MSG_NOSIGNAL);
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
