// SPDX-License-Identifier: Apache-2.0 OR MIT
// Joins and departures done in pieces across publish calls (issue 13: "joining or leaving never
// stalls publish"): under churn every frame still reaches a stable subscriber, and a departed
// subscriber's teardown (its channel, then its control blocks) finishes, leaking no slot, fd or
// mapping, whether the publisher goes on publishing or waits on its fd.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <poll.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "stream_support.hpp"

using namespace px_stream_test;

namespace {

constexpr size_t frame_len = 4096;

// Control blocks mapped here (memfds named "parallax-channel"): counting only them keeps the
// check exact under sanitizers, whose allocators map memory of their own.
size_t count_control_blocks() {
    FILE *f = std::fopen("/proc/self/maps", "r");
    size_t n = 0;
    char line[512];
    while (f && std::fgets(line, sizeof line, f))
        n += std::strstr(line, "parallax-channel") != nullptr;
    if (f)
        std::fclose(f);
    return n;
}

// How many control blocks mapped here have their data ring resident (Rss in /proc/self/smaps at
// least its 13 pages: 52 kB): the offers a publisher makes ahead fault those pages in, so that
// its first sends to a new subscriber take no page fault; a peer's block shows only what was
// read of it.
size_t control_blocks_faulted_in() {
    FILE *f = std::fopen("/proc/self/smaps", "r");
    size_t n = 0;
    bool in_block = false;
    char line[512];
    while (f && std::fgets(line, sizeof line, f)) {
        unsigned long start = 0, end = 0, kb = 0;
        if (std::sscanf(line, "%lx-%lx ", &start, &end) == 2) // a mapping's first line
            in_block = std::strstr(line, "parallax-channel") != nullptr;
        else if (in_block && std::sscanf(line, "Rss: %lu kB", &kb) == 1)
            n += kb >= 52;
    }
    if (f)
        std::fclose(f);
    return n;
}

bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
}

// Receives every frame from 1 on until the publisher is gone; exits 0 only when none was
// missed, and writes how many came to `count`.
int stable_subscriber(const char *name, Signal &joined, Signal &count) {
    ::alarm(60);
    px_subscriber_t *sub = nullptr;
    if (px_subscriber_new(name, 10 * second_ns, &sub) != PX_OK)
        return 2;
    joined.post('j');
    int64_t expected = 1;
    for (;;) {
        const int64_t seq = recv_seq(sub, 20 * second_ns);
        if (seq == PX_E_CLOSED)
            break;
        if (seq != expected)
            return 3; // a gap, a damaged frame, or nothing for 20 s
        ++expected;
    }
    px_subscriber_stats_t st;
    px_subscriber_get_stats(sub, &st);
    const int64_t got = expected - 1;
    if (::write(count.fds[1], &got, sizeof got) != sizeof got)
        return 5;
    return st.missed == 0 ? 0 : 4;
}

} // namespace

TEST_CASE("50 joins and leaves while publishing: every frame reaches the stable subscriber, "
          "nothing leaks") {
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(64, frame_len);
    REQUIRE(pool != nullptr);
    px_publisher_t *pub = nullptr;
    // BLOCK: the stable subscriber must get every frame, however the machine schedules it.
    px_publisher_options_t o = options(PX_SLOW_BLOCK, 8);
    o.block_timeout_ns = 20 * second_ns;
    REQUIRE(px_publisher_new("churn", &o, &pub) == PX_OK);

    Signal joined, count;
    pid_t stable = fork_child([&] { return stable_subscriber("churn", joined, count); });
    REQUIRE(wait_for_subscribers(pub, 1)); // admitted in poll
    REQUIRE(joined.wait() == 'j');
    // Frame 1 first: the pool's segment is then registered on the stable subscriber's channel,
    // and the read-only fd the segment keeps for its peers while registered is in the baseline.
    uint64_t seq = 0;
    REQUIRE(publish_frame(pub, pool, frame_len, ++seq) == PX_OK);
    const int fds_with_one = count_open_fds();
    const size_t mappings_with_one = count_control_blocks();

    // 50 visits: join, take 3 frames, leave holding 2 of them (released after the leave); one
    // visit in 5 ends in _exit with the frames still held, as a crash would.
    constexpr int visits = 50;
    pid_t churner = fork_child([&] {
        ::alarm(60);
        for (int v = 0; v < visits; ++v) {
            pid_t visitor = fork_child([v] {
                px_subscriber_t *sub = nullptr;
                if (px_subscriber_new("churn", 10 * second_ns, &sub) != PX_OK)
                    return 2;
                std::vector<px_buffer_t *> held;
                for (int i = 0; i < 3; ++i) {
                    px_buffer_t *b = nullptr;
                    if (px_subscriber_recv(sub, 10 * second_ns, &b) != PX_OK)
                        return 3;
                    if (i == 0)
                        px_buffer_release(b);
                    else
                        held.push_back(b);
                }
                if (v % 5 == 4)
                    ::_exit(0); // gone with its subscriber and frames: reclaimed
                px_subscriber_release(sub);
                for (px_buffer_t *b : held)
                    px_buffer_release(b);
                return 0;
            });
            if (wait_child(visitor) != 0)
                return 10 + v;
        }
        return 0;
    });

    // Publish every 100 us until the churner is done (each visit needs frames to leave).
    int churner_status = -1;
    while (churner_status < 0) {
        REQUIRE(publish_frame(pub, pool, frame_len, ++seq) == PX_OK);
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        int status = 0;
        if (::waitpid(churner, &status, WNOHANG) == churner)
            churner_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    CHECK(churner_status == 0);
    // A few more frames, so that the last departures are seen and taken down by publish alone.
    for (int i = 0; i < 20; ++i) {
        REQUIRE(publish_frame(pub, pool, frame_len, ++seq) == PX_OK);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    CHECK(eventually([&] {
        px_publisher_poll(pub, 0);
        return px_publisher_subscriber_count(pub) == 1;
    }));
    px_publisher_stats_t st;
    REQUIRE(px_publisher_get_stats(pub, &st) == PX_OK);
    CHECK(st.joined == 1 + visits);
    CHECK(st.departed == visits);
    // Every departed subscriber's channel closed and its control blocks unmapped; what it held
    // came back to the pool (the stable subscriber releases each frame at once). A channel
    // whose peer still held frames when it closed keeps its inbox (return socket, pidfd, the
    // peer's control block) until a pool call of this process collects returns: asking the
    // pool what is free is one.
    CHECK(eventually([&] {
        px_publisher_poll(pub, 0);
        return px_pool_available(pool) == px_pool_capacity(pool) &&
               count_open_fds() == fds_with_one && count_control_blocks() == mappings_with_one;
    }));
    CHECK(count_open_fds() == fds_with_one);
    CHECK(count_control_blocks() == mappings_with_one);
    CHECK(eventually([&] { return px_pool_available(pool) == px_pool_capacity(pool); }));

    px_publisher_release(pub);
    CHECK(wait_child(stable) == 0); // every frame, in order, none missed
    int64_t got = -1;
    CHECK(::read(count.fds[0], &got, sizeof got) == sizeof got);
    CHECK(got == static_cast<int64_t>(seq));
    px_pool_release(pool);
}

TEST_CASE("a departure taken down in pieces keeps the publisher's fd readable until done") {
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(16, frame_len);
    REQUIRE(pool != nullptr);
    px_publisher_t *pub = nullptr;
    REQUIRE(px_publisher_new("pieces", nullptr, &pub) == PX_OK);
    // Let the publisher settle (whatever it prepares for joiners is made by now).
    REQUIRE(publish_frame(pub, pool, frame_len, 1) == PX_OK);
    while (px_publisher_poll(pub, 20'000'000) == PX_OK) {
    }
    Signal joined, leave;
    const int fds_alone = count_open_fds();
    const size_t mappings_alone = count_control_blocks();

    pid_t sub = fork_child([&] {
        ::alarm(30);
        px_subscriber_t *s = nullptr;
        if (px_subscriber_new("pieces", 10 * second_ns, &s) != PX_OK)
            return 2;
        joined.post('j');
        if (recv_seq(s, 10 * second_ns) != 2)
            return 3;
        return leave.wait() == 'l' ? 0 : 4; // exits holding its subscriber: a hang-up
    });
    REQUIRE(wait_for_subscribers(pub, 1)); // admitted in poll
    REQUIRE(joined.wait() == 'j');
    REQUIRE(publish_frame(pub, pool, frame_len, 2) == PX_OK);
    leave.post('l');
    CHECK(wait_child(sub) == 0);

    // One publish (over a millisecond after the last housekeeping) takes it out and closes its
    // channel; its control blocks are left to later pieces, which the fd announces.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(publish_frame(pub, pool, frame_len, 3) == PX_OK);
    CHECK(px_publisher_subscriber_count(pub) == 0);
    CHECK(readable(px_publisher_fd(pub)));
    CHECK(count_control_blocks() > mappings_alone);
    // A publisher that waits on its fd finishes the teardown in its poll.
    CHECK(px_publisher_poll(pub, second_ns) == PX_OK);
    CHECK(count_open_fds() == fds_alone);
    CHECK(count_control_blocks() == mappings_alone);
    CHECK_FALSE(readable(px_publisher_fd(pub)));
    CHECK(eventually([&] { return px_pool_available(pool) == px_pool_capacity(pool); }));
    px_publisher_release(pub);
    px_pool_release(pool);
}

TEST_CASE("a join's kernel work is made ahead and done in pieces: a publisher that only "
          "publishes admits, then makes the next offer, leaking nothing") {
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(16, frame_len);
    REQUIRE(pool != nullptr);
    px_publisher_t *pub = nullptr;
    REQUIRE(px_publisher_new("ahead", nullptr, &pub) == PX_OK);
    // The offer for the first subscriber (its control block) exists before anyone connects,
    // and making it is no work announced on the fd.
    CHECK(count_control_blocks() == 1);
    CHECK(control_blocks_faulted_in() == 1);
    CHECK_FALSE(readable(px_publisher_fd(pub)));
    Signal joined, leave;
    const int fds_alone = count_open_fds();

    pid_t sub = fork_child([&] {
        ::alarm(30);
        px_subscriber_t *s = nullptr;
        if (px_subscriber_new("ahead", 10 * second_ns, &s) != PX_OK)
            return 2;
        joined.post('j');
        if (leave.wait() != 'l')
            return 3;
        px_subscriber_release(s);
        return 0;
    });
    // Publishing alone (one frame every 2 ms, no poll) admits it: one piece or a few per
    // publish, a dozen pieces in all.
    uint64_t seq = 0;
    for (int i = 0; i < 200 && px_publisher_subscriber_count(pub) == 0; ++i) {
        REQUIRE(publish_frame(pub, pool, frame_len, ++seq) == PX_OK);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    REQUIRE(px_publisher_subscriber_count(pub) == 1);
    REQUIRE(joined.wait() == 'j');
    // Its offer was used: the next one is made by the publishes that follow, and then the
    // fd is quiet again (our 2 control blocks of this channel, and the new offer's).
    for (int i = 0; i < 20; ++i) {
        REQUIRE(publish_frame(pub, pool, frame_len, ++seq) == PX_OK);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    CHECK(count_control_blocks() == 3);
    CHECK(control_blocks_faulted_in() == 2); // ours: the subscriber's channel and the new offer
    CHECK_FALSE(readable(px_publisher_fd(pub)));

    leave.post('l');
    CHECK(wait_child(sub) == 0);
    CHECK(eventually([&] {
        px_publisher_poll(pub, 0);
        return px_publisher_subscriber_count(pub) == 0 && count_open_fds() == fds_alone &&
               count_control_blocks() == 1;
    }));
    CHECK(count_open_fds() == fds_alone);
    CHECK(count_control_blocks() == 1);
    CHECK_FALSE(readable(px_publisher_fd(pub)));
    px_publisher_release(pub);
    px_pool_release(pool);
}
