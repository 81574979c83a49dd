// SPDX-License-Identifier: Apache-2.0 OR MIT
#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "core/atomic_bitmap.hpp"

using px::AtomicBitmap;

TEST_CASE("bitmap hands out every index once, then reports exhaustion") {
    for (size_t n : {1u, 55u, 56u, 57u, 63u, 64u, 65u, 130u}) {
        AtomicBitmap b(n);
        std::set<size_t> seen;
        for (size_t i = 0; i < n; ++i) {
            size_t idx = b.acquire();
            REQUIRE(idx < n);
            REQUIRE(seen.insert(idx).second);
        }
        CHECK(b.acquire() == AtomicBitmap::npos);
        CHECK(b.count_free() == 0);
        CHECK(b.release(n - 1).freed);
        CHECK_FALSE(b.release(n - 1).freed); // double release is seen and changes nothing
        CHECK_FALSE(b.release(n).freed);     // out of range
        CHECK(b.count_free() == 1);
        CHECK(b.acquire() == n - 1);
    }
}

TEST_CASE("bitmap never gives one index to two owners under contention") {
    constexpr size_t slots = 100;
    AtomicBitmap b(slots);
    std::vector<std::atomic<int>> owners(slots);
    std::atomic<bool> doubled{false};
    auto worker = [&] {
        for (int i = 0; i < 300000; ++i) {
            size_t idx = b.acquire();
            if (idx == AtomicBitmap::npos)
                continue;
            if (owners[idx].fetch_add(1) != 0)
                doubled = true;
            owners[idx].fetch_sub(1);
            b.release(idx);
        }
    };
    std::thread t1(worker), t2(worker), t3(worker);
    t1.join();
    t2.join();
    t3.join();
    CHECK_FALSE(doubled.load());
    CHECK(b.count_free() == slots);
}

TEST_CASE("bitmap flags: a release while waited on becomes a waker; close counts what is out") {
    AtomicBitmap b(130); // three words
    size_t a = b.acquire(), c = b.acquire(), d = b.acquire();
    REQUIRE(d != AtomicBitmap::npos);

    AtomicBitmap::Released r = b.release(a);
    CHECK(r.freed);
    CHECK_FALSE(r.waker);
    CHECK_FALSE(r.closed);

    b.set_waiting(true);
    r = b.release(c);
    CHECK(r.freed);
    CHECK(r.waker); // must wake, then report
    CHECK_FALSE(r.closed);
    b.set_waiting(false);
    CHECK(b.count_free() == 129); // the waker field is not an index

    // Closing counts the one slot still out (d) and the one waker still at work (c).
    CHECK(b.close() == 2);
    CHECK(b.waker_done(c)); // closed meanwhile: this report was counted
    r = b.release(d);
    CHECK(r.freed);
    CHECK(r.closed);
    CHECK_FALSE(r.waker);
    CHECK(b.count_free() == 130);
    CHECK_FALSE(b.release(d).freed);
}

TEST_CASE("bitmap close ignores the padding past size") {
    for (size_t n : {1u, 55u, 56u, 57u, 112u, 113u}) {
        AtomicBitmap b(n);
        CHECK(b.close() == 0);
        CHECK(b.count_free() == n);
    }
}

TEST_CASE("bitmap batches: acquire_many claims free indices of one word in one step") {
    AtomicBitmap b(60); // words of 56 and 4
    std::vector<size_t> out(8);
    std::set<size_t> seen;
    size_t total = 0;
    while (size_t n = b.acquire_many(8, out.data())) {
        CHECK(n <= 8);
        size_t word = out[0] / AtomicBitmap::indices_per_word;
        for (size_t i = 0; i < n; ++i) {
            REQUIRE(out[i] < 60);
            CHECK(out[i] / AtomicBitmap::indices_per_word == word);
            CHECK(b.is_set(out[i]));
            REQUIRE(seen.insert(out[i]).second);
        }
        total += n;
    }
    CHECK(total == 60);
    CHECK(b.acquire_many(0, out.data()) == 0);
    // Several indices of one word freed in one step; only the claimed ones count.
    AtomicBitmap::Released r = AtomicBitmap::release_in(b.word_of(3), b.mask_of(3) | b.mask_of(9));
    CHECK(r.freed);
    CHECK(r.count == 2);
    r = AtomicBitmap::release_in(b.word_of(3), b.mask_of(3) | b.mask_of(10));
    CHECK(r.count == 1); // 3 was free already
    CHECK(b.count_free() == 3);
    CHECK_FALSE(AtomicBitmap::release_in(b.word_of(3), b.mask_of(3)).freed);
    // A closed word reports every index a batch frees.
    CHECK(b.close() == 57);
    r = AtomicBitmap::release_in(b.word_of(56), b.mask_of(56) | b.mask_of(57) | b.mask_of(58));
    CHECK(r.closed);
    CHECK(r.count == 3);
}
