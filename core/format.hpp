// SPDX-License-Identifier: Apache-2.0 OR MIT
// Format: what the bytes of a buffer are (API.md, "Formats: typed frames"). An array of ndim
// dimensions of one numeric dtype, with byte strides, and an optional pixel-format code. A
// buffer is untyped (ndim 0) unless given one. The same layout as px_format_t (checked in
// capi/buffer.cpp), so the C API and the wire copy it as bytes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/error.hpp"
#include "core/ref.hpp"

namespace px {

// Values fixed by the C API (PX_DTYPE_*): never renumbered.
enum class DType : uint32_t {
    u8 = 1,
    i8 = 2,
    u16 = 3,
    i16 = 4,
    u32 = 5,
    i32 = 6,
    u64 = 7,
    i64 = 8,
    f16 = 9,
    bf16 = 10,
    f32 = 11,
    f64 = 12,
};
constexpr uint32_t max_dtype = 12;
constexpr uint32_t format_max_dims = 8;

struct Format {
    uint32_t dtype = 0;
    uint32_t ndim = 0; // 0: untyped bytes
    uint32_t fourcc = 0;
    uint32_t flags = 0; // none defined yet: must be 0
    int64_t shape[format_max_dims] = {};
    int64_t strides[format_max_dims] = {}; // bytes; all 0 means C-contiguous
};
static_assert(sizeof(Format) == 144);

// Bytes of one element; 0 for a dtype that is not one of DType's.
size_t dtype_size(uint32_t dtype) noexcept;

// Throws Error{status, ...} naming the rule `f` breaks, unless it describes elements that all
// lie inside `buffer_len` bytes (overflow-safe): a known dtype, 1 <= ndim <= 8, shapes >= 0,
// strides >= 0 and multiples of the element size (so that every consumer, DLPack's element
// strides included, can represent it), nothing set beyond ndim, flags 0. `status` is
// Status::invalid for a caller's format and Status::protocol for a peer's.
void validate_format(const Format &f, size_t buffer_len, Status status);

// The C-contiguous strides of `f`'s shape (what all-zero strides stand for).
void contiguous_strides(const Format &f, int64_t out[format_max_dims]) noexcept;

// A validated format, shared by the clones of a buffer (and by every buffer a channel receives
// under the same format), never changed once made.
class SharedFormat : public RefCounted {
public:
    explicit SharedFormat(const Format &f) noexcept : format_(f) {}
    const Format &get() const noexcept { return format_; }

private:
    const Format format_;
};

} // namespace px
