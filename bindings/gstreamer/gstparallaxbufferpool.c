/* SPDX-License-Identifier: Apache-2.0 OR MIT */
#include "gstparallaxbufferpool.h"

#include "gstparallaxmemory.h"

GST_DEBUG_CATEGORY_EXTERN(gst_parallax_debug);
#define GST_CAT_DEFAULT gst_parallax_debug

/* How long one wait for a free slot lasts before the pool looks whether it is flushing. */
#define LOAN_WAIT_NS (20 * GST_MSECOND)

struct _GstParallaxBufferPool {
    GstBufferPool parent;
    px_pool_t *pool; /* owned reference */
    gsize size;      /* buffer size from the config */
};

G_DEFINE_TYPE(GstParallaxBufferPool, gst_parallax_buffer_pool, GST_TYPE_BUFFER_POOL)

GstBufferPool *gst_parallax_buffer_pool_new(px_pool_t *pool) {
    GstParallaxBufferPool *self = g_object_new(GST_TYPE_PARALLAX_BUFFER_POOL, NULL);
    gst_object_ref_sink(self);
    self->pool = px_pool_retain(pool);
    return GST_BUFFER_POOL_CAST(self);
}

static gboolean pool_set_config(GstBufferPool *bpool, GstStructure *config) {
    GstParallaxBufferPool *self = GST_PARALLAX_BUFFER_POOL(bpool);
    GstCaps *caps = NULL;
    guint size = 0, min = 0, max = 0;
    if (!gst_buffer_pool_config_get_params(config, &caps, &size, &min, &max)) {
        GST_WARNING_OBJECT(self, "invalid config");
        return FALSE;
    }
    if (size == 0 || size > px_pool_slot_size(self->pool)) {
        GST_WARNING_OBJECT(self, "buffer size %u does not fit a slot of %zu bytes", size,
                           px_pool_slot_size(self->pool));
        return FALSE;
    }
    /* Buffers kept ready each hold a slot: as many as the pool has would leave none to publish
     * from, and the first acquire would wait for ever. */
    if (min >= px_pool_capacity(self->pool)) {
        GST_WARNING_OBJECT(self, "%u buffers kept ready need more than the %zu slots", min,
                           px_pool_capacity(self->pool));
        return FALSE;
    }
    self->size = size;
    return GST_BUFFER_POOL_CLASS(gst_parallax_buffer_pool_parent_class)->set_config(bpool, config);
}

/* A free slot, waited for in short steps so that a flushing pool (state change, seek) is not
 * stuck behind a subscriber that holds every slot. */
static GstFlowReturn loan_slot(GstParallaxBufferPool *self, px_slot_t **slot) {
    for (;;) {
        px_status_t rc = px_pool_loan_timeout(self->pool, LOAN_WAIT_NS, slot);
        if (rc == PX_OK)
            return GST_FLOW_OK;
        if (rc != PX_E_TIMEOUT && rc != PX_E_WOULD_BLOCK) {
            GST_ERROR_OBJECT(self, "slot loan failed: %s: %s", px_status_string(rc),
                             px_last_error_message());
            return GST_FLOW_ERROR;
        }
        if (GST_BUFFER_POOL_IS_FLUSHING(GST_BUFFER_POOL_CAST(self)))
            return GST_FLOW_FLUSHING;
    }
}

static GstFlowReturn pool_alloc_buffer(GstBufferPool *bpool, GstBuffer **out,
                                       GstBufferPoolAcquireParams *params) {
    (void)params;
    GstParallaxBufferPool *self = GST_PARALLAX_BUFFER_POOL(bpool);
    px_slot_t *slot = NULL;
    GstFlowReturn ret = loan_slot(self, &slot);
    if (ret != GST_FLOW_OK)
        return ret;
    /* The slot becomes a buffer at once: the sink publishes a handle on it, and the slot goes
     * home when this handle and every subscriber's are released, in whatever order. */
    px_buffer_t *buf = NULL;
    px_status_t rc = px_slot_into_buffer(slot, px_slot_len(slot), NULL, &buf);
    if (rc != PX_OK) {
        GST_ERROR_OBJECT(self, "px_slot_into_buffer: %s", px_last_error_message());
        return GST_FLOW_ERROR;
    }
    GstMemory *mem = gst_parallax_memory_wrap(buf);
    gst_memory_resize(mem, 0, self->size);
    *out = gst_buffer_new();
    gst_buffer_append_memory(*out, mem);
    return GST_FLOW_OK;
}

/* A buffer back from upstream or the sink is never reused: its slot may still be read by
 * subscribers, so writing the next frame into it would change a frame they hold. Tagging the
 * memory makes the base class free the buffer (and release this handle on the slot); the next
 * acquire loans whichever slot is free. */
static void pool_reset_buffer(GstBufferPool *bpool, GstBuffer *buffer) {
    GST_BUFFER_POOL_CLASS(gst_parallax_buffer_pool_parent_class)->reset_buffer(bpool, buffer);
    GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_TAG_MEMORY);
}

static void pool_finalize(GObject *object) {
    GstParallaxBufferPool *self = GST_PARALLAX_BUFFER_POOL(object);
    px_pool_release(self->pool);
    G_OBJECT_CLASS(gst_parallax_buffer_pool_parent_class)->finalize(object);
}

static void gst_parallax_buffer_pool_class_init(GstParallaxBufferPoolClass *klass) {
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GstBufferPoolClass *pool_class = GST_BUFFER_POOL_CLASS(klass);
    object_class->finalize = pool_finalize;
    pool_class->set_config = pool_set_config;
    pool_class->alloc_buffer = pool_alloc_buffer;
    pool_class->reset_buffer = pool_reset_buffer;
}

static void gst_parallax_buffer_pool_init(GstParallaxBufferPool *self) { (void)self; }
