// SPDX-License-Identifier: Apache-2.0 OR MIT
// What a channel's first sends cost a stream that welcomes subscribers (issue 13: a join stalls
// publish for at most 50 us): a segment opens the read-only fd it passes to peers once, not at
// every registration; an end that was just handshaken does not look at its peer before its
// first send, yet a peer gone by then is still found; and a stream can learn that a peer has
// gone without an exception (send_unless_closed).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "core/buffer.hpp"
#include "core/error.hpp"
#include "core/heap_segment.hpp"
#include "core/ipc/channel.hpp"
#include "core/shared_memory_segment.hpp"
#include "ipc_support.hpp"

using namespace px_test;
using px::Buffer;
using px::Ref;
using px::Segment;
using px::ipc::Channel;

namespace {

// The inode behind an fd: two fds of one memfd show the same.
ino_t inode_of(int fd) {
    struct stat st {};
    REQUIRE(fstat(fd, &st) == 0);
    return st.st_ino;
}

// A connected end in this process whose peer is a forked child; the child keeps its end until
// `go` is posted, then exits (the parent reaps it with wait_child).
struct ChildPeer {
    Ref<Channel> end;
    pid_t pid = -1;
};

ChildPeer child_peer(Signal &go) {
    auto ends = Channel::pair();
    ChildPeer p;
    p.pid = fork_child([&] {
        ends.first = nullptr;
        ends.second->stats(); // its first use in the child: the parent now watches this process
        go.wait();
        return 0;
    });
    p.end = ends.first;
    ends.second = nullptr; // the child's now: its exit hangs up
    return p;
}

Buffer whole(const Ref<Segment> &seg) {
    return Buffer(seg, 0, seg->size(), px::Metadata{});
}

} // namespace

TEST_CASE("a segment registered on channels keeps one read-only peer fd for all of them, "
          "closed with the last registration") {
    Ref<Segment> seg = px::shm::create("peer-fd", 4096);
    const int with_segment = count_open_fds();
    // The first registration opens it and keeps it (even a single one: the caller only
    // borrows it); the next ones share it.
    const int kept = seg->acquire_peer_fd();
    REQUIRE(kept >= 0);
    CHECK((fcntl(kept, F_GETFL) & O_ACCMODE) == O_RDONLY);
    CHECK(inode_of(kept) == inode_of(seg->ipc_fd()));
    CHECK((fcntl(seg->ipc_fd(), F_GET_SEALS) & F_SEAL_FUTURE_WRITE) != 0);
    CHECK(count_open_fds() == with_segment + 1);
    CHECK(seg->acquire_peer_fd() == kept);
    CHECK(count_open_fds() == with_segment + 1);
    seg->release_peer_fd();
    CHECK(fcntl(kept, F_GETFD) >= 0); // one registration left: still open
    CHECK(count_open_fds() == with_segment + 1);
    seg->release_peer_fd();
    CHECK(count_open_fds() == with_segment); // none: closed
    // A release too many (never made by a channel) closes nothing else and counts nothing.
    seg->release_peer_fd();
    CHECK(count_open_fds() == with_segment);
    // Registered again after that: a fresh fd, kept until its release.
    const int again = seg->acquire_peer_fd();
    CHECK((fcntl(again, F_GETFL) & O_ACCMODE) == O_RDONLY);
    CHECK(count_open_fds() == with_segment + 1);
    seg->release_peer_fd();
    CHECK(count_open_fds() == with_segment);

    // Sent on 8 channels: one fd in this process for all of them, gone with the last channel.
    {
        std::vector<std::pair<Ref<Channel>, Ref<Channel>>> pairs;
        for (int i = 0; i < 8; ++i)
            pairs.push_back(Channel::pair());
        const int with_pairs = count_open_fds();
        const Buffer buf = whole(seg);
        for (auto &[a, b] : pairs)
            a->send(buf, 1'000'000'000);
        CHECK(count_open_fds() == with_pairs + 1);
        for (auto &[a, b] : pairs) {
            CHECK(a->stats().segments_registered == 1);
            const Buffer got = b->recv(1'000'000'000);
            CHECK(got.segment().readonly());
        }
        // Each pair, with the receiver's copy of the segment, costs the same; the last one
        // also closes the shared fd.
        const int with_eight = count_open_fds();
        pairs.resize(1);
        const int with_one = count_open_fds();
        const int per_pair = (with_eight - with_one) / 7;
        CHECK(with_eight - with_one == 7 * per_pair);
        pairs.clear();
        CHECK(with_one - count_open_fds() == per_pair + 1);
    }
    CHECK(count_open_fds() == with_segment);

    auto heap_seg = px::heap::create(4096);
    CHECK_THROWS_AS(heap_seg->acquire_peer_fd(), px::Error);
    CHECK(count_open_fds() == with_segment); // a heap segment: nothing opened
}

TEST_CASE("threads registering a new segment at once share one fd, closed after") {
    for (int round = 0; round < 50; ++round) {
        Ref<Segment> seg = px::shm::create("peer-fd-race", 4096);
        const int before = count_open_fds();
        std::atomic<bool> go{false};
        std::vector<int> got(4, -1);
        std::vector<std::thread> threads;
        for (size_t i = 0; i < got.size(); ++i)
            threads.emplace_back([&, i] {
                while (!go.load())
                    std::this_thread::yield();
                got[i] = seg->acquire_peer_fd();
            });
        go = true;
        for (auto &t : threads)
            t.join();
        // One fd, opened by whichever came first, shared by all.
        CHECK(std::count(got.begin(), got.end(), got[0]) == 4);
        CHECK(count_open_fds() == before + 1);
        for (size_t i = 0; i < got.size(); ++i)
            seg->release_peer_fd();
        CHECK(count_open_fds() == before);
    }
}

TEST_CASE("an end's first send finds a peer that exited after the handshake: closed") {
    Signal go;
    ChildPeer p = child_peer(go);
    go.post();
    REQUIRE(wait_child(p.pid) == 0);
    Ref<Segment> seg = px::shm::create("first-send", 4096);
    const Buffer buf = whole(seg);
    // The registration's sendmsg meets the hang-up: no time-based check is needed for it.
    try {
        p.end->send(buf, 0);
        FAIL("a send to an exited peer went out");
    } catch (const px::Error &e) {
        CHECK(e.status() == px::Status::closed);
    }
    CHECK(eventually([&] { return p.end->peer_gone(); }));
}

TEST_CASE("send_unless_closed: false for a departed peer, without throwing; true while it lives") {
    Signal go;
    ChildPeer p = child_peer(go);
    Ref<Segment> seg = px::shm::create("unless-closed", 4096);
    const Buffer buf = whole(seg);
    CHECK(p.end->send_unless_closed(buf, 0));
    go.post();
    REQUIRE(wait_child(p.pid) == 0);
    // The segment is registered already: only the peer checks can find the hang-up, at most a
    // millisecond apart; meanwhile a record may still go into the ring.
    CHECK(eventually([&] { return !p.end->send_unless_closed(buf, 0); }));
    CHECK_NOTHROW((void)p.end->send_unless_closed(buf, 0));
    CHECK_FALSE(p.end->send_unless_closed(buf, 0));
    // send says the same as an exception, naming what happened.
    try {
        p.end->send(buf, 0);
        FAIL("a send to an exited peer went out");
    } catch (const px::Error &e) {
        CHECK(e.status() == px::Status::closed);
        CHECK(std::string(e.what()).find("peer") != std::string::npos);
    }
}

TEST_CASE("register_ahead: the segment goes to the peer before any record, once; the send after "
          "it passes no fd; the peer reads the frame as usual") {
    auto [a, b] = Channel::pair();
    Ref<Segment> seg = px::shm::create("ahead", 4096);
    seg->mutable_data()[7] = std::byte{42};
    CHECK(a->register_ahead(seg));
    CHECK(a->stats().segments_registered == 1);
    CHECK_FALSE(a->register_ahead(seg)); // it has it: nothing sent
    CHECK(a->stats().segments_registered == 1);
    // Nothing for the receiver to see yet: a registration alone is not a record.
    CHECK_FALSE(b->try_recv().has_value());
    a->send(whole(seg), 0);
    CHECK(a->stats().segments_registered == 1); // the send used the registration made ahead
    const Buffer got = b->recv(1'000'000'000);
    CHECK(got.size() == 4096);
    CHECK(got.data()[7] == std::byte{42});
}

TEST_CASE("register_ahead refuses what send refuses, and finds a departed peer: closed") {
    auto [a, b] = Channel::pair();
    CHECK_THROWS_AS(a->register_ahead(px::heap::create(4096)), px::Error);
    CHECK(a->stats().segments_registered == 0);
    b = nullptr; // hangs up
    try {
        a->register_ahead(px::shm::create("ahead-gone", 4096));
        FAIL("a registration to a closed peer went out");
    } catch (const px::Error &e) {
        CHECK(e.status() == px::Status::closed);
    }
}
