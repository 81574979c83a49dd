// SPDX-License-Identifier: Apache-2.0 OR MIT
// A peer that lies about formats (issue 15, wire protocol 5): format records with fields no
// format may have, formats beyond the buffer they are attached to, typed records with no format
// in force, unknown bits beside the typed bit. The honest end runs in another process; each lie
// is PX_E_PROTOCOL with a message naming it, the connection stays dropped, and the honest
// process is intact (it was answered, not killed).
#include <doctest/doctest.h>

#include <climits>
#include <cstring>
#include <functional>
#include <string>
#include <unistd.h>

#include "fault_support.hpp"
#include "forged_peer.hpp"

using namespace px_test;
using namespace px_fault;

namespace {

constexpr int64_t second_ns = 1'000'000'000;
constexpr uint64_t segment_len = 4096;

px::Format u8_shape(std::initializer_list<int64_t> shape) {
    px::Format f;
    f.dtype = PX_DTYPE_U8;
    for (int64_t s : shape)
        f.shape[f.ndim++] = s;
    return f;
}

// A format record with any bytes (the encoder copies them as they are).
wire::Bytes format_record(const px::Format &f) {
    return wire::encode(f);
}

// A data record of [0, len) of segment 1, typed or not.
wire::Bytes data_record(uint64_t len, bool typed) {
    wire::Data d;
    d.segment_id = 1;
    d.len = len;
    d.typed = typed;
    return wire::encode(d);
}

struct Verdict {
    int exit = -1;
    int received = 0;           // buffers the honest end took before the first failure
    px_status_t failed = PX_OK; // the first failure
    std::string message;        // its message
    px_status_t after = PX_OK;  // the next recv on the same channel
};

// The honest end in a child: adopts the channel, receives until the first failure (1 s each),
// then once more, and reports through a pipe. Meanwhile `lie` runs here on the forged peer, after
// segment 1 (segment_len bytes) is registered.
Verdict against(const std::function<void(ForgedPeer &)> &lie) {
    ForgedPeer forged;
    int report[2];
    REQUIRE(::pipe(report) == 0);
    pid_t pid = fork_child([&] {
        limit_child_lifetime(20);
        ::close(report[0]);
        ::close(forged.evil);
        ::close(forged.evil_return_in);
        px_channel_t *ch = nullptr;
        if (px_channel_from_fd(forged.honest_fd, &ch) != PX_OK)
            return 2;
        int received = 0;
        px_status_t rc = PX_OK;
        for (; received < 16; ++received) {
            px_buffer_t *b = nullptr;
            rc = px_channel_recv(ch, second_ns, &b);
            px_buffer_release(b);
            if (rc != PX_OK)
                break;
        }
        const std::string message = px_last_error_message();
        px_buffer_t *b = nullptr;
        const px_status_t after = px_channel_recv(ch, 0, &b);
        px_buffer_release(b);
        const std::string line = std::to_string(received) + " " + std::to_string(rc) + " " +
                                 std::to_string(after) + " " + message;
        if (::write(report[1], line.data(), line.size()) != static_cast<ssize_t>(line.size()))
            return 3;
        px_channel_release(ch);
        return 0;
    });
    ::close(report[1]);
    forged.close_honest_fd_copy();
    forged.finish_handshake();
    int fd = sealed_memfd(segment_len);
    REQUIRE(fd >= 0);
    REQUIRE(forged.register_segment(1, segment_len, &fd, 1));
    ::close(fd);
    lie(forged);
    Verdict v;
    v.exit = wait_child_for(pid, 10000ms);
    char buf[512] = {};
    const ssize_t n = ::read(report[0], buf, sizeof buf - 1);
    ::close(report[0]);
    if (n > 0) {
        int failed = 0, after = 0, used = 0;
        std::sscanf(buf, "%d %d %d %n", &v.received, &failed, &after, &used);
        v.failed = static_cast<px_status_t>(failed);
        v.after = static_cast<px_status_t>(after);
        v.message = buf + used;
    }
    return v;
}

// The lie is refused after `honest` good buffers, with PX_E_PROTOCOL naming `needle`.
void check_refused(const Verdict &v, int honest, const char *needle) {
    CHECK(v.exit == 0);
    CHECK(v.received == honest);
    CHECK(v.failed == PX_E_PROTOCOL);
    CHECK_MESSAGE(v.message.find(needle) != std::string::npos, v.message);
    CHECK(v.after == PX_E_PROTOCOL); // the connection stays dropped
}

} // namespace

TEST_CASE("forged formats: each lie is PX_E_PROTOCOL naming it, in the receiving process") {
    SUBCASE("a format beyond the buffer") {
        check_refused(against([](ForgedPeer &f) {
                          REQUIRE(f.push(format_record(u8_shape({1080, 1920, 3}))));
                          REQUIRE(f.push(data_record(segment_len, true)));
                      }),
                      0, "typed data record's format: elements span 6220800 bytes, beyond");
    }
    SUBCASE("ndim 9") {
        px::Format bad = u8_shape({1, 1, 1, 1, 1, 1, 1, 1});
        bad.ndim = 9;
        check_refused(against([&](ForgedPeer &f) {
                          REQUIRE(f.push(format_record(bad)));
                          REQUIRE(f.push(data_record(segment_len, true)));
                      }),
                      0, "format: ndim 9 exceeds 8");
    }
    SUBCASE("an unknown dtype") {
        px::Format bad = u8_shape({16});
        bad.dtype = 13;
        check_refused(against([&](ForgedPeer &f) {
                          REQUIRE(f.push(format_record(bad)));
                          REQUIRE(f.push(data_record(segment_len, true)));
                      }),
                      0, "format: unknown dtype 13");
    }
    SUBCASE("strides that overflow 64 bits") {
        px::Format bad = u8_shape({4, 1});
        bad.strides[0] = INT64_MAX;
        bad.strides[1] = 1;
        check_refused(against([&](ForgedPeer &f) {
                          REQUIRE(f.push(format_record(bad)));
                          REQUIRE(f.push(data_record(segment_len, true)));
                      }),
                      0, "format: shape and strides overflow 64 bits");
    }
    SUBCASE("a shape whose C-contiguous size overflows") {
        check_refused(against([](ForgedPeer &f) {
                          REQUIRE(f.push(format_record(u8_shape({1ll << 40, 1ll << 40}))));
                          REQUIRE(f.push(data_record(segment_len, true)));
                      }),
                      0, "overflow");
    }
    SUBCASE("a typed record with no format in force") {
        check_refused(against([](ForgedPeer &f) {
                          REQUIRE(f.push(data_record(16, false))); // untyped: fine
                          REQUIRE(f.push(data_record(16, true)));
                      }),
                      1, "a typed data record before any format record");
    }
    SUBCASE("a format that fits one record and not a shorter one after it") {
        // The receiver checks each length, not only the first it saw under the format.
        check_refused(against([](ForgedPeer &f) {
                          REQUIRE(f.push(format_record(u8_shape({64, 64}))));
                          REQUIRE(f.push(data_record(segment_len, true)));
                          REQUIRE(f.push(data_record(segment_len, true)));
                          REQUIRE(f.push(data_record(100, true)));
                      }),
                      2, "beyond the buffer's 100");
    }
    SUBCASE("an unknown bit beside the typed bit") {
        check_refused(against([](ForgedPeer &f) {
                          wire::Bytes rec = data_record(16, false);
                          const uint32_t kind = wire::typed_bit << 1;
                          std::memcpy(rec.data + 12, &kind, sizeof kind);
                          REQUIRE(f.push(rec));
                      }),
                      0, "unknown data record kind");
    }
    SUBCASE("a format record on the socket instead of the ring") {
        check_refused(against([](ForgedPeer &f) {
                          const wire::Bytes rec = format_record(u8_shape({16}));
                          px::ipc::send_message(f.evil, rec.data, rec.size, nullptr, 0);
                      }),
                      0, "unexpected record type 7 on the socket");
    }
}

TEST_CASE("a forged peer's honest formats are delivered: typed, retyped, untyped, in force") {
    // The same records a library peer sends, built by hand: what the receiver accepts.
    const px::Format square = u8_shape({64, 64});
    px::Format column = u8_shape({1024});
    column.dtype = PX_DTYPE_F32;
    ForgedPeer forged;
    int report[2];
    REQUIRE(::pipe(report) == 0);
    pid_t pid = fork_child([&] {
        limit_child_lifetime(20);
        ::close(report[0]);
        ::close(forged.evil);
        ::close(forged.evil_return_in);
        px_channel_t *ch = nullptr;
        if (px_channel_from_fd(forged.honest_fd, &ch) != PX_OK)
            return 2;
        // Each buffer's ndim and dtype, in order.
        std::string seen;
        for (int k = 0; k < 4; ++k) {
            px_buffer_t *b = nullptr;
            if (px_channel_recv(ch, 5 * second_ns, &b) != PX_OK)
                return 3;
            px_format_t f;
            if (px_buffer_format(b, &f) != PX_OK || px_buffer_mut_ptr(b) != nullptr)
                return 4;
            seen += std::to_string(f.ndim) + ":" + std::to_string(f.dtype) + " ";
            px_buffer_release(b);
        }
        if (::write(report[1], seen.data(), seen.size()) != static_cast<ssize_t>(seen.size()))
            return 5;
        px_channel_release(ch);
        return 0;
    });
    ::close(report[1]);
    forged.close_honest_fd_copy();
    forged.finish_handshake();
    int fd = sealed_memfd(segment_len);
    REQUIRE(fd >= 0);
    REQUIRE(forged.register_segment(1, segment_len, &fd, 1));
    ::close(fd);
    REQUIRE(forged.push(format_record(square)));
    REQUIRE(forged.push(data_record(segment_len, true)));
    REQUIRE(forged.push(data_record(segment_len, false)));
    REQUIRE(forged.push(data_record(segment_len, true))); // still in force after an untyped one
    REQUIRE(forged.push(format_record(column)));
    REQUIRE(forged.push(data_record(segment_len, true)));
    CHECK(wait_child_for(pid, 10000ms) == 0);
    char buf[128] = {};
    CHECK(::read(report[0], buf, sizeof buf - 1) > 0);
    ::close(report[0]);
    CHECK(std::string(buf) == "2:1 0:0 2:1 1:11 ");
}
