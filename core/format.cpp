// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/format.hpp"

#include <string>

namespace px {

size_t dtype_size(uint32_t dtype) noexcept {
    switch (static_cast<DType>(dtype)) {
    case DType::u8:
    case DType::i8:
        return 1;
    case DType::u16:
    case DType::i16:
    case DType::f16:
    case DType::bf16:
        return 2;
    case DType::u32:
    case DType::i32:
    case DType::f32:
        return 4;
    case DType::u64:
    case DType::i64:
    case DType::f64:
        return 8;
    }
    return 0;
}

void contiguous_strides(const Format &f, int64_t out[format_max_dims]) noexcept {
    // Only called on validated formats, whose extent fits a size_t: no overflow here.
    int64_t step = static_cast<int64_t>(dtype_size(f.dtype));
    for (uint32_t i = format_max_dims; i-- > 0;) {
        if (i >= f.ndim) {
            out[i] = 0;
            continue;
        }
        out[i] = step;
        step *= f.shape[i] > 0 ? f.shape[i] : 1;
    }
}

namespace {

[[noreturn]] void reject(Status status, const std::string &why) {
    fail(status, "format: " + why);
}

std::string dim(uint32_t i) { return "[" + std::to_string(i) + "]"; }

// The dimensions given and nothing beyond them.
void check_fields(const Format &f, Status status) {
    if (f.ndim > format_max_dims)
        reject(status, "ndim " + std::to_string(f.ndim) + " exceeds " +
                           std::to_string(format_max_dims));
    if (f.ndim == 0)
        reject(status, "ndim 0 (an untyped buffer has no format)");
    if (dtype_size(f.dtype) == 0)
        reject(status, "unknown dtype " + std::to_string(f.dtype));
    if (f.flags != 0)
        reject(status, "flags " + std::to_string(f.flags) + " (none are defined; must be 0)");
    for (uint32_t i = 0; i < format_max_dims; ++i) {
        if (i < f.ndim && f.shape[i] < 0)
            reject(status, "shape" + dim(i) + " " + std::to_string(f.shape[i]) + " is negative");
        if (i < f.ndim && f.strides[i] < 0)
            reject(status, "strides" + dim(i) + " " + std::to_string(f.strides[i]) +
                               " is negative");
        if (i >= f.ndim && (f.shape[i] != 0 || f.strides[i] != 0))
            reject(status, "shape" + dim(i) + "/strides" + dim(i) + " set beyond ndim " +
                               std::to_string(f.ndim));
    }
}

// Bytes spanned by the elements: the last one's offset plus its size; 0 when there is none.
// False when that overflows 64 bits.
bool extent(const Format &f, const int64_t strides[format_max_dims], uint64_t &out) {
    uint64_t last = 0;
    for (uint32_t i = 0; i < f.ndim; ++i) {
        if (f.shape[i] == 0) {
            out = 0;
            return true;
        }
    }
    for (uint32_t i = 0; i < f.ndim; ++i) {
        uint64_t span;
        if (__builtin_mul_overflow(static_cast<uint64_t>(f.shape[i] - 1),
                                   static_cast<uint64_t>(strides[i]), &span) ||
            __builtin_add_overflow(last, span, &last))
            return false;
    }
    return !__builtin_add_overflow(last, dtype_size(f.dtype), &out);
}

} // namespace

void validate_format(const Format &f, size_t buffer_len, Status status) {
    check_fields(f, status);
    const size_t item = dtype_size(f.dtype);
    bool explicit_strides = false;
    for (uint32_t i = 0; i < f.ndim; ++i)
        explicit_strides = explicit_strides || f.strides[i] != 0;
    int64_t strides[format_max_dims];
    if (explicit_strides) {
        for (uint32_t i = 0; i < format_max_dims; ++i) {
            if (i < f.ndim && f.strides[i] % static_cast<int64_t>(item) != 0)
                reject(status, "strides" + dim(i) + " " + std::to_string(f.strides[i]) +
                                   " is not a multiple of the element size " +
                                   std::to_string(item));
            strides[i] = f.strides[i];
        }
    } else {
        // C-contiguous: each stride is the product of the later dimensions, which can overflow.
        uint64_t step = item;
        for (uint32_t i = f.ndim; i-- > 0;) {
            if (step > static_cast<uint64_t>(INT64_MAX))
                reject(status, "shape overflows 64 bits");
            strides[i] = static_cast<int64_t>(step);
            const uint64_t n = f.shape[i] > 0 ? static_cast<uint64_t>(f.shape[i]) : 1;
            if (__builtin_mul_overflow(step, n, &step))
                step = UINT64_MAX; // only an error if a dimension before this one uses it
        }
    }
    uint64_t bytes = 0;
    if (!extent(f, strides, bytes))
        reject(status, "shape and strides overflow 64 bits");
    if (bytes > buffer_len)
        reject(status, "elements span " + std::to_string(bytes) + " bytes, beyond the buffer's " +
                           std::to_string(buffer_len));
}

} // namespace px
