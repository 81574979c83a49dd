// SPDX-License-Identifier: Apache-2.0 OR MIT
// px::heap — heap segments: private anonymous memory, zero-filled. Fast, not shareable.
#pragma once

#include "core/segment.hpp"

namespace px::heap {
Ref<Segment> create(size_t size);
}
