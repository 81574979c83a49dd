// SPDX-License-Identifier: Apache-2.0 OR MIT
#include <doctest/doctest.h>

#include <string>

#include "parallax/parallax.h"

TEST_CASE("status codes have fixed values and names") {
    CHECK(PX_OK == 0);
    CHECK(PX_E_INVALID == -1);
    CHECK(PX_E_INTERNAL == -11);
    CHECK(std::string(px_status_string(PX_E_TIMEOUT)) == "PX_E_TIMEOUT");
    CHECK(std::string(px_status_string(PX_OK)) == "PX_OK");
    CHECK(std::string(px_status_string(-999)) == "PX_E_UNKNOWN");
}

TEST_CASE("version function agrees with the header macros") {
    CHECK(px_version() == PX_VERSION);
    CHECK(px_version() == ((PX_VERSION_MAJOR << 16) | (PX_VERSION_MINOR << 8) | PX_VERSION_PATCH));
    CHECK(std::string(px_version_string()) == PX_VERSION_STRING);
}

TEST_CASE("a failing call names the function and the problem; the message is per thread") {
    px_segment_t *seg = nullptr;
    CHECK(px_segment_heap_new(0, &seg) == PX_E_INVALID);
    CHECK(seg == nullptr);
    CHECK(std::string(px_last_error_message()).find("px_segment_heap_new: size is 0") == 0);
    CHECK(px_segment_heap_new(16, nullptr) == PX_E_INVALID);
    CHECK(std::string(px_last_error_message()) == "px_segment_heap_new: out is NULL");
}
