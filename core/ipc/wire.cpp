// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/ipc/wire.hpp"

#include <cstddef>
#include <cstring>
#include <type_traits>
#include <string>

#include "core/error.hpp"
#include "core/hot.hpp"

namespace px::ipc::wire {

namespace {

class Writer {
public:
    Writer(Type t, Bytes &out) : out_(out) {
        out_.size = 0;
        u32(magic);
        u32(static_cast<uint32_t>(t));
    }
    void u32(uint32_t v) { raw(&v, sizeof v); }
    void u64(uint64_t v) { raw(&v, sizeof v); }
    void raw(const void *p, size_t n) {
        if (n > sizeof out_.data - out_.size)
            fail(Status::internal, "record larger than its buffer");
        std::memcpy(out_.data + out_.size, p, n);
        out_.size += n;
    }

private:
    Bytes &out_;
};

class Reader {
public:
    Reader(const uint8_t *p, size_t n) : p_(p), n_(n) {}
    uint32_t u32() { return get<uint32_t>(); }
    uint64_t u64() { return get<uint64_t>(); }
    void raw(void *dst, size_t n) {
        if (n > n_ - at_)
            fail(Status::protocol, "record ends early");
        std::memcpy(dst, p_ + at_, n);
        at_ += n;
    }

private:
    template <class T> T get() {
        T v;
        raw(&v, sizeof v);
        return v;
    }
    const uint8_t *p_;
    size_t n_;
    size_t at_ = 0;
};

void expect_size(const char *what, size_t got, size_t want) {
    if (got != want)
        fail(Status::protocol, std::string(what) + " record of " + std::to_string(got) +
                                   " bytes (expected " + std::to_string(want) + ")");
}

} // namespace

Bytes encode(const Hello &m) {
    Bytes b;
    Writer w(Type::hello, b);
    w.u32(m.version);
    w.u32(0);
    w.u64(m.pid);
    return b;
}

Bytes encode(const SegmentInfo &m) {
    Bytes b;
    Writer w(Type::segment, b);
    w.u32(m.segment_id);
    w.u32(m.memory_type);
    w.u64(m.size);
    w.u64(m.page_size);
    return b;
}

// Data records: fixed offsets, written and read with one memcpy per field.
namespace {

template <class T> void put_at(uint8_t *out, size_t at, T v) noexcept {
    std::memcpy(out + at, &v, sizeof v);
}
template <class T> T get_at(const uint8_t *in, size_t at) noexcept {
    T v;
    std::memcpy(&v, in + at, sizeof v);
    return v;
}

// Metadata travels as its bytes: same fields in the same order, no padding, so one memcpy
// writes what a put_at per field would.
static_assert(data_size == data_meta_offset + sizeof(Metadata));
static_assert(offsetof(Metadata, sequence) == 0 && offsetof(Metadata, pts_ns) == 8 &&
              offsetof(Metadata, dts_ns) == 16 && offsetof(Metadata, duration_ns) == 24 &&
              offsetof(Metadata, offset) == 32 && offsetof(Metadata, offset_end) == 40 &&
              offsetof(Metadata, flags) == 48 && offsetof(Metadata, user_len) == 52 &&
              offsetof(Metadata, user) == 56 && sizeof(Metadata{}.user) == metadata_user_max);
static_assert(std::is_trivially_copyable_v<Metadata>);

} // namespace

PX_HOT void encode_data(uint32_t segment_id, uint64_t offset, uint64_t len, uint64_t token,
                 StreamTag tag, bool typed, const Metadata &meta, uint8_t *out) noexcept {
    put_at<uint32_t>(out, 0, magic);
    put_at<uint32_t>(out, 4, static_cast<uint32_t>(Type::data));
    put_at<uint32_t>(out, 8, segment_id);
    put_at<uint32_t>(out, 12, static_cast<uint32_t>(tag.kind) | (typed ? typed_bit : 0));
    put_at<uint64_t>(out, 16, offset);
    put_at<uint64_t>(out, 24, len);
    put_at<uint64_t>(out, 32, token);
    put_at<uint64_t>(out, 40, tag.seq);
    std::memcpy(out + data_meta_offset, &meta, sizeof meta);
}

bool is_data(const uint8_t *bytes, size_t n) noexcept {
    return bytes && n >= header_size && get_at<uint32_t>(bytes, 0) == magic &&
           get_at<uint32_t>(bytes, 4) == static_cast<uint32_t>(Type::data);
}

PX_HOT void decode_data_fields(const uint8_t *head, Data &d) {
    d.segment_id = get_at<uint32_t>(head, 8);
    const uint32_t kind_field = get_at<uint32_t>(head, 12);
    const uint32_t kind = kind_field & ~typed_bit;
    if (kind > max_data_kind)
        fail(Status::protocol, "unknown data record kind " + std::to_string(kind) +
                                   (kind > 0xffff ? " (bits beyond the typed bit are set)" : ""));
    d.tag.kind = static_cast<DataKind>(kind);
    d.typed = (kind_field & typed_bit) != 0;
    d.offset = get_at<uint64_t>(head, 16);
    d.len = get_at<uint64_t>(head, 24);
    d.token = get_at<uint64_t>(head, 32);
    d.tag.seq = get_at<uint64_t>(head, 40);
    if (d.meta.user_len > metadata_user_max)
        fail(Status::protocol, "metadata user_len " + std::to_string(d.meta.user_len) +
                                   " exceeds " + std::to_string(metadata_user_max));
    if (d.len > UINT64_MAX - d.offset)
        fail(Status::protocol, "range [" + std::to_string(d.offset) + ", +" +
                                   std::to_string(d.len) + ") overflows");
}

Bytes encode(const Data &m) {
    Bytes b;
    encode_data(m.segment_id, m.offset, m.len, m.token, m.tag, m.typed, m.meta, b.data);
    b.size = data_size;
    return b;
}

Bytes encode(const Unregister &m) {
    Bytes b;
    Writer w(Type::unregister, b);
    w.u32(m.segment_id);
    w.u32(0);
    return b;
}

Bytes encode(const Returns &m) {
    if (m.tokens.empty() || m.tokens.size() > max_returns_per_record)
        fail(Status::internal, "a returns record holds 1 to " +
                                   std::to_string(max_returns_per_record) + " tokens");
    Bytes b;
    Writer w(Type::returns, b);
    w.u32(static_cast<uint32_t>(m.tokens.size()));
    w.u32(0);
    for (uint64_t t : m.tokens)
        w.u64(t);
    return b;
}

// Format's bytes travel as they lie in memory, as Metadata's do: no padding, every byte a field.
static_assert(format_size == header_size + 144 && std::is_trivially_copyable_v<Format>);
static_assert(offsetof(Format, dtype) == 0 && offsetof(Format, ndim) == 4 &&
              offsetof(Format, fourcc) == 8 && offsetof(Format, flags) == 12 &&
              offsetof(Format, shape) == 16 && offsetof(Format, strides) == 16 + 8 * 8);

Bytes encode(const Format &m) {
    Bytes b;
    Writer w(Type::format, b);
    w.raw(&m, sizeof m);
    return b;
}

Bytes encode_wake() {
    Bytes b;
    Writer w(Type::wake, b);
    return b;
}

Record decode(const uint8_t *bytes, size_t n) {
    if (!bytes || n < header_size)
        fail(Status::protocol,
             "record of " + std::to_string(n) + " bytes is shorter than a header");
    Reader r(bytes, n);
    uint32_t got_magic = r.u32();
    if (got_magic != magic)
        fail(Status::protocol, "bad magic " + std::to_string(got_magic) +
                                   " (not a libparallax peer of this protocol?)");
    Record rec;
    uint32_t type = r.u32();
    switch (static_cast<Type>(type)) {
    case Type::hello:
        expect_size("hello", n, hello_size);
        rec.type = Type::hello;
        rec.hello.version = r.u32();
        r.u32();
        rec.hello.pid = r.u64();
        if (rec.hello.version != protocol_version)
            fail(Status::protocol, "peer speaks protocol version " +
                                       std::to_string(rec.hello.version) +
                                       ", this library speaks " +
                                       std::to_string(protocol_version));
        return rec;
    case Type::segment: {
        expect_size("segment", n, segment_size);
        rec.type = Type::segment;
        SegmentInfo &s = rec.segment;
        s.segment_id = r.u32();
        s.memory_type = r.u32();
        s.size = r.u64();
        s.page_size = r.u64();
        if (s.size == 0)
            fail(Status::protocol, "segment of 0 bytes");
        return rec;
    }
    case Type::data:
        expect_size("data", n, data_size);
        rec.type = Type::data;
        std::memcpy(&rec.data.meta, bytes + data_meta_offset, sizeof rec.data.meta);
        decode_data_fields(bytes, rec.data);
        return rec;
    case Type::unregister:
        expect_size("unregister", n, unregister_size);
        rec.type = Type::unregister;
        rec.unregister.segment_id = r.u32();
        return rec;
    case Type::wake:
        expect_size("wake", n, wake_size);
        rec.type = Type::wake;
        return rec;
    case Type::format:
        expect_size("format", n, format_size);
        rec.type = Type::format;
        r.raw(&rec.format, sizeof rec.format);
        // Every rule but "fits the buffer", which each typed data record checks for its length.
        validate_format(rec.format, SIZE_MAX, Status::protocol);
        return rec;
    case Type::returns: {
        if (n < header_size + 8)
            fail(Status::protocol, "returns record ends early");
        rec.type = Type::returns;
        uint32_t count = r.u32();
        r.u32();
        if (count == 0 || count > max_returns_per_record)
            fail(Status::protocol, "returns record with " + std::to_string(count) + " entries");
        expect_size("returns", n, header_size + 8 + 8 * size_t{count});
        rec.returns.tokens.resize(count);
        for (auto &t : rec.returns.tokens)
            t = r.u64();
        return rec;
    }
    }
    fail(Status::protocol, "unknown record type " + std::to_string(type));
}

} // namespace px::ipc::wire
