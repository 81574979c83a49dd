/* SPDX-License-Identifier: Apache-2.0 OR MIT */
#include "gstparallaxmemory.h"

#include <string.h>

typedef struct {
    GstMemory mem;
    px_buffer_t *buf; /* owned: one handle per GstParallaxMemory, shares included */
    guint8 *data;     /* px_buffer_ptr(buf), cast once */
} GstParallaxMemory;

typedef struct {
    GstAllocator parent;
} GstParallaxAllocator;

typedef struct {
    GstAllocatorClass parent_class;
} GstParallaxAllocatorClass;

GType gst_parallax_allocator_get_type(void);
G_DEFINE_TYPE(GstParallaxAllocator, gst_parallax_allocator, GST_TYPE_ALLOCATOR)

/* The one allocator instance; it lives for the process (GStreamer never unloads a plugin). */
static GstAllocator *parallax_allocator(void) {
    static GstAllocator *allocator;
    if (g_once_init_enter(&allocator)) {
        GstAllocator *a = g_object_new(gst_parallax_allocator_get_type(), NULL);
        gst_object_ref_sink(a);
        GST_OBJECT_FLAG_SET(a, GST_OBJECT_FLAG_MAY_BE_LEAKED);
        g_once_init_leave(&allocator, a);
    }
    return allocator;
}

/* Freed memories kept for reuse, so that a frame costs no heap allocation for its GstMemory
 * (one per frame in each element): at most PARKED_MAX of them, the most a pipeline has in
 * flight at once; beyond that they are freed. Lock-free (GstAtomicQueue): memories are freed
 * in whichever thread drops the last reference. */
#define PARKED_MAX 64

static GstAtomicQueue *parked_memories(void) {
    static GstAtomicQueue *queue;
    if (g_once_init_enter(&queue))
        g_once_init_leave(&queue, gst_atomic_queue_new(PARKED_MAX));
    return queue;
}

static GstParallaxMemory *memory_struct(void) {
    GstParallaxMemory *m = gst_atomic_queue_pop(parked_memories());
    if (m == NULL)
        return g_new0(GstParallaxMemory, 1);
    memset(m, 0, sizeof *m);
    return m;
}

/* A new memory showing [offset, offset + size) of `buf`, which it takes. */
static GstMemory *memory_new(px_buffer_t *buf, GstMemoryFlags flags, gsize offset, gsize size) {
    GstParallaxMemory *m = memory_struct();
    m->buf = buf;
    m->data = (guint8 *)px_buffer_ptr(buf);
    gst_memory_init(GST_MEMORY_CAST(m), flags, parallax_allocator(), NULL, px_buffer_len(buf),
                    0, offset, size);
    return GST_MEMORY_CAST(m);
}

GstMemory *gst_parallax_memory_wrap(px_buffer_t *buf) {
    g_return_val_if_fail(buf != NULL, NULL);
    /* A received frame is mapped read-only by the kernel: say so, so that a writer copies. */
    const GstMemoryFlags flags = px_buffer_mut_ptr(buf) ? 0 : GST_MEMORY_FLAG_READONLY;
    return memory_new(buf, flags, 0, px_buffer_len(buf));
}

gboolean gst_is_parallax_memory(GstMemory *mem) {
    return mem != NULL && gst_memory_is_type(mem, GST_PARALLAX_MEMORY_TYPE);
}

px_buffer_t *gst_parallax_memory_get_buffer(GstMemory *mem) {
    if (!gst_is_parallax_memory(mem))
        return NULL;
    return ((GstParallaxMemory *)mem)->buf;
}

static gpointer parallax_mem_map(GstMemory *mem, gsize maxsize, GstMapFlags flags) {
    (void)maxsize;
    GstParallaxMemory *m = (GstParallaxMemory *)mem;
    if ((flags & GST_MAP_WRITE) && px_buffer_mut_ptr(m->buf) == NULL)
        return NULL; /* read-only mapping of another process's slot */
    return m->data;
}

static void parallax_mem_unmap(GstMemory *mem) { (void)mem; }

/* A share is another handle on the same px buffer (px_buffer_clone: O(1), no copy), so each
 * GstMemory owns exactly one handle and no parent bookkeeping is needed. */
static GstMemory *parallax_mem_share(GstMemory *mem, gssize offset, gssize size) {
    GstParallaxMemory *m = (GstParallaxMemory *)mem;
    if (size == -1)
        size = (gssize)mem->size - offset;
    px_buffer_t *clone = NULL;
    if (px_buffer_clone(m->buf, &clone) != PX_OK)
        return NULL;
    const GstMemoryFlags flags =
        (GST_MINI_OBJECT_FLAGS(mem) & GST_MEMORY_FLAG_READONLY) | GST_MINI_OBJECT_FLAG_LOCK_READONLY;
    return memory_new(clone, flags, mem->offset + offset, (gsize)size);
}

/* A copy is plain system memory: the caller wants bytes it may write. */
static GstMemory *parallax_mem_copy(GstMemory *mem, gssize offset, gssize size) {
    GstParallaxMemory *m = (GstParallaxMemory *)mem;
    if (size == -1)
        size = (gssize)mem->size > offset ? (gssize)mem->size - offset : 0;
    GstMemory *copy = gst_allocator_alloc(NULL, (gsize)size, NULL);
    GstMapInfo info;
    if (!gst_memory_map(copy, &info, GST_MAP_WRITE)) {
        gst_memory_unref(copy);
        return NULL;
    }
    memcpy(info.data, m->data + mem->offset + offset, (size_t)size);
    gst_memory_unmap(copy, &info);
    return copy;
}

static GstMemory *parallax_alloc(GstAllocator *allocator, gsize size,
                                 GstAllocationParams *params) {
    (void)allocator, (void)size, (void)params;
    return NULL; /* memory comes from gst_parallax_memory_wrap() only */
}

static void parallax_free(GstAllocator *allocator, GstMemory *mem) {
    (void)allocator;
    GstParallaxMemory *m = (GstParallaxMemory *)mem;
    px_buffer_release(m->buf);
    m->buf = NULL;
    /* Racy bound (another thread may push between the length and the push): a few more
     * parked memories than PARKED_MAX at worst, never fewer frames served. */
    if (gst_atomic_queue_length(parked_memories()) < PARKED_MAX)
        gst_atomic_queue_push(parked_memories(), m);
    else
        g_free(m);
}

static void gst_parallax_allocator_class_init(GstParallaxAllocatorClass *klass) {
    GstAllocatorClass *allocator_class = GST_ALLOCATOR_CLASS(klass);
    allocator_class->alloc = parallax_alloc;
    allocator_class->free = parallax_free;
}

static void gst_parallax_allocator_init(GstParallaxAllocator *self) {
    GstAllocator *alloc = GST_ALLOCATOR_CAST(self);
    alloc->mem_type = GST_PARALLAX_MEMORY_TYPE;
    alloc->mem_map = parallax_mem_map;
    alloc->mem_unmap = parallax_mem_unmap;
    alloc->mem_share = parallax_mem_share;
    alloc->mem_copy = parallax_mem_copy;
    GST_OBJECT_FLAG_SET(self, GST_ALLOCATOR_FLAG_CUSTOM_ALLOC);
}
