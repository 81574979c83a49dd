/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* GstBuffer fields <-> px_metadata_t, the same both ways: pts/dts/duration (GST_CLOCK_TIME_NONE
 * <-> PX_TIME_NONE), offset/offset_end (GST_BUFFER_OFFSET_NONE travels as is) and the buffer
 * flags a receiver acts on (discont, delta unit, header, gap, ...). */
#pragma once

#include <gst/gst.h>
#include <parallax/parallax.h>

G_BEGIN_DECLS

/* Metadata flag outside every GstBufferFlags bit: parallaxsink's end-of-stream marker, a 1-byte
 * frame published at EOS so that a subscriber can tell a clean end from a publisher that died. */
#define GST_PARALLAX_FLAG_EOS (1u << 31)

/* @param[out] meta  filled from buf; `sequence` is the caller's frame number. */
void gst_parallax_meta_from_buffer(GstBuffer *buf, guint64 sequence, px_metadata_t *meta);

/* Sets buf's timestamps, offsets and flags from meta. */
void gst_parallax_meta_to_buffer(const px_metadata_t *meta, GstBuffer *buf);

G_END_DECLS
