// SPDX-License-Identifier: Apache-2.0 OR MIT
// Typed frames over a channel (issue 15, wire protocol 5): the format travels with every
// buffer, in another process, read-only; changes mid-stream are followed; clones keep it. And
// what a format record costs the ring: one per change of format, never one per frame, and a
// send that finds no room for the data record behind its format record fails as for a full
// ring, with nothing lost.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/ipc/ring.hpp" // data_ring_entries
#include "ipc_support.hpp"

using namespace px_test;

namespace {

constexpr int64_t second_ns = 1'000'000'000;
constexpr size_t ring = px::ipc::data_ring_entries;

std::string last() {
    return px_last_error_message();
}

px_format_t make_format(uint32_t dtype, std::initializer_list<int64_t> shape,
                        std::initializer_list<int64_t> strides = {}, uint32_t fourcc = 0) {
    px_format_t f;
    std::memset(&f, 0, sizeof f);
    f.dtype = dtype;
    f.fourcc = fourcc;
    for (int64_t s : shape)
        f.shape[f.ndim++] = s;
    uint32_t i = 0;
    for (int64_t s : strides)
        f.strides[i++] = s;
    return f;
}

px_format_t untyped() {
    px_format_t f;
    std::memset(&f, 0, sizeof f);
    return f;
}

bool same_format(const px_buffer_t *b, const px_format_t &want) {
    px_format_t got;
    return px_buffer_format(b, &got) == PX_OK && std::memcmp(&got, &want, sizeof got) == 0;
}

const px_format_t hd = make_format(PX_DTYPE_U8, {1080, 1920, 3}, {}, 0x33424752); // "RGB3"

// The frames of the mid-stream test, in order: a length and a format (ndim 0: untyped). The
// child and the parent both read this list. Each typed frame is given its format anew (another
// object with the same bytes): the sender must tell a change from a repeat by value.
struct Step {
    size_t len;
    px_format_t format;
};
std::vector<Step> changing_steps() {
    const px_format_t a = make_format(PX_DTYPE_U8, {16, 16, 3});
    const px_format_t b = make_format(PX_DTYPE_F32, {8, 12}, {64, 4}); // padded rows
    const px_format_t c = make_format(PX_DTYPE_U16, {100});
    // The same format, then on a longer buffer; another type; untyped between typed frames;
    // back to the first (it must be sent again); a third, around an untyped frame.
    return {{768, a},          {768, a}, {1000, a}, {512, b},          {512, b},
            {4096, untyped()}, {768, a}, {200, c},  {4096, untyped()}, {200, c}};
}

// A buffer on a shared segment of `len` bytes (no pool: it may be sent any number of times
// without a receiver releasing anything).
struct ShmBuffer {
    px_segment_t *seg = nullptr;
    px_buffer_t *buf = nullptr;
    explicit ShmBuffer(size_t len) {
        REQUIRE(px_segment_shm_new("formats", len, &seg) == PX_OK);
        REQUIRE(px_buffer_from_segment(seg, nullptr, &buf) == PX_OK);
    }
    ~ShmBuffer() {
        px_buffer_release(buf);
        px_segment_release(seg);
    }
};

// Receives everything waiting on `ch` (recv 0); each buffer's format goes to `out`.
size_t drain(px_channel_t *ch, std::vector<px_format_t> *out = nullptr) {
    size_t n = 0;
    for (;;) {
        px_buffer_t *b = nullptr;
        const px_status_t rc = px_channel_recv(ch, 0, &b);
        if (rc != PX_OK) {
            CHECK(rc == PX_E_WOULD_BLOCK);
            return n;
        }
        ++n;
        if (out) {
            px_format_t f;
            REQUIRE(px_buffer_format(b, &f) == PX_OK);
            out->push_back(f);
        }
        px_buffer_release(b);
    }
}

} // namespace

TEST_CASE("a typed 1080x1920x3 frame crosses to another process with its format, read-only") {
    const size_t len = 1080 * 1920 * 3;
    px_pool_t *pool = shm_pool(4, len);
    REQUIRE(pool);
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    pid_t child = fork_child([&] {
        px_channel_release(a);
        for (uint64_t k = 0; k < 3; ++k) {
            px_buffer_t *buf = nullptr;
            if (px_channel_recv(b, 10 * second_ns, &buf) != PX_OK)
                return 1;
            if (!same_format(buf, hd))
                return 2;
            if (px_buffer_mut_ptr(buf) != nullptr || !frame_ok(buf, len, k))
                return 3;
            // A clone keeps the format (the same one, shared); a slice is untyped bytes.
            px_buffer_t *clone = nullptr, *slice = nullptr;
            if (px_buffer_clone(buf, &clone) != PX_OK || !same_format(clone, hd))
                return 4;
            if (px_buffer_slice(buf, 0, 100, &slice) != PX_OK || !same_format(slice, untyped()))
                return 5;
            px_buffer_release(buf); // the clone outlives the original, format and all
            if (!same_format(clone, hd) || !frame_ok(clone, len, k))
                return 6;
            px_buffer_release(clone);
            px_buffer_release(slice);
        }
        return 0;
    });
    px_channel_release(b);
    for (uint64_t k = 0; k < 3; ++k) {
        px_buffer_t *frame = make_frame(pool, len, k);
        REQUIRE(frame);
        REQUIRE(px_buffer_set_format(frame, &hd) == PX_OK);
        REQUIRE(px_channel_send(a, frame) == PX_OK);
        px_buffer_release(frame);
    }
    CHECK(wait_child(child) == 0);
    px_channel_release(a);
    CHECK(eventually([&] { return px_pool_available(pool) == 4; }));
    px_pool_release(pool);
}

TEST_CASE("the format changes mid-stream: typed, another type, untyped, typed again") {
    const std::vector<Step> steps = changing_steps();
    px_pool_t *pool = shm_pool(static_cast<size_t>(steps.size()), 4096);
    REQUIRE(pool);
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    pid_t child = fork_child([&] {
        px_channel_release(a);
        std::vector<px_buffer_t *> held; // all held: earlier formats must not change under them
        for (size_t k = 0; k < steps.size(); ++k) {
            px_buffer_t *buf = nullptr;
            if (px_channel_recv(b, 10 * second_ns, &buf) != PX_OK)
                return 1;
            held.push_back(buf);
            if (!frame_ok(buf, steps[k].len, k))
                return 2;
            if (!same_format(buf, steps[k].format))
                return 10 + static_cast<int>(k);
        }
        for (size_t k = 0; k < steps.size(); ++k) {
            if (!same_format(held[k], steps[k].format))
                return 40 + static_cast<int>(k);
            px_buffer_release(held[k]);
        }
        return 0;
    });
    px_channel_release(b);
    for (size_t k = 0; k < steps.size(); ++k) {
        px_buffer_t *frame = make_frame(pool, steps[k].len, k);
        REQUIRE(frame);
        REQUIRE(px_buffer_set_format(frame, &steps[k].format) == PX_OK);
        REQUIRE(px_channel_send(a, frame) == PX_OK);
        px_buffer_release(frame);
    }
    CHECK(wait_child(child) == 0);
    px_channel_release(a);
    CHECK(eventually([&] { return px_pool_available(pool) == px_pool_capacity(pool); }));
    px_pool_release(pool);
}

TEST_CASE("frames of one format cost one format record; a new format per frame costs two "
          "entries per frame") {
    ShmBuffer x(4096), y(4096);
    const px_format_t fx = make_format(PX_DTYPE_U8, {4096});
    const px_format_t fy = make_format(PX_DTYPE_I32, {32, 32});
    REQUIRE(px_buffer_set_format(x.buf, &fx) == PX_OK);
    REQUIRE(px_buffer_set_format(y.buf, &fy) == PX_OK);
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);

    // One format: its record, then a data record per frame until the ring is full.
    size_t sent = 0;
    while (px_channel_send_timeout(a, x.buf, 0) == PX_OK)
        ++sent;
    CHECK(px_channel_send_timeout(a, x.buf, 0) == PX_E_WOULD_BLOCK);
    CHECK(sent == ring - 1);
    std::vector<px_format_t> got;
    CHECK(drain(b, &got) == ring - 1);
    for (const px_format_t &f : got)
        REQUIRE(std::memcmp(&f, &fx, sizeof f) == 0);

    // Alternating formats: a format record before every frame. The receiver sees each frame
    // with its own, the format records themselves never surface.
    sent = 0;
    for (;; ++sent)
        if (px_channel_send_timeout(a, sent % 2 ? y.buf : x.buf, 0) != PX_OK)
            break;
    CHECK(sent == ring / 2);
    got.clear();
    CHECK(drain(b, &got) == ring / 2);
    for (size_t k = 0; k < got.size(); ++k)
        REQUIRE(std::memcmp(&got[k], k % 2 ? &fy : &fx, sizeof fx) == 0);
    px_channel_release(a);
    px_channel_release(b);
}

TEST_CASE("a full ring after the format record: would_block, and the retry needs one entry") {
    ShmBuffer plain(4096), typed(4096);
    const px_format_t f = make_format(PX_DTYPE_U16, {2048});
    REQUIRE(px_buffer_set_format(typed.buf, &f) == PX_OK);
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    for (size_t k = 0; k < ring - 1; ++k)
        REQUIRE(px_channel_send_timeout(a, plain.buf, 0) == PX_OK);
    // One entry left: the format record takes it, the data record finds no room.
    CHECK(px_channel_send_timeout(a, typed.buf, 0) == PX_E_WOULD_BLOCK);
    CHECK(last().find("takes no more now") != std::string::npos);
    std::vector<px_format_t> got;
    CHECK(drain(b, &got) == ring - 1); // the lone format record is consumed, never a buffer
    for (const px_format_t &g : got)
        REQUIRE(g.ndim == 0);
    // The format is in force: the retry sends only the data record (so the ring holds a full
    // ring's worth of them, not one fewer).
    size_t sent = 0;
    while (px_channel_send_timeout(a, typed.buf, 0) == PX_OK)
        ++sent;
    CHECK(sent == ring);
    got.clear();
    CHECK(drain(b, &got) == ring);
    for (const px_format_t &g : got)
        REQUIRE(std::memcmp(&g, &f, sizeof f) == 0);
    // An untyped buffer in between does not change what is in force on either side.
    REQUIRE(px_channel_send_timeout(a, plain.buf, 0) == PX_OK);
    REQUIRE(px_channel_send_timeout(a, typed.buf, 0) == PX_OK);
    got.clear();
    CHECK(drain(b, &got) == 2);
    REQUIRE(got.size() == 2);
    CHECK(got[0].ndim == 0);
    CHECK(std::memcmp(&got[1], &f, sizeof f) == 0);
    px_channel_release(a);
    px_channel_release(b);
}

TEST_CASE("a blocking send waits for room for both records instead of failing") {
    ShmBuffer plain(4096), typed(4096);
    const px_format_t f = make_format(PX_DTYPE_U8, {64, 64});
    REQUIRE(px_buffer_set_format(typed.buf, &f) == PX_OK);
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    pid_t child = fork_child([&] {
        px_channel_release(a);
        ::usleep(100'000); // the sender fills the ring and waits
        size_t n = 0;
        for (;; ++n) {
            px_buffer_t *buf = nullptr;
            if (px_channel_recv(b, 10 * second_ns, &buf) != PX_OK)
                break;
            const bool last_one = n == ring;
            if (last_one != same_format(buf, f))
                return 1;
            px_buffer_release(buf);
        }
        return n == ring + 1 ? 0 : 2;
    });
    px_channel_release(b);
    for (size_t k = 0; k < ring; ++k)
        REQUIRE(px_channel_send_timeout(a, plain.buf, 0) == PX_OK);
    CHECK(px_channel_send_timeout(a, typed.buf, 10 * second_ns) == PX_OK);
    px_channel_release(a); // the child drains, then finds the channel closed
    CHECK(wait_child(child) == 0);
}
