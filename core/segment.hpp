// SPDX-License-Identifier: Apache-2.0 OR MIT
// Segment: one contiguous mapping of memory. The base class owns the mapping and (for shareable
// kinds) the fd; each backend is a factory that produces a mapped Segment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>

#include "core/ref.hpp"

namespace px {

enum class MemoryType : uint32_t { heap = 0, shared = 1, huge_pages = 2, mapped_file = 3 };

const char *memory_type_name(MemoryType type) noexcept;

class Segment : public RefCounted {
public:
    struct Mapping {
        void *addr = nullptr;
        size_t map_len = 0;  // what munmap needs (page-rounded)
        size_t size = 0;     // what the user sees
        bool readonly = false;
        MemoryType type = MemoryType::heap;
        size_t page_size = 4096;
        int fd = -1; // owned; -1 for heap memory
    };
    // Takes ownership of the mapping and fd.
    explicit Segment(const Mapping &m) noexcept;

    const std::byte *data() const noexcept { return static_cast<const std::byte *>(m_.addr); }
    // Null when the mapping is read-only.
    std::byte *mutable_data() const noexcept {
        return m_.readonly ? nullptr : static_cast<std::byte *>(m_.addr);
    }
    size_t size() const noexcept { return m_.size; }
    bool readonly() const noexcept { return m_.readonly; }
    MemoryType memory_type() const noexcept { return m_.type; }
    size_t page_size() const noexcept { return m_.page_size; }
    int ipc_fd() const noexcept { return m_.fd; }
    // Unique within this process for the process's lifetime (never reused, unlike addresses).
    uint64_t serial() const noexcept { return serial_; }

    // msync for file mappings; nothing to do for memory that has no backing file.
    virtual void flush() const;

    // For a caller that spreads a mapping's kernel work over several turns (a stream's joins
    // and departures). populate: faults in the pages of [offset, offset + len) (clamped to the
    // mapping) writable now (MADV_POPULATE_WRITE), so that the first writes there take no page
    // fault; best effort (a kernel without it, or no memory now: the faults come later).
    // drop_pages: gives back the whole mapping's page-table entries ahead of its unmap
    // (MADV_DONTNEED); shared memory stays the file's, so a peer mapping it sees no change, but
    // this mapping reads zeros or faults afresh after it: only for one nobody uses any more.
    void populate(size_t offset, size_t len) const noexcept;
    void drop_pages() const noexcept;

    // Copies [offset, offset + len) into dst (range checked, overflow-safe: invalid). When the
    // backing file is not sealed against shrinking (a mapped file, an fd mapped with
    // map_allow_unsealed), another process may have truncated it, and touching the mapping past
    // the new end would be a SIGBUS; so the bytes are read through the fd (pread) instead, and
    // a truncated file is Status::io naming its new size. Otherwise it is a memcpy.
    void read_into(size_t offset, void *dst, size_t len) const;

    // A read-only file description of this segment's memfd, for a peer that must not write
    // (the caller owns the fd). Also seals the memfd against any new writable mapping
    // (F_SEAL_FUTURE_WRITE) so that no holder of the fd can reopen it writable. Throws
    // unsupported for memory that cannot cross a channel.
    int open_readonly_for_peer() const;
    // The fd a channel passes when it registers this segment (open_readonly_for_peer's; the
    // peer gets a copy; borrowed: never closed by the caller), counting the registration until
    // release_peer_fd. One fd is kept while any channel has the segment registered, and shared
    // by them: a segment sent to many peers (a stream's description and pool, once per joining
    // subscriber) pays the seal check and /proc reopen once, for one fd (churn bench: joins'
    // CPU p50 46-49 us against 59-67 us with a reopen per registration, two interleaved runs on
    // a loaded machine). Closed with the last registration. Thread-safe. Throws as
    // open_readonly_for_peer (and counts nothing then).
    int acquire_peer_fd() const;
    void release_peer_fd() const noexcept;

protected:
    ~Segment() override;

private:
    Mapping m_;
    uint64_t serial_;
    bool may_shrink_; // has an fd that is not sealed against shrinking (F_SEAL_SHRINK)
    mutable std::mutex peer_mutex_; // guards the two below (registrations only: no fast path)
    mutable int peer_fd_ = -1;
    mutable uint32_t peer_fd_users_ = 0;
};

// Owns a mapping and its fd while a backend builds a segment of them, until the segment takes
// them over: whatever throws in between (bad_alloc making the object) unmaps and closes them.
class MappingGuard {
public:
    explicit MappingGuard(const Segment::Mapping &m) noexcept : m_(m) {}
    MappingGuard(const MappingGuard &) = delete;
    MappingGuard &operator=(const MappingGuard &) = delete;
    ~MappingGuard();
    // Makes the segment (a Segment, or a subclass with Segment's constructor) that owns them.
    template <class T = Segment> Ref<Segment> hand_over() {
        Ref<Segment> seg = Ref<Segment>::adopt(new T(m_));
        m_ = Segment::Mapping{};
        return seg;
    }

private:
    Segment::Mapping m_;
};

// Helpers shared by the backends.
size_t system_page_size() noexcept;
// Rounds up to a multiple of `multiple` (a power of two); false on overflow.
bool round_up(size_t value, size_t multiple, size_t &out) noexcept;

} // namespace px
