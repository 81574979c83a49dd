/* SPDX-License-Identifier: Apache-2.0 OR MIT */
#include "gstparallaxcommon.h"

GstStructure *gst_parallax_stats_new(const char *name, const GstParallaxCounter *counters,
                                     gsize n) {
    GstStructure *s = gst_structure_new_empty(name);
    for (gsize i = 0; i < n; i++)
        gst_structure_set(s, counters[i].name, G_TYPE_UINT64, counters[i].value, NULL);
    return s;
}

void gst_parallax_install_stream_property(GObjectClass *oc, guint id, const char *blurb) {
    g_object_class_install_property(
        oc, id,
        g_param_spec_string("stream", "Stream", blurb, NULL,
                            G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
}

void gst_parallax_install_stats_property(GObjectClass *oc, guint id, const char *blurb) {
    g_object_class_install_property(oc, id,
                                    g_param_spec_boxed("stats", "Statistics", blurb,
                                                       GST_TYPE_STRUCTURE,
                                                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
}

void gst_parallax_post_px_error(GstElement *element, GstResourceError code, const char *what,
                                const char *stream, px_status_t rc, const char *file,
                                const char *function, int line) {
    /* gst_element_message_full takes both strings. */
    gchar *text = g_strdup_printf("%s failed on stream \"%s\"", what, stream);
    gchar *debug = g_strdup_printf("%s: %s", px_status_string(rc), px_last_error_message());
    gst_element_message_full(element, GST_MESSAGE_ERROR, GST_RESOURCE_ERROR, code, text, debug,
                             file, function, line);
}
