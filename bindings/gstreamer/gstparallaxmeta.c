/* SPDX-License-Identifier: Apache-2.0 OR MIT */
#include "gstparallaxmeta.h"

#include <string.h>

/* The GstBufferFlags that describe the data (not the GstBuffer object's own state, such as
 * TAG_MEMORY or the mini-object lock bits): they are what a downstream element reads. */
#define CARRIED_FLAGS                                                                          \
    (GST_BUFFER_FLAG_LIVE | GST_BUFFER_FLAG_DECODE_ONLY | GST_BUFFER_FLAG_DISCONT |            \
     GST_BUFFER_FLAG_RESYNC | GST_BUFFER_FLAG_CORRUPTED | GST_BUFFER_FLAG_MARKER |             \
     GST_BUFFER_FLAG_HEADER | GST_BUFFER_FLAG_GAP | GST_BUFFER_FLAG_DROPPABLE |                 \
     GST_BUFFER_FLAG_DELTA_UNIT | GST_BUFFER_FLAG_NON_DROPPABLE)

G_STATIC_ASSERT((CARRIED_FLAGS & GST_PARALLAX_FLAG_EOS) == 0);

static int64_t time_to_px(GstClockTime t) {
    return GST_CLOCK_TIME_IS_VALID(t) ? (int64_t)t : PX_TIME_NONE;
}

static GstClockTime time_from_px(int64_t t) {
    return t == PX_TIME_NONE || t < 0 ? GST_CLOCK_TIME_NONE : (GstClockTime)t;
}

void gst_parallax_meta_from_buffer(GstBuffer *buf, guint64 sequence, px_metadata_t *meta) {
    px_metadata_init(meta);
    meta->sequence = sequence;
    meta->pts_ns = time_to_px(GST_BUFFER_PTS(buf));
    meta->dts_ns = time_to_px(GST_BUFFER_DTS(buf));
    meta->duration_ns = time_to_px(GST_BUFFER_DURATION(buf));
    meta->offset = GST_BUFFER_OFFSET(buf);
    meta->offset_end = GST_BUFFER_OFFSET_END(buf);
    meta->flags = GST_BUFFER_FLAGS(buf) & CARRIED_FLAGS;
}

void gst_parallax_meta_to_buffer(const px_metadata_t *meta, GstBuffer *buf) {
    GST_BUFFER_PTS(buf) = time_from_px(meta->pts_ns);
    GST_BUFFER_DTS(buf) = time_from_px(meta->dts_ns);
    GST_BUFFER_DURATION(buf) = time_from_px(meta->duration_ns);
    GST_BUFFER_OFFSET(buf) = meta->offset;
    GST_BUFFER_OFFSET_END(buf) = meta->offset_end;
    GST_BUFFER_FLAG_SET(buf, meta->flags & CARRIED_FLAGS);
}

