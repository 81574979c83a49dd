// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/buffer.hpp"

#include <cstring>
#include <string>

#include "core/error.hpp"

namespace px {

void check_range(size_t offset, size_t len, size_t total, const char *what) {
    if (offset > total || len > total - offset)
        fail(Status::invalid, "range [" + std::to_string(offset) + ", +" + std::to_string(len) +
                                  ") exceeds " + what + " length " + std::to_string(total));
}

void validate_metadata(const Metadata &meta) {
    if (meta.user_len > metadata_user_max)
        fail(Status::invalid, "metadata user_len " + std::to_string(meta.user_len) +
                                  " is larger than the " + std::to_string(metadata_user_max) +
                                  " user bytes");
}

Buffer::Buffer(Ref<Segment> segment, size_t offset, size_t len, const Metadata &meta,
               Ref<RefCounted> lease)
    : segment_(std::move(segment)), lease_(std::move(lease)), offset_(offset), len_(len),
      meta_(meta) {
    if (!segment_)
        fail(Status::invalid, "segment is NULL");
    check_range(offset, len, segment_->size(), "segment");
    validate_metadata(meta);
}

Buffer Buffer::slice(size_t offset, size_t len) const {
    check_range(offset, len, len_, "buffer");
    Buffer b(*this);
    b.offset_ = offset_ + offset;
    b.len_ = len;
    b.format_ = nullptr;
    return b;
}

void Buffer::set_metadata(const Metadata &meta) {
    validate_metadata(meta);
    meta_ = meta;
}

void Buffer::set_format(const Format &f) {
    if (f.ndim == 0) {
        format_ = nullptr;
        return;
    }
    // A producer usually gives every frame the same format: the last one this thread made is
    // shared again (no allocation, no second validation) when it and the length are the same.
    struct LastFormat {
        Ref<SharedFormat> shared;
        size_t len = 0;
    };
    thread_local LastFormat last;
    if (last.shared && last.len == len_ &&
        std::memcmp(&last.shared->get(), &f, sizeof(Format)) == 0) {
        format_ = last.shared;
        return;
    }
    validate_format(f, len_, Status::invalid);
    format_ = Ref<SharedFormat>::make(f);
    last = LastFormat{format_, len_};
}

} // namespace px
