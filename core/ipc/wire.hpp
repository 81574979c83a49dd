// The channel's wire format: fixed-size records, encoded and decoded field by field. The
// decoder is the surface a hostile peer reaches first (and the fuzz target): it validates
// everything that can be checked without channel state and throws Status::protocol otherwise.
// Records are read from private memory (a recvmsg buffer) exactly once.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/buffer.hpp"

namespace px::ipc::wire {

constexpr uint32_t magic = 0x50585031;    // "PXP1"
constexpr uint32_t protocol_version = 1;

enum class Type : uint32_t { hello = 1, data = 2, unregister = 3, returns = 4 };

// Sent first by both ends, with one fd: the socket through which the peer returns slots.
struct Hello {
    uint32_t version = protocol_version;
    uint64_t pid = 0;
};

// One buffer. With `new_segment`, the record carries the segment's fd and describes it.
struct Data {
    static constexpr uint32_t new_segment = 1u;
    uint32_t flags = 0;
    uint32_t segment_id = 0;
    uint64_t offset = 0;
    uint64_t len = 0;
    uint64_t token = 0; // non-zero: a loan the receiver must return when done
    uint64_t segment_size = 0;
    uint64_t page_size = 0;
    uint32_t memory_type = 0;
    Metadata meta;
};

// The sender no longer uses this segment id (the receiver may drop its mapping).
struct Unregister {
    uint32_t segment_id = 0;
};

// Slot returns, receiver to sender, on the return socket.
constexpr size_t max_returns_per_record = 60;
struct Returns {
    std::vector<uint64_t> tokens;
};

constexpr size_t header_size = 8;               // magic, type
constexpr size_t hello_size = header_size + 16; // version, reserved, pid
constexpr size_t data_size = header_size + 56 + sizeof(Metadata);
constexpr size_t unregister_size = header_size + 8;
constexpr size_t returns_size_max = header_size + 8 + 8 * max_returns_per_record;
constexpr size_t max_record_size = returns_size_max > data_size ? returns_size_max : data_size;

using Bytes = std::vector<uint8_t>;

Bytes encode(const Hello &m);
Bytes encode(const Data &m);
Bytes encode(const Unregister &m);
Bytes encode(const Returns &m);

struct Record {
    Type type{};
    Hello hello;
    Data data;
    Unregister unregister;
    Returns returns;
};

// Decodes one record of exactly `n` bytes, or throws Error{protocol, what was wrong}.
Record decode(const uint8_t *bytes, size_t n);

} // namespace px::ipc::wire
