// SPDX-License-Identifier: Apache-2.0 OR MIT
// One publisher, subscribers in other processes: start orders, history on late join, the
// description in order with frames, stats from a third process, 64 subscribers.
#include <doctest/doctest.h>

#include <atomic>
#include <csignal>
#include <thread>
#include <vector>

#include "stream_support.hpp"

using namespace px_stream_test;

namespace {

constexpr size_t frame_len = 4096;

// A subscriber process: joins `name`, receives frames first..last in order (each checked), then
// expects PX_E_CLOSED. The exit code says what went wrong.
int receive_all(const char *name, uint64_t first, uint64_t last) {
    ::alarm(20);
    px_subscriber_t *sub = nullptr;
    if (px_subscriber_new(name, 10 * second_ns, &sub) != PX_OK)
        return 2;
    for (uint64_t seq = first; seq <= last; ++seq)
        if (recv_seq(sub, 10 * second_ns) != static_cast<int64_t>(seq))
            return 3;
    if (recv_seq(sub, 10 * second_ns) != PX_E_CLOSED)
        return 4;
    px_subscriber_stats_t st;
    px_subscriber_get_stats(sub, &st);
    if (st.received != last - first + 1 || st.missed != 0)
        return 5;
    px_subscriber_release(sub);
    return 0;
}

} // namespace

TEST_CASE("start order does not matter: subscribers before and after the publisher") {
    RuntimeDir dir;
    // One subscriber starts before the publisher exists, two after it.
    pid_t early = fork_child([] { return receive_all("cam", 1, 30); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    px_pool_t *pool = shm_pool(16, frame_len);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_BLOCK);
    o.block_timeout_ns = 10 * second_ns; // nobody misses a frame here
    REQUIRE(px_publisher_new("cam", &o, &pub) == PX_OK);
    pid_t late1 = fork_child([] { return receive_all("cam", 1, 30); });
    pid_t late2 = fork_child([] { return receive_all("cam", 1, 30); });
    REQUIRE(wait_for_subscribers(pub, 3));
    for (uint64_t seq = 1; seq <= 30; ++seq)
        REQUIRE(publish_frame(pub, pool, frame_len, seq) == PX_OK);
    px_publisher_stats_t st;
    REQUIRE(px_publisher_get_stats(pub, &st) == PX_OK);
    CHECK(st.published == 30);
    CHECK(st.joined == 3);
    CHECK(st.subscribers == 3);
    CHECK(st.dropped == 0);
    px_publisher_release(pub);
    CHECK(wait_child(early) == 0);
    CHECK(wait_child(late1) == 0);
    CHECK(wait_child(late2) == 0);
    // Every slot is back once the subscribers have gone.
    CHECK(eventually([&] { return px_pool_available(pool) == px_pool_capacity(pool); }));
    px_pool_release(pool);
}

TEST_CASE("a late subscriber gets the history first (at most its credit's worth), then live") {
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(16, frame_len);
    for (uint32_t in_flight : {8u, 2u}) {
        CAPTURE(in_flight);
        px_publisher_t *pub = nullptr;
        px_publisher_options_t o = options(PX_SLOW_BLOCK, in_flight, 4);
        REQUIRE(px_publisher_new("cam", &o, &pub) == PX_OK);
        for (uint64_t seq = 1; seq <= 10; ++seq) // nobody listens yet
            REQUIRE(publish_frame(pub, pool, frame_len, seq) == PX_OK);
        // The history stays held: 4 slots out with no subscriber at all.
        CHECK(px_pool_available(pool) == px_pool_capacity(pool) - 4);
        const uint64_t first = in_flight == 8 ? 7 : 9;
        pid_t child = fork_child([&] { return receive_all("cam", first, 12); });
        REQUIRE(wait_for_subscribers(pub, 1));
        REQUIRE(publish_frame(pub, pool, frame_len, 11) == PX_OK);
        REQUIRE(publish_frame(pub, pool, frame_len, 12) == PX_OK);
        px_publisher_release(pub);
        CHECK(wait_child(child) == 0);
        CHECK(eventually([&] { return px_pool_available(pool) == px_pool_capacity(pool); }));
    }
    px_pool_release(pool);
}

// API.md: "a buffer's description is the one set before it was published, history included".
TEST_CASE("history frames arrive under the descriptions they were published with") {
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(16, frame_len);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_BLOCK, 8, 3);
    REQUIRE(px_publisher_new("cam", &o, &pub) == PX_OK);
    REQUIRE(px_publisher_set_description(pub, "A") == PX_OK);
    for (uint64_t seq = 1; seq <= 3; ++seq)
        REQUIRE(publish_frame(pub, pool, frame_len, seq) == PX_OK);
    REQUIRE(px_publisher_set_description(pub, "B") == PX_OK);
    for (uint64_t seq = 4; seq <= 5; ++seq)
        REQUIRE(publish_frame(pub, pool, frame_len, seq) == PX_OK);
    REQUIRE(px_publisher_set_description(pub, "C") == PX_OK);
    pid_t child = fork_child([&] {
        ::alarm(30);
        px_subscriber_t *sub = nullptr;
        if (px_subscriber_new("cam", 10 * second_ns, &sub) != PX_OK)
            return 2;
        if (description_of(sub) != "C") // before the first frame: the one current at join
            return 3;
        const std::pair<int64_t, const char *> expected[] = {{3, "A"}, {4, "B"}, {5, "B"}, {6, "C"}};
        for (const auto &[seq, text] : expected)
            if (recv_seq(sub, 10 * second_ns) != seq || description_of(sub) != text)
                return 4;
        return 0;
    });
    REQUIRE(wait_for_subscribers(pub, 1));
    REQUIRE(publish_frame(pub, pool, frame_len, 6) == PX_OK);
    CHECK(wait_child(child) == 0);
    px_publisher_release(pub);
    CHECK(eventually([&] { return px_pool_available(pool) == px_pool_capacity(pool); }));
    px_pool_release(pool);
}

TEST_CASE("the description: current at join, then each change in order with the frames") {
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(8, frame_len);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_BLOCK);
    REQUIRE(px_publisher_new("cam", &o, &pub) == PX_OK);
    REQUIRE(px_publisher_set_description(pub, "caps=A") == PX_OK);
    Signal joined;
    pid_t child = fork_child([&] {
        ::alarm(20);
        px_subscriber_t *sub = nullptr;
        if (px_subscriber_new("cam", 10 * second_ns, &sub) != PX_OK)
            return 2;
        if (description_of(sub) != "caps=A" || px_subscriber_description_version(sub) != 1)
            return 3;
        joined.post();
        const char *expected[] = {"caps=A", "caps=B", "caps=D", ""};
        // The version moves exactly when the description in force does (C never is: D
        // replaced it before a frame).
        const uint64_t versions[] = {1, 2, 3, 4};
        for (uint64_t seq = 1; seq <= 4; ++seq) {
            if (recv_seq(sub, 10 * second_ns) != static_cast<int64_t>(seq))
                return 4;
            if (description_of(sub) != expected[seq - 1])
                return 10 + static_cast<int>(seq);
            if (px_subscriber_description_version(sub) != versions[seq - 1])
                return 20 + static_cast<int>(seq);
        }
        if (px_subscriber_description_version(nullptr) != 0)
            return 6;
        // Too small a buffer: PX_E_INVALID, with the length to allocate.
        size_t len = 99;
        char tiny[1];
        if (px_subscriber_description(sub, tiny, sizeof tiny, &len) != PX_OK || len != 0)
            return 5;
        px_subscriber_release(sub);
        return 0;
    });
    REQUIRE(wait_for_subscribers(pub, 1));
    REQUIRE(joined.wait() == 'x');
    // Changes made before the subscriber's first recv still apply only to later frames.
    REQUIRE(publish_frame(pub, pool, frame_len, 1) == PX_OK);
    REQUIRE(px_publisher_set_description(pub, "caps=B") == PX_OK);
    REQUIRE(publish_frame(pub, pool, frame_len, 2) == PX_OK);
    REQUIRE(px_publisher_set_description(pub, "caps=C") == PX_OK);
    REQUIRE(px_publisher_set_description(pub, "caps=D") == PX_OK);
    REQUIRE(publish_frame(pub, pool, frame_len, 3) == PX_OK);
    REQUIRE(px_publisher_set_description(pub, "") == PX_OK);
    REQUIRE(publish_frame(pub, pool, frame_len, 4) == PX_OK);
    CHECK(wait_child(child) == 0);
    // Bad input.
    CHECK(px_publisher_set_description(pub, nullptr) == PX_E_INVALID);
    std::string huge(64 * 1024 + 1, 'x');
    CHECK(px_publisher_set_description(pub, huge.c_str()) == PX_E_INVALID);
    CHECK(std::strstr(px_last_error_message(), "longer than 65536") != nullptr);
    huge.pop_back();
    CHECK(px_publisher_set_description(pub, huge.c_str()) == PX_OK);
    px_publisher_release(pub);
    px_pool_release(pool);
}

TEST_CASE("six subscribers, one of the first four leaving: every frame after the description "
          "it was published under, for each") {
    // While every subscriber has the description in force, publish sends the first four their
    // records from the publisher's own lines (hot_), the others as before; a new description
    // and a departure among the first four (the fifth takes its place) change which is which.
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(16, frame_len);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_BLOCK);
    REQUIRE(px_publisher_new("six", &o, &pub) == PX_OK);
    REQUIRE(px_publisher_set_description(pub, "v1") == PX_OK);
    constexpr size_t n = 6;
    constexpr size_t leaver = 1; // the second admitted: one of the first four
    Signal joined;
    std::vector<pid_t> kids;
    for (size_t i = 0; i < n; ++i) {
        kids.push_back(fork_child([&, i] {
            ::alarm(20);
            px_subscriber_t *sub = nullptr;
            if (px_subscriber_new("six", 10 * second_ns, &sub) != PX_OK)
                return 2;
            joined.post();
            const char *expected[] = {"v1", "v1", "v2", "v2", "v3", "v3"};
            const uint64_t last = i == leaver ? 2 : 6;
            for (uint64_t seq = 1; seq <= last; ++seq) {
                if (recv_seq(sub, 10 * second_ns) != static_cast<int64_t>(seq))
                    return 4;
                if (description_of(sub) != expected[seq - 1])
                    return 10 + static_cast<int>(seq);
            }
            px_subscriber_release(sub);
            return 0;
        }));
        // One at a time: the publisher's table is in the children's order.
        REQUIRE(wait_for_subscribers(pub, i + 1));
        REQUIRE(joined.wait() == 'x');
    }
    REQUIRE(publish_frame(pub, pool, frame_len, 1) == PX_OK);
    REQUIRE(publish_frame(pub, pool, frame_len, 2) == PX_OK);
    REQUIRE(px_publisher_set_description(pub, "v2") == PX_OK);
    CHECK(wait_child(kids[leaver]) == 0);
    CHECK(eventually([&] {
        px_publisher_poll(pub, 1'000'000);
        return px_publisher_subscriber_count(pub) == n - 1;
    }));
    REQUIRE(publish_frame(pub, pool, frame_len, 3) == PX_OK);
    REQUIRE(publish_frame(pub, pool, frame_len, 4) == PX_OK);
    REQUIRE(px_publisher_set_description(pub, "v3") == PX_OK);
    REQUIRE(publish_frame(pub, pool, frame_len, 5) == PX_OK);
    REQUIRE(publish_frame(pub, pool, frame_len, 6) == PX_OK);
    for (size_t i = 0; i < n; ++i)
        if (i != leaver)
            CHECK(wait_child(kids[i]) == 0);
    px_publisher_stats_t st;
    REQUIRE(px_publisher_get_stats(pub, &st) == PX_OK);
    CHECK(st.departed == 1);
    CHECK(st.dropped == 0);
    CHECK(st.published == 6);
    px_publisher_release(pub);
    px_pool_release(pool);
}

TEST_CASE("a description set while a subscriber's ring is full reaches it before the next frame") {
    // 300 descriptions with no frame between them fill a subscriber's ring (256 records) that it
    // does not read: the last ones wait. Once it has read the ring empty, a publish finds room
    // for its frame, and must send the description in force before it, although the publish
    // before found every subscriber up to date (publisher.hpp: described_all_).
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(8, frame_len);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_BLOCK);
    REQUIRE(px_publisher_new("full", &o, &pub) == PX_OK);
    Signal joined, go;
    const pid_t child = fork_child([&] {
        ::alarm(20);
        px_subscriber_t *sub = nullptr;
        if (px_subscriber_new("full", 10 * second_ns, &sub) != PX_OK)
            return 2;
        joined.post();
        if (recv_seq(sub, 10 * second_ns) != 1 || description_of(sub) != "")
            return 3;
        if (go.wait() != 'x')
            return 3;
        // Takes every description in the ring, then waits for the frame.
        if (recv_seq(sub, 10 * second_ns) != 2)
            return 4;
        if (description_of(sub) != "d300")
            return 5;
        px_subscriber_release(sub);
        return 0;
    });
    REQUIRE(wait_for_subscribers(pub, 1));
    REQUIRE(joined.wait() == 'x');
    REQUIRE(publish_frame(pub, pool, frame_len, 1) == PX_OK); // every subscriber up to date
    for (int i = 1; i <= 300; ++i)
        REQUIRE(px_publisher_set_description(pub, ("d" + std::to_string(i)).c_str()) == PX_OK);
    go.post();
    std::this_thread::sleep_for(std::chrono::milliseconds(200)); // it reads the ring empty
    REQUIRE(publish_frame(pub, pool, frame_len, 2) == PX_OK);
    CHECK(wait_child(child) == 0);
    px_publisher_release(pub);
    px_pool_release(pool);
}

TEST_CASE("a subscriber's description is \"\" when none was set; too small a buffer says how long") {
    RuntimeDir dir;
    px_publisher_t *pub = nullptr;
    REQUIRE(px_publisher_new("cam", nullptr, &pub) == PX_OK);
    Signal leave;
    pid_t child = fork_child([&] {
        ::alarm(20);
        px_subscriber_t *sub = nullptr;
        if (px_subscriber_new("cam", 10 * second_ns, &sub) != PX_OK)
            return 2;
        if (description_of(sub) != "")
            return 3;
        size_t len = 7;
        if (px_subscriber_description(sub, nullptr, 0, &len) != PX_E_INVALID || len != 0)
            return 4;
        if (px_subscriber_description(sub, nullptr, 1, &len) != PX_E_INVALID)
            return 5; // dst NULL with room claimed
        // Stay until the publisher has been seen counting us: a subscriber that left within
        // the poll that admitted it would never be counted.
        if (leave.wait() != 'x')
            return 6;
        px_subscriber_release(sub);
        return 0;
    });
    REQUIRE(wait_for_subscribers(pub, 1));
    leave.post();
    CHECK(wait_child(child) == 0);
    px_publisher_release(pub);
}

TEST_CASE("px_stream_stats answers from another process while the publisher is idle") {
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(8, frame_len);
    px_publisher_stats_t st;
    CHECK(px_stream_stats("cam", 0, &st) == PX_E_CLOSED);
    px_publisher_t *pub = nullptr;
    REQUIRE(px_publisher_new("cam", nullptr, &pub) == PX_OK);
    for (uint64_t seq = 1; seq <= 5; ++seq)
        REQUIRE(publish_frame(pub, pool, frame_len, seq) == PX_OK);
    // The publisher neither publishes nor polls while the other process asks.
    pid_t child = fork_child([] {
        px_publisher_stats_t s;
        if (px_stream_stats("cam", second_ns, &s) != PX_OK)
            return 2;
        return s.published == 5 && s.subscribers == 0 && s.joined == 0 ? 0 : 3;
    });
    CHECK(wait_child(child) == 0);
    px_publisher_release(pub);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(px_stream_stats("cam", 5 * second_ns, &st) == PX_E_CLOSED); // at once
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(100));
    CHECK(px_stream_stats("cam", 0, nullptr) == PX_E_INVALID);
    px_pool_release(pool);
}

TEST_CASE("64 subscribers (threads of one child process) get every frame; the 65th is BUSY") {
    RuntimeDir dir;
    constexpr int subscribers = 64;
    constexpr uint64_t frames = 50;
    px_pool_t *pool = shm_pool(32, frame_len);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_BLOCK, 4);
    o.block_timeout_ns = 10 * second_ns;
    REQUIRE(px_publisher_new("crowd", &o, &pub) == PX_OK);
    Signal all_in;
    pid_t child = fork_child([&] {
        ::alarm(60);
        std::vector<px_subscriber_t *> subs(subscribers);
        for (auto &s : subs)
            if (px_subscriber_new("crowd", 20 * second_ns, &s) != PX_OK)
                return 2;
        px_subscriber_t *extra = nullptr;
        const px_status_t busy = px_subscriber_new("crowd", 20 * second_ns, &extra);
        if (busy != PX_E_BUSY || !std::strstr(px_last_error_message(), "full"))
            return 3;
        all_in.post();
        std::atomic<int> failures{0};
        std::vector<std::thread> threads;
        for (auto *s : subs)
            threads.emplace_back([&, s] {
                for (uint64_t seq = 1; seq <= frames; ++seq)
                    if (recv_seq(s, 20 * second_ns) != static_cast<int64_t>(seq))
                        ++failures;
                if (recv_seq(s, 20 * second_ns) != PX_E_CLOSED)
                    ++failures;
                px_subscriber_release(s);
            });
        for (auto &t : threads)
            t.join();
        return failures.load() == 0 ? 0 : 4;
    });
    // Admit them (and refuse the 65th) until the child says all are in.
    pollfd p{all_in.fds[0], POLLIN, 0};
    for (int i = 0; i < 3000 && ::poll(&p, 1, 0) == 0; ++i)
        px_publisher_poll(pub, 10'000'000);
    REQUIRE(all_in.wait() == 'x');
    CHECK(px_publisher_subscriber_count(pub) == subscribers);
    for (uint64_t seq = 1; seq <= frames; ++seq)
        REQUIRE(publish_frame(pub, pool, frame_len, seq) == PX_OK);
    px_publisher_release(pub);
    CHECK(wait_child(child) == 0);
    px_pool_release(pool);
}

TEST_CASE("spinning, sleeping and default subscribers all get every frame; a spinner still times out") {
    RuntimeDir dir;
    constexpr uint64_t frames = 2000;
    const int64_t spins[] = {0, -1, PX_CHANNEL_DEFAULT_SPIN_NS};
    px_pool_t *pool = shm_pool(32, 64);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_BLOCK);
    o.block_timeout_ns = 10 * second_ns; // nobody misses a frame here
    REQUIRE(px_publisher_new("spin", &o, &pub) == PX_OK);
    std::vector<pid_t> kids;
    for (int64_t spin : spins)
        kids.push_back(fork_child([spin] {
            ::alarm(30);
            px_subscriber_t *sub = nullptr;
            if (px_subscriber_new("spin", 10 * second_ns, &sub) != PX_OK)
                return 2;
            if (px_subscriber_set_spin_ns(sub, spin) != PX_OK)
                return 3;
            for (uint64_t seq = 1; seq <= frames; ++seq)
                if (recv_seq(sub, 10 * second_ns) != static_cast<int64_t>(seq))
                    return 4;
            // The publisher waits before its last frame: even a subscriber that never sleeps
            // answers a short timeout with PX_E_TIMEOUT, then gets the frame.
            if (recv_seq(sub, 2'000'000) != PX_E_TIMEOUT)
                return 5;
            if (recv_seq(sub, 10 * second_ns) != static_cast<int64_t>(frames + 1))
                return 6;
            if (recv_seq(sub, 10 * second_ns) != PX_E_CLOSED)
                return 7;
            px_subscriber_release(sub);
            return 0;
        }));
    REQUIRE(wait_for_subscribers(pub, kids.size()));
    for (uint64_t seq = 1; seq <= frames; ++seq) {
        REQUIRE(publish_frame(pub, pool, 64, seq) == PX_OK);
        if (seq % 97 == 0)
            usleep(200); // let the sleeping subscribers fall asleep now and then
    }
    usleep(300'000);
    REQUIRE(publish_frame(pub, pool, 64, frames + 1) == PX_OK);
    px_publisher_release(pub);
    for (pid_t k : kids)
        CHECK(wait_child(k) == 0);
    CHECK(px_subscriber_set_spin_ns(nullptr, 0) == PX_E_INVALID);
    CHECK(eventually([&] { return px_pool_available(pool) == px_pool_capacity(pool); }));
    px_pool_release(pool);
}

TEST_CASE("subscribers asleep on the stream's wake word are woken by each publish, not by the "
          "20 ms slice") {
    // Each subscriber sleeps at once (spin 0); a frame comes every 5 ms. A publish that left
    // them asleep would show as recvs of 20 ms (the slice after which a sleeper looks anyway).
    RuntimeDir dir;
    constexpr int subscribers = 3;
    constexpr uint64_t frames = 40;
    px_pool_t *pool = shm_pool(32, 64);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_BLOCK);
    o.block_timeout_ns = 10 * second_ns;
    REQUIRE(px_publisher_new("woken", &o, &pub) == PX_OK);
    std::vector<pid_t> kids;
    for (int i = 0; i < subscribers; ++i)
        kids.push_back(fork_child([] {
            ::alarm(30);
            px_subscriber_t *sub = nullptr;
            if (px_subscriber_new("woken", 10 * second_ns, &sub) != PX_OK ||
                px_subscriber_set_spin_ns(sub, 0) != PX_OK)
                return 2;
            int late = 0;
            for (uint64_t seq = 1; seq <= frames; ++seq) {
                const auto t0 = std::chrono::steady_clock::now();
                if (recv_seq(sub, 10 * second_ns) != static_cast<int64_t>(seq))
                    return 3;
                if (std::chrono::steady_clock::now() - t0 > std::chrono::milliseconds(14))
                    ++late;
            }
            px_subscriber_release(sub);
            // A loaded machine may be late now and then; a missing wake is late every time.
            return late <= 5 ? 0 : 4;
        }));
    REQUIRE(wait_for_subscribers(pub, kids.size()));
    for (uint64_t seq = 1; seq <= frames; ++seq) {
        usleep(5000); // every subscriber is asleep again by now
        REQUIRE(publish_frame(pub, pool, 64, seq) == PX_OK);
    }
    for (pid_t k : kids)
        CHECK(wait_child(k) == 0);
    px_publisher_release(pub);
    px_pool_release(pool);
}
