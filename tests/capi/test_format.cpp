// SPDX-License-Identifier: Apache-2.0 OR MIT
// Typed frames through the C API: px_format_t, px_buffer_set_format, px_buffer_format,
// px_dtype_size (API.md, "Formats: typed frames").
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "parallax/parallax.h"

namespace {

px_format_t image(uint32_t dtype, int64_t h, int64_t w, int64_t c) {
    px_format_t f;
    std::memset(&f, 0, sizeof f);
    f.dtype = dtype;
    f.ndim = 3;
    f.shape[0] = h;
    f.shape[1] = w;
    f.shape[2] = c;
    return f;
}

struct Heap {
    px_segment_t *seg = nullptr;
    px_buffer_t *buf = nullptr;
    explicit Heap(size_t len) {
        REQUIRE(px_segment_heap_new(len, &seg) == PX_OK);
        REQUIRE(px_buffer_from_segment(seg, nullptr, &buf) == PX_OK);
    }
    ~Heap() {
        px_buffer_release(buf);
        px_segment_release(seg);
    }
};

std::string last_error() { return px_last_error_message(); }

// set_format must fail with PX_E_INVALID, mention `needle`, and leave the old format in place.
void check_rejected(px_buffer_t *buf, const px_format_t &f, const char *needle) {
    px_format_t before, after;
    REQUIRE(px_buffer_format(buf, &before) == PX_OK);
    CHECK(px_buffer_set_format(buf, &f) == PX_E_INVALID);
    const std::string msg = last_error();
    CHECK_MESSAGE(msg.find(needle) != std::string::npos, msg);
    CHECK(msg.rfind("px_buffer_set_format: format: ", 0) == 0);
    REQUIRE(px_buffer_format(buf, &after) == PX_OK);
    CHECK(std::memcmp(&before, &after, sizeof before) == 0);
}

} // namespace

TEST_CASE("format: element sizes of every dtype, 0 for unknown ones") {
    CHECK(px_dtype_size(PX_DTYPE_U8) == 1);
    CHECK(px_dtype_size(PX_DTYPE_I8) == 1);
    CHECK(px_dtype_size(PX_DTYPE_U16) == 2);
    CHECK(px_dtype_size(PX_DTYPE_I16) == 2);
    CHECK(px_dtype_size(PX_DTYPE_F16) == 2);
    CHECK(px_dtype_size(PX_DTYPE_BF16) == 2);
    CHECK(px_dtype_size(PX_DTYPE_U32) == 4);
    CHECK(px_dtype_size(PX_DTYPE_I32) == 4);
    CHECK(px_dtype_size(PX_DTYPE_F32) == 4);
    CHECK(px_dtype_size(PX_DTYPE_U64) == 8);
    CHECK(px_dtype_size(PX_DTYPE_I64) == 8);
    CHECK(px_dtype_size(PX_DTYPE_F64) == 8);
    CHECK(px_dtype_size(0) == 0);
    CHECK(px_dtype_size(13) == 0);
    CHECK(px_dtype_size(UINT32_MAX) == 0);
}

TEST_CASE("format: a buffer is untyped until given one; set, read back, cleared") {
    Heap h(1080 * 1920 * 3);
    px_format_t f;
    std::memset(&f, 0xAB, sizeof f);
    REQUIRE(px_buffer_format(h.buf, &f) == PX_OK);
    px_format_t zero;
    std::memset(&zero, 0, sizeof zero);
    CHECK(std::memcmp(&f, &zero, sizeof f) == 0);

    px_format_t rgb = image(PX_DTYPE_U8, 1080, 1920, 3);
    rgb.fourcc = 0x33424752; // "RGB3"
    REQUIRE(px_buffer_set_format(h.buf, &rgb) == PX_OK);
    REQUIRE(px_buffer_format(h.buf, &f) == PX_OK);
    CHECK(std::memcmp(&f, &rgb, sizeof f) == 0); // strides stay as set: all 0, C-contiguous

    px_format_t untyped;
    std::memset(&untyped, 0, sizeof untyped);
    REQUIRE(px_buffer_set_format(h.buf, &untyped) == PX_OK);
    REQUIRE(px_buffer_format(h.buf, &f) == PX_OK);
    CHECK(f.ndim == 0);
    CHECK(f.dtype == 0);
}

TEST_CASE("format: clones keep it, slices are untyped, each handle has its own") {
    Heap h(4096);
    const px_format_t f = image(PX_DTYPE_F32, 16, 16, 4);
    REQUIRE(px_buffer_set_format(h.buf, &f) == PX_OK);
    px_buffer_t *clone = nullptr, *slice = nullptr;
    REQUIRE(px_buffer_clone(h.buf, &clone) == PX_OK);
    REQUIRE(px_buffer_slice(h.buf, 0, 4096, &slice) == PX_OK);
    px_format_t got;
    REQUIRE(px_buffer_format(clone, &got) == PX_OK);
    CHECK(std::memcmp(&got, &f, sizeof f) == 0);
    REQUIRE(px_buffer_format(slice, &got) == PX_OK);
    CHECK(got.ndim == 0);

    // Changing the clone's format leaves the original's alone.
    const px_format_t other = image(PX_DTYPE_U8, 1, 1, 1);
    REQUIRE(px_buffer_set_format(clone, &other) == PX_OK);
    REQUIRE(px_buffer_format(h.buf, &got) == PX_OK);
    CHECK(std::memcmp(&got, &f, sizeof f) == 0);
    px_buffer_release(clone);
    px_buffer_release(slice);
}

TEST_CASE("format: the elements must lie inside the buffer, exactly") {
    Heap h(1080 * 1920 * 3);
    px_format_t fits = image(PX_DTYPE_U8, 1080, 1920, 3);
    CHECK(px_buffer_set_format(h.buf, &fits) == PX_OK);
    px_format_t one_row_more = image(PX_DTYPE_U8, 1081, 1920, 3);
    check_rejected(h.buf, one_row_more, "elements span 6226560 bytes, beyond the buffer's 6220800");
    px_format_t wider = image(PX_DTYPE_U16, 1080, 1920, 3); // twice the bytes
    check_rejected(h.buf, wider, "beyond the buffer's 6220800");

    // Explicit strides: a padded row of 5760 + 64 bytes no longer fits 1080 rows...
    px_format_t padded = image(PX_DTYPE_U8, 1080, 1920, 3);
    padded.strides[0] = 5824;
    padded.strides[1] = 3;
    padded.strides[2] = 1;
    check_rejected(h.buf, padded, "beyond the buffer's");
    // ...but 1068 of them do (1067 * 5824 + 5760 <= 6220800).
    padded.shape[0] = 1068;
    CHECK(px_buffer_set_format(h.buf, &padded) == PX_OK);

    // A dimension of 0 elements fits anything, even an empty buffer.
    px_segment_t *seg = nullptr;
    REQUIRE(px_segment_heap_new(64, &seg) == PX_OK);
    px_buffer_t *empty = nullptr;
    REQUIRE(px_buffer_new(seg, 64, 0, nullptr, &empty) == PX_OK);
    px_format_t none = image(PX_DTYPE_F64, 0, 1000000, 3);
    CHECK(px_buffer_set_format(empty, &none) == PX_OK);
    px_format_t single = image(PX_DTYPE_U8, 1, 1, 1);
    check_rejected(empty, single, "elements span 1 bytes, beyond the buffer's 0");
    px_buffer_release(empty);
    px_segment_release(seg);
}

TEST_CASE("format: hostile fields are refused, naming the rule, overflow-safe") {
    Heap h(4096);
    px_format_t f = image(PX_DTYPE_U8, 16, 16, 1);
    f.ndim = 9;
    check_rejected(h.buf, f, "ndim 9 exceeds 8");
    f = image(0, 16, 16, 1);
    check_rejected(h.buf, f, "unknown dtype 0");
    f = image(13, 16, 16, 1);
    check_rejected(h.buf, f, "unknown dtype 13");
    f = image(PX_DTYPE_U8, 16, -16, 1);
    check_rejected(h.buf, f, "shape[1] -16 is negative");
    f = image(PX_DTYPE_U8, 16, 16, 1);
    f.strides[0] = -16;
    f.strides[1] = 1;
    f.strides[2] = 1;
    check_rejected(h.buf, f, "strides[0] -16 is negative");
    f = image(PX_DTYPE_U8, 16, 16, 1);
    f.shape[3] = 5;
    check_rejected(h.buf, f, "shape[3]/strides[3] set beyond ndim 3");
    f = image(PX_DTYPE_U8, 16, 16, 1);
    f.flags = 1;
    check_rejected(h.buf, f, "flags 1");
    f = image(PX_DTYPE_U32, 16, 16, 1);
    f.strides[0] = 64;
    f.strides[1] = 2; // half an element
    f.strides[2] = 4;
    check_rejected(h.buf, f, "strides[1] 2 is not a multiple of the element size 4");

    // Shapes and strides whose products overflow 64 bits.
    f = image(PX_DTYPE_U8, INT64_MAX, INT64_MAX, 2);
    check_rejected(h.buf, f, "overflows 64 bits");
    f = image(PX_DTYPE_U64, INT64_MAX / 4, 3, 1);
    check_rejected(h.buf, f, "overflow");
    f = image(PX_DTYPE_U8, 4, 1, 1); // 3 * INT64_MAX
    f.strides[0] = INT64_MAX;
    f.strides[1] = 1;
    f.strides[2] = 1;
    check_rejected(h.buf, f, "overflow 64 bits");
    f = image(PX_DTYPE_U8, 2, 1, 1);
    f.strides[0] = INT64_MAX; // one step of INT64_MAX bytes: no overflow, far beyond 4096
    f.strides[1] = 1;
    f.strides[2] = 1;
    check_rejected(h.buf, f, "beyond the buffer's 4096");
}

TEST_CASE("format: NULL arguments are PX_E_INVALID naming the argument") {
    Heap h(64);
    px_format_t f = image(PX_DTYPE_U8, 4, 4, 4);
    CHECK(px_buffer_set_format(nullptr, &f) == PX_E_INVALID);
    CHECK(last_error().find("buf") != std::string::npos);
    CHECK(px_buffer_set_format(h.buf, nullptr) == PX_E_INVALID);
    CHECK(last_error().find("fmt") != std::string::npos);
    CHECK(px_buffer_format(nullptr, &f) == PX_E_INVALID);
    CHECK(px_buffer_format(h.buf, nullptr) == PX_E_INVALID);
    CHECK(last_error().find("out") != std::string::npos);
}
