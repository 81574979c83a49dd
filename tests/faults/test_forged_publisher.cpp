// SPDX-License-Identifier: Apache-2.0 OR MIT
// A publisher that lies to its subscribers: the stream's own records (welcome, description,
// refusal, numbering) forged on a real channel. Every lie is PX_E_PROTOCOL (or what the record
// honestly means), never a crash and never a frame taken out of order.
#include <doctest/doctest.h>

#include <cstring>
#include <functional>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

#include "fault_support.hpp"
#include "forged_peer.hpp"
#include "stream/stream_support.hpp"

using namespace px_fault;
namespace wire = px::ipc::wire;
using wire::DataKind;

namespace {

// A listening socket where a publisher of `name` would be, in the test's runtime directory.
int listen_as_publisher(const std::string &dir, const char *name) {
    const std::string path = dir + "/" + name;
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 4) == 0);
    return fd;
}

// A segment holding `text` registered as id `id` with the honest subscriber.
void register_text(ForgedPeer &f, uint32_t id, const std::string &text) {
    const size_t size = text.empty() ? 1 : text.size();
    int fd = sealed_memfd(size);
    REQUIRE(fd >= 0);
    REQUIRE(::pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()));
    REQUIRE(f.register_segment(id, size, &fd, 1));
    ::close(fd);
}

struct Outcome {
    px_status_t joined = PX_E_INTERNAL;
    std::vector<px_status_t> received; // the status of each recv, in order
    std::string last_message;
};

// The honest subscriber in a thread: joins, then receives `recvs` times (0.5 s each); the
// forged publisher's side runs `lie` once the handshake is done.
Outcome run(const char *name, size_t recvs, const std::function<void(ForgedPeer &)> &lie) {
    px_stream_test::RuntimeDir dir;
    int listener = listen_as_publisher(dir.path, name);
    Outcome out;
    std::thread subscriber([&] {
        px_subscriber_t *sub = nullptr;
        out.joined = px_subscriber_new(name, 5'000'000'000, &sub);
        if (out.joined != PX_OK) {
            out.last_message = px_last_error_message();
            return;
        }
        for (size_t i = 0; i < recvs; ++i) {
            px_buffer_t *b = nullptr;
            px_status_t rc = px_subscriber_recv(sub, 500'000'000, &b);
            out.received.push_back(rc);
            if (rc != PX_OK && out.last_message.empty()) // the first failure says why
                out.last_message = px_last_error_message();
            px_buffer_release(b);
        }
        px_subscriber_release(sub);
    });
    int conn = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(conn >= 0);
    {
        ForgedPeer f(conn);
        f.finish_handshake();
        lie(f);
        subscriber.join();
    }
    ::close(listener);
    return out;
}

// The wake page's segment (ipc/wake.hpp): a word the honest subscriber sleeps on.
constexpr uint32_t wake_id = 9;

void welcome(ForgedPeer &f, uint64_t first_seq) {
    register_text(f, 1, "caps");
    REQUIRE(f.data(1, 0, 4, {DataKind::stream_welcome, first_seq}));
    register_text(f, wake_id, std::string(16, '\0'));
    REQUIRE(f.data(wake_id, 0, 8, {DataKind::stream_wake, first_seq}));
}

void frame(ForgedPeer &f, uint64_t seq) { REQUIRE(f.data(2, 0, 16, {DataKind::frame, seq})); }

} // namespace

TEST_CASE("a forged publisher's numbers that go back are PX_E_PROTOCOL, after the honest frames") {
    Outcome o = run("back", 3, [](ForgedPeer &f) {
        welcome(f, 1);
        register_text(f, 2, std::string(4096, 'x'));
        frame(f, 5);
        frame(f, 3); // a stream's numbers only grow
    });
    REQUIRE(o.joined == PX_OK);
    REQUIRE(o.received.size() == 3);
    CHECK(o.received[0] == PX_OK);
    CHECK(o.received[1] == PX_E_PROTOCOL);
    CHECK(o.last_message.find("only grow") != std::string::npos);
    CHECK(o.received[2] == PX_E_PROTOCOL); // the connection is dropped: no more frames
}

TEST_CASE("a second welcome in the middle of a forged stream is PX_E_PROTOCOL") {
    Outcome o = run("rewelcome", 2, [](ForgedPeer &f) {
        welcome(f, 1);
        register_text(f, 2, std::string(4096, 'x'));
        frame(f, 1);
        REQUIRE(f.data(1, 0, 4, {DataKind::stream_welcome, 2}));
    });
    REQUIRE(o.joined == PX_OK);
    REQUIRE(o.received.size() == 2);
    CHECK(o.received[0] == PX_OK);
    CHECK(o.received[1] == PX_E_PROTOCOL);
}

TEST_CASE("a forged description longer than 64 KiB is PX_E_PROTOCOL, not a copy of it") {
    Outcome o = run("huge", 1, [](ForgedPeer &f) {
        welcome(f, 1);
        register_text(f, 3, std::string(64 * 1024 + 1, 'd'));
        REQUIRE(f.data(3, 0, 64 * 1024 + 1, {DataKind::stream_description, 0}));
    });
    REQUIRE(o.joined == PX_OK);
    REQUIRE(o.received.size() == 1);
    CHECK(o.received[0] == PX_E_PROTOCOL);
}

TEST_CASE("a forged publisher that opens with a frame, or refuses, is PROTOCOL or BUSY at join") {
    Outcome frame_first = run("nowelcome", 0, [](ForgedPeer &f) {
        register_text(f, 2, std::string(4096, 'x'));
        frame(f, 1);
    });
    CHECK(frame_first.joined == PX_E_PROTOCOL);
    Outcome refused = run("full", 0, [](ForgedPeer &f) {
        register_text(f, 1, "");
        REQUIRE(f.data(1, 0, 0, {DataKind::stream_refused, 0}));
    });
    CHECK(refused.joined == PX_E_BUSY);
}

TEST_CASE("a forged wake page: missing, too small or misaligned is PROTOCOL at join; a second "
          "one later is PROTOCOL") {
    // A welcome followed by a frame where the wake page belongs.
    Outcome missing = run("nowake", 0, [](ForgedPeer &f) {
        register_text(f, 1, "caps");
        REQUIRE(f.data(1, 0, 4, {DataKind::stream_welcome, 1}));
        register_text(f, 2, std::string(4096, 'x'));
        frame(f, 1);
    });
    CHECK(missing.joined == PX_E_PROTOCOL);
    CHECK(missing.last_message.find("wake page") != std::string::npos);
    for (auto [offset, len] : {std::pair<uint64_t, uint64_t>{0, 4}, {1, 8}}) {
        CAPTURE(offset);
        Outcome bad = run("badwake", 0, [offset = offset, len = len](ForgedPeer &f) {
            register_text(f, 1, "caps");
            REQUIRE(f.data(1, 0, 4, {DataKind::stream_welcome, 1}));
            register_text(f, wake_id, std::string(16, '\0'));
            REQUIRE(f.data(wake_id, offset, len, {DataKind::stream_wake, 1}));
        });
        CHECK(bad.joined == PX_E_PROTOCOL);
        CHECK(bad.last_message.find("4-byte aligned word") != std::string::npos);
    }
    Outcome again = run("wakeagain", 2, [](ForgedPeer &f) {
        welcome(f, 1);
        register_text(f, 2, std::string(4096, 'x'));
        frame(f, 1);
        REQUIRE(f.data(wake_id, 0, 8, {DataKind::stream_wake, 2}));
    });
    REQUIRE(again.joined == PX_OK);
    REQUIRE(again.received.size() == 2);
    CHECK(again.received[0] == PX_OK);
    CHECK(again.received[1] == PX_E_PROTOCOL);
}
