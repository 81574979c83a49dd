// SPDX-License-Identifier: Apache-2.0 OR MIT
// The C++ wrapper's timeouts (parallax::Timeout, detail::to_ns): any std::chrono duration maps
// onto the C API's timeout_ns, and one too long for int64 nanoseconds waits forever instead of
// overflowing into a short (or saturating into a finite) wait.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <ratio>
#include <thread>

#include "parallax/parallax.hpp"

using namespace std::chrono_literals;
namespace px = parallax;

namespace {
// About 616 million years: in int64 nanoseconds, seconds * 10^9 wraps to 9'999'872 ns, so a
// wrapper that converts by multiplying would wait 10 ms instead of forever.
constexpr std::chrono::seconds wraps_to_10ms{19446705176457199};
static_assert(wraps_to_10ms.count() > INT64_MAX / 1000000000); // too long for int64 ns

int64_t ns(px::Timeout t) { return t.ns(); }
} // namespace

TEST_CASE("C++: timeouts in the C API's nanoseconds: negative and too long are forever") {
    using std::chrono::duration;
    CHECK(ns(px::wait_forever) == -1);
    CHECK(ns(px::no_wait) == 0);
    CHECK(ns(-5us) == -1);
    CHECK(ns(std::chrono::nanoseconds::min()) == -1);
    CHECK(ns(20ms) == 20'000'000);
    CHECK(ns(3s) == 3'000'000'000);
    // The largest wait that fits is kept exactly; one tick more is forever, never saturated.
    CHECK(ns(std::chrono::nanoseconds::max()) == INT64_MAX);
    CHECK(ns(std::chrono::seconds(INT64_MAX / 1000000000)) ==
          INT64_MAX / 1000000000 * 1000000000);
    CHECK(ns(std::chrono::seconds(INT64_MAX / 1000000000 + 1)) == -1);
    CHECK(ns(std::chrono::hours::max()) == -1);
    CHECK(ns(std::chrono::minutes::max()) == -1);
    CHECK(ns(wraps_to_10ms) == -1);
    CHECK(ns(duration<uint64_t, std::milli>(UINT64_MAX)) == -1);
    CHECK(ns(duration<int16_t, std::ratio<60>>(INT16_MAX)) == int64_t{INT16_MAX} * 60'000'000'000);
    // Floating point and ticks finer than a nanosecond round up: a wait never becomes a poll.
    CHECK(ns(duration<double>(0.25)) == 250'000'000);
    CHECK(ns(duration<double, std::nano>(0.3)) == 1);
    CHECK(ns(duration<int64_t, std::pico>(1)) == 1);
    CHECK(ns(duration<int64_t, std::pico>(INT64_MAX)) == INT64_MAX / 1000 + 1);
    CHECK(ns(duration<double>(-0.5)) == -1);
    CHECK(ns(duration<double>(1e300)) == -1);
    CHECK(ns(duration<double>(std::numeric_limits<double>::infinity())) == -1);
    CHECK(ns(duration<double, std::nano>(9223372036854775808.0)) == -1); // 2^63
    CHECK(ns(duration<double, std::nano>(9223372036854774784.0)) == 9223372036854774784);
    try {
        ns(duration<double>(std::nan("")));
        FAIL("a NaN timeout was accepted");
    } catch (const px::Error &e) {
        CHECK(e.status() == px::Status::invalid);
        CHECK(e.message() == "timeout is NaN");
    }
}

TEST_CASE("C++: a pool loan with a timeout past int64 nanoseconds waits for the release") {
    px::Pool pool(px::Segment::heap(4096), 4096);
    for (px::Timeout forever : {px::Timeout(wraps_to_10ms), px::Timeout(std::chrono::hours::max()),
                                px::Timeout(std::chrono::duration<double>(1e30))}) {
        px::Slot only = pool.loan();
        std::thread releaser([&] {
            std::this_thread::sleep_for(100ms); // well past the 10 ms a wrapped wait would take
            only.reset();
        });
        auto t0 = std::chrono::steady_clock::now();
        std::optional<px::Slot> again;
        try {
            again = pool.loan(forever);
        } catch (const px::Error &e) {
            FAIL_CHECK(e.what());
        }
        releaser.join();
        CHECK(std::chrono::steady_clock::now() - t0 >= 90ms);
        REQUIRE(again.has_value());
        CHECK(again->index() == 0);
    }
}

TEST_CASE("C++: recv with a timeout past int64 nanoseconds waits for the buffer") {
    auto ends = px::Channel::pair(); // (no structured bindings: C++17 lambdas cannot capture them)
    px::Channel &a = ends.first, &b = ends.second;
    px::Pool pool(px::Segment::shm(4096), 4096);
    std::thread sender([&] {
        std::this_thread::sleep_for(100ms);
        a.send(std::move(*pool.try_loan()).into_buffer(16, px::Metadata(7)));
    });
    std::optional<px::Buffer> got;
    try {
        got = b.recv(wraps_to_10ms);
    } catch (const px::Error &e) {
        FAIL_CHECK(e.what());
    }
    sender.join();
    REQUIRE(got.has_value());
    CHECK(got->metadata().sequence == 7);
}
