// SPDX-License-Identifier: Apache-2.0 OR MIT
#include <doctest/doctest.h>

#include <chrono>

#include "ipc_support.hpp"

using namespace px_test;

TEST_CASE("slots come back when the receiver releases its last reference") {
    px_pool_t *pool = shm_pool(4, 4096);
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    Signal holding, release_now;
    pid_t child = fork_child([&] {
        px_channel_release(a);
        px_buffer_t *bufs[4];
        for (auto &buf : bufs)
            if (px_channel_recv(b, 5'000'000'000, &buf) != PX_OK)
                return 1;
        px_buffer_t *clone = nullptr; // a clone holds the loan too
        if (px_buffer_clone(bufs[0], &clone) != PX_OK)
            return 2;
        holding.post();
        release_now.wait();
        for (auto *buf : bufs)
            px_buffer_release(buf);
        holding.post();
        release_now.wait();
        px_buffer_release(clone);
        release_now.wait();
        return 0;
    });
    px_channel_release(b);
    for (uint64_t k = 0; k < 4; ++k) {
        px_buffer_t *f = make_frame(pool, 100, k);
        REQUIRE(px_channel_send(a, f) == PX_OK);
        px_buffer_release(f);
    }
    holding.wait();
    CHECK(px_pool_available(pool) == 0);
    px_channel_stats_t st;
    REQUIRE(px_channel_get_stats(a, &st) == PX_OK);
    CHECK(st.slots_lent == 4);
    release_now.post();
    holding.wait();
    CHECK(eventually([&] { return px_pool_available(pool) == 3; })); // slot 0: clone still out
    release_now.post();
    CHECK(eventually([&] { return px_pool_available(pool) == 4; }));
    REQUIRE(px_channel_get_stats(a, &st) == PX_OK);
    CHECK(st.returns_accepted == 4);
    CHECK(st.returns_refused == 0);
    CHECK(st.slots_lent == 0);
    release_now.post();
    CHECK(wait_child(child) == 0);
    px_channel_release(a);
    px_pool_release(pool);
}

TEST_CASE("a sender blocked in loan_timeout is woken by a return from another process") {
    px_pool_t *pool = shm_pool(2, 4096);
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    pid_t child = fork_child([&] {
        px_channel_release(a);
        px_buffer_t *x = nullptr, *y = nullptr;
        if (px_channel_recv(b, 5'000'000'000, &x) != PX_OK ||
            px_channel_recv(b, 5'000'000'000, &y) != PX_OK)
            return 1;
        usleep(200 * 1000);
        px_buffer_release(x); // wakes the sender
        usleep(200 * 1000);
        px_buffer_release(y);
        px_buffer_t *z = nullptr;
        return px_channel_recv(b, 5'000'000'000, &z) == PX_E_CLOSED ? 0 : 2;
    });
    px_channel_release(b);
    for (uint64_t k = 0; k < 2; ++k) {
        px_buffer_t *f = make_frame(pool, 10, k);
        REQUIRE(px_channel_send(a, f) == PX_OK);
        px_buffer_release(f);
    }
    px_slot_t *slot = nullptr;
    CHECK(px_pool_loan(pool, &slot) == PX_E_WOULD_BLOCK);
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(px_pool_loan_timeout(pool, 10'000'000'000, &slot) == PX_OK);
    auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(waited >= std::chrono::milliseconds(100));
    CHECK(waited < std::chrono::seconds(5));
    px_slot_release(slot);
    px_channel_release(a);
    CHECK(wait_child(child) == 0);
    CHECK(eventually([&] { return px_pool_available(pool) == 2; }));
    px_pool_release(pool);
}

TEST_CASE("frames sent on, from the receiver to a third process, still return to the owner") {
    px_pool_t *pool = shm_pool(2, 4096);
    px_channel_t *a = nullptr, *b = nullptr, *c = nullptr, *d = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    REQUIRE(px_channel_pair(&c, &d) == PX_OK);
    pid_t relay = fork_child([&] {
        px_channel_release(a);
        px_channel_release(d);
        px_buffer_t *x = nullptr;
        if (px_channel_recv(b, 5'000'000'000, &x) != PX_OK)
            return 1;
        if (px_channel_send(c, x) != PX_OK) // forward a read-only, received buffer
            return 2;
        px_buffer_release(x);
        px_channel_release(c);
        px_buffer_t *end = nullptr;
        return px_channel_recv(b, 5'000'000'000, &end) == PX_E_CLOSED ? 0 : 3;
    });
    pid_t sink = fork_child([&] {
        px_channel_release(a);
        px_channel_release(b);
        px_channel_release(c);
        px_buffer_t *x = nullptr;
        if (px_channel_recv(d, 5'000'000'000, &x) != PX_OK)
            return 1;
        bool ok = frame_ok(x, 64, 5);
        px_buffer_release(x);
        return ok ? 0 : 2;
    });
    px_channel_release(b);
    px_channel_release(c);
    px_channel_release(d);
    px_buffer_t *f = make_frame(pool, 64, 5);
    REQUIRE(px_channel_send(a, f) == PX_OK);
    px_buffer_release(f);
    CHECK(wait_child(sink) == 0);
    px_channel_release(a);
    CHECK(wait_child(relay) == 0);
    CHECK(eventually([&] { return px_pool_available(pool) == 2; }));
    px_pool_release(pool);
}

TEST_CASE("a buffer sent back to its owner over the same channel returns its slot") {
    px_pool_t *pool = shm_pool(2, 4096);
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    pid_t echo = fork_child([&] {
        px_channel_release(a);
        for (int i = 0; i < 50; ++i) {
            px_buffer_t *x = nullptr;
            if (px_channel_recv(b, 10'000'000'000, &x) != PX_OK)
                return 1;
            if (px_channel_send(b, x) != PX_OK) // the owner's own memory, back to it
                return 2;
            px_buffer_release(x);
        }
        px_buffer_t *end = nullptr;
        return px_channel_recv(b, 10'000'000'000, &end) == PX_E_CLOSED ? 0 : 3;
    });
    px_channel_release(b);
    for (uint64_t k = 0; k < 50; ++k) { // 50 frames through 2 slots
        px_buffer_t *f = make_frame(pool, 16, k);
        REQUIRE(f);
        REQUIRE(px_channel_send(a, f) == PX_OK);
        px_buffer_release(f);
        px_buffer_t *back = nullptr;
        REQUIRE(px_channel_recv(a, 10'000'000'000, &back) == PX_OK);
        CHECK(frame_ok(back, 16, k));
        px_buffer_release(back);
    }
    px_channel_release(a);
    CHECK(wait_child(echo) == 0);
    CHECK(eventually([&] { return px_pool_available(pool) == 2; }));
    px_pool_release(pool);
}

TEST_CASE("a relay asleep in recv still hands back what it sent on") {
    px_pool_t *pool = shm_pool(2, 4096);
    px_channel_t *a = nullptr, *b = nullptr, *c = nullptr, *d = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    REQUIRE(px_channel_pair(&c, &d) == PX_OK);
    pid_t relay = fork_child([&] {
        px_channel_release(a);
        px_channel_release(d);
        px_channel_set_spin_ns(b, 0); // sleeps in recv between frames
        for (;;) {
            px_buffer_t *x = nullptr;
            px_status_t rc = px_channel_recv(b, 20'000'000'000, &x);
            if (rc == PX_E_CLOSED)
                return 0;
            if (rc != PX_OK || px_channel_send(c, x) != PX_OK)
                return 1;
            px_buffer_release(x);
        }
    });
    pid_t sink = fork_child([&] {
        px_channel_release(a);
        px_channel_release(b);
        px_channel_release(c);
        for (uint64_t k = 0; k < 20; ++k) {
            px_buffer_t *x = nullptr;
            if (px_channel_recv(d, 20'000'000'000, &x) != PX_OK)
                return 1;
            bool ok = frame_ok(x, 16, k);
            px_buffer_release(x);
            if (!ok)
                return 2;
        }
        return 0;
    });
    px_channel_release(b);
    px_channel_release(c);
    px_channel_release(d);
    for (uint64_t k = 0; k < 20; ++k) { // 20 frames through 2 slots, via the relay
        px_buffer_t *f = make_frame(pool, 16, k);
        REQUIRE(f);
        REQUIRE(px_channel_send(a, f) == PX_OK);
        px_buffer_release(f);
    }
    CHECK(wait_child(sink) == 0);
    px_channel_release(a);
    CHECK(wait_child(relay) == 0);
    CHECK(eventually([&] { return px_pool_available(pool) == 2; }));
    px_pool_release(pool);
}
