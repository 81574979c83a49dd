// SPDX-License-Identifier: Apache-2.0 OR MIT
// px_buffer_* and px_metadata_*.
#include <cstring>
#include <new>
#include <utility>

#include "capi/guard.hpp"
#include "capi/handles.hpp"
#include "core/hot.hpp"

using namespace px;
using namespace px::capi;

static_assert(sizeof(px_metadata_t) == sizeof(Metadata));
static_assert(offsetof(px_metadata_t, sequence) == offsetof(Metadata, sequence));
static_assert(offsetof(px_metadata_t, pts_ns) == offsetof(Metadata, pts_ns));
static_assert(offsetof(px_metadata_t, dts_ns) == offsetof(Metadata, dts_ns));
static_assert(offsetof(px_metadata_t, duration_ns) == offsetof(Metadata, duration_ns));
static_assert(offsetof(px_metadata_t, offset) == offsetof(Metadata, offset));
static_assert(offsetof(px_metadata_t, offset_end) == offsetof(Metadata, offset_end));
static_assert(offsetof(px_metadata_t, flags) == offsetof(Metadata, flags));
static_assert(offsetof(px_metadata_t, user_len) == offsetof(Metadata, user_len));
static_assert(offsetof(px_metadata_t, user) == offsetof(Metadata, user));
static_assert(PX_TIME_NONE == time_none);
static_assert(sizeof(px_format_t) == sizeof(Format));
static_assert(offsetof(px_format_t, dtype) == offsetof(Format, dtype));
static_assert(offsetof(px_format_t, ndim) == offsetof(Format, ndim));
static_assert(offsetof(px_format_t, fourcc) == offsetof(Format, fourcc));
static_assert(offsetof(px_format_t, flags) == offsetof(Format, flags));
static_assert(offsetof(px_format_t, shape) == offsetof(Format, shape));
static_assert(offsetof(px_format_t, strides) == offsetof(Format, strides));
static_assert(PX_FORMAT_MAX_DIMS == format_max_dims);
static_assert(PX_DTYPE_U8 == static_cast<uint32_t>(DType::u8));
static_assert(PX_DTYPE_F64 == static_cast<uint32_t>(DType::f64) && PX_DTYPE_F64 == max_dtype);
static_assert(PX_METADATA_USER_MAX == metadata_user_max);

namespace px::capi {

Metadata metadata_from_c(const px_metadata_t *meta) {
    Metadata m;
    if (meta)
        std::memcpy(static_cast<void *>(&m), meta, sizeof m);
    return m;
}

} // namespace px::capi

// ---------------------------------------------------------------------------------------------
// Buffer handles are recycled. A clone is a new Buffer, and glibc's malloc+free of it were about
// a quarter of a clone+release (bench/bench_pool.cpp, "buffer clone+release"), so each thread
// keeps up to handle_cache_max released handles for its next clone, slice or new buffer.
// A cached block is plain ::operator new(sizeof(Buffer)) memory, which is also what a
// `new Buffer` anywhere else allocates (px_slot_into_buffer, px_channel_recv): any handle can be
// released into the cache, and any block that leaves it could be given to `delete`.

namespace {

template <class T> constexpr bool has_own_operator_new = requires {
    T::operator new(sizeof(T));
};
static_assert(!has_own_operator_new<Buffer>,
              "Buffer has its own operator new: recycle handles through it, not here");

struct FreeBlock {
    FreeBlock *next;
};
static_assert(sizeof(FreeBlock) <= sizeof(Buffer) && alignof(FreeBlock) <= alignof(Buffer));

constexpr uint32_t handle_cache_max = 64; // 64 * sizeof(Buffer) (160 bytes) per thread at most
// AddressSanitizer must see a released handle freed, to catch its later use.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool recycle_handles = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool recycle_handles = false;
#else
constexpr bool recycle_handles = true;
#endif
#else
constexpr bool recycle_handles = true;
#endif

// Trivially destructible, so it stays usable while its thread (or the process) tears down.
struct HandleCache {
    FreeBlock *head = nullptr;
    uint32_t count = 0;
    bool drain_registered = false;
    bool closed = false; // the thread is exiting: free handles instead of caching them
};
// Initial-exec TLS (16 bytes of glibc's static TLS space for dlopen'ed libraries): the default
// model of a shared library calls __tls_get_addr on every access, i.e. every clone and release.
__attribute__((tls_model("initial-exec"))) thread_local HandleCache handle_cache;

// Frees the cached blocks when the thread exits. Constructed (and so registered to run) on the
// thread's first release into the cache.
struct HandleCacheDrain {
    HandleCacheDrain() = default;
    HandleCacheDrain(const HandleCacheDrain &) = delete;
    HandleCacheDrain &operator=(const HandleCacheDrain &) = delete;
    ~HandleCacheDrain() {
        HandleCache &c = handle_cache;
        c.closed = true;
        while (FreeBlock *b = c.head) {
            c.head = b->next;
            ::operator delete(b, sizeof(Buffer));
        }
        c.count = 0;
    }
};
thread_local HandleCacheDrain handle_cache_drain;

template <class... Args> Buffer *new_buffer(Args &&...args) {
    HandleCache &c = handle_cache;
    void *mem;
    if (FreeBlock *b = c.head) {
        c.head = b->next;
        --c.count;
        mem = b;
    } else {
        mem = ::operator new(sizeof(Buffer));
    }
    try {
        return ::new (mem) Buffer(std::forward<Args>(args)...);
    } catch (...) {
        ::operator delete(mem, sizeof(Buffer));
        throw;
    }
}

void delete_buffer(Buffer *buf) noexcept {
    buf->~Buffer();
    HandleCache &c = handle_cache;
    if (recycle_handles && c.count < handle_cache_max && !c.closed) [[likely]] {
        if (!c.drain_registered) [[unlikely]] {
            c.drain_registered = true;
            [[maybe_unused]] HandleCacheDrain *d = &handle_cache_drain; // odr-use: registers it
        }
        c.head = ::new (static_cast<void *>(buf)) FreeBlock{c.head};
        ++c.count;
        return;
    }
    ::operator delete(static_cast<void *>(buf), sizeof(Buffer));
}

} // namespace

namespace px::capi {

// A handle from the recycled blocks, for the other C entry points that make buffers
// (px_channel_recv, px_slot_into_buffer).
px_buffer_t *new_buffer_handle(Buffer &&b) { return to_handle(new_buffer(std::move(b))); }

} // namespace px::capi

extern "C" {

void px_metadata_init(px_metadata_t *meta) {
    // From a constant: building the defaults on the stack first and copying them cost several
    // times the copy (every frame a producer sends starts here).
    static constexpr Metadata defaults{};
    if (meta)
        std::memcpy(meta, &defaults, sizeof defaults);
}

px_status_t px_buffer_new(px_segment_t *seg, size_t offset, size_t len, const px_metadata_t *meta,
                          px_buffer_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        Ref<Segment> s(from_handle(require(seg, "seg")));
        *out = to_handle(new_buffer(std::move(s), offset, len, metadata_from_c(meta)));
    });
}

px_status_t px_buffer_from_segment(px_segment_t *seg, const px_metadata_t *meta,
                                   px_buffer_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        Ref<Segment> s(from_handle(require(seg, "seg")));
        size_t len = s->size();
        *out = to_handle(new_buffer(std::move(s), 0, len, metadata_from_c(meta)));
    });
}

px_status_t px_buffer_clone(const px_buffer_t *buf, px_buffer_t **out) {
    if (buf && out) { // fast path
        try {
            *out = to_handle(new_buffer(*from_handle(buf)));
            return PX_OK;
        } catch (...) {
            // fall through: the guard reports it
        }
    }
    return px_guard(__func__, [&] {
        require_out(out);
        *out = to_handle(new_buffer(from_handle(require(buf, "buf"))->clone()));
    });
}

px_status_t px_buffer_slice(const px_buffer_t *buf, size_t offset, size_t len, px_buffer_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        *out = to_handle(new_buffer(from_handle(require(buf, "buf"))->slice(offset, len)));
    });
}

PX_HOT void px_buffer_release(px_buffer_t *buf) {
    if (buf)
        delete_buffer(from_handle(buf));
}

PX_HOT const void *px_buffer_ptr(const px_buffer_t *buf) {
    return buf ? from_handle(buf)->data() : nullptr;
}

void *px_buffer_mut_ptr(px_buffer_t *buf) {
    return buf ? from_handle(buf)->mutable_data() : nullptr;
}

size_t px_buffer_len(const px_buffer_t *buf) { return buf ? from_handle(buf)->size() : 0; }

size_t px_buffer_offset(const px_buffer_t *buf) { return buf ? from_handle(buf)->offset() : 0; }

px_segment_t *px_buffer_segment(const px_buffer_t *buf) {
    return buf ? to_handle(&from_handle(buf)->segment()) : nullptr;
}

PX_HOT px_status_t px_buffer_metadata(const px_buffer_t *buf, px_metadata_t *out) {
    return px_guard(__func__, [&] {
        require(out, "out");
        const Metadata &m = from_handle(require(buf, "buf"))->metadata();
        std::memcpy(out, &m, sizeof m);
    });
}

px_status_t px_buffer_set_metadata(px_buffer_t *buf, const px_metadata_t *meta) {
    return px_guard(__func__, [&] {
        require(meta, "meta");
        from_handle(require(buf, "buf"))->set_metadata(metadata_from_c(meta));
    });
}

size_t px_dtype_size(uint32_t dtype) { return dtype_size(dtype); }

px_status_t px_buffer_set_format(px_buffer_t *buf, const px_format_t *fmt) {
    return px_guard(__func__, [&] {
        require(fmt, "fmt");
        Format f;
        std::memcpy(static_cast<void *>(&f), fmt, sizeof f);
        from_handle(require(buf, "buf"))->set_format(f);
    });
}

px_status_t px_buffer_format(const px_buffer_t *buf, px_format_t *out) {
    return px_guard(__func__, [&] {
        require(out, "out");
        static constexpr Format untyped{};
        const Format *f = from_handle(require(buf, "buf"))->format();
        std::memcpy(out, f ? f : &untyped, sizeof *out);
    });
}

} // extern "C"
