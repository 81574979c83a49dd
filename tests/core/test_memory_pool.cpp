#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/heap_segment.hpp"
#include "core/memory_pool.hpp"
#include "core/mapped_file_segment.hpp"
#include "support/hugepages.hpp"

using namespace px;

TEST_CASE("pool capacity math and loans of distinct slots") {
    auto pool = MemoryPool::create(HeapSegment::create(1 << 20), 64 << 10);
    CHECK(pool->capacity() == 16);
    auto odd = MemoryPool::create(HeapSegment::create(1000), 300);
    CHECK(odd->capacity() == 3);
    std::vector<Slot *> slots;
    while (Slot *s = pool->try_loan())
        slots.push_back(s);
    CHECK(slots.size() == 16);
    CHECK(pool->available() == 0);
    for (size_t i = 0; i < slots.size(); ++i)
        CHECK(slots[i]->data() == pool->segment().mutable_data() + slots[i]->index() * (64 << 10));
    slots.back()->release_ref();
    CHECK(pool->available() == 1);
    for (size_t i = 0; i + 1 < slots.size(); ++i)
        slots[i]->release_ref();
    CHECK(pool->available() == 16);
}

TEST_CASE("pool refuses bad sizes and read-only memory") {
    auto seg = HeapSegment::create(4096);
    auto code = [](auto &&f) {
        try {
            f();
        } catch (const Error &e) {
            return e.status();
        }
        return Status::ok;
    };
    CHECK(code([&] { MemoryPool::create(seg, 0); }) == Status::invalid);
    CHECK(code([&] { MemoryPool::create(seg, 4097); }) == Status::invalid);
    CHECK(code([&] { MemoryPool::create(nullptr, 64); }) == Status::invalid);
    px_test::TempDir dir;
    auto f = dir.file("ro");
    MappedFileSegment::create(f.c_str(), 4096);
    CHECK(code([&] { MemoryPool::create(MappedFileSegment::open(f.c_str(), true), 64); }) ==
          Status::unsupported);
}

TEST_CASE("a loaned slot keeps the pool alive") {
    Slot *s;
    {
        auto pool = MemoryPool::create(HeapSegment::create(4096), 1024);
        s = pool->try_loan();
        REQUIRE(s);
    }
    s->data()[0] = std::byte{1}; // pool and segment still alive
    CHECK(s->pool().capacity() == 4);
    s->release_ref(); // frees pool and segment (ASan would flag a leak or use-after-free)
}

TEST_CASE("loan with timeout: polls, times out, and is woken by another thread") {
    auto pool = MemoryPool::create(HeapSegment::create(4096), 4096);
    Slot *only = pool->loan(0);
    try {
        pool->loan(0);
        FAIL("expected would_block");
    } catch (const Error &e) {
        CHECK(e.status() == Status::would_block);
    }
    auto t0 = std::chrono::steady_clock::now();
    try {
        pool->loan(20'000'000);
        FAIL("expected timeout");
    } catch (const Error &e) {
        CHECK(e.status() == Status::timeout);
    }
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(20));
    std::thread releaser([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        only->release_ref();
    });
    Slot *again = pool->loan(-1); // waits forever: woken by the release
    CHECK(again->index() == 0);
    releaser.join();
    again->release_ref();
}

TEST_CASE("the deadline helpers a loan waits with: saturate, never wrap") {
    // deadline_for: < 0 is no deadline; a timeout past the clock's range saturates.
    CHECK(deadline_for(-1, 1000) == INT64_MAX);
    CHECK(deadline_for(0, 1000) == 1000);
    CHECK(deadline_for(500, 1000) == 1500);
    CHECK(deadline_for(INT64_MAX, 1000) == INT64_MAX);
    CHECK(deadline_for(INT64_MAX - 1000, 1000) == INT64_MAX);
    // timeout_left: -1 (forever) for no deadline, 0 once passed, else what is left.
    CHECK(timeout_left(INT64_MAX, 5) == -1);
    CHECK(timeout_left(deadline_for(-7, 1000), 1'000'000) == -1);
    CHECK(timeout_left(1500, 1000) == 500);
    CHECK(timeout_left(1500, 1500) == 0);
    CHECK(timeout_left(1500, 9000) == 0);
    CHECK(timeout_left(INT64_MAX - 1, 0) == INT64_MAX - 1);
    // timespec_from_ns splits seconds and nanoseconds.
    timespec ts = timespec_from_ns(2'000'000'007);
    CHECK(ts.tv_sec == 2);
    CHECK(ts.tv_nsec == 7);
    ts = timespec_from_ns(INT64_MAX);
    CHECK(ts.tv_sec == INT64_MAX / 1'000'000'000);
    CHECK(ts.tv_nsec == INT64_MAX % 1'000'000'000);
}

TEST_CASE("loan with a timeout too long to add to the clock waits for a release") {
    auto pool = MemoryPool::create(HeapSegment::create(4096), 4096);
    Slot *only = pool->loan(0);
    std::thread releaser([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        only->release_ref();
    });
    Slot *again = nullptr;
    try {
        again = pool->loan(INT64_MAX); // now + INT64_MAX overflows: must not time out at once
    } catch (const Error &e) {
        FAIL_CHECK(e.what());
    }
    releaser.join();
    REQUIRE(again);
    CHECK(again->index() == 0);
    again->release_ref();
}

TEST_CASE("stress: two threads, a million loans, no slot ever owned twice") {
    auto pool = MemoryPool::create(HeapSegment::create(64 * 256), 256);
    std::vector<std::atomic<int>> owner(pool->capacity());
    std::atomic<bool> doubled{false};
    std::atomic<long> loans{0};
    auto worker = [&] {
        std::vector<Slot *> held;
        for (int i = 0; i < 500000; ++i) {
            Slot *s = pool->try_loan();
            if (!s) {
                s = pool->loan(-1);
            }
            if (owner[s->index()].fetch_add(1) != 0)
                doubled = true;
            held.push_back(s);
            loans.fetch_add(1, std::memory_order_relaxed);
            if (held.size() == 8 || (i & 1)) {
                for (Slot *h : held) {
                    owner[h->index()].fetch_sub(1);
                    h->release_ref();
                }
                held.clear();
            }
        }
        for (Slot *h : held) {
            owner[h->index()].fetch_sub(1);
            h->release_ref();
        }
    };
    std::thread a(worker), b(worker);
    a.join();
    b.join();
    CHECK(loans.load() == 1000000);
    CHECK_FALSE(doubled.load());
    CHECK(pool->available() == pool->capacity());
}

TEST_CASE("the last owner leaves while slots are out and releasers are waking a waiter") {
    // Each round: two slots out, a thread waiting in loan(-1) with its own reference, one
    // release that wakes it, and the owner's references dropped while all that runs. The pool
    // must be deleted exactly once, after the last of them (the segment's count says when;
    // ASan and TSan builds catch a use after free).
    auto segment = HeapSegment::create(2 * 256);
    for (int round = 0; round < 2000; ++round) {
        Ref<MemoryPool> pool = MemoryPool::create(segment, 256);
        Slot *a = pool->try_loan();
        Slot *b = pool->try_loan();
        REQUIRE((a && b));
        std::atomic<bool> waiting{false};
        std::thread waiter([p = pool, &waiting]() mutable {
            waiting = true;
            Slot *s = p->loan(-1); // woken by the release of a
            s->release_ref();
            p = nullptr; // may be the last owner
        });
        while (!waiting)
            std::this_thread::yield();
        if (round % 2)
            std::this_thread::sleep_for(std::chrono::microseconds(100)); // let it sleep
        std::thread releaser([a] { a->release_ref(); });
        pool = nullptr;    // may be the last owner too
        b->release_ref(); // may be the last slot out
        releaser.join();
        waiter.join();
        CHECK(segment->ref_count() == 1); // the pool is gone
    }
}

TEST_CASE("a pool whose owner left is deleted by its last slot, not before") {
    auto segment = HeapSegment::create(4 * 1024);
    Ref<MemoryPool> pool = MemoryPool::create(segment, 1024);
    std::vector<Slot *> out;
    for (int i = 0; i < 3; ++i)
        out.push_back(pool->try_loan());
    pool = nullptr;
    for (Slot *s : out) {
        CHECK(segment->ref_count() == 2); // the pool still holds the segment
        s->data()[0] = std::byte{7};
        s->release_ref();
    }
    CHECK(segment->ref_count() == 1);
}
