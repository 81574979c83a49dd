// SPDX-License-Identifier: Apache-2.0 OR MIT
// The handshake every channel starts with, whichever way it was made (pair, from_fd, connect,
// accept). Each end sends one hello record carrying two fds: the socket through which the peer
// returns slots (one end of a socketpair this end made), and this end's control block (rings).
// Each end then reads the peer's hello, validates it and checks the peer's credentials.
//
// A Handshake never blocks: it sends its hello when made (a fresh socket always has room for
// one record) and advance() reads the peer's only when the socket holds it. So a listener can
// keep many handshakes going at once, and a silent client delays nobody.
#pragma once

#include <cstdint>
#include <sys/types.h>
#include <utility>

#include "core/fd_guard.hpp"
#include "core/ipc/return_path.hpp"
#include "core/ref.hpp"
#include "core/segment.hpp"

namespace px::ipc {

// How long a peer may take to answer our hello when the caller set no bound.
constexpr int64_t default_handshake_timeout_ns = 10'000'000'000;
// The time a handshake gets when the caller's own deadline (from deadline_for; INT64_MAX: none)
// is near: never less than min_handshake_ns, so that a connection made just before the
// deadline still gets a fair chance; with no deadline, default_handshake_timeout_ns.
constexpr int64_t min_handshake_ns = 1'000'000'000;
int64_t handshake_timeout_within(int64_t deadline_ns) noexcept;

// What a channel end is made of, once its handshake is done.
struct Connection {
    FdGuard sock{-1};           // the main socket
    Ref<Segment> own_control;   // our rings: we produce data, we consume returns (no fd kept)
    Ref<Segment> peer_control;  // the peer's: we consume its data, we produce returns (no fd)
    Ref<ReturnInbox> inbox;     // returns of what this end lends  } both on one
    Ref<ReturnOutbox> outbox;   // where this end returns what it borrowed } return socket
    pid_t peer_pid = 0;         // the peer's process, as its hello says
};

class Handshake {
public:
    // Takes the socket (closed on failure) and sends this end's hello.
    explicit Handshake(int socket_fd);
    Handshake(Handshake &&) noexcept = default;
    Handshake &operator=(Handshake &&) noexcept = default;

    // Reads the peer's hello if it has arrived, without blocking: true once the handshake is
    // complete. Throws Error: closed (the peer hung up first), protocol (garbage, wrong fds),
    // permission (another uid).
    bool advance();
    // The socket, to poll for the peer's hello.
    int fd() const noexcept { return conn_.sock.fd; }
    // The connection, after advance() answered true (the handshake is spent).
    Connection take() noexcept { return std::move(conn_); }

private:
    Connection conn_;
    FdGuard my_return_{-1}; // our end of the return socketpair we offered
    ino_t offered_ino_ = 0; // the end we sent (its inode names that socketpair)
};

// Both ends offer a return socketpair in their hellos; both keep the same one (so that each end
// holds one return fd): the pair whose offered end has the lower inode number, which both ends
// know. True when this end keeps its own pair.
inline bool keeps_own_return_pair(ino_t offered_ino, ino_t received_ino) noexcept {
    return offered_ino < received_ino;
}

// Runs a handshake to its end, waiting up to timeout_ns (< 0 forever, 0 only what is there):
// would_block / timeout when the peer's hello does not come in time.
Connection handshake(int socket_fd, int64_t timeout_ns);

// Handshakes two connected ends in this process: both hellos are sent before either is read.
std::pair<Connection, Connection> handshake_pair(int fd_a, int fd_b);

// Throws invalid unless `fd` is an open AF_UNIX SOCK_SEQPACKET socket.
void check_seqpacket_unix(int fd);
// A connected pair of AF_UNIX SOCK_SEQPACKET sockets (close-on-exec).
std::pair<int, int> seqpacket_pair();

} // namespace px::ipc
