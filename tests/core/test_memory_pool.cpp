// SPDX-License-Identifier: Apache-2.0 OR MIT
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <latch>
#include <mutex>
#include <set>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/heap_segment.hpp"
#include "core/memory_pool.hpp"
#include "core/mapped_file_segment.hpp"
#include "support/hugepages.hpp"

using namespace px;

TEST_CASE("pool capacity math and loans of distinct slots") {
    auto pool = MemoryPool::create(heap::create(1 << 20), 64 << 10);
    CHECK(pool->capacity() == 16);
    auto odd = MemoryPool::create(heap::create(1000), 300);
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
    auto seg = heap::create(4096);
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
    mapped_file::create(f.c_str(), 4096);
    CHECK(code([&] { MemoryPool::create(mapped_file::open(f.c_str(), true), 64); }) ==
          Status::unsupported);
}

TEST_CASE("a loaned slot keeps the pool alive") {
    Slot *s;
    {
        auto pool = MemoryPool::create(heap::create(4096), 1024);
        s = pool->try_loan();
        REQUIRE(s);
    }
    s->data()[0] = std::byte{1}; // pool and segment still alive
    CHECK(s->pool().capacity() == 4);
    s->release_ref(); // frees pool and segment (ASan would flag a leak or use-after-free)
}

TEST_CASE("loan with timeout: polls, times out, and is woken by another thread") {
    auto pool = MemoryPool::create(heap::create(4096), 4096);
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
    auto pool = MemoryPool::create(heap::create(4096), 4096);
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
    auto pool = MemoryPool::create(heap::create(64 * 256), 256);
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
    auto segment = heap::create(2 * 256);
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
    auto segment = heap::create(4 * 1024);
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

// ----------------------------------------------------------------------------------------------
// Per-thread slot caches. A pool of 64 slots lets each thread cache 16 (a quarter), refilled
// from the bitmap and flushed to it 8 at a time.

namespace {
Ref<MemoryPool> cached_pool(Ref<Segment> segment = heap::create(64 * 256)) {
    auto pool = MemoryPool::create(std::move(segment), 256);
    // membarrier(2) is what makes the caches safe; without it pools are not cached.
    REQUIRE_MESSAGE(pool->cache_limit() == 16, "membarrier unavailable: pools are not cached");
    return pool;
}

Status loan_status(MemoryPool &pool, int64_t timeout_ns) {
    try {
        pool.loan(timeout_ns)->release_ref();
    } catch (const Error &e) {
        return e.status();
    }
    return Status::ok;
}
} // namespace

TEST_CASE("thread cache: loans pop what this thread released; available() counts it") {
    auto pool = cached_pool();
    Slot *s = pool->try_loan(); // a refill: 8 claimed in one step, 1 lent, 7 cached
    REQUIRE(s);
    CHECK(pool->cached() == 7);
    CHECK(pool->available() == 63);
    s->release_ref();
    CHECK(pool->cached() == 8);
    CHECK(pool->available() == 64);
    Slot *again = pool->try_loan();
    CHECK(again == s); // the slot released last, still warm
    again->release_ref();
    // More releases than a cache holds: the oldest go back to the bitmap a batch at a time.
    std::vector<Slot *> out;
    for (int i = 0; i < 20; ++i)
        out.push_back(pool->try_loan());
    std::set<Slot *> distinct(out.begin(), out.end());
    CHECK(distinct.size() == 20);
    CHECK(pool->available() == 44);
    for (Slot *o : out)
        o->release_ref();
    CHECK(pool->cached() <= pool->cache_limit());
    CHECK(pool->available() == 64);
}

TEST_CASE("thread cache: a loan finds slots cached by a thread that no longer loans") {
    // WOULD_BLOCK means every slot is out, wherever the free ones are cached.
    auto pool = cached_pool();
    std::latch cached(1), done(1);
    std::vector<Slot *> kept;
    std::thread idle([&] {
        std::vector<Slot *> all;
        while (Slot *s = pool->try_loan())
            all.push_back(s);
        for (size_t i = 0; i < 8; ++i)
            all[i]->release_ref(); // into this thread's cache
        kept.assign(all.begin() + 8, all.end());
        cached.count_down();
        done.wait(); // alive, never loaning again
    });
    cached.wait();
    CHECK(kept.size() == 56);
    CHECK(pool->cached() == 8);
    CHECK(pool->available() == 8);
    std::vector<Slot *> mine;
    for (int i = 0; i < 8; ++i) {
        try {
            mine.push_back(pool->loan(0));
        } catch (const Error &e) {
            FAIL_CHECK("loan ", i, " failed while slots sat in another thread's cache: ",
                       std::string(e.what()));
        }
    }
    CHECK(loan_status(*pool, 0) == Status::would_block);
    CHECK(pool->cached() == 0);
    for (Slot *s : mine)
        s->release_ref();
    for (Slot *s : kept)
        s->release_ref();
    done.count_down();
    idle.join();
    CHECK(pool->available() == 64);
}

TEST_CASE("thread cache: a waiter is woken by releases a thread would have cached") {
    // The waiter sleeps with every slot out; the owner of the slots releases them one at a time
    // at different moments (before, during and after the waiter's spin). Each release must wake
    // the waiter: had it gone into the releaser's cache, the waiter would sleep to its timeout.
    auto pool = cached_pool();
    std::vector<Slot *> all;
    while (Slot *s = pool->try_loan())
        all.push_back(s);
    REQUIRE(all.size() == 64);
    for (int round = 0; round < 40; ++round) {
        std::atomic<bool> started{false};
        Slot *got = nullptr;
        int64_t waited_ns = 0;
        std::thread waiter([&] {
            started = true;
            const int64_t t0 = now_ns();
            try {
                got = pool->loan(2'000'000'000);
            } catch (const Error &) {
            }
            waited_ns = now_ns() - t0;
        });
        while (!started)
            std::this_thread::yield();
        std::this_thread::sleep_for(std::chrono::microseconds(round * 25));
        all.back()->release_ref();
        all.pop_back();
        waiter.join();
        REQUIRE_MESSAGE(got, "round ", round, ": the waiter timed out");
        CHECK(waited_ns < 1'000'000'000);
        all.push_back(got); // out again, held by this thread now
    }
    for (Slot *s : all)
        s->release_ref();
    CHECK(pool->available() == 64);
}

TEST_CASE("thread cache: an exiting thread gives its cached slots back") {
    auto pool = cached_pool();
    std::thread t([&] {
        std::vector<Slot *> v;
        for (int i = 0; i < 10; ++i)
            v.push_back(pool->try_loan());
        for (Slot *s : v)
            s->release_ref();
        CHECK(pool->cached() == 16); // 6 left of two refills of 8, and the 10 released
    });
    t.join();
    CHECK(pool->cached() == 0);
    CHECK(pool->available() == 64);
}

TEST_CASE("thread cache: one thread, more pools than caches") {
    // Four caches per thread: the fifth and sixth pools evict others (their slots go back).
    std::vector<Ref<MemoryPool>> pools;
    for (int i = 0; i < 6; ++i)
        pools.push_back(cached_pool());
    for (int round = 0; round < 1000; ++round) {
        auto &p = pools[static_cast<size_t>(round * 7 % 6)];
        Slot *a = p->try_loan(), *b = p->try_loan(), *c = p->try_loan();
        REQUIRE((a && b && c));
        CHECK((a != b && b != c && a != c));
        a->release_ref();
        b->release_ref();
        c->release_ref();
    }
    size_t cached = 0;
    for (auto &p : pools) {
        CHECK(p->available() == 64);
        cached += p->cached();
    }
    CHECK(cached <= 4 * 16);
}

TEST_CASE("thread cache: the last owner leaves while idle threads cache its slots") {
    // The threads stay alive and never touch the pool again: their caches must not keep it
    // alive, and the pool must be deleted (the segment's count says so) before they exit.
    auto segment = heap::create(64 * 256);
    for (int round = 0; round < 50; ++round) {
        Ref<MemoryPool> pool = cached_pool(segment);
        std::latch filled(3), done(1);
        std::vector<std::thread> idle;
        for (int t = 0; t < 3; ++t)
            idle.emplace_back([&] {
                std::vector<Slot *> v;
                for (int i = 0; i < 6; ++i)
                    v.push_back(pool->try_loan());
                for (Slot *s : v)
                    s->release_ref();
                filled.count_down();
                done.wait();
            });
        filled.wait();
        CHECK(pool->cached() >= 3 * 6);
        Slot *out = pool->try_loan(); // one slot still out when the owner leaves
        pool = nullptr;
        CHECK(segment->ref_count() == 2); // alive for `out` only
        out->release_ref();
        CHECK(segment->ref_count() == 1); // deleted, the idle threads still running
        done.count_down();
        for (auto &t : idle)
            t.join();
    }
}

TEST_CASE("stress with caches: four threads, a million loans, releases on other threads, "
          "waiters, and the owner leaving mid-way") {
    auto segment = heap::create(64 * 256);
    Ref<MemoryPool> owner_ref = cached_pool(segment);
    MemoryPool &pool = *owner_ref;
    const size_t capacity = pool.capacity();
    std::vector<std::atomic<int>> owner(capacity);
    std::atomic<bool> doubled{false}, over_capacity{false};
    std::atomic<long> loans{0}, failed{0}, slept{0};
    // Slots handed to another thread to release (at most 24 in the hand-off). With up to 12 held
    // per thread and 16 cached, demand exceeds the 64 slots: loans wait, caches are reclaimed.
    std::mutex handoff_mutex;
    std::deque<Slot *> handoff;
    constexpr int threads = 4, per_thread = 250000;
    std::latch looped(threads), drained(threads), dropped(threads), checked(1);
    auto release = [&](Slot *s) {
        owner[s->index()].fetch_sub(1);
        s->release_ref();
    };
    auto drain_handoff = [&] {
        std::deque<Slot *> mine;
        {
            std::lock_guard lock(handoff_mutex);
            mine.swap(handoff);
        }
        for (Slot *s : mine)
            release(s);
    };
    auto worker = [&](Ref<MemoryPool> p, unsigned seed) {
        std::vector<Slot *> held;
        for (int i = 0; i < per_thread; ++i) {
            seed = seed * 1103515245u + 12345u;
            Slot *s = (seed >> 16) % 4 ? p->try_loan() : nullptr;
            if (!s) {
                // Everything this thread could give back goes back before it may wait: the
                // slots it holds and those handed to it.
                for (Slot *h : held)
                    release(h);
                held.clear();
                drain_handoff();
                const int64_t t0 = now_ns();
                try {
                    s = p->loan(5'000'000'000);
                } catch (const Error &) {
                    failed.fetch_add(1);
                    continue;
                }
                if (now_ns() - t0 > 50'000)
                    slept.fetch_add(1, std::memory_order_relaxed); // past the spin: it waited
            }
            if (owner[s->index()].fetch_add(1) != 0)
                doubled = true;
            loans.fetch_add(1, std::memory_order_relaxed);
            switch ((seed >> 20) % 3) {
            case 0:
                release(s);
                break;
            case 1: {
                std::unique_lock lock(handoff_mutex);
                if (handoff.size() < 24) {
                    handoff.push_back(s);
                    break;
                }
                lock.unlock();
                release(s);
                break;
            }
            default:
                held.push_back(s);
                if (held.size() == 12) {
                    for (Slot *h : held)
                        release(h);
                    held.clear();
                }
            }
            if ((i & 1023) == 0) {
                if (p->available() > capacity)
                    over_capacity = true;
                drain_handoff();
            }
        }
        for (Slot *h : held)
            release(h);
        looped.arrive_and_wait();
        drain_handoff();
        drained.arrive_and_wait();
        p = nullptr; // the last of these closes the pool, other threads' caches full
        dropped.count_down();
        checked.wait(); // stay alive, idle, until the pool's deletion has been checked
    };
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
        workers.emplace_back(worker, owner_ref, 17u + static_cast<unsigned>(t));
    while (loans.load() < threads * per_thread / 2)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    owner_ref = nullptr; // the owner leaves mid-way; the workers' references keep it open
    dropped.wait();
    CHECK(segment->ref_count() == 1); // deleted, though every worker thread still runs
    checked.count_down();
    for (auto &w : workers)
        w.join();
    CHECK(failed.load() == 0);
    MESSAGE("loans that waited past the spin: ", slept.load());
    CHECK(loans.load() == threads * per_thread);
    CHECK_FALSE(doubled.load());
    CHECK_FALSE(over_capacity.load());
}

TEST_CASE("stress with caches: bursts larger than a cache, released in bursts, in order, in "
          "reverse and by the other thread") {
    // Bursts of 1-24 loans against a 16-slot cache: each burst may refill from the bitmap and
    // flush to it several times (the loan+release bench's burst case), and slots move between
    // the two threads' caches through the hand-off. A slot lent twice, lost, or counted twice by
    // available() fails the test.
    auto pool = cached_pool();
    const size_t capacity = pool->capacity();
    std::vector<std::atomic<int>> owner(capacity);
    std::atomic<bool> doubled{false}, over_capacity{false};
    std::atomic<long> loans{0}, failed{0};
    std::mutex handoff_mutex;
    std::vector<Slot *> handoff; // at most 24: with two bursts of 24 out, 16 slots remain
    constexpr long per_thread = 500000;
    auto release = [&](Slot *s) {
        owner[s->index()].fetch_sub(1);
        s->release_ref();
    };
    auto drain_handoff = [&] {
        std::vector<Slot *> theirs;
        {
            std::lock_guard lock(handoff_mutex);
            theirs.swap(handoff);
        }
        for (Slot *s : theirs)
            release(s); // into this thread's cache: slots the other thread loaned
    };
    auto worker = [&](unsigned seed) {
        std::vector<Slot *> burst;
        for (long done = 0; done < per_thread;) {
            seed = seed * 1103515245u + 12345u;
            const size_t want = 1 + (seed >> 16) % 24;
            for (size_t k = 0; k < want; ++k) {
                Slot *s = pool->try_loan();
                if (!s) {
                    drain_handoff(); // what we could give back goes back before we wait
                    try {
                        s = pool->loan(5'000'000'000);
                    } catch (const Error &) {
                        failed.fetch_add(1);
                        break;
                    }
                }
                if (owner[s->index()].fetch_add(1) != 0)
                    doubled = true;
                burst.push_back(s);
            }
            done += static_cast<long>(burst.size());
            loans.fetch_add(static_cast<long>(burst.size()), std::memory_order_relaxed);
            switch ((seed >> 8) % 3) {
            case 0: // oldest first: the cache overflows and flushes
                for (Slot *s : burst)
                    release(s);
                break;
            case 1: // newest first
                for (auto it = burst.rbegin(); it != burst.rend(); ++it)
                    release(*it);
                break;
            default: {
                std::unique_lock lock(handoff_mutex);
                if (handoff.size() + burst.size() <= 24) {
                    handoff.insert(handoff.end(), burst.begin(), burst.end());
                    break;
                }
                lock.unlock();
                drain_handoff();
                for (Slot *s : burst)
                    release(s);
            }
            }
            burst.clear();
            if ((done & 255) < 24 && pool->available() > capacity)
                over_capacity = true;
        }
        drain_handoff();
    };
    std::thread a(worker, 3u), b(worker, 11u);
    a.join();
    b.join();
    drain_handoff();
    CHECK(failed.load() == 0);
    CHECK(loans.load() >= 2 * per_thread);
    CHECK_FALSE(doubled.load());
    CHECK_FALSE(over_capacity.load());
    CHECK(pool->cached() == 0); // both threads exited: their caches went back
    CHECK(pool->available() == capacity);
    for (size_t i = 0; i < capacity; ++i)
        CHECK(owner[i].load() == 0);
}

TEST_CASE("thread cache: a fork child gets every cached slot back once") {
    auto pool = cached_pool();
    std::latch cached(1), done(1);
    std::thread other([&] {
        std::vector<Slot *> v;
        for (int i = 0; i < 8; ++i)
            v.push_back(pool->try_loan());
        for (Slot *s : v)
            s->release_ref();
        cached.count_down();
        done.wait();
    });
    cached.wait();
    std::vector<Slot *> held;
    for (int i = 0; i < 3; ++i)
        held.push_back(pool->try_loan()); // a refill of 8: this thread caches 5
    const size_t parent_cached = pool->cached();
    REQUIRE(parent_cached == 8 + 5);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // One thread here: the other's cache is a copy nobody uses, ours a copy of slots the
        // parent may use. Both went back to this process's bitmap; each free slot is lent once.
        int code = 0;
        if (pool->cached() != 0)
            code |= 1;
        if (pool->available() != 61)
            code |= 2;
        std::set<size_t> seen;
        for (Slot *h : held)
            seen.insert(h->index());
        for (int i = 0; i < 61; ++i) {
            Slot *s = nullptr;
            try {
                s = pool->loan(0);
            } catch (const Error &) {
                code |= 4;
                break;
            }
            if (!seen.insert(s->index()).second)
                code |= 8; // lent twice, or one that this process holds
        }
        if (loan_status(*pool, 0) != Status::would_block)
            code |= 16;
        ::_exit(code);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    // The parent's caches are untouched.
    CHECK(pool->cached() == parent_cached);
    CHECK(pool->available() == 61);
    for (Slot *h : held)
        h->release_ref();
    done.count_down();
    other.join();
    CHECK(pool->available() == 64);
}
