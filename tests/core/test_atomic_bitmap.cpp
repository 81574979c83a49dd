#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "core/atomic_bitmap.hpp"

using px::AtomicBitmap;

TEST_CASE("bitmap hands out every index once, then reports exhaustion") {
    for (size_t n : {1u, 63u, 64u, 65u, 130u}) {
        AtomicBitmap b(n);
        std::set<size_t> seen;
        for (size_t i = 0; i < n; ++i) {
            size_t idx = b.acquire();
            REQUIRE(idx < n);
            REQUIRE(seen.insert(idx).second);
        }
        CHECK(b.acquire() == AtomicBitmap::npos);
        CHECK(b.count_free() == 0);
        CHECK(b.release(n - 1));
        CHECK_FALSE(b.release(n - 1)); // double release is seen and changes nothing
        CHECK_FALSE(b.release(n));     // out of range
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
