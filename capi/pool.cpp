// SPDX-License-Identifier: Apache-2.0 OR MIT
// px_pool_* and px_slot_*.
#include <cstdio>

#include "capi/guard.hpp"
#include "capi/handles.hpp"
#include "core/hot.hpp"

using namespace px;
using namespace px::capi;

extern "C" {

px_status_t px_pool_new(px_segment_t *segment, size_t slot_size, px_pool_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        Ref<Segment> seg(from_handle(require(segment, "segment")));
        *out = to_handle(MemoryPool::create(std::move(seg), slot_size).detach());
    });
}

size_t px_pool_capacity(const px_pool_t *pool) { return pool ? from_handle(pool)->capacity() : 0; }

size_t px_pool_available(const px_pool_t *pool) {
    return pool ? from_handle(pool)->available() : 0;
}

size_t px_pool_slot_size(const px_pool_t *pool) {
    return pool ? from_handle(pool)->slot_size() : 0;
}

px_segment_t *px_pool_segment(const px_pool_t *pool) {
    return pool ? to_handle(&from_handle(pool)->segment()) : nullptr;
}

px_status_t px_pool_loan(px_pool_t *pool, px_slot_t **out) {
    if (pool && out) { // the fast path: no exception machinery, no allocation
        if (Slot *s = from_handle(pool)->try_loan()) {
            *out = to_handle(s);
            return PX_OK;
        }
    }
    return px_guard(__func__, [&] {
        require_out(out);
        *out = to_handle(from_handle(require(pool, "pool"))->loan(0));
    });
}

px_status_t px_pool_loan_timeout(px_pool_t *pool, int64_t timeout_ns, px_slot_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        *out = to_handle(from_handle(require(pool, "pool"))->loan(timeout_ns));
    });
}

px_pool_t *px_pool_retain(px_pool_t *pool) {
    if (pool)
        from_handle(pool)->add_ref();
    return pool;
}

void px_pool_release(px_pool_t *pool) {
    if (pool)
        from_handle(pool)->release_ref();
}

void *px_slot_data(px_slot_t *slot) { return slot ? from_handle(slot)->data() : nullptr; }

size_t px_slot_len(const px_slot_t *slot) { return slot ? from_handle(slot)->size() : 0; }

size_t px_slot_index(const px_slot_t *slot) { return slot ? from_handle(slot)->index() : 0; }

void px_slot_release(px_slot_t *slot) {
    if (!slot)
        return;
    Slot *s = from_handle(slot);
    uint32_t refs = s->ref_count();
    // A slot handle is the loan's one reference (px_slot_into_buffer consumes it), so this is
    // the common case: give the slot back without an atomic decrement.
    if (refs == 1) [[likely]] {
        s->release_sole_reference();
        return;
    }
    // Slot objects live as long as their pool, so a second release of the same loan can be seen
    // (while the pool lives) and ignored instead of corrupting the count.
    if (refs == 0) {
#ifndef NDEBUG
        std::fprintf(stderr, "libparallax: px_slot_release: slot %zu released twice (ignored)\n",
                     s->index());
#endif
        return;
    }
    s->release_ref();
}

PX_HOT px_status_t px_slot_into_buffer(px_slot_t *slot, size_t len, const px_metadata_t *meta,
                                px_buffer_t **out) {
    // The slot is consumed whatever happens: the reference moves into the buffer or is dropped.
    Ref<Slot> owned = slot ? Ref<Slot>::adopt(from_handle(slot)) : Ref<Slot>();
    return px_guard(__func__, [&] {
        require_out(out);
        require(slot, "slot");
        if (len == 0 || len > owned->size())
            fail(Status::invalid, "len " + std::to_string(len) + " is not in [1, slot size " +
                                      std::to_string(owned->size()) + "]");
        MemoryPool &pool = owned->pool();
        size_t offset = owned->index() * pool.slot_size();
        Metadata m = metadata_from_c(meta);
        *out = new_buffer_handle(
            Buffer(pool.segment_ref(), offset, len, m, Ref<RefCounted>(std::move(owned))));
    });
}

} // extern "C"
