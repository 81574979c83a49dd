// SPDX-License-Identifier: Apache-2.0 OR MIT
// The C++ wrapper's streams: parallax::Publisher and parallax::Subscriber with subscribers in
// forked processes (start order, range-for to the end of the stream, history, description,
// each slow policy, a subscriber killed, the publisher gone), stats and the list from another
// process, polling, moves, bad input.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "parallax/parallax.hpp"
#include "stream/stream_support.hpp"

using namespace std::chrono_literals;
namespace px = parallax;
using px_stream_test::RuntimeDir;
using px_test::eventually;
using px_test::fork_child;
using px_test::Signal;
using px_test::wait_child;

namespace {

constexpr size_t frame_len = 4096;

template <class F> px::Error expect_error(F &&f, px::Status status) {
    try {
        f();
    } catch (const px::Error &e) {
        CHECK_MESSAGE(e.status() == status, e.what());
        return e;
    }
    FAIL("no parallax::Error thrown; expected " << std::string(px::status_name(status)));
    return px::Error(PX_E_INTERNAL, "unreachable");
}

px::Pool shm_pool(size_t slots) { return px::Pool(px::Segment::shm(slots * frame_len), frame_len); }

// Frame `seq` (the IPC tests' bytes and metadata, px_test::fill_frame).
px::Buffer frame(px::Pool &pool, uint64_t seq) {
    px::Slot s = pool.loan(10s);
    const px::Metadata m = px_test::fill_frame(s.data(), frame_len, seq);
    return std::move(s).into_buffer(frame_len, m);
}

void publish(px::Publisher &pub, px::Pool &pool, uint64_t first, uint64_t last) {
    for (uint64_t seq = first; seq <= last; ++seq)
        pub.publish(frame(pool, seq));
}

// The frame's user sequence, or -1 when its bytes, metadata or read-only-ness are wrong.
int64_t checked_seq(const px::Buffer &b) {
    const uint64_t seq = b.metadata().sequence;
    if (!b.is_readonly() || !px_test::frame_ok(b.get(), frame_len, seq))
        return -1;
    return static_cast<int64_t>(seq);
}

px::PublisherOptions options(px::SlowPolicy policy, uint32_t in_flight = 8, uint32_t history = 0) {
    px::PublisherOptions o;
    o.set_policy(policy).set_block_timeout(10s); // under BLOCK nobody misses a frame by default
    o.max_in_flight = in_flight;
    o.history = history;
    return o;
}

// Polls (where subscribers are admitted) until `n` are in.
bool wait_for_subscribers(px::Publisher &pub, size_t n) {
    return eventually(
        [&] {
            pub.poll(10ms);
            return pub.subscriber_count() == n;
        },
        5000ms);
}

bool all_back(const px::Pool &pool) {
    return eventually([&] { return pool.available() == pool.capacity(); }, 10000ms);
}

// A subscriber process: joins `name`, posts `joined`, takes frames first..last in order with a
// range-for that must end with the stream; nothing missed. The exit code says what went wrong.
int receive_all(const std::string &name, uint64_t first, uint64_t last, Signal *joined) {
    ::alarm(20);
    px::Subscriber sub(name, 10s);
    if (joined)
        joined->post();
    uint64_t expected = first;
    for (px::Buffer &f : sub) {
        if (checked_seq(f) != static_cast<int64_t>(expected))
            return 3;
        ++expected;
    }
    if (expected != last + 1)
        return 4;
    const px_subscriber_stats_t s = sub.stats();
    if (s.received != last - first + 1 || s.missed != 0 ||
        s.publisher_pid != static_cast<uint64_t>(::getppid()))
        return 5;
    return 0;
}

// A subscriber that joins, posts `joined`, waits for `go`, then takes every frame (releasing
// each, or holding all with `keep`) until the end; exits 0 when the sequences it got and its
// missed count are the expected ones.
int lagging(const std::string &name, Signal &joined, Signal &go, std::vector<int64_t> expected,
            uint64_t expected_missed, bool keep) {
    ::alarm(20);
    px::Subscriber sub(name, 10s);
    sub.set_spin(-1ns); // never sleeps in next(): still answers within its timeout
    joined.post();
    if (go.wait() != 'x')
        return 2;
    std::vector<int64_t> got;
    std::vector<px::Buffer> held;
    while (std::optional<px::Buffer> f = sub.next(10s)) {
        got.push_back(checked_seq(*f));
        if (keep)
            held.push_back(std::move(*f));
    }
    for (const px::Buffer &b : held) // still mapped and intact after the publisher has gone
        if (checked_seq(b) < 0)
            return 3;
    if (got != expected)
        return 4;
    return sub.stats().missed == expected_missed ? 0 : 5;
}

} // namespace

TEST_CASE("C++ streams: subscribers before and after the publisher get every frame, then the end") {
    RuntimeDir dir;
    Signal joined;
    const pid_t early = fork_child([&] { return receive_all("cam", 1, 30, &joined); });
    std::this_thread::sleep_for(100ms);
    px::Pool pool = shm_pool(16);
    std::optional<px::Publisher> pub(std::in_place, "cam", options(px::SlowPolicy::block));
    const pid_t late = fork_child([] { return receive_all("cam", 1, 30, nullptr); });
    REQUIRE(wait_for_subscribers(*pub, 2));
    REQUIRE(joined.wait() == 'x');
    publish(*pub, pool, 1, 30);
    const px_publisher_stats_t s = pub->stats();
    CHECK(s.published == 30);
    CHECK(s.joined == 2);
    CHECK(s.dropped == 0);
    CHECK(px::stream_stats("cam", 1s).published == 30);
    pub.reset(); // the end of the stream
    CHECK(wait_child(early) == 0);
    CHECK(wait_child(late) == 0);
    CHECK(all_back(pool));
}

TEST_CASE("C++ streams: a late subscriber gets the history first, then live frames") {
    RuntimeDir dir;
    px::Pool pool = shm_pool(16);
    std::optional<px::Publisher> pub(std::in_place, "cam", options(px::SlowPolicy::block, 8, 4));
    publish(*pub, pool, 1, 10); // nobody listens; the 4 latest stay held for joiners
    CHECK(pool.available() == pool.capacity() - 4);
    const pid_t child = fork_child([] { return receive_all("cam", 7, 12, nullptr); });
    REQUIRE(wait_for_subscribers(*pub, 1));
    publish(*pub, pool, 11, 12);
    pub.reset();
    CHECK(wait_child(child) == 0);
    CHECK(all_back(pool));
}

TEST_CASE("C++ streams: the description at join and in order with frames, any length") {
    RuntimeDir dir;
    px::Pool pool = shm_pool(8);
    px::Publisher pub("cam", options(px::SlowPolicy::block));
    pub.set_description("caps=A");
    Signal joined;
    const std::string long_text(10000, 'x'); // longer than the wrapper's first read
    const pid_t child = fork_child([&] {
        ::alarm(20);
        px::Subscriber sub("cam", 10s);
        if (sub.description() != "caps=A")
            return 2;
        joined.post();
        const std::string expected[] = {"caps=A", "caps=B", "", long_text};
        for (uint64_t seq = 1; seq <= 4; ++seq) {
            if (checked_seq(sub.recv(10s)) != static_cast<int64_t>(seq))
                return 3;
            if (sub.description() != expected[seq - 1])
                return 10 + static_cast<int>(seq);
        }
        return 0;
    });
    REQUIRE(wait_for_subscribers(pub, 1));
    REQUIRE(joined.wait() == 'x');
    publish(pub, pool, 1, 1);
    pub.set_description("caps=B");
    publish(pub, pool, 2, 2);
    pub.set_description("");
    publish(pub, pool, 3, 3);
    pub.set_description(long_text);
    publish(pub, pool, 4, 4);
    CHECK(wait_child(child) == 0);
    // Bad text: a NUL inside is refused by the wrapper, more than 64 KiB by the library.
    const px::Error nul = expect_error([&] { pub.set_description(std::string("a\0b", 3)); },
                                       px::Status::invalid);
    CHECK(nul.message().find("NUL byte at 1") != std::string::npos);
    const px::Error big = expect_error(
        [&] { pub.set_description(std::string(64 * 1024 + 1, 'x')); }, px::Status::invalid);
    CHECK(big.message().find("longer than 65536") != std::string::npos);
}

TEST_CASE("C++ streams: DROP skips a lagging subscriber, counted on both sides") {
    RuntimeDir dir;
    px::Pool pool = shm_pool(8);
    std::optional<px::Publisher> pub(std::in_place, "cam", options(px::SlowPolicy::drop, 2));
    Signal joined, go;
    const pid_t child =
        fork_child([&] { return lagging("cam", joined, go, {1, 2, 11}, 8, false); });
    REQUIRE(wait_for_subscribers(*pub, 1));
    REQUIRE(joined.wait() == 'x');
    const auto t0 = std::chrono::steady_clock::now();
    publish(*pub, pool, 1, 10); // room for two: 3..10 dropped, never waited for
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
    CHECK(pub->stats().dropped == 8);
    const std::vector<px_stream_subscriber_info_t> rows = px::stream_subscribers("cam", 1s);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].pid == static_cast<uint64_t>(child));
    CHECK(rows[0].in_flight == 2);
    CHECK(rows[0].delivered == 2);
    CHECK(rows[0].dropped == 8);
    go.post();
    REQUIRE(all_back(pool)); // it took 1 and 2 and released them
    publish(*pub, pool, 11, 11);
    pub.reset();
    CHECK(wait_child(child) == 0);
}

TEST_CASE("C++ streams: BLOCK waits for room, then throws timeout; DISCONNECT drops the slow one") {
    RuntimeDir dir;
    px::Pool pool = shm_pool(8);
    SUBCASE("block") {
        px::PublisherOptions o = options(px::SlowPolicy::block, 1);
        o.set_block_timeout(100ms);
        CHECK(o.policy() == px::SlowPolicy::block);
        CHECK(o.block_timeout_ns == 100'000'000);
        std::optional<px::Publisher> pub(std::in_place, "cam", o);
        Signal joined, go;
        const pid_t child =
            fork_child([&] { return lagging("cam", joined, go, {1, 3}, 1, false); });
        REQUIRE(wait_for_subscribers(*pub, 1));
        REQUIRE(joined.wait() == 'x');
        publish(*pub, pool, 1, 1); // its one credit
        const auto t0 = std::chrono::steady_clock::now();
        expect_error([&] { publish(*pub, pool, 2, 2); }, px::Status::timeout);
        CHECK(std::chrono::steady_clock::now() - t0 >= 90ms);
        CHECK(pub->stats().dropped == 1);
        go.post();
        REQUIRE(all_back(pool));
        publish(*pub, pool, 3, 3);
        pub.reset();
        CHECK(wait_child(child) == 0);
    }
    SUBCASE("disconnect") {
        px::Publisher pub("cam", options(px::SlowPolicy::disconnect, 1));
        Signal joined, go;
        const pid_t child = fork_child([&] { return lagging("cam", joined, go, {1}, 0, false); });
        REQUIRE(wait_for_subscribers(pub, 1));
        REQUIRE(joined.wait() == 'x');
        publish(pub, pool, 1, 2); // frame 2 finds no room
        const px_publisher_stats_t s = pub.stats();
        CHECK(s.subscribers == 0);
        CHECK(s.departed == 1);
        CHECK(s.disconnected_slow == 1);
        go.post(); // it drains frame 1, then sees the end while the publisher lives on
        CHECK(wait_child(child) == 0);
    }
}

TEST_CASE("C++ streams: a subscriber killed mid-stream: its slots come back, the other gets all") {
    RuntimeDir dir;
    px::Pool pool = shm_pool(16);
    std::optional<px::Publisher> pub(std::in_place, "cam", options(px::SlowPolicy::block, 4));
    Signal holding;
    const pid_t holder = fork_child([&] {
        ::alarm(30);
        px::Subscriber sub("cam", 10s);
        std::vector<px::Buffer> held;
        for (int i = 0; i < 3; ++i)
            held.push_back(sub.recv(10s));
        holding.post();
        ::pause();
        return 0;
    });
    const pid_t reader = fork_child([] { return receive_all("cam", 1, 40, nullptr); });
    REQUIRE(wait_for_subscribers(*pub, 2));
    publish(*pub, pool, 1, 3);
    REQUIRE(holding.wait() == 'x');
    ::kill(holder, SIGKILL);
    CHECK(wait_child(holder) == 128 + SIGKILL);
    publish(*pub, pool, 4, 40);
    CHECK(eventually(
        [&] {
            pub->poll(10ms);
            return pub->stats().departed == 1;
        },
        5000ms));
    pub.reset();
    CHECK(wait_child(reader) == 0);
    CHECK(all_back(pool));
}

TEST_CASE("C++ streams: the publisher gone, a subscriber drains, then the end; frames stay valid") {
    RuntimeDir dir;
    std::optional<px::Pool> pool = shm_pool(8);
    std::optional<px::Publisher> pub(std::in_place, "cam", options(px::SlowPolicy::block));
    Signal joined, go;
    const pid_t child =
        fork_child([&] { return lagging("cam", joined, go, {1, 2, 3, 4, 5}, 0, true); });
    REQUIRE(wait_for_subscribers(*pub, 1));
    REQUIRE(joined.wait() == 'x');
    publish(*pub, *pool, 1, 5);
    pub.reset(); // before the subscriber has read anything
    pool.reset();
    // The name is free at once, and stats say so.
    expect_error([] { px::stream_stats("cam", 1s); }, px::Status::closed);
    go.post();
    CHECK(wait_child(child) == 0);
    px::Publisher again("cam");
    CHECK(again.subscriber_count() == 0);
}

TEST_CASE("C++ streams: list_streams and stream_stats from a process that publishes nothing") {
    RuntimeDir dir;
    px::Pool pool = shm_pool(8);
    px::Publisher cam("cam");
    px::Publisher mic("mic");
    publish(cam, pool, 1, 5);
    const pid_t child = fork_child([] {
        std::vector<std::string> names = px::list_streams();
        std::sort(names.begin(), names.end());
        if (names != std::vector<std::string>{"cam", "mic"})
            return 2;
        return px::stream_stats("cam", 1s).published == 5 ? 0 : 3;
    });
    CHECK(wait_child(child) == 0);
    CHECK(px::stream_subscribers("cam", 1s).empty());
    expect_error([] { px::stream_subscribers("absent", 1s); }, px::Status::closed);
}

TEST_CASE("C++ streams: poll and the fds say when there is work; try_recv does not wait") {
    RuntimeDir dir;
    px::Publisher pub("cam");
    CHECK_FALSE(pub.poll());
    CHECK_FALSE(pub.poll(20ms));
    CHECK(pub.fd() >= 0);
    std::optional<px::Subscriber> sub;
    std::thread joiner([&] { sub.emplace("cam", 10s); });
    pollfd joining{pub.fd(), POLLIN, 0};
    CHECK(::poll(&joining, 1, 10000) == 1); // a joiner wakes the publisher's fd
    REQUIRE(wait_for_subscribers(pub, 1)); // (the joiner waits for this before it returns)
    joiner.join();
    REQUIRE(sub);
    CHECK(pub.subscriber_count() == 1);
    CHECK_FALSE(sub->try_recv());
    expect_error([&] { sub->recv(20ms); }, px::Status::timeout);
    px::Pool pool = shm_pool(2);
    publish(pub, pool, 1, 1);
    pollfd p{sub->fd(), POLLIN, 0};
    CHECK(::poll(&p, 1, 10000) == 1);
    std::optional<px::Buffer> got = sub->try_recv();
    REQUIRE(got);
    CHECK(checked_seq(*got) == 1);
}

TEST_CASE("C++ streams: moves leave empty objects; full, busy and bad input throw clearly") {
    RuntimeDir dir;
    px::PublisherOptions one;
    one.max_subscribers = 1;
    px::Publisher pub("cam", one);
    px::Publisher moved(std::move(pub));
    CHECK_FALSE(pub);
    CHECK(moved);
    expect_error([] { px::Publisher again("cam"); }, px::Status::busy);
    std::optional<px::Subscriber> first;
    std::thread joiner([&] { first.emplace("cam", 10s); });
    REQUIRE(wait_for_subscribers(moved, 1));
    joiner.join();
    px::Subscriber taken(std::move(*first));
    CHECK_FALSE(*first);
    CHECK(taken);
    // One more is refused (inside the publisher's poll): Status::busy, saying it is full.
    std::atomic<bool> done{false};
    std::string refusal;
    std::thread second([&] {
        try {
            px::Subscriber s("cam", 10s);
        } catch (const px::Error &e) {
            refusal = px::status_name(e.status()) + (": " + e.message());
        }
        done = true;
    });
    CHECK(eventually(
        [&] {
            moved.poll(10ms);
            return done.load();
        },
        5000ms));
    second.join();
    CHECK(refusal.find("PX_E_BUSY: ") == 0);
    CHECK(refusal.find("full") != std::string::npos);
    CHECK(moved.subscriber_count() == 1);

    const px::Error empty = expect_error([] { px::Publisher p(""); }, px::Status::invalid);
    CHECK(empty.message().find("empty") != std::string::npos);
    expect_error([] { px::Publisher p(".hidden"); }, px::Status::invalid);
    px::PublisherOptions bad;
    bad.max_in_flight = 0;
    const px::Error field = expect_error([&] { px::Publisher p("other", bad); },
                                         px::Status::invalid);
    CHECK(field.message().find("max_in_flight") != std::string::npos);
    const px::Error absent =
        expect_error([] { px::Subscriber s("absent", 30ms); }, px::Status::timeout);
    CHECK(absent.message().find("no publisher") != std::string::npos);
    px::Pool heap(px::Segment::heap(4096), 4096);
    expect_error([&] { moved.publish(std::move(heap.loan()).into_buffer(8)); },
                 px::Status::unsupported);
}
