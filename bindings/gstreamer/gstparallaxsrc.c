/* SPDX-License-Identifier: Apache-2.0 OR MIT */
#include "gstparallaxsrc.h"

#include <errno.h>
#include <parallax/parallax.h>
#include <string.h>

#include "gstparallaxbufferpool.h"
#include "gstparallaxcommon.h"
#include "gstparallaxmemory.h"
#include "gstparallaxmeta.h"

GST_DEBUG_CATEGORY_EXTERN(gst_parallax_debug);
#define GST_CAT_DEFAULT gst_parallax_debug

/* Steps of the wait for a publisher that is not there yet, so that unlock() (a state change) is
 * seen. */
#define SUBSCRIBE_STEP_NS (100 * GST_MSECOND)
/* The wait for a live publisher to admit the src: a join cut short by its timeout is lost and
 * starts over, and the publisher admits in pieces inside its publish and poll calls. With the
 * 100 ms step the src of a 100 fps sink on a loaded machine never joined (kill_sink test: 3
 * failures in 8; none in 8 with 1 s). unlock() waits for this one to end. */
#define JOIN_STEP_NS (2 * GST_SECOND)
/* Empty GstBuffers kept for the frames (a frame costs no GstBuffer allocation). */
#define READY_BUFFERS 4

/* What the src does when the publisher goes away without its end-of-stream marker (killed). */
typedef enum {
    PUBLISHER_LOST_EOS,
    PUBLISHER_LOST_ERROR,
    PUBLISHER_LOST_RECONNECT,
} PublisherLost;

enum {
    PROP_0,
    PROP_STREAM,
    PROP_TIMEOUT,
    PROP_IS_LIVE,
    PROP_ON_PUBLISHER_LOST,
    PROP_STATS,
};

struct _GstParallaxSrc {
    GstPushSrc parent;

    /* Properties (object lock). */
    gchar *stream;
    gint64 timeout; /* ns; -1: wait for ever */
    PublisherLost on_lost;

    /* Streaming state (streaming thread; poll and flushing also from unlock(); `sub` is
     * also read, under the object lock, by the stats property). */
    px_subscriber_t *sub;
    GstPoll *poll; /* the subscriber's fd, and set_flushing() for unlock() */
    GstPollFD pfd;
    gint flushing;     /* atomic */
    GstBufferPool *buffers; /* empty GstBuffers for the frames (between start and stop) */
    gchar *caps_text;  /* the description the current caps came from */
    gchar *desc;       /* scratch for px_subscriber_description */
    gsize desc_cap;
    guint64 desc_version; /* px_subscriber_description_version the caps follow; 0: none yet */
    gboolean discont;  /* next buffer starts after a reconnect */

    /* Stats: received is atomic; the others under the object lock. The current subscriber's
     * own counters are read when the property is, not per frame. */
    gsize received;
    guint64 missed_before; /* missed by the subscriptions before the current one */
    guint64 reconnects;
};

G_DEFINE_TYPE(GstParallaxSrc, gst_parallax_src, GST_TYPE_PUSH_SRC)

static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static GType publisher_lost_get_type(void) {
    static GType type;
    static const GEnumValue values[] = {
        {PUBLISHER_LOST_EOS, "End the stream with EOS", "eos"},
        {PUBLISHER_LOST_ERROR, "Post an error", "error"},
        {PUBLISHER_LOST_RECONNECT, "Wait for a new publisher of the stream and go on", "reconnect"},
        {0, NULL, NULL},
    };
    if (g_once_init_enter(&type))
        g_once_init_leave(&type, g_enum_register_static("GstParallaxSrcPublisherLost", values));
    return type;
}

#define POST_PX_ERROR(self, what, rc)                                                          \
    GST_PARALLAX_POST_PX_ERROR(self, GST_RESOURCE_ERROR_READ, what, (self)->stream, rc)

/* Monotonic deadline (us) for a wait of the timeout property; G_MAXINT64 for no limit. */
static gint64 deadline_of(GstParallaxSrc *self) {
    GST_OBJECT_LOCK(self);
    const gint64 timeout = self->timeout;
    GST_OBJECT_UNLOCK(self);
    return timeout < 0 ? G_MAXINT64 : g_get_monotonic_time() + timeout / 1000;
}

static GstFlowReturn timed_out(GstParallaxSrc *self, const char *what) {
    GST_ELEMENT_ERROR(self, RESOURCE, READ, ("Timed out waiting for %s", what),
                      ("stream \"%s\", timeout=%" G_GINT64_FORMAT " ns", self->stream,
                       self->timeout));
    return GST_FLOW_ERROR;
}

/* ---- subscription --------------------------------------------------------------------------- */

static void unsubscribe(GstParallaxSrc *self) {
    if (self->sub == NULL)
        return;
    gst_poll_remove_fd(self->poll, &self->pfd);
    gst_poll_fd_init(&self->pfd);
    px_subscriber_stats_t st;
    GST_OBJECT_LOCK(self);
    if (px_subscriber_get_stats(self->sub, &st) == PX_OK)
        self->missed_before += st.missed;
    px_subscriber_t *sub = self->sub;
    self->sub = NULL;
    GST_OBJECT_UNLOCK(self);
    px_subscriber_release(sub);
}

/* How long the next px_subscriber_new may wait: long enough for a join when the stream's
 * publisher is live, short while there is none; never past the deadline (us, monotonic). */
static gint64 subscribe_step(GstParallaxSrc *self, gint64 deadline) {
    px_publisher_stats_t st;
    gint64 step = px_stream_stats(self->stream, 0, &st) == PX_OK ? JOIN_STEP_NS : SUBSCRIBE_STEP_NS;
    if (deadline != G_MAXINT64)
        step = CLAMP((deadline - g_get_monotonic_time()) * 1000, GST_MSECOND, step);
    return step;
}

/* Joins the stream, waiting (in steps, for unlock()) for its publisher to appear. */
static GstFlowReturn subscribe(GstParallaxSrc *self) {
    const gint64 deadline = deadline_of(self);
    px_subscriber_t *sub = NULL;
    for (;;) {
        px_status_t rc = px_subscriber_new(self->stream, subscribe_step(self, deadline), &sub);
        if (rc == PX_OK)
            break;
        /* PX_E_CLOSED: the publisher went away while admitting us (a killed sink leaves its
         * socket behind, and a restarted one may not be up yet): as if none were there yet. */
        if (rc != PX_E_TIMEOUT && rc != PX_E_WOULD_BLOCK && rc != PX_E_CLOSED) {
            POST_PX_ERROR(self, "Subscribing", rc);
            return GST_FLOW_ERROR;
        }
        if (g_atomic_int_get(&self->flushing))
            return GST_FLOW_FLUSHING;
        if (g_get_monotonic_time() >= deadline)
            return timed_out(self, "the stream's publisher");
    }
    GST_OBJECT_LOCK(self);
    self->sub = sub;
    GST_OBJECT_UNLOCK(self);
    /* A new subscription numbers its descriptions afresh. */
    self->desc_version = 0;
    const int fd = px_subscriber_fd(self->sub);
    if (fd < 0) {
        POST_PX_ERROR(self, "Polling the subscriber", PX_E_INTERNAL);
        unsubscribe(self);
        return GST_FLOW_ERROR;
    }
    self->pfd.fd = fd;
    gst_poll_add_fd(self->poll, &self->pfd);
    gst_poll_fd_ctl_read(self->poll, &self->pfd, TRUE);
    GST_INFO_OBJECT(self, "subscribed to %s", self->stream);
    return GST_FLOW_OK;
}

/* The next frame: GST_FLOW_OK with *out, GST_FLOW_EOS when the publisher is gone (drained),
 * GST_FLOW_FLUSHING on unlock(), GST_FLOW_ERROR (posted) on a failure or the timeout. */
static GstFlowReturn next_frame(GstParallaxSrc *self, px_buffer_t **out) {
    const gint64 deadline = deadline_of(self);
    for (;;) {
        /* Try first: a frame already queued costs no poll(2). */
        px_status_t rc = px_subscriber_recv(self->sub, 0, out);
        if (rc == PX_OK)
            return GST_FLOW_OK;
        if (rc == PX_E_CLOSED)
            return GST_FLOW_EOS;
        if (rc != PX_E_WOULD_BLOCK && rc != PX_E_TIMEOUT) {
            POST_PX_ERROR(self, "Receiving", rc);
            return GST_FLOW_ERROR;
        }
        GstClockTime wait = GST_CLOCK_TIME_NONE;
        if (deadline != G_MAXINT64) {
            const gint64 left_us = deadline - g_get_monotonic_time();
            if (left_us <= 0)
                return timed_out(self, "a frame");
            wait = (GstClockTime)left_us * 1000;
        }
        if (gst_poll_wait(self->poll, wait) < 0) {
            if (errno == EBUSY)
                return GST_FLOW_FLUSHING;
            if (errno != EINTR && errno != EAGAIN) {
                GST_ELEMENT_ERROR(self, RESOURCE, READ, ("poll failed"), ("%s", g_strerror(errno)));
                return GST_FLOW_ERROR;
            }
        }
    }
}

/* ---- caps from the description -------------------------------------------------------------- */

/* The description in force for the frame just received (into self->desc). */
static gboolean read_description(GstParallaxSrc *self) {
    for (;;) {
        size_t len = 0;
        px_status_t rc = px_subscriber_description(self->sub, self->desc, self->desc_cap, &len);
        if (rc == PX_OK)
            return TRUE;
        if (rc != PX_E_INVALID || len < self->desc_cap) {
            POST_PX_ERROR(self, "Reading the description", rc);
            return FALSE;
        }
        self->desc_cap = len + 1;
        self->desc = g_realloc(self->desc, self->desc_cap);
    }
}

/* Whether the description in force may differ from the one the caps came from (one atomic
 * load: the text is read only when it may have changed). Only this thread receives, so the
 * version cannot move between this check and the read that follows. */
static gboolean description_may_have_changed(GstParallaxSrc *self) {
    return px_subscriber_description_version(self->sub) != self->desc_version;
}

/* Sets the src caps when the description changed (the publisher's caps did). */
static GstFlowReturn update_caps(GstParallaxSrc *self) {
    if (!read_description(self))
        return GST_FLOW_ERROR;
    if (self->desc[0] == '\0' || g_strcmp0(self->desc, self->caps_text) == 0)
        return GST_FLOW_OK;
    GstCaps *caps = gst_caps_from_string(self->desc);
    if (caps == NULL || !gst_caps_is_fixed(caps)) {
        GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("Stream description is not fixed caps"),
                          ("stream \"%s\" describes itself as \"%s\"", self->stream, self->desc));
        if (caps)
            gst_caps_unref(caps);
        return GST_FLOW_ERROR;
    }
    GST_INFO_OBJECT(self, "caps from the description: %" GST_PTR_FORMAT, caps);
    const gboolean ok = gst_base_src_set_caps(GST_BASE_SRC(self), caps);
    gst_caps_unref(caps);
    if (!ok)
        return GST_FLOW_NOT_NEGOTIATED;
    g_free(self->caps_text);
    self->caps_text = g_strdup(self->desc);
    return GST_FLOW_OK;
}

/* ---- frames --------------------------------------------------------------------------------- */

/* The frame as a GstBuffer: one memory that is the frame (no copy), read-only. The GstBuffer
 * comes from the src's pool of empty ones; NULL (frame released) when the pool fails. */
static GstBuffer *wrap_frame(GstParallaxSrc *self, px_buffer_t *frame, const px_metadata_t *meta) {
    GstBuffer *buf = NULL;
    if (gst_buffer_pool_acquire_buffer(self->buffers, &buf, NULL) != GST_FLOW_OK) {
        px_buffer_release(frame);
        GST_ELEMENT_ERROR(self, CORE, FAILED, ("No GstBuffer for a frame"),
                          ("the src's buffer pool failed"));
        return NULL;
    }
    gst_buffer_append_memory(buf, gst_parallax_memory_wrap(frame));
    gst_parallax_meta_to_buffer(meta, buf);
    if (self->discont) {
        GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DISCONT);
        self->discont = FALSE;
    }
    return buf;
}

/* The publisher went away without its end marker (it was killed, or its pipeline stopped
 * without EOS): on-publisher-lost says what to do. GST_FLOW_OK means: subscribe again. */
static GstFlowReturn publisher_lost(GstParallaxSrc *self) {
    GST_OBJECT_LOCK(self);
    const PublisherLost what = self->on_lost;
    GST_OBJECT_UNLOCK(self);
    unsubscribe(self);
    switch (what) {
    case PUBLISHER_LOST_ERROR:
        GST_ELEMENT_ERROR(self, RESOURCE, READ, ("The publisher of stream \"%s\" went away",
                                                 self->stream),
                          ("no end-of-stream before the stream closed (on-publisher-lost=error)"));
        return GST_FLOW_ERROR;
    case PUBLISHER_LOST_RECONNECT:
        GST_WARNING_OBJECT(self, "publisher of %s went away; waiting for a new one",
                           self->stream);
        GST_OBJECT_LOCK(self);
        self->reconnects++;
        GST_OBJECT_UNLOCK(self);
        self->discont = TRUE;
        return GST_FLOW_OK;
    case PUBLISHER_LOST_EOS:
    default:
        GST_INFO_OBJECT(self, "publisher of %s went away: EOS", self->stream);
        return GST_FLOW_EOS;
    }
}

static GstFlowReturn src_create(GstPushSrc *psrc, GstBuffer **out) {
    GstParallaxSrc *self = GST_PARALLAX_SRC(psrc);
    for (;;) {
        GstFlowReturn ret = self->sub ? GST_FLOW_OK : subscribe(self);
        if (ret != GST_FLOW_OK)
            return ret;
        px_buffer_t *frame = NULL;
        ret = next_frame(self, &frame);
        if (ret == GST_FLOW_EOS) {
            ret = publisher_lost(self);
            if (ret == GST_FLOW_OK)
                continue;
        }
        if (ret != GST_FLOW_OK)
            return ret;
        px_metadata_t meta;
        px_buffer_metadata(frame, &meta);
        if (meta.flags & GST_PARALLAX_FLAG_EOS) {
            px_buffer_release(frame);
            GST_INFO_OBJECT(self, "end of stream %s", self->stream);
            return GST_FLOW_EOS;
        }
        if (description_may_have_changed(self)) {
            ret = update_caps(self);
            if (ret != GST_FLOW_OK) {
                px_buffer_release(frame);
                return ret;
            }
            self->desc_version = px_subscriber_description_version(self->sub);
        }
        g_atomic_pointer_add(&self->received, 1);
        *out = wrap_frame(self, frame, &meta);
        return *out ? GST_FLOW_OK : GST_FLOW_ERROR;
    }
}

/* ---- state ---------------------------------------------------------------------------------- */

static gboolean src_start(GstBaseSrc *bsrc) {
    GstParallaxSrc *self = GST_PARALLAX_SRC(bsrc);
    if (self->stream == NULL || *self->stream == '\0') {
        GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("No stream name"),
                          ("set the stream property"));
        return FALSE;
    }
    self->buffers = gst_parallax_buffer_pool_new_empty(READY_BUFFERS);
    if (self->buffers == NULL) {
        GST_ELEMENT_ERROR(self, CORE, FAILED, ("No buffer pool"), ("starting it failed"));
        return FALSE;
    }
    g_atomic_pointer_set(&self->received, 0);
    self->missed_before = self->reconnects = 0;
    self->discont = FALSE;
    g_clear_pointer(&self->caps_text, g_free);
    return TRUE;
}

static gboolean src_stop(GstBaseSrc *bsrc) {
    GstParallaxSrc *self = GST_PARALLAX_SRC(bsrc);
    unsubscribe(self);
    /* Buffers still downstream keep the pool until they come home. */
    if (self->buffers != NULL) {
        gst_buffer_pool_set_active(self->buffers, FALSE);
        gst_clear_object(&self->buffers);
    }
    return TRUE;
}

static gboolean src_unlock(GstBaseSrc *bsrc) {
    GstParallaxSrc *self = GST_PARALLAX_SRC(bsrc);
    g_atomic_int_set(&self->flushing, 1);
    gst_poll_set_flushing(self->poll, TRUE);
    return TRUE;
}

static gboolean src_unlock_stop(GstBaseSrc *bsrc) {
    GstParallaxSrc *self = GST_PARALLAX_SRC(bsrc);
    g_atomic_int_set(&self->flushing, 0);
    gst_poll_set_flushing(self->poll, FALSE);
    return TRUE;
}

/* ---- properties ----------------------------------------------------------------------------- */

static void src_set_property(GObject *object, guint id, const GValue *value, GParamSpec *pspec) {
    GstParallaxSrc *self = GST_PARALLAX_SRC(object);
    if (id == PROP_IS_LIVE) {
        gst_base_src_set_live(GST_BASE_SRC(self), g_value_get_boolean(value));
        return;
    }
    GST_OBJECT_LOCK(self);
    switch (id) {
    case PROP_STREAM:
        g_free(self->stream);
        self->stream = g_value_dup_string(value);
        break;
    case PROP_TIMEOUT:
        self->timeout = g_value_get_int64(value);
        break;
    case PROP_ON_PUBLISHER_LOST:
        self->on_lost = (PublisherLost)g_value_get_enum(value);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
        break;
    }
    GST_OBJECT_UNLOCK(self);
}

/* The counters (object lock held): missed adds the current subscriber's own count, read here
 * rather than at every frame. */
static GstStructure *stats_of(GstParallaxSrc *self) {
    px_subscriber_stats_t st = {0};
    if (self->sub != NULL)
        px_subscriber_get_stats(self->sub, &st);
    const GstParallaxCounter counters[] = {
        {"received", (guint64)g_atomic_pointer_get(&self->received)},
        {"missed", self->missed_before + st.missed},
        {"reconnects", self->reconnects},
    };
    return gst_parallax_stats_new("GstParallaxSrcStats", counters, G_N_ELEMENTS(counters));
}

static void src_get_property(GObject *object, guint id, GValue *value, GParamSpec *pspec) {
    GstParallaxSrc *self = GST_PARALLAX_SRC(object);
    if (id == PROP_IS_LIVE) {
        g_value_set_boolean(value, gst_base_src_is_live(GST_BASE_SRC(self)));
        return;
    }
    GST_OBJECT_LOCK(self);
    switch (id) {
    case PROP_STREAM:
        g_value_set_string(value, self->stream);
        break;
    case PROP_TIMEOUT:
        g_value_set_int64(value, self->timeout);
        break;
    case PROP_ON_PUBLISHER_LOST:
        g_value_set_enum(value, (gint)self->on_lost);
        break;
    case PROP_STATS:
        g_value_take_boxed(value, stats_of(self));
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
        break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void src_finalize(GObject *object) {
    GstParallaxSrc *self = GST_PARALLAX_SRC(object);
    unsubscribe(self);
    gst_poll_free(self->poll);
    g_free(self->stream);
    g_free(self->caps_text);
    g_free(self->desc);
    G_OBJECT_CLASS(gst_parallax_src_parent_class)->finalize(object);
}

static void install_properties(GObjectClass *oc) {
    const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;
    gst_parallax_install_stream_property(oc, PROP_STREAM,
                                         "Stream name (as given to parallaxsink; a name with "
                                         "'/' is a socket path)");
    g_object_class_install_property(
        oc, PROP_TIMEOUT,
        g_param_spec_int64("timeout", "Timeout",
                           "Longest wait (ns) for the publisher to appear and for each frame, "
                           "then an error (-1: wait for ever)",
                           -1, G_MAXINT64, -1, rw));
    g_object_class_install_property(
        oc, PROP_IS_LIVE,
        g_param_spec_boolean("is-live", "Is live", "Act as a live source", FALSE, rw));
    g_object_class_install_property(
        oc, PROP_ON_PUBLISHER_LOST,
        g_param_spec_enum("on-publisher-lost", "On publisher lost",
                          "What to do when the publisher goes away without end-of-stream (e.g. "
                          "killed): EOS, an error, or wait for a restarted publisher",
                          publisher_lost_get_type(), PUBLISHER_LOST_EOS, rw));
    gst_parallax_install_stats_property(oc, PROP_STATS,
                                        "received, missed (over all subscriptions), "
                                        "reconnects");
}

static void gst_parallax_src_class_init(GstParallaxSrcClass *klass) {
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    GstElementClass *ec = GST_ELEMENT_CLASS(klass);
    GstBaseSrcClass *bc = GST_BASE_SRC_CLASS(klass);
    GstPushSrcClass *pc = GST_PUSH_SRC_CLASS(klass);
    oc->set_property = src_set_property;
    oc->get_property = src_get_property;
    oc->finalize = src_finalize;
    install_properties(oc);
    gst_element_class_add_static_pad_template(ec, &src_template);
    gst_element_class_set_static_metadata(
        ec, "libparallax stream source", "Source/Network",
        "Receives buffers from a libparallax stream, mapped in place where the publishing "
        "process wrote them (zero-copy)",
        "libparallax <https://github.com/libparallax>");
    bc->start = src_start;
    bc->stop = src_stop;
    bc->unlock = src_unlock;
    bc->unlock_stop = src_unlock_stop;
    pc->create = src_create;
    gst_type_mark_as_plugin_api(publisher_lost_get_type(), 0);
}

static void gst_parallax_src_init(GstParallaxSrc *self) {
    self->timeout = -1;
    self->on_lost = PUBLISHER_LOST_EOS;
    self->poll = gst_poll_new(TRUE);
    gst_poll_fd_init(&self->pfd);
    gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
}
