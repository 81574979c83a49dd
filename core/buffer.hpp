// SPDX-License-Identifier: Apache-2.0 OR MIT
// Buffer: a window [offset, offset + len) on a segment, with its own metadata and, when typed,
// a format. Clone and slice share the memory (one reference each on the segment and on the
// lease that keeps it lent); nothing is ever copied but the metadata.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/format.hpp"
#include "core/ref.hpp"
#include "core/segment.hpp"

namespace px {

constexpr int64_t time_none = INT64_MIN;

// Same layout as px_metadata_t (checked in capi/buffer.cpp).
struct Metadata {
    uint64_t sequence = 0;
    int64_t pts_ns = time_none;
    int64_t dts_ns = time_none;
    int64_t duration_ns = time_none;
    uint64_t offset = 0;
    uint64_t offset_end = 0;
    uint32_t flags = 0;
    uint32_t user_len = 0;
    uint8_t user[64] = {};
};
constexpr uint32_t metadata_user_max = 64;

// Throws invalid when user_len is larger than the user bytes.
void validate_metadata(const Metadata &meta);

class Buffer {
public:
    // Overflow-safe range check against the segment. `lease` (nullable) is whatever must stay
    // referenced while the memory is in use: a pool slot, or a slot lent by another process.
    Buffer(Ref<Segment> segment, size_t offset, size_t len, const Metadata &meta,
           Ref<RefCounted> lease = nullptr);

    // Keeps the format.
    Buffer clone() const { return *this; }
    // Untyped bytes until given a format of its own.
    Buffer slice(size_t offset, size_t len) const;

    const std::byte *data() const noexcept { return segment_->data() + offset_; }
    // Null when the memory is read-only.
    std::byte *mutable_data() const noexcept {
        return segment_->readonly() ? nullptr : segment_->mutable_data() + offset_;
    }
    size_t size() const noexcept { return len_; }
    size_t offset() const noexcept { return offset_; }
    Segment &segment() const noexcept { return *segment_; }
    const Ref<Segment> &segment_ref() const noexcept { return segment_; }
    const Ref<RefCounted> &lease() const noexcept { return lease_; }
    const Metadata &metadata() const noexcept { return meta_; }
    void set_metadata(const Metadata &meta);
    // Null when untyped.
    const Format *format() const noexcept { return format_ ? &format_->get() : nullptr; }
    const Ref<SharedFormat> &shared_format() const noexcept { return format_; }
    // ndim 0 makes the buffer untyped; otherwise throws invalid (naming the rule broken) unless
    // every element lies inside the buffer, and changes nothing then.
    void set_format(const Format &f);
    // A format already validated against this buffer's length (e.g. a channel's current one).
    void set_shared_format(Ref<SharedFormat> f) noexcept { format_ = std::move(f); }

    Buffer(const Buffer &) = default;
    Buffer(Buffer &&) noexcept = default;
    Buffer &operator=(const Buffer &) = default;
    Buffer &operator=(Buffer &&) noexcept = default;

private:
    Ref<Segment> segment_;
    Ref<RefCounted> lease_;
    Ref<SharedFormat> format_; // null: untyped
    size_t offset_;
    size_t len_;
    Metadata meta_;
};

// "[offset, +len) exceeds <what> length N" when the range does not fit; overflow-safe.
void check_range(size_t offset, size_t len, size_t total, const char *what);

} // namespace px
