// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/huge_page_segment.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <linux/memfd.h>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

#include "core/error.hpp"
#include "core/fd_guard.hpp"
#include "core/shared_memory_segment.hpp"

namespace px::huge_pages {

namespace {

std::string sysfs_dir(size_t page_size) {
    return "/sys/kernel/mm/hugepages/hugepages-" + std::to_string(page_size / 1024) + "kB";
}

const char *page_label(size_t page_size) { return page_size == page_1gb ? "1 GiB" : "2 MiB"; }

// Allocates the huge-page memfd and maps it, or throws unsupported with advice.
Ref<Segment> create_huge(size_t page_size, size_t size) {
    unsigned size_flag = page_size == page_1gb ? MFD_HUGE_1GB : MFD_HUGE_2MB;
    FdGuard fd{-1};
    try {
        fd.fd = shm::create_sealed_memfd("parallax-huge", size,
                                                         MFD_HUGETLB | size_flag);
    } catch (const Error &e) {
        if (ran_out_of_fds(e)) // not a lack of huge pages: normal pages would fail the same way
            throw;
        fail(Status::unsupported, std::string("huge pages of ") + page_label(page_size) +
                                      " are not available here: " + e.what());
    }
    // Take the pages now: with too few reserved, this fails instead of a later SIGBUS.
    int rc = ::fallocate(fd.fd, 0, 0, static_cast<off_t>(size));
    if (rc != 0) {
        int err = errno;
        size_t needed = size / page_size;
        std::string dir = sysfs_dir(page_size);
        fail(Status::unsupported,
             std::string("cannot reserve ") + std::to_string(needed) + " huge page(s) of " +
                 page_label(page_size) + " (fallocate: " + std::strerror(err) + "; " +
                 std::to_string(free_pages(page_size)) +
                 " free); reserve them as root with: echo " + std::to_string(needed) + " > " + dir +
                 "/nr_hugepages, or pass PX_HUGEPAGE_FALLBACK");
    }
    try {
        return shm::map_owned_fd(fd.release(), size, size, MemoryType::huge_pages,
                                                 page_size, true);
    } catch (const Error &e) {
        fail(Status::unsupported, std::string("mapping ") + page_label(page_size) +
                                      " huge pages failed: " + e.what());
    }
}

} // namespace

size_t free_pages(size_t page_size) noexcept {
    std::ifstream in(sysfs_dir(page_size) + "/free_hugepages");
    size_t n = 0;
    if (in >> n)
        return n;
    return 0;
}

Ref<Segment> create(size_t page_size, size_t size, uint32_t flags) {
    if (page_size != page_2mb && page_size != page_1gb)
        fail(Status::invalid, "page size " + std::to_string(page_size) +
                                  " is not PX_HUGE_PAGE_2MB (2097152) or PX_HUGE_PAGE_1GB "
                                  "(1073741824)");
    if (flags & ~static_cast<uint32_t>(fallback))
        fail(Status::invalid, "unknown flags 0x" + std::to_string(flags));
    if (size == 0)
        fail(Status::invalid, "size is 0; a segment needs at least one byte");
    size_t rounded = 0;
    if (!round_up(size, page_size, rounded) || rounded > static_cast<size_t>(INT64_MAX))
        fail(Status::invalid, "size " + std::to_string(size) + " overflows when rounded to " +
                                  page_label(page_size) + " pages");
    try {
        return create_huge(page_size, rounded);
    } catch (const Error &e) {
        if (!(flags & fallback) || e.status() != Status::unsupported)
            throw;
    }
    // Fallback: ordinary shared memory, honest about what it is.
    int fd = shm::create_sealed_memfd("parallax-huge-fallback", rounded, 0);
    return shm::map_owned_fd(fd, rounded, rounded, MemoryType::shared,
                                             system_page_size(), false);
}

} // namespace px::huge_pages
