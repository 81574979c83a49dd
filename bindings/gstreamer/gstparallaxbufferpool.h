/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* The GstBufferPool parallaxsink proposes upstream: each buffer is a loaned slot of the sink's
 * libparallax pool, so the upstream element writes the frame straight into shared memory and
 * the sink publishes that slot as it is. */
#pragma once

#include <gst/gst.h>
#include <parallax/parallax.h>

G_BEGIN_DECLS

#define GST_TYPE_PARALLAX_BUFFER_POOL (gst_parallax_buffer_pool_get_type())
G_DECLARE_FINAL_TYPE(GstParallaxBufferPool, gst_parallax_buffer_pool, GST, PARALLAX_BUFFER_POOL,
                     GstBufferPool)

/* @param pool  borrowed: the GstBufferPool takes a reference of its own.
 * @return a new floating-free pool, owned by the caller (gst_object_unref). */
GstBufferPool *gst_parallax_buffer_pool_new(px_pool_t *pool);

G_END_DECLS
