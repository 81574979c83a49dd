// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/ipc/listener.hpp"

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <optional>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/ipc/fd_passing.hpp"

namespace px::ipc {

namespace {

// Removes a socket file nobody listens on; refuses a live one or a file of another kind.
void clear_stale(const std::string &path, const sockaddr_un &addr) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) < 0) {
        if (errno == ENOENT)
            return;
        fail_errno("lstat(" + path + ")", errno);
    }
    if (!S_ISSOCK(st.st_mode))
        fail(Status::invalid, path + " exists and is not a socket; refusing to replace it");
    int probe = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (probe < 0)
        fail_errno("socket", errno);
    int rc = ::connect(probe, reinterpret_cast<const sockaddr *>(&addr), sizeof addr);
    int err = errno;
    ::close(probe);
    if (rc == 0)
        fail(Status::busy, "another process is listening on " + path);
    if (err != ECONNREFUSED && err != EPROTOTYPE)
        fail_errno("connect(" + path + ") to test for a stale socket", err);
    if (::unlink(path.c_str()) < 0 && errno != ENOENT)
        fail_errno("unlink(" + path + ")", errno);
}

// A socket bound to `path` (mode 0600) and listening, non-blocking. Removes the file again if
// a later step fails.
FdGuard listen_at(const std::string &path, const sockaddr_un &addr) {
    FdGuard sock{::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
    if (sock.fd < 0)
        fail_errno("socket(AF_UNIX, SOCK_SEQPACKET)", errno);
    if (::bind(sock.fd, reinterpret_cast<const sockaddr *>(&addr), sizeof addr) < 0) {
        const int err = errno;
        if (err == EADDRINUSE)
            fail(Status::busy, path + " was taken by another listener meanwhile");
        fail_errno("bind(" + path + ")", err);
    }
    // errno is read before anything else runs (building the message could change it).
    auto unlink_and_fail = [&](const char *call) {
        const int err = errno;
        ::unlink(path.c_str());
        fail_errno(std::string(call) + "(" + path + ")", err);
    };
    // Before listen(), nobody can connect: restricting the mode now leaves no window.
    if (::chmod(path.c_str(), 0600) < 0)
        unlink_and_fail("chmod 0600");
    if (::listen(sock.fd, 64) < 0)
        unlink_and_fail("listen");
    return sock;
}

// Adds `fd` to the epoll set, reported readable on data or hang-up.
void watch(int poll_fd, int fd, const char *what) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    if (::epoll_ctl(poll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
        fail_errno(std::string("epoll_ctl(ADD, ") + what + ")", errno);
}

// What a peer did wrong, as opposed to what failed in this process (out of fds or memory):
// the peer's failures are counted and dropped; ours are the caller's to see.
bool is_peers_failure(Status status) noexcept {
    return status == Status::closed || status == Status::protocol || status == Status::permission;
}

// The time left until `deadline_ns` (from deadline_for) as a timeout for wait_readable: -1 for
// no deadline, else what is left (0 once passed).
int64_t wait_left(int64_t deadline_ns) noexcept {
    if (deadline_ns == INT64_MAX)
        return -1;
    return std::max<int64_t>(deadline_ns - now_ns(), 0);
}

} // namespace

Ref<Listener> Listener::create(const std::string &path) {
    sockaddr_un addr = unix_address(path);
    clear_stale(path, addr);
    // The epoll set and the timer first: failing to make them leaves no socket file behind.
    FdGuard poll_fd{::epoll_create1(EPOLL_CLOEXEC)};
    if (poll_fd.fd < 0)
        fail_errno("epoll_create1 for px_listener_fd", errno);
    FdGuard timer{::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)};
    if (timer.fd < 0)
        fail_errno("timerfd_create for the handshake deadlines", errno);
    watch(poll_fd.fd, timer.fd, "the handshake timer");
    FdGuard busy{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    if (busy.fd < 0)
        fail_errno("eventfd for px_listener_fd", errno);
    watch(poll_fd.fd, busy.fd, "the listener's eventfd");
    FdGuard sock = listen_at(path, addr);
    try {
        watch(poll_fd.fd, sock.fd, path.c_str());
    } catch (...) {
        ::unlink(path.c_str());
        throw;
    }
    struct stat st {};
    ::stat(path.c_str(), &st);
    return Ref<Listener>::adopt(new Listener(std::move(sock), std::move(poll_fd), std::move(timer),
                                             std::move(busy), path, st.st_dev, st.st_ino));
}

Listener::Listener(FdGuard sock, FdGuard poll_fd, FdGuard timer, FdGuard busy, std::string path,
                   dev_t dev, ino_t ino)
    : sock_(std::move(sock)), poll_fd_(std::move(poll_fd)), timer_(std::move(timer)),
      busy_(std::move(busy)), path_(std::move(path)), dev_(dev), ino_(ino) {
    // Room for every pending handshake up front: admitting one never reallocates, so a socket
    // once in the epoll set is always in pending_ too.
    pending_.reserve(max_pending);
}

Listener::~Listener() {
    sock_.reset();
    // Remove the file only if it is still ours (not a newer listener's), and only in the
    // process that made it (not in a child releasing its copy).
    struct stat st {};
    if (::getpid() == owner_pid_ && ::stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ &&
        st.st_ino == ino_)
        ::unlink(path_.c_str());
}

size_t Listener::pending_handshakes() const {
    std::lock_guard lock(mutex_);
    return pending_.size();
}

void Listener::set_handshake_timeout_ns(int64_t timeout_ns) {
    if (timeout_ns <= 0)
        fail(Status::invalid,
             "a handshake timeout must be > 0 ns, not " + std::to_string(timeout_ns));
    std::lock_guard lock(mutex_);
    handshake_timeout_ns_ = timeout_ns;
}

void Listener::keep_offer_ready() {
    std::lock_guard lock(mutex_);
    keep_offer_ = true;
    // The first one now: a listener nobody has connected to yet has no work to announce.
    if (!offer_.ready())
        offer_ = make_offer(true);
}

Ref<Channel> Listener::accept(int64_t timeout_ns) {
    const int64_t deadline = deadline_for(timeout_ns);
    for (;;) {
        if (Ref<Channel> ch = step(false, nullptr, nullptr))
            return ch;
        const int64_t left = wait_left(deadline);
        if (timeout_ns == 0 || left == 0) {
            const size_t pending = pending_handshakes();
            const std::string why =
                pending == 0 ? "no peer is waiting to connect"
                             : std::to_string(pending) + " connection(s) still in their handshake";
            if (timeout_ns == 0)
                fail(Status::would_block, "no channel is ready to accept: " + why);
            fail(Status::timeout,
                 "no channel was accepted within " + std::to_string(timeout_ns) + " ns: " + why);
        }
        // The timer in the set wakes this wait when a pending handshake's time is up.
        wait_readable(poll_fd_.fd, left);
    }
}

// The work accept can do without waiting: drop what expired, then rounds of "advance the
// pending handshakes that have something to do; when none completed, admit one new connection
// and try it at once (an honest client's hello is usually there already)", until a channel
// completes or nothing is left to do. One connection per round, pending ones first: a client
// that got our hello finishes its side and may connect again before we have read its hello,
// and that next connection stays in the kernel's backlog (not in this process: no fds, no
// control block) until the caller asks for it. Answers the first channel completed, if any;
// whatever else is ready stays readable in the epoll set.
Ref<Channel> Listener::accept_step(pid_t *peer_pid, bool *worked) {
    bool did = false;
    Ref<Channel> ch = step(true, peer_pid, &did);
    if (worked)
        *worked = did;
    return ch;
}

Ref<Channel> Listener::step(bool one_piece_only, pid_t *peer_pid, bool *worked) {
    std::lock_guard lock(mutex_);
    struct AfterStep {
        Listener &self;
        ~AfterStep() {
            self.arm_expiry_timer();
            self.signal_busy();
        }
    } after{*this}; // however the step ends, the timer and busy_ match what is pending then
    drop_expired(now_ns());
    if (one_piece_only)
        return one_piece(peer_pid, *worked);
    for (Pending &p : pending_) // greeted by accept_step, not yet watched
        if (!p.watched)
            watch_pending(p);
    if (accepted_.fd >= 0) {
        const int fd = accepted_.fd;
        if (admit(accepted_.release()))
            if (Ref<Channel> ch = advance(fd, false, peer_pid))
                return ch;
    }
    std::vector<int> ready;
    // Bounded, so that a flood of connections cannot keep one call busy.
    for (size_t round = 0; round <= max_pending; ++round) {
        const bool connections_wait = ready_now(ready);
        for (int fd : ready)
            if (Ref<Channel> ch = advance(fd, false, peer_pid))
                return ch;
        int admitted = -1;
        if (!connections_wait || !admit_next(admitted))
            return {};
        if (admitted >= 0)
            if (Ref<Channel> ch = advance(admitted, false, peer_pid))
                return ch;
    }
    return {};
}

// accept_step's piece, by priority: a stage of a handshake past its hello (it finishes a join),
// reading a hello that arrived, sending ours to a connection accepted, the next part of the
// offer (a connection may wait for it), accepting a connection.
Ref<Channel> Listener::one_piece(pid_t *peer_pid, bool &worked) {
    worked = true; // unless it finds nothing to do below
    for (const Pending &p : pending_)
        if (!p.handshake.needs_input())
            return advance_piece(p.handshake, peer_pid);
    for (Pending &p : pending_)
        if (!p.watched) {
            last_piece_ = "watch a connection";
            watch_pending(p);
            return {};
        }
    std::vector<int> ready;
    const bool connections_wait = ready_now(ready);
    if (!ready.empty()) {
        auto it = std::find_if(pending_.begin(), pending_.end(), [&](const Pending &p) {
            return p.handshake.fd() == ready.front();
        });
        if (it != pending_.end())
            return advance_piece(it->handshake, peer_pid);
    }
    if (accepted_.fd >= 0 && (offer_.ready() || !keep_offer_)) {
        last_piece_ = "greet a connection";
        admit(accepted_.release(), false); // watched at the next step, its hello read later
        return {};
    }
    last_piece_ = next_offer_piece_name(offer_);
    if (make_offer_piece())
        return {};
    if (accepted_.fd < 0 && connections_wait) {
        last_piece_ = "accept a connection";
        accepted_.reset(accept_next()); // greeted at the next step
        return {};
    }
    last_piece_ = "none";
    worked = false;
    return {};
}

// One stage of `handshake`'s, named in last_piece_.
Ref<Channel> Listener::advance_piece(const Handshake &handshake, pid_t *peer_pid) {
    last_piece_ = handshake.next_stage_name();
    return advance(handshake.fd(), true, peer_pid);
}

// The next part of the offer for the next connection (with keep_offer_ready). False when
// there is nothing to make.
bool Listener::make_offer_piece() {
    if (!keep_offer_)
        return false;
    offer_.fault_in_ahead = true; // a fresh offer, after the last one was used
    return ipc::make_offer_piece(offer_);
}

// What the epoll set reports now, without waiting: the sockets of pending handshakes with
// something to read (into `handshakes`), and whether connections wait to be accepted.
bool Listener::ready_now(std::vector<int> &handshakes) {
    epoll_event events[max_pending + 2];
    const int n = ::epoll_wait(poll_fd_.fd, events, static_cast<int>(std::size(events)), 0);
    if (n < 0) {
        const int err = errno;
        if (err != EINTR)
            fail_errno("epoll_wait(px_listener_fd)", err);
    }
    handshakes.clear();
    // Handshakes past their hello have work to do whether or not their socket is readable.
    for (const Pending &p : pending_)
        if (!p.handshake.needs_input())
            handshakes.push_back(p.handshake.fd());
    bool connections_wait = false;
    for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == sock_.fd)
            connections_wait = true;
        else if (fd != timer_.fd && fd != busy_.fd)
            handshakes.push_back(fd); // may repeat one above: advance finds it gone or done
    }
    return connections_wait;
}

void Listener::drop_expired(int64_t now) {
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->deadline_ns > now) {
            ++it;
            continue;
        }
        it = forget(it);
        count_failure();
    }
}

// Takes the next connection from the kernel's backlog into the pending set: false when there
// was none. `admitted` is its socket, or -1 when its peer had already gone (counted).
bool Listener::admit_next(int &admitted) {
    const int fd = accept_next();
    if (fd < 0)
        return false;
    admitted = admit(fd) ? fd : -1;
    return true;
}

// The next connection from the kernel's backlog, or -1 when there is none.
int Listener::accept_next() {
    for (;;) {
        // Blocking like every channel socket (sends wait for room); reads here never wait, as
        // Handshake::advance reads with MSG_DONTWAIT.
        const int fd = ::accept4(sock_.fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        const int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK)
            return -1;
        if (err != EINTR && err != ECONNABORTED)
            fail_errno("accept4(" + path_ + ")", err);
    }
}

// Starts the handshake of an accepted socket (taking it) and adds it to the pending set, in the
// epoll set unless !watch_now (a later piece watches it); false when the peer had already gone
// (counted).
bool Listener::admit(int fd, bool watch_now) {
    if (pending_.size() == max_pending)
        drop_oldest();
    std::optional<Handshake> handshake;
    try {
        // Sends our hello, with the offer made ahead when there is one; never waits on a fresh
        // connection.
        if (keep_offer_ && offer_.ready())
            handshake.emplace(fd, std::exchange(offer_, Offer{}));
        else
            handshake.emplace(fd);
    } catch (const Error &e) {
        if (!is_peers_failure(e.status()))
            throw;
        count_failure();
        return false;
    }
    if (watch_now)
        watch(poll_fd_.fd, handshake->fd(), "a connection in its handshake");
    pending_.push_back({std::move(*handshake), deadline_for(handshake_timeout_ns_), watch_now});
    return true;
}

// Adds a pending handshake greeted without it to the epoll set: its hello, there already or
// not, is reported from now on.
void Listener::watch_pending(Pending &p) {
    watch(poll_fd_.fd, p.handshake.fd(), "a connection in its handshake");
    p.watched = true;
}

void Listener::drop_oldest() {
    forget(pending_.begin());
    count_failure();
}

// Advances the handshake on `fd` (one stage, or all it can): the channel when it completes,
// with its peer's pid in `peer_pid` (nullable). A peer's failure drops its connection and is
// counted; any other error drops it and throws.
Ref<Channel> Listener::advance(int fd, bool one_stage, pid_t *peer_pid) {
    auto it = std::find_if(pending_.begin(), pending_.end(),
                           [fd](const Pending &p) { return p.handshake.fd() == fd; });
    if (it == pending_.end())
        return {}; // dropped (or completed) earlier in this round
    try {
        const bool complete = one_stage
                                  ? it->handshake.advance_one() == Handshake::Progress::complete
                                  : it->handshake.advance();
        if (!complete)
            return {};
    } catch (const Error &e) {
        forget(it);
        if (!is_peers_failure(e.status()))
            throw;
        count_failure();
        return {};
    }
    Connection conn = it->handshake.take();
    // Out of the epoll set while the socket is still open (fd is still its number): a channel's
    // socket must not make the listener readable.
    ::epoll_ctl(poll_fd_.fd, EPOLL_CTL_DEL, fd, nullptr);
    pending_.erase(it);
    if (peer_pid)
        *peer_pid = conn.peer_pid;
    return Channel::from_connection(std::move(conn));
}

// Drops a pending handshake: out of the epoll set first (a copy of the socket inherited by a
// child would otherwise keep it there), then closed.
std::vector<Listener::Pending>::iterator
Listener::forget(std::vector<Pending>::iterator it) noexcept {
    ::epoll_ctl(poll_fd_.fd, EPOLL_CTL_DEL, it->handshake.fd(), nullptr);
    return pending_.erase(it);
}

bool Listener::has_work_without_input() const noexcept {
    if (accepted_.fd >= 0 || (keep_offer_ && !offer_.ready()))
        return true;
    return std::any_of(pending_.begin(), pending_.end(), [](const Pending &p) {
        return !p.handshake.needs_input() || !p.watched;
    });
}

// Makes busy_ readable, or not, to match has_work_without_input(): a system call only when
// that changes.
void Listener::signal_busy() noexcept {
    const bool busy = has_work_without_input();
    if (busy == busy_signalled_)
        return;
    uint64_t value = 1;
    [[maybe_unused]] const ssize_t n = busy ? ::write(busy_.fd, &value, sizeof value)
                                            : ::read(busy_.fd, &value, sizeof value);
    busy_signalled_ = busy;
}

void Listener::arm_expiry_timer() noexcept {
    int64_t earliest = INT64_MAX;
    for (const Pending &p : pending_)
        earliest = std::min(earliest, p.deadline_ns);
    // Set only for a deadline earlier than the one it is set for, or once that one has passed
    // (expired, or about to): a timer that fires too early only brings a step that drops
    // nothing and sets it again, while setting it at every admission and completion would
    // cost a join two system calls.
    if (earliest >= armed_for_ns_ && armed_for_ns_ > now_ns())
        return;
    armed_for_ns_ = earliest;
    // Setting the timer also clears an expiry already signalled; it_value zero disarms it.
    itimerspec spec{};
    if (earliest != INT64_MAX)
        spec.it_value = timespec{static_cast<time_t>(earliest / 1'000'000'000),
                                 static_cast<long>(earliest % 1'000'000'000)};
    ::timerfd_settime(timer_.fd, TFD_TIMER_ABSTIME, &spec, nullptr);
}

} // namespace px::ipc
