// SPDX-License-Identifier: Apache-2.0 OR MIT
// Listener: a socket path (mode 0600) that accepts channels.
//
// Handshakes never run inline in accept: connections are taken from the kernel into a small
// set of pending handshakes, each advanced only when its socket has something to read. So a
// client that connects and never speaks delays nobody (it is dropped when its handshake time
// is up), and a client whose handshake fails (garbage, hang-up, credentials) is counted and
// dropped without making accept fail for anyone else. No thread is started: the work is done
// inside accept, which the caller drives (blocking, or by polling fd() and calling accept(0)).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <sys/types.h>
#include <unistd.h>
#include <vector>

#include "core/fd_guard.hpp"
#include "core/ipc/channel.hpp"
#include "core/ipc/handshake.hpp"
#include "core/ref.hpp"

namespace px::ipc {

class Listener final : public RefCounted {
public:
    // At most this many connections are mid-handshake at once. A connection beyond that makes
    // room by dropping the oldest pending one: an honest client sends its hello as soon as it
    // has connected, so the oldest is almost always one that stays silent, and a flood of
    // silent clients then cannot hold off honest ones for a whole handshake timeout (as leaving
    // new ones in the kernel's backlog would).
    static constexpr size_t max_pending = 64;

    // A stale socket file at `path` (nobody listening) is replaced; a live one is busy; any
    // other kind of file is refused.
    static Ref<Listener> create(const std::string &path);

    // Advances the pending handshakes that have something to read and, while none completes,
    // takes the connections waiting in the kernel one by one into the pending set (each tried
    // at once); drops those that failed or ran out of time; answers the first channel
    // completed. timeout_ns: < 0 forever, 0 polls (never blocks: would_block when no handshake
    // completed), > 0 waits up to that long (timeout). A peer's failed handshake (closed,
    // protocol, permission) is never thrown: it is counted in failed_handshakes(). Errors of the
    // listener's own (accept4 or a handshake's setup out of fds or memory) throw.
    // May be called from several threads; none holds the listener while it waits.
    Ref<Channel> accept(int64_t timeout_ns);

    // At most one piece of the work accept(0) does — advance one pending handshake, or admit
    // one connection (its hello is read at a later step) — for a caller with a latency budget
    // (a publisher admits subscribers between frames: tens of microseconds per piece instead of
    // the sum). The channel completed, if any, or null; never blocks, never throws for a peer.
    Ref<Channel> accept_step();

    // Pollable: readable when accept may make progress (a new connection, a pending handshake
    // with data or a hang-up, or a pending handshake whose time is up). Not the listening
    // socket itself: an epoll set holding it, every pending handshake's socket and a timer.
    int fd() const noexcept { return poll_fd_.fd; }

    // Connections dropped without becoming a channel: failed handshakes (garbage, hang-up,
    // another uid), handshakes not finished in time, and the oldest pending ones dropped to
    // make room (see max_pending).
    uint64_t failed_handshakes() const noexcept {
        return failed_handshakes_.load(std::memory_order_relaxed);
    }
    size_t pending_handshakes() const;

    // How long a connection admitted from now on may take to send its hello (default
    // default_handshake_timeout_ns; > 0). For tests, which cannot wait 10 s per silent client.
    void set_handshake_timeout_ns(int64_t timeout_ns);

    ~Listener() override; // closes and removes the socket file

private:
    // A connection mid-handshake and the time (now_ns) at which it is given up.
    struct Pending {
        Handshake handshake;
        int64_t deadline_ns;
    };

    Listener(FdGuard sock, FdGuard poll_fd, FdGuard timer, std::string path, dev_t dev, ino_t ino);

    Ref<Channel> step(bool one_piece);
    void drop_expired(int64_t now);
    bool ready_now(std::vector<int> &handshakes);
    bool admit_next(int &admitted);
    bool admit(int fd);
    void drop_oldest();
    Ref<Channel> advance(int fd);
    std::vector<Pending>::iterator forget(std::vector<Pending>::iterator it) noexcept;
    void count_failure() noexcept { failed_handshakes_.fetch_add(1, std::memory_order_relaxed); }
    void arm_expiry_timer() noexcept;

    FdGuard sock_;    // the listening socket (non-blocking: accept4 answers EAGAIN when done)
    FdGuard poll_fd_; // epoll: sock_, timer_ and every pending handshake's socket
    FdGuard timer_;   // timerfd, armed for the earliest pending deadline
    std::string path_;
    dev_t dev_;
    ino_t ino_;
    // The process that made the listener: a forked child that releases its inherited copy
    // (as one does with what one does not use after fork) must not remove the socket file.
    pid_t owner_pid_ = ::getpid();
    std::atomic<uint64_t> failed_handshakes_{0};
    mutable std::mutex mutex_;     // guards what follows; never held while waiting
    std::vector<Pending> pending_; // in the order admitted: the oldest first
    int64_t handshake_timeout_ns_ = default_handshake_timeout_ns;
};

} // namespace px::ipc
