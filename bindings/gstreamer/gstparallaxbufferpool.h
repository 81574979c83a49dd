/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* The GstBufferPool parallaxsink proposes upstream: each buffer is a loaned slot of the sink's
 * libparallax pool, so the upstream element writes the frame straight into shared memory and
 * the sink publishes that slot as it is. Without a libparallax pool it hands out empty buffers
 * (parallaxsrc puts each received frame's memory in one).
 *
 * What the pool keeps between frames is the GstBuffer alone: a buffer coming home gives up its
 * memory (and so its slot, which subscribers may still be reading), and the next acquire puts a
 * freshly loaned slot in it. So no frame allocates a GstBuffer, and an idle buffer never holds
 * a slot. */
#pragma once

#include <gst/gst.h>
#include <parallax/parallax.h>

G_BEGIN_DECLS

#define GST_TYPE_PARALLAX_BUFFER_POOL (gst_parallax_buffer_pool_get_type())
G_DECLARE_FINAL_TYPE(GstParallaxBufferPool, gst_parallax_buffer_pool, GST, PARALLAX_BUFFER_POOL,
                     GstBufferPool)

/* @param pool  nullable, borrowed: the GstBufferPool takes a reference of its own; NULL for a
 *              pool of empty buffers.
 * @return a new floating-free pool, owned by the caller (gst_object_unref). */
GstBufferPool *gst_parallax_buffer_pool_new(px_pool_t *pool);

/* A pool of empty buffers, configured and active, keeping `ready` of them allocated.
 * @return owned (gst_buffer_pool_set_active(FALSE) then gst_object_unref); NULL on failure. */
GstBufferPool *gst_parallax_buffer_pool_new_empty(guint ready);

G_END_DECLS
