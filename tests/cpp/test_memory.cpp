// SPDX-License-Identifier: Apache-2.0 OR MIT
// The C++ wrapper (parallax.hpp): errors, metadata, segments, pools, slots, buffers.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <thread>
#include <type_traits>
#include <unistd.h>
#include <vector>

#include "parallax/parallax.hpp"
#include "support/hugepages.hpp"

using namespace std::chrono_literals;
namespace px = parallax;

// Ownership rules, fixed at compile time.
static_assert(std::is_copy_constructible_v<px::Segment> && std::is_nothrow_move_constructible_v<px::Segment>);
static_assert(std::is_copy_constructible_v<px::Pool> && std::is_nothrow_move_constructible_v<px::Pool>);
static_assert(std::is_copy_constructible_v<px::Buffer> && std::is_nothrow_move_constructible_v<px::Buffer>);
static_assert(!std::is_copy_constructible_v<px::Slot> && !std::is_copy_assignable_v<px::Slot>);
static_assert(std::is_nothrow_move_constructible_v<px::Slot> && std::is_nothrow_move_assignable_v<px::Slot>);
static_assert(!std::is_copy_constructible_v<px::Channel> && std::is_nothrow_move_constructible_v<px::Channel>);
static_assert(!std::is_copy_constructible_v<px::Listener> && std::is_nothrow_move_constructible_v<px::Listener>);
static_assert(std::is_base_of_v<std::exception, px::Error>);
static_assert(sizeof(px::Metadata) == sizeof(px_metadata_t));

namespace {
// Runs `f`, expects a parallax::Error with `status` whose message contains `needle`.
template <class F> px::Error expect_error(F &&f, px::Status status, const std::string &needle = "") {
    try {
        f();
    } catch (const px::Error &e) {
        CHECK(e.status() == status);
        CHECK_MESSAGE(e.message().find(needle) != std::string::npos, e.message());
        return e;
    }
    FAIL("no parallax::Error thrown; expected " << px::status_name(status));
    return px::Error(PX_E_INTERNAL, "unreachable");
}
} // namespace

TEST_CASE("C++: errors carry the status and the library's message") {
    auto e = expect_error([] { px::Segment::heap(0); }, px::Status::invalid, "size is 0");
    CHECK(e.code() == PX_E_INVALID);
    CHECK(e.message().rfind("px_segment_heap_new", 0) == 0);
    CHECK(std::string(e.what()) == e.message() + " (PX_E_INVALID)");
    CHECK(std::string(px::status_name(px::Status::timeout)) == "PX_E_TIMEOUT");
    CHECK(static_cast<px_status_t>(px::Status::internal) == PX_E_INTERNAL);
    CHECK(px::version() == PX_VERSION);
    CHECK(std::string(px::version_string()) == PX_VERSION_STRING);
}

TEST_CASE("C++: Metadata has px_metadata_init defaults and bounded user data") {
    px::Metadata m;
    CHECK(m.pts_ns == PX_TIME_NONE);
    CHECK(m.dts_ns == PX_TIME_NONE);
    CHECK(m.duration_ns == PX_TIME_NONE);
    CHECK(!m.has_pts());
    CHECK(m.sequence == 0);
    CHECK(m.user_len == 0);
    CHECK(px::Metadata(7).sequence == 7);
    m.pts_ns = 5;
    CHECK(m.has_pts());
    m.set_user_data("camera-3");
    CHECK(m.user_data() == "camera-3");
    m.set_user_data(std::string(64, 'x'));
    CHECK(m.user_data().size() == 64);
    expect_error([&] { m.set_user_data(std::string(65, 'y')); }, px::Status::invalid, "65 bytes");
    CHECK(m.user_data() == std::string(64, 'x')); // unchanged
    m.set_user_data("");
    CHECK(m.user_data().empty());
}

TEST_CASE("C++: segments — constructors, copies share, moves empty") {
    px::Segment heap = px::Segment::heap(4096);
    CHECK(heap.size() == 4096);
    CHECK(heap.memory_type() == PX_MEMORY_HEAP);
    CHECK(!heap.is_readonly());
    CHECK(heap.mutable_data() == heap.data());
    expect_error([&] { heap.ipc_handle(); }, px::Status::unsupported, "heap");

    px::Segment shm = px::Segment::shm(1 << 20, "frames");
    CHECK(shm.memory_type() == PX_MEMORY_SHARED);
    CHECK(shm.page_size() == 4096);
    std::memcpy(shm.mutable_data(), "abc", 3);
    px::Segment copy = shm;
    CHECK(copy.get() == shm.get());
    px::Segment moved = std::move(shm);
    CHECK(!shm); // NOLINT(bugprone-use-after-move): documented moved-from state
    CHECK(moved);
    px_ipc_handle_t h = moved.ipc_handle();
    CHECK(h.kind == PX_IPC_FD);
    CHECK(h.size == 1u << 20);
    px::Segment ro = px::Segment::from_fd(h.fd, h.size, PX_MAP_READONLY);
    CHECK(ro.is_readonly());
    CHECK(ro.mutable_data() == nullptr);
    moved = px::Segment();
    copy = px::Segment(); // the last reference: the original mapping is gone
    CHECK(std::memcmp(ro.data(), "abc", 3) == 0); // the fd was dup'ed: still mapped
    px::Segment adopted = px::Segment::retain(ro.get());
    CHECK(adopted.get() == ro.get());

    px_segment_t *raw = px::Segment::heap(64).release();
    CHECK(px_segment_len(raw) == 64);
    px_segment_release(raw);
}

TEST_CASE("C++: segment bad input throws, never crashes") {
    expect_error([] { px::Segment::heap(SIZE_MAX); }, px::Status::invalid, "overflows");
    expect_error([] { px::Segment::shm(0); }, px::Status::invalid);
    expect_error([] { px::Segment::from_fd(-1, 16); }, px::Status::invalid);
    int p[2];
    REQUIRE(pipe(p) == 0);
    expect_error([&] { px::Segment::from_fd(p[0], 16); }, px::Status::invalid, "pipe");
    close(p[0]);
    close(p[1]);
    int unsealed = memfd_create("x", MFD_CLOEXEC);
    REQUIRE(ftruncate(unsealed, 4096) == 0);
    expect_error([&] { px::Segment::from_fd(unsealed, 4096); }, px::Status::permission, "F_SEAL_SHRINK");
    CHECK(px::Segment::from_fd(unsealed, 4096, PX_MAP_ALLOW_UNSEALED).size() == 4096);
    close(unsealed);
    expect_error([] { px::Segment::hugepage(12345, 4096, true); }, px::Status::invalid);
    expect_error([] { px::Segment::file_open("/nonexistent/dir/file"); }, px::Status::io, "No such file");
    expect_error([] { px::Segment::file_open("/tmp"); }, px::Status::invalid, "directory");
}

TEST_CASE("C++: huge pages fall back honestly or explain") {
    px::Segment s = px::Segment::hugepage(PX_HUGE_PAGE_2MB, 1000, true);
    if (s.memory_type() == PX_MEMORY_HUGE_PAGES) {
        CHECK(s.page_size() == PX_HUGE_PAGE_2MB);
    } else {
        CHECK(s.memory_type() == PX_MEMORY_SHARED);
        CHECK(s.page_size() == 4096);
    }
    px_test::HugePageReservation none(0);
    if (none.free_pages() == 0)
        expect_error([] { px::Segment::hugepage(PX_HUGE_PAGE_2MB, 1, false); },
                     px::Status::unsupported, "nr_hugepages");
}

TEST_CASE("C++: mapped files") {
    px_test::TempDir dir;
    std::string path = dir.file("data.bin");
    {
        px::Segment f = px::Segment::file_create(path, 12345);
        CHECK(f.memory_type() == PX_MEMORY_MAPPED_FILE);
        std::memcpy(f.mutable_data(), "saved", 5);
        f.flush();
    }
    expect_error([&] { px::Segment::file_create(path, 1); }, px::Status::invalid, "already exists");
    px::Segment ro = px::Segment::file_open_readonly(path);
    CHECK(ro.size() == 12345);
    CHECK(ro.is_readonly());
    CHECK(std::memcmp(ro.data(), "saved", 5) == 0);
    px::Buffer b = px::Buffer::from_segment(ro);
    CHECK(b.is_readonly());
    CHECK(b.mutable_data() == nullptr);
    expect_error([&] { px::Pool(ro, 64); }, px::Status::unsupported);
    px::Segment rw = px::Segment::file_open(path);
    CHECK(!rw.is_readonly());

    // A file truncated under the mapping: read() reports it instead of a SIGBUS.
    std::string shrinking = dir.file("shrinking");
    px::Segment big = px::Segment::file_create(shrinking, 3 * 4096);
    std::memset(big.mutable_data(), 7, 3 * 4096);
    big.flush();
    char page[4096];
    big.read(2 * 4096, page, sizeof page);
    CHECK(page[4095] == 7);
    REQUIRE(truncate(shrinking.c_str(), 4096) == 0);
    expect_error([&] { big.read(2 * 4096, page, sizeof page); }, px::Status::io);
    big.read(0, page, sizeof page);
    CHECK(page[0] == 7);
    expect_error([&] { big.read(3 * 4096 - 1, page, 2); }, px::Status::invalid);
}

TEST_CASE("C++: the seed's pool: 16 slots, exhaustion, RAII return") {
    px::Pool pool(px::Segment::heap(1 << 20), 64 << 10);
    CHECK(pool.capacity() == 16);
    CHECK(pool.slot_size() == 64 << 10);
    CHECK(pool.segment().size() == 1 << 20);
    std::vector<px::Slot> slots;
    for (int i = 0; i < 16; ++i) {
        slots.push_back(pool.loan());
        CHECK(slots.back().size() == 64 << 10);
        CHECK(slots.back().data() == pool.segment().mutable_data() + slots.back().index() * (64 << 10));
    }
    CHECK(pool.available() == 0);
    expect_error([&] { pool.loan(); }, px::Status::would_block, "16 slots is out");
    CHECK(!pool.try_loan().has_value());
    expect_error([&] { pool.loan(px::no_wait); }, px::Status::would_block);
    auto t0 = std::chrono::steady_clock::now();
    expect_error([&] { pool.loan(20ms); }, px::Status::timeout);
    CHECK(std::chrono::steady_clock::now() - t0 >= 15ms);
    slots.pop_back();
    CHECK(pool.available() == 1);
    std::optional<px::Slot> s = pool.try_loan();
    REQUIRE(s.has_value());
    s->reset();
    CHECK(!*s);
    CHECK(pool.available() == 1);
    slots.clear();
    CHECK(pool.available() == 16);
}

TEST_CASE("C++: slots move, into_buffer consumes, the slot returns with the last buffer") {
    px::Pool pool(px::Segment::shm(4096), 1024);
    const size_t cap = pool.capacity();
    px::Slot a = pool.loan();
    std::memcpy(a.data(), "data", 4);
    px::Slot b = std::move(a);
    CHECK(!a); // NOLINT(bugprone-use-after-move)
    CHECK(pool.available() == cap - 1);
    px::Slot c = pool.loan();
    c = std::move(b); // c's own slot goes back
    CHECK(pool.available() == cap - 1);
    px::Metadata meta(5);
    meta.pts_ns = 123;
    size_t index = c.index();
    px::Buffer buf = std::move(c).into_buffer(4, meta);
    CHECK(!c); // NOLINT(bugprone-use-after-move)
    CHECK(buf.view() == "data");
    CHECK(buf.offset() == index * 1024);
    CHECK(buf.metadata().sequence == 5);
    CHECK(buf.metadata().pts_ns == 123);
    px::Buffer copy = buf;
    px::Buffer slice = buf.slice(1, 2);
    buf = px::Buffer();
    copy = px::Buffer();
    CHECK(pool.available() == cap - 1); // the slice still holds it
    CHECK(slice.view() == "at");
    slice = px::Buffer();
    CHECK(pool.available() == cap);

    px::Slot bad = pool.loan();
    expect_error([&] { std::move(bad).into_buffer(0); }, px::Status::invalid);
    CHECK(!bad); // NOLINT(bugprone-use-after-move): consumed even on failure
    CHECK(pool.available() == cap);
    px::Slot big = pool.loan();
    expect_error([&] { std::move(big).into_buffer(1025); }, px::Status::invalid);
    CHECK(pool.available() == cap);
}

TEST_CASE("C++: pool bad input and lifetimes") {
    px::Segment seg = px::Segment::heap(4096);
    expect_error([&] { px::Pool(seg, 0); }, px::Status::invalid, "slot_size is 0");
    expect_error([&] { px::Pool(seg, 4097); }, px::Status::invalid);
    expect_error([&] { px::Pool(seg, SIZE_MAX); }, px::Status::invalid);
    expect_error([] { px::Pool(px::Segment(), 64); }, px::Status::invalid); // empty segment
    px::Slot slot;
    {
        px::Pool pool(seg, 4096);
        px::Pool copy = pool;
        CHECK(copy.get() == pool.get());
        slot = pool.loan();
    } // both pool handles gone; the slot keeps the pool alive
    seg = px::Segment();
    std::memset(slot.data(), 1, 4096);
    px::Buffer b = std::move(slot).into_buffer(4096);
    CHECK(b.data()[4095] == std::byte{1});
}

TEST_CASE("C++: buffers — range checks, copies are clones, metadata per buffer") {
    px::Segment seg = px::Segment::shm(8192);
    for (size_t i = 0; i < 8192; ++i)
        seg.mutable_data()[i] = static_cast<std::byte>(i);
    auto e = expect_error([&] { px::Buffer(seg, 8190, 16); }, px::Status::invalid);
    CHECK(e.message() == "px_buffer_new: range [8190, +16) exceeds segment length 8192");
    expect_error([&] { px::Buffer(seg, SIZE_MAX, 2); }, px::Status::invalid);
    px::Metadata bad;
    bad.user_len = 65; // set directly, bypassing set_user_data: the library refuses it
    expect_error([&] { px::Buffer(seg, 0, 1, bad); }, px::Status::invalid, "user_len 65");
    px::Buffer empty(seg, 8192, 0);
    CHECK(empty.empty());

    px::Metadata meta(1);
    meta.set_user_data("abc");
    px::Buffer whole = px::Buffer::from_segment(seg, meta);
    seg = px::Segment(); // the buffer keeps the segment
    CHECK(whole.size() == 8192);
    CHECK(!whole.is_readonly());
    px::Buffer slice = whole.slice(100, 50);
    CHECK(slice.offset() == 100);
    CHECK(slice.data() == whole.data() + 100);
    CHECK(slice.data()[0] == std::byte{100});
    expect_error([&] { slice.slice(10, 41); }, px::Status::invalid, "exceeds buffer length 50");

    px::Buffer clone = whole; // px_buffer_clone
    CHECK(clone.get() != whole.get());
    CHECK(clone.data() == whole.data());
    clone.set_metadata(px::Metadata(99));
    CHECK(clone.metadata().sequence == 99);
    CHECK(whole.metadata().sequence == 1);
    CHECK(whole.metadata().user_data() == "abc");
    clone.mutable_data()[100] = std::byte{'z'};
    CHECK(slice.view()[0] == 'z'); // same memory, no copy
    px::Buffer assigned;
    assigned = clone;
    CHECK(assigned.data() == clone.data());
    assigned = assigned; // self-assignment keeps it
    CHECK(assigned);
    CHECK(assigned.segment().size() == 8192);
    px::Buffer none;
    px::Buffer none_copy = none; // copying an empty buffer is empty, not an error
    CHECK(!none_copy);
    px_buffer_t *raw = whole.release();
    px::Buffer readopted(raw);
    CHECK(readopted.size() == 8192);
}

TEST_CASE("C++: buffers and pools shared between threads") {
    px::Pool pool(px::Segment::shm(64 * 256), 256);
    const size_t cap = pool.capacity();
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 1000; ++i) {
                px::Slot s = pool.loan(px::wait_forever);
                std::memset(s.data(), t, 256);
                px::Buffer b = std::move(s).into_buffer(256, px::Metadata(static_cast<uint64_t>(i)));
                px::Buffer c = b;
                for (size_t j = 0; j < 256; ++j)
                    if (c.data()[j] != static_cast<std::byte>(t))
                        ++bad;
            }
        });
    for (auto &t : threads)
        t.join();
    CHECK(bad == 0);
    CHECK(pool.available() == cap);
}
