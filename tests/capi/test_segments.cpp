// SPDX-License-Identifier: Apache-2.0 OR MIT
#include <doctest/doctest.h>

#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parallax/parallax.h"
#include "support/hugepages.hpp"

namespace {
std::string last() { return px_last_error_message(); }
} // namespace

TEST_CASE("C API: heap and shared segments") {
    px_segment_t *heap = nullptr;
    REQUIRE(px_segment_heap_new(4096, &heap) == PX_OK);
    CHECK(px_segment_len(heap) == 4096);
    CHECK(px_segment_memory_type(heap) == PX_MEMORY_HEAP);
    CHECK(px_segment_mut_ptr(heap) == px_segment_ptr(heap));
    CHECK(px_segment_is_readonly(heap) == 0);
    px_ipc_handle_t h;
    CHECK(px_segment_ipc_handle(heap, &h) == PX_E_UNSUPPORTED);
    CHECK(last().find("heap") != std::string::npos);
    CHECK(px_segment_retain(heap) == heap);
    px_segment_release(heap);
    px_segment_release(heap);
    px_segment_release(nullptr);

    px_segment_t *shm = nullptr;
    REQUIRE(px_segment_shm_new("frames", 1 << 20, &shm) == PX_OK);
    CHECK(px_segment_memory_type(shm) == PX_MEMORY_SHARED);
    CHECK(px_segment_page_size(shm) == 4096);
    REQUIRE(px_segment_ipc_handle(shm, &h) == PX_OK);
    CHECK(h.kind == PX_IPC_FD);
    CHECK(h.size == 1u << 20);
    std::memcpy(px_segment_mut_ptr(shm), "abc", 3);
    px_segment_t *peer = nullptr;
    REQUIRE(px_segment_shm_from_fd(h.fd, h.size, PX_MAP_READONLY, &peer) == PX_OK);
    CHECK(std::memcmp(px_segment_ptr(peer), "abc", 3) == 0);
    CHECK(px_segment_mut_ptr(peer) == nullptr);
    CHECK(px_segment_is_readonly(peer) == 1);
    px_segment_t *rw = nullptr;
    REQUIRE(px_segment_shm_from_fd(h.fd, 4096, 0, &rw) == PX_OK);
    static_cast<char *>(px_segment_mut_ptr(rw))[0] = 'X';
    CHECK(static_cast<const char *>(px_segment_ptr(shm))[0] == 'X');
    px_segment_release(rw);
    px_segment_release(shm);
    // The fd the caller gave was dup'ed: the peer mapping outlives the original.
    CHECK(static_cast<const char *>(px_segment_ptr(peer))[1] == 'b');
    px_segment_release(peer);
}

TEST_CASE("C API: bad input to segments gives a code and a message, never a crash") {
    px_segment_t *s = nullptr;
    CHECK(px_segment_heap_new(0, &s) == PX_E_INVALID);
    CHECK(px_segment_heap_new(SIZE_MAX, &s) == PX_E_INVALID);
    CHECK(last().find("overflows") != std::string::npos);
    CHECK(px_segment_shm_new(nullptr, 0, &s) == PX_E_INVALID);
    CHECK(px_segment_shm_new(nullptr, SIZE_MAX, &s) == PX_E_INVALID);
    CHECK(px_segment_shm_new(nullptr, 16, nullptr) == PX_E_INVALID);
    CHECK(s == nullptr);
    CHECK(px_segment_shm_from_fd(-1, 16, 0, &s) == PX_E_INVALID);
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(px_segment_shm_from_fd(p[0], 16, 0, &s) == PX_E_INVALID);
    CHECK(last().find("pipe") != std::string::npos);
    close(p[0]);
    close(p[1]);
    CHECK(px_segment_shm_from_fd(p[0], 16, 0, &s) == PX_E_INVALID); // closed fd
    CHECK(last().find("not an open file descriptor") != std::string::npos);
    int unsealed = memfd_create("x", MFD_CLOEXEC);
    REQUIRE(ftruncate(unsealed, 4096) == 0);
    CHECK(px_segment_shm_from_fd(unsealed, 4096, 0, &s) == PX_E_PERMISSION);
    CHECK(last().find("F_SEAL_SHRINK") != std::string::npos);
    CHECK(px_segment_shm_from_fd(unsealed, 8192, PX_MAP_ALLOW_UNSEALED, &s) == PX_E_INVALID);
    CHECK(last().find("fewer than the 8192 claimed") != std::string::npos);
    CHECK(px_segment_shm_from_fd(unsealed, 4096, 0x80, &s) == PX_E_INVALID);
    close(unsealed);
    CHECK(px_segment_hugepage_new(12345, 4096, 0, &s) == PX_E_INVALID);
    CHECK(px_segment_hugepage_new(PX_HUGE_PAGE_2MB, 0, 0, &s) == PX_E_INVALID);
    CHECK(px_segment_file_create(nullptr, 16, &s) == PX_E_INVALID);
    CHECK(last() == "px_segment_file_create: path is NULL");
    CHECK(px_segment_file_open(nullptr, &s) == PX_E_INVALID);
    CHECK(px_segment_file_open("/nonexistent/dir/file", &s) == PX_E_IO);
    CHECK(last().find("No such file") != std::string::npos);
    CHECK(px_segment_file_open("/tmp", &s) == PX_E_INVALID);
    CHECK(last().find("directory") != std::string::npos);
    CHECK(px_segment_flush(nullptr) == PX_E_INVALID);
    CHECK(s == nullptr);
    // Accessors answer NULL/0 for a NULL handle.
    CHECK(px_segment_ptr(nullptr) == nullptr);
    CHECK(px_segment_mut_ptr(nullptr) == nullptr);
    CHECK(px_segment_len(nullptr) == 0);
    CHECK(px_segment_page_size(nullptr) == 0);
    CHECK(px_segment_retain(nullptr) == nullptr);
    px_ipc_handle_t h;
    CHECK(px_segment_ipc_handle(nullptr, &h) == PX_E_INVALID);
}

TEST_CASE("C API: huge pages with and without reserved pages") {
    px_segment_t *s = nullptr;
    {
        px_test::HugePageReservation reserve(1);
        if (reserve.ok()) {
            REQUIRE(px_segment_hugepage_new(PX_HUGE_PAGE_2MB, 1000, 0, &s) == PX_OK);
            CHECK(px_segment_memory_type(s) == PX_MEMORY_HUGE_PAGES);
            CHECK(px_segment_page_size(s) == PX_HUGE_PAGE_2MB);
            CHECK(px_segment_len(s) == PX_HUGE_PAGE_2MB);
            px_ipc_handle_t h;
            CHECK(px_segment_ipc_handle(s, &h) == PX_OK);
            px_segment_release(s);
        } else {
            MESSAGE("skipped the reserved case: cannot reserve 2 MiB huge pages (needs root)");
        }
    }
    px_test::HugePageReservation none(0);
    if (none.free_pages() == 0) {
        CHECK(px_segment_hugepage_new(PX_HUGE_PAGE_2MB, 1, 0, &s) == PX_E_UNSUPPORTED);
        CHECK(last().find("nr_hugepages") != std::string::npos);
        REQUIRE(px_segment_hugepage_new(PX_HUGE_PAGE_2MB, 1, PX_HUGEPAGE_FALLBACK, &s) == PX_OK);
        CHECK(px_segment_memory_type(s) == PX_MEMORY_SHARED);
        CHECK(px_segment_page_size(s) == 4096);
        px_segment_release(s);
    }
    // 1 GiB pages: the kernel rarely has them; without the flag it must say so, not crash.
    px_status_t rc = px_segment_hugepage_new(PX_HUGE_PAGE_1GB, 1, 0, &s);
    if (rc == PX_OK) {
        CHECK(px_segment_page_size(s) == PX_HUGE_PAGE_1GB);
        px_segment_release(s);
    } else {
        CHECK(rc == PX_E_UNSUPPORTED);
        MESSAGE("1 GiB huge pages not available: " << last());
    }
}

TEST_CASE("C API: mapped files") {
    px_test::TempDir dir;
    std::string path = dir.file("data.bin");
    px_segment_t *s = nullptr;
    REQUIRE(px_segment_file_create(path.c_str(), 12345, &s) == PX_OK);
    CHECK(px_segment_memory_type(s) == PX_MEMORY_MAPPED_FILE);
    std::memcpy(px_segment_mut_ptr(s), "saved", 5);
    CHECK(px_segment_flush(s) == PX_OK);
    px_segment_release(s);
    CHECK(px_segment_file_create(path.c_str(), 1, &s) == PX_E_INVALID);
    CHECK(last().find("already exists") != std::string::npos);
    REQUIRE(px_segment_file_open_readonly(path.c_str(), &s) == PX_OK);
    CHECK(px_segment_len(s) == 12345);
    CHECK(px_segment_mut_ptr(s) == nullptr);
    CHECK(std::memcmp(px_segment_ptr(s), "saved", 5) == 0);
    CHECK(px_segment_flush(s) == PX_OK);
    px_buffer_t *b = nullptr;
    REQUIRE(px_buffer_from_segment(s, nullptr, &b) == PX_OK);
    CHECK(px_buffer_mut_ptr(b) == nullptr); // writes refused
    px_buffer_release(b);
    px_pool_t *pool = nullptr;
    CHECK(px_pool_new(s, 64, &pool) == PX_E_UNSUPPORTED);
    px_segment_release(s);
    // A file whose permissions forbid writing: open read-write is refused by the kernel for
    // anyone but root; read-only always works.
    chmod(path.c_str(), 0400);
    REQUIRE(px_segment_file_open_readonly(path.c_str(), &s) == PX_OK);
    px_segment_release(s);
    std::string empty = dir.file("empty");
    close(open(empty.c_str(), O_CREAT | O_WRONLY, 0600));
    CHECK(px_segment_file_open(empty.c_str(), &s) == PX_E_INVALID);
    CHECK(last().find("is empty") != std::string::npos);
    CHECK(px_segment_file_create(dir.file("zero").c_str(), 0, &s) == PX_E_INVALID);
}
