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

    // At most one piece of the work accept(0) does, a few system calls each, for a caller with
    // a latency budget (a publisher admits subscribers between frames): one stage of a pending
    // handshake (Handshake::advance_one; those past their hello first, to finish joins), or
    // accepting one connection, sending it our hello (its own is read at a later step), or,
    // with keep_offer_ready(), a part of the next connection's offer. The channel completed, if
    // any, or null, with its peer's pid in `peer_pid` (nullable), and in `worked` (nullable)
    // whether there was a piece to do; never blocks, never throws for a peer.
    Ref<Channel> accept_step(pid_t *peer_pid = nullptr, bool *worked = nullptr);
    // What the last accept_step did, in words (a static string), for a caller that profiles
    // its pieces: "none" when it found nothing to do.
    const char *last_piece() const noexcept { return last_piece_; }

    // From now on, accept_step keeps an offer (Handshake's control block and return socketpair,
    // 3 fds and a mapping) made ahead for the next connection, so that admitting one only
    // sends the hello: the first is made here (throws io when out of fds), each next one by
    // the steps after the admission that used the last (a connection that finds none waits for
    // them).
    void keep_offer_ready();

    // Pollable: readable when accept may make progress (a new connection, a pending handshake
    // with data or a hang-up, or a pending handshake whose time is up), and when accept_step
    // has work that waits on no input (a handshake past its hello; an offer to make ahead).
    // Not the listening socket itself: an epoll set holding it, every pending handshake's
    // socket, a timer and an eventfd.
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
        // In the epoll set. accept_step greets a connection and watches it in two pieces (the
        // hello's sendmsg and the epoll_ctl: 30-50 us of CPU together on a loaded VM).
        bool watched = true;
    };

    Listener(FdGuard sock, FdGuard poll_fd, FdGuard timer, FdGuard busy, std::string path,
             dev_t dev, ino_t ino);

    Ref<Channel> step(bool one_piece_only, pid_t *peer_pid, bool *worked);
    Ref<Channel> one_piece(pid_t *peer_pid, bool &worked);
    bool make_offer_piece();
    void drop_expired(int64_t now);
    bool ready_now(std::vector<int> &handshakes);
    bool admit_next(int &admitted);
    int accept_next();
    bool admit(int fd, bool watch_now = true);
    void drop_oldest();
    void watch_pending(Pending &p);
    Ref<Channel> advance(int fd, bool one_stage, pid_t *peer_pid);
    Ref<Channel> advance_piece(const Handshake &handshake, pid_t *peer_pid);
    std::vector<Pending>::iterator forget(std::vector<Pending>::iterator it) noexcept;
    void count_failure() noexcept { failed_handshakes_.fetch_add(1, std::memory_order_relaxed); }
    void arm_expiry_timer() noexcept;
    bool has_work_without_input() const noexcept;
    void signal_busy() noexcept;

    FdGuard sock_;    // the listening socket (non-blocking: accept4 answers EAGAIN when done)
    FdGuard poll_fd_; // epoll: sock_, timer_, busy_ and every pending handshake's socket
    FdGuard timer_;   // timerfd, armed for the earliest pending deadline
    // eventfd, readable while accept_step has work that waits on no input (a handshake past
    // its hello, an offer to make ahead): a caller polling fd() comes back for it.
    FdGuard busy_;
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
    bool keep_offer_ = false; // keep_offer_ready()
    Offer offer_;             // made ahead for the next connection (with keep_offer_)
    FdGuard accepted_{-1};    // a connection accept_step took, greeted at its next step
    bool busy_signalled_ = false; // busy_ is readable
    int64_t armed_for_ns_ = INT64_MAX; // the deadline timer_ is set for (INT64_MAX: disarmed)
    const char *last_piece_ = "none";  // last_piece()
};

} // namespace px::ipc
