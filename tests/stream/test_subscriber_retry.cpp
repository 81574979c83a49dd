// SPDX-License-Identifier: Apache-2.0 OR MIT
// px_subscriber_new waits for a publisher through a publisher that cuts it off while it joins
// (killed, restarted, or one that dropped the handshake because it did not admit in time): to
// the caller that is a publisher that has not appeared yet, not PX_E_CLOSED.
#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

#include "stream_support.hpp"

using namespace px_stream_test;
using namespace px_test;

namespace {

constexpr size_t frame_len = 4096;

// A listener at `path` that accepts every connection and closes it at once, like a publisher
// that goes away in the middle of each join.
int cutting_listener(const std::string &path) {
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    return fd;
}

} // namespace

TEST_CASE("a subscriber cut off while joining tries again within its timeout") {
    RuntimeDir dir;
    const std::string name = dir.path + "/cam.sock";
    int lfd = cutting_listener(name);
    pid_t sub = fork_child([&] {
        ::alarm(20);
        ::close(lfd);
        px_subscriber_t *s = nullptr;
        const px_status_t st = px_subscriber_new(name.c_str(), 10 * second_ns, &s);
        if (st != PX_OK)
            return 10 - st; // 10 + the status' magnitude: which error it was
        const int64_t seq = recv_seq(s, 10 * second_ns);
        px_subscriber_release(s);
        return seq == 1 ? 0 : 3;
    });
    // Cut the subscriber off a few times, then go away for good (the socket stays, stale).
    int cut = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    while (std::chrono::steady_clock::now() < until) {
        pollfd p{lfd, POLLIN, 0};
        if (::poll(&p, 1, 20) == 1) {
            int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
            if (c >= 0) {
                ::close(c);
                ++cut;
            }
        }
    }
    ::close(lfd);
    CHECK(cut >= 2);
    px_pool_t *pool = shm_pool(4, frame_len);
    px_publisher_t *pub = nullptr;
    REQUIRE(px_publisher_new(name.c_str(), nullptr, &pub) == PX_OK); // replaces the stale socket
    REQUIRE(wait_for_subscribers(pub, 1));
    REQUIRE(publish_frame(pub, pool, frame_len, 1) == PX_OK);
    CHECK(wait_child(sub) == 0);
    px_publisher_release(pub);
    px_pool_release(pool);
}

TEST_CASE("a subscriber cut off while joining with no time left answers PX_E_CLOSED or "
          "PX_E_TIMEOUT, within its timeout") {
    RuntimeDir dir;
    const std::string name = dir.path + "/cam.sock";
    int lfd = cutting_listener(name);
    std::thread cutter([&] {
        for (int i = 0; i < 50; ++i) {
            pollfd p{lfd, POLLIN, 0};
            if (::poll(&p, 1, 20) == 1) {
                int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
                if (c >= 0)
                    ::close(c);
            }
        }
    });
    px_subscriber_t *s = nullptr;
    const auto t0 = std::chrono::steady_clock::now();
    // Cut off last: CLOSED; out of time in the middle of a handshake (the cutter accepts
    // every 20 ms at most): TIMEOUT. Never a channel's 1 s handshake beyond the timeout.
    const px_status_t st = px_subscriber_new(name.c_str(), 200 * 1000 * 1000, &s);
    CHECK((st == PX_E_CLOSED || st == PX_E_TIMEOUT));
    CHECK(s == nullptr);
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took >= std::chrono::milliseconds(200));
    CHECK(took < std::chrono::milliseconds(900));
    cutter.join();
    ::close(lfd);
}

TEST_CASE("a publisher that accepts and never answers costs a subscriber its timeout, no more") {
    // The handshake is bounded by what is left of px_subscriber_new's timeout (the header:
    // "waiting up to timeout_ns for its publisher to appear and admit this subscriber"), not
    // by a plain channel's minimum of 1 s.
    RuntimeDir dir;
    const std::string name = dir.path + "/cam.sock";
    int lfd = cutting_listener(name); // nobody accepts: the kernel's backlog does
    px_subscriber_t *s = nullptr;
    const auto t0 = std::chrono::steady_clock::now();
    const px_status_t st = px_subscriber_new(name.c_str(), 100 * 1000 * 1000, &s);
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(st == PX_E_TIMEOUT);
    CHECK(std::string(px_last_error_message()).find("in time") != std::string::npos);
    CHECK(s == nullptr);
    CHECK(took >= std::chrono::milliseconds(100));
    CHECK(took < std::chrono::milliseconds(900));
    ::close(lfd);
}
