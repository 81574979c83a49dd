// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/ipc/handshake.hpp"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <fcntl.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/ipc/fd_passing.hpp"
#include "core/ipc/ring.hpp"
#include "core/ipc/wire.hpp"
#include "core/shared_memory_segment.hpp"

namespace px::ipc {

void check_seqpacket_unix(int fd) {
    int type = 0, domain = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
        if (errno == EBADF)
            fail(Status::invalid, "fd " + std::to_string(fd) + " is not an open file descriptor");
        if (errno == ENOTSOCK)
            fail(Status::invalid, "fd " + std::to_string(fd) + " is not a socket");
        fail_errno("getsockopt(SO_TYPE)", errno);
    }
    len = sizeof domain;
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
        fail_errno("getsockopt(SO_DOMAIN)", errno);
    if (domain != AF_UNIX || type != SOCK_SEQPACKET)
        fail(Status::invalid,
             "fd " + std::to_string(fd) + " is not an AF_UNIX SOCK_SEQPACKET socket");
}

std::pair<int, int> seqpacket_pair() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        fail_errno("socketpair(AF_UNIX, SOCK_SEQPACKET)", errno);
    return {sv[0], sv[1]};
}

int64_t handshake_timeout_within(int64_t deadline_ns, int64_t at_least) noexcept {
    const int64_t left = timeout_left(deadline_ns, now_ns());
    return left < 0 ? default_handshake_timeout_ns : std::max(left, at_least);
}

namespace {

// The return socketpair: non-blocking from the start (returns are read and written without
// blocking, whichever end of which pair is kept), so keeping our own end needs no fcntl.
void make_return_pair(Offer &offer) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
        fail_errno("socketpair(AF_UNIX, SOCK_SEQPACKET) for the return path", errno);
    offer.mine.reset(sv[0]);
    offer.theirs.reset(sv[1]);
    struct stat st {};
    if (::fstat(sv[1], &st) < 0)
        fail_errno("fstat(return socket)", errno);
    offer.theirs_ino = st.st_ino;
}

} // namespace

namespace {

// The bytes of a control block that its owner writes as it sends: up to the end of the data
// ring (the return ring after it is written by the peer, which faults in its own pages).
constexpr size_t data_ring_end() noexcept {
    return offsetof(ControlBlock, return_entries);
}

// Faulted in per offer piece: allocating and zeroing a page costs 2-5 us of CPU on the loaded
// VM (5 pages: 21 us p50, 31 us p99 in the churn bench), so the data ring's 13 pages take
// seven pieces of two.
constexpr size_t populate_per_piece = 8 * 1024;

enum class OfferPiece { memfd, size, map, populate, socketpair, ready };

OfferPiece next_offer_piece(const Offer &offer) noexcept {
    if (offer.control_fd.fd < 0 && !offer.control)
        return OfferPiece::memfd;
    if (!offer.control && !offer.control_sized)
        return OfferPiece::size;
    if (!offer.control)
        return OfferPiece::map;
    if (offer.fault_in_ahead && offer.populated < data_ring_end())
        return OfferPiece::populate;
    if (offer.theirs.fd < 0)
        return OfferPiece::socketpair;
    return OfferPiece::ready;
}

} // namespace

bool make_offer_piece(Offer &offer) {
    switch (next_offer_piece(offer)) {
    case OfferPiece::memfd:
        offer.control_fd.reset(shm::create_memfd(control_memfd_name, 0));
        break;
    case OfferPiece::size:
        shm::size_and_seal_memfd(offer.control_fd.fd, sizeof(ControlBlock));
        offer.control_sized = true;
        break;
    case OfferPiece::map:
        offer.control = map_new_control_block(offer.control_fd.fd);
        break;
    case OfferPiece::populate:
        offer.control->populate(offer.populated, populate_per_piece);
        offer.populated += populate_per_piece;
        break;
    case OfferPiece::socketpair:
        make_return_pair(offer);
        break;
    case OfferPiece::ready:
        return false;
    }
    return true;
}

const char *next_offer_piece_name(const Offer &offer) noexcept {
    switch (next_offer_piece(offer)) {
    case OfferPiece::memfd:
        return "offer: control block memfd";
    case OfferPiece::size:
        return "offer: size and seal it";
    case OfferPiece::map:
        return "offer: map the control block";
    case OfferPiece::populate:
        return "offer: fault in data ring pages";
    case OfferPiece::socketpair:
        return "offer: return socketpair";
    case OfferPiece::ready:
        break;
    }
    return "offer: ready";
}

Offer make_offer(bool fault_in_ahead) {
    Offer offer;
    offer.fault_in_ahead = fault_in_ahead;
    while (make_offer_piece(offer)) {
    }
    return offer;
}

namespace {

// make_offer() for a handshake that takes `socket_fd`: the socket is closed if it fails.
Offer offer_for(int socket_fd) {
    FdGuard sock{socket_fd};
    Offer offer = make_offer();
    sock.release();
    return offer;
}

} // namespace

Handshake::Handshake(int socket_fd) : Handshake(socket_fd, offer_for(socket_fd)) {}

Handshake::Handshake(int socket_fd, Offer offer) {
    conn_.sock.reset(socket_fd);
    conn_.own_control = std::move(offer.control);
    my_return_ = std::move(offer.mine);
    offered_ino_ = offer.theirs_ino;
    wire::Hello hello;
    hello.pid = static_cast<uint64_t>(::getpid());
    auto bytes = wire::encode(hello);
    int fds[2] = {offer.theirs.fd, offer.control_fd.fd};
    // A fresh connection has room for one record: this never waits for the peer. Both fds
    // are the peer's from now on: ours close with `offer`.
    send_message(conn_.sock.fd, bytes.data, bytes.size, fds, 2);
}

bool Handshake::advance() {
    for (;;) {
        const Progress p = advance_one();
        if (p != Progress::advanced)
            return p == Progress::complete;
    }
}

Handshake::Progress Handshake::advance_one() {
    switch (stage_) {
    case Stage::hello:
        if (!receive_hello())
            return Progress::waiting;
        stage_ = Stage::map_peer;
        return Progress::advanced;
    case Stage::map_peer:
        map_peer();
        stage_ = Stage::return_socket;
        return Progress::advanced;
    case Stage::return_socket:
        choose_return_socket();
        stage_ = Stage::return_path;
        return Progress::advanced;
    case Stage::return_path:
        set_up_return_path();
        stage_ = Stage::done;
        return Progress::complete;
    case Stage::done:
        break;
    }
    return Progress::complete;
}

const char *Handshake::next_stage_name() const noexcept {
    switch (stage_) {
    case Stage::hello:
        return "handshake: read the hello";
    case Stage::map_peer:
        return "handshake: map the peer's control block";
    case Stage::return_socket:
        return "handshake: choose the return socket";
    case Stage::return_path:
        return "handshake: return path, channel";
    case Stage::done:
        break;
    }
    return "handshake: done";
}

// Reads the peer's hello if it has arrived and validates it (its fds' kinds, the peer's uid);
// false when it is not there yet.
bool Handshake::receive_hello() {
    const int sock = conn_.sock.fd;
    uint8_t buf[wire::max_record_size];
    Received r = recv_message(sock, buf, sizeof buf, 2, true);
    if (r.would_block)
        return false;
    if (r.closed)
        fail(Status::closed, "the peer closed the connection during the handshake");
    FdGuard return_fd{r.fds.size() > 0 ? r.fds[0] : -1};
    FdGuard control_fd{r.fds.size() > 1 ? r.fds[1] : -1};
    wire::Record rec = wire::decode(buf, r.len);
    if (rec.type != wire::Type::hello)
        fail(Status::protocol, "the peer's first record is not a hello");
    if (r.fds.size() != 2)
        fail(Status::protocol, "the peer's hello carries " + std::to_string(r.fds.size()) +
                                   " fds, not its return socket and control block");
    try {
        check_seqpacket_unix(return_fd.fd);
    } catch (const Error &e) {
        fail(Status::protocol, std::string("the peer's return socket: ") + e.what());
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        fail_errno("getsockopt(SO_PEERCRED)", errno);
    if (cred.uid != ::geteuid())
        fail(Status::permission, "peer runs as uid " + std::to_string(cred.uid) +
                                     "; only the same uid (" + std::to_string(::geteuid()) +
                                     ") may connect");
    // The hello's pid, not SO_PEERCRED's: the credentials of a socketpair name the process that
    // made it, while the hello comes from the process that uses the end (a child that inherited
    // it). A peer that lies about its pid only mis-times the reclaim of its own loans.
    conn_.peer_pid = rec.hello.pid <= static_cast<uint64_t>(INT32_MAX)
                         ? static_cast<pid_t>(rec.hello.pid)
                         : 0;
    peer_return_ = std::move(return_fd);
    peer_control_ = std::move(control_fd);
    return true;
}

void Handshake::map_peer() {
    conn_.peer_control = map_peer_control_block(peer_control_.fd);
}

// Keeps one of the two return socketpairs offered (the same one at both ends).
void Handshake::choose_return_socket() {
    peer_control_.reset(); // mapped by the stage before; closed here, where there is less to do
    struct stat st {};
    if (::fstat(peer_return_.fd, &st) < 0)
        fail_errno("fstat(the peer's return socket)", errno);
    if (keeps_own_return_pair(offered_ino_, st.st_ino)) {
        kept_return_ = std::move(my_return_); // non-blocking from the start (make_return_pair)
    } else {
        kept_return_ = std::move(peer_return_);
        // Returns are read and written without blocking (collect and give_back never wait).
        const int flags = ::fcntl(kept_return_.fd, F_GETFL);
        if (!(flags & O_NONBLOCK))
            ::fcntl(kept_return_.fd, F_SETFL, flags | O_NONBLOCK);
    }
    my_return_.reset();
    peer_return_.reset();
}

// Sets up the return path over the socket kept, and watches the peer's process from here on.
void Handshake::set_up_return_path() {
    auto socket = Ref<ReturnSocket>::adopt(new ReturnSocket(kept_return_.release()));
    conn_.inbox =
        Ref<ReturnInbox>::adopt(new ReturnInbox(socket, conn_.own_control, conn_.peer_pid));
    conn_.outbox = Ref<ReturnOutbox>::adopt(new ReturnOutbox(socket, conn_.peer_control));
}

Connection handshake(int socket_fd, int64_t timeout_ns) {
    Handshake hs(socket_fd);
    if (!wait_readable(hs.fd(), timeout_ns) || !hs.advance())
        fail(timeout_ns == 0 ? Status::would_block : Status::timeout,
             "the peer did not complete the handshake in time");
    return hs.take();
}

std::pair<Connection, Connection> handshake_pair(int fd_a, int fd_b) {
    FdGuard b_guard{fd_b};
    Handshake a(fd_a);
    Handshake b(b_guard.release());
    if (!a.advance() || !b.advance())
        fail(Status::internal, "a channel pair's hellos were not delivered at once");
    return {a.take(), b.take()};
}

} // namespace px::ipc
