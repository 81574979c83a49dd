/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* GstMemory over a libparallax buffer: the bytes stay where libparallax put them (a pool slot of
 * this process, or a frame received from a stream, mapped read-only), and freeing the memory
 * releases the buffer, which sends the slot home. Used by both elements. */
#pragma once

#include <gst/gst.h>
#include <parallax/parallax.h>

G_BEGIN_DECLS

#define GST_PARALLAX_MEMORY_TYPE "ParallaxMemory"

/* Wraps `buf` in a GstMemory of its whole length: writable when px_buffer_mut_ptr() gives a
 * pointer (a slot of this process), else read-only.
 * @param buf  consumed: released when the memory (and every share of it) is freed.
 * @return a new memory, owned by the caller. */
GstMemory *gst_parallax_memory_wrap(px_buffer_t *buf);

/* TRUE when `mem` was made by gst_parallax_memory_wrap() (or shares such a memory). */
gboolean gst_is_parallax_memory(GstMemory *mem);

/* The libparallax buffer under `mem` (its whole length: mem's offset and size say which part
 * of it `mem` shows).
 * @return borrowed: valid while mem lives; NULL when mem is not a parallax memory. */
px_buffer_t *gst_parallax_memory_get_buffer(GstMemory *mem);

G_END_DECLS
