// SPDX-License-Identifier: Apache-2.0 OR MIT
// The listener's handshakes never stall it (issue 12): a client that connects and never speaks,
// sends garbage, hangs up, or runs as another uid delays no one and makes no accept fail; it is
// dropped (after its handshake time, if silent) and counted. Honest clients are real processes
// (px_ipc_peer, or a forked child); the misbehaving ones are raw sockets. The public API where
// it suffices; the core Listener where a count or a shorter handshake timeout is needed.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "core/error.hpp"
#include "core/ipc/listener.hpp"
#include "ipc_support.hpp"
#include "support/hugepages.hpp"

using namespace px_test;
using namespace std::chrono_literals;
using px::ipc::Listener;
using steady = std::chrono::steady_clock;

namespace {

constexpr int64_t ms_ns = 1'000'000;

int64_t ms_since(steady::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count();
}

// A client that connects and then does only what the test makes it do (raw socket, no
// handshake). Connecting does not wait for the listener to accept.
int raw_connect(const std::string &path) {
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) {
        if (fd >= 0)
            ::close(fd);
        return -1;
    }
    return fd;
}

void send_garbage(int fd) {
    const char junk[] = "this is not a hello";
    CHECK(::send(fd, junk, sizeof junk, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof junk));
}

// An honest client in another process: px_ipc_peer connects (px_channel_connect), checks
// `frames` frames of `len` bytes, and exits 0 when all of that went well.
pid_t spawn_peer(const std::string &path, int frames, int len) {
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        const std::string f = std::to_string(frames), n = std::to_string(len);
        ::execl(PX_IPC_PEER, PX_IPC_PEER, "connect", path.c_str(), f.c_str(), n.c_str(), nullptr);
        ::_exit(127);
    }
    return pid;
}

bool readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1;
}

// The listener dropped this client's connection: the socket reports the hang-up.
bool hung_up(int fd, int timeout_ms) {
    pollfd p{fd, POLLRDHUP, 0};
    return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & (POLLHUP | POLLRDHUP));
}

// Sends frame 0 (len bytes) to a px_ipc_peer on `ch`.
void send_frame(px_channel_t *ch, px_pool_t *pool, size_t len) {
    px_buffer_t *f = make_frame(pool, len, 0);
    REQUIRE(f);
    CHECK(px_channel_send(ch, f) == PX_OK);
    px_buffer_release(f);
}

// A core accept that answers null for "nothing yet" (would_block, timeout) and throws the rest.
px::Ref<px::ipc::Channel> try_accept(Listener &l, int64_t timeout_ns) {
    try {
        return l.accept(timeout_ns);
    } catch (const px::Error &e) {
        if (e.status() == px::Status::would_block || e.status() == px::Status::timeout)
            return {};
        throw;
    }
}

} // namespace

TEST_CASE("a silent client stalls nobody: accept(0) never blocks and the next client gets in") {
    TempDir dir;
    const std::string path = dir.file("l.sock");
    px_listener_t *l = nullptr;
    REQUIRE(px_listener_new(path.c_str(), &l) == PX_OK);
    const int silent = raw_connect(path);
    REQUIRE(silent >= 0);
    const auto start = steady::now();
    const pid_t honest = spawn_peer(path, 1, 100);
    px_channel_t *ch = nullptr;
    int64_t longest_call_ms = 0;
    int calls = 0;
    while (!ch && ms_since(start) < 5000) {
        const auto call = steady::now();
        const px_status_t rc = px_listener_accept(l, 0, &ch);
        longest_call_ms = std::max(longest_call_ms, ms_since(call));
        ++calls;
        if (rc != PX_OK) {
            REQUIRE_MESSAGE(rc == PX_E_WOULD_BLOCK, px_last_error_message());
            std::this_thread::sleep_for(1ms);
        }
    }
    const int64_t accepted_ms = ms_since(start);
    MESSAGE(calls << " polls, the longest " << longest_call_ms << " ms; accepted after "
                  << accepted_ms << " ms");
    CHECK(longest_call_ms < 50);
    REQUIRE(ch);
    CHECK(accepted_ms < 500);
    px_pool_t *pool = shm_pool(2, 4096);
    send_frame(ch, pool, 100);
    CHECK(wait_child(honest) == 0);
    // The silent client is still waiting out its handshake time, not dropped early.
    CHECK_FALSE(hung_up(silent, 0));
    px_channel_release(ch);
    px_listener_release(l);
    CHECK(hung_up(silent, 1000)); // a released listener drops its pending handshakes
    ::close(silent);
    px_pool_release(pool);
}

TEST_CASE("garbage, an early hang-up and another uid are counted and never fail accept") {
    TempDir dir;
    const std::string path = dir.file("l.sock");
    auto l = Listener::create(path);
    const int garbage = raw_connect(path);
    REQUIRE(garbage >= 0);
    send_garbage(garbage);
    const int quitter = raw_connect(path);
    REQUIRE(quitter >= 0);
    ::close(quitter);
    uint64_t expected_failures = 2;
    pid_t stranger = -1;
    if (::geteuid() == 0) {
        // Root can be someone else: a child as nobody connects, and each end refuses the other.
        REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
        REQUIRE(::chmod(path.c_str(), 0666) == 0);
        stranger = fork_child([&] {
            if (::setgid(65534) != 0 || ::setuid(65534) != 0)
                return 2;
            px_channel_t *c = nullptr;
            const px_status_t rc = px_channel_connect(path.c_str(), 5'000 * ms_ns, &c);
            if (rc != PX_E_PERMISSION && rc != PX_E_CLOSED)
                std::fprintf(stderr, "the client of another uid: %s: %s\n", px_status_string(rc),
                             px_last_error_message());
            return rc == PX_E_PERMISSION || rc == PX_E_CLOSED ? 0 : 1;
        });
        ++expected_failures;
    } else {
        MESSAGE("not root: the other-uid client is skipped");
    }
    const pid_t honest = spawn_peer(path, 0, 0);
    px::Ref<px::ipc::Channel> ch;
    CHECK_NOTHROW(ch = l->accept(5'000 * ms_ns));
    CHECK(ch);
    CHECK(wait_child(honest) == 0);
    // The stranger may still be in the kernel's backlog (a connection is taken only while
    // accept runs): keep accepting until its handshake has failed, then let it finish.
    CHECK(eventually([&] {
        CHECK_NOTHROW(try_accept(*l, 0));
        return l->failed_handshakes() == expected_failures;
    }));
    if (stranger > 0)
        CHECK(wait_child(stranger) == 0);
    CHECK(l->failed_handshakes() == expected_failures);
    CHECK(l->pending_handshakes() == 0);
    CHECK(hung_up(garbage, 1000));
    ::close(garbage);
    // And the listener goes on accepting.
    const pid_t next = spawn_peer(path, 0, 0);
    CHECK(try_accept(*l, 5'000 * ms_ns));
    CHECK(wait_child(next) == 0);
}

TEST_CASE("a silent client is dropped when its handshake time is up, whether or not accept runs") {
    TempDir dir;
    const std::string path = dir.file("l.sock");
    auto l = Listener::create(path);
    CHECK_THROWS_AS(l->set_handshake_timeout_ns(0), px::Error);
    l->set_handshake_timeout_ns(200 * ms_ns);

    // Nobody in accept: the listener's fd wakes the caller when the time is up.
    const int silent = raw_connect(path);
    REQUIRE(silent >= 0);
    const auto start = steady::now();
    CHECK_FALSE(try_accept(*l, 0)); // admits it; no hello yet
    CHECK(l->pending_handshakes() == 1);
    CHECK_FALSE(readable(l->fd(), 100)); // nothing to do before its time
    CHECK(readable(l->fd(), 5000));
    const int64_t woke_ms = ms_since(start);
    CHECK(woke_ms >= 190);
    CHECK(woke_ms < 1000);
    CHECK_FALSE(hung_up(silent, 0));
    CHECK_FALSE(try_accept(*l, 0));
    CHECK(hung_up(silent, 1000));
    CHECK(l->failed_handshakes() == 1);
    CHECK(l->pending_handshakes() == 0);
    CHECK_FALSE(readable(l->fd(), 0)); // the spent timer no longer makes it readable

    // A waiting accept drops it on time too, and goes on waiting.
    const int silent2 = raw_connect(path);
    REQUIRE(silent2 >= 0);
    const auto start2 = steady::now();
    CHECK_FALSE(try_accept(*l, 600 * ms_ns));
    CHECK(ms_since(start2) >= 590);
    CHECK(hung_up(silent2, 0));
    CHECK(l->failed_handshakes() == 2);
    ::close(silent);
    ::close(silent2);
}

TEST_CASE("px_listener_fd: readable on a connection and on a pending handshake's data; a "
          "poll-driven loop accepts 8 clients started at once") {
    TempDir dir;
    const std::string path = dir.file("l.sock");
    px_listener_t *l = nullptr;
    REQUIRE(px_listener_new(path.c_str(), &l) == PX_OK);
    const int fd = px_listener_fd(l);
    px_channel_t *none = nullptr;
    CHECK_FALSE(readable(fd, 0));
    const int silent = raw_connect(path); // first in line, as when the old listener stalled
    const int late = raw_connect(path);   // speaks later
    REQUIRE((silent >= 0 && late >= 0));
    CHECK(readable(fd, 1000));
    CHECK(px_listener_accept(l, 0, &none) == PX_E_WOULD_BLOCK); // both admitted, no hello
    CHECK_FALSE(readable(fd, 50)); // nothing to do: a poller does not spin
    send_garbage(late);
    CHECK(readable(fd, 1000)); // a pending handshake's data wakes the poller
    CHECK(px_listener_accept(l, 0, &none) == PX_E_WOULD_BLOCK);
    CHECK(hung_up(late, 1000));
    CHECK_FALSE(readable(fd, 0));

    constexpr int clients = 8;
    std::vector<pid_t> peers;
    for (int i = 0; i < clients; ++i)
        peers.push_back(spawn_peer(path, 1, 100));
    std::vector<px_channel_t *> accepted;
    int64_t longest_call_ms = 0;
    const auto start = steady::now();
    while (accepted.size() < clients && ms_since(start) < 10000) {
        if (!readable(fd, static_cast<int>(10000 - ms_since(start))))
            continue;
        const auto call = steady::now();
        px_channel_t *ch = nullptr;
        const px_status_t rc = px_listener_accept(l, 0, &ch);
        longest_call_ms = std::max(longest_call_ms, ms_since(call));
        if (rc == PX_OK)
            accepted.push_back(ch);
        else
            REQUIRE_MESSAGE(rc == PX_E_WOULD_BLOCK, px_last_error_message());
    }
    MESSAGE(accepted.size() << " clients in " << ms_since(start) << " ms; the longest accept(0) "
                            << longest_call_ms << " ms");
    CHECK(accepted.size() == clients);
    CHECK(longest_call_ms < 50);
    px_pool_t *pool = shm_pool(clients, 4096);
    for (px_channel_t *ch : accepted)
        send_frame(ch, pool, 100);
    for (pid_t pid : peers)
        CHECK(wait_child(pid) == 0);
    for (px_channel_t *ch : accepted)
        px_channel_release(ch);
    CHECK_FALSE(hung_up(silent, 0)); // still in its handshake time
    px_listener_release(l);
    ::close(silent);
    ::close(late);
    px_pool_release(pool);
}

TEST_CASE("accept(-1) behind a silent client: the honest client is accepted promptly") {
    TempDir dir;
    const std::string path = dir.file("l.sock");
    px_listener_t *l = nullptr;
    REQUIRE(px_listener_new(path.c_str(), &l) == PX_OK);
    const int silent = raw_connect(path);
    REQUIRE(silent >= 0);
    const auto start = steady::now();
    const pid_t honest = spawn_peer(path, 1, 100);
    px_channel_t *ch = nullptr;
    REQUIRE_MESSAGE(px_listener_accept(l, -1, &ch) == PX_OK, px_last_error_message());
    const int64_t accepted_ms = ms_since(start);
    MESSAGE("accepted after " << accepted_ms << " ms");
    CHECK(accepted_ms < 500);
    px_pool_t *pool = shm_pool(2, 4096);
    send_frame(ch, pool, 100);
    CHECK(wait_child(honest) == 0);
    px_channel_release(ch);
    px_listener_release(l);
    ::close(silent);
    px_pool_release(pool);
}

TEST_CASE("more silent clients than max_pending: the oldest are dropped, honest ones get in") {
    TempDir dir;
    const std::string path = dir.file("l.sock");
    auto l = Listener::create(path);
    constexpr size_t extra = 6;
    std::vector<int> silent;
    // In two batches: the kernel's backlog (64) would make a further connect wait.
    for (size_t batch : {Listener::max_pending / 2, Listener::max_pending / 2 + extra}) {
        for (size_t i = 0; i < batch; ++i) {
            silent.push_back(raw_connect(path));
            REQUIRE(silent.back() >= 0);
        }
        CHECK_FALSE(try_accept(*l, 0));
    }
    CHECK(l->pending_handshakes() == Listener::max_pending);
    CHECK(l->failed_handshakes() == extra);
    for (size_t i = 0; i < silent.size(); ++i)
        CHECK_MESSAGE(hung_up(silent[i], i < extra ? 1000 : 0) == (i < extra),
                      "silent client " << i);
    const pid_t honest = spawn_peer(path, 0, 0);
    CHECK(try_accept(*l, 5'000 * ms_ns));
    CHECK(wait_child(honest) == 0);
    CHECK(l->failed_handshakes() == extra + 1); // it made room by dropping the next oldest
    CHECK(hung_up(silent[extra], 1000));
    CHECK(l->pending_handshakes() == Listener::max_pending - 1);
    for (int fd : silent)
        ::close(fd);
}
