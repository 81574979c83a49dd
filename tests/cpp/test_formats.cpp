// SPDX-License-Identifier: Apache-2.0 OR MIT
// The C++ wrapper's typed frames: Format (contiguous and strided), Buffer::format/set_format/
// clear_format, checked typed spans (dtype, contiguity, size, alignment, read-only memory), and
// a typed frame written in place through a slot's span, sent to a forked child that reads it
// back as a span of the sender's memory. Compiled as C++20 (std::span).
#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <span>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include "parallax/parallax.hpp"

using namespace std::chrono_literals;
namespace px = parallax;

static_assert(PARALLAX_HAS_SPAN, "this suite is built as C++20");
static_assert(sizeof(px::Format) == sizeof(px_format_t));
static_assert(px::fourcc("RGB3") == (0x52u | 0x47u << 8 | 0x42u << 16 | 0x33u << 24));

namespace {
template <class F> px::Error expect_error(F &&f, px::Status status, const std::string &needle) {
    try {
        f();
    } catch (const px::Error &e) {
        CHECK_MESSAGE(e.status() == status, e.what());
        CHECK_MESSAGE(e.message().find(needle) != std::string::npos, e.message());
        return e;
    }
    FAIL("no parallax::Error thrown; expected " << px::status_name(status) << ": " << needle);
    return px::Error(PX_E_INTERNAL, "unreachable");
}

// A 2x3 f32 frame from a slot of `pool`, element i = i + 0.5, typed.
px::Buffer f32_frame(px::Pool &pool) {
    px::Slot slot = pool.loan(10s);
    std::span<float> values = slot.as_span<float>();
    REQUIRE(values.size() >= 6);
    for (size_t i = 0; i < 6; ++i)
        values[i] = static_cast<float>(i) + 0.5f;
    px::Buffer frame = std::move(slot).into_buffer(6 * sizeof(float));
    frame.set_format(px::Format::contiguous(px::Dtype::f32, {2, 3}, px::fourcc("R32F")));
    return frame;
}
} // namespace

TEST_CASE("C++ formats: set, read, kept by copies, dropped by slices, cleared") {
    px::Pool pool(px::Segment::heap(4 * 64), 64);
    px::Buffer b = std::move(*pool.try_loan()).into_buffer(48);
    CHECK_FALSE(b.format().has_value());

    b.set_format(px::Format::contiguous(px::Dtype::u16, {2, 3, 4}, px::fourcc("Y16 ")));
    const std::optional<px::Format> f = b.format();
    REQUIRE(f.has_value());
    CHECK(f->type() == px::Dtype::u16);
    CHECK(f->ndim == 3);
    CHECK((f->shape[0] == 2 && f->shape[1] == 3 && f->shape[2] == 4 && f->shape[3] == 0));
    CHECK((f->strides[0] == 0 && f->strides[2] == 0)); // contiguous: all 0, as in C
    CHECK(f->fourcc == px::fourcc("Y16 "));
    CHECK(f->elements() == 24u);
    CHECK(f->is_contiguous());

    const px::Buffer copy = b;
    CHECK(copy.format()->ndim == 3);
    CHECK_FALSE(b.slice(0, 8).format().has_value());
    b.clear_format();
    CHECK_FALSE(b.format().has_value());
    CHECK(copy.format()->ndim == 3);
}

TEST_CASE("C++ formats: a format that does not fit, or malformed, throws and changes nothing") {
    px::Pool pool(px::Segment::heap(64), 64);
    px::Buffer b = std::move(*pool.try_loan()).into_buffer(48);
    b.set_format(px::Format::contiguous(px::Dtype::f32, {12}));
    expect_error([&] { b.set_format(px::Format::contiguous(px::Dtype::f32, {13})); },
                 px::Status::invalid, "px_buffer_set_format");
    CHECK(b.format()->shape[0] == 12);
    expect_error(
        [&] {
            b.set_format(px::Format::strided(px::Dtype::u8, {2, 4}, {48, 1}));
        },
        px::Status::invalid, "px_buffer_set_format");
    expect_error([&] { b.set_format(px::Format::contiguous(px::Dtype::u8, {-1})); },
                 px::Status::invalid, "px_buffer_set_format");
    expect_error([&] { b.set_format(px::Format::contiguous(static_cast<px::Dtype>(99), {1})); },
                 px::Status::invalid, "px_buffer_set_format");
    expect_error(
        [&] {
            px::Format::contiguous(px::Dtype::u8, {1, 1, 1, 1, 1, 1, 1, 1, 1});
        },
        px::Status::invalid, "9 dimensions");
    expect_error([&] { px::Format::contiguous(px::Dtype::u8, {}); }, px::Status::invalid,
                 "0 dimensions");
    expect_error(
        [&] {
            px::Format::strided(px::Dtype::u8, {2, 2}, {2});
        },
        px::Status::invalid, "1 strides for 2 dimensions");
    CHECK(b.format()->shape[0] == 12);
}

TEST_CASE("C++ formats: typed spans check dtype, contiguity, size and alignment") {
    px::Pool pool(px::Segment::heap(2 * 64), 64);
    const px::Buffer frame = f32_frame(pool);
    const std::span<const float> values = frame.as_span<float>();
    REQUIRE(values.size() == 6);
    CHECK(values[4] == 4.5f);
    CHECK(static_cast<const void *>(values.data()) == static_cast<const void *>(frame.data()));
    const auto [first, n] = frame.typed_view<float>(); // the C++17 form
    CHECK((first == values.data() && n == 6));

    expect_error([&] { (void)frame.as_span<uint32_t>(); }, px::Status::invalid, "dtype is F32");
    expect_error([&] { (void)frame.as_span<double>(); }, px::Status::invalid, "dtype is F32");
    expect_error([&] { (void)frame.typed_view<int32_t>(); }, px::Status::invalid,
                 "Buffer::typed_view");

    px::Buffer bytes = frame;
    bytes.clear_format();
    CHECK(bytes.as_span<uint32_t>().size() == 6);
    CHECK(bytes.as_span<uint8_t>().size() == 24);
    expect_error([&] { (void)bytes.slice(0, 22).as_span<uint32_t>(); }, px::Status::invalid,
                 "whole number");
    expect_error([&] { (void)bytes.slice(2, 20).as_span<uint32_t>(); }, px::Status::invalid,
                 "not aligned");
    CHECK(bytes.slice(2, 20).as_span<uint16_t>().size() == 10);

    px::Buffer padded = frame;
    padded.set_format(px::Format::strided(px::Dtype::f32, {2, 2}, {12, 4}));
    CHECK_FALSE(padded.format()->is_contiguous());
    expect_error([&] { (void)padded.as_span<float>(); }, px::Status::invalid, "not contiguous");
    padded.set_format(px::Format::contiguous(px::Dtype::f32, {2, 2}));
    CHECK(padded.as_span<float>().size() == 4); // the format's elements, not the whole buffer

    px::Buffer half = frame;
    half.set_format(px::Format::contiguous(px::Dtype::bf16, {12}));
    CHECK(half.as_span<uint16_t>().size() == 12); // raw bits
    expect_error([&] { (void)half.as_span<int16_t>(); }, px::Status::invalid, "dtype is BF16");

    px::Slot odd = px::Pool(px::Segment::heap(12), 6).loan();
    CHECK(odd.as_span<uint16_t>().size() == 3);
    expect_error([&] { (void)odd.as_span<uint32_t>(); }, px::Status::invalid, "whole number");
}

TEST_CASE("C++ formats: a writable span for writable memory only") {
    px::Pool pool(px::Segment::shm(2 * 64, "cpp-formats"), 64);
    px::Buffer frame = f32_frame(pool);
    frame.as_mutable_span<float>()[0] = 42.0f;
    CHECK(frame.as_span<float>()[0] == 42.0f);

    auto [a, b] = px::Channel::pair();
    a.send(frame);
    px::Buffer got = b.recv(10s);
    REQUIRE(got.is_readonly());
    expect_error([&] { (void)got.as_mutable_span<float>(); }, px::Status::unsupported, "read-only");
}

TEST_CASE("C++ formats: a typed frame crosses fork() and is read as a span of the sender's "
          "memory") {
    px::Pool pool(px::Segment::shm(4 * 64, "cpp-formats"), 64);
    auto [parent_end, child_end] = px::Channel::pair();
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        parent_end = px::Channel();
        int code = 0;
        try {
            const px::Buffer got = child_end.recv(10s);
            const std::optional<px::Format> f = got.format();
            const std::span<const float> v = got.as_span<float>();
            if (!got.is_readonly() || !f || f->ndim != 2 || f->shape[0] != 2 || f->shape[1] != 3 ||
                f->fourcc != px::fourcc("R32F") || v.size() != 6)
                code = 2;
            for (size_t i = 0; code == 0 && i < v.size(); ++i)
                if (v[i] != static_cast<float>(i) + 0.5f)
                    code = 3;
        } catch (const px::Error &) {
            code = 4;
        }
        _exit(code);
    }
    child_end = px::Channel();
    parent_end.send(f32_frame(pool));
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK_MESSAGE(WEXITSTATUS(status) == 0, "child failed with code " << WEXITSTATUS(status)
                                                                      << " (2: format, 3: "
                                                                         "values, 4: threw)");
}
