// SPDX-License-Identifier: Apache-2.0 OR MIT
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>

#include "ipc_support.hpp"

using namespace px_test;

TEST_CASE("kill -9 of a receiver holding buffers: every slot is back within a second") {
    px_pool_t *pool = shm_pool(8, 4096);
    px_channel_t *a = nullptr, *b = nullptr, *other_a = nullptr, *other_b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    REQUIRE(px_channel_pair(&other_a, &other_b) == PX_OK);
    Signal holding;
    pid_t victim = fork_child([&] {
        px_channel_release(a);
        px_channel_release(other_a);
        px_channel_release(other_b);
        px_buffer_t *held[6];
        for (auto &h : held)
            if (px_channel_recv(b, 5'000'000'000, &h) != PX_OK)
                return 1;
        holding.post();
        pause(); // killed here, holding all six
        return 0;
    });
    pid_t survivor = fork_child([&] {
        px_channel_release(a);
        px_channel_release(b);
        px_channel_release(other_a);
        for (uint64_t k = 0; k < 10; ++k) {
            px_buffer_t *x = nullptr;
            if (px_channel_recv(other_b, 10'000'000'000, &x) != PX_OK)
                return 1;
            bool ok = frame_ok(x, 32, k);
            px_buffer_release(x);
            if (!ok)
                return 2;
        }
        return 0;
    });
    px_channel_release(b);
    px_channel_release(other_b);
    for (uint64_t k = 0; k < 6; ++k) {
        px_buffer_t *f = make_frame(pool, 32, k);
        REQUIRE(px_channel_send(a, f) == PX_OK);
        px_buffer_release(f);
    }
    holding.wait();
    CHECK(px_pool_available(pool) == 2);
    REQUIRE(kill(victim, SIGKILL) == 0);
    CHECK(wait_child(victim) == 128 + SIGKILL);
    auto t0 = std::chrono::steady_clock::now();
    CHECK(eventually([&] { return px_pool_available(pool) == 8; },
                     std::chrono::milliseconds(1000)));
    MESSAGE("slots reclaimed after "
            << std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::steady_clock::now() - t0)
                   .count()
            << " us");
    px_channel_stats_t st;
    REQUIRE(px_channel_get_stats(a, &st) == PX_OK);
    CHECK(st.slots_reclaimed == 6);
    px_buffer_t *f = make_frame(pool, 32, 0);
    CHECK(px_channel_send(a, f) == PX_E_CLOSED);
    px_buffer_release(f);
    // The sender keeps serving its other channel, with the reclaimed slots.
    for (uint64_t k = 0; k < 10; ++k) {
        px_buffer_t *g = make_frame(pool, 32, k);
        REQUIRE(g);
        REQUIRE(px_channel_send(other_a, g) == PX_OK);
        px_buffer_release(g);
    }
    CHECK(wait_child(survivor) == 0);
    px_channel_release(a);
    px_channel_release(other_a);
    CHECK(eventually([&] { return px_pool_available(pool) == 8; }));
    px_pool_release(pool);
}

TEST_CASE("kill -9 of the sender: the receiver gets PX_E_CLOSED and keeps its buffers") {
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    Signal sent;
    pid_t sender = fork_child([&] {
        px_channel_release(b);
        px_pool_t *pool = shm_pool(4, 4096);
        for (uint64_t k = 0; k < 3; ++k) {
            px_buffer_t *f = make_frame(pool, 4000, k);
            if (px_channel_send(a, f) != PX_OK)
                return 1;
            px_buffer_release(f);
        }
        sent.post();
        pause();
        return 0;
    });
    px_channel_release(a);
    sent.wait();
    px_buffer_t *first = nullptr;
    REQUIRE(px_channel_recv(b, 5'000'000'000, &first) == PX_OK);
    REQUIRE(kill(sender, SIGKILL) == 0);
    CHECK(wait_child(sender) == 128 + SIGKILL);
    px_buffer_t *second = nullptr, *third = nullptr, *none = nullptr;
    REQUIRE(px_channel_recv(b, 5'000'000'000, &second) == PX_OK); // already on the wire
    REQUIRE(px_channel_recv(b, 5'000'000'000, &third) == PX_OK);
    CHECK(px_channel_recv(b, 5'000'000'000, &none) == PX_E_CLOSED);
    CHECK(frame_ok(first, 4000, 0)); // the dead sender's memory is still mapped here
    CHECK(frame_ok(second, 4000, 1));
    CHECK(frame_ok(third, 4000, 2));
    px_buffer_release(first);
    px_buffer_release(second);
    px_buffer_release(third);
    px_channel_release(b);
}

// Issue 12, "peer death by process": the parent forgets to release the child's end, so the
// child's socket never hangs up while the parent lives. The slot the child held comes back all
// the same, within a second of the child's exit, because this end watches the child's process.
TEST_CASE("pair + fork, the child's end never released in the parent: its exit returns the slot") {
    px_pool_t *pool = shm_pool(2, 4096);
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    Signal got;
    pid_t child = fork_child([&] {
        px_buffer_t *x = nullptr; // `a` is not released here either: copies everywhere
        if (px_channel_recv(b, 5'000'000'000, &x) != PX_OK)
            return 1;
        got.post();
        return 0; // exits holding the buffer
    });
    px_buffer_t *f = make_frame(pool, 64, 1);
    REQUIRE(px_channel_send(a, f) == PX_OK);
    px_buffer_release(f);
    got.wait();
    CHECK(wait_child(child) == 0);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(eventually([&] { return px_pool_available(pool) == 2; }, std::chrono::milliseconds(1000)));
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - t0)
                        .count();
    MESSAGE("slot back " << ms << " ms after the child was reaped");
    px_channel_stats_t st{};
    REQUIRE(px_channel_get_stats(a, &st) == PX_OK);
    CHECK(st.slots_reclaimed == 1);
    // And the end that receives from the dead child answers PX_E_CLOSED, not a timeout.
    px_buffer_t *none = nullptr;
    CHECK(px_channel_recv(a, 2'000'000'000, &none) == PX_E_CLOSED);
    px_channel_release(b);
    px_channel_release(a);
    px_pool_release(pool);
}

// The same when the peer's end was inherited by a process it forked: the peer dies, its child
// lives on with a copy of the socket (and never uses it); the slots come back.
TEST_CASE("a peer that dies leaving a copy of its end in its own child: slots come back") {
    px_pool_t *pool = shm_pool(4, 4096);
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    Signal holding, grandchild_ready;
    pid_t peer = fork_child([&] {
        px_channel_release(a);
        px_buffer_t *held[3];
        for (auto &h : held)
            if (px_channel_recv(b, 5'000'000'000, &h) != PX_OK)
                return 1;
        if (fork_child([&] { // keeps b's socket open for a while, unused
                grandchild_ready.post();
                ::sleep(5);
                return 0;
            }) <= 0)
            return 2;
        grandchild_ready.wait();
        holding.post();
        pause(); // killed here, holding three
        return 0;
    });
    px_channel_release(b);
    for (uint64_t k = 0; k < 3; ++k) {
        px_buffer_t *f = make_frame(pool, 64, k);
        REQUIRE(px_channel_send(a, f) == PX_OK);
        px_buffer_release(f);
    }
    holding.wait();
    CHECK(px_pool_available(pool) == 1);
    ::kill(peer, SIGKILL);
    CHECK(wait_child(peer) == 128 + SIGKILL);
    CHECK(eventually([&] { return px_pool_available(pool) == 4; }, std::chrono::milliseconds(1000)));
    px_channel_release(a);
    px_pool_release(pool);
}

// A sender asleep in loan_timeout for the slot a child holds is woken by the child's exit, even
// though the child's socket stays open (the parent never released the child's end): the pool
// waits on the child's pidfd too.
TEST_CASE("loan_timeout wakes when the borrower's process exits, its socket still open") {
    px_pool_t *pool = shm_pool(1, 4096);
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    Signal holding, exit_now;
    pid_t child = fork_child([&] {
        px_buffer_t *x = nullptr;
        if (px_channel_recv(b, 5'000'000'000, &x) != PX_OK)
            return 1;
        holding.post();
        exit_now.wait();
        return 0; // exits holding the buffer
    });
    px_buffer_t *f = make_frame(pool, 64, 1);
    REQUIRE(px_channel_send(a, f) == PX_OK);
    px_buffer_release(f);
    holding.wait();
    px_channel_stats_t st{};
    REQUIRE(eventually([&] { // the child has announced itself: this end watches it
        return px_channel_get_stats(a, &st) == PX_OK &&
               st.peer_pid == static_cast<uint64_t>(child);
    }));
    px_slot_t *slot = nullptr;
    CHECK(px_pool_loan(pool, &slot) == PX_E_WOULD_BLOCK);
    exit_now.post();
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(px_pool_loan_timeout(pool, 5'000'000'000, &slot) == PX_OK);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - t0)
                        .count();
    MESSAGE("the loan waited " << ms << " ms for the child's exit");
    CHECK(ms < 1000);
    px_slot_release(slot);
    CHECK(wait_child(child) == 0);
    px_channel_release(b);
    px_channel_release(a);
    px_pool_release(pool);
}
