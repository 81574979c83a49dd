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
#include "core/ipc/ring.hpp"
#include "core/ref.hpp"
#include "core/segment.hpp"

namespace px::ipc {

// How long a peer may take to answer our hello when the caller set no bound.
constexpr int64_t default_handshake_timeout_ns = 10'000'000'000;
// The time a handshake gets when the caller's own deadline (from deadline_for; INT64_MAX: none)
// is near: never less than `at_least` (min_handshake_ns for a channel, so that a connection
// made just before the deadline still gets a fair chance; 0 for a stream's subscriber, whose
// timeout bounds its whole join); with no deadline, default_handshake_timeout_ns.
constexpr int64_t min_handshake_ns = 1'000'000'000;
int64_t handshake_timeout_within(int64_t deadline_ns,
                                 int64_t at_least = min_handshake_ns) noexcept;

// What a channel end is made of, once its handshake is done.
struct Connection {
    FdGuard sock{-1};           // the main socket
    Ref<Segment> own_control;   // our rings: we produce data, we consume returns (no fd kept)
    Ref<Segment> peer_control;  // the peer's: we consume its data, we produce returns (no fd)
    Ref<ReturnInbox> inbox;     // returns of what this end lends  } both on one
    Ref<ReturnOutbox> outbox;   // where this end returns what it borrowed } return socket
    pid_t peer_pid = 0;         // the peer's process, as its hello says
};

// What an end offers its peer in its hello: its control block and one end of a return
// socketpair it made. Most of a handshake's kernel work (a memfd and its mapping, a socketpair):
// a caller with a latency budget makes one ahead of the connection it will serve, in pieces
// (make_offer_piece).
struct Offer {
    FdGuard control_fd{-1}; // the control block's sealed memfd, sent to the peer
    bool control_sized = false; // control_fd has its size and seals
    Ref<Segment> control;   // our mapping of it
    // Fault in the data ring's pages ahead (a caller with a latency budget: the sends to the
    // new peer then take no page fault), and how many bytes of it are so far.
    bool fault_in_ahead = false;
    size_t populated = 0;
    FdGuard mine{-1};       // our end of the return socketpair (non-blocking, as kept)
    FdGuard theirs{-1};     // the end sent to the peer
    ino_t theirs_ino = 0;   // its inode, which names the socketpair (keeps_own_return_pair)

    bool ready() const noexcept { return control && theirs.fd >= 0; }
};
// Makes the next part the offer lacks, one or two system calls each (a piece measured at
// 30-40 us of CPU on a loaded VM when it was memfd, size and seals at once): the memfd; its
// size and seals; its mapping; with fault_in_ahead, the data ring's pages, part by part; the
// socketpair. False when it was ready already.
bool make_offer_piece(Offer &offer);
// What make_offer_piece makes next, in words (for a caller that profiles its pieces).
const char *next_offer_piece_name(const Offer &offer) noexcept;
Offer make_offer(bool fault_in_ahead = false);

class Handshake {
public:
    // Takes the socket (closed on failure), makes an offer and sends this end's hello.
    explicit Handshake(int socket_fd);
    // The same with an offer made ahead (ready()): only the hello is sent here.
    Handshake(int socket_fd, Offer offer);
    Handshake(Handshake &&) noexcept = default;
    Handshake &operator=(Handshake &&) noexcept = default;

    // Runs every stage it can now, without blocking: true once the handshake is complete.
    // Throws Error: closed (the peer hung up first), protocol (garbage, wrong fds), permission
    // (another uid).
    bool advance();
    // One stage, a few system calls each, for a caller with a latency budget: receive and
    // validate the peer's hello (waiting: not there yet, nothing done); map the peer's control
    // block; choose the return socket; set up the return path and watch the peer's process.
    // Throws as advance().
    enum class Progress { waiting, advanced, complete };
    Progress advance_one();
    // True until the peer's hello has been received: the later stages wait on no input.
    bool needs_input() const noexcept { return stage_ == Stage::hello; }
    // What advance_one does next, in words (for a caller that profiles its pieces).
    const char *next_stage_name() const noexcept;
    // The socket, to poll for the peer's hello.
    int fd() const noexcept { return conn_.sock.fd; }
    // The connection, after advance() answered true (the handshake is spent).
    Connection take() noexcept { return std::move(conn_); }

private:
    enum class Stage { hello, map_peer, return_socket, return_path, done };
    bool receive_hello();
    void map_peer();
    void choose_return_socket();
    void set_up_return_path();

    Connection conn_;
    Stage stage_ = Stage::hello;
    FdGuard my_return_{-1}; // our end of the return socketpair we offered
    ino_t offered_ino_ = 0; // the end we sent (its inode names that socketpair)
    // Between the stages: what the peer's hello carried, then the return socket kept.
    FdGuard peer_return_{-1};
    FdGuard peer_control_{-1};
    FdGuard kept_return_{-1};
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
