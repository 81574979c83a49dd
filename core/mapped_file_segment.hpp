// SPDX-License-Identifier: Apache-2.0 OR MIT
// px::mapped_file — file segments: a file on disk mapped shared. Files cannot be sealed, so a
// file segment never crosses a channel; processes share a file by opening its path.
#pragma once

#include "core/segment.hpp"

namespace px::mapped_file {

// New file of `size` bytes, mode 0600; an existing path is an error (never truncates).
Ref<Segment> create(const char *path, size_t size);
// Existing non-empty regular file, read-write or read-only.
Ref<Segment> open(const char *path, bool readonly);

} // namespace px::mapped_file
