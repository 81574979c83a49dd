/* SPDX-License-Identifier: Apache-2.0 OR MIT */
#include "gstparallaxformat.h"

#include <string.h>

/* The fourcc of a GStreamer format name: the name itself when it is four characters, a V4L2 code
 * for the common ones that are not, else 0. */
static guint32 fourcc_of(GstVideoFormat format) {
    switch (format) {
    case GST_VIDEO_FORMAT_RGB:
        return GST_MAKE_FOURCC('R', 'G', 'B', '3');
    case GST_VIDEO_FORMAT_BGR:
        return GST_MAKE_FOURCC('B', 'G', 'R', '3');
    case GST_VIDEO_FORMAT_GRAY8:
        return GST_MAKE_FOURCC('G', 'R', 'E', 'Y');
    case GST_VIDEO_FORMAT_GRAY16_LE:
        return GST_MAKE_FOURCC('Y', '1', '6', ' ');
    default:
        break;
    }
    const gchar *name = gst_video_format_to_string(format);
    if (name == NULL || strlen(name) != 4)
        return 0;
    return GST_MAKE_FOURCC(name[0], name[1], name[2], name[3]);
}

/* Bytes of one component when every component of a one-plane format is a whole byte or a
 * host-order 16-bit word, packed in the same plane without subsampling; 0 otherwise. */
static guint component_bytes(const GstVideoFormatInfo *finfo) {
    if (GST_VIDEO_FORMAT_INFO_N_PLANES(finfo) != 1 || GST_VIDEO_FORMAT_INFO_IS_COMPLEX(finfo) ||
        GST_VIDEO_FORMAT_INFO_HAS_PALETTE(finfo) || GST_VIDEO_FORMAT_INFO_IS_TILED(finfo))
        return 0;
    if (!GST_VIDEO_FORMAT_INFO_IS_RGB(finfo) && !GST_VIDEO_FORMAT_INFO_IS_GRAY(finfo))
        return 0;
    const guint depth = GST_VIDEO_FORMAT_INFO_DEPTH(finfo, 0);
    if (depth != 8 && depth != 16)
        return 0;
    const gboolean host_order = (G_BYTE_ORDER == G_LITTLE_ENDIAN) ==
                                (GST_VIDEO_FORMAT_INFO_IS_LE(finfo) != 0);
    if (depth == 16 && !host_order)
        return 0;
    const guint bytes = depth / 8;
    for (guint c = 0; c < GST_VIDEO_FORMAT_INFO_N_COMPONENTS(finfo); c++) {
        /* Same plane, no shift (not a bit field), no subsampling, whole bytes at a byte offset. */
        if (GST_VIDEO_FORMAT_INFO_DEPTH(finfo, c) != depth ||
            GST_VIDEO_FORMAT_INFO_PLANE(finfo, c) != 0 ||
            GST_VIDEO_FORMAT_INFO_SHIFT(finfo, c) != 0 || GST_VIDEO_FORMAT_INFO_W_SUB(finfo, c) ||
            GST_VIDEO_FORMAT_INFO_H_SUB(finfo, c) ||
            GST_VIDEO_FORMAT_INFO_POFFSET(finfo, c) % bytes != 0)
            return 0;
    }
    const gint pstride = GST_VIDEO_FORMAT_INFO_PSTRIDE(finfo, 0);
    return pstride > 0 && pstride % bytes == 0 ? bytes : 0;
}

gboolean gst_parallax_format_from_video_info(const GstVideoInfo *info, px_format_t *fmt) {
    memset(fmt, 0, sizeof *fmt);
    const GstVideoFormatInfo *finfo = info->finfo;
    const guint bytes = finfo ? component_bytes(finfo) : 0;
    /* Interlaced frames in one buffer are still H rows; alternate fields are half a frame. */
    if (bytes == 0 || GST_VIDEO_INFO_INTERLACE_MODE(info) == GST_VIDEO_INTERLACE_MODE_ALTERNATE ||
        GST_VIDEO_INFO_PLANE_OFFSET(info, 0) != 0)
        return FALSE;
    const gint64 channels = GST_VIDEO_FORMAT_INFO_PSTRIDE(finfo, 0) / (gint)bytes;
    fmt->dtype = bytes == 1 ? PX_DTYPE_U8 : PX_DTYPE_U16;
    fmt->fourcc = fourcc_of(GST_VIDEO_INFO_FORMAT(info));
    fmt->shape[0] = GST_VIDEO_INFO_HEIGHT(info);
    fmt->shape[1] = GST_VIDEO_INFO_WIDTH(info);
    fmt->strides[0] = GST_VIDEO_INFO_PLANE_STRIDE(info, 0);
    fmt->strides[1] = GST_VIDEO_FORMAT_INFO_PSTRIDE(finfo, 0);
    if (channels == 1) {
        fmt->ndim = 2;
    } else {
        fmt->ndim = 3;
        fmt->shape[2] = channels;
        fmt->strides[2] = bytes;
    }
    return TRUE;
}
