// SPDX-License-Identifier: Apache-2.0 OR MIT
// px_stream_subscribers: each subscriber of a live publisher, read from another process the way
// `parallax info` does (pid, in flight, delivered, dropped), and its bad input.
#include <doctest/doctest.h>
#include <set>

#include "stream_support.hpp"

using namespace px_stream_test;

namespace {

constexpr size_t frame_len = 4096;

// The table as `parallax info` reads it (from the page, not the publisher object), or an empty
// vector on failure.
std::vector<px_stream_subscriber_info_t> table_of(const char *name) {
    size_t count = 0;
    if (px_stream_subscribers(name, second_ns, nullptr, 0, &count) != PX_OK)
        return {};
    std::vector<px_stream_subscriber_info_t> rows(count);
    if (px_stream_subscribers(name, second_ns, rows.data(), rows.size(), &count) != PX_OK ||
        count != rows.size())
        return {};
    return rows;
}

// A subscriber that holds the first `hold` frames it gets until `go` is posted, then receives
// up to frame `last` and exits with its missed count (or 100 + a failure).
int holding_subscriber(const char *name, int hold, uint64_t last, Signal &go) {
    ::alarm(30);
    px_subscriber_t *sub = nullptr;
    if (px_subscriber_new(name, 10 * second_ns, &sub) != PX_OK)
        return 101;
    std::vector<px_buffer_t *> held;
    for (int i = 0; i < hold; ++i) {
        px_buffer_t *b = nullptr;
        if (recv_seq(sub, 10 * second_ns, &b) < 0)
            return 102;
        held.push_back(b);
    }
    if (go.wait() != 'g')
        return 103;
    for (px_buffer_t *b : held)
        px_buffer_release(b);
    int64_t seq = 0;
    while (seq >= 0 && static_cast<uint64_t>(seq) < last)
        seq = recv_seq(sub, 10 * second_ns);
    if (seq < 0)
        return 104;
    px_subscriber_stats_t st{};
    px_subscriber_get_stats(sub, &st);
    px_subscriber_release(sub);
    return static_cast<int>(st.missed);
}

} // namespace

TEST_CASE("px_stream_subscribers refuses bad arguments and names a missing stream") {
    RuntimeDir dir;
    px_stream_subscriber_info_t row{};
    size_t count = 7;
    CHECK(px_stream_subscribers("cam", 0, &row, 1, nullptr) == PX_E_INVALID);
    CHECK(std::string(px_last_error_message()).find("count is NULL") != std::string::npos);
    CHECK(px_stream_subscribers("cam", 0, nullptr, 1, &count) == PX_E_INVALID);
    CHECK(std::string(px_last_error_message()).find("cap is 1") != std::string::npos);
    CHECK(px_stream_subscribers(nullptr, 0, nullptr, 0, &count) == PX_E_INVALID);
    CHECK(px_stream_subscribers("bad name", 0, nullptr, 0, &count) == PX_E_INVALID);
    CHECK(px_stream_subscribers("cam", 0, nullptr, 0, &count) == PX_E_CLOSED);
    CHECK(count == 0); // cleared, never left stale
}

TEST_CASE("px_stream_subscribers: each subscriber's pid, what it holds, what it was sent") {
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(16, frame_len);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_BLOCK);
    REQUIRE(px_publisher_new("cam", &o, &pub) == PX_OK);
    Signal go;
    // One at a time, so that the table's order (the order they joined) is known.
    pid_t holder = fork_child([&] { return holding_subscriber("cam", 3, 5, go); });
    REQUIRE(wait_for_subscribers(pub, 1));
    pid_t waiter = fork_child([&] { return holding_subscriber("cam", 0, 5, go); });
    REQUIRE(wait_for_subscribers(pub, 2));
    for (uint64_t seq = 1; seq <= 4; ++seq)
        REQUIRE(publish_frame(pub, pool, frame_len, seq) == PX_OK);
    // Nothing comes back before "go": the holder keeps 3 frames and has the fourth queued, the
    // waiter has all four queued; the page says so as of the last publish.
    const auto rows = table_of("cam");
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].pid == static_cast<uint64_t>(holder));
    CHECK(rows[1].pid == static_cast<uint64_t>(waiter));
    for (const auto &r : rows) {
        CHECK(r.in_flight == 4);
        CHECK(r.delivered == 4);
        CHECK(r.dropped == 0);
    }
    // A smaller array gets the first rows and the true count.
    px_stream_subscriber_info_t one{};
    size_t count = 0;
    REQUIRE(px_stream_subscribers("cam", second_ns, &one, 1, &count) == PX_OK);
    CHECK(count == 2);
    CHECK(one.pid == static_cast<uint64_t>(holder));
    go.post('g');
    go.post('g');
    REQUIRE(publish_frame(pub, pool, frame_len, 5) == PX_OK);
    CHECK(wait_child(holder) == 0);
    CHECK(wait_child(waiter) == 0);
    // Departed subscribers leave the table at the next housekeeping.
    CHECK(eventually([&] {
        px_publisher_poll(pub, 10'000'000);
        size_t n = 99;
        return px_stream_subscribers("cam", second_ns, nullptr, 0, &n) == PX_OK && n == 0;
    }));
    px_publisher_release(pub);
    px_pool_release(pool);
}

TEST_CASE("px_stream_subscribers: a subscriber's dropped frames are the missed it counts") {
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(16, frame_len);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_DROP, 1); // credit for one frame
    REQUIRE(px_publisher_new("cam", &o, &pub) == PX_OK);
    Signal go;
    // It holds frame 1, so frames 2..6 find no room and are dropped for it.
    pid_t slow = fork_child([&] { return holding_subscriber("cam", 1, 7, go); });
    REQUIRE(wait_for_subscribers(pub, 1));
    for (uint64_t seq = 1; seq <= 6; ++seq)
        REQUIRE(publish_frame(pub, pool, frame_len, seq) == PX_OK);
    px_publisher_stats_t st{};
    REQUIRE(px_publisher_get_stats(pub, &st) == PX_OK); // brings the page up to date
    const auto rows = table_of("cam");
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].pid == static_cast<uint64_t>(slow));
    CHECK(rows[0].delivered == 1);
    CHECK(rows[0].dropped == 5);
    CHECK(rows[0].in_flight == 1);
    CHECK(st.dropped == 5);
    go.post('g');
    // Frame 7 goes once the first comes back; the subscriber then counts 5 missed.
    REQUIRE(eventually([&] {
        px_publisher_get_stats(pub, &st);
        return st.slots_lent == 0;
    }));
    REQUIRE(publish_frame(pub, pool, frame_len, 7) == PX_OK);
    CHECK(wait_child(slow) == 5);
    px_publisher_release(pub);
    px_pool_release(pool);
}
