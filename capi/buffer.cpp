// px_buffer_* and px_metadata_*.
#include <cstring>

#include "capi/guard.hpp"
#include "capi/handles.hpp"

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
static_assert(PX_METADATA_USER_MAX == metadata_user_max);

namespace px::capi {

Metadata metadata_from_c(const px_metadata_t *meta) {
    Metadata m;
    if (meta)
        std::memcpy(static_cast<void *>(&m), meta, sizeof m);
    return m;
}

} // namespace px::capi

extern "C" {

void px_metadata_init(px_metadata_t *meta) {
    if (!meta)
        return;
    Metadata m;
    std::memcpy(meta, &m, sizeof m);
}

px_status_t px_buffer_new(px_segment_t *seg, size_t offset, size_t len, const px_metadata_t *meta,
                          px_buffer_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        Ref<Segment> s(from_handle(require(seg, "seg")));
        *out = to_handle(new Buffer(std::move(s), offset, len, metadata_from_c(meta)));
    });
}

px_status_t px_buffer_from_segment(px_segment_t *seg, const px_metadata_t *meta,
                                   px_buffer_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        Ref<Segment> s(from_handle(require(seg, "seg")));
        size_t len = s->size();
        *out = to_handle(new Buffer(std::move(s), 0, len, metadata_from_c(meta)));
    });
}

px_status_t px_buffer_clone(const px_buffer_t *buf, px_buffer_t **out) {
    if (buf && out) { // fast path
        try {
            *out = to_handle(new Buffer(*from_handle(buf)));
            return PX_OK;
        } catch (...) {
            // fall through: the guard reports it
        }
    }
    return px_guard(__func__, [&] {
        require_out(out);
        *out = to_handle(new Buffer(from_handle(require(buf, "buf"))->clone()));
    });
}

px_status_t px_buffer_slice(const px_buffer_t *buf, size_t offset, size_t len, px_buffer_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        *out = to_handle(new Buffer(from_handle(require(buf, "buf"))->slice(offset, len)));
    });
}

void px_buffer_release(px_buffer_t *buf) { delete from_handle(buf); }

const void *px_buffer_ptr(const px_buffer_t *buf) {
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

px_status_t px_buffer_metadata(const px_buffer_t *buf, px_metadata_t *out) {
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

} // extern "C"
