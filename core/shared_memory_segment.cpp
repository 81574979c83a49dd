// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/shared_memory_segment.hpp"

#include <cerrno>
#include <fcntl.h>
#include <linux/magic.h>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "core/error.hpp"
#include "core/fd_guard.hpp"

namespace px::shm {

namespace {

const char *file_kind(mode_t mode) {
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a pipe";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    return "not a regular file";
}


} // namespace

int create_memfd(const char *name, unsigned extra_flags) {
    int fd = ::memfd_create(name && *name ? name : "parallax",
                            MFD_CLOEXEC | MFD_ALLOW_SEALING | extra_flags);
    if (fd < 0)
        fail_errno("memfd_create", errno);
    return fd;
}

void size_and_seal_memfd(int fd, size_t size) {
    if (size > static_cast<size_t>(INT64_MAX))
        fail(Status::invalid, "size " + std::to_string(size) + " is larger than a file can be");
    if (::ftruncate(fd, static_cast<off_t>(size)) < 0)
        fail_errno("ftruncate(memfd, " + std::to_string(size) + ")", errno);
    if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
        fail_errno("fcntl(F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)", errno);
}

int create_sealed_memfd(const char *name, size_t size, unsigned extra_flags) {
    FdGuard guard{create_memfd(name, extra_flags)};
    size_and_seal_memfd(guard.fd, size);
    return guard.release();
}

Ref<Segment> map_shared(int fd, bool keep_fd, size_t size, size_t map_len, MemoryType type,
                        size_t page_size, bool populate) {
    FdGuard guard{keep_fd ? fd : -1};
    int flags = MAP_SHARED | (populate ? MAP_POPULATE : 0);
    void *addr = ::mmap(nullptr, map_len, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (addr == MAP_FAILED)
        fail_errno("mmap(" + std::to_string(map_len) + " bytes, shared)", errno);
    Segment::Mapping m;
    m.addr = addr;
    m.map_len = map_len;
    m.size = size;
    m.type = type;
    m.page_size = page_size;
    m.fd = guard.release();
    MappingGuard owned{m}; // until the segment exists (making it may throw bad_alloc)
    return owned.hand_over();
}

Ref<Segment> map_owned_fd(int fd, size_t size, size_t map_len, MemoryType type, size_t page_size,
                          bool populate) {
    return map_shared(fd, true, size, map_len, type, page_size, populate);
}

Ref<Segment> create(const char *name, size_t size) {
    if (size == 0)
        fail(Status::invalid, "size is 0; a segment needs at least one byte");
    size_t map_len = 0;
    if (!round_up(size, system_page_size(), map_len))
        fail(Status::invalid, "size " + std::to_string(size) + " overflows when page-rounded");
    int fd = create_sealed_memfd(name, size, 0);
    return map_owned_fd(fd, size, map_len, MemoryType::shared, system_page_size(), false);
}

Ref<Segment> from_fd(int fd, size_t size, uint32_t flags) {
    if (flags & ~static_cast<uint32_t>(map_readonly | map_allow_unsealed))
        fail(Status::invalid, "unknown flags 0x" + std::to_string(flags));
    if (fd < 0)
        fail(Status::invalid, "fd " + std::to_string(fd) + " is not a file descriptor");
    if (size == 0)
        fail(Status::invalid, "size is 0; a segment needs at least one byte");
    struct stat st {};
    if (::fstat(fd, &st) < 0) {
        if (errno == EBADF)
            fail(Status::invalid, "fd " + std::to_string(fd) + " is not an open file descriptor");
        fail_errno("fstat(fd " + std::to_string(fd) + ")", errno);
    }
    if (!S_ISREG(st.st_mode))
        fail(Status::invalid, "fd " + std::to_string(fd) + " is " + file_kind(st.st_mode) +
                                  ", not shared memory (a memfd or regular file)");
    if (static_cast<uint64_t>(st.st_size) < size)
        fail(Status::invalid, "fd " + std::to_string(fd) + " holds " +
                                  std::to_string(st.st_size) + " bytes, fewer than the " +
                                  std::to_string(size) + " claimed");
    int seals = ::fcntl(fd, F_GET_SEALS);
    if (seals < 0)
        seals = 0; // not a sealable file (a regular file on disk)
    if (!(flags & map_allow_unsealed) && !(seals & F_SEAL_SHRINK))
        fail(Status::permission,
             "fd " + std::to_string(fd) +
                 " is not sealed against shrinking (F_SEAL_SHRINK), so its owner could truncate "
                 "it under this mapping; pass PX_MAP_ALLOW_UNSEALED to accept that risk");
    bool readonly = flags & map_readonly;
    int accmode = ::fcntl(fd, F_GETFL);
    if (accmode < 0)
        fail_errno("fcntl(F_GETFL)", errno);
    if (!readonly && (accmode & O_ACCMODE) == O_RDONLY)
        fail(Status::permission, "fd " + std::to_string(fd) +
                                     " was opened read-only (as channels send it); map it with "
                                     "PX_MAP_READONLY");
    if (!readonly && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)))
        fail(Status::permission, "fd " + std::to_string(fd) +
                                     " is sealed against writing; map it with PX_MAP_READONLY");

    struct statfs fs {};
    MemoryType type = MemoryType::shared;
    size_t page = system_page_size();
    if (::fstatfs(fd, &fs) == 0 && fs.f_type == static_cast<decltype(fs.f_type)>(HUGETLBFS_MAGIC)) {
        type = MemoryType::huge_pages;
        page = static_cast<size_t>(fs.f_bsize);
    }
    size_t map_len = 0;
    if (!round_up(size, page, map_len))
        fail(Status::invalid, "size " + std::to_string(size) + " overflows when page-rounded");

    int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (own < 0)
        fail_errno("fcntl(F_DUPFD_CLOEXEC)", errno);
    FdGuard guard{own};
    int prot = readonly ? PROT_READ : PROT_READ | PROT_WRITE;
    void *addr = ::mmap(nullptr, map_len, prot, MAP_SHARED, own, 0);
    if (addr == MAP_FAILED)
        fail_errno("mmap(fd " + std::to_string(fd) + ", " + std::to_string(size) + " bytes)",
                   errno);
    Segment::Mapping m;
    m.addr = addr;
    m.map_len = map_len;
    m.size = size;
    m.readonly = readonly;
    m.type = type;
    m.page_size = page;
    m.fd = guard.release();
    MappingGuard owned{m}; // until the segment exists (making it may throw bad_alloc)
    return owned.hand_over();
}

} // namespace px::shm
