// SPDX-License-Identifier: Apache-2.0 OR MIT
#include <doctest/doctest.h>

#include <poll.h>
#include <string>

#include "ipc_support.hpp"

using namespace px_test;

namespace {
px_buffer_t *shm_buffer(px_segment_t **seg_out) {
    px_segment_t *seg = nullptr;
    REQUIRE(px_segment_shm_new("fast", 4096, &seg) == PX_OK);
    px_buffer_t *buf = nullptr;
    REQUIRE(px_buffer_from_segment(seg, nullptr, &buf) == PX_OK);
    *seg_out = seg;
    return buf;
}
} // namespace

TEST_CASE("px_channel_fd becomes readable when a buffer arrives from another process") {
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    Signal go;
    pid_t child = fork_child([&] {
        px_channel_release(b);
        px_segment_t *seg = nullptr;
        px_buffer_t *buf = shm_buffer(&seg);
        go.wait();
        for (int i = 0; i < 3; ++i) {
            if (px_channel_send(a, buf) != PX_OK)
                return 1;
            go.wait();
        }
        px_buffer_release(buf);
        px_segment_release(seg);
        return 0;
    });
    px_channel_release(a);
    for (int i = 0; i < 3; ++i) {
        pollfd p{px_channel_fd(b), POLLIN, 0};
        CHECK(poll(&p, 1, 0) == 0); // nothing yet: not readable
        go.post();
        REQUIRE(poll(&p, 1, 5000) == 1);
        CHECK((p.revents & POLLIN) != 0);
        // The first readiness may be the segment's registration, ahead of its record: a poll
        // then answers at once (it never waits for the record), and the fd becomes readable
        // again when the record is published.
        px_buffer_t *got = nullptr;
        px_status_t rc;
        while ((rc = px_channel_recv(b, 0, &got)) == PX_E_WOULD_BLOCK)
            REQUIRE(poll(&p, 1, 5000) == 1);
        REQUIRE(rc == PX_OK);
        px_buffer_release(got);
    }
    go.post();
    CHECK(wait_child(child) == 0);
    px_channel_release(b);
}

TEST_CASE("blocking, spinning and default receivers all get every buffer") {
    for (int64_t spin : {int64_t{0}, int64_t{-1}, int64_t{PX_CHANNEL_DEFAULT_SPIN_NS}}) {
        CAPTURE(spin);
        px_channel_t *a = nullptr, *b = nullptr;
        REQUIRE(px_channel_pair(&a, &b) == PX_OK);
        pid_t child = fork_child([&] {
            px_channel_release(a);
            if (px_channel_set_spin_ns(b, spin) != PX_OK)
                return 1;
            for (uint64_t k = 0; k < 2000; ++k) {
                px_buffer_t *x = nullptr;
                if (px_channel_recv(b, 10'000'000'000, &x) != PX_OK)
                    return 2;
                bool ok = frame_ok(x, 64, k);
                px_buffer_release(x);
                if (!ok)
                    return 3;
            }
            return 0;
        });
        px_channel_release(b);
        px_pool_t *pool = shm_pool(8, 4096);
        for (uint64_t k = 0; k < 2000; ++k) {
            px_buffer_t *f = make_frame(pool, 64, k);
            REQUIRE(f);
            REQUIRE(px_channel_send(a, f) == PX_OK);
            px_buffer_release(f);
            if (k % 97 == 0)
                usleep(200); // let the receiver fall asleep now and then
        }
        CHECK(wait_child(child) == 0);
        CHECK(eventually([&] { return px_pool_available(pool) == 8; }));
        px_channel_release(a);
        px_pool_release(pool);
    }
    CHECK(px_channel_set_spin_ns(nullptr, 0) == PX_E_INVALID);
}

TEST_CASE("a receiver that falls behind: send_timeout answers instead of waiting forever") {
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    px_segment_t *seg = nullptr;
    px_buffer_t *buf = shm_buffer(&seg);
    int sent = 0;
    while (px_channel_send_timeout(a, buf, 0) == PX_OK)
        ++sent;
    CHECK(sent >= 64); // the ring holds a good number of descriptors
    CHECK(std::string(px_last_error_message()).find("takes no more now") != std::string::npos);
    CHECK(px_channel_send_timeout(a, buf, 2'000'000) == PX_E_TIMEOUT);
    px_buffer_t *got = nullptr;
    REQUIRE(px_channel_recv(b, 0, &got) == PX_OK);
    px_buffer_release(got);
    CHECK(px_channel_send_timeout(a, buf, 0) == PX_OK); // room again
    for (int i = 0; i < sent; ++i) {
        REQUIRE(px_channel_recv(b, 0, &got) == PX_OK);
        px_buffer_release(got);
    }
    CHECK(px_channel_recv(b, 0, &got) == PX_E_WOULD_BLOCK);
    CHECK(px_channel_send_timeout(nullptr, buf, 0) == PX_E_INVALID);
    CHECK(px_channel_send_timeout(a, nullptr, 0) == PX_E_INVALID);
    px_channel_release(b);
    CHECK(eventually([&] { return px_channel_send_timeout(a, buf, 1'000'000) == PX_E_CLOSED; }));
    px_buffer_release(buf);
    px_segment_release(seg);
    px_channel_release(a);
}

TEST_CASE("px_channel_fd stays readable while buffers wait, and goes quiet when none do") {
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    px_segment_t *seg = nullptr;
    px_buffer_t *buf = shm_buffer(&seg);
    for (int i = 0; i < 3; ++i)
        REQUIRE(px_channel_send(a, buf) == PX_OK);
    for (int i = 0; i < 3; ++i) {
        pollfd p{px_channel_fd(b), POLLIN, 0};
        REQUIRE(poll(&p, 1, 1000) == 1); // a poller never sleeps through a waiting buffer
        px_buffer_t *got = nullptr;
        REQUIRE(px_channel_recv(b, 0, &got) == PX_OK);
        px_buffer_release(got);
    }
    pollfd p{px_channel_fd(b), POLLIN, 0};
    CHECK(poll(&p, 1, 0) == 0);
    px_channel_release(a); // hang-up: readable, and recv says so
    REQUIRE(poll(&p, 1, 1000) == 1);
    px_buffer_t *none = nullptr;
    CHECK(px_channel_recv(b, 0, &none) == PX_E_CLOSED);
    px_buffer_release(buf);
    px_segment_release(seg);
    px_channel_release(b);
}
