/* SPDX-License-Identifier: Apache-2.0 OR MIT */
#include "gstparallaxsink.h"

#include <gst/video/video.h>
#include <parallax/parallax.h>
#include <string.h>

#include "gstparallaxbufferpool.h"
#include "gstparallaxcommon.h"
#include "gstparallaxformat.h"
#include "gstparallaxmemory.h"
#include "gstparallaxmeta.h"

GST_DEBUG_CATEGORY_EXTERN(gst_parallax_debug);
#define GST_CAT_DEFAULT gst_parallax_debug

#define DEFAULT_SLOTS 10
#define DEFAULT_MAX_IN_FLIGHT 4
#define DEFAULT_BLOCK_TIMEOUT GST_SECOND
/* Steps in which render waits (for subscribers, for a slot), so that unlock() is seen. */
#define WAIT_STEP_NS (20 * GST_MSECOND)
/* How long EOS keeps offering the end marker to subscribers that had no room for it. */
#define EOS_MARKER_WAIT_NS GST_SECOND
#define SLOT_ALIGN 4096

enum {
    PROP_0,
    PROP_STREAM,
    PROP_SLOTS,
    PROP_SLOT_SIZE,
    PROP_POLICY,
    PROP_HISTORY,
    PROP_MAX_IN_FLIGHT,
    PROP_BLOCK_TIMEOUT,
    PROP_WAIT_FOR_SUBSCRIBERS,
    PROP_STATS,
};

struct _GstParallaxSink {
    GstBaseSink parent;

    /* Properties (object lock); read into the publisher and pool at start. */
    gchar *stream;
    guint slots;
    guint64 slot_size; /* 0: from the caps (or the first buffer) */
    guint policy;      /* PX_SLOW_* */
    guint history;
    guint max_in_flight;
    gint64 block_timeout;
    guint wait_for_subscribers;

    /* Streaming state: the publisher is used by the streaming thread only; the pool may be
     * replaced by an allocation query, so its pointer is read and swapped under pool_lock. */
    px_publisher_t *pub;
    GMutex pool_lock;
    px_pool_t *pool;
    gboolean waited; /* wait-for-subscribers done */
    px_format_t format;     /* typed-frame description of the caps' frames; ndim 0: untyped */
    gboolean format_warned; /* a buffer that did not fit `format` was reported (per caps) */
    gint unlocked;   /* atomic: unlock() was called, a waiting render must give up */
    guint64 sequence;

    /* Counters for the stats property (atomic). */
    gsize published, zero_copy, copied, block_timeouts;
};

G_DEFINE_TYPE(GstParallaxSink, gst_parallax_sink, GST_TYPE_BASE_SINK)

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

GType gst_parallax_sink_policy_get_type(void) {
    static GType type;
    static const GEnumValue values[] = {
        {PX_SLOW_DROP, "A subscriber without room misses the frame", "drop"},
        {PX_SLOW_BLOCK, "Wait up to block-timeout for room at every subscriber", "block"},
        {PX_SLOW_DISCONNECT, "A subscriber without room is disconnected", "disconnect"},
        {0, NULL, NULL},
    };
    if (g_once_init_enter(&type))
        g_once_init_leave(&type, g_enum_register_static("GstParallaxSinkPolicy", values));
    return type;
}

#define POST_PX_ERROR(self, what, rc)                                                          \
    GST_PARALLAX_POST_PX_ERROR(self, GST_RESOURCE_ERROR_WRITE, what, (self)->stream, rc)

/* ---- pool ----------------------------------------------------------------------------------- */

/* The current pool, with a reference for the caller; NULL when none is made yet. */
static px_pool_t *current_pool(GstParallaxSink *self) {
    g_mutex_lock(&self->pool_lock);
    px_pool_t *pool = px_pool_retain(self->pool);
    g_mutex_unlock(&self->pool_lock);
    return pool;
}

/* Makes sure the pool's slots hold `size` bytes: a new pool replaces a smaller one (buffers
 * still out on the old one keep it alive until they come home). */
static gboolean ensure_pool(GstParallaxSink *self, gsize size) {
    GST_OBJECT_LOCK(self);
    const guint64 fixed = self->slot_size;
    const guint slots = self->slots;
    GST_OBJECT_UNLOCK(self);
    if (fixed != 0 && size > fixed) {
        GST_ELEMENT_ERROR(self, RESOURCE, NO_SPACE_LEFT, ("Frame larger than a slot"),
                          ("a %" G_GSIZE_FORMAT "-byte frame does not fit slot-size=%" G_GUINT64_FORMAT,
                           size, fixed));
        return FALSE;
    }
    g_mutex_lock(&self->pool_lock);
    const gboolean fits = self->pool != NULL && px_pool_slot_size(self->pool) >= size;
    g_mutex_unlock(&self->pool_lock);
    if (fits)
        return TRUE;
    const gsize slot = fixed != 0 ? (gsize)fixed : (size + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN;
    if (slot == 0 || slots > G_MAXSIZE / slot) {
        GST_ELEMENT_ERROR(self, RESOURCE, NO_SPACE_LEFT, ("Pool too large"),
                          ("%u slots of %" G_GSIZE_FORMAT " bytes", slots, slot));
        return FALSE;
    }
    px_segment_t *seg = NULL;
    px_status_t rc = px_segment_shm_new("parallaxsink", slot * slots, &seg);
    px_pool_t *pool = NULL;
    if (rc == PX_OK)
        rc = px_pool_new(seg, slot, &pool);
    px_segment_release(seg);
    if (rc != PX_OK) {
        POST_PX_ERROR(self, "Making the shared pool", rc);
        return FALSE;
    }
    GST_INFO_OBJECT(self, "pool of %u slots of %" G_GSIZE_FORMAT " bytes", slots, slot);
    g_mutex_lock(&self->pool_lock);
    px_pool_t *old = self->pool;
    self->pool = pool;
    g_mutex_unlock(&self->pool_lock);
    px_pool_release(old);
    return TRUE;
}

/* Bytes of one frame of these caps; 0 when the caps do not say (not raw video). With `fmt`,
 * also the frames' typed description (ndim 0 when the caps give none). */
static gsize frame_size_of(GstCaps *caps, px_format_t *fmt) {
    GstVideoInfo info;
    if (fmt != NULL)
        memset(fmt, 0, sizeof *fmt);
    if (caps == NULL || !gst_video_info_from_caps(&info, caps))
        return 0;
    if (fmt != NULL)
        gst_parallax_format_from_video_info(&info, fmt);
    return info.size;
}

/* ---- waiting -------------------------------------------------------------------------------- */

/* After unlock(): what render returns, as GstBaseSink wants (wait_preroll says whether to go
 * on, GST_FLOW_OK, or to give up, e.g. GST_FLOW_FLUSHING). */
static GstFlowReturn wait_if_unlocked(GstParallaxSink *self) {
    if (!g_atomic_int_get(&self->unlocked))
        return GST_FLOW_OK;
    return gst_base_sink_wait_preroll(GST_BASE_SINK(self));
}

/* Holds the first buffer until wait-for-subscribers have joined (admitted by the polls). */
static GstFlowReturn wait_for_subscribers(GstParallaxSink *self) {
    GST_OBJECT_LOCK(self);
    const guint wanted = self->wait_for_subscribers;
    GST_OBJECT_UNLOCK(self);
    while (px_publisher_subscriber_count(self->pub) < wanted) {
        px_status_t rc = px_publisher_poll(self->pub, WAIT_STEP_NS);
        if (rc != PX_OK && rc != PX_E_TIMEOUT && rc != PX_E_WOULD_BLOCK) {
            POST_PX_ERROR(self, "Waiting for subscribers", rc);
            return GST_FLOW_ERROR;
        }
        GstFlowReturn ret = wait_if_unlocked(self);
        if (ret != GST_FLOW_OK)
            return ret;
    }
    self->waited = TRUE;
    return GST_FLOW_OK;
}

/* A free slot of the current pool, waited for in steps (a subscriber may hold all of them). */
static GstFlowReturn loan_slot(GstParallaxSink *self, px_pool_t *pool, px_slot_t **slot) {
    for (;;) {
        px_status_t rc = px_pool_loan_timeout(pool, WAIT_STEP_NS, slot);
        if (rc == PX_OK)
            return GST_FLOW_OK;
        if (rc != PX_E_TIMEOUT && rc != PX_E_WOULD_BLOCK) {
            POST_PX_ERROR(self, "Loaning a slot", rc);
            return GST_FLOW_ERROR;
        }
        /* Admit joiners and let departures go while no slot is free. */
        px_publisher_poll(self->pub, 0);
        GstFlowReturn ret = wait_if_unlocked(self);
        if (ret != GST_FLOW_OK)
            return ret;
    }
}

/* ---- frames --------------------------------------------------------------------------------- */

/* A handle on the slot upstream wrote `buf` into, when it did (the buffer came from our
 * GstBufferPool, or any other writable libparallax memory of this process): no copy. The
 * memory's own handle when it shows all of it (our pool's buffers: *owned FALSE, the caller
 * must not release it), else a slice of it (*owned TRUE). */
static px_buffer_t *frame_in_place(GstBuffer *buf, gboolean *owned) {
    if (gst_buffer_n_memory(buf) != 1)
        return NULL;
    GstMemory *mem = gst_buffer_peek_memory(buf, 0);
    px_buffer_t *whole = gst_parallax_memory_get_buffer(mem);
    if (whole == NULL || px_buffer_mut_ptr(whole) == NULL)
        return NULL;
    *owned = mem->offset != 0 || mem->size != px_buffer_len(whole);
    if (!*owned)
        return whole;
    px_buffer_t *frame = NULL;
    if (px_buffer_slice(whole, mem->offset, mem->size, &frame) != PX_OK)
        return NULL;
    return frame;
}

/* The frame copied once into a free slot (upstream did not write into one). */
static GstFlowReturn frame_copied(GstParallaxSink *self, GstBuffer *buf, gsize size,
                                  px_buffer_t **frame) {
    if (!ensure_pool(self, size))
        return GST_FLOW_ERROR;
    px_pool_t *pool = current_pool(self);
    px_slot_t *slot = NULL;
    GstFlowReturn ret = loan_slot(self, pool, &slot);
    px_pool_release(pool);
    if (ret != GST_FLOW_OK)
        return ret;
    gst_buffer_extract(buf, 0, px_slot_data(slot), size);
    px_status_t rc = px_slot_into_buffer(slot, size, NULL, frame);
    if (rc != PX_OK) {
        POST_PX_ERROR(self, "Filling a slot", rc);
        return GST_FLOW_ERROR;
    }
    if (g_atomic_pointer_add(&self->copied, 1) == 0)
        GST_ELEMENT_INFO(self, RESOURCE, WRITE, ("Copying each frame once into shared memory"),
                         ("upstream did not write into the buffer pool parallaxsink proposed "
                          "(buffers of %u memories); the stats property counts the copies",
                          gst_buffer_n_memory(buf)));
    return GST_FLOW_OK;
}

static GstFlowReturn publish(GstParallaxSink *self, px_buffer_t *frame) {
    px_status_t rc = px_publisher_publish(self->pub, frame);
    if (rc == PX_E_TIMEOUT) {
        /* policy=block: delivered to those with room; the others miss it (counted). */
        g_atomic_pointer_add(&self->block_timeouts, 1);
        GST_WARNING_OBJECT(self, "a subscriber had no room for frame %" G_GUINT64_FORMAT
                                 " within block-timeout", self->sequence);
        return GST_FLOW_OK;
    }
    if (rc != PX_OK) {
        POST_PX_ERROR(self, "Publishing", rc);
        return GST_FLOW_ERROR;
    }
    g_atomic_pointer_add(&self->published, 1);
    return GST_FLOW_OK;
}

/* Types the frame as the caps say (H x W x C u8 for RGB...). A buffer too small for its caps
 * goes out untyped, with a warning once per caps: its bytes still travel, only the array view
 * the caps promise does not. */
static void set_format(GstParallaxSink *self, px_buffer_t *frame) {
    /* Also when untyped (ndim 0 clears it): a pool memory's handle published again (a buffer
     * pushed twice) may carry the format of earlier caps. */
    if (px_buffer_set_format(frame, &self->format) == PX_OK)
        return;
    const px_format_t untyped = {0};
    px_buffer_set_format(frame, &untyped); /* what a refused format left stays off too */
    if (!self->format_warned)
        GST_ELEMENT_WARNING(self, STREAM, FORMAT, ("Buffer does not hold a frame of the caps"),
                            ("a %zu-byte buffer published untyped: %s", px_buffer_len(frame),
                             px_last_error_message()));
    self->format_warned = TRUE;
}

static GstFlowReturn sink_render(GstBaseSink *bsink, GstBuffer *buf) {
    GstParallaxSink *self = GST_PARALLAX_SINK(bsink);
    if (!self->waited) {
        GstFlowReturn ret = wait_for_subscribers(self);
        if (ret != GST_FLOW_OK)
            return ret;
    }
    const gsize size = gst_buffer_get_size(buf);
    if (size == 0) {
        GST_DEBUG_OBJECT(self, "empty buffer not published"); /* a slot holds >= 1 byte */
        return GST_FLOW_OK;
    }
    gboolean owned = TRUE;
    px_buffer_t *frame = frame_in_place(buf, &owned);
    if (frame != NULL) {
        g_atomic_pointer_add(&self->zero_copy, 1);
    } else {
        GstFlowReturn ret = frame_copied(self, buf, size, &frame);
        if (ret != GST_FLOW_OK)
            return ret;
    }
    px_metadata_t meta;
    gst_parallax_meta_from_buffer(buf, self->sequence++, &meta);
    px_buffer_set_metadata(frame, &meta);
    set_format(self, frame);
    GstFlowReturn ret = publish(self, frame);
    if (owned)
        px_buffer_release(frame);
    return ret;
}

/* At EOS: a 1-byte frame flagged GST_PARALLAX_FLAG_EOS, so that parallaxsrc ends with EOS
 * rather than taking the publisher's exit for a crash. Offered again (for up to 1 s) while some
 * subscriber had no room for it (policy=drop); a repeat is harmless, the src stops at the
 * first. */
static void publish_eos_marker(GstParallaxSink *self) {
    if (self->pub == NULL || px_publisher_subscriber_count(self->pub) == 0)
        return;
    if (!ensure_pool(self, 1))
        return;
    px_pool_t *pool = current_pool(self);
    const gint64 deadline = g_get_monotonic_time() + EOS_MARKER_WAIT_NS / 1000;
    for (;;) {
        px_publisher_stats_t before, after;
        px_publisher_get_stats(self->pub, &before);
        px_slot_t *slot = NULL;
        px_buffer_t *marker = NULL;
        if (px_pool_loan_timeout(pool, WAIT_STEP_NS, &slot) == PX_OK) {
            *(guint8 *)px_slot_data(slot) = 0;
            px_metadata_t meta;
            px_metadata_init(&meta);
            meta.sequence = self->sequence;
            meta.flags = GST_PARALLAX_FLAG_EOS;
            if (px_slot_into_buffer(slot, 1, &meta, &marker) == PX_OK) {
                px_publisher_publish(self->pub, marker);
                px_buffer_release(marker);
                px_publisher_get_stats(self->pub, &after);
                if (after.dropped == before.dropped)
                    break;
            }
        }
        if (g_get_monotonic_time() >= deadline) {
            GST_WARNING_OBJECT(self, "a subscriber had no room for the end-of-stream marker");
            break;
        }
        g_usleep(10000);
    }
    px_pool_release(pool);
}

static gboolean sink_event(GstBaseSink *bsink, GstEvent *event) {
    GstParallaxSink *self = GST_PARALLAX_SINK(bsink);
    if (GST_EVENT_TYPE(event) == GST_EVENT_EOS)
        publish_eos_marker(self);
    return GST_BASE_SINK_CLASS(gst_parallax_sink_parent_class)->event(bsink, event);
}

/* ---- negotiation ---------------------------------------------------------------------------- */

static gboolean sink_set_caps(GstBaseSink *bsink, GstCaps *caps) {
    GstParallaxSink *self = GST_PARALLAX_SINK(bsink);
    gchar *text = gst_caps_to_string(caps);
    px_status_t rc = px_publisher_set_description(self->pub, text);
    GST_INFO_OBJECT(self, "description: %s", text);
    g_free(text);
    if (rc != PX_OK) {
        POST_PX_ERROR(self, "Setting the description", rc);
        return FALSE;
    }
    const gsize size = frame_size_of(caps, &self->format);
    self->format_warned = FALSE;
    GST_INFO_OBJECT(self, "frames %s", self->format.ndim ? "typed" : "untyped");
    return size == 0 || ensure_pool(self, size);
}

/* Offers upstream a GstBufferPool over the shared slots, for frames of a size the caps (or
 * slot-size) give; without one, upstream allocates and render copies. */
static gboolean sink_propose_allocation(GstBaseSink *bsink, GstQuery *query) {
    GstParallaxSink *self = GST_PARALLAX_SINK(bsink);
    GstCaps *caps = NULL;
    gboolean need_pool = FALSE;
    gst_query_parse_allocation(query, &caps, &need_pool);
    gsize size = frame_size_of(caps, NULL);
    GST_OBJECT_LOCK(self);
    if (size == 0)
        size = (gsize)self->slot_size;
    GST_OBJECT_UNLOCK(self);
    if (size == 0 || caps == NULL || !ensure_pool(self, size))
        return TRUE;
    px_pool_t *pool = current_pool(self);
    GstBufferPool *bpool = gst_parallax_buffer_pool_new(pool);
    px_pool_release(pool);
    GstStructure *config = gst_buffer_pool_get_config(bpool);
    gst_buffer_pool_config_set_params(config, caps, (guint)size, 0, 0);
    if (gst_buffer_pool_set_config(bpool, config))
        gst_query_add_allocation_pool(query, bpool, (guint)size, 0, 0);
    gst_object_unref(bpool);
    return TRUE;
}

/* ---- state ---------------------------------------------------------------------------------- */

static gboolean sink_start(GstBaseSink *bsink) {
    GstParallaxSink *self = GST_PARALLAX_SINK(bsink);
    px_publisher_options_t opts;
    px_publisher_options_init(&opts);
    GST_OBJECT_LOCK(self);
    gchar *stream = g_strdup(self->stream);
    const guint slots = self->slots;
    opts.slow_policy = self->policy;
    opts.history = self->history;
    opts.max_in_flight = self->max_in_flight;
    opts.block_timeout_ns = self->block_timeout;
    GST_OBJECT_UNLOCK(self);
    if (stream == NULL || *stream == '\0') {
        GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("No stream name"),
                          ("set the stream property"));
        g_free(stream);
        return FALSE;
    }
    /* History frames stay held by the publisher: at least one more slot must be left to fill. */
    if (opts.history >= slots) {
        GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("history must be less than slots"),
                          ("history=%u, slots=%u", opts.history, slots));
        g_free(stream);
        return FALSE;
    }
    px_status_t rc = px_publisher_new(stream, &opts, &self->pub);
    g_free(stream);
    if (rc != PX_OK) {
        POST_PX_ERROR(self, "Starting the publisher", rc);
        return FALSE;
    }
    self->waited = FALSE;
    self->sequence = 0;
    memset(&self->format, 0, sizeof self->format);
    self->published = self->zero_copy = self->copied = self->block_timeouts = 0;
    return TRUE;
}

static gboolean sink_stop(GstBaseSink *bsink) {
    GstParallaxSink *self = GST_PARALLAX_SINK(bsink);
    /* Subscribers drain what they were sent, then see the stream closed. */
    px_publisher_release(self->pub);
    self->pub = NULL;
    g_mutex_lock(&self->pool_lock);
    px_pool_t *pool = self->pool;
    self->pool = NULL;
    g_mutex_unlock(&self->pool_lock);
    px_pool_release(pool);
    return TRUE;
}

static gboolean sink_unlock(GstBaseSink *bsink) {
    g_atomic_int_set(&GST_PARALLAX_SINK(bsink)->unlocked, 1);
    return TRUE;
}

static gboolean sink_unlock_stop(GstBaseSink *bsink) {
    g_atomic_int_set(&GST_PARALLAX_SINK(bsink)->unlocked, 0);
    return TRUE;
}

/* ---- properties ----------------------------------------------------------------------------- */

static GstStructure *stats_of(GstParallaxSink *self) {
    /* The publisher's own counters, from the page it keeps (no lock with the streaming
     * thread); absent while no publisher runs. */
    GST_OBJECT_LOCK(self);
    gchar *stream = g_strdup(self->stream);
    GST_OBJECT_UNLOCK(self);
    px_publisher_stats_t st = {0};
    const gboolean publishing =
        stream != NULL && self->pub != NULL && px_stream_stats(stream, 0, &st) == PX_OK;
    g_free(stream);
    const GstParallaxCounter counters[] = {
        {"published", (guint64)g_atomic_pointer_get(&self->published)},
        {"zero-copy", (guint64)g_atomic_pointer_get(&self->zero_copy)},
        {"copied", (guint64)g_atomic_pointer_get(&self->copied)},
        {"block-timeouts", (guint64)g_atomic_pointer_get(&self->block_timeouts)},
        /* the publisher's, when there is one */
        {"subscribers", st.subscribers},
        {"dropped", st.dropped},
        {"slots-lent", st.slots_lent},
        {"joined", st.joined},
        {"departed", st.departed},
    };
    return gst_parallax_stats_new("GstParallaxSinkStats", counters,
                                  publishing ? G_N_ELEMENTS(counters) : 4);
}

static void sink_set_property(GObject *object, guint id, const GValue *value, GParamSpec *pspec) {
    GstParallaxSink *self = GST_PARALLAX_SINK(object);
    GST_OBJECT_LOCK(self);
    switch (id) {
    case PROP_STREAM:
        g_free(self->stream);
        self->stream = g_value_dup_string(value);
        break;
    case PROP_SLOTS:
        self->slots = g_value_get_uint(value);
        break;
    case PROP_SLOT_SIZE:
        self->slot_size = g_value_get_uint64(value);
        break;
    case PROP_POLICY:
        self->policy = (guint)g_value_get_enum(value);
        break;
    case PROP_HISTORY:
        self->history = g_value_get_uint(value);
        break;
    case PROP_MAX_IN_FLIGHT:
        self->max_in_flight = g_value_get_uint(value);
        break;
    case PROP_BLOCK_TIMEOUT:
        self->block_timeout = g_value_get_int64(value);
        break;
    case PROP_WAIT_FOR_SUBSCRIBERS:
        self->wait_for_subscribers = g_value_get_uint(value);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
        break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void sink_get_property(GObject *object, guint id, GValue *value, GParamSpec *pspec) {
    GstParallaxSink *self = GST_PARALLAX_SINK(object);
    if (id == PROP_STATS) {
        g_value_take_boxed(value, stats_of(self));
        return;
    }
    GST_OBJECT_LOCK(self);
    switch (id) {
    case PROP_STREAM:
        g_value_set_string(value, self->stream);
        break;
    case PROP_SLOTS:
        g_value_set_uint(value, self->slots);
        break;
    case PROP_SLOT_SIZE:
        g_value_set_uint64(value, self->slot_size);
        break;
    case PROP_POLICY:
        g_value_set_enum(value, (gint)self->policy);
        break;
    case PROP_HISTORY:
        g_value_set_uint(value, self->history);
        break;
    case PROP_MAX_IN_FLIGHT:
        g_value_set_uint(value, self->max_in_flight);
        break;
    case PROP_BLOCK_TIMEOUT:
        g_value_set_int64(value, self->block_timeout);
        break;
    case PROP_WAIT_FOR_SUBSCRIBERS:
        g_value_set_uint(value, self->wait_for_subscribers);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
        break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void sink_finalize(GObject *object) {
    GstParallaxSink *self = GST_PARALLAX_SINK(object);
    g_free(self->stream);
    g_mutex_clear(&self->pool_lock);
    G_OBJECT_CLASS(gst_parallax_sink_parent_class)->finalize(object);
}

static void install_properties(GObjectClass *oc) {
    const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;
    gst_parallax_install_stream_property(oc, PROP_STREAM,
                                         "Stream name (a name without '/' lives in the runtime "
                                         "directory; one with '/' is a socket path)");
    g_object_class_install_property(
        oc, PROP_SLOTS,
        g_param_spec_uint("slots", "Slots",
                          "Frames of shared memory: what subscribers hold, what upstream fills "
                          "and the history all come from them",
                          2, 1024, DEFAULT_SLOTS, rw));
    g_object_class_install_property(
        oc, PROP_SLOT_SIZE,
        g_param_spec_uint64("slot-size", "Slot size",
                            "Bytes per slot (0: a frame of the negotiated caps, or the first "
                            "buffer's size)",
                            0, G_MAXUINT32, 0, rw));
    g_object_class_install_property(
        oc, PROP_POLICY,
        g_param_spec_enum("policy", "Policy", "What happens to a subscriber without room",
                          gst_parallax_sink_policy_get_type(), PX_SLOW_DROP, rw));
    g_object_class_install_property(
        oc, PROP_HISTORY,
        g_param_spec_uint("history", "History",
                          "Latest frames a joining subscriber receives first (held: less than "
                          "slots)",
                          0, 1024, 0, rw));
    g_object_class_install_property(
        oc, PROP_MAX_IN_FLIGHT,
        g_param_spec_uint("max-in-flight", "Max in flight",
                          "Frames one subscriber may hold plus have queued", 1, 128,
                          DEFAULT_MAX_IN_FLIGHT, rw));
    g_object_class_install_property(
        oc, PROP_BLOCK_TIMEOUT,
        g_param_spec_int64("block-timeout", "Block timeout",
                           "policy=block: longest wait (ns) for room at every subscriber (-1: "
                           "for ever)",
                           -1, G_MAXINT64, DEFAULT_BLOCK_TIMEOUT, rw));
    g_object_class_install_property(
        oc, PROP_WAIT_FOR_SUBSCRIBERS,
        g_param_spec_uint("wait-for-subscribers", "Wait for subscribers",
                          "Hold the first buffer until this many subscribers have joined", 0,
                          1024, 0, rw));
    gst_parallax_install_stats_property(oc, PROP_STATS,
                                        "published, zero-copy, copied, block-timeouts; and the "
                                        "publisher's subscribers, dropped, slots-lent, joined, "
                                        "departed");
}

static void gst_parallax_sink_class_init(GstParallaxSinkClass *klass) {
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    GstElementClass *ec = GST_ELEMENT_CLASS(klass);
    GstBaseSinkClass *bc = GST_BASE_SINK_CLASS(klass);
    oc->set_property = sink_set_property;
    oc->get_property = sink_get_property;
    oc->finalize = sink_finalize;
    install_properties(oc);
    gst_element_class_add_static_pad_template(ec, &sink_template);
    gst_element_class_set_static_metadata(
        ec, "libparallax stream sink", "Sink/Network",
        "Publishes buffers to a libparallax stream: other processes' parallaxsrc read them in "
        "place, zero-copy",
        "libparallax <https://github.com/libparallax>");
    bc->start = sink_start;
    bc->stop = sink_stop;
    bc->set_caps = sink_set_caps;
    bc->propose_allocation = sink_propose_allocation;
    bc->render = sink_render;
    bc->event = sink_event;
    bc->unlock = sink_unlock;
    bc->unlock_stop = sink_unlock_stop;
    gst_type_mark_as_plugin_api(gst_parallax_sink_policy_get_type(), 0);
}

static void gst_parallax_sink_init(GstParallaxSink *self) {
    self->slots = DEFAULT_SLOTS;
    self->policy = PX_SLOW_DROP;
    self->max_in_flight = DEFAULT_MAX_IN_FLIGHT;
    self->block_timeout = DEFAULT_BLOCK_TIMEOUT;
    g_mutex_init(&self->pool_lock);
    /* Pacing is the readers' business: frames go out as fast as upstream makes them. */
    gst_base_sink_set_sync(GST_BASE_SINK(self), FALSE);
    /* The last sample would hold a slot (and so a frame subscribers could miss) for nothing. */
    gst_base_sink_set_last_sample_enabled(GST_BASE_SINK(self), FALSE);
}
