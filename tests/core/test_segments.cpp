// SPDX-License-Identifier: Apache-2.0 OR MIT
#include <doctest/doctest.h>

#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.hpp"
#include "core/heap_segment.hpp"
#include "core/huge_page_segment.hpp"
#include "core/mapped_file_segment.hpp"
#include "core/shared_memory_segment.hpp"
#include "support/hugepages.hpp"

using namespace px;

namespace {
Status status_of(auto &&f) {
    try {
        f();
    } catch (const Error &e) {
        return e.status();
    }
    return Status::ok;
}
} // namespace

TEST_CASE("heap segment is zero-filled, writable, not shareable") {
    auto s = heap::create(10000);
    CHECK(s->size() == 10000);
    CHECK(s->memory_type() == MemoryType::heap);
    CHECK(s->ipc_fd() == -1);
    REQUIRE(s->mutable_data() != nullptr);
    for (size_t i = 0; i < s->size(); ++i)
        REQUIRE(s->data()[i] == std::byte{0});
    s->mutable_data()[9999] = std::byte{7};
    CHECK(s->data()[9999] == std::byte{7});
    CHECK(status_of([] { heap::create(0); }) == Status::invalid);
    CHECK(status_of([] { heap::create(SIZE_MAX); }) == Status::invalid);
}

TEST_CASE("shared memory segment is a sealed memfd that another mapping sees") {
    auto s = shm::create("test", 8192);
    REQUIRE(s->ipc_fd() >= 0);
    int seals = fcntl(s->ipc_fd(), F_GET_SEALS);
    CHECK((seals & F_SEAL_SHRINK) != 0);
    CHECK((seals & F_SEAL_GROW) != 0);
    CHECK(ftruncate(s->ipc_fd(), 0) == -1); // sealed: no one can shrink it under a reader
    std::memcpy(s->mutable_data(), "hello", 5);
    auto view = shm::from_fd(s->ipc_fd(), 8192, shm::map_readonly);
    CHECK(view->readonly());
    CHECK(view->mutable_data() == nullptr);
    CHECK(std::memcmp(view->data(), "hello", 5) == 0);
    CHECK(view->data() != s->data()); // a second mapping of the same memory
}

TEST_CASE("from_fd refuses what is not sealed shared memory of the claimed size") {
    auto s = shm::create(nullptr, 4096);
    CHECK(status_of([&] { shm::from_fd(s->ipc_fd(), 4097, 0); }) ==
          Status::invalid);
    CHECK(status_of([&] { shm::from_fd(s->ipc_fd(), 0, 0); }) == Status::invalid);
    CHECK(status_of([] { shm::from_fd(-1, 4096, 0); }) == Status::invalid);
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(status_of([&] { shm::from_fd(p[0], 4096, 0); }) == Status::invalid);
    close(p[0]);
    close(p[1]);
    CHECK(status_of([&] { shm::from_fd(p[0], 4096, 0); }) == Status::invalid);
    int unsealed = memfd_create("unsealed", MFD_CLOEXEC);
    REQUIRE(ftruncate(unsealed, 4096) == 0);
    CHECK(status_of([&] { shm::from_fd(unsealed, 4096, 0); }) ==
          Status::permission);
    auto ok = shm::from_fd(unsealed, 4096, shm::map_allow_unsealed);
    CHECK(ok->size() == 4096);
    close(unsealed);
}

TEST_CASE("read-only peer fd cannot be made writable") {
    auto s = shm::create("ro", 4096);
    int ro = s->open_readonly_for_peer();
    REQUIRE(ro >= 0);
    CHECK(status_of([&] { shm::from_fd(ro, 4096, 0); }) == Status::permission);
    CHECK(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED);
    // Reopening through /proc read-write would bypass O_RDONLY; the future-write seal stops it.
    std::string path = "/proc/self/fd/" + std::to_string(ro);
    int rw = open(path.c_str(), O_RDWR);
    if (rw >= 0) {
        CHECK(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0) == MAP_FAILED);
        CHECK(write(rw, "x", 1) == -1);
        close(rw);
    }
    // The owner's own mapping stays writable.
    s->mutable_data()[0] = std::byte{1};
    close(ro);
    auto heap = heap::create(4096);
    CHECK(status_of([&] { heap->open_readonly_for_peer(); }) == Status::unsupported);
}

TEST_CASE("huge pages: real 2 MiB pages when reserved, honest fallback when not") {
    SUBCASE("none reserved") {
        if (huge_pages::free_pages(huge_pages::page_2mb) > 0)
            return; // someone else reserved pages; the reserved case covers this machine
        CHECK(status_of([] { huge_pages::create(huge_pages::page_2mb, 1, 0); }) ==
              Status::unsupported);
        auto s = huge_pages::create(huge_pages::page_2mb, 3 << 20,
                                         huge_pages::fallback);
        CHECK(s->memory_type() == MemoryType::shared);
        CHECK(s->page_size() == 4096);
        CHECK(s->size() == 4 << 20);
    }
    SUBCASE("reserved") {
        px_test::HugePageReservation reserve(2);
        if (!reserve.ok()) {
            MESSAGE("skipped: cannot reserve 2 MiB huge pages here (needs root)");
            return;
        }
        long before = reserve.free_pages();
        {
            auto s = huge_pages::create(huge_pages::page_2mb, 3 << 20, 0);
            CHECK(s->memory_type() == MemoryType::huge_pages);
            CHECK(s->page_size() == huge_pages::page_2mb);
            CHECK(s->size() == 4 << 20);
            CHECK(reserve.free_pages() == before - 2); // pre-faulted: taken at creation
            s->mutable_data()[s->size() - 1] = std::byte{1};
            // Exhaustion is an error now, never a SIGBUS on touch.
            CHECK(status_of([] { huge_pages::create(huge_pages::page_2mb, 1, 0); }) ==
                  Status::unsupported);
            auto peer = shm::from_fd(s->ipc_fd(), s->size(),
                                                     shm::map_readonly);
            CHECK(peer->memory_type() == MemoryType::huge_pages);
            CHECK(peer->data()[s->size() - 1] == std::byte{1});
        }
        CHECK(reserve.free_pages() == before);
    }
    CHECK(status_of([] { huge_pages::create(4096, 1, 0); }) == Status::invalid);
    CHECK(status_of([] { huge_pages::create(huge_pages::page_2mb, 0, 0); }) ==
          Status::invalid);
    CHECK(status_of([] { huge_pages::create(huge_pages::page_2mb, SIZE_MAX, 0); }) ==
          Status::invalid);
}

TEST_CASE("mapped files: create, reopen, read-only, flush") {
    px_test::TempDir dir;
    std::string path = dir.file("frames.bin");
    {
        auto s = mapped_file::create(path.c_str(), 5000);
        CHECK(s->memory_type() == MemoryType::mapped_file);
        std::memcpy(s->mutable_data(), "persist", 7);
        s->flush();
    }
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(st.st_size == 5000);
    CHECK(status_of([&] { mapped_file::create(path.c_str(), 10); }) == Status::invalid);
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK(st.st_size == 5000); // never truncated
    auto ro = mapped_file::open(path.c_str(), true);
    CHECK(ro->readonly());
    CHECK(ro->mutable_data() == nullptr);
    CHECK(std::memcmp(ro->data(), "persist", 7) == 0);
    auto rw = mapped_file::open(path.c_str(), false);
    CHECK(rw->size() == 5000);
    std::string empty = dir.file("empty");
    close(open(empty.c_str(), O_CREAT | O_WRONLY, 0600));
    CHECK(status_of([&] { mapped_file::open(empty.c_str(), false); }) == Status::invalid);
    CHECK(status_of([&] { mapped_file::open(dir.path().c_str(), false); }) ==
          Status::invalid);
    CHECK(status_of([&] { mapped_file::open(dir.path().c_str(), true); }) ==
          Status::invalid);
    CHECK(status_of([&] { mapped_file::open(dir.file("missing").c_str(), true); }) ==
          Status::io);
    CHECK(status_of([] { mapped_file::open(nullptr, true); }) == Status::invalid);
    CHECK(status_of([&] { mapped_file::create(dir.file("zero").c_str(), 0); }) ==
          Status::invalid);
}
