// SPDX-License-Identifier: Apache-2.0 OR MIT
// What publish does for a subscriber without credit: DROP (it misses the frame, counted on both
// sides), BLOCK (wait, then PX_E_TIMEOUT having delivered to the others), DISCONNECT. And the
// options' checks.
#include <doctest/doctest.h>

#include <atomic>

#include <thread>

#include "stream_support.hpp"

using namespace px_stream_test;

namespace {

constexpr size_t frame_len = 4096;

// A subscriber that takes `hold` frames and keeps them until told to go on, then releases
// them and receives one more frame; it posts 'h' once it holds them. Exit code 0 when the last
// frame is `then_seq`, its stats say `missed`, and what it held stayed intact.
int slow_subscriber(Signal &holding, Signal &go, uint64_t hold, int64_t then_seq,
                    uint64_t missed) {
    ::alarm(20);
    px_subscriber_t *sub = nullptr;
    if (px_subscriber_new("cam", 10 * second_ns, &sub) != PX_OK)
        return 2;
    std::vector<px_buffer_t *> held(hold);
    for (uint64_t i = 0; i < hold; ++i)
        if (recv_seq(sub, 10 * second_ns, &held[i]) != static_cast<int64_t>(i + 1))
            return 3;
    holding.post('h');
    if (go.wait() == 0)
        return 4;
    for (uint64_t i = 0; i < hold; ++i) {
        if (!frame_ok(held[i], frame_len, i + 1))
            return 5;
        px_buffer_release(held[i]);
    }
    // then_seq < 0: a status expected instead of a frame.
    const int64_t got = recv_seq(sub, 10 * second_ns);
    if (got != then_seq)
        return got == PX_E_CLOSED ? 6 : 7;
    px_subscriber_stats_t st;
    px_subscriber_get_stats(sub, &st);
    if (st.missed != missed || st.received != hold + (then_seq > 0 ? 1 : 0))
        return 8;
    px_subscriber_release(sub);
    return 0;
}

// A subscriber that receives frames 1..last at once and posts 'r' after each.
int fast_subscriber(Signal &each, uint64_t last) {
    ::alarm(20);
    px_subscriber_t *sub = nullptr;
    if (px_subscriber_new("cam", 10 * second_ns, &sub) != PX_OK)
        return 2;
    for (uint64_t seq = 1; seq <= last; ++seq) {
        if (recv_seq(sub, 10 * second_ns) != static_cast<int64_t>(seq))
            return 3;
        each.post('r');
    }
    px_subscriber_release(sub);
    return 0;
}

} // namespace

TEST_CASE("DROP: a subscriber without credit misses frames, counted on both sides; others not") {
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(16, frame_len);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_DROP, 2);
    REQUIRE(px_publisher_new("cam", &o, &pub) == PX_OK);
    Signal holding, go, each;
    // The slow one holds frames 1 and 2, misses 3..10, then gets 11: 8 missed.
    pid_t slow = fork_child([&] { return slow_subscriber(holding, go, 2, 11, 8); });
    pid_t fast = fork_child([&] { return fast_subscriber(each, 11); });
    REQUIRE(wait_for_subscribers(pub, 2));
    for (uint64_t seq = 1; seq <= 10; ++seq) {
        const auto t0 = std::chrono::steady_clock::now();
        REQUIRE(publish_frame(pub, pool, frame_len, seq) == PX_OK);
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(50));
        REQUIRE(each.wait() == 'r'); // the fast one keeps up (so only the slow one drops)
    }
    REQUIRE(holding.wait() == 'h');
    px_publisher_stats_t st;
    REQUIRE(px_publisher_get_stats(pub, &st) == PX_OK);
    CHECK(st.dropped == 8);
    CHECK(st.slots_lent == 2); // what the slow one holds
    go.post();
    // Its credit comes back as it releases: frame 11 reaches both.
    REQUIRE(eventually([&] {
        px_publisher_get_stats(pub, &st);
        return st.slots_lent == 0;
    }));
    REQUIRE(publish_frame(pub, pool, frame_len, 11) == PX_OK);
    CHECK(wait_child(slow) == 0);
    CHECK(wait_child(fast) == 0);
    REQUIRE(px_publisher_get_stats(pub, &st) == PX_OK);
    CHECK(st.dropped == 8);
    px_publisher_release(pub);
    px_pool_release(pool);
}

TEST_CASE("BLOCK: publish waits for room, then PX_E_TIMEOUT having delivered to the others") {
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(16, frame_len);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_BLOCK, 1);
    o.block_timeout_ns = 200'000'000;
    REQUIRE(px_publisher_new("cam", &o, &pub) == PX_OK);
    Signal holding, go, each;
    // The slow one holds frame 1; frame 2 times out for it; it gets 3 once it has room.
    pid_t slow = fork_child([&] { return slow_subscriber(holding, go, 1, 3, 1); });
    pid_t fast = fork_child([&] { return fast_subscriber(each, 3); });
    REQUIRE(wait_for_subscribers(pub, 2));
    REQUIRE(publish_frame(pub, pool, frame_len, 1) == PX_OK);
    REQUIRE(each.wait() == 'r');
    REQUIRE(holding.wait() == 'h');
    auto t0 = std::chrono::steady_clock::now();
    CHECK(publish_frame(pub, pool, frame_len, 2) == PX_E_TIMEOUT);
    const auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(waited >= std::chrono::milliseconds(200));
    CHECK(waited < std::chrono::milliseconds(1000));
    CHECK(std::strstr(px_last_error_message(), "1 of 2 subscribers had no room") != nullptr);
    REQUIRE(each.wait() == 'r'); // the fast one got frame 2 all the same
    // Room that comes back during the wait lets publish finish: the slow one releases 50 ms in.
    // (Whether publish waited is told by the order of events, not by a clock: on a loaded VM a
    // thread's sleep says little about when the main thread looks.)
    std::atomic<bool> released{false};
    std::thread release_soon([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        released = true;
        go.post();
    });
    CHECK(publish_frame(pub, pool, frame_len, 3) == PX_OK);
    CHECK(released); // it returned only once the slow one had room again
    release_soon.join();
    CHECK(wait_child(slow) == 0);
    CHECK(wait_child(fast) == 0);
    px_publisher_stats_t st;
    REQUIRE(px_publisher_get_stats(pub, &st) == PX_OK);
    CHECK(st.dropped == 1);
    CHECK(st.published == 3);
    px_publisher_release(pub);
    px_pool_release(pool);
}

TEST_CASE("DISCONNECT: a subscriber without credit is dropped; it drains, then PX_E_CLOSED") {
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(16, frame_len);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_DISCONNECT, 1);
    REQUIRE(px_publisher_new("cam", &o, &pub) == PX_OK);
    Signal holding, go, each;
    // The slow one holds frame 1, is dropped at frame 2: after releasing, it finds the end.
    pid_t slow = fork_child([&] { return slow_subscriber(holding, go, 1, PX_E_CLOSED, 0); });
    pid_t fast = fork_child([&] { return fast_subscriber(each, 2); });
    REQUIRE(wait_for_subscribers(pub, 2));
    REQUIRE(publish_frame(pub, pool, frame_len, 1) == PX_OK);
    REQUIRE(each.wait() == 'r');
    REQUIRE(holding.wait() == 'h');
    REQUIRE(publish_frame(pub, pool, frame_len, 2) == PX_OK);
    REQUIRE(each.wait() == 'r');
    px_publisher_stats_t st;
    REQUIRE(px_publisher_get_stats(pub, &st) == PX_OK);
    CHECK(st.disconnected_slow == 1);
    CHECK(st.departed == 1);
    CHECK(st.subscribers == 1);
    CHECK(px_publisher_subscriber_count(pub) == 1);
    go.post();
    CHECK(wait_child(slow) == 0);
    CHECK(wait_child(fast) == 0);
    // Its frame came back to the pool when it released it, though it was disconnected.
    CHECK(eventually([&] { return px_pool_available(pool) == px_pool_capacity(pool); }));
    px_publisher_release(pub);
    px_pool_release(pool);
}

TEST_CASE("publisher options: out-of-range fields are PX_E_INVALID naming the field") {
    RuntimeDir dir;
    px_publisher_t *pub = nullptr;
    auto refused = [&](px_publisher_options_t o, const char *field) {
        CAPTURE(field);
        CHECK(px_publisher_new("cam", &o, &pub) == PX_E_INVALID);
        CHECK(std::strstr(px_last_error_message(), field) != nullptr);
        CHECK(pub == nullptr);
    };
    px_publisher_options_t o = options();
    CHECK(o.struct_size == sizeof o);
    CHECK(o.slow_policy == PX_SLOW_DROP);
    CHECK(o.max_subscribers == 64);
    CHECK(o.max_in_flight == 8);
    CHECK(o.history == 0);
    CHECK(o.block_timeout_ns == second_ns);
    o.slow_policy = 3;
    refused(o, "slow_policy 3");
    o = options(PX_SLOW_DROP, 0);
    refused(o, "max_in_flight 0");
    o = options(PX_SLOW_DROP, 129);
    refused(o, "max_in_flight 129");
    o = options(PX_SLOW_DROP, 8, 1025);
    refused(o, "history 1025");
    o = options();
    o.max_subscribers = 0;
    refused(o, "max_subscribers 0");
    o = options();
    o.reserved = 1;
    refused(o, "reserved");
    o = options();
    o.struct_size = 2;
    refused(o, "struct_size");
    // A newer caller's larger struct: zero bytes beyond ours are defaults, others refused.
    struct Newer {
        px_publisher_options_t base;
        uint64_t future;
    } newer{};
    px_publisher_options_init(&newer.base);
    newer.base.struct_size = sizeof newer;
    CHECK(px_publisher_new("cam", &newer.base, &pub) == PX_OK);
    px_publisher_release(pub);
    pub = nullptr;
    newer.future = 1;
    CHECK(px_publisher_new("cam", &newer.base, &pub) == PX_E_INVALID);
    CHECK(std::strstr(px_last_error_message(), "beyond the fields") != nullptr);
    // An older caller's smaller struct: the fields it does not cover are defaults (here an
    // out-of-range max_in_flight beyond struct_size is never read).
    o = options(PX_SLOW_BLOCK, 0);
    o.struct_size = offsetof(px_publisher_options_t, max_in_flight);
    CHECK(px_publisher_new("cam", &o, &pub) == PX_OK);
    px_publisher_release(pub);
    CHECK(px_publisher_new("cam", nullptr, nullptr) == PX_E_INVALID);
    px_publisher_options_init(nullptr); // does nothing
}

TEST_CASE("bad handles and buffers are errors, never crashes") {
    RuntimeDir dir;
    px_publisher_t *pub = nullptr;
    REQUIRE(px_publisher_new("cam", nullptr, &pub) == PX_OK);
    CHECK(px_publisher_publish(pub, nullptr) == PX_E_INVALID);
    CHECK(px_publisher_publish(nullptr, nullptr) == PX_E_INVALID);
    px_segment_t *heap = nullptr;
    REQUIRE(px_segment_heap_new(4096, &heap) == PX_OK);
    px_buffer_t *b = nullptr;
    REQUIRE(px_buffer_from_segment(heap, nullptr, &b) == PX_OK);
    CHECK(px_publisher_publish(pub, b) == PX_E_UNSUPPORTED);
    px_buffer_release(b);
    px_segment_release(heap);
    CHECK(px_publisher_poll(pub, 0) == PX_E_WOULD_BLOCK);
    CHECK(px_publisher_poll(pub, 20'000'000) == PX_E_TIMEOUT);
    CHECK(px_publisher_poll(nullptr, 0) == PX_E_INVALID);
    CHECK(px_publisher_fd(nullptr) == -1);
    CHECK(px_publisher_fd(pub) >= 0);
    CHECK(px_publisher_subscriber_count(nullptr) == 0);
    px_publisher_stats_t st;
    CHECK(px_publisher_get_stats(nullptr, &st) == PX_E_INVALID);
    CHECK(px_publisher_get_stats(pub, nullptr) == PX_E_INVALID);
    px_subscriber_t *sub = nullptr;
    CHECK(px_subscriber_new("cam", 0, nullptr) == PX_E_INVALID);
    CHECK(px_subscriber_new("nobody", 0, &sub) == PX_E_WOULD_BLOCK);
    CHECK(px_subscriber_new("nobody", 50'000'000, &sub) == PX_E_TIMEOUT);
    CHECK(std::strstr(px_last_error_message(), "no publisher of \"nobody\"") != nullptr);
    CHECK(sub == nullptr);
    CHECK(px_subscriber_recv(nullptr, 0, &b) == PX_E_INVALID);
    CHECK(px_subscriber_fd(nullptr) == -1);
    px_subscriber_stats_t sst;
    CHECK(px_subscriber_get_stats(nullptr, &sst) == PX_E_INVALID);
    size_t len = 0;
    CHECK(px_subscriber_description(nullptr, nullptr, 0, &len) == PX_E_INVALID);
    px_subscriber_release(nullptr);
    px_publisher_release(nullptr);
    px_publisher_release(pub);
}
