/* SPDX-License-Identifier: Apache-2.0 OR MIT */
#include "gstparallaxbufferpool.h"

#include "gstparallaxmemory.h"

GST_DEBUG_CATEGORY_EXTERN(gst_parallax_debug);
#define GST_CAT_DEFAULT gst_parallax_debug

/* How long one wait for a free slot lasts before the pool looks whether it is flushing. */
#define LOAN_WAIT_NS (20 * GST_MSECOND)
/* Empty buffers kept allocated at the least. GstBufferPool signals "a buffer came home" through
 * a GstPoll control fd whenever its queue goes from empty to one (a write, and a read at the
 * next acquire): with a few spare buffers queued that happens only at bursts, not per frame. */
#define MIN_READY 4

struct _GstParallaxBufferPool {
    GstBufferPool parent;
    px_pool_t *pool; /* owned reference; NULL: a pool of empty buffers */
    gsize size;      /* frame size from the config (the buffers of the base class are empty) */
};

G_DEFINE_TYPE(GstParallaxBufferPool, gst_parallax_buffer_pool, GST_TYPE_BUFFER_POOL)

GstBufferPool *gst_parallax_buffer_pool_new(px_pool_t *pool) {
    GstParallaxBufferPool *self = g_object_new(GST_TYPE_PARALLAX_BUFFER_POOL, NULL);
    gst_object_ref_sink(self);
    self->pool = px_pool_retain(pool);
    return GST_BUFFER_POOL_CAST(self);
}

GstBufferPool *gst_parallax_buffer_pool_new_empty(guint ready) {
    GstBufferPool *pool = gst_parallax_buffer_pool_new(NULL);
    GstStructure *config = gst_buffer_pool_get_config(pool);
    gst_buffer_pool_config_set_params(config, NULL, 0, ready, 0);
    if (!gst_buffer_pool_set_config(pool, config) || !gst_buffer_pool_set_active(pool, TRUE)) {
        gst_object_unref(pool);
        return NULL;
    }
    return pool;
}

static gboolean pool_set_config(GstBufferPool *bpool, GstStructure *config) {
    GstParallaxBufferPool *self = GST_PARALLAX_BUFFER_POOL(bpool);
    GstCaps *caps = NULL;
    guint size = 0, min = 0, max = 0;
    if (!gst_buffer_pool_config_get_params(config, &caps, &size, &min, &max)) {
        GST_WARNING_OBJECT(self, "invalid config");
        return FALSE;
    }
    if (self->pool != NULL && (size == 0 || size > px_pool_slot_size(self->pool))) {
        GST_WARNING_OBJECT(self, "buffer size %u does not fit a slot of %zu bytes", size,
                           px_pool_slot_size(self->pool));
        return FALSE;
    }
    self->size = size;
    /* The base class keeps empty buffers (a buffer's memory goes at reset): its size is 0, or
     * it would discard every buffer coming home. Idle buffers hold no slot, so any number of
     * them may be kept ready. */
    min = MAX(min, MIN_READY);
    if (max != 0 && max < min)
        max = min;
    gst_buffer_pool_config_set_params(config, caps, 0, min, max);
    return GST_BUFFER_POOL_CLASS(gst_parallax_buffer_pool_parent_class)->set_config(bpool, config);
}

/* An empty buffer: memory is put in at acquire (a slot) or by the caller (a received frame). */
static GstFlowReturn pool_alloc_buffer(GstBufferPool *bpool, GstBuffer **out,
                                       GstBufferPoolAcquireParams *params) {
    (void)bpool, (void)params;
    *out = gst_buffer_new();
    return GST_FLOW_OK;
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

/* A memory over a freshly loaned slot, the config's size long. The slot becomes a buffer at
 * once, of exactly that length, so that the sink can publish this very handle (no slice): the
 * slot goes home when it and every subscriber's are released, in whatever order. */
static GstFlowReturn slot_memory(GstParallaxBufferPool *self, GstMemory **mem) {
    px_slot_t *slot = NULL;
    GstFlowReturn ret = loan_slot(self, &slot);
    if (ret != GST_FLOW_OK)
        return ret;
    px_buffer_t *buf = NULL;
    px_status_t rc = px_slot_into_buffer(slot, self->size, NULL, &buf);
    if (rc != PX_OK) {
        GST_ERROR_OBJECT(self, "px_slot_into_buffer: %s", px_last_error_message());
        return GST_FLOW_ERROR;
    }
    *mem = gst_parallax_memory_wrap(buf);
    return GST_FLOW_OK;
}

static GstFlowReturn pool_acquire_buffer(GstBufferPool *bpool, GstBuffer **out,
                                         GstBufferPoolAcquireParams *params) {
    GstParallaxBufferPool *self = GST_PARALLAX_BUFFER_POOL(bpool);
    GstBufferPoolClass *parent = GST_BUFFER_POOL_CLASS(gst_parallax_buffer_pool_parent_class);
    GstFlowReturn ret = parent->acquire_buffer(bpool, out, params);
    if (ret != GST_FLOW_OK || self->pool == NULL)
        return ret;
    GstMemory *mem = NULL;
    ret = slot_memory(self, &mem);
    if (ret != GST_FLOW_OK) {
        parent->release_buffer(bpool, *out); /* still empty: back in the queue */
        *out = NULL;
        return ret;
    }
    gst_buffer_append_memory(*out, mem);
    /* The memory is the pool's own, as if allocated with the buffer. */
    GST_BUFFER_FLAG_UNSET(*out, GST_BUFFER_FLAG_TAG_MEMORY);
    return GST_FLOW_OK;
}

/* A buffer back from upstream, the sink or downstream gives up its memory: a slot may still be
 * read by subscribers (writing the next frame into it would change a frame they hold), and a
 * received frame's slot must go home. Its handle is released here; the buffer waits empty for
 * the next acquire. */
static void pool_reset_buffer(GstBufferPool *bpool, GstBuffer *buffer) {
    GST_BUFFER_POOL_CLASS(gst_parallax_buffer_pool_parent_class)->reset_buffer(bpool, buffer);
    gst_buffer_remove_all_memory(buffer);
    GST_BUFFER_FLAG_UNSET(buffer, GST_BUFFER_FLAG_TAG_MEMORY);
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
    pool_class->acquire_buffer = pool_acquire_buffer;
    pool_class->reset_buffer = pool_reset_buffer;
}

static void gst_parallax_buffer_pool_init(GstParallaxBufferPool *self) { (void)self; }
