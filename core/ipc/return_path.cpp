#include "core/ipc/return_path.hpp"

#include <algorithm>
#include <cerrno>
#include <sys/socket.h>
#include <unistd.h>

#include "core/error.hpp"
#include "core/ipc/fd_passing.hpp"
#include "core/ipc/wire.hpp"

namespace px::ipc {

ReturnInbox::ReturnInbox(int fd) : fd_(fd) {
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

void ReturnInbox::collect() noexcept {
    std::vector<Ref<RefCounted>> drop; // released after the lock: returning a slot may wake or
                                       // free a pool
    Ref<ReturnInbox> self(this);       // unregistering may drop the registry's reference
    {
        std::lock_guard lock(mutex_);
        while (!hung_up_) {
            uint8_t buf[wire::max_record_size];
            Received r;
            try {
                r = recv_message(fd_, buf, sizeof buf, 0, true);
            } catch (const Error &e) {
                if (e.status() == Status::would_block)
                    break;
                // Garbage, fds, truncation: the peer is not speaking our protocol. Count it,
                // and stop trusting this return path: everything lent comes back now.
                ++counters_.refused;
                hung_up_ = true;
                break;
            }
            if (r.closed) {
                hung_up_ = true;
                break;
            }
            try {
                wire::Record rec = wire::decode(buf, r.len);
                if (rec.type != wire::Type::returns)
                    fail(Status::protocol, "not a returns record");
                for (uint64_t token : rec.returns.tokens) {
                    auto it = lent_.find(token);
                    if (it == lent_.end()) {
                        ++counters_.refused; // never lent, or already returned
                        continue;
                    }
                    drop.push_back(std::move(it->second));
                    lent_.erase(it);
                    ++counters_.accepted;
                }
                counters_.lent = lent_.size();
            } catch (const Error &) {
                ++counters_.refused;
                hung_up_ = true;
            }
        }
        if (hung_up_ && !lent_.empty())
            reclaim_all_locked(drop);
        maybe_unregister_locked();
    }
}

ReturnCounters ReturnInbox::counters() const {
    std::lock_guard lock(mutex_);
    return counters_;
}

ReturnOutbox::ReturnOutbox(int fd) : fd_(fd) {}

ReturnOutbox::~ReturnOutbox() {
    flush();
    ::close(fd_); // the lender sees the hang-up and reclaims whatever is still lent
}

void ReturnOutbox::give_back(uint64_t token) noexcept {
    std::lock_guard lock(mutex_);
    if (dead_)
        return;
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
        wire::Returns rec;
        rec.tokens.assign(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(n));
        wire::Bytes bytes;
        try {
            bytes = wire::encode(rec);
        } catch (...) {
            break;
        }
        ssize_t rc = ::send(fd_, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
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
