/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* What parallaxsink and parallaxsrc do alike: their `stream` and `stats` properties, and the
 * error they post when a libparallax call fails. */
#pragma once

#include <gst/gst.h>
#include <parallax/parallax.h>

G_BEGIN_DECLS

/* One field of a stats structure. */
typedef struct {
    const char *name;
    guint64 value;
} GstParallaxCounter;

/* A structure `name` holding the counters as guint64 fields, in order.
 * @return owned by the caller (e.g. g_value_take_boxed). */
GstStructure *gst_parallax_stats_new(const char *name, const GstParallaxCounter *counters, gsize n);

/* Installs property `id`: "stream", a string set in NULL or READY, `blurb` saying what it
 * names. */
void gst_parallax_install_stream_property(GObjectClass *oc, guint id, const char *blurb);

/* Installs property `id`: "stats", a read-only GstStructure, `blurb` listing its fields. */
void gst_parallax_install_stats_property(GObjectClass *oc, guint id, const char *blurb);

/* Posts a RESOURCE error (`code`: READ for the src, WRITE for the sink) saying that `what`
 * failed on `stream`, with libparallax's status and message as the debug text. Use the macro:
 * it passes the caller's place. */
void gst_parallax_post_px_error(GstElement *element, GstResourceError code, const char *what,
                                const char *stream, px_status_t rc, const char *file,
                                const char *function, int line);
#define GST_PARALLAX_POST_PX_ERROR(element, code, what, stream, rc)                                \
    gst_parallax_post_px_error(GST_ELEMENT(element), code, what, stream, rc, __FILE__,             \
                               GST_FUNCTION, __LINE__)

G_END_DECLS
