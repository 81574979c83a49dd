// SPDX-License-Identifier: Apache-2.0 OR MIT
#include <doctest/doctest.h>

#include <cstring>

#include "core/buffer.hpp"
#include "core/error.hpp"
#include "core/heap_segment.hpp"
#include "core/memory_pool.hpp"

using namespace px;

TEST_CASE("buffer range checks are overflow-safe") {
    auto seg = heap::create(4096);
    Metadata m;
    CHECK_NOTHROW(Buffer(seg, 4096, 0, m));
    CHECK_NOTHROW(Buffer(seg, 0, 4096, m));
    try {
        Buffer(seg, 4090, 16, m);
        FAIL("expected invalid");
    } catch (const Error &e) {
        CHECK(e.status() == Status::invalid);
        CHECK(std::string(e.what()) == "range [4090, +16) exceeds segment length 4096");
    }
    CHECK_THROWS_AS(Buffer(seg, 1, SIZE_MAX, m), Error);
    CHECK_THROWS_AS(Buffer(seg, SIZE_MAX, 2, m), Error);
    Metadata bad;
    bad.user_len = 65;
    CHECK_THROWS_AS(Buffer(seg, 0, 1, bad), Error);
}

TEST_CASE("clone and slice alias the memory and keep their own metadata") {
    auto seg = heap::create(4096);
    Metadata m;
    m.sequence = 7;
    Buffer a(seg, 100, 200, m);
    Buffer b = a.clone();
    CHECK(b.data() == a.data());
    Metadata m2 = m;
    m2.sequence = 8;
    b.set_metadata(m2);
    CHECK(a.metadata().sequence == 7);
    Buffer s = a.slice(50, 10);
    CHECK(s.data() == a.data() + 50);
    CHECK(s.offset() == 150);
    CHECK(s.metadata().sequence == 7);
    CHECK_THROWS_AS(a.slice(190, 11), Error);
    CHECK_THROWS_AS(a.slice(SIZE_MAX, 1), Error);
    a.mutable_data()[50] = std::byte{9};
    CHECK(s.data()[0] == std::byte{9});
}

TEST_CASE("a pool slot returns when the last buffer made from it goes") {
    auto pool = MemoryPool::create(heap::create(4096), 1024);
    Slot *slot = pool->try_loan();
    {
        Buffer a(pool->segment_ref(), slot->index() * 1024, 1024, Metadata{},
                 Ref<RefCounted>::adopt(slot));
        CHECK(pool->available() == 3);
        Buffer b = a.slice(0, 10);
        { Buffer c = a.clone(); }
        CHECK(pool->available() == 3);
    }
    CHECK(pool->available() == 4);
}

TEST_CASE("a format set again on a buffer of the same length is shared, never unchecked") {
    auto seg = heap::create(4096);
    Metadata m;
    Format f;
    f.dtype = static_cast<uint32_t>(DType::u8);
    f.ndim = 2;
    f.shape[0] = 16;
    f.shape[1] = 16; // 256 bytes
    Buffer a(seg, 0, 256, m);
    Buffer b(seg, 256, 256, m);
    a.set_format(f);
    b.set_format(f);
    // The second frame of a producer reuses the first one's record: no allocation per frame.
    CHECK(a.shared_format().get() == b.shared_format().get());
    // The same format on a buffer too short for it (just cached) is still refused.
    Buffer shorter(seg, 1024, 255, m);
    CHECK_THROWS_AS(shorter.set_format(f), Error);
    CHECK(shorter.format() == nullptr);
    // Another shape is another record.
    Format g = f;
    g.shape[1] = 8;
    Buffer c(seg, 512, 256, m);
    c.set_format(g);
    CHECK(c.shared_format().get() != a.shared_format().get());
    CHECK(c.format()->shape[1] == 8);
    // And once more on a buffer that fits: valid, and shared again.
    Buffer d(seg, 2048, 256, m);
    d.set_format(f);
    REQUIRE(d.format() != nullptr);
    CHECK(d.format()->shape[0] == 16);
}
