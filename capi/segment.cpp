// SPDX-License-Identifier: Apache-2.0 OR MIT
// px_segment_*: the four backends behind one handle.
#include "capi/guard.hpp"
#include "capi/handles.hpp"
#include "core/heap_segment.hpp"
#include "core/huge_page_segment.hpp"
#include "core/mapped_file_segment.hpp"
#include "core/shared_memory_segment.hpp"

using namespace px;
using namespace px::capi;

static_assert(PX_MEMORY_HEAP == static_cast<uint32_t>(MemoryType::heap));
static_assert(PX_MEMORY_SHARED == static_cast<uint32_t>(MemoryType::shared));
static_assert(PX_MEMORY_HUGE_PAGES == static_cast<uint32_t>(MemoryType::huge_pages));
static_assert(PX_MEMORY_MAPPED_FILE == static_cast<uint32_t>(MemoryType::mapped_file));
static_assert(PX_MAP_READONLY == shm::map_readonly);
static_assert(PX_MAP_ALLOW_UNSEALED == shm::map_allow_unsealed);
static_assert(PX_HUGEPAGE_FALLBACK == huge_pages::fallback);

extern "C" {

px_status_t px_segment_heap_new(size_t size, px_segment_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        *out = to_handle(heap::create(size).detach());
    });
}

px_status_t px_segment_shm_new(const char *name, size_t size, px_segment_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        *out = to_handle(shm::create(name, size).detach());
    });
}

px_status_t px_segment_shm_from_fd(int fd, size_t size, uint32_t flags, px_segment_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        *out = to_handle(shm::from_fd(fd, size, flags).detach());
    });
}

px_status_t px_segment_hugepage_new(uint32_t page_size, size_t size, uint32_t flags,
                                    px_segment_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        *out = to_handle(huge_pages::create(page_size, size, flags).detach());
    });
}

px_status_t px_segment_file_create(const char *path, size_t size, px_segment_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        *out = to_handle(mapped_file::create(path, size).detach());
    });
}

px_status_t px_segment_file_open(const char *path, px_segment_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        *out = to_handle(mapped_file::open(path, false).detach());
    });
}

px_status_t px_segment_file_open_readonly(const char *path, px_segment_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        *out = to_handle(mapped_file::open(path, true).detach());
    });
}

px_status_t px_segment_flush(px_segment_t *seg) {
    return px_guard(__func__, [&] { from_handle(require(seg, "seg"))->flush(); });
}

px_status_t px_segment_read(const px_segment_t *seg, size_t offset, void *dst, size_t len) {
    return px_guard(__func__,
                    [&] { from_handle(require(seg, "seg"))->read_into(offset, dst, len); });
}

const void *px_segment_ptr(const px_segment_t *seg) {
    return seg ? from_handle(seg)->data() : nullptr;
}

void *px_segment_mut_ptr(const px_segment_t *seg) {
    return seg ? from_handle(seg)->mutable_data() : nullptr;
}

size_t px_segment_len(const px_segment_t *seg) { return seg ? from_handle(seg)->size() : 0; }

int32_t px_segment_is_readonly(const px_segment_t *seg) {
    return seg && from_handle(seg)->readonly() ? 1 : 0;
}

px_memory_type_t px_segment_memory_type(const px_segment_t *seg) {
    return seg ? static_cast<px_memory_type_t>(from_handle(seg)->memory_type()) : PX_MEMORY_HEAP;
}

size_t px_segment_page_size(const px_segment_t *seg) {
    return seg ? from_handle(seg)->page_size() : 0;
}

px_status_t px_segment_ipc_handle(const px_segment_t *seg, px_ipc_handle_t *out) {
    return px_guard(__func__, [&] {
        require_out(out);
        Segment *s = from_handle(require(seg, "seg"));
        if (s->ipc_fd() < 0)
            fail(Status::unsupported,
                 std::string("a ") + memory_type_name(s->memory_type()) +
                     " segment has no fd to share; use px_segment_shm_new or a huge-page segment");
        out->kind = PX_IPC_FD;
        out->fd = s->ipc_fd();
        out->size = s->size();
    });
}

px_segment_t *px_segment_retain(px_segment_t *seg) {
    if (seg)
        from_handle(seg)->add_ref();
    return seg;
}

void px_segment_release(px_segment_t *seg) {
    if (seg)
        from_handle(seg)->release_ref();
}

} // extern "C"
