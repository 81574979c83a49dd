// SPDX-License-Identifier: Apache-2.0 OR MIT
// Streams against dying and hostile processes: a subscriber killed with SIGKILL, a publisher
// killed and restarted, subscribers that connect and stay silent, send garbage, or never read.
// And a quick measure of what each added subscriber costs publish (printed, not asserted).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <random>
#include <sched.h>
#include <cstdio>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <vector>

#include "stream_support.hpp"

using namespace px_stream_test;

namespace {

constexpr size_t frame_len = 4096;

// Receives frames 1..last with no gap (missed must stay 0), releasing each at once.
int witness(const char *name, uint64_t last, Signal *joined = nullptr) {
    ::alarm(30);
    px_subscriber_t *sub = nullptr;
    if (px_subscriber_new(name, 10 * second_ns, &sub) != PX_OK)
        return 2;
    if (joined)
        joined->post('j');
    for (uint64_t seq = 1; seq <= last; ++seq)
        if (recv_seq(sub, 10 * second_ns) != static_cast<int64_t>(seq))
            return 3;
    px_subscriber_stats_t st;
    px_subscriber_get_stats(sub, &st);
    return st.missed == 0 ? 0 : 4;
}

int connect_raw(const std::string &path) {
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

} // namespace

TEST_CASE("a subscriber killed with SIGKILL: its holds come back within 1 s, others see no gap") {
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(16, frame_len);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_BLOCK, 4);
    o.block_timeout_ns = 10 * second_ns;
    REQUIRE(px_publisher_new("cam", &o, &pub) == PX_OK);
    for (int round = 0; round < 5; ++round) {
        CAPTURE(round);
        Signal holding;
        // The victim holds everything it gets (its credit's worth), clones included.
        pid_t victim = fork_child([&] {
            ::alarm(30);
            px_subscriber_t *sub = nullptr;
            if (px_subscriber_new("cam", 10 * second_ns, &sub) != PX_OK)
                return 2;
            std::vector<px_buffer_t *> held;
            for (int i = 0; i < 4; ++i) {
                px_buffer_t *b = nullptr;
                if (px_subscriber_recv(sub, 10 * second_ns, &b) != PX_OK)
                    return 3;
                px_buffer_t *c = nullptr;
                px_buffer_clone(b, &c);
                held.push_back(b);
                held.push_back(c);
            }
            holding.post('h');
            ::pause();
            return 0;
        });
        pid_t others[2];
        for (pid_t &w : others)
            w = fork_child([] { return witness("cam", 20); });
        REQUIRE(wait_for_subscribers(pub, 3));
        for (uint64_t seq = 1; seq <= 4; ++seq)
            REQUIRE(publish_frame(pub, pool, frame_len, seq) == PX_OK);
        REQUIRE(holding.wait() == 'h');
        // The victim has no credit left: the next publish would wait for it. It dies instead.
        std::thread killer([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(20 * round));
            ::kill(victim, SIGKILL);
        });
        const auto t0 = std::chrono::steady_clock::now();
        for (uint64_t seq = 5; seq <= 20; ++seq)
            REQUIRE(publish_frame(pub, pool, frame_len, seq) == PX_OK);
        killer.join();
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(1000 + 20 * round));
        CHECK(wait_child(victim) == 128 + SIGKILL);
        for (pid_t w : others)
            CHECK(wait_child(w) == 0);
        // Every slot back (the witnesses released theirs; the victim's were reclaimed).
        CHECK(eventually([&] { return px_pool_available(pool) == px_pool_capacity(pool); },
                         std::chrono::milliseconds(1000)));
        px_publisher_poll(pub, 0);
        CHECK(eventually([&] {
            px_publisher_poll(pub, 1'000'000);
            return px_publisher_subscriber_count(pub) == 0;
        }));
    }
    px_publisher_stats_t st;
    REQUIRE(px_publisher_get_stats(pub, &st) == PX_OK);
    CHECK(st.joined == 15);
    CHECK(st.departed == 15);
    CHECK(st.slots_lent == 0);
    px_publisher_release(pub);
    px_pool_release(pool);
}

// Issue 13: 100 rounds, 4 subscribers, one of them killed at a random moment while it holds a
// random number of frames. Under BLOCK the three others never miss a frame, publish is never
// held up by the dead one for long, and no slot leaks.
TEST_CASE("subscriber kill -9 at random moments, 100 rounds of 4 subscribers: no leak, no gap") {
    RuntimeDir dir;
    std::mt19937_64 rng(0x5eed0013);
    auto uniform = [&](uint64_t lo, uint64_t hi) {
        return lo + std::uniform_int_distribution<uint64_t>(0, hi - lo)(rng);
    };
    px_pool_t *pool = shm_pool(16, frame_len);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_BLOCK, 4);
    o.block_timeout_ns = 10 * second_ns;
    REQUIRE(px_publisher_new("kill", &o, &pub) == PX_OK);
    constexpr uint64_t frames = 30;
    int64_t worst_publish_us = 0;
    for (int round = 0; round < 100; ++round) {
        CAPTURE(round);
        const uint64_t hold = uniform(0, 3);      // frames the victim keeps (of its credit of 4)
        const uint64_t kill_at = uniform(1, frames); // published before the kill
        CAPTURE(hold);
        CAPTURE(kill_at);
        pid_t victim = fork_child([&] {
            ::alarm(30);
            px_subscriber_t *sub = nullptr;
            if (px_subscriber_new("kill", 10 * second_ns, &sub) != PX_OK)
                return 2;
            std::vector<px_buffer_t *> held;
            for (;;) { // keeps the last `hold` frames, releases the rest
                px_buffer_t *b = nullptr;
                if (px_subscriber_recv(sub, 10 * second_ns, &b) != PX_OK)
                    return 3;
                held.push_back(b);
                if (held.size() > hold) {
                    px_buffer_release(held.front());
                    held.erase(held.begin());
                }
            }
        });
        pid_t others[3];
        for (pid_t &w : others)
            w = fork_child([] { return witness("kill", frames); });
        REQUIRE(wait_for_subscribers(pub, 4));
        for (uint64_t seq = 1; seq <= frames; ++seq) {
            if (seq == kill_at)
                ::kill(victim, SIGKILL);
            const auto t0 = std::chrono::steady_clock::now();
            REQUIRE(publish_frame(pub, pool, frame_len, seq) == PX_OK);
            worst_publish_us = std::max<int64_t>(
                worst_publish_us, std::chrono::duration_cast<std::chrono::microseconds>(
                                      std::chrono::steady_clock::now() - t0)
                                      .count());
        }
        CHECK(wait_child(victim) == 128 + SIGKILL);
        for (pid_t w : others)
            CHECK(wait_child(w) == 0); // every frame, no gap
        CHECK(eventually([&] { return px_pool_available(pool) == px_pool_capacity(pool); },
                         std::chrono::milliseconds(1000)));
        CHECK(eventually([&] {
            px_publisher_poll(pub, 1'000'000);
            return px_publisher_subscriber_count(pub) == 0;
        }));
    }
    MESSAGE("100 rounds; the slowest publish took " << worst_publish_us << " us");
    CHECK(worst_publish_us < 1'500'000); // a dead subscriber is noticed within a second
    px_publisher_stats_t st;
    REQUIRE(px_publisher_get_stats(pub, &st) == PX_OK);
    CHECK(st.joined == 400);
    CHECK(st.departed == 400);
    CHECK(st.slots_lent == 0);
    px_publisher_release(pub);
    px_pool_release(pool);
}

TEST_CASE("a publisher killed with SIGKILL: subscribers drain, then PX_E_CLOSED; restart works") {
    RuntimeDir dir;
    Signal published, stop;
    auto publisher = [&](uint64_t frames) {
        return fork_child([&, frames] {
            ::alarm(30);
            px_pool_t *pool = shm_pool(16, frame_len);
            px_publisher_t *pub = nullptr;
            if (px_publisher_new("cam", nullptr, &pub) != PX_OK)
                return 2;
            if (!wait_for_subscribers(pub, 1))
                return 3;
            for (uint64_t seq = 1; seq <= frames; ++seq)
                if (publish_frame(pub, pool, frame_len, seq) != PX_OK)
                    return 4;
            published.post('p');
            stop.wait();
            return 0;
        });
    };
    pid_t first = publisher(5);
    px_subscriber_t *sub = nullptr;
    REQUIRE(px_subscriber_new("cam", 10 * second_ns, &sub) == PX_OK);
    px_subscriber_stats_t sst;
    REQUIRE(px_subscriber_get_stats(sub, &sst) == PX_OK);
    CHECK(sst.publisher_pid == static_cast<uint64_t>(first));
    REQUIRE(published.wait() == 'p');
    px_buffer_t *kept = nullptr;
    REQUIRE(recv_seq(sub, second_ns, &kept) == 1);
    ::kill(first, SIGKILL);
    CHECK(wait_child(first) == 128 + SIGKILL);
    // What it sent before dying is still received, then the end.
    for (int64_t seq = 2; seq <= 5; ++seq)
        CHECK(recv_seq(sub, second_ns) == seq);
    CHECK(recv_seq(sub, 2 * second_ns) == PX_E_CLOSED);
    CHECK(std::strstr(px_last_error_message(), "has gone") != nullptr);
    CHECK(frame_ok(kept, frame_len, 1)); // its memory stays mapped
    px_subscriber_release(sub);
    px_publisher_stats_t st;
    CHECK(px_stream_stats("cam", 0, &st) == PX_E_CLOSED);

    // A new publisher of the name starts at once; a subscriber resubscribes.
    pid_t second = publisher(3);
    REQUIRE(px_subscriber_new("cam", 10 * second_ns, &sub) == PX_OK);
    REQUIRE(published.wait() == 'p');
    for (int64_t seq = 1; seq <= 3; ++seq)
        CHECK(recv_seq(sub, second_ns) == seq);
    CHECK(frame_ok(kept, frame_len, 1));
    px_buffer_release(kept);
    stop.post();
    CHECK(wait_child(second) == 0);
    CHECK(recv_seq(sub, 2 * second_ns) == PX_E_CLOSED);
    px_subscriber_release(sub);
}

TEST_CASE("hostile subscribers (silent, garbage, never reading) do not stall publish") {
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(32, frame_len);
    px_publisher_t *pub = nullptr;
    px_publisher_options_t o = options(PX_SLOW_DROP, 4);
    REQUIRE(px_publisher_new("cam", &o, &pub) == PX_OK);
    const std::string path = dir.path + "/cam";
    Signal ready, done;
    pid_t hostile = fork_child([&] {
        ::alarm(30);
        std::vector<int> fds;
        for (int i = 0; i < 10; ++i) // connect and say nothing
            fds.push_back(connect_raw(path));
        for (int i = 0; i < 3; ++i) { // connect and send garbage
            int fd = connect_raw(path);
            [[maybe_unused]] auto n = ::send(fd, "garbage!", 8, MSG_NOSIGNAL);
            fds.push_back(fd);
        }
        // A real channel to the socket that never reads: admitted, then out of credit.
        px_channel_t *never_reads = nullptr;
        std::thread t([&] { px_channel_connect(path.c_str(), 10 * second_ns, &never_reads); });
        ready.post('r');
        t.join();
        done.wait();
        return never_reads ? 0 : 2;
    });
    REQUIRE(ready.wait() == 'r');
    Signal joined;
    pid_t honest = fork_child([&] { return witness("cam", 200, &joined); });
    int64_t worst_ns = 0;
    // Drive admissions until both real subscribers are in; then publish with the hostile ones
    // around, each publish timed.
    REQUIRE(wait_for_subscribers(pub, 2));
    REQUIRE(joined.wait() == 'j');
    for (uint64_t seq = 1; seq <= 200; ++seq) {
        const auto t0 = std::chrono::steady_clock::now();
        REQUIRE(publish_frame(pub, pool, frame_len, seq) == PX_OK);
        worst_ns = std::max<int64_t>(worst_ns, (std::chrono::steady_clock::now() - t0).count());
        // Keep pace with the honest one (it must miss nothing), not with the hostile ones.
        px_publisher_stats_t st;
        px_publisher_get_stats(pub, &st);
        eventually([&] {
            px_publisher_get_stats(pub, &st);
            return st.slots_lent <= 4; // only the never-reading one holds anything
        });
    }
    MESSAGE("worst publish with 13 hostile connections and a subscriber that never reads: "
            << worst_ns / 1000 << " us");
    CHECK(worst_ns < 50'000'000);
    CHECK(wait_child(honest) == 0);
    px_publisher_stats_t st;
    REQUIRE(px_publisher_get_stats(pub, &st) == PX_OK);
    CHECK(st.dropped >= 196); // the never-reading subscriber: 4 frames, then no credit
    done.post();
    CHECK(wait_child(hostile) == 0);
    px_publisher_release(pub);
    px_pool_release(pool);
}

TEST_CASE("measure: publish cost per added subscriber (4 KiB frames, printed)") {
    RuntimeDir dir;
    px_pool_t *pool = shm_pool(64, frame_len);
    std::vector<double> medians;
    for (int n : {0, 1, 2, 4, 8}) {
        px_publisher_t *pub = nullptr;
        px_publisher_options_t o = options(PX_SLOW_DROP, 16);
        REQUIRE(px_publisher_new("bench", &o, &pub) == PX_OK);
        Signal stop;
        std::vector<pid_t> children;
        for (int i = 0; i < n; ++i)
            children.push_back(fork_child([&] {
                ::alarm(60);
                px_subscriber_t *sub = nullptr;
                if (px_subscriber_new("bench", 10 * second_ns, &sub) != PX_OK)
                    return 2;
                for (;;) {
                    px_buffer_t *b = nullptr;
                    px_status_t rc = px_subscriber_recv(sub, 10 * second_ns, &b);
                    if (rc != PX_OK)
                        return rc == PX_E_CLOSED ? 0 : 3;
                    px_buffer_release(b);
                }
            }));
        REQUIRE(wait_for_subscribers(pub, static_cast<size_t>(n)));
        // The frame is made once and published again and again: only publish is timed.
        px_buffer_t *frame = make_frame(pool, frame_len, 1);
        std::vector<int64_t> ns;
        for (int i = 0; i < 20000; ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            px_publisher_publish(pub, frame);
            ns.push_back((std::chrono::steady_clock::now() - t0).count());
            if (i % 16 == 15)
                std::this_thread::sleep_for(std::chrono::microseconds(100)); // let them drain
        }
        std::nth_element(ns.begin(), ns.begin() + ns.size() / 2, ns.end());
        medians.push_back(static_cast<double>(ns[ns.size() / 2]));
        px_publisher_stats_t st;
        px_publisher_get_stats(pub, &st);
        MESSAGE(n << " subscriber processes: publish median " << ns[ns.size() / 2]
                  << " ns (dropped " << st.dropped << " of " << 20000 * n << ")");
        px_buffer_release(frame);
        px_publisher_release(pub);
        for (pid_t c : children)
            CHECK(wait_child(c) == 0);
    }
    MESSAGE("per added subscriber (median, 0 -> 8): " << (medians.back() - medians.front()) / 8
                                                       << " ns");
    // The subscribers are gone: every slot lent to them comes back, and the pool goes.
    CHECK(eventually([&] { return px_pool_available(pool) == px_pool_capacity(pool); }));
    px_pool_release(pool);
}

TEST_CASE("a plain channel connected to a stream's socket gets PX_E_PROTOCOL, not a frame") {
    RuntimeDir dir;
    px_publisher_t *pub = nullptr;
    REQUIRE(px_publisher_new("cam", nullptr, &pub) == PX_OK);
    px_channel_t *ch = nullptr;
    std::thread t([&] { px_channel_connect((dir.path + "/cam").c_str(), 5 * second_ns, &ch); });
    REQUIRE(wait_for_subscribers(pub, 1)); // admitted like any subscriber: sent a welcome
    t.join();
    REQUIRE(ch != nullptr);
    px_buffer_t *b = nullptr;
    CHECK(px_channel_recv(ch, second_ns, &b) == PX_E_PROTOCOL);
    CHECK(std::strstr(px_last_error_message(), "plain channel") != nullptr);
    CHECK(b == nullptr);
    px_channel_release(ch);
    // The publisher sees it go.
    CHECK(eventually([&] {
        px_publisher_poll(pub, 1'000'000);
        return px_publisher_subscriber_count(pub) == 0;
    }));
    px_publisher_release(pub);
}

// Issue 18: a publisher that runs out of fds cannot admit a new subscriber, but keeps serving
// the ones it has (a join that fails for want of fds is the listener's trouble, never thrown
// out of publish); once fds are free again, the newcomer gets in.
TEST_CASE("a publisher at its fd limit keeps serving its subscribers; a newcomer joins later") {
    RuntimeDir dir;
    constexpr uint64_t frames = 200;
    Signal ready, limited, early_failed, restored;
    pid_t publisher = fork_child([&] {
        ::alarm(60);
        px_pool_t *pool = shm_pool(16, frame_len);
        px_pool_t *other = shm_pool(2, frame_len); // a segment no subscriber has seen yet
        px_publisher_t *pub = nullptr;
        px_publisher_options_t o = options(PX_SLOW_BLOCK, 4);
        o.block_timeout_ns = 10 * second_ns;
        if (!pool || !other || px_publisher_new("full", &o, &pub) != PX_OK)
            return 2;
        ready.post('r');
        if (!wait_for_subscribers(pub, 2))
            return 3;
        if (publish_frame(pub, pool, frame_len, 1) != PX_OK) // the pool's segment registered
            return 8;
        // No fd free from here: the lowest free fd number becomes the limit.
        rlimit old{};
        ::getrlimit(RLIMIT_NOFILE, &old);
        rlimit low = old;
        int lowest_free = 0;
        while (::fcntl(lowest_free, F_GETFD) >= 0)
            ++lowest_free;
        low.rlim_cur = static_cast<rlim_t>(lowest_free);
        if (::setrlimit(RLIMIT_NOFILE, &low) != 0)
            return 4;
        limited.post('l');
        // Frame 2 is on a new segment, whose fd cannot be opened for the subscribers now: they
        // miss it (counted), and stay.
        px_publisher_stats_t before{}, after{};
        px_publisher_get_stats(pub, &before);
        if (publish_frame(pub, other, frame_len, 2) != PX_OK)
            return 10;
        px_publisher_get_stats(pub, &after);
        if (after.dropped != before.dropped + 2 || px_publisher_subscriber_count(pub) != 2)
            return 11;
        for (uint64_t seq = 3; seq <= frames; ++seq) {
            if (publish_frame(pub, pool, frame_len, seq) != PX_OK)
                return 5; // the newcomer's failed join must not fail a publish
            std::this_thread::sleep_for(std::chrono::microseconds(500));
        }
        if (early_failed.wait() != 'f') // the newcomer tried while there was no fd to spare
            return 9;
        ::setrlimit(RLIMIT_NOFILE, &old);
        restored.post('o');
        px_publisher_stats_t st{};
        const bool joined = eventually( // the newcomer is the third to join
            [&] {
                px_publisher_poll(pub, 10'000'000);
                return px_publisher_get_stats(pub, &st) == PX_OK && st.joined >= 3;
            },
            std::chrono::milliseconds(10000));
        if (!joined)
            return 6;
        const bool late_ok = publish_frame(pub, pool, frame_len, frames + 1) == PX_OK;
        px_publisher_release(pub);
        px_pool_release(pool);
        px_pool_release(other);
        return late_ok ? 0 : 7;
    });
    REQUIRE(ready.wait() == 'r');
    pid_t first[2];
    for (pid_t &w : first)
        w = fork_child([] { // frames 1 and 3..200 in order: only frame 2 missed
            ::alarm(60);
            px_subscriber_t *sub = nullptr;
            if (px_subscriber_new("full", 10 * second_ns, &sub) != PX_OK)
                return 2;
            for (uint64_t seq = 1; seq <= frames; seq += seq == 1 ? 2 : 1)
                if (recv_seq(sub, 10 * second_ns) != static_cast<int64_t>(seq))
                    return 3;
            px_subscriber_stats_t st;
            px_subscriber_get_stats(sub, &st);
            return st.missed == 1 ? 0 : 4;
        });
    REQUIRE(limited.wait() == 'l');
    pid_t newcomer = fork_child([&] {
        ::alarm(60);
        px_subscriber_t *sub = nullptr;
        // While the publisher has no fd to spare, no join completes.
        const px_status_t early = px_subscriber_new("full", 300'000'000, &sub);
        if (early == PX_OK)
            return 2;
        early_failed.post('f');
        if (restored.wait() != 'o')
            return 3;
        if (px_subscriber_new("full", 10 * second_ns, &sub) != PX_OK)
            return 4;
        return recv_seq(sub, 10 * second_ns) == static_cast<int64_t>(frames + 1) ? 0 : 5;
    });
    for (pid_t w : first)
        CHECK(wait_child(w) == 0); // every frame, no gap, while the publisher was at its limit
    CHECK(wait_child(newcomer) == 0);
    CHECK(wait_child(publisher) == 0);
}

// Issue 14 / the fan-out bench: a subscriber on the publisher's CPU, woken while the publisher
// kept publishing, used to get ~8 frames per scheduler tick (~2,000 frames/s against millions
// published) under DROP. A publisher that finds a subscriber without credit on its own CPU now
// yields to it. (A ratio of counts from one run, with a wide margin: not a timing claim.)
TEST_CASE("a subscriber sharing the publisher's CPU is not starved by a free-running publisher") {
    RuntimeDir dir;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    cpu_set_t before;
    REQUIRE(::sched_getaffinity(0, sizeof before, &before) == 0);
    REQUIRE(::sched_setaffinity(0, sizeof one, &one) == 0); // the child inherits it
    px_pool_t *pool = shm_pool(32, frame_len);
    px_publisher_t *pub = nullptr;
    REQUIRE(px_publisher_new("cpu", nullptr, &pub) == PX_OK);
    int counts[2];
    REQUIRE(::pipe(counts) == 0);
    pid_t sub = fork_child([&] {
        ::alarm(30);
        px_subscriber_t *s = nullptr;
        if (px_subscriber_new("cpu", 10 * second_ns, &s) != PX_OK)
            return 2;
        uint64_t n = 0;
        px_buffer_t *b = nullptr;
        while (px_subscriber_recv(s, 10 * second_ns, &b) == PX_OK) {
            px_buffer_release(b);
            ++n;
        }
        return ::write(counts[1], &n, sizeof n) == sizeof n ? 0 : 3;
    });
    REQUIRE(wait_for_subscribers(pub, 1));
    uint64_t published = 0;
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    while (std::chrono::steady_clock::now() < end) {
        px_slot_t *slot = nullptr;
        if (px_pool_loan(pool, &slot) != PX_OK)
            continue;
        px_buffer_t *f = nullptr;
        REQUIRE(px_slot_into_buffer(slot, frame_len, nullptr, &f) == PX_OK);
        REQUIRE(px_publisher_publish(pub, f) == PX_OK);
        px_buffer_release(f);
        ++published;
    }
    px_publisher_release(pub);
    REQUIRE(::sched_setaffinity(0, sizeof before, &before) == 0);
    CHECK(wait_child(sub) == 0);
    uint64_t received = 0;
    REQUIRE(::read(counts[0], &received, sizeof received) == sizeof received);
    ::close(counts[0]);
    ::close(counts[1]);
    MESSAGE("one CPU, 300 ms: published " << published << ", the subscriber received " << received);
    // Was ~1 in 4000 before the yield; ~1 in 3 on an idle machine now. 1 in 100 leaves room for
    // other processes on CPU 0 (this fails 4 runs in 14 at 1 in 20 on a loaded VM).
    CHECK(received * 100 >= published);
    px_pool_release(pool);
}
