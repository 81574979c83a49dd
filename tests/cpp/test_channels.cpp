// SPDX-License-Identifier: Apache-2.0 OR MIT
// The C++ wrapper's channels and listeners: in one process, across fork(), over a socket
// path, adopted sockets, hostile peers, low-level fd passing.
#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "parallax/parallax.hpp"
#include "support/hugepages.hpp"

using namespace std::chrono_literals;
namespace px = parallax;

namespace {
template <class F> px::Error expect_error(F &&f, px::Status status) {
    try {
        f();
    } catch (const px::Error &e) {
        CHECK_MESSAGE(e.status() == status, e.what());
        return e;
    }
    FAIL("no parallax::Error thrown; expected " << px::status_name(status));
    return px::Error(PX_E_INTERNAL, "unreachable");
}

unsigned char pattern(uint64_t seq, size_t j) { return static_cast<unsigned char>((seq + j) & 0xff); }

px::Buffer frame(px::Pool &pool, uint64_t seq, size_t len) {
    px::Slot s = pool.loan(10s);
    auto *p = reinterpret_cast<unsigned char *>(s.data());
    for (size_t j = 0; j < len; ++j)
        p[j] = pattern(seq, j);
    px::Metadata m(seq);
    m.pts_ns = 1000 + static_cast<int64_t>(seq);
    m.set_user_data("frame " + std::to_string(seq));
    return std::move(s).into_buffer(len, m);
}

// Empty string when intact, else what is wrong (usable in a forked child without doctest).
std::string check_frame(const px::Buffer &b, uint64_t seq, size_t len) {
    if (b.size() != len)
        return "length " + std::to_string(b.size());
    px::Metadata m = b.metadata();
    if (m.sequence != seq || m.pts_ns != 1000 + static_cast<int64_t>(seq) ||
        m.user_data() != "frame " + std::to_string(seq) || m.has_dts())
        return "metadata of frame " + std::to_string(seq);
    auto *p = reinterpret_cast<const unsigned char *>(b.data());
    for (size_t j = 0; j < len; ++j)
        if (p[j] != pattern(seq, j))
            return "byte " + std::to_string(j) + " of frame " + std::to_string(seq);
    return "";
}

bool wait_available(const px::Pool &pool, size_t n) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (pool.available() != n) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

bool readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}
} // namespace

TEST_CASE("C++: a channel pair carries buffers zero-copy, read-only, metadata intact") {
    px::Pool pool(px::Segment::shm(4 * 4096), 4096);
    const size_t cap = pool.capacity();
    auto [a, b] = px::Channel::pair();
    px::Buffer sent = frame(pool, 7, 3000);
    a.send(sent);
    px::Buffer got = b.recv(10s);
    CHECK(check_frame(got, 7, 3000) == "");
    CHECK(got.is_readonly());
    CHECK(got.mutable_data() == nullptr);
    CHECK(!sent.is_readonly());
    px_channel_stats_t sa = a.stats(), sb = b.stats();
    CHECK(sa.buffers_sent == 1);
    CHECK(sa.segments_registered == 1);
    CHECK(sb.buffers_received == 1);
    CHECK(sa.peer_pid == static_cast<uint64_t>(getpid()));
    sent = px::Buffer();
    CHECK(pool.available() == cap - 1); // the receiver still holds the slot
    got = px::Buffer();
    CHECK(wait_available(pool, cap));
}

TEST_CASE("C++: recv polls, times out, and the fd is pollable") {
    auto [a, b] = px::Channel::pair();
    expect_error([&] { b.recv(px::no_wait); }, px::Status::would_block);
    CHECK(!b.try_recv().has_value());
    auto t0 = std::chrono::steady_clock::now();
    expect_error([&] { b.recv(20ms); }, px::Status::timeout);
    CHECK(std::chrono::steady_clock::now() - t0 >= 15ms);
    CHECK(!readable(b.fd(), 0));
    px::Pool pool(px::Segment::shm(2 * 4096), 4096); // `got` below holds one slot
    a.send(frame(pool, 1, 64));
    CHECK(readable(b.fd(), 5000));
    std::optional<px::Buffer> got = b.try_recv();
    REQUIRE(got.has_value());
    CHECK(check_frame(*got, 1, 64) == "");
    b.set_spin(0ns);
    b.set_spin(std::chrono::nanoseconds(-1));
    b.set_spin(std::chrono::nanoseconds(PX_CHANNEL_DEFAULT_SPIN_NS));
    a.send(frame(pool, 2, 64), 1s);
    CHECK(check_frame(b.recv(10s), 2, 64) == "");
}

TEST_CASE("C++: heap and file memory are refused; a closed peer is Status::closed") {
    auto [a, b] = px::Channel::pair();
    px::Pool heap(px::Segment::heap(4096), 4096);
    expect_error([&] { a.send(std::move(*heap.try_loan()).into_buffer(8)); }, px::Status::unsupported);
    px_test::TempDir dir;
    px::Segment file = px::Segment::file_create(dir.file("f"), 4096);
    expect_error([&] { a.send(px::Buffer::from_segment(file)); }, px::Status::unsupported);

    px::Pool pool(px::Segment::shm(2 * 256), 256);
    a.send(frame(pool, 3, 256));
    px::Buffer got = b.recv(10s);
    a = px::Channel(); // close one end
    expect_error([&] { b.recv(10s); }, px::Status::closed);
    expect_error([&] { b.send(frame(pool, 4, 256)); }, px::Status::closed);
    b = px::Channel();
    CHECK(check_frame(got, 3, 256) == ""); // received buffers outlive the channel
}

TEST_CASE("C++: a channel pair across fork()") {
    px::Pool pool(px::Segment::shm(4 * 65536), 65536);
    const size_t cap = pool.capacity();
    auto [parent_end, child_end] = px::Channel::pair();
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // The child: keep only its end, send 20 frames through 4 slots (needs slot return).
        parent_end = px::Channel();
        int rc = 0;
        try {
            for (uint64_t seq = 0; seq < 20; ++seq)
                child_end.send(frame(pool, seq, 65536));
            child_end.recv(10s); // until the parent hangs up
            rc = 3;
        } catch (const px::Error &e) {
            rc = e.status() == px::Status::closed ? 0 : 4;
        }
        _exit(rc);
    }
    child_end = px::Channel();
    for (uint64_t seq = 0; seq < 20; ++seq) {
        px::Buffer b = parent_end.recv(10s);
        std::string err = check_frame(b, seq, 65536);
        CHECK_MESSAGE(err == "", err);
        CHECK(b.is_readonly());
    }
    // (No peer_pid check here: SO_PEERCRED of a socketpair names the process that created
    // the pair, i.e. this one, not the forked child.)
    parent_end = px::Channel();
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(pool.available() == cap); // nothing was taken from the parent's copy of the pool
}

TEST_CASE("C++: listener and connect over a socket path") {
    px_test::TempDir dir;
    std::string path = dir.file("px.sock");
    px::Listener listener(path);
    struct stat st{};
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    expect_error([&] { listener.accept(px::no_wait); }, px::Status::would_block);
    expect_error([&] { listener.accept(20ms); }, px::Status::timeout);
    expect_error([&] { px::Listener again(path); }, px::Status::busy);
    std::string client_error;
    std::thread client([&] {
        try {
            px::Channel ch = px::Channel::connect(path, 10s);
            px::Pool pool(px::Segment::shm(2 * 128), 128);
            ch.send(frame(pool, 42, 128));
            client_error = check_frame(ch.recv(10s), 43, 100);
        } catch (const std::exception &e) {
            client_error = e.what();
        }
    });
    CHECK(readable(listener.fd(), 10000));
    px::Channel server = listener.accept(10s);
    CHECK(check_frame(server.recv(10s), 42, 128) == "");
    px::Pool pool(px::Segment::shm(100), 100);
    server.send(frame(pool, 43, 100));
    client.join();
    CHECK_MESSAGE(client_error == "", client_error);
    px::Listener moved = std::move(listener);
    CHECK(!listener); // NOLINT(bugprone-use-after-move)
    moved = px::Listener();
    CHECK(access(path.c_str(), F_OK) != 0); // the socket file is removed

    expect_error([&] { px::Listener(dir.file("missing-dir/x.sock")); }, px::Status::io);
    std::string regular = dir.file("regular");
    close(open(regular.c_str(), O_CREAT | O_WRONLY, 0600));
    expect_error([&] { px::Listener l(regular); }, px::Status::invalid);
    expect_error([&] { px::Channel::connect(dir.file("nobody.sock"), 50ms); }, px::Status::timeout);
}

TEST_CASE("C++: from_fd adopts seqpacket sockets and refuses garbage") {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    px::Channel theirs;
    std::thread other([&] { theirs = px::Channel::from_fd(sv[1]); });
    px::Channel ours = px::Channel::from_fd(sv[0]);
    other.join();
    px::Pool pool(px::Segment::shm(64), 64);
    ours.send(frame(pool, 5, 64));
    CHECK(check_frame(theirs.recv(10s), 5, 64) == "");

    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    std::thread garbage([peer = sv[1]] {
        char buf[256];
        (void)!recv(peer, buf, sizeof buf, 0);
        const char junk[] = "\xff\xfe not a parallax handshake";
        (void)!send(peer, junk, sizeof junk, 0);
        std::this_thread::sleep_for(200ms);
        close(peer);
    });
    expect_error([&] { px::Channel::from_fd(sv[0]); }, px::Status::protocol);
    garbage.join();

    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    expect_error([&] { px::Channel::from_fd(sv[0]); }, px::Status::invalid); // not seqpacket
    close(sv[1]);
    expect_error([] { px::Channel::from_fd(-1); }, px::Status::invalid);
}

TEST_CASE("C++: fds over a plain unix socket") {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    px::Segment seg = px::Segment::shm(4096);
    std::memcpy(seg.mutable_data(), "fdok", 4);
    expect_error([&] { px::recv_fd(sv[1], px::no_wait); }, px::Status::would_block);
    px::send_fd(sv[0], seg.ipc_handle().fd);
    int fd = px::recv_fd(sv[1], 10s);
    REQUIRE(fd >= 0);
    CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    px::Segment peer = px::Segment::from_fd(fd, 4096, PX_MAP_READONLY);
    close(fd);
    CHECK(std::memcmp(peer.data(), "fdok", 4) == 0);
    REQUIRE(write(sv[0], "no fd", 5) == 5);
    expect_error([&] { px::recv_fd(sv[1], 10s); }, px::Status::protocol);
    close(sv[0]);
    expect_error([&] { px::recv_fd(sv[1], 10s); }, px::Status::closed);
    close(sv[1]);
    expect_error([] { px::send_fd(-1, 0); }, px::Status::invalid);
}
