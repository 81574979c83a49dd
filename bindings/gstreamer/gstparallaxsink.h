/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* parallaxsink: publishes every buffer to a libparallax stream, zero-copy when upstream writes
 * into the GstBufferPool it proposes (slots of a shared libparallax pool), else with one copy
 * into a slot. The negotiated caps are the stream's description. */
#pragma once

#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_PARALLAX_SINK (gst_parallax_sink_get_type())
G_DECLARE_FINAL_TYPE(GstParallaxSink, gst_parallax_sink, GST, PARALLAX_SINK, GstBaseSink)

G_END_DECLS
