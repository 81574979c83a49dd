// SPDX-License-Identifier: Apache-2.0 OR MIT
// Mapped files cannot be sealed: another process may truncate a file this process has mapped.
// Touching the lost pages is a SIGBUS (shown here in a child, since that is the hazard being
// documented); px_segment_read turns the same situation into PX_E_IO. Channels keep refusing
// file segments.
#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <vector>

#include "fault_support.hpp"

using namespace px_test;
using namespace px_fault;

namespace {

std::string last() { return px_last_error_message(); }

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/px-faults-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        if (DIR *d = ::opendir(path.c_str())) {
            while (dirent *e = ::readdir(d))
                if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
                    ::unlink(file(e->d_name).c_str());
            ::closedir(d);
        }
        ::rmdir(path.c_str());
    }
    std::string file(const char *name) const { return path + "/" + name; }
};

constexpr size_t page = 4096;

unsigned char pattern(size_t i) { return static_cast<unsigned char>((i * 7 + 3) & 0xff); }

// Another process shortens the file: a child opens the path and truncates it.
void truncate_from_another_process(const std::string &path, off_t size) {
    pid_t pid = fork_child([&] {
        int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return 1;
        int rc = ::ftruncate(fd, size);
        ::close(fd);
        return rc == 0 ? 0 : 2;
    });
    REQUIRE(wait_child_for(pid) == 0);
}

// A file segment of three pages holding pattern(i) at byte i.
px_segment_t *patterned_file(const std::string &path) {
    px_segment_t *seg = nullptr;
    REQUIRE(px_segment_file_create(path.c_str(), 3 * page, &seg) == PX_OK);
    auto *p = static_cast<unsigned char *>(px_segment_mut_ptr(seg));
    for (size_t i = 0; i < 3 * page; ++i)
        p[i] = pattern(i);
    return seg;
}

bool holds_pattern(const std::vector<unsigned char> &v, size_t from) {
    for (size_t i = 0; i < v.size(); ++i)
        if (v[i] != pattern(from + i))
            return false;
    return true;
}

} // namespace

TEST_CASE("touching a mapped file past the end another process truncated it to is a SIGBUS") {
    TempDir dir;
    std::string path = dir.file("victim");
    px_segment_t *seg = patterned_file(path);
    truncate_from_another_process(path, page);
    const auto *p = static_cast<const volatile unsigned char *>(px_segment_ptr(seg));
    // What is left is still there...
    CHECK(p[page - 1] == pattern(page - 1));
    // ...but the page past the new end is gone: the process that touches it dies.
    pid_t pid = fork_child([&] {
        ::signal(SIGBUS, SIG_DFL); // a sanitizer's handler would turn it into an abort
        volatile unsigned char c = p[2 * page];
        (void)c;
        return 0;
    });
    CHECK(wait_child_for(pid) == 128 + SIGBUS);
    px_segment_release(seg);
}

TEST_CASE("px_segment_read reports a truncated mapped file as PX_E_IO, not a SIGBUS") {
    TempDir dir;
    std::string path = dir.file("data");
    px_segment_t *seg = patterned_file(path);
    std::vector<unsigned char> out(3 * page);

    REQUIRE(px_segment_read(seg, 0, out.data(), out.size()) == PX_OK);
    CHECK(holds_pattern(out, 0));
    // Reads see what the mapping holds (one page cache), also right after a write through it.
    static_cast<unsigned char *>(px_segment_mut_ptr(seg))[5000] = 0xAB;
    unsigned char one = 0;
    REQUIRE(px_segment_read(seg, 5000, &one, 1) == PX_OK);
    CHECK(one == 0xAB);
    static_cast<unsigned char *>(px_segment_mut_ptr(seg))[5000] = pattern(5000);

    truncate_from_another_process(path, page + 100);
    std::vector<unsigned char> tail(200);
    CHECK(px_segment_read(seg, 2 * page, tail.data(), tail.size()) == PX_E_IO);
    CHECK(last().find("px_segment_read") != std::string::npos);
    CHECK(last().find("now 4196 bytes") != std::string::npos);
    // A range that straddles the new end fails too, rather than coming back short.
    CHECK(px_segment_read(seg, page, tail.data(), tail.size()) == PX_E_IO);
    // What still exists reads fine, through the segment that lost its tail.
    std::vector<unsigned char> head(page + 100);
    REQUIRE(px_segment_read(seg, 0, head.data(), head.size()) == PX_OK);
    CHECK(holds_pattern(head, 0));
    CHECK(px_segment_len(seg) == 3 * page); // the segment still describes its mapping

    // Emptied altogether.
    truncate_from_another_process(path, 0);
    CHECK(px_segment_read(seg, 0, &one, 1) == PX_E_IO);
    CHECK(last().find("now 0 bytes") != std::string::npos);
    // Grown back: the lost bytes are gone for good (zeros), but reading is safe again.
    truncate_from_another_process(path, 3 * page);
    REQUIRE(px_segment_read(seg, 2 * page, tail.data(), tail.size()) == PX_OK);
    CHECK(tail == std::vector<unsigned char>(tail.size(), 0));
    px_segment_release(seg);
}

TEST_CASE("px_segment_read through a read-only mapping of a truncated file") {
    TempDir dir;
    std::string path = dir.file("ro");
    px_segment_release(patterned_file(path));
    px_segment_t *ro = nullptr;
    REQUIRE(px_segment_file_open_readonly(path.c_str(), &ro) == PX_OK);
    CHECK(px_segment_mut_ptr(ro) == nullptr);
    std::vector<unsigned char> out(3 * page);
    REQUIRE(px_segment_read(ro, 0, out.data(), out.size()) == PX_OK);
    CHECK(holds_pattern(out, 0));
    truncate_from_another_process(path, 2 * page);
    CHECK(px_segment_read(ro, 2 * page, out.data(), page) == PX_E_IO);
    CHECK(last().find("now 8192 bytes") != std::string::npos);
    px_segment_release(ro);
}

TEST_CASE("px_segment_read refuses bad arguments and ranges with PX_E_INVALID") {
    px_segment_t *heap = nullptr;
    REQUIRE(px_segment_heap_new(100, &heap) == PX_OK);
    auto *p = static_cast<unsigned char *>(px_segment_mut_ptr(heap));
    for (size_t i = 0; i < 100; ++i)
        p[i] = pattern(i);
    unsigned char buf[128] = {};

    CHECK(px_segment_read(nullptr, 0, buf, 1) == PX_E_INVALID);
    CHECK(last().find("seg is NULL") != std::string::npos);
    CHECK(px_segment_read(heap, 0, nullptr, 1) == PX_E_INVALID);
    CHECK(last().find("dst is NULL") != std::string::npos);
    CHECK(px_segment_read(heap, 0, nullptr, 0) == PX_E_INVALID);
    CHECK(px_segment_read(heap, 0, buf, 101) == PX_E_INVALID);
    CHECK(last().find("range [0, +101) exceeds segment length 100") != std::string::npos);
    CHECK(px_segment_read(heap, 101, buf, 0) == PX_E_INVALID);
    CHECK(px_segment_read(heap, 99, buf, 2) == PX_E_INVALID);
    CHECK(px_segment_read(heap, SIZE_MAX, buf, 2) == PX_E_INVALID); // offset + len overflows
    CHECK(px_segment_read(heap, 2, buf, SIZE_MAX) == PX_E_INVALID);
    CHECK(buf[0] == 0); // nothing was copied by a refused call

    CHECK(px_segment_read(heap, 100, buf, 0) == PX_OK); // empty, at the end: fine
    REQUIRE(px_segment_read(heap, 90, buf, 10) == PX_OK);
    for (size_t i = 0; i < 10; ++i)
        CHECK(buf[i] == pattern(90 + i));
    px_segment_release(heap);

    TempDir dir;
    px_segment_t *file = patterned_file(dir.file("f"));
    CHECK(px_segment_read(file, 3 * page, buf, 1) == PX_E_INVALID); // past the mapping, not IO
    CHECK(px_segment_read(file, 3 * page - 1, buf, 1) == PX_OK);
    CHECK(buf[0] == pattern(3 * page - 1));
    px_segment_release(file);
}

TEST_CASE("px_segment_read over shared memory: sealed is a memcpy, unsealed reads safely") {
    px_segment_t *shm = nullptr;
    REQUIRE(px_segment_shm_new("read", 2 * page, &shm) == PX_OK);
    std::memset(px_segment_mut_ptr(shm), 0x5A, 2 * page);
    unsigned char buf[16] = {};
    REQUIRE(px_segment_read(shm, 2 * page - 16, buf, 16) == PX_OK);
    CHECK(buf[15] == 0x5A);
    px_ipc_handle_t h{};
    REQUIRE(px_segment_ipc_handle(shm, &h) == PX_OK);
    CHECK(::ftruncate(h.fd, 0) == -1); // sealed: nobody can take the memory away
    CHECK(errno == EPERM);
    px_segment_release(shm);

    // An unsealed memfd accepted with PX_MAP_ALLOW_UNSEALED is exposed like a file.
    int fd = ::memfd_create("unsealed", MFD_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, 2 * page) == 0);
    px_segment_t *unsealed = nullptr;
    CHECK(px_segment_shm_from_fd(fd, 2 * page, PX_MAP_READONLY, &unsealed) == PX_E_PERMISSION);
    REQUIRE(px_segment_shm_from_fd(fd, 2 * page, PX_MAP_READONLY | PX_MAP_ALLOW_UNSEALED,
                                   &unsealed) == PX_OK);
    REQUIRE(px_segment_read(unsealed, page, buf, 16) == PX_OK);
    REQUIRE(::ftruncate(fd, page) == 0); // its owner shrinks it
    CHECK(px_segment_read(unsealed, page, buf, 16) == PX_E_IO);
    CHECK(last().find("now 4096 bytes") != std::string::npos);
    px_segment_release(unsealed);
    ::close(fd);
}

TEST_CASE("channels keep refusing mapped-file segments; a file fd is refused as shared memory") {
    TempDir dir;
    std::string path = dir.file("shared");
    px_segment_t *file = patterned_file(path);
    px_buffer_t *buf = nullptr;
    REQUIRE(px_buffer_from_segment(file, nullptr, &buf) == PX_OK);
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    CHECK(px_channel_send(a, buf) == PX_E_UNSUPPORTED);
    CHECK(last().find("cannot be sealed") != std::string::npos);
    px_buffer_t *none = nullptr;
    CHECK(px_channel_recv(b, 0, &none) == PX_E_WOULD_BLOCK); // nothing was half-sent
    px_channel_release(a);
    px_channel_release(b);

    // The same file, handed over as a raw fd, is refused as shared memory unless the receiver
    // explicitly accepts the risk.
    px_ipc_handle_t h{};
    REQUIRE(px_segment_ipc_handle(file, &h) == PX_OK);
    px_segment_t *as_shm = nullptr;
    CHECK(px_segment_shm_from_fd(h.fd, 3 * page, PX_MAP_READONLY, &as_shm) == PX_E_PERMISSION);
    CHECK(last().find("F_SEAL_SHRINK") != std::string::npos);
    CHECK(as_shm == nullptr);
    px_buffer_release(buf);
    px_segment_release(file);
}
