// A hostile peer, forged by hand from the wire format: every lie it tells is refused with
// PX_E_PROTOCOL (the connection is dropped, the process is not) or refused and counted.
#include <doctest/doctest.h>

#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/ipc/fd_passing.hpp"
#include "core/ipc/wire.hpp"
#include "ipc_support.hpp"

namespace wire = px::ipc::wire;
using namespace px_test;

namespace {

std::string last() { return px_last_error_message(); }

// An honest channel end (from the C API) connected to a forged one (raw socket).
struct Forged {
    px_channel_t *honest = nullptr;
    int evil = -1;
    int evil_return_in = -1;   // where the honest side's returns to us would arrive
    int return_to_honest = -1; // where we (claim to) return the honest side's slots

    // Handshakes properly, then leaves the forged end to misbehave.
    Forged() {
        int sv[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
        evil = sv[1];
        int rp[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rp) == 0);
        evil_return_in = rp[0];
        wire::Hello hello;
        hello.pid = static_cast<uint64_t>(getpid());
        auto bytes = wire::encode(hello);
        px::ipc::send_message(evil, bytes.data(), bytes.size(), &rp[1], 1);
        close(rp[1]);
        REQUIRE(px_channel_from_fd(sv[0], &honest) == PX_OK);
        uint8_t buf[wire::max_record_size];
        auto r = px::ipc::recv_message(evil, buf, sizeof buf, 1, false);
        REQUIRE(r.fds.size() == 1);
        return_to_honest = r.fds[0];
    }
    ~Forged() {
        px_channel_release(honest);
        close(evil);
        close(evil_return_in);
        close(return_to_honest);
    }
    void send_raw(const void *p, size_t n, const int *fds = nullptr, size_t nfds = 0) {
        px::ipc::send_message(evil, p, n, fds, nfds);
    }
    void send(const wire::Data &d, int fd = -1) {
        auto bytes = wire::encode(d);
        send_raw(bytes.data(), bytes.size(), fd >= 0 ? &fd : nullptr, fd >= 0 ? 1 : 0);
    }
    px_status_t recv() {
        px_buffer_t *b = nullptr;
        px_status_t rc = px_channel_recv(honest, 1'000'000'000, &b);
        px_buffer_release(b);
        return rc;
    }
};

int sealed_memfd(size_t size) {
    int fd = memfd_create("evil", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    REQUIRE(ftruncate(fd, static_cast<off_t>(size)) == 0);
    REQUIRE(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
    return fd;
}

wire::Data new_segment_record(uint32_t id, uint64_t size, uint64_t offset, uint64_t len) {
    wire::Data d;
    d.flags = wire::Data::new_segment;
    d.segment_id = id;
    d.segment_size = size;
    d.page_size = 4096;
    d.memory_type = PX_MEMORY_SHARED;
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
    REQUIRE(write(sv[1], hello.data(), hello.size()) == static_cast<ssize_t>(hello.size()));
    CHECK(px_channel_from_fd(sv[0], &ch) == PX_E_PROTOCOL); // no return socket attached
    CHECK(last().find("no return socket") != std::string::npos);
    close(sv[1]);

    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    wire::Hello future;
    future.version = 99;
    auto fb = wire::encode(future);
    int rp[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, rp) == 0);
    px::ipc::send_message(sv[1], fb.data(), fb.size(), &rp[1], 1);
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
    SUBCASE("short record") {
        Forged f;
        f.send_raw("PXP1", 4);
        CHECK(f.recv() == PX_E_PROTOCOL);
        CHECK(f.recv() == PX_E_PROTOCOL); // dropped for good
        CHECK(last().find("dropped") != std::string::npos);
    }
    SUBCASE("garbage of the right size") {
        Forged f;
        std::string junk(wire::data_size, '\xff');
        f.send_raw(junk.data(), junk.size());
        CHECK(f.recv() == PX_E_PROTOCOL);
    }
    SUBCASE("unknown segment id") {
        Forged f;
        wire::Data d;
        d.segment_id = 42;
        d.len = 1;
        f.send(d);
        CHECK(f.recv() == PX_E_PROTOCOL);
        CHECK(last().find("unknown segment id 42") != std::string::npos);
    }
    SUBCASE("offset + len overflows") {
        Forged f;
        int fd = sealed_memfd(4096);
        f.send(new_segment_record(1, 4096, 0, 16), fd);
        CHECK(f.recv() == PX_OK);
        wire::Data d;
        d.segment_id = 1;
        d.offset = UINT64_MAX - 2;
        d.len = 16;
        f.send(d);
        CHECK(f.recv() == PX_E_PROTOCOL);
        CHECK(last().find("exceeds segment length 4096") != std::string::npos);
        close(fd);
    }
    SUBCASE("range beyond the segment") {
        Forged f;
        int fd = sealed_memfd(4096);
        f.send(new_segment_record(1, 4096, 4000, 200), fd);
        CHECK(f.recv() == PX_E_PROTOCOL);
        close(fd);
    }
    SUBCASE("unsealed fd") {
        Forged f;
        int fd = memfd_create("unsealed", MFD_CLOEXEC);
        REQUIRE(ftruncate(fd, 4096) == 0);
        f.send(new_segment_record(1, 4096, 0, 16), fd);
        CHECK(f.recv() == PX_E_PROTOCOL);
        CHECK(last().find("F_SEAL_SHRINK") != std::string::npos);
        close(fd);
    }
    SUBCASE("fd smaller than claimed") {
        Forged f;
        int fd = sealed_memfd(4096);
        f.send(new_segment_record(1, 1 << 20, 0, 16), fd);
        CHECK(f.recv() == PX_E_PROTOCOL);
        CHECK(last().find("fewer than") != std::string::npos);
        close(fd);
    }
    SUBCASE("a pipe instead of memory") {
        Forged f;
        int p[2];
        REQUIRE(pipe(p) == 0);
        f.send(new_segment_record(1, 4096, 0, 16), p[0]);
        CHECK(f.recv() == PX_E_PROTOCOL);
        close(p[0]);
        close(p[1]);
    }
    SUBCASE("more fds than allowed, fds on plain records, and none of them leak") {
        int before = count_open_fds();
        {
            Forged f;
            int fds[2] = {sealed_memfd(4096), sealed_memfd(4096)};
            auto bytes = wire::encode(new_segment_record(1, 4096, 0, 16));
            f.send_raw(bytes.data(), bytes.size(), fds, 2);
            CHECK(f.recv() == PX_E_PROTOCOL);
            close(fds[0]);
            close(fds[1]);
        }
        {
            Forged f;
            int fd = sealed_memfd(4096);
            f.send(new_segment_record(1, 4096, 0, 16), fd);
            REQUIRE(f.recv() == PX_OK);
            wire::Data d;
            d.segment_id = 1;
            d.len = 1;
            f.send(d, fd); // an fd where none belongs
            CHECK(f.recv() == PX_E_PROTOCOL);
            close(fd);
        }
        CHECK(count_open_fds() == before);
    }
    SUBCASE("a stale descriptor replayed after its segment was unregistered") {
        Forged f;
        int fd = sealed_memfd(4096);
        f.send(new_segment_record(7, 4096, 0, 16), fd);
        REQUIRE(f.recv() == PX_OK);
        auto un = wire::encode(wire::Unregister{7});
        f.send_raw(un.data(), un.size());
        wire::Data d;
        d.segment_id = 7;
        d.len = 16;
        f.send(d);
        CHECK(f.recv() == PX_E_PROTOCOL);
        close(fd);
    }
    SUBCASE("a segment id registered twice") {
        Forged f;
        int fd = sealed_memfd(4096);
        f.send(new_segment_record(3, 4096, 0, 16), fd);
        REQUIRE(f.recv() == PX_OK);
        f.send(new_segment_record(3, 4096, 0, 16), fd);
        CHECK(f.recv() == PX_E_PROTOCOL);
        close(fd);
    }
    SUBCASE("a peer that tries to truncate a segment it shared is stopped by the seals") {
        Forged f;
        int fd = sealed_memfd(8192);
        f.send(new_segment_record(1, 8192, 0, 8192), fd);
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
    for (uint64_t k = 0; k < 2; ++k) {
        px_buffer_t *frame = make_frame(pool, 8, k);
        REQUIRE(px_channel_send(f.honest, frame) == PX_OK);
        px_buffer_release(frame);
    }
    uint8_t buf[wire::max_record_size];
    px::ipc::recv_message(f.evil, buf, sizeof buf, 1, false); // first record (with the fd)
    auto rec = wire::decode(buf, wire::data_size);
    uint64_t token = rec.data.token;
    REQUIRE(token != 0);
    CHECK(px_pool_available(pool) == 2);
    auto send_returns = [&](std::vector<uint64_t> tokens) {
        wire::Returns r{std::move(tokens)};
        auto bytes = wire::encode(r);
        REQUIRE(write(f.return_to_honest, bytes.data(), bytes.size()) ==
                static_cast<ssize_t>(bytes.size()));
    };
    send_returns({token + 1000}); // never lent
    send_returns({token});        // honest return
    send_returns({token});        // twice
    px_channel_stats_t st;
    CHECK(eventually([&] {
        px_channel_get_stats(f.honest, &st);
        return st.returns_refused == 2 && st.returns_accepted == 1;
    }));
    CHECK(px_pool_available(pool) == 3); // exactly one slot came back, nothing corrupted
    CHECK(st.slots_lent == 1);
    // Garbage on the return path: the borrower is not trusted any more; what it holds comes back.
    REQUIRE(write(f.return_to_honest, "garbage!", 8) == 8);
    CHECK(eventually([&] { return px_pool_available(pool) == 4; }));
    px_channel_get_stats(f.honest, &st);
    CHECK(st.returns_refused == 3);
    CHECK(st.slots_reclaimed == 1);
    px_pool_release(pool);
}
