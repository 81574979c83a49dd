// SPDX-License-Identifier: Apache-2.0 OR MIT
#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipc_support.hpp"
#include "support/hugepages.hpp"

using namespace px_test;

namespace {
std::string last() { return px_last_error_message(); }
} // namespace

TEST_CASE("pair + fork: frames arrive intact, zero-copy and read-only, in another process") {
    px_pool_t *pool = shm_pool(8, 64 << 10);
    REQUIRE(pool);
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    pid_t child = fork_child([&] {
        px_channel_release(a);
        for (uint64_t k = 0; k < 20; ++k) {
            px_buffer_t *buf = nullptr;
            if (px_channel_recv(b, 5'000'000'000, &buf) != PX_OK)
                return 1;
            if (!frame_ok(buf, 1000 + k, k))
                return 2;
            if (px_buffer_mut_ptr(buf) != nullptr)
                return 3;
            px_buffer_release(buf);
        }
        px_buffer_t *buf = nullptr;
        return px_channel_recv(b, 5'000'000'000, &buf) == PX_E_CLOSED ? 0 : 4;
    });
    px_channel_release(b);
    for (uint64_t k = 0; k < 20; ++k) {
        px_buffer_t *frame = make_frame(pool, 1000 + k, k);
        REQUIRE(frame);
        REQUIRE(px_channel_send(a, frame) == PX_OK);
        px_buffer_release(frame); // the receiver's loan keeps the slot out
    }
    px_channel_stats_t st;
    REQUIRE(px_channel_get_stats(a, &st) == PX_OK);
    CHECK(st.buffers_sent == 20);
    CHECK(st.segments_registered == 1); // the fd crossed once
    // The peer is the process that uses the other end: the child announces itself when it
    // first uses it, and from then on this end watches that process.
    CHECK(eventually([&] {
        return px_channel_get_stats(a, &st) == PX_OK &&
               st.peer_pid == static_cast<uint64_t>(child);
    }));
    px_channel_release(a);
    CHECK(wait_child(child) == 0);
    CHECK(eventually([&] { return px_pool_available(pool) == 8; }));
    px_pool_release(pool);
}

TEST_CASE("the receiver reads the sender's memory in place: later writes are visible") {
    px_segment_t *seg = nullptr;
    REQUIRE(px_segment_shm_new("alias", 4096, &seg) == PX_OK);
    px_buffer_t *buf = nullptr;
    REQUIRE(px_buffer_from_segment(seg, nullptr, &buf) == PX_OK);
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    Signal written, seen;
    pid_t child = fork_child([&] {
        px_channel_release(a);
        px_buffer_t *got = nullptr;
        if (px_channel_recv(b, 5'000'000'000, &got) != PX_OK)
            return 1;
        auto *p = static_cast<const volatile char *>(px_buffer_ptr(got));
        if (p[0] != 'A')
            return 2;
        seen.post();
        written.wait();
        return p[0] == 'B' ? 0 : 3; // no copy: the sender's later write shows through
    });
    px_channel_release(b);
    static_cast<char *>(px_segment_mut_ptr(seg))[0] = 'A';
    REQUIRE(px_channel_send(a, buf) == PX_OK);
    seen.wait();
    static_cast<char *>(px_segment_mut_ptr(seg))[0] = 'B';
    written.post();
    CHECK(wait_child(child) == 0);
    px_buffer_release(buf);
    px_segment_release(seg);
    px_channel_release(a);
}

TEST_CASE("metadata crosses intact: every field, the user bytes in use, zeros past them") {
    px_segment_t *seg = nullptr;
    REQUIRE(px_segment_shm_new("meta", 4096, &seg) == PX_OK);
    px_metadata_t meta;
    px_metadata_init(&meta);
    meta.sequence = 7;
    meta.pts_ns = 1;
    meta.dts_ns = 2;
    meta.duration_ns = 3;
    meta.offset = 4;
    meta.offset_end = 5;
    meta.flags = 6;
    for (int len : {0, 3, 28, 29, 64}) {
        std::memset(meta.user, 0xAA, sizeof meta.user); // bytes past user_len are not sent
        for (int i = 0; i < len; ++i)
            meta.user[i] = static_cast<uint8_t>(i + 1);
        meta.user_len = static_cast<uint32_t>(len);
        px_buffer_t *buf = nullptr;
        REQUIRE(px_buffer_from_segment(seg, &meta, &buf) == PX_OK);
        px_channel_t *a = nullptr, *b = nullptr;
        REQUIRE(px_channel_pair(&a, &b) == PX_OK);
        REQUIRE(px_channel_send(a, buf) == PX_OK);
        px_buffer_t *got = nullptr;
        REQUIRE(px_channel_recv(b, 5'000'000'000, &got) == PX_OK);
        px_metadata_t m;
        REQUIRE(px_buffer_metadata(got, &m) == PX_OK);
        CHECK(m.sequence == 7);
        CHECK(m.pts_ns == 1);
        CHECK(m.dts_ns == 2);
        CHECK(m.duration_ns == 3);
        CHECK(m.offset == 4);
        CHECK(m.offset_end == 5);
        CHECK(m.flags == 6);
        CHECK(m.user_len == static_cast<uint32_t>(len));
        for (int i = 0; i < 64; ++i)
            CHECK(m.user[i] == (i < len ? i + 1 : 0));
        px_buffer_release(got);
        px_buffer_release(buf);
        px_channel_release(a);
        px_channel_release(b);
    }
    px_segment_release(seg);
}

TEST_CASE("a receiver cannot write the sender's memory, whatever it tries") {
    px_segment_t *seg = nullptr;
    REQUIRE(px_segment_shm_new("ro", 8192, &seg) == PX_OK);
    px_buffer_t *buf = nullptr;
    REQUIRE(px_buffer_from_segment(seg, nullptr, &buf) == PX_OK);
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    REQUIRE(px_channel_send(a, buf) == PX_OK);
    px_buffer_t *got = nullptr;
    REQUIRE(px_channel_recv(b, 1'000'000'000, &got) == PX_OK);
    CHECK(px_buffer_mut_ptr(got) == nullptr);
    px_segment_t *rseg = px_buffer_segment(got);
    px_ipc_handle_t h;
    REQUIRE(px_segment_ipc_handle(rseg, &h) == PX_OK);
    CHECK(mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, h.fd, 0) == MAP_FAILED);
    void *addr = const_cast<void *>(px_segment_ptr(rseg));
    CHECK(mprotect(addr, 8192, PROT_READ | PROT_WRITE) == -1);
    px_segment_t *rw = nullptr;
    CHECK(px_segment_shm_from_fd(h.fd, 8192, 0, &rw) == PX_E_PERMISSION);
    CHECK(last().find("PX_MAP_READONLY") != std::string::npos);
    std::string path = "/proc/self/fd/" + std::to_string(h.fd);
    int reopened = open(path.c_str(), O_RDWR);
    if (reopened >= 0) { // reopening works for memfds, but the write seal still holds
        CHECK(mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, reopened, 0) == MAP_FAILED);
        CHECK(write(reopened, "x", 1) == -1);
        close(reopened);
    }
    // The owner still writes through its own mapping.
    static_cast<char *>(px_segment_mut_ptr(seg))[1] = 'w';
    CHECK(static_cast<const char *>(px_buffer_ptr(got))[1] == 'w');
    px_buffer_release(got);
    px_buffer_release(buf);
    px_segment_release(seg);
    px_channel_release(a);
    px_channel_release(b);
}

TEST_CASE("heap and mapped-file segments are refused with a reason; release closes the peer") {
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    px_segment_t *heap = nullptr;
    REQUIRE(px_segment_heap_new(4096, &heap) == PX_OK);
    px_buffer_t *hb = nullptr;
    REQUIRE(px_buffer_from_segment(heap, nullptr, &hb) == PX_OK);
    CHECK(px_channel_send(a, hb) == PX_E_UNSUPPORTED);
    CHECK(last().find("heap memory is private") != std::string::npos);
    TempDir dir;
    px_segment_t *file = nullptr;
    REQUIRE(px_segment_file_create(dir.file("f").c_str(), 4096, &file) == PX_OK);
    px_buffer_t *fb = nullptr;
    REQUIRE(px_buffer_from_segment(file, nullptr, &fb) == PX_OK);
    CHECK(px_channel_send(a, fb) == PX_E_UNSUPPORTED);
    CHECK(last().find("cannot be sealed") != std::string::npos);
    CHECK(px_channel_send(a, nullptr) == PX_E_INVALID);
    CHECK(px_channel_send(nullptr, hb) == PX_E_INVALID);
    px_buffer_t *none = nullptr;
    CHECK(px_channel_recv(b, 0, &none) == PX_E_WOULD_BLOCK);
    CHECK(px_channel_recv(b, 1'000'000, &none) == PX_E_TIMEOUT);
    CHECK(px_channel_recv(nullptr, 0, &none) == PX_E_INVALID);
    CHECK(px_channel_recv(b, 0, nullptr) == PX_E_INVALID);
    CHECK(px_channel_fd(nullptr) == -1);
    CHECK(px_channel_fd(b) >= 0);
    px_channel_release(a);
    CHECK(px_channel_recv(b, 1'000'000'000, &none) == PX_E_CLOSED);
    px_channel_t *c = nullptr, *d = nullptr;
    REQUIRE(px_channel_pair(&c, &d) == PX_OK);
    px_channel_release(d);
    px_segment_t *shm = nullptr;
    REQUIRE(px_segment_shm_new("x", 4096, &shm) == PX_OK);
    px_buffer_t *sb = nullptr;
    REQUIRE(px_buffer_from_segment(shm, nullptr, &sb) == PX_OK);
    CHECK(px_channel_send(c, sb) == PX_E_CLOSED);
    px_channel_release(c);
    px_channel_release(b);
    px_channel_release(nullptr);
    for (auto *bb : {hb, fb, sb})
        px_buffer_release(bb);
    px_segment_release(heap);
    px_segment_release(file);
    px_segment_release(shm);
}

TEST_CASE("listener and connect across fork+exec; stale socket files; mode 0600") {
    TempDir dir;
    std::string path = dir.file("px.sock");
    px_listener_t *l = nullptr;
    REQUIRE(px_listener_new(path.c_str(), &l) == PX_OK);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(px_listener_fd(l) >= 0);
    px_listener_t *second = nullptr;
    CHECK(px_listener_new(path.c_str(), &second) == PX_E_BUSY);
    px_channel_t *none = nullptr;
    CHECK(px_listener_accept(l, 0, &none) == PX_E_WOULD_BLOCK);
    CHECK(px_listener_accept(l, 1'000'000, &none) == PX_E_TIMEOUT);

    pid_t child = ::fork();
    if (child == 0) {
        execl(PX_IPC_PEER, PX_IPC_PEER, "connect", path.c_str(), "5", "3000", nullptr);
        _exit(127);
    }
    px_channel_t *ch = nullptr;
    REQUIRE(px_listener_accept(l, 10'000'000'000, &ch) == PX_OK);
    px_pool_t *pool = shm_pool(4, 4096);
    for (uint64_t k = 0; k < 5; ++k) {
        px_buffer_t *f = make_frame(pool, 3000, k);
        REQUIRE(px_channel_send(ch, f) == PX_OK);
        px_buffer_release(f);
    }
    CHECK(wait_child(child) == 0);
    CHECK(eventually([&] { return px_pool_available(pool) == 4; }));
    px_channel_release(ch);
    px_listener_release(l);
    CHECK(access(path.c_str(), F_OK) != 0); // the socket file goes with the listener

    // A socket file left by a dead listener is replaced; a regular file is not touched.
    int stale = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path.c_str());
    REQUIRE(bind(stale, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    close(stale);
    REQUIRE(px_listener_new(path.c_str(), &l) == PX_OK);
    px_listener_release(l);
    std::string plain = dir.file("plain");
    close(open(plain.c_str(), O_CREAT | O_WRONLY, 0600));
    CHECK(px_listener_new(plain.c_str(), &l) == PX_E_INVALID);
    CHECK(last().find("not a socket") != std::string::npos);
    CHECK(access(plain.c_str(), F_OK) == 0);
    CHECK(px_listener_new(nullptr, &l) == PX_E_INVALID);
    CHECK(px_listener_new(std::string(200, 'x').c_str(), &l) == PX_E_INVALID);
    CHECK(px_channel_connect(dir.file("nobody").c_str(), 0, &none) == PX_E_WOULD_BLOCK);
    CHECK(px_channel_connect(dir.file("nobody").c_str(), 20'000'000, &none) == PX_E_TIMEOUT);
    CHECK(px_channel_connect(nullptr, 0, &none) == PX_E_INVALID);
    px_listener_release(nullptr);
    px_pool_release(pool);
}

TEST_CASE("from_fd: an inherited socket across exec") {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    pid_t child = ::fork();
    if (child == 0) {
        close(sv[0]);
        int fd = dup(sv[1]); // without close-on-exec, so that the peer program inherits it
        execl(PX_IPC_PEER, PX_IPC_PEER, "fd", std::to_string(fd).c_str(), "3", "65536", nullptr);
        _exit(127);
    }
    close(sv[1]);
    px_channel_t *ch = nullptr;
    REQUIRE(px_channel_from_fd(sv[0], &ch) == PX_OK);
    px_pool_t *pool = shm_pool(2, 65536);
    for (uint64_t k = 0; k < 3; ++k) { // 3 frames through 2 slots: the loans come back
        px_buffer_t *f = make_frame(pool, 65536, k);
        REQUIRE(f);
        REQUIRE(px_channel_send(ch, f) == PX_OK);
        px_buffer_release(f);
    }
    CHECK(wait_child(child) == 0);
    px_channel_release(ch);
    px_pool_release(pool);

    px_channel_t *bad = nullptr;
    CHECK(px_channel_from_fd(-1, &bad) == PX_E_INVALID);
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(px_channel_from_fd(p[0], &bad) == PX_E_INVALID);
    CHECK(last().find("not a socket") != std::string::npos);
    CHECK(fcntl(p[0], F_GETFD) == -1); // ownership was taken, also on failure
    close(p[1]);
    int dgram[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram) == 0);
    CHECK(px_channel_from_fd(dgram[0], &bad) == PX_E_INVALID);
    close(dgram[1]);
}

TEST_CASE("no fd or mapping leaks over 10,000 sends with segment churn") {
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    auto round = [&](int sends) {
        for (int s = 0; s < sends / 10; ++s) { // a new segment every 10 sends
            px_segment_t *seg = nullptr;
            REQUIRE(px_segment_shm_new("churn", 4096, &seg) == PX_OK);
            px_buffer_t *buf = nullptr;
            REQUIRE(px_buffer_from_segment(seg, nullptr, &buf) == PX_OK);
            px_segment_release(seg);
            for (int j = 0; j < 10; ++j) {
                REQUIRE(px_channel_send(a, buf) == PX_OK);
                px_buffer_t *got = nullptr;
                REQUIRE(px_channel_recv(b, 1'000'000'000, &got) == PX_OK);
                px_buffer_release(got);
            }
            px_buffer_release(buf);
        }
    };
    round(100); // warm up whatever is allocated once
    int fds_before = count_open_fds();
    size_t maps_before = count_mappings();
    round(10000);
    // One more send lets the sender tell the receiver about the last dead segment.
    round(10);
    CHECK(count_open_fds() <= fds_before + 2);
    CHECK(count_mappings() <= maps_before + 4);
    px_channel_stats_t st;
    REQUIRE(px_channel_get_stats(a, &st) == PX_OK);
    CHECK(st.segments_registered >= 1000);
    px_channel_release(a);
    px_channel_release(b);
}

TEST_CASE("huge-page segments cross a channel") {
    HugePageReservation reserve(2);
    if (!reserve.ok()) {
        MESSAGE("skipped: cannot reserve 2 MiB huge pages here (needs root)");
        return;
    }
    px_segment_t *seg = nullptr;
    REQUIRE(px_segment_hugepage_new(PX_HUGE_PAGE_2MB, 4 << 20, 0, &seg) == PX_OK);
    px_pool_t *pool = nullptr;
    REQUIRE(px_pool_new(seg, 2 << 20, &pool) == PX_OK);
    px_segment_release(seg);
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    pid_t child = fork_child([&] {
        px_channel_release(a);
        px_buffer_t *got = nullptr;
        if (px_channel_recv(b, 5'000'000'000, &got) != PX_OK)
            return 1;
        if (px_segment_memory_type(px_buffer_segment(got)) != PX_MEMORY_HUGE_PAGES)
            return 2;
        return frame_ok(got, 2 << 20, 9) ? 0 : 3;
    });
    px_channel_release(b);
    px_buffer_t *f = make_frame(pool, 2 << 20, 9);
    REQUIRE(px_channel_send(a, f) == PX_OK);
    px_buffer_release(f);
    CHECK(wait_child(child) == 0);
    CHECK(eventually([&] { return px_pool_available(pool) == 2; }));
    px_channel_release(a);
    px_pool_release(pool);
}

// Issue 18: what an end costs in fds. A pair in one process: its two sockets and one shared
// return socket each (4; the target is <= 6). An end connected to another process: its socket,
// its return socket and the pidfd that watches the peer (the target is <= 3). px_channel_fd
// adds its epoll set and doorbell, made at its first call only.
TEST_CASE("fds per channel end: a pair <= 6, a cross-process end <= 3, +2 once polled") {
    const int start = count_open_fds();
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    const int pair_fds = count_open_fds() - start;
    MESSAGE("a pair holds " << pair_fds << " fds");
    CHECK(pair_fds <= 6);
    CHECK(px_channel_fd(a) >= 0);
    CHECK(count_open_fds() - start == pair_fds + 2);
    px_channel_release(a);
    px_channel_release(b);
    CHECK(count_open_fds() == start);

    TempDir dir;
    const std::string path = dir.file("fds.sock");
    px_listener_t *l = nullptr;
    REQUIRE(px_listener_new(path.c_str(), &l) == PX_OK);
    Signal done;
    pid_t client = fork_child([&] {
        px_listener_release(l); // its copy: the socket file stays (the parent made it)
        px_channel_t *ch = nullptr;
        if (px_channel_connect(path.c_str(), 5'000'000'000, &ch) != PX_OK)
            return 1;
        done.wait();
        px_channel_release(ch);
        return 0;
    });
    const int before = count_open_fds();
    px_channel_t *end = nullptr;
    REQUIRE(px_listener_accept(l, 5'000'000'000, &end) == PX_OK);
    const int end_fds = count_open_fds() - before;
    MESSAGE("an end connected to another process holds " << end_fds << " fds");
    CHECK(end_fds <= 3);
    done.post();
    CHECK(wait_child(client) == 0);
    px_channel_release(end);
    px_listener_release(l);
}

// Issue 12, defect 1: a pair used in one process (no fork) and released with a buffer still in
// its ring, or held, left 4 fds and a mapping behind per cycle, and a slot out.
TEST_CASE("both ends of a pair released in one process: fds, mappings and slots come back") {
    px_pool_t *pool = shm_pool(4, 4096);
    // The pool's segment fd and mapping are the pool's, not the pair's. Only shared-memory
    // mappings are counted (control blocks and segments are memfds): a sanitizer's allocator
    // maps memory of its own as the test allocates.
    const int fds_before = count_open_fds();
    const size_t maps_before = count_mappings("memfd:");
    for (int order = 0; order < 4; ++order) {
        CAPTURE(order);
        px_channel_t *a = nullptr, *b = nullptr;
        REQUIRE(px_channel_pair(&a, &b) == PX_OK);
        px_buffer_t *f = make_frame(pool, 64, 1);
        REQUIRE(px_channel_send(a, f) == PX_OK);
        px_buffer_release(f);
        px_buffer_t *got = nullptr;
        if (order & 1) { // received and still held while both ends go
            REQUIRE(px_channel_recv(b, 1'000'000'000, &got) == PX_OK);
        } // else: left in b's ring
        if (order & 2) {
            px_channel_release(b);
            px_channel_release(a);
        } else {
            px_channel_release(a);
            px_channel_release(b);
        }
        px_buffer_release(got);
        CHECK(px_pool_available(pool) == 4);
        CHECK(count_open_fds() == fds_before);
        CHECK(count_mappings("memfd:") == maps_before);
    }
    px_pool_release(pool);
}
