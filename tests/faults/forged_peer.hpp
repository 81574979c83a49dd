// SPDX-License-Identifier: Apache-2.0 OR MIT
// A channel peer forged from the wire format (core/ipc/wire.hpp, ring.hpp), as a hostile process
// would build one: it greets properly, then sends whatever it likes. Unlike the forged peer of
// tests/ipc, the honest end may live in another process: the handshake is split so that the
// honest side can adopt `honest_fd` wherever it runs.
#pragma once

#include <cstring>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.hpp"
#include "core/ipc/fd_passing.hpp"
#include "core/ipc/handshake.hpp"
#include "core/ipc/ring.hpp"
#include "core/ipc/wire.hpp"

namespace px_fault {

namespace wire = px::ipc::wire;

struct ForgedPeer {
    int honest_fd = -1;        // for px_channel_from_fd on the honest side
    int evil = -1;             // our end of the main socket
    // The return socket both ends keep (see keeps_own_return_pair): before the handshake is
    // finished, evil_return_in is our end of the pair we offered; after, both name the one kept.
    int evil_return_in = -1;   // where the honest side's returns to us would arrive
    int return_to_honest = -1; // where we (claim to) return the honest side's slots
    ino_t offered_ino = 0;
    px::Ref<px::Segment> own_cb, honest_cb;
    px::FdGuard own_cb_fd; // the memfd behind own_cb, for the hello
    px::ipc::RingProducer out; // our data ring, which the honest end consumes

    // Our half of the handshake: the hello (with a return socket and a control block) is on the
    // wire before the honest side even starts.
    ForgedPeer() {
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
        honest_fd = sv[0];
        greet(sv[1]);
    }
    // The same on a socket connected otherwise (e.g. accepted from a stream's socket path: a
    // forged publisher); the honest end is whatever connected.
    explicit ForgedPeer(int connected) { greet(connected); }

    void greet(int connected) {
        int rp[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rp) == 0);
        evil = connected;
        evil_return_in = rp[0];
        {
            px::ipc::NewControlBlock made = px::ipc::create_control_block();
            own_cb = std::move(made.block);
            own_cb_fd = std::move(made.fd);
        }
        auto *cb = px::ipc::control_of(*own_cb);
        out = px::ipc::RingProducer(&cb->data_tail, &cb->data_head, px::ipc::data_ring_entries);
        wire::Hello hello;
        hello.pid = static_cast<uint64_t>(::getpid());
        auto bytes = wire::encode(hello);
        int fds[2] = {rp[1], own_cb_fd.fd};
        struct stat st {};
        REQUIRE(::fstat(rp[1], &st) == 0);
        offered_ino = st.st_ino;
        px::ipc::send_message(evil, bytes.data, bytes.size, fds, 2);
        ::close(rp[1]);
    }
    // The honest side took honest_fd (in this process, or in a child that inherited it).
    void honest_side_started() { honest_fd = -1; }
    void close_honest_fd_copy() {
        ::close(honest_fd);
        honest_fd = -1;
    }
    // The other half: the honest end's hello, and its control block mapped as any peer maps it.
    void finish_handshake() {
        REQUIRE(px::ipc::wait_readable(evil, 5'000'000'000));
        uint8_t buf[wire::max_record_size];
        auto r = px::ipc::recv_message(evil, buf, sizeof buf, 2, false);
        REQUIRE(r.fds.size() == 2);
        struct stat st {};
        REQUIRE(::fstat(r.fds[0], &st) == 0);
        if (px::ipc::keeps_own_return_pair(st.st_ino, offered_ino)) {
            return_to_honest = r.fds[0]; // the honest end keeps its pair: so do we
            ::close(evil_return_in);
            evil_return_in = r.fds[0];
        } else {
            return_to_honest = evil_return_in;
            ::close(r.fds[0]);
        }
        honest_cb = px::ipc::map_peer_control_block(r.fds[1]);
        ::close(r.fds[1]);
    }
    ~ForgedPeer() {
        if (return_to_honest == evil_return_in)
            return_to_honest = -1;
        for (int fd : {honest_fd, evil, evil_return_in, return_to_honest})
            if (fd >= 0)
                ::close(fd);
    }

    // A segment registration (a `segment` record on the socket) carrying `fds`. False when the
    // honest side has hung up.
    bool register_segment(uint32_t id, uint64_t size, const int *fds, size_t nfds) {
        wire::SegmentInfo info;
        info.segment_id = id;
        info.size = size;
        info.page_size = 4096;
        info.memory_type = 1; // PX_MEMORY_SHARED
        auto bytes = wire::encode(info);
        try {
            px::ipc::send_message(evil, bytes.data, bytes.size, fds, nfds);
            return true;
        } catch (const px::Error &) {
            return false;
        }
    }
    // A record in our data ring. False when the ring is full (the honest side stopped reading).
    bool push(const wire::Bytes &rec) {
        long slot = out.reserve();
        if (slot < 0)
            return false;
        uint8_t *e = px::ipc::control_of(*own_cb)->data_entries[slot];
        uint32_t len = static_cast<uint32_t>(rec.size);
        std::memcpy(e, &len, sizeof len);
        std::memcpy(e + sizeof len, rec.data, rec.size);
        out.publish();
        return true;
    }
    bool data(uint32_t id, uint64_t offset, uint64_t len, wire::StreamTag tag = {}) {
        wire::Data d;
        d.segment_id = id;
        d.offset = offset;
        d.len = len;
        d.tag = tag;
        return push(wire::encode(d));
    }
    bool unregister(uint32_t id) { return push(wire::encode(wire::Unregister{id})); }
};

// A memfd sealed like a real segment, as a hostile peer can make as many of as it likes.
inline int sealed_memfd(size_t size) {
    int fd = ::memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0 ||
        ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

} // namespace px_fault
