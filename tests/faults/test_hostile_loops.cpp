// SPDX-License-Identifier: Apache-2.0 OR MIT
// A hostile peer must not be able to hold the honest side in a loop: however fast it feeds the
// shared rings and sockets, a bounded wait on the honest side stays bounded, and no amount of
// queued records grows the honest side's stack. The honest side runs in a child, so that a hang
// or a crash is observed (and bounded) rather than suffered by the test.
#include <doctest/doctest.h>

#include <pthread.h>

#include "fault_support.hpp"
#include "forged_peer.hpp"

using namespace px_test;
using namespace px_fault;

namespace {

constexpr int64_t ms_ns = 1'000'000;

int64_t elapsed_ms(clock::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0).count();
}

// Forks the honest side: `body` adopts the channel from the forged peer's socket, posts `ready`
// when the flood may begin, and returns its verdict (0 = every call stayed bounded). Meanwhile
// this process runs `flood_step` in a loop until the child ends or `limit` passes. Returns the
// child's status (-1: it hung and was killed).
int against_flood(ForgedPeer &forged, const std::function<int(px_channel_t *, Signal &)> &body,
                  const std::function<void()> &flood_step, std::chrono::milliseconds limit) {
    Signal ready;
    pid_t pid = fork_child([&] {
        limit_child_lifetime(30);
        ::close(forged.evil);
        ::close(forged.evil_return_in);
        px_channel_t *ch = nullptr;
        if (px_channel_from_fd(forged.honest_fd, &ch) != PX_OK)
            return 90;
        return body(ch, ready);
    });
    forged.close_honest_fd_copy();
    forged.finish_handshake();
    if (!wait_posted(ready, 5000ms)) {
        return wait_child_for(pid, 1ms);
    }
    const auto end = clock::now() + limit;
    int status = 0;
    for (uint64_t i = 0;; ++i) {
        flood_step();
        if ((i & 1023) == 0) {
            int st = 0;
            if (::waitpid(pid, &st, WNOHANG) == pid)
                return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            if (clock::now() > end)
                break;
        }
    }
    status = wait_child_for(pid, 100ms); // still running after `limit`: it is stuck
    return status;
}

// The lender lends its only slot, then waits 200 ms for it: PX_E_TIMEOUT, on time. With
// `expect_refusals`, the flood must have been seen (refused returns counted).
int lender_waits(px_channel_t *ch, Signal &ready, bool expect_refusals) {
    px_pool_t *pool = shm_pool(1, 4096);
    px_buffer_t *f = make_frame(pool, 8, 0);
    if (!f || px_channel_send(ch, f) != PX_OK)
        return 91;
    px_buffer_release(f);
    ready.post();
    auto t0 = clock::now();
    px_slot_t *slot = nullptr;
    px_status_t rc = px_pool_loan_timeout(pool, 200 * ms_ns, &slot);
    int64_t waited = elapsed_ms(t0);
    std::fprintf(stderr, "lender: loan_timeout(200 ms) gave %s after %lld ms\n",
                 px_status_string(rc), static_cast<long long>(waited));
    if (rc != PX_E_TIMEOUT)
        return 2;
    if (waited > 1500)
        return 3;
    t0 = clock::now();
    (void)px_pool_available(pool);
    px_channel_stats_t st{};
    px_channel_get_stats(ch, &st);
    if (elapsed_ms(t0) > 1000)
        return 4;
    std::fprintf(stderr, "lender: %llu returns refused\n",
                 static_cast<unsigned long long>(st.returns_refused));
    return st.returns_refused > 0 || !expect_refusals ? 0 : 5;
}

// The receiver waits 200 ms for a buffer that never comes: PX_E_TIMEOUT, on time.
int receiver_waits(px_channel_t *ch, Signal &ready) {
    ready.post();
    auto t0 = clock::now();
    px_buffer_t *b = nullptr;
    px_status_t rc = px_channel_recv(ch, 200 * ms_ns, &b);
    int64_t waited = elapsed_ms(t0);
    std::fprintf(stderr, "receiver: recv(200 ms) gave %s after %lld ms\n", px_status_string(rc),
                 static_cast<long long>(waited));
    px_buffer_release(b);
    if (rc != PX_E_TIMEOUT)
        return 2;
    return waited > 1500 ? 3 : 0;
}

} // namespace

TEST_CASE("a borrower that keeps its lender's return ring full of garbage cannot stall it") {
    ForgedPeer forged; // the ring's entries stay 0: a token that is never lent
    int status = against_flood(
        forged, [](px_channel_t *ch, Signal &ready) { return lender_waits(ch, ready, true); },
        [&] {
            // Always a full ring of never-lent tokens ahead of the lender's head: one store per
            // step, so that the borrower publishes faster than the lender can refuse.
            auto *cb = px::ipc::control_of(*forged.honest_cb);
            uint64_t head = cb->return_head.load(std::memory_order_acquire);
            cb->return_tail.store(head + px::ipc::return_ring_entries, std::memory_order_release);
        },
        4000ms);
    CHECK_MESSAGE(status == 0, "the lender ended with " << status << " (-1: stuck in the flood)");
}

TEST_CASE("a borrower that floods its lender's return socket cannot stall it") {
    ForgedPeer forged;
    auto wake = wire::encode_wake();
    int status = against_flood(
        forged, [](px_channel_t *ch, Signal &ready) { return lender_waits(ch, ready, false); },
        [&] {
            [[maybe_unused]] ssize_t n = ::send(forged.return_to_honest, wake.data, wake.size,
                                                MSG_DONTWAIT | MSG_NOSIGNAL);
        },
        4000ms);
    CHECK_MESSAGE(status == 0, "the lender ended with " << status << " (-1: stuck in the flood)");
}

TEST_CASE("a sender that floods the socket with wake records cannot stall a bounded recv") {
    ForgedPeer forged;
    auto wake = wire::encode_wake();
    int status = against_flood(
        forged, receiver_waits,
        [&] {
            [[maybe_unused]] ssize_t n =
                ::send(forged.evil, wake.data, wake.size, MSG_DONTWAIT | MSG_NOSIGNAL);
        },
        4000ms);
    CHECK_MESSAGE(status == 0,
                  "the receiver ended with " << status << " (-1: stuck in the flood)");
}

TEST_CASE("a ring full of unregister records does not grow the receiver's stack") {
    // The receiver holds `live` registered segments, then finds a ring of unregister records
    // for all of them; it runs on a thread with a small stack, as many programs give threads.
    constexpr uint32_t live = 1000;
    constexpr size_t stack_size = 128 * 1024;
    ForgedPeer forged;
    Signal ready, go;
    pid_t pid = fork_child([&] {
        limit_child_lifetime(30);
        ::close(forged.evil);
        ::close(forged.evil_return_in);
        px_channel_t *ch = nullptr;
        if (px_channel_from_fd(forged.honest_fd, &ch) != PX_OK)
            return 90;
        px_buffer_t *b = nullptr;
        if (px_channel_recv(ch, 5000 * ms_ns, &b) != PX_OK) // maps all registrations
            return 91;
        px_buffer_release(b);
        ready.post();
        go.wait();
        struct Call {
            px_channel_t *ch;
            px_status_t rc = PX_OK;
            std::string message;
        } call{ch};
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, stack_size);
        pthread_t t;
        auto run = [](void *p) -> void * {
            auto *c = static_cast<Call *>(p);
            px_buffer_t *none = nullptr;
            c->rc = px_channel_recv(c->ch, 300 * ms_ns, &none);
            c->message = px_last_error_message();
            px_buffer_release(none);
            return nullptr;
        };
        if (pthread_create(&t, &attr, run, &call) != 0)
            return 92;
        pthread_join(t, nullptr);
        if (call.rc != PX_E_TIMEOUT) { // every segment unregistered, then nothing else
            std::fprintf(stderr, "small-stack recv: %s\n", call.message.c_str());
            return 2;
        }
        return 0;
    });
    forged.close_honest_fd_copy();
    forged.finish_handshake();
    for (uint32_t id = 1; id <= live; ++id) {
        int fd = sealed_memfd(4096);
        REQUIRE(fd >= 0);
        REQUIRE(forged.register_segment(id, 4096, &fd, 1));
        ::close(fd);
    }
    REQUIRE(forged.data(live, 0, 16)); // the last registration: all are mapped once it is
    REQUIRE(wait_posted(ready, 20000ms));
    uint32_t next = 1;
    while (next <= live && forged.unregister(next)) // as many as the ring holds, before it reads
        ++next;
    go.post();
    const auto end = clock::now() + 5s;
    while (next <= live && clock::now() < end)
        if (forged.unregister(next))
            ++next;
    int status = wait_child_for(pid, 20000ms);
    CHECK_MESSAGE(status == 0, "the receiver ended with "
                                   << status << " (over 128: killed by signal " << status - 128
                                   << ", its stack overflowed) after " << next - 1
                                   << " unregister records");
}
