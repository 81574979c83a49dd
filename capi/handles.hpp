// SPDX-License-Identifier: Apache-2.0 OR MIT
// C handles are the core objects themselves (a px_buffer_t is one heap-allocated Buffer): these
// casts are the only place that knows it, so every capi/*.cpp converts through them.
#pragma once

#include "core/buffer.hpp"
#include "core/memory_pool.hpp"
#include "core/segment.hpp"
#include "parallax/parallax.h"

// Declared, not included: a cast needs no more, and the object files of segments, pools and
// buffers then do not depend on the IPC headers.
namespace px::ipc {
class Channel;
class Listener;
} // namespace px::ipc
namespace px::stream {
class Publisher;
class Subscriber;
} // namespace px::stream

namespace px::capi {

inline Segment *from_handle(const px_segment_t *h) {
    return reinterpret_cast<Segment *>(const_cast<px_segment_t *>(h));
}
inline px_segment_t *to_handle(Segment *s) { return reinterpret_cast<px_segment_t *>(s); }
inline MemoryPool *from_handle(const px_pool_t *h) {
    return reinterpret_cast<MemoryPool *>(const_cast<px_pool_t *>(h));
}
inline px_pool_t *to_handle(MemoryPool *p) { return reinterpret_cast<px_pool_t *>(p); }
inline Slot *from_handle(const px_slot_t *h) {
    return reinterpret_cast<Slot *>(const_cast<px_slot_t *>(h));
}
inline px_slot_t *to_handle(Slot *s) { return reinterpret_cast<px_slot_t *>(s); }
inline Buffer *from_handle(const px_buffer_t *h) {
    return reinterpret_cast<Buffer *>(const_cast<px_buffer_t *>(h));
}
inline px_buffer_t *to_handle(Buffer *b) { return reinterpret_cast<px_buffer_t *>(b); }
inline ipc::Channel *from_handle(const px_channel_t *h) {
    return reinterpret_cast<ipc::Channel *>(const_cast<px_channel_t *>(h));
}
inline px_channel_t *to_handle(ipc::Channel *c) { return reinterpret_cast<px_channel_t *>(c); }
inline ipc::Listener *from_handle(const px_listener_t *h) {
    return reinterpret_cast<ipc::Listener *>(const_cast<px_listener_t *>(h));
}
inline px_listener_t *to_handle(ipc::Listener *l) { return reinterpret_cast<px_listener_t *>(l); }
inline stream::Publisher *from_handle(const px_publisher_t *h) {
    return reinterpret_cast<stream::Publisher *>(const_cast<px_publisher_t *>(h));
}
inline px_publisher_t *to_handle(stream::Publisher *p) {
    return reinterpret_cast<px_publisher_t *>(p);
}
inline stream::Subscriber *from_handle(const px_subscriber_t *h) {
    return reinterpret_cast<stream::Subscriber *>(const_cast<px_subscriber_t *>(h));
}
inline px_subscriber_t *to_handle(stream::Subscriber *s) {
    return reinterpret_cast<px_subscriber_t *>(s);
}

// Metadata: the C struct and the core struct have one layout (checked in buffer.cpp).
Metadata metadata_from_c(const px_metadata_t *meta);

// A buffer handle, from the recycled handles of capi/buffer.cpp when there are some: every C
// entry point that makes a buffer goes through it (and px_buffer_release gives them back).
px_buffer_t *new_buffer_handle(Buffer &&b);

} // namespace px::capi
