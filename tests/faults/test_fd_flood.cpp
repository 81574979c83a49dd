// SPDX-License-Identifier: Apache-2.0 OR MIT
// A peer that floods the honest side with fds: more segment registrations than the per-channel
// cap, hundreds of fds on one message, and registrations until the receiving process has no fd
// left. Each is refused with PX_E_PROTOCOL (the connection dropped, the process intact) and
// afterwards not one fd or mapping of the flood is left in the honest process.
#include <cstring>
#include <doctest/doctest.h>

#include <sys/resource.h>
#include <vector>

#include "core/ipc/channel.hpp" // max_segments_per_channel
#include "fault_support.hpp"
#include "forged_peer.hpp"

using namespace px_test;
using namespace px_fault;

namespace {

constexpr int64_t second_ns = 1'000'000'000;
constexpr uint32_t cap = static_cast<uint32_t>(px::ipc::max_segments_per_channel);

std::string last() { return px_last_error_message(); }

// The honest side must hold more than `cap` fds for the flood to reach the cap.
void ensure_fd_room(rlim_t want) {
    rlimit rl{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = std::min(want, rl.rlim_max);
    REQUIRE_MESSAGE(rl.rlim_cur >= want, "RLIMIT_NOFILE hard limit " << rl.rlim_max
                                                                     << " is below " << want);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &rl) == 0);
}

// One message with any number of fds (the library's own sender caps them, a hostile one not).
bool send_with_fds(int sock, const wire::Bytes &rec, const std::vector<int> &fds) {
    iovec iov{const_cast<uint8_t *>(rec.data), rec.size};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    return ::sendmsg(sock, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(rec.size);
}

// An honest end in this process, connected to a forged peer.
struct Honest {
    ForgedPeer forged;
    px_channel_t *ch = nullptr;
    Honest() {
        REQUIRE(px_channel_from_fd(forged.honest_fd, &ch) == PX_OK);
        forged.honest_side_started();
        forged.finish_handshake();
    }
    ~Honest() { px_channel_release(ch); }
    // Registers segment `id` (a fresh sealed memfd) and sends one buffer of it.
    px_status_t register_and_recv(uint32_t id) {
        int fd = sealed_memfd(4096);
        REQUIRE(fd >= 0);
        REQUIRE(forged.register_segment(id, 4096, &fd, 1));
        ::close(fd);
        REQUIRE(forged.data(id, 0, 16));
        px_buffer_t *b = nullptr;
        px_status_t rc = px_channel_recv(ch, second_ns, &b);
        px_buffer_release(b);
        return rc;
    }
};

} // namespace

TEST_CASE("more live segment registrations than the cap: PX_E_PROTOCOL and no fd leak") {
    ensure_fd_room(3 * cap);
    const Footprint before;
    uint32_t accepted = 0;
    {
        Honest h;
        const Footprint started;
        px_status_t rc = PX_OK;
        for (uint32_t id = 1; id <= cap + 10 && rc == PX_OK; ++id) {
            rc = h.register_and_recv(id);
            accepted += rc == PX_OK;
        }
        CHECK(accepted == cap);
        CHECK(rc == PX_E_PROTOCOL);
        CHECK(last().find("more than " + std::to_string(cap) + " live segments") !=
              std::string::npos);
        // The drop let go of every segment the flood had registered: fds and mappings.
        const Footprint dropped;
        CHECK_MESSAGE(dropped.fds == started.fds, dropped.fd_list);
        CHECK(dropped.mappings == started.mappings);
        px_buffer_t *b = nullptr;
        CHECK(px_channel_recv(h.ch, 0, &b) == PX_E_PROTOCOL); // dropped for good
        CHECK(last().find("dropped") != std::string::npos);
    }
    const Footprint after;
    CHECK_MESSAGE(after.fds == before.fds, after.fd_list);
    CHECK(after.mappings == before.mappings);
    std::printf("faults: fd flood: %u registrations accepted, number %u refused with "
                "PX_E_PROTOCOL; %d fds and %zu memfd mappings left behind\n",
                accepted, accepted + 1, after.fds - before.fds,
                after.mappings - before.mappings);
}

TEST_CASE("the cap is on live segments: unregistered ones free their fds and their place") {
    ensure_fd_room(3 * cap);
    const Footprint before;
    {
        Honest h;
        const Footprint started;
        const uint32_t total = 2 * cap + 100, live = cap / 2;
        uint32_t accepted = 0;
        for (uint32_t id = 1; id <= total; ++id) {
            if (id > live)
                REQUIRE(h.forged.unregister(id - live)); // read before the next registration
            px_status_t rc = h.register_and_recv(id);
            if (rc != PX_OK) {
                FAIL_CHECK("registration " << id << ": " << px_status_string(rc) << " "
                                           << last());
                break;
            }
            ++accepted;
        }
        CHECK(accepted == total);
        // Exactly the live ones are still held: one fd and one mapping each.
        const Footprint now;
        CHECK(now.fds == started.fds + static_cast<int>(live));
        CHECK(now.mappings == started.mappings + live);
    }
    const Footprint after;
    CHECK_MESSAGE(after.fds == before.fds, after.fd_list);
    CHECK(after.mappings == before.mappings);
}

TEST_CASE("hundreds of fds on one registration: PX_E_PROTOCOL, every one of them closed") {
    const Footprint before;
    {
        Honest h;
        std::vector<int> fds;
        for (int i = 0; i < 250; ++i) { // SCM_MAX_FD is 253
            fds.push_back(sealed_memfd(4096));
            REQUIRE(fds.back() >= 0);
        }
        wire::SegmentInfo info;
        info.segment_id = 1;
        info.size = 4096;
        info.page_size = 4096;
        info.memory_type = PX_MEMORY_SHARED;
        REQUIRE(send_with_fds(h.forged.evil, wire::encode(info), fds));
        for (int fd : fds)
            ::close(fd);
        REQUIRE(h.forged.data(1, 0, 16));
        px_buffer_t *b = nullptr;
        CHECK(px_channel_recv(h.ch, second_ns, &b) == PX_E_PROTOCOL);
        CHECK(b == nullptr);
    }
    const Footprint after;
    CHECK_MESSAGE(after.fds == before.fds, after.fd_list);
    CHECK(after.mappings == before.mappings);
}

// Running out of fds is this process's limit, not the peer's lie: PX_E_IO naming RLIMIT_NOFILE
// (issue 18). The connection is dropped all the same, and the process keeps working.
TEST_CASE("a flood that exhausts the receiver's fds: PX_E_IO naming RLIMIT_NOFILE, then it works again") {
    ForgedPeer forged;
    pid_t pid = fork_child([&] {
        limit_child_lifetime(20);
        ::close(forged.evil);
        ::close(forged.evil_return_in);
        px_channel_t *ch = nullptr;
        if (px_channel_from_fd(forged.honest_fd, &ch) != PX_OK)
            return 2;
        const Footprint started;
        // Leave exactly 32 free fd numbers below the limit.
        rlimit old{};
        ::getrlimit(RLIMIT_NOFILE, &old);
        rlimit low = old;
        int free_found = 0;
        for (int n = 0; free_found < 32; ++n)
            if (::fcntl(n, F_GETFD) < 0 && ++free_found == 32)
                low.rlim_cur = static_cast<rlim_t>(n + 1);
        if (::setrlimit(RLIMIT_NOFILE, &low) != 0)
            return 3;
        px_status_t rc = PX_OK;
        int accepted = 0;
        while (rc == PX_OK) {
            px_buffer_t *b = nullptr;
            rc = px_channel_recv(ch, 3 * second_ns, &b);
            accepted += rc == PX_OK;
            px_buffer_release(b);
        }
        std::fprintf(stderr, "fd exhaustion: %d buffers, then %s: %s\n", accepted,
                     px_status_string(rc), px_last_error_message());
        ::setrlimit(RLIMIT_NOFILE, &old);
        if (rc != PX_E_IO || !std::strstr(px_last_error_message(), "RLIMIT_NOFILE"))
            return 4;
        if (accepted > 32)
            return 5;
        if (Footprint().fds != started.fds || Footprint().mappings != started.mappings)
            return 6; // the dropped channel still holds part of the flood
        px_channel_release(ch);
        // Still healthy: a fresh channel carries a frame.
        px_channel_t *a = nullptr, *b = nullptr;
        px_pool_t *pool = shm_pool(2, 4096);
        if (!pool || px_channel_pair(&a, &b) != PX_OK)
            return 7;
        px_buffer_t *f = make_frame(pool, 100, 7), *got = nullptr;
        bool ok = f && px_channel_send(a, f) == PX_OK &&
                  px_channel_recv(b, second_ns, &got) == PX_OK && frame_intact(got, 7);
        px_buffer_release(got);
        px_buffer_release(f);
        px_channel_release(a);
        px_channel_release(b);
        px_pool_release(pool);
        return ok ? 0 : 8;
    });
    forged.close_honest_fd_copy();
    forged.finish_handshake();
    int sent = 0;
    for (uint32_t id = 1; id <= 200; ++id) {
        int fd = sealed_memfd(4096);
        REQUIRE(fd >= 0);
        bool ok = forged.register_segment(id, 4096, &fd, 1);
        ::close(fd);
        if (!ok || !forged.data(id, 0, 16))
            break; // the honest side dropped us
        ++sent;
    }
    int status = wait_child_for(pid, 10000ms);
    CHECK_MESSAGE(status == 0, "the flooded receiver ended with " << status << " after " << sent
                                                                  << " registrations");
}
