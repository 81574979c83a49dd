// SPDX-License-Identifier: Apache-2.0 OR MIT
// Typed frames over streams (issue 15): a publisher sends through channels, so each frame
// carries its format to every subscriber, history replayed to a late one included, while the
// description records stay untyped. And the credit: a subscriber's max_in_flight (at most 128)
// leaves room in its 256-entry ring for a format record before every frame it may have queued.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "stream_support.hpp"

using namespace px_stream_test;

namespace {

constexpr size_t frame_len = 4096;

px_format_t make_format(uint32_t dtype, std::initializer_list<int64_t> shape) {
    px_format_t f;
    std::memset(&f, 0, sizeof f);
    f.dtype = dtype;
    for (int64_t s : shape)
        f.shape[f.ndim++] = s;
    return f;
}

const px_format_t fmt_a = make_format(PX_DTYPE_U8, {32, 32, 4});
const px_format_t fmt_b = make_format(PX_DTYPE_F32, {1024});
const px_format_t fmt_c = make_format(PX_DTYPE_I16, {2, 1000});
const px_format_t none = make_format(0, {});

// The format of stream frame `seq` in the history test (ndim 0: untyped).
px_format_t format_of(uint64_t seq) {
    switch (seq) {
    case 1:
    case 2:
    case 5:
    case 7:
        return fmt_a;
    case 3:
    case 6:
        return fmt_b;
    case 9:
        return fmt_c;
    default:
        return none; // 4 and 8
    }
}

px_status_t publish_typed(px_publisher_t *pub, px_pool_t *pool, uint64_t seq,
                          const px_format_t &f) {
    px_buffer_t *b = make_frame(pool, frame_len, seq);
    if (!b)
        return PX_E_INTERNAL;
    px_status_t rc = f.ndim ? px_buffer_set_format(b, &f) : PX_OK;
    if (rc == PX_OK)
        rc = px_publisher_publish(pub, b);
    px_buffer_release(b);
    return rc;
}

// A subscriber process: joins, posts `joined`, receives frames first..last each with its format
// (format_of), read-only, then PX_E_CLOSED.
int receive_typed(Signal &joined, uint64_t first, uint64_t last) {
    ::alarm(20);
    px_subscriber_t *sub = nullptr;
    if (px_subscriber_new("typed", 10 * second_ns, &sub) != PX_OK)
        return 2;
    joined.post();
    for (uint64_t seq = first; seq <= last; ++seq) {
        px_buffer_t *b = nullptr;
        if (recv_seq(sub, 10 * second_ns, &b) != static_cast<int64_t>(seq))
            return 3;
        px_format_t got;
        const px_format_t want = format_of(seq);
        const bool ok = px_buffer_format(b, &got) == PX_OK &&
                        std::memcmp(&got, &want, sizeof got) == 0 &&
                        px_buffer_mut_ptr(b) == nullptr;
        px_buffer_release(b);
        if (!ok)
            return 10 + static_cast<int>(seq);
    }
    if (recv_seq(sub, 10 * second_ns) != PX_E_CLOSED)
        return 4;
    px_subscriber_release(sub);
    return 0;
}

} // namespace

TEST_CASE("typed frames reach every subscriber with their formats, history replay included") {
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(16, frame_len);
    REQUIRE(pool);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_BLOCK, 8, 4);
    REQUIRE(px_publisher_new("typed", &o, &pub) == PX_OK);
    // An early subscriber sees every frame; a late one gets 3..6 from the history (published
    // before it joined, under a description change), then the live ones.
    Signal early_joined, late_joined;
    pid_t early = fork_child([&] { return receive_typed(early_joined, 1, 9); });
    REQUIRE(wait_for_subscribers(pub, 1)); // admitted inside poll: then it has joined
    REQUIRE(early_joined.wait() != 0);
    for (uint64_t seq = 1; seq <= 6; ++seq) {
        REQUIRE(publish_typed(pub, pool, seq, format_of(seq)) == PX_OK);
        if (seq == 4) // an untyped description record between typed frames
            REQUIRE(px_publisher_set_description(pub, "caps=x") == PX_OK);
    }
    pid_t late = fork_child([&] { return receive_typed(late_joined, 3, 9); });
    REQUIRE(wait_for_subscribers(pub, 2));
    REQUIRE(late_joined.wait() != 0);
    for (uint64_t seq = 7; seq <= 9; ++seq)
        REQUIRE(publish_typed(pub, pool, seq, format_of(seq)) == PX_OK);
    px_publisher_release(pub);
    CHECK(wait_child(early) == 0);
    CHECK(wait_child(late) == 0);
    CHECK(eventually([&] { return px_pool_available(pool) == px_pool_capacity(pool); }));
    px_pool_release(pool);
}

TEST_CASE("a new format on every frame: a subscriber's whole credit still fits its ring") {
    RuntimeDir dir;
    constexpr uint32_t credit = 128; // the largest max_in_flight
    px_pool_t *pool = shm_pool(credit + 4, frame_len);
    REQUIRE(pool);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_DROP, credit);
    REQUIRE(px_publisher_new("typed", &o, &pub) == PX_OK);
    Signal joined, go;
    pid_t child = fork_child([&] {
        ::alarm(20);
        px_subscriber_t *sub = nullptr;
        if (px_subscriber_new("typed", 10 * second_ns, &sub) != PX_OK)
            return 2;
        joined.post();
        go.wait(); // nothing read while the publisher fills this subscriber's credit
        for (uint64_t seq = 1; seq <= credit; ++seq) {
            px_buffer_t *b = nullptr;
            if (recv_seq(sub, 10 * second_ns, &b) != static_cast<int64_t>(seq))
                return 3;
            px_format_t got;
            const px_format_t &want = seq % 2 ? fmt_a : fmt_b;
            const bool ok =
                px_buffer_format(b, &got) == PX_OK && std::memcmp(&got, &want, sizeof got) == 0;
            px_buffer_release(b);
            if (!ok)
                return 4;
        }
        px_subscriber_stats_t st;
        px_subscriber_get_stats(sub, &st);
        px_subscriber_release(sub);
        return st.missed == 0 ? 0 : 5;
    });
    REQUIRE(wait_for_subscribers(pub, 1));
    REQUIRE(joined.wait() != 0); // it took its welcome: its ring is empty
    // 128 frames, each with a format record before it: 256 ring entries, none dropped.
    for (uint64_t seq = 1; seq <= credit; ++seq)
        REQUIRE(publish_typed(pub, pool, seq, seq % 2 ? fmt_a : fmt_b) == PX_OK);
    px_publisher_stats_t st;
    REQUIRE(px_publisher_get_stats(pub, &st) == PX_OK);
    CHECK(st.dropped == 0);
    // The credit is what runs out, not the ring: the next frame is dropped for it (DROP).
    REQUIRE(publish_typed(pub, pool, credit + 1, fmt_a) == PX_OK);
    REQUIRE(px_publisher_get_stats(pub, &st) == PX_OK);
    CHECK(st.dropped == 1);
    go.post();
    CHECK(wait_child(child) == 0);
    px_publisher_release(pub);
    CHECK(eventually([&] { return px_pool_available(pool) == px_pool_capacity(pool); }));
    px_pool_release(pool);
}
