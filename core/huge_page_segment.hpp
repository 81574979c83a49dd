// SPDX-License-Identifier: Apache-2.0 OR MIT
// px::huge_pages — segments of huge pages: a memfd on hugetlbfs (MFD_HUGETLB), 2 MiB or 1 GiB
// pages, allocated up front (fallocate + MAP_POPULATE) so that running out of reserved pages is
// an error at creation and never a SIGBUS on first touch. Optionally falls back to normal
// shared pages, and then says so through memory_type() and page_size().
#pragma once

#include <cstdint>

#include "core/segment.hpp"

namespace px::huge_pages {

constexpr size_t page_2mb = size_t{2} << 20;
constexpr size_t page_1gb = size_t{1} << 30;
enum Flags : uint32_t { fallback = 1u };

Ref<Segment> create(size_t page_size, size_t size, uint32_t flags);

// Free pages of that size in the kernel's pool (from sysfs; 0 if unknown).
size_t free_pages(size_t page_size) noexcept;

} // namespace px::huge_pages
