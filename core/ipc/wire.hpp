// SPDX-License-Identifier: Apache-2.0 OR MIT
// The channel's wire format: fixed-size records, encoded and decoded field by field. The
// decoder is the surface a hostile peer reaches first (and the fuzz target): it validates
// everything that can be checked without channel state and throws Status::protocol otherwise.
// Records are decoded from private memory (a recvmsg buffer, or a ring entry copied out once).
//
// Where each record travels:
//   main socket : hello (+ return socket, + control block fds), segment (+ its fd), wake
//   data ring   : data, unregister, format    (see ring.hpp)
//   return ring : bare 64-bit tokens; when it is full, `returns` records on the return socket,
//                 which also carries `wake` records for a lender asleep in loan_timeout
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/buffer.hpp"
#include "core/format.hpp"

namespace px::ipc::wire {

constexpr uint32_t magic = 0x50585032; // "PXP2"
// 3: ControlBlock::data_producer_cpu; 4: a data record's stream kind and stream sequence;
// 5: format records, and a data record's typed bit
constexpr uint32_t protocol_version = 5;

enum class Type : uint32_t {
    hello = 1,
    data = 2,
    unregister = 3,
    returns = 4,
    segment = 5,
    wake = 6,
    format = 7,
};

// Sent first by both ends, with two fds: the socket through which the peer returns slots, and
// the sender's control block (rings).
struct Hello {
    uint32_t version = protocol_version;
    uint64_t pid = 0;
};

// A segment the sender will refer to by id; carries the segment's fd (read-only description).
struct SegmentInfo {
    uint32_t segment_id = 0;
    uint32_t memory_type = 0;
    uint64_t size = 0;
    uint64_t page_size = 0;
};

// What a data record is to a stream (core/stream). A plain channel sends and accepts only
// `frame` with sequence 0; a publisher numbers the frames it publishes (its own count, apart
// from the user's Metadata::sequence) and sends its stream's own records as the other kinds,
// each carrying a buffer like a frame (the description text, in a segment of its own).
enum class DataKind : uint32_t {
    frame = 0,
    stream_welcome = 1,     // first record to an admitted subscriber: the description at join
    stream_description = 2, // the description changed: in force for the frames after it
    stream_refused = 3,     // the publisher is full (max_subscribers); the channel closes next
    stream_wake = 4,        // after the welcome: the stream's wake word (ipc/wake.hpp)
};
constexpr uint32_t max_data_kind = 4;
struct StreamTag {
    DataKind kind = DataKind::frame;
    uint64_t seq = 0; // frames: the stream's number (from 1); welcome: the first one sent
};

// One buffer.
struct Data {
    uint32_t segment_id = 0;
    uint64_t offset = 0;
    uint64_t len = 0;
    uint64_t token = 0; // non-zero: a loan the receiver must return when done
    StreamTag tag;
    Metadata meta;
    // The buffer has the format of the channel's last format record (which must fit `len`);
    // otherwise it is untyped bytes. A bit of the u32 that holds the stream kind (typed_bit);
    // that u32's other bits are 0, so an untyped record is byte for byte what protocol 4 sent.
    bool typed = false;
};
constexpr uint32_t typed_bit = 1u << 16;

// A format record (encode(const Format &)) carries px::Format's bytes: the format in force for
// the typed data records after it. The sender puts one in the data ring before the first typed
// record whose format differs from the last it sent (frames of one format cost one such record
// per channel). Decoded only if its fields are valid (validate_format, with no buffer length
// yet); the receiver checks that it fits each typed record's length.

// The sender no longer uses this segment id (the receiver may drop its mapping).
struct Unregister {
    uint32_t segment_id = 0;
};

// Slot returns, receiver to sender, on the return socket when the return ring is full.
constexpr size_t max_returns_per_record = 60;
struct Returns {
    std::vector<uint64_t> tokens;
};

constexpr size_t header_size = 8;               // magic, type
constexpr size_t hello_size = header_size + 16; // version, reserved, pid
constexpr size_t segment_size = header_size + 24;
constexpr size_t data_size = header_size + 40 + sizeof(Metadata);
static_assert(sizeof(Metadata) == 120, "the data record carries Metadata's bytes");
constexpr size_t unregister_size = header_size + 8;
constexpr size_t wake_size = header_size;
constexpr size_t format_size = header_size + sizeof(Format); // Format's bytes as in memory
constexpr size_t returns_size_max = header_size + 8 + 8 * max_returns_per_record;
constexpr size_t max_record_size = returns_size_max > data_size ? returns_size_max : data_size;

// An encoded record (no allocation on the hot path).
struct Bytes {
    uint8_t data[max_record_size];
    size_t size = 0;
};

Bytes encode(const Hello &m);
Bytes encode(const SegmentInfo &m);
Bytes encode(const Data &m);
Bytes encode(const Unregister &m);
Bytes encode(const Returns &m);
Bytes encode(const Format &m);
Bytes encode_wake();

struct Record {
    Type type{};
    Hello hello;
    SegmentInfo segment;
    Data data;
    Unregister unregister;
    Returns returns;
    Format format;
};

// Decodes one record of exactly `n` bytes, or throws Error{protocol, what was wrong}.
Record decode(const uint8_t *bytes, size_t n);

// The fast path of the data ring: a data record written straight where it goes (data_size
// bytes at `out`), and read without building a Record. Same bytes, same checks and messages as
// encode(const Data &) and decode().
//
// A data record's last bytes, from data_meta_offset on, are its Metadata exactly as laid out
// in memory (checked in wire.cpp), so that they move with one copy.
constexpr size_t data_meta_offset = header_size + 40;
void encode_data(uint32_t segment_id, uint64_t offset, uint64_t len, uint64_t token, StreamTag tag,
                 bool typed, const Metadata &meta, uint8_t *out) noexcept;
// True when `n` bytes at `bytes` claim to be a data record (magic and type; nothing else
// checked).
bool is_data(const uint8_t *bytes, size_t n) noexcept;
// The data record's fields, for a reader that copies the record out of shared memory in two:
// `head` holds the first data_meta_offset bytes of a record of data_size bytes for which
// is_data() held, and out.meta already holds its metadata. Validates both, as decode() does.
void decode_data_fields(const uint8_t *head, Data &out);

} // namespace px::ipc::wire
