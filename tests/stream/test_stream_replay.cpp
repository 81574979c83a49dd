// SPDX-License-Identifier: Apache-2.0 OR MIT
// A late subscriber's history replay when the records between frames (a format record before a
// typed frame whose format changed, a description before a frame published under another one)
// would overrun its 256-entry ring: it joins with the latest history that fits and stays
// subscribed. And px_publisher_skip: gaps in the stream's numbering without a frame sent, which
// a subscriber in another process counts as missed.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "stream_support.hpp"

using namespace px_stream_test;

namespace {

constexpr size_t frame_len = 4096;
constexpr uint32_t credit = 128; // the largest max_in_flight, and as much history
constexpr uint64_t live = 8;     // frames published after the late subscriber drained

px_format_t make_format(uint32_t dtype, int64_t len) {
    px_format_t f;
    std::memset(&f, 0, sizeof f);
    f.dtype = dtype;
    f.ndim = 1;
    f.shape[0] = len;
    return f;
}

// Alternating formats: a format record before every frame.
px_format_t format_of(uint64_t seq) {
    return seq % 2 ? make_format(PX_DTYPE_U8, frame_len) : make_format(PX_DTYPE_I16, frame_len / 2);
}

std::string description_for(uint64_t seq) { return "frame " + std::to_string(seq); }

px_status_t publish_typed(px_publisher_t *pub, px_pool_t *pool, uint64_t seq) {
    px_buffer_t *b = make_frame(pool, frame_len, seq);
    if (!b)
        return PX_E_INTERNAL;
    const px_format_t f = format_of(seq);
    px_status_t rc = px_buffer_set_format(b, &f);
    if (rc == PX_OK)
        rc = px_publisher_publish(pub, b);
    px_buffer_release(b);
    return rc;
}

// A late subscriber: joins, receives history frames first..last_history then (after posting
// `drained` and being told `go`) the live ones up to last_history + live, each with its format
// (and, with `descriptions`, the description it was published under), nothing missed, then
// PX_E_CLOSED.
int receive_replay(Signal &drained, Signal &go, uint64_t first, uint64_t last_history,
                   bool descriptions) {
    ::alarm(30);
    px_subscriber_t *sub = nullptr;
    if (px_subscriber_new("replay", 10 * second_ns, &sub) != PX_OK)
        return 2;
    for (uint64_t seq = first; seq <= last_history + live; ++seq) {
        if (seq == last_history + 1) {
            drained.post();
            go.wait();
        }
        px_buffer_t *b = nullptr;
        const int64_t got = recv_seq(sub, 10 * second_ns, &b);
        if (got != static_cast<int64_t>(seq))
            return got == PX_E_CLOSED ? 3 : 4;
        px_format_t f;
        const px_format_t want = format_of(seq);
        const bool format_ok =
            px_buffer_format(b, &f) == PX_OK && std::memcmp(&f, &want, sizeof f) == 0;
        px_buffer_release(b);
        if (!format_ok)
            return 5;
        if (descriptions && description_of(sub) != description_for(seq))
            return 6;
    }
    px_subscriber_stats_t st;
    px_subscriber_get_stats(sub, &st);
    if (st.missed != 0 || st.received != last_history + live - first + 1)
        return 7;
    if (recv_seq(sub, 10 * second_ns) != PX_E_CLOSED)
        return 8;
    px_subscriber_release(sub);
    return 0;
}

// Publishes `credit` typed frames (each under a description of its own with `descriptions`)
// into a history of as many, then lets a subscriber in another process join: it must be
// admitted with the latest `replayed` of them, then receive live frames.
void late_subscriber_gets(bool descriptions, uint64_t replayed) {
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(credit + live + 16, frame_len);
    REQUIRE(pool);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_DROP, credit, credit);
    REQUIRE(px_publisher_new("replay", &o, &pub) == PX_OK);
    for (uint64_t seq = 1; seq <= credit; ++seq) {
        if (descriptions)
            REQUIRE(px_publisher_set_description(pub, description_for(seq).c_str()) == PX_OK);
        REQUIRE(publish_typed(pub, pool, seq) == PX_OK);
    }
    Signal drained, go;
    const uint64_t first = credit - replayed + 1;
    pid_t child =
        fork_child([&] { return receive_replay(drained, go, first, credit, descriptions); });
    // Not admitted (the old library: its ring overran during the replay) shows here.
    REQUIRE(wait_for_subscribers(pub, 1));
    REQUIRE(drained.wait() != 0); // the whole replay came, in order
    for (uint64_t seq = credit + 1; seq <= credit + live; ++seq) {
        if (descriptions)
            REQUIRE(px_publisher_set_description(pub, description_for(seq).c_str()) == PX_OK);
        REQUIRE(publish_typed(pub, pool, seq) == PX_OK);
    }
    go.post();
    px_publisher_stats_t st;
    REQUIRE(px_publisher_get_stats(pub, &st) == PX_OK);
    CHECK(st.joined == 1);
    CHECK(st.subscribers == 1);
    CHECK(st.dropped == 0);
    px_publisher_release(pub);
    CHECK(wait_child(child) == 0);
    CHECK(eventually([&] { return px_pool_available(pool) == px_pool_capacity(pool); }));
    px_pool_release(pool);
}

} // namespace

TEST_CASE("a history replay with a format record before every frame stays within the ring") {
    // The welcome and the wake page, then 127 frames with their format records: 256 entries;
    // 128 would be 258.
    late_subscriber_gets(false, 127);
}

TEST_CASE("a history replay with a description and a format before every frame fits too") {
    // The welcome and the wake page, then per frame a description, a format record and the
    // frame: 84 fit (254 entries; 85 would be 257).
    late_subscriber_gets(true, 84);
}

TEST_CASE("px_publisher_skip: each subscriber misses exactly the frames skipped") {
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(16, frame_len);
    REQUIRE(pool);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_BLOCK, 8);
    REQUIRE(px_publisher_new("skip", &o, &pub) == PX_OK);
    Signal joined, checked;
    pid_t child = fork_child([&] {
        ::alarm(30);
        px_subscriber_t *sub = nullptr;
        if (px_subscriber_new("skip", 10 * second_ns, &sub) != PX_OK)
            return 2;
        joined.post();
        // What each frame (user sequence 1..5) should find: missed after it.
        const uint64_t missed_after[] = {0, 0, 5, 5, 5};
        for (uint64_t seq = 1; seq <= 5; ++seq) {
            if (recv_seq(sub, 10 * second_ns) != static_cast<int64_t>(seq))
                return 3;
            px_subscriber_stats_t st;
            px_subscriber_get_stats(sub, &st);
            if (st.received != seq || st.missed != missed_after[seq - 1])
                return 10 + static_cast<int>(seq);
        }
        checked.post();
        if (recv_seq(sub, 10 * second_ns) != PX_E_CLOSED)
            return 4;
        px_subscriber_release(sub);
        return 0;
    });
    REQUIRE(wait_for_subscribers(pub, 1));
    REQUIRE(joined.wait() != 0);
    REQUIRE(publish_frame(pub, pool, frame_len, 1) == PX_OK);
    REQUIRE(publish_frame(pub, pool, frame_len, 2) == PX_OK);
    CHECK(px_publisher_skip(pub, 5) == PX_OK);
    REQUIRE(publish_frame(pub, pool, frame_len, 3) == PX_OK); // after a gap of 5
    CHECK(px_publisher_skip(pub, 0) == PX_OK);                // nothing
    REQUIRE(publish_frame(pub, pool, frame_len, 4) == PX_OK);
    // Past the end of the numbering: refused, and the numbering is as it was.
    CHECK(px_publisher_skip(pub, UINT64_MAX) == PX_E_INVALID);
    CHECK(std::string(px_last_error_message()).find("overflows") != std::string::npos);
    REQUIRE(publish_frame(pub, pool, frame_len, 5) == PX_OK);
    REQUIRE(checked.wait() != 0);
    // Nothing published and nobody short of room: no counter of the publisher's moved.
    px_publisher_stats_t st;
    REQUIRE(px_publisher_get_stats(pub, &st) == PX_OK);
    CHECK(st.published == 5);
    CHECK(st.dropped == 0);
    CHECK(st.subscribers == 1);
    CHECK(px_publisher_skip(nullptr, 1) == PX_E_INVALID);
    // To the very last number: the skip is taken, the publish after it is refused.
    CHECK(px_publisher_skip(pub, UINT64_MAX - 5 - 5) == PX_OK);
    CHECK(publish_frame(pub, pool, frame_len, 6) == PX_E_INVALID);
    px_publisher_release(pub);
    CHECK(wait_child(child) == 0);
    CHECK(eventually([&] { return px_pool_available(pool) == px_pool_capacity(pool); }));
    px_pool_release(pool);
}
