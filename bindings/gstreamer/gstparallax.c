/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* The `parallax` GStreamer plugin: parallaxsink and parallaxsrc carry buffers between
 * pipelines in different processes over libparallax streams, without copying frame bytes. */
#include <gst/gst.h>

#include "gstparallaxsink.h"
#include "gstparallaxsrc.h"

GST_DEBUG_CATEGORY(gst_parallax_debug);

#ifndef PACKAGE
#define PACKAGE "libparallax"
#endif

static gboolean plugin_init(GstPlugin *plugin) {
    GST_DEBUG_CATEGORY_INIT(gst_parallax_debug, "parallax", 0, "libparallax stream elements");
    return gst_element_register(plugin, "parallaxsink", GST_RANK_NONE, GST_TYPE_PARALLAX_SINK) &&
           gst_element_register(plugin, "parallaxsrc", GST_RANK_NONE, GST_TYPE_PARALLAX_SRC);
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, parallax,
                  "Zero-copy video between pipelines in different processes (libparallax "
                  "streams)",
                  plugin_init, PX_GST_VERSION, "MIT/X11", "libparallax",
                  "https://github.com/libparallax/libparallax")
