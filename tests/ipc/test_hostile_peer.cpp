// SPDX-License-Identifier: Apache-2.0 OR MIT
// A hostile peer, forged by hand from the wire format: every lie it tells is refused with
// PX_E_PROTOCOL (the connection is dropped, the process is not) or refused and counted.
#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/ipc/fd_passing.hpp"
#include "core/ipc/handshake.hpp"
#include "core/ipc/ring.hpp"
#include "core/ipc/wire.hpp"
#include "ipc_support.hpp"

namespace wire = px::ipc::wire;
using namespace px_test;

namespace {

std::string last() { return px_last_error_message(); }

// An honest channel end (from the C API) connected to a forged one: a raw socket, a control
// block of our own making, and the honest end's control block mapped read-write, as any peer
// has it.
struct Forged {
    px_channel_t *honest = nullptr;
    int evil = -1;
    int evil_return_in = -1;   // where the honest side's returns to us would arrive
    int return_to_honest = -1; // where we (claim to) return the honest side's slots
    px::Ref<px::Segment> own_cb, honest_cb;
    px::FdGuard own_cb_fd; // the memfd behind own_cb, for the hello
    px::ipc::RingProducer out;        // our data ring, which the honest end consumes
    px::ipc::RingConsumer honest_out; // the honest end's data ring, which we consume
    px::ipc::RingProducer returns;    // the honest end's return ring, which we fill

    // Handshakes properly, then leaves the forged end to misbehave.
    Forged() {
        int sv[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
        evil = sv[1];
        int rp[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rp) == 0);
        evil_return_in = rp[0];
        {
            px::ipc::NewControlBlock made = px::ipc::create_control_block();
            own_cb = std::move(made.block);
            own_cb_fd = std::move(made.fd);
        }
        auto *cb = px::ipc::control_of(*own_cb);
        out = px::ipc::RingProducer(&cb->data_tail, &cb->data_head, px::ipc::data_ring_entries);
        wire::Hello hello;
        hello.pid = static_cast<uint64_t>(getpid());
        auto bytes = wire::encode(hello);
        int fds[2] = {rp[1], own_cb_fd.fd};
        struct stat st {};
        REQUIRE(fstat(rp[1], &st) == 0);
        const ino_t offered_ino = st.st_ino;
        px::ipc::send_message(evil, bytes.data, bytes.size, fds, 2);
        close(rp[1]);
        REQUIRE(px_channel_from_fd(sv[0], &honest) == PX_OK);
        uint8_t buf[wire::max_record_size];
        auto r = px::ipc::recv_message(evil, buf, sizeof buf, 2, false);
        REQUIRE(r.fds.size() == 2);
        // Both ends keep one of the two offered return socketpairs (keeps_own_return_pair).
        REQUIRE(fstat(r.fds[0], &st) == 0);
        if (px::ipc::keeps_own_return_pair(st.st_ino, offered_ino)) {
            close(evil_return_in);
            evil_return_in = return_to_honest = r.fds[0];
        } else {
            return_to_honest = evil_return_in;
            close(r.fds[0]);
        }
        honest_cb = px::ipc::map_peer_control_block(r.fds[1]);
        close(r.fds[1]);
        auto *hcb = px::ipc::control_of(*honest_cb);
        honest_out = px::ipc::RingConsumer(&hcb->data_tail, &hcb->data_head,
                                           px::ipc::data_ring_entries);
        returns = px::ipc::RingProducer(&hcb->return_tail, &hcb->return_head,
                                        px::ipc::return_ring_entries);
    }
    ~Forged() {
        px_channel_release(honest);
        close(evil);
        close(evil_return_in); // the same socket as return_to_honest
    }
    // A record on the socket.
    void send_raw(const void *p, size_t n, const int *fds = nullptr, size_t nfds = 0) {
        px::ipc::send_message(evil, p, n, fds, nfds);
    }
    void register_segment(uint32_t id, uint64_t size, int fd) {
        wire::SegmentInfo info;
        info.segment_id = id;
        info.size = size;
        info.page_size = 4096;
        info.memory_type = PX_MEMORY_SHARED;
        auto bytes = wire::encode(info);
        send_raw(bytes.data, bytes.size, &fd, 1);
    }
    // An entry in our data ring: a length, then bytes.
    void push_entry(uint32_t len, const void *bytes, size_t n) {
        long slot = out.reserve();
        REQUIRE(slot >= 0);
        uint8_t *e = px::ipc::control_of(*own_cb)->data_entries[slot];
        std::memcpy(e, &len, sizeof len);
        std::memcpy(e + sizeof len, bytes, n);
        out.publish();
    }
    void push(const wire::Bytes &rec) {
        push_entry(static_cast<uint32_t>(rec.size), rec.data, rec.size);
    }
    void send(const wire::Data &d) { push(wire::encode(d)); }
    px_status_t recv() {
        px_buffer_t *b = nullptr;
        px_status_t rc = px_channel_recv(honest, 1'000'000'000, &b);
        px_buffer_release(b);
        return rc;
    }
    // The token of the next record the honest end sent us.
    uint64_t next_token() {
        long slot = honest_out.peek();
        REQUIRE(slot >= 0);
        uint8_t entry[px::ipc::data_entry_size];
        std::memcpy(entry, px::ipc::control_of(*honest_cb)->data_entries[slot], sizeof entry);
        honest_out.consume();
        uint32_t len;
        std::memcpy(&len, entry, sizeof len);
        return wire::decode(entry + sizeof len, len).data.token;
    }
};

int sealed_memfd(size_t size) {
    int fd = memfd_create("evil", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    REQUIRE(ftruncate(fd, static_cast<off_t>(size)) == 0);
    REQUIRE(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
    return fd;
}

wire::Data data_record(uint32_t id, uint64_t offset, uint64_t len) {
    wire::Data d;
    d.segment_id = id;
    d.offset = offset;
    d.len = len;
    return d;
}

} // namespace

TEST_CASE("a peer that answers the handshake with garbage gets PX_E_PROTOCOL") {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    REQUIRE(write(sv[1], "GET / HTTP/1.1\r\n\r\n", 18) == 18);
    px_channel_t *ch = nullptr;
    CHECK(px_channel_from_fd(sv[0], &ch) == PX_E_PROTOCOL);
    CHECK(last().find("bad magic") != std::string::npos);
    close(sv[1]);

    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    auto hello = wire::encode(wire::Hello{});
    REQUIRE(write(sv[1], hello.data, hello.size) == static_cast<ssize_t>(hello.size));
    CHECK(px_channel_from_fd(sv[0], &ch) == PX_E_PROTOCOL); // no return socket attached
    CHECK(last().find("carries 0 fds") != std::string::npos);
    close(sv[1]);

    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    wire::Hello future;
    future.version = 99;
    auto fb = wire::encode(future);
    int rp[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, rp) == 0);
    px::ipc::send_message(sv[1], fb.data, fb.size, &rp[1], 1);
    CHECK(px_channel_from_fd(sv[0], &ch) == PX_E_PROTOCOL);
    CHECK(last().find("protocol version 99") != std::string::npos);
    close(sv[1]);
    close(rp[0]);
    close(rp[1]);

    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    close(sv[1]); // a peer that hangs up before greeting
    CHECK(px_channel_from_fd(sv[0], &ch) == PX_E_CLOSED);
}

TEST_CASE("hostile records are refused and drop the connection, not the process") {
    SUBCASE("short record on the socket") {
        Forged f;
        f.send_raw("PXP2", 4);
        px_buffer_t *b = nullptr;
        CHECK(px_channel_recv(f.honest, 0, &b) == PX_E_PROTOCOL);
        CHECK(f.recv() == PX_E_PROTOCOL); // dropped for good
        CHECK(last().find("dropped") != std::string::npos);
    }
    SUBCASE("a ring entry that claims more bytes than an entry holds") {
        Forged f;
        f.push_entry(100000, "x", 1);
        CHECK(f.recv() == PX_E_PROTOCOL);
    }
    SUBCASE("garbage of the right size in the ring") {
        Forged f;
        std::string junk(wire::data_size, '\xff');
        f.push_entry(static_cast<uint32_t>(junk.size()), junk.data(), junk.size());
        CHECK(f.recv() == PX_E_PROTOCOL);
    }
    SUBCASE("a ring index that lies") {
        Forged f;
        px::ipc::control_of(*f.own_cb)->data_tail.store(1u << 30);
        CHECK(f.recv() == PX_E_PROTOCOL);
        CHECK(last().find("impossible ring index") != std::string::npos);
    }
    SUBCASE("unknown segment id") {
        Forged f;
        f.send(data_record(42, 0, 1));
        CHECK(f.recv() == PX_E_PROTOCOL);
        CHECK(last().find("unknown segment id 42") != std::string::npos);
    }
    SUBCASE("offset + len overflows") {
        Forged f;
        int fd = sealed_memfd(4096);
        f.register_segment(1, 4096, fd);
        f.send(data_record(1, 0, 16));
        CHECK(f.recv() == PX_OK);
        f.send(data_record(1, UINT64_MAX - 2, 16));
        CHECK(f.recv() == PX_E_PROTOCOL);
        CHECK(last().find("overflows") != std::string::npos);
        close(fd);
    }
    SUBCASE("range beyond the segment") {
        Forged f;
        int fd = sealed_memfd(4096);
        f.register_segment(1, 4096, fd);
        f.send(data_record(1, 4000, 200));
        CHECK(f.recv() == PX_E_PROTOCOL);
        CHECK(last().find("exceeds segment length 4096") != std::string::npos);
        close(fd);
    }
    SUBCASE("unsealed fd") {
        Forged f;
        int fd = memfd_create("unsealed", MFD_CLOEXEC);
        REQUIRE(ftruncate(fd, 4096) == 0);
        f.register_segment(1, 4096, fd);
        f.send(data_record(1, 0, 16));
        CHECK(f.recv() == PX_E_PROTOCOL);
        CHECK(last().find("F_SEAL_SHRINK") != std::string::npos);
        close(fd);
    }
    SUBCASE("fd smaller than claimed") {
        Forged f;
        int fd = sealed_memfd(4096);
        f.register_segment(1, 1 << 20, fd);
        f.send(data_record(1, 0, 16));
        CHECK(f.recv() == PX_E_PROTOCOL);
        CHECK(last().find("fewer than") != std::string::npos);
        close(fd);
    }
    SUBCASE("a pipe instead of memory") {
        Forged f;
        int p[2];
        REQUIRE(pipe(p) == 0);
        f.register_segment(1, 4096, p[0]);
        f.send(data_record(1, 0, 16));
        CHECK(f.recv() == PX_E_PROTOCOL);
        close(p[0]);
        close(p[1]);
    }
    SUBCASE("more fds than allowed, fds where none belong, and none of them leak") {
        int before = count_open_fds();
        {
            Forged f;
            int fds[2] = {sealed_memfd(4096), sealed_memfd(4096)};
            wire::SegmentInfo info;
            info.segment_id = 1;
            info.size = 4096;
            info.memory_type = PX_MEMORY_SHARED;
            auto bytes = wire::encode(info);
            f.send_raw(bytes.data, bytes.size, fds, 2);
            f.send(data_record(1, 0, 16));
            CHECK(f.recv() == PX_E_PROTOCOL);
            close(fds[0]);
            close(fds[1]);
        }
        {
            Forged f;
            int fd = sealed_memfd(4096);
            auto wake = wire::encode_wake();
            f.send_raw(wake.data, wake.size, &fd, 1); // an fd on a wake record
            px_buffer_t *b = nullptr;
            CHECK(px_channel_recv(f.honest, 0, &b) == PX_E_PROTOCOL);
            close(fd);
        }
        CHECK(count_open_fds() == before);
    }
    SUBCASE("a stale descriptor replayed after its segment was unregistered") {
        Forged f;
        int fd = sealed_memfd(4096);
        f.register_segment(7, 4096, fd);
        f.send(data_record(7, 0, 16));
        REQUIRE(f.recv() == PX_OK);
        f.push(wire::encode(wire::Unregister{7}));
        f.send(data_record(7, 0, 16));
        CHECK(f.recv() == PX_E_PROTOCOL);
        close(fd);
    }
    SUBCASE("a segment id registered twice") {
        Forged f;
        int fd = sealed_memfd(4096);
        f.register_segment(3, 4096, fd);
        f.send(data_record(3, 0, 16));
        REQUIRE(f.recv() == PX_OK);
        f.register_segment(3, 4096, fd);
        f.send(data_record(9, 0, 16)); // makes the receiver read the socket
        CHECK(f.recv() == PX_E_PROTOCOL);
        CHECK(last().find("registered twice") != std::string::npos);
        close(fd);
    }
    SUBCASE("a peer that tries to truncate a segment it shared is stopped by the seals") {
        Forged f;
        int fd = sealed_memfd(8192);
        f.register_segment(1, 8192, fd);
        f.send(data_record(1, 0, 8192));
        px_buffer_t *b = nullptr;
        REQUIRE(px_channel_recv(f.honest, 1'000'000'000, &b) == PX_OK);
        CHECK(ftruncate(fd, 0) == -1);
        CHECK(errno == EPERM);
        volatile char last_byte = static_cast<const char *>(px_buffer_ptr(b))[8191];
        (void)last_byte; // still mapped and backed: no SIGBUS
        px_buffer_release(b);
        close(fd);
    }
}

TEST_CASE("a hostile borrower: returns of slots never lent or returned twice are counted") {
    Forged f;
    px_pool_t *pool = shm_pool(4, 4096);
    for (uint64_t k = 0; k < 3; ++k) {
        px_buffer_t *frame = make_frame(pool, 8, k);
        REQUIRE(px_channel_send(f.honest, frame) == PX_OK);
        px_buffer_release(frame);
    }
    uint64_t t0 = f.next_token(), t1 = f.next_token(), t2 = f.next_token();
    REQUIRE(t0 != 0);
    CHECK(px_pool_available(pool) == 1);
    auto socket_returns = [&](std::vector<uint64_t> tokens) {
        wire::Returns r{std::move(tokens)};
        auto bytes = wire::encode(r);
        REQUIRE(write(f.return_to_honest, bytes.data, bytes.size) ==
                static_cast<ssize_t>(bytes.size));
    };
    auto ring_return = [&](uint64_t token) {
        long slot = f.returns.reserve();
        REQUIRE(slot >= 0);
        px::ipc::control_of(*f.honest_cb)->return_entries[slot].store(token);
        f.returns.publish();
    };
    ring_return(t0 + t1 + t2 + 1000); // never lent
    ring_return(t0);                  // honest return, through the ring
    ring_return(t0);                  // twice
    socket_returns({t1});             // honest, through the socket
    socket_returns({t1, 99999});      // twice, and never lent
    px_channel_stats_t st;
    CHECK(eventually([&] {
        px_channel_get_stats(f.honest, &st);
        return st.returns_refused == 4 && st.returns_accepted == 2;
    }));
    CHECK(px_pool_available(pool) == 3); // exactly two slots came back, nothing corrupted
    CHECK(st.slots_lent == 1);
    // A return ring index that lies: the borrower is not trusted any more; what it holds comes
    // back.
    px::ipc::control_of(*f.honest_cb)->return_tail.store(1ull << 40);
    CHECK(eventually([&] { return px_pool_available(pool) == 4; }));
    px_channel_get_stats(f.honest, &st);
    CHECK(st.returns_refused == 5);
    CHECK(st.slots_reclaimed == 1);
    px_pool_release(pool);
}

TEST_CASE("garbage on the return socket: the borrower's loans are reclaimed") {
    Forged f;
    px_pool_t *pool = shm_pool(2, 4096);
    px_buffer_t *frame = make_frame(pool, 8, 0);
    REQUIRE(px_channel_send(f.honest, frame) == PX_OK);
    px_buffer_release(frame);
    CHECK(px_pool_available(pool) == 1);
    REQUIRE(write(f.return_to_honest, "garbage!", 8) == 8);
    CHECK(eventually([&] { return px_pool_available(pool) == 2; }));
    px_channel_stats_t st;
    px_channel_get_stats(f.honest, &st);
    CHECK(st.returns_refused == 1);
    CHECK(st.slots_reclaimed == 1);
    px_pool_release(pool);
}

// Defect 3 of issue 12: a poll (timeout 0) that found a registration on the socket used to wait
// up to 10 ms for the record behind it. A peer that registers and never publishes is that case.
TEST_CASE("a poll answers at once even when a registration arrived without its record") {
    Forged f;
    int fd = sealed_memfd(4096);
    f.register_segment(1, 4096, fd);
    close(fd);
    for (int i = 0; i < 3; ++i) {
        px_buffer_t *b = nullptr;
        const auto t0 = std::chrono::steady_clock::now();
        CHECK(px_channel_recv(f.honest, 0, &b) == PX_E_WOULD_BLOCK);
        const auto took = std::chrono::steady_clock::now() - t0;
        CHECK(took < std::chrono::milliseconds(2));
        CHECK(b == nullptr);
    }
    // The record, when it comes, is received.
    f.send(data_record(1, 0, 16));
    CHECK(f.recv() == PX_OK);
}

// Defect 4 of issue 12: a zero-length message is not a hang-up but a protocol error.
TEST_CASE("a zero-length message on the socket is PX_E_PROTOCOL, not PX_E_CLOSED") {
    Forged f;
    REQUIRE(send(f.evil, "", 0, 0) == 0);
    px_buffer_t *b = nullptr;
    CHECK(px_channel_recv(f.honest, 0, &b) == PX_E_PROTOCOL);
    CHECK(b == nullptr);
}
