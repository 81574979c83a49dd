/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* Raw video caps -> px_format_t: the typed-frame description parallaxsink puts on each frame, so
 * that a subscriber outside GStreamer (numpy, Rust, C) sees a frame as an array without parsing
 * caps. */
#pragma once

#include <gst/video/video.h>
#include <parallax/parallax.h>

G_BEGIN_DECLS

/* Fills *fmt for a frame of `info` when it is one packed plane of 8-bit components (or 16-bit in
 * the host's byte order): shape H x W x C with C the bytes (or 16-bit words) per pixel, padding
 * bytes included (RGBx: C = 4), or H x W for one-component formats (GRAY8, GRAY16); strides from
 * the plane's row stride, so padded rows are described as they are. fourcc: the GStreamer format
 * name when it has four characters (RGBA, BGRx, ...), V4L2's code for RGB, BGR, GRAY8 and
 * GRAY16 ('RGB3', 'BGR3', 'GREY', 'Y16 '), else 0.
 * Everything else -- planar and semi-planar YUV (I420, NV12...), packed YUV (YUY2...), packed
 * bit fields (RGB16, r210...), other byte orders -- returns FALSE with *fmt zeroed (untyped):
 * a format describing plane 0 alone would present a luma plane as the whole frame; the caps in
 * the stream description say what those bytes are. */
gboolean gst_parallax_format_from_video_info(const GstVideoInfo *info, px_format_t *fmt);

G_END_DECLS
