#include <doctest/doctest.h>

#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

#include "parallax/parallax.h"

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
