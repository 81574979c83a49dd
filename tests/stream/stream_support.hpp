// SPDX-License-Identifier: Apache-2.0 OR MIT
// Helpers of the stream tests: a private runtime directory per test, and frames published and
// received by number.
#pragma once

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <doctest/doctest.h>
#include <ftw.h>
#include <string>
#include <sys/stat.h>

#include "ipc_support.hpp"
#include "parallax/parallax.h"

namespace px_stream_test {

using namespace px_test;

constexpr int64_t second_ns = 1'000'000'000;

// A fresh runtime directory (mode 0700) in PARALLAX_RUNTIME_DIR for the test's life; children
// forked during the test inherit it.
struct RuntimeDir {
    std::string path;
    RuntimeDir() {
        char tmpl[] = "/tmp/px-stream-test.XXXXXX";
        const char *p = ::mkdtemp(tmpl);
        REQUIRE(p != nullptr);
        path = p;
        ::setenv("PARALLAX_RUNTIME_DIR", path.c_str(), 1);
    }
    ~RuntimeDir() {
        ::unsetenv("PARALLAX_RUNTIME_DIR");
        ::nftw(
            path.c_str(),
            [](const char *f, const struct stat *, int, struct FTW *) { return ::remove(f); },
            16, FTW_DEPTH | FTW_PHYS);
    }
};

inline px_publisher_options_t options(uint32_t policy = PX_SLOW_DROP, uint32_t in_flight = 8,
                                      uint32_t history = 0) {
    px_publisher_options_t o;
    px_publisher_options_init(&o);
    o.slow_policy = policy;
    o.max_in_flight = in_flight;
    o.history = history;
    return o;
}

// Publishes frame `seq` (make_frame's bytes and metadata) from `pool`; the status of publish.
inline px_status_t publish_frame(px_publisher_t *pub, px_pool_t *pool, size_t len, uint64_t seq) {
    px_buffer_t *b = make_frame(pool, len, seq);
    if (!b)
        return PX_E_INTERNAL;
    px_status_t rc = px_publisher_publish(pub, b);
    px_buffer_release(b);
    return rc;
}

// The next frame's user sequence, checking its bytes; a negative status when none came, or
// -1000 for a damaged frame. The buffer is released unless `keep` takes it.
inline int64_t recv_seq(px_subscriber_t *sub, int64_t timeout_ns, px_buffer_t **keep = nullptr) {
    px_buffer_t *b = nullptr;
    px_status_t rc = px_subscriber_recv(sub, timeout_ns, &b);
    if (rc != PX_OK)
        return rc;
    px_metadata_t meta;
    px_buffer_metadata(b, &meta);
    const int64_t seq = static_cast<int64_t>(meta.sequence);
    const bool ok = frame_ok(b, px_buffer_len(b), meta.sequence);
    if (keep)
        *keep = b;
    else
        px_buffer_release(b);
    return ok ? seq : -1000;
}

// Publishes nothing but admits joiners until `n` subscribers are in (or 5 s pass).
inline bool wait_for_subscribers(px_publisher_t *pub, size_t n) {
    return eventually(
        [&] {
            px_publisher_poll(pub, 10'000'000);
            return px_publisher_subscriber_count(pub) >= n;
        },
        std::chrono::milliseconds(5000));
}

inline std::string description_of(const px_subscriber_t *sub) {
    char text[256];
    size_t len = 0;
    if (px_subscriber_description(sub, text, sizeof text, &len) != PX_OK)
        return "<error: " + std::string(px_last_error_message()) + ">";
    return std::string(text, len);
}

} // namespace px_stream_test
