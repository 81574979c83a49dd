// SPDX-License-Identifier: Apache-2.0 OR MIT
// libFuzzer target: the descriptor and handshake decoder (core/ipc/wire.cpp), the first code a
// hostile peer's bytes reach, whether they come from the socket or a ring entry.
//
// Properties checked on every input, beyond the sanitizers' "no out-of-bounds read, no UB":
//  - the decoder either accepts or throws px::Error with Status::protocol, nothing else;
//  - it is deterministic;
//  - an accepted record has exactly the size of its type, and what it promises holds
//    (hello speaks our version, no empty segment, no overflowing range, metadata user_len
//    <= 64, 1..60 returns, a format valid but for its buffer's length);
//  - it is lossless: encoding the decoded record gives back the input bytes (reserved fields
//    aside), and decoding that again gives the same record.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"
#include "core/format.hpp"
#include "core/ipc/wire.hpp"

namespace wire = px::ipc::wire;

namespace {

[[noreturn]] void broken(const char *what) {
    std::fprintf(stderr, "fuzz_wire_decode: %s\n", what);
    std::abort();
}

void check(bool cond, const char *what) {
    if (!cond)
        broken(what);
}

// Outcome of one decode: the record, or the status it was refused with.
struct Outcome {
    bool accepted = false;
    px::Status status = px::Status::ok;
    wire::Record rec;
};

Outcome decode(const uint8_t *data, size_t size) {
    Outcome o;
    try {
        o.rec = wire::decode(data, size);
        o.accepted = true;
    } catch (const px::Error &e) {
        o.status = e.status();
        if (e.status() != px::Status::protocol)
            broken("the decoder threw a status other than protocol");
        if (!e.what() || !*e.what())
            broken("the decoder refused a record without saying why");
    } catch (...) {
        broken("the decoder threw something other than px::Error");
    }
    return o;
}

bool same_meta(const px::Metadata &a, const px::Metadata &b) {
    return a.sequence == b.sequence && a.pts_ns == b.pts_ns && a.dts_ns == b.dts_ns &&
           a.duration_ns == b.duration_ns && a.offset == b.offset && a.offset_end == b.offset_end &&
           a.flags == b.flags && a.user_len == b.user_len &&
           std::memcmp(a.user, b.user, sizeof a.user) == 0;
}

bool same(const wire::Record &a, const wire::Record &b) {
    if (a.type != b.type)
        return false;
    switch (a.type) {
    case wire::Type::hello:
        return a.hello.version == b.hello.version && a.hello.pid == b.hello.pid;
    case wire::Type::segment:
        return a.segment.segment_id == b.segment.segment_id &&
               a.segment.memory_type == b.segment.memory_type && a.segment.size == b.segment.size &&
               a.segment.page_size == b.segment.page_size;
    case wire::Type::data:
        return a.data.segment_id == b.data.segment_id && a.data.offset == b.data.offset &&
               a.data.len == b.data.len && a.data.token == b.data.token &&
               a.data.tag.kind == b.data.tag.kind && a.data.tag.seq == b.data.tag.seq &&
               a.data.typed == b.data.typed && same_meta(a.data.meta, b.data.meta);
    case wire::Type::unregister:
        return a.unregister.segment_id == b.unregister.segment_id;
    case wire::Type::returns:
        return a.returns.tokens == b.returns.tokens;
    case wire::Type::wake:
        return true;
    case wire::Type::format:
        return std::memcmp(&a.format, &b.format, sizeof a.format) == 0;
    }
    return false;
}

wire::Bytes encode(const wire::Record &r) {
    switch (r.type) {
    case wire::Type::hello:
        return wire::encode(r.hello);
    case wire::Type::segment:
        return wire::encode(r.segment);
    case wire::Type::data:
        return wire::encode(r.data);
    case wire::Type::unregister:
        return wire::encode(r.unregister);
    case wire::Type::returns:
        return wire::encode(r.returns);
    case wire::Type::wake:
        return wire::encode_wake();
    case wire::Type::format:
        return wire::encode(r.format);
    }
    broken("accepted a record of no known type");
}

// Byte ranges the encoder writes as zero and the decoder ignores.
bool reserved_byte(wire::Type type, size_t at) {
    switch (type) {
    case wire::Type::hello:      // magic, type, version, reserved, pid
    case wire::Type::unregister: // magic, type, segment id, reserved
    case wire::Type::returns:    // magic, type, count, reserved, tokens
        return at >= 12 && at < 16;
    case wire::Type::data: // magic, type, segment id, stream kind, ...: nothing reserved
    case wire::Type::segment:
    case wire::Type::wake:
    case wire::Type::format: // px::Format's bytes: every one a field
        return false;
    }
    return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // An exact-size copy: a read past the end is caught by ASan, whatever libFuzzer's buffer is.
    auto *copy = static_cast<uint8_t *>(std::malloc(size ? size : 1));
    if (size)
        std::memcpy(copy, data, size);

    Outcome first = decode(copy, size);
    Outcome second = decode(copy, size);
    check(first.accepted == second.accepted, "the decoder is not deterministic");
    if (!first.accepted) {
        std::free(copy);
        return 0;
    }
    check(same(first.rec, second.rec), "the decoder is not deterministic");

    const wire::Record &rec = first.rec;
    switch (rec.type) {
    case wire::Type::hello:
        check(size == wire::hello_size, "hello of the wrong size accepted");
        check(rec.hello.version == wire::protocol_version, "hello of another version accepted");
        break;
    case wire::Type::segment:
        check(size == wire::segment_size, "segment record of the wrong size accepted");
        check(rec.segment.size > 0, "segment of 0 bytes accepted");
        break;
    case wire::Type::data:
        check(size == wire::data_size, "data record of the wrong size accepted");
        check(rec.data.meta.user_len <= px::metadata_user_max, "user_len > 64 accepted");
        check(rec.data.len <= UINT64_MAX - rec.data.offset, "offset + len overflow accepted");
        check(static_cast<uint32_t>(rec.data.tag.kind) <= wire::max_data_kind,
              "unknown stream kind accepted");
        break;
    case wire::Type::unregister:
        check(size == wire::unregister_size, "unregister record of the wrong size accepted");
        break;
    case wire::Type::returns:
        check(!rec.returns.tokens.empty() &&
                  rec.returns.tokens.size() <= wire::max_returns_per_record,
              "returns record with a bad count accepted");
        check(size == wire::header_size + 8 + 8 * rec.returns.tokens.size(),
              "returns record of the wrong size accepted");
        break;
    case wire::Type::wake:
        check(size == wire::wake_size, "wake record of the wrong size accepted");
        break;
    case wire::Type::format: {
        check(size == wire::format_size, "format record of the wrong size accepted");
        const px::Format &f = rec.format;
        check(f.ndim >= 1 && f.ndim <= px::format_max_dims, "format of a bad ndim accepted");
        check(px::dtype_size(f.dtype) != 0, "format of an unknown dtype accepted");
        try { // what a receiver checks against each buffer: it must not find more to refuse
            px::validate_format(f, SIZE_MAX, px::Status::protocol);
        } catch (const px::Error &) {
            broken("an accepted format breaks a rule other than its buffer's length");
        }
        break;
    }
    }

    wire::Bytes again = encode(rec);
    check(again.size == size, "re-encoding changed the size");
    for (size_t i = 0; i < size; ++i)
        if (!reserved_byte(rec.type, i))
            check(again.data[i] == copy[i], "re-encoding changed a byte: a field was misread");
    Outcome round = decode(again.data, again.size);
    check(round.accepted && same(round.rec, rec), "a re-encoded record does not decode the same");
    std::free(copy);
    return 0;
}
