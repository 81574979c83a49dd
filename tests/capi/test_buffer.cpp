// SPDX-License-Identifier: Apache-2.0 OR MIT
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "parallax/parallax.h"

TEST_CASE("C API: buffer_new range checks and the message names the range") {
    px_segment_t *seg = nullptr;
    REQUIRE(px_segment_heap_new(4096, &seg) == PX_OK);
    px_buffer_t *b = nullptr;
    CHECK(px_buffer_new(seg, 4090, 16, nullptr, &b) == PX_E_INVALID);
    CHECK(std::string(px_last_error_message()) ==
          "px_buffer_new: range [4090, +16) exceeds segment length 4096");
    CHECK(b == nullptr);
    CHECK(px_buffer_new(seg, SIZE_MAX, 2, nullptr, &b) == PX_E_INVALID);
    CHECK(px_buffer_new(seg, 2, SIZE_MAX, nullptr, &b) == PX_E_INVALID);
    CHECK(px_buffer_new(nullptr, 0, 1, nullptr, &b) == PX_E_INVALID);
    CHECK(px_buffer_new(seg, 0, 1, nullptr, nullptr) == PX_E_INVALID);
    px_metadata_t bad;
    px_metadata_init(&bad);
    bad.user_len = 65;
    CHECK(px_buffer_new(seg, 0, 1, &bad, &b) == PX_E_INVALID);
    CHECK(std::string(px_last_error_message()).find("user_len 65") != std::string::npos);
    REQUIRE(px_buffer_new(seg, 4096, 0, nullptr, &b) == PX_OK); // empty at the end is fine
    CHECK(px_buffer_len(b) == 0);
    px_buffer_release(b);
    px_buffer_release(nullptr);
    CHECK(px_buffer_clone(nullptr, &b) == PX_E_INVALID);
    CHECK(px_buffer_slice(nullptr, 0, 0, &b) == PX_E_INVALID);
    CHECK(px_buffer_metadata(nullptr, &bad) == PX_E_INVALID);
    CHECK(px_buffer_set_metadata(nullptr, &bad) == PX_E_INVALID);
    CHECK(px_buffer_ptr(nullptr) == nullptr);
    CHECK(px_buffer_len(nullptr) == 0);
    px_segment_release(seg);
}

TEST_CASE("C API: clone and slice alias memory, metadata is per buffer, lifetimes hold") {
    px_segment_t *seg = nullptr;
    REQUIRE(px_segment_shm_new("buf", 8192, &seg) == PX_OK);
    px_metadata_t meta;
    px_metadata_init(&meta);
    CHECK(meta.pts_ns == PX_TIME_NONE);
    CHECK(meta.dts_ns == PX_TIME_NONE);
    CHECK(meta.duration_ns == PX_TIME_NONE);
    CHECK(meta.sequence == 0);
    meta.sequence = 1;
    meta.pts_ns = 1000;
    meta.user_len = 3;
    std::memcpy(meta.user, "abc", 3);
    px_buffer_t *whole = nullptr;
    REQUIRE(px_buffer_from_segment(seg, &meta, &whole) == PX_OK);
    px_segment_release(seg); // the buffer keeps it alive
    CHECK(px_buffer_len(whole) == 8192);
    CHECK(px_buffer_segment(whole) != nullptr);
    px_buffer_t *slice = nullptr;
    REQUIRE(px_buffer_slice(whole, 100, 50, &slice) == PX_OK);
    CHECK(px_buffer_offset(slice) == 100);
    CHECK(px_buffer_ptr(slice) == static_cast<const char *>(px_buffer_ptr(whole)) + 100);
    px_buffer_t *sub = nullptr;
    REQUIRE(px_buffer_slice(slice, 10, 40, &sub) == PX_OK);
    CHECK(px_buffer_offset(sub) == 110);
    px_buffer_t *bad_slice = slice;
    CHECK(px_buffer_slice(slice, 10, 41, &bad_slice) == PX_E_INVALID);
    CHECK(bad_slice == nullptr); // a failing call leaves its out-parameter NULL
    CHECK(std::string(px_last_error_message()) ==
          "px_buffer_slice: range [10, +41) exceeds buffer length 50");
    px_buffer_t *clone = nullptr;
    REQUIRE(px_buffer_clone(whole, &clone) == PX_OK);
    px_metadata_t other;
    px_metadata_init(&other);
    other.sequence = 99;
    REQUIRE(px_buffer_set_metadata(clone, &other) == PX_OK);
    px_metadata_t got;
    REQUIRE(px_buffer_metadata(whole, &got) == PX_OK);
    CHECK(got.sequence == 1);
    CHECK(got.user_len == 3);
    CHECK(std::memcmp(got.user, "abc", 3) == 0);
    REQUIRE(px_buffer_metadata(slice, &got) == PX_OK);
    CHECK(got.pts_ns == 1000);
    px_buffer_release(whole);
    static_cast<char *>(px_buffer_mut_ptr(clone))[110] = 'z';
    CHECK(static_cast<const char *>(px_buffer_ptr(sub))[0] == 'z');
    px_buffer_release(clone);
    px_buffer_release(slice);
    px_buffer_release(sub);
}
