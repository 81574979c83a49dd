// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/heap_segment.hpp"

#include <cerrno>
#include <string>
#include <sys/mman.h>

#include "core/error.hpp"

namespace px::heap {

Ref<Segment> create(size_t size) {
    if (size == 0)
        fail(Status::invalid, "size is 0; a segment needs at least one byte");
    Segment::Mapping m;
    if (!round_up(size, system_page_size(), m.map_len))
        fail(Status::invalid, "size " + std::to_string(size) + " overflows when page-rounded");
    m.size = size;
    m.type = MemoryType::heap;
    m.page_size = system_page_size();
    m.addr = ::mmap(nullptr, m.map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m.addr == MAP_FAILED)
        fail_errno("mmap(" + std::to_string(size) + " bytes, anonymous)", errno);
    MappingGuard owned{m};
    return owned.hand_over();
}

} // namespace px::heap
