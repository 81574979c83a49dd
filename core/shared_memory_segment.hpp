// SPDX-License-Identifier: Apache-2.0 OR MIT
// px::shm — shared-memory segments: a memfd, sealed against shrinking and growing from birth, so
// that no process holding it can truncate it under a reader (which would be a SIGBUS).
#pragma once

#include <cstdint>

#include "core/segment.hpp"

namespace px::shm {

enum MapFlags : uint32_t { map_readonly = 1u, map_allow_unsealed = 2u };

// `name` is a debugging label (nullable).
Ref<Segment> create(const char *name, size_t size);
// Validates and maps `size` bytes of a received fd (kept by the caller; the segment dups it).
Ref<Segment> from_fd(int fd, size_t size, uint32_t flags);

// Creates a sealed memfd of `size` bytes (shared with px::huge_pages); `extra_flags` are more
// memfd_create flags (MFD_HUGETLB...). Returns the fd; errno-style failures are thrown.
int create_sealed_memfd(const char *name, size_t size, unsigned extra_flags);
// create_sealed_memfd in two steps, for a caller that spreads the work over turns: the memfd
// (allowing seals; the caller owns it), then its size and the seals against shrinking and
// growing.
int create_memfd(const char *name, unsigned extra_flags);
void size_and_seal_memfd(int fd, size_t size);
// Maps `map_len` bytes of a memfd read-write, shared. With keep_fd the segment takes the fd
// (closed on failure too); without, the caller keeps it and the segment holds no fd.
Ref<Segment> map_shared(int fd, bool keep_fd, size_t size, size_t map_len, MemoryType type,
                        size_t page_size, bool populate);
// Maps a memfd created by create_sealed_memfd (takes ownership of fd, also on failure).
Ref<Segment> map_owned_fd(int fd, size_t size, size_t map_len, MemoryType type, size_t page_size,
                          bool populate);

} // namespace px::shm
