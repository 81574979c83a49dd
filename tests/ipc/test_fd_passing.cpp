// SPDX-License-Identifier: Apache-2.0 OR MIT
#include <doctest/doctest.h>

#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "faults/forged_peer.hpp" // a channel peer that sends what it likes
#include "ipc_support.hpp"
#include "parallax/parallax.h"

using namespace px_test;

namespace {
constexpr int64_t second_ns = 1'000'000'000;
}

TEST_CASE("px_ipc_send_fd / px_ipc_recv_fd pass an fd, close-on-exec on arrival") {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
    int p[2];
    REQUIRE(pipe(p) == 0);
    REQUIRE(px_ipc_send_fd(sv[0], p[1]) == PX_OK);
    int got = -1;
    REQUIRE(px_ipc_recv_fd(sv[1], 1'000'000'000, &got) == PX_OK);
    CHECK(got >= 0);
    CHECK((fcntl(got, F_GETFD) & FD_CLOEXEC) != 0);
    REQUIRE(write(got, "z", 1) == 1);
    char c = 0;
    REQUIRE(read(p[0], &c, 1) == 1);
    CHECK(c == 'z');
    close(got);

    CHECK(px_ipc_recv_fd(sv[1], 0, &got) == PX_E_WOULD_BLOCK);
    CHECK(px_ipc_recv_fd(sv[1], 1'000'000, &got) == PX_E_TIMEOUT);
    REQUIRE(send(sv[0], "no fd", 5, 0) == 5);
    CHECK(px_ipc_recv_fd(sv[1], 1'000'000'000, &got) == PX_E_PROTOCOL);
    CHECK(std::string(px_last_error_message()).find("without an fd") != std::string::npos);
    CHECK(px_ipc_send_fd(sv[0], -1) == PX_E_INVALID);
    CHECK(px_ipc_send_fd(-1, p[0]) == PX_E_INVALID);
    CHECK(px_ipc_recv_fd(sv[1], 0, nullptr) == PX_E_INVALID);
    close(sv[0]);
    CHECK(px_ipc_recv_fd(sv[1], 1'000'000'000, &got) == PX_E_CLOSED);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

TEST_CASE("too many fds in one message is a protocol error and every arrived fd is closed") {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
    int fds[3];
    for (int &fd : fds)
        fd = open("/dev/null", O_RDONLY);
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)] = {};
    char byte = 'x';
    iovec iov{&byte, 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof fds);
    std::memcpy(CMSG_DATA(cm), fds, sizeof fds);
    REQUIRE(sendmsg(sv[0], &msg, 0) == 1);
    int before = 0;
    for (int fd = 0; fd < 1024; ++fd)
        before += fcntl(fd, F_GETFD) >= 0;
    int got = -1;
    CHECK(px_ipc_recv_fd(sv[1], 1'000'000'000, &got) == PX_E_PROTOCOL);
    int after = 0;
    for (int fd = 0; fd < 1024; ++fd)
        after += fcntl(fd, F_GETFD) >= 0;
    CHECK(after == before); // none of the three arrived fds leaked
    for (int fd : fds)
        close(fd);
    close(sv[0]);
    close(sv[1]);
}

namespace {

// One message of `len` bytes carrying `fds` (any number: a hostile sender is not capped).
bool send_fds(int sock, const void *data, size_t len, const std::vector<int> &fds) {
    iovec iov{const_cast<void *>(data), len};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    if (!fds.empty()) {
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    return sendmsg(sock, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(len);
}

std::vector<int> dev_null_fds(size_t n) {
    std::vector<int> fds;
    for (size_t i = 0; i < n; ++i)
        fds.push_back(open("/dev/null", O_RDONLY | O_CLOEXEC));
    return fds;
}

void close_fds(const std::vector<int> &fds) {
    for (int fd : fds)
        close(fd);
}

std::string last_message() { return px_last_error_message(); }

// Lowers the soft RLIMIT_NOFILE so that exactly `spare` fd numbers are free below it.
rlimit leave_free_fds(int spare) {
    rlimit old{};
    getrlimit(RLIMIT_NOFILE, &old);
    rlimit low = old;
    int found = 0;
    for (int n = 0;; ++n) {
        if (fcntl(n, F_GETFD) >= 0)
            continue;
        if (found++ == spare) {
            low.rlim_cur = static_cast<rlim_t>(n);
            break;
        }
    }
    if (setrlimit(RLIMIT_NOFILE, &low) != 0)
        std::abort();
    return old;
}

} // namespace

TEST_CASE("an empty message from a live peer is PX_E_PROTOCOL; a peer that closed is PX_E_CLOSED") {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    Signal sent, go_on;
    pid_t peer = fork_child([&] {
        close(sv[1]);
        if (send(sv[0], "", 0, MSG_NOSIGNAL) != 0)
            return 2;
        sent.post();
        go_on.wait(); // alive while the other side reads the empty message
        int p[2];
        if (pipe(p) != 0 || px_ipc_send_fd(sv[0], p[1]) != PX_OK)
            return 3;
        return 0; // exits: its socket closes after the fd message
    });
    close(sv[0]);
    REQUIRE(sent.wait() != 0);
    int got = -1;
    CHECK(px_ipc_recv_fd(sv[1], second_ns, &got) == PX_E_PROTOCOL);
    CHECK(last_message().find("empty message") != std::string::npos);
    go_on.post();
    CHECK(wait_child(peer) == 0);
    // Data first, then the close: the data arrives, then the end of the stream.
    REQUIRE(px_ipc_recv_fd(sv[1], second_ns, &got) == PX_OK);
    close(got);
    CHECK(px_ipc_recv_fd(sv[1], second_ns, &got) == PX_E_CLOSED);
    CHECK(px_ipc_recv_fd(sv[1], 0, &got) == PX_E_CLOSED); // and it stays so
    close(sv[1]);
}

TEST_CASE("a peer that closes without sending anything is PX_E_CLOSED, not a protocol error") {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    pid_t peer = fork_child([&] { return 0; }); // its copies of both ends close on exit
    close(sv[0]);
    CHECK(wait_child(peer) == 0);
    int got = -1;
    CHECK(px_ipc_recv_fd(sv[1], second_ns, &got) == PX_E_CLOSED);
    close(sv[1]);
}

TEST_CASE("an empty message on a channel's socket is PX_E_PROTOCOL, not a hang-up") {
    px_fault::ForgedPeer forged;
    px_channel_t *ch = nullptr;
    REQUIRE(px_channel_from_fd(forged.honest_fd, &ch) == PX_OK);
    forged.honest_side_started();
    forged.finish_handshake();
    REQUIRE(send(forged.evil, "", 0, MSG_NOSIGNAL) == 0);
    px_buffer_t *b = nullptr;
    CHECK(px_channel_recv(ch, second_ns, &b) == PX_E_PROTOCOL);
    CHECK(last_message().find("empty message") != std::string::npos);
    px_channel_release(ch);
}

TEST_CASE("control data truncated because this process has no fd left: PX_E_IO naming "
          "RLIMIT_NOFILE, every arrived fd closed") {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    Signal limited, read_one;
    // The receiver is a child at its limit (0 fds free, then 1 free with 3 fds coming: one
    // arrives, the rest are cut off); the sender, this process, has room.
    pid_t receiver = fork_child([&] {
        close(sv[0]);
        const int before = count_open_fds();
        for (int spare : {0, 1}) {
            const rlimit old = leave_free_fds(spare);
            limited.post();
            int got = -1;
            px_status_t rc = px_ipc_recv_fd(sv[1], 5 * second_ns, &got);
            std::string message = rc == PX_OK ? "" : last_message();
            setrlimit(RLIMIT_NOFILE, &old);
            if (rc != PX_E_IO || message.find("RLIMIT_NOFILE") == std::string::npos ||
                message.find("setrlimit") == std::string::npos) {
                std::fprintf(stderr, "spare %d: %s %s\n", spare, px_status_string(rc),
                             message.c_str());
                return 10 + spare;
            }
            if (count_open_fds() != before)
                return 20 + spare; // an fd that arrived was not closed
        }
        // With room again the next fd arrives.
        int got = -1;
        read_one.post();
        if (px_ipc_recv_fd(sv[1], 5 * second_ns, &got) != PX_OK)
            return 30;
        close(got);
        return 0;
    });
    close(sv[1]);
    std::vector<int> one = dev_null_fds(1), three = dev_null_fds(3);
    REQUIRE(limited.wait() != 0);
    REQUIRE(send_fds(sv[0], "F", 1, one));
    REQUIRE(limited.wait() != 0);
    REQUIRE(send_fds(sv[0], "F", 1, three));
    REQUIRE(read_one.wait() != 0);
    REQUIRE(send_fds(sv[0], "F", 1, one));
    CHECK(wait_child(receiver) == 0);
    close_fds(one);
    close_fds(three);
    close(sv[0]);
}

TEST_CASE("control data truncated by a peer sending more fds than fit, with room here: "
          "PX_E_PROTOCOL, every arrived fd closed") {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    std::vector<int> many = dev_null_fds(20); // more than the receiver's control buffer holds
    REQUIRE(send_fds(sv[0], "F", 1, many));
    close_fds(many);
    const int before = count_open_fds();
    int got = -1;
    CHECK(px_ipc_recv_fd(sv[1], second_ns, &got) == PX_E_PROTOCOL);
    CHECK(last_message().find("truncated") != std::string::npos);
    CHECK(count_open_fds() == before);
    close(sv[0]);
    close(sv[1]);
}
