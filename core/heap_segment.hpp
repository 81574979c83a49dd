// HeapSegment: private anonymous memory, zero-filled. Fast, not shareable.
#pragma once

#include "core/segment.hpp"

namespace px::HeapSegment {
Ref<Segment> create(size_t size);
}
