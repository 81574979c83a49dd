#include "core/ipc/wire.hpp"

#include <cstring>
#include <string>

#include "core/error.hpp"

namespace px::ipc::wire {

namespace {

class Writer {
public:
    explicit Writer(Type t, size_t size) {
        out_.reserve(size);
        u32(magic);
        u32(static_cast<uint32_t>(t));
    }
    void u32(uint32_t v) { raw(&v, sizeof v); }
    void u64(uint64_t v) { raw(&v, sizeof v); }
    void raw(const void *p, size_t n) {
        auto b = static_cast<const uint8_t *>(p);
        out_.insert(out_.end(), b, b + n);
    }
    Bytes take() { return std::move(out_); }

private:
    Bytes out_;
};

class Reader {
public:
    Reader(const uint8_t *p, size_t n) : p_(p), n_(n) {}
    uint32_t u32() { return get<uint32_t>(); }
    uint64_t u64() { return get<uint64_t>(); }
    int64_t i64() { return get<int64_t>(); }
    void raw(void *dst, size_t n) {
        need(n);
        std::memcpy(dst, p_ + at_, n);
        at_ += n;
    }

private:
    template <class T> T get() {
        T v;
        raw(&v, sizeof v);
        return v;
    }
    void need(size_t n) const {
        if (n > n_ - at_)
            fail(Status::protocol, "record ends early");
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

void put_metadata(Writer &w, const Metadata &m) {
    w.u64(m.sequence);
    w.u64(static_cast<uint64_t>(m.pts_ns));
    w.u64(static_cast<uint64_t>(m.dts_ns));
    w.u64(static_cast<uint64_t>(m.duration_ns));
    w.u64(m.offset);
    w.u64(m.offset_end);
    w.u32(m.flags);
    w.u32(m.user_len);
    w.raw(m.user, sizeof m.user);
}

Metadata get_metadata(Reader &r) {
    Metadata m;
    m.sequence = r.u64();
    m.pts_ns = r.i64();
    m.dts_ns = r.i64();
    m.duration_ns = r.i64();
    m.offset = r.u64();
    m.offset_end = r.u64();
    m.flags = r.u32();
    m.user_len = r.u32();
    r.raw(m.user, sizeof m.user);
    if (m.user_len > metadata_user_max)
        fail(Status::protocol, "metadata user_len " + std::to_string(m.user_len) +
                                   " exceeds " + std::to_string(metadata_user_max));
    return m;
}

} // namespace

Bytes encode(const Hello &m) {
    Writer w(Type::hello, hello_size);
    w.u32(m.version);
    w.u32(0);
    w.u64(m.pid);
    return w.take();
}

Bytes encode(const Data &m) {
    Writer w(Type::data, data_size);
    w.u32(m.flags);
    w.u32(m.segment_id);
    w.u64(m.offset);
    w.u64(m.len);
    w.u64(m.token);
    w.u64(m.segment_size);
    w.u64(m.page_size);
    w.u32(m.memory_type);
    w.u32(0);
    put_metadata(w, m.meta);
    return w.take();
}

Bytes encode(const Unregister &m) {
    Writer w(Type::unregister, unregister_size);
    w.u32(m.segment_id);
    w.u32(0);
    return w.take();
}

Bytes encode(const Returns &m) {
    if (m.tokens.size() > max_returns_per_record)
        fail(Status::internal, "too many returns in one record");
    Writer w(Type::returns, header_size + 8 + 8 * m.tokens.size());
    w.u32(static_cast<uint32_t>(m.tokens.size()));
    w.u32(0);
    for (uint64_t t : m.tokens)
        w.u64(t);
    return w.take();
}

Record decode(const uint8_t *bytes, size_t n) {
    if (!bytes || n < header_size)
        fail(Status::protocol, "record of " + std::to_string(n) + " bytes is shorter than a header");
    Reader r(bytes, n);
    uint32_t got_magic = r.u32();
    if (got_magic != magic)
        fail(Status::protocol, "bad magic 0x" + std::to_string(got_magic) +
                                   " (not a libparallax peer?)");
    Record rec;
    uint32_t type = r.u32();
    switch (static_cast<Type>(type)) {
    case Type::hello: {
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
    }
    case Type::data: {
        expect_size("data", n, data_size);
        rec.type = Type::data;
        Data &d = rec.data;
        d.flags = r.u32();
        d.segment_id = r.u32();
        d.offset = r.u64();
        d.len = r.u64();
        d.token = r.u64();
        d.segment_size = r.u64();
        d.page_size = r.u64();
        d.memory_type = r.u32();
        r.u32();
        d.meta = get_metadata(r);
        if (d.flags & ~Data::new_segment)
            fail(Status::protocol, "unknown data flags " + std::to_string(d.flags));
        if (d.flags & Data::new_segment) {
            if (d.segment_size == 0)
                fail(Status::protocol, "new segment of 0 bytes");
            if (d.offset > d.segment_size || d.len > d.segment_size - d.offset)
                fail(Status::protocol, "range [" + std::to_string(d.offset) + ", +" +
                                           std::to_string(d.len) + ") exceeds segment length " +
                                           std::to_string(d.segment_size));
        }
        return rec;
    }
    case Type::unregister:
        expect_size("unregister", n, unregister_size);
        rec.type = Type::unregister;
        rec.unregister.segment_id = r.u32();
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
