// SPDX-License-Identifier: Apache-2.0 OR MIT
// A departed subscriber is met without an exception inside the library, for a description as
// for a frame: a publisher meets departures as a matter of course (issue 13's churn), and an
// exception's allocation, unwinding and message cost a publish several microseconds.
//
// Exceptions thrown anywhere in the process are counted by interposing __cxa_throw (this
// executable exports its symbols, so libparallax.so's calls come here first), then passed on.
#include <doctest/doctest.h>

#include <atomic>
#include <dlfcn.h>
#include <thread>
#include <typeinfo>
#include <unistd.h>

#include "stream_support.hpp"

namespace {

std::atomic<uint64_t> g_throws{0};

} // namespace

// Default visibility: the tests are built with hidden symbols, and this one must be exported.
extern "C" [[noreturn]] __attribute__((visibility("default"))) void
__cxa_throw(void *object, std::type_info *type, void (*destroy)(void *)) {
    using Throw = void (*)(void *, std::type_info *, void (*)(void *));
    static const Throw next = reinterpret_cast<Throw>(::dlsym(RTLD_NEXT, "__cxa_throw"));
    g_throws.fetch_add(1, std::memory_order_relaxed);
    next(object, type, destroy);
    __builtin_unreachable();
}

using namespace px_stream_test;

namespace {

constexpr size_t frame_len = 4096;

// A subscriber in its own process that takes frame 1 and leaves when `leave` is posted (not
// before: one that left within the poll that admitted it would never be counted).
pid_t one_frame_subscriber(const char *name, Signal &leave) {
    return fork_child([name, &leave] {
        px_subscriber_t *sub = nullptr;
        if (px_subscriber_new(name, 10 * second_ns, &sub) != PX_OK)
            return 2;
        const int64_t seq = recv_seq(sub, 10 * second_ns);
        if (leave.wait() != 'x')
            return 4;
        px_subscriber_release(sub);
        return seq == 1 ? 0 : 3;
    });
}

} // namespace

TEST_CASE("the interposed __cxa_throw counts an exception thrown inside the library") {
    // What the test below relies on: a call that fails inside libparallax.so throws there.
    RuntimeDir dir;
    px_publisher_t *pub = nullptr;
    REQUIRE(px_publisher_new("departed-counter", nullptr, &pub) == PX_OK);
    const uint64_t before = g_throws.load();
    CHECK(px_publisher_set_description(pub, "") == PX_OK);
    CHECK(g_throws.load() == before); // nothing to fail: nothing thrown
    std::string too_long(64 * 1024 + 1, 'x');
    CHECK(px_publisher_set_description(pub, too_long.c_str()) == PX_E_INVALID);
    CHECK(g_throws.load() > before);
    px_publisher_release(pub);
}

TEST_CASE("a description sent to a departed subscriber: no exception, it is taken out as for a "
          "frame") {
    RuntimeDir dir;
    px_publisher_t *pub = nullptr;
    REQUIRE(px_publisher_new("departed", nullptr, &pub) == PX_OK);
    px_pool_t *pool = shm_pool(16, frame_len);
    REQUIRE(pool != nullptr);
    Signal leave;
    const pid_t child = one_frame_subscriber("departed", leave);
    REQUIRE(wait_for_subscribers(pub, 1));
    REQUIRE(publish_frame(pub, pool, frame_len, 1) == PX_OK);
    leave.post();
    REQUIRE(wait_child(child) == 0);
    // Past the send side's throttle (it looks for a hang-up at most once a millisecond), so
    // that the send finds the departure before anything goes out. No publish meanwhile: the
    // publisher's housekeeping would take the subscriber out first.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(px_publisher_subscriber_count(pub) == 1);

    const uint64_t before = g_throws.load();
    const char text[] = "video/x-raw,width=64";
    CHECK(px_publisher_set_description(pub, text) == PX_OK);
    CHECK(g_throws.load() == before); // the old library threw closed here, and caught it
    CHECK(px_publisher_subscriber_count(pub) == 0);
    px_publisher_stats_t st;
    REQUIRE(px_publisher_get_stats(pub, &st) == PX_OK);
    CHECK(st.departed == 1);
    // The next frame goes to nobody, and nothing throws for it either.
    CHECK(publish_frame(pub, pool, frame_len, 2) == PX_OK);
    CHECK(g_throws.load() == before);
    px_pool_release(pool);
    px_publisher_release(pub);
}

TEST_CASE("a frame whose description is still to be sent, to a departed subscriber: no "
          "exception") {
    // The publish path (deliver_locked sends the description in force before a frame). A
    // subscriber whose history replay ended under an older description gets the current one
    // before its next frame: a description pending at the publish, by construction.
    RuntimeDir dir;
    px_publisher_t *pub = nullptr;
    const px_publisher_options_t opts = options(PX_SLOW_DROP, 8, 1);
    REQUIRE(px_publisher_new("departed-frame", &opts, &pub) == PX_OK);
    px_pool_t *pool = shm_pool(16, frame_len);
    REQUIRE(pool != nullptr);
    REQUIRE(publish_frame(pub, pool, frame_len, 1) == PX_OK); // under the empty description
    const char text[] = "application/json";
    REQUIRE(px_publisher_set_description(pub, text) == PX_OK);
    Signal leave;
    const pid_t child = one_frame_subscriber("departed-frame", leave); // frame 1: history
    REQUIRE(wait_for_subscribers(pub, 1));
    leave.post();
    REQUIRE(wait_child(child) == 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(5)); // see the test above
    REQUIRE(px_publisher_subscriber_count(pub) == 1);

    const uint64_t before = g_throws.load();
    CHECK(publish_frame(pub, pool, frame_len, 2) == PX_OK);
    CHECK(g_throws.load() == before); // the old library threw closed here, and caught it
    CHECK(px_publisher_subscriber_count(pub) == 0);
    px_publisher_stats_t st;
    REQUIRE(px_publisher_get_stats(pub, &st) == PX_OK);
    CHECK(st.departed == 1);
    CHECK(st.dropped == 0); // gone, not short of room
    px_pool_release(pool);
    px_publisher_release(pub);
}
