// SPDX-License-Identifier: Apache-2.0 OR MIT
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "parallax/parallax.h"

namespace {
px_pool_t *make_pool(size_t seg_size, size_t slot_size) {
    px_segment_t *seg = nullptr;
    REQUIRE(px_segment_heap_new(seg_size, &seg) == PX_OK);
    px_pool_t *pool = nullptr;
    REQUIRE(px_pool_new(seg, slot_size, &pool) == PX_OK);
    px_segment_release(seg); // the pool holds it
    return pool;
}
} // namespace

TEST_CASE("C API: the seed's 1 MiB / 64 KiB pool has 16 slots; exhaustion and refill") {
    px_pool_t *pool = make_pool(1 << 20, 64 << 10);
    CHECK(px_pool_capacity(pool) == 16);
    CHECK(px_pool_slot_size(pool) == 64 << 10);
    CHECK(px_segment_len(px_pool_segment(pool)) == 1 << 20);
    std::vector<px_slot_t *> slots(16);
    for (auto &s : slots) {
        REQUIRE(px_pool_loan(pool, &s) == PX_OK);
        CHECK(px_slot_len(s) == 64 << 10);
        CHECK(px_slot_data(s) ==
              static_cast<char *>(px_segment_mut_ptr(px_pool_segment(pool))) +
                  px_slot_index(s) * (64 << 10));
    }
    px_slot_t *extra = nullptr;
    CHECK(px_pool_loan(pool, &extra) == PX_E_WOULD_BLOCK);
    CHECK(extra == nullptr);
    CHECK(std::string(px_last_error_message()).find("16 slots is out") != std::string::npos);
    CHECK(px_pool_loan_timeout(pool, 0, &extra) == PX_E_WOULD_BLOCK);
    CHECK(px_pool_loan_timeout(pool, 1000000, &extra) == PX_E_TIMEOUT);
    CHECK(px_pool_available(pool) == 0);
    for (auto s : slots)
        px_slot_release(s);
    CHECK(px_pool_available(pool) == 16);
    px_pool_release(pool);
}

TEST_CASE("C API: pool bad input") {
    px_segment_t *seg = nullptr;
    REQUIRE(px_segment_heap_new(4096, &seg) == PX_OK);
    px_pool_t *pool = nullptr;
    CHECK(px_pool_new(seg, 0, &pool) == PX_E_INVALID);
    CHECK(std::string(px_last_error_message()) == "px_pool_new: slot_size is 0");
    CHECK(px_pool_new(seg, 4097, &pool) == PX_E_INVALID);
    CHECK(px_pool_new(seg, SIZE_MAX, &pool) == PX_E_INVALID);
    CHECK(px_pool_new(nullptr, 64, &pool) == PX_E_INVALID);
    CHECK(px_pool_new(seg, 64, nullptr) == PX_E_INVALID);
    CHECK(pool == nullptr);
    px_slot_t *s = nullptr;
    CHECK(px_pool_loan(nullptr, &s) == PX_E_INVALID);
    CHECK(px_pool_loan_timeout(nullptr, 0, &s) == PX_E_INVALID);
    REQUIRE(px_pool_new(seg, 4096, &pool) == PX_OK);
    CHECK(px_pool_loan(pool, nullptr) == PX_E_INVALID);
    CHECK(px_pool_capacity(nullptr) == 0);
    CHECK(px_pool_available(nullptr) == 0);
    CHECK(px_slot_data(nullptr) == nullptr);
    px_slot_release(nullptr);
    px_pool_release(nullptr);
    // A second release of the same slot is detected and ignored while the pool lives.
    REQUIRE(px_pool_loan(pool, &s) == PX_OK);
    px_slot_release(s);
    px_slot_release(s);
    CHECK(px_pool_available(pool) == 1);
    px_slot_t *a = nullptr, *b = nullptr;
    REQUIRE(px_pool_loan(pool, &a) == PX_OK);
    CHECK(px_pool_loan(pool, &b) == PX_E_WOULD_BLOCK);
    px_slot_release(a);
    px_buffer_t *buf = nullptr;
    REQUIRE(px_pool_loan(pool, &a) == PX_OK);
    CHECK(px_slot_into_buffer(a, 0, nullptr, &buf) == PX_E_INVALID); // consumed anyway
    CHECK(px_pool_available(pool) == 1);
    REQUIRE(px_pool_loan(pool, &a) == PX_OK);
    CHECK(px_slot_into_buffer(a, 4097, nullptr, &buf) == PX_E_INVALID);
    CHECK(px_slot_into_buffer(nullptr, 1, nullptr, &buf) == PX_E_INVALID);
    REQUIRE(px_pool_loan(pool, &a) == PX_OK);
    CHECK(px_slot_into_buffer(a, 1, nullptr, nullptr) == PX_E_INVALID);
    CHECK(px_pool_available(pool) == 1);
    px_pool_release(pool);
    px_segment_release(seg);
}

TEST_CASE("C API: into_buffer returns the slot with the last buffer; pool outlives handles") {
    px_pool_t *pool = make_pool(4096, 1024);
    px_slot_t *slot = nullptr;
    REQUIRE(px_pool_loan(pool, &slot) == PX_OK);
    static_cast<char *>(px_slot_data(slot))[0] = 'Q';
    px_metadata_t meta;
    px_metadata_init(&meta);
    meta.sequence = 42;
    px_buffer_t *buf = nullptr;
    REQUIRE(px_slot_into_buffer(slot, 100, &meta, &buf) == PX_OK);
    px_pool_release(pool); // buffers and the slot keep the pool alive
    CHECK(px_buffer_len(buf) == 100);
    px_buffer_t *clone = nullptr;
    REQUIRE(px_buffer_clone(buf, &clone) == PX_OK);
    px_buffer_release(buf);
    CHECK(static_cast<const char *>(px_buffer_ptr(clone))[0] == 'Q');
    px_metadata_t got;
    REQUIRE(px_buffer_metadata(clone, &got) == PX_OK);
    CHECK(got.sequence == 42);
    CHECK(got.pts_ns == PX_TIME_NONE);
    px_buffer_release(clone); // last reference: slot, pool and segment go (ASan checks)
}

TEST_CASE("C API: loan_timeout is woken by a release in another thread") {
    px_pool_t *pool = make_pool(8192, 4096);
    px_slot_t *a = nullptr, *b = nullptr, *c = nullptr;
    REQUIRE(px_pool_loan(pool, &a) == PX_OK);
    REQUIRE(px_pool_loan(pool, &b) == PX_OK);
    std::thread t([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        px_slot_release(b);
    });
    auto start = std::chrono::steady_clock::now();
    REQUIRE(px_pool_loan_timeout(pool, 5'000'000'000, &c) == PX_OK);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(4));
    t.join();
    px_slot_release(a);
    px_slot_release(c);
    px_pool_release(pool);
}

TEST_CASE("C API: a timeout too long to add to the clock waits, as long as it says") {
    // now + INT64_MAX ns overflows; the deadline must saturate (to "no deadline"), not wrap into
    // the past and answer PX_E_TIMEOUT at once.
    px_pool_t *pool = make_pool(4096, 4096);
    px_slot_t *only = nullptr;
    REQUIRE(px_pool_loan(pool, &only) == PX_OK);
    for (int64_t timeout : {INT64_MAX, INT64_MAX - 1000}) {
        std::thread t([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(30));
            px_slot_release(only);
        });
        px_slot_t *again = nullptr;
        CHECK_MESSAGE(px_pool_loan_timeout(pool, timeout, &again) == PX_OK,
                      px_last_error_message());
        t.join();
        CHECK(px_slot_index(again) == 0);
        only = again;
    }
    px_slot_release(only);
    px_pool_release(pool);
}

TEST_CASE("C API: two threads loaning and releasing, no slot owned twice") {
    px_pool_t *pool = make_pool(32 * 4096, 4096);
    std::vector<std::atomic<int>> owner(px_pool_capacity(pool));
    std::atomic<bool> doubled{false};
    auto worker = [&] {
        for (int i = 0; i < 500000; ++i) {
            px_slot_t *s = nullptr;
            if (px_pool_loan_timeout(pool, -1, &s) != PX_OK) {
                doubled = true;
                return;
            }
            if (owner[px_slot_index(s)].fetch_add(1) != 0)
                doubled = true;
            owner[px_slot_index(s)].fetch_sub(1);
            px_slot_release(s);
        }
    };
    std::thread t1(worker), t2(worker);
    t1.join();
    t2.join();
    CHECK_FALSE(doubled.load());
    CHECK(px_pool_available(pool) == px_pool_capacity(pool));
    px_pool_release(pool);
}

TEST_CASE("C API: slots another thread released (and caches) count as available and are lent") {
    // 64 slots: each thread may keep 8 free ones of its own, which px_pool_available counts and
    // which px_pool_loan takes back before it answers PX_E_WOULD_BLOCK.
    px_pool_t *pool = make_pool(64 * 4096, 4096);
    std::vector<px_slot_t *> mine(64);
    for (auto &s : mine)
        REQUIRE(px_pool_loan(pool, &s) == PX_OK);
    px_slot_t *extra = nullptr;
    CHECK(px_pool_loan(pool, &extra) == PX_E_WOULD_BLOCK);
    std::promise<void> released, go, finish;
    std::thread other([&, g = go.get_future(), f = finish.get_future()] {
        for (int i = 0; i < 8; ++i)
            px_slot_release(mine[static_cast<size_t>(i)]);
        released.set_value();
        g.wait();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        px_slot_release(mine[0]); // while the main thread waits
        f.wait(); // alive and idle: its cache is not flushed by its exit
    });
    released.get_future().wait();
    CHECK(px_pool_available(pool) == 8);
    for (int i = 0; i < 8; ++i) {
        CHECK_MESSAGE(px_pool_loan(pool, &mine[static_cast<size_t>(i)]) == PX_OK,
                      px_last_error_message());
    }
    CHECK(px_pool_loan(pool, &extra) == PX_E_WOULD_BLOCK);
    CHECK(px_pool_available(pool) == 0);
    // A loan waiting for a release that the releasing thread could have cached: it must wake.
    go.set_value();
    auto start = std::chrono::steady_clock::now();
    CHECK(px_pool_loan_timeout(pool, 3'000'000'000, &extra) == PX_OK);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
    mine[0] = extra;
    finish.set_value();
    other.join();
    for (auto s : mine)
        px_slot_release(s);
    CHECK(px_pool_available(pool) == 64);
    px_pool_release(pool);
}
