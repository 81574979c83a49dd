/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* parallaxsrc: subscribes to a libparallax stream and pushes each frame as a GstBuffer whose
 * memory is the frame itself, mapped read-only where the publisher wrote it (no copy); the
 * stream description (parallaxsink's caps) gives the caps. */
#pragma once

#include <gst/base/gstpushsrc.h>

G_BEGIN_DECLS

#define GST_TYPE_PARALLAX_SRC (gst_parallax_src_get_type())
G_DECLARE_FINAL_TYPE(GstParallaxSrc, gst_parallax_src, GST, PARALLAX_SRC, GstPushSrc)

G_END_DECLS
