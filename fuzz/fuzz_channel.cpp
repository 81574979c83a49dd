// SPDX-License-Identifier: Apache-2.0 OR MIT
// libFuzzer target: an honest channel end (px::ipc::Channel, as the C API uses it) against a
// peer whose every move comes from the input: the handshake (hello bytes, which fds, of what
// kind), then any sequence of segment registrations with fds, raw socket records, data (typed
// or not), format and unregister records and raw entries in its data ring, lies about the
// ring's index, and receives by the honest end. This is the descriptor decoder and the received-fd
// validation in their context: the channel's state (segment table, cap, ring, drop after a protocol
// error).
//
// Properties, beyond the sanitizers' (and LeakSanitizer's):
//  - the handshake either succeeds or is refused with protocol / permission / closed;
//  - recv answers only OK, would_block, protocol or closed; after a protocol error the channel
//    stays dropped (protocol forever);
//  - a received buffer lies inside its segment, which is shared or huge-page memory mapped
//    read-only; every byte of it can be read (no SIGBUS); its metadata is valid; its format,
//    if any, passes validate_format against its length (every element inside the buffer);
//  - when everything is released, no fd is left open.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz_support.hpp"

#include "core/error.hpp"
#include "core/format.hpp"
#include "core/ipc/channel.hpp"
#include "core/ipc/fd_passing.hpp"
#include "core/ipc/ring.hpp"
#include "core/ipc/wire.hpp"

namespace ipc = px::ipc;
namespace wire = px::ipc::wire;

const char *const px_fuzz::target_name = "fuzz_channel";

namespace {

using px_fuzz::broken;
using px_fuzz::check;
using px_fuzz::FdMask;

int memfd(size_t size, bool sealed) {
    int fd = ::memfd_create("fuzz-peer", MFD_CLOEXEC | (sealed ? MFD_ALLOW_SEALING : 0));
    if (fd < 0)
        return -1;
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0 ||
        (sealed && ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0)) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Fds the input attaches to a message (owned by the caller).
struct Fds {
    std::vector<int> fds;
    ~Fds() {
        for (int fd : fds)
            if (fd >= 0)
                ::close(fd);
    }
    void add(int fd) {
        if (fd >= 0)
            fds.push_back(fd);
    }
};

// One fd of a kind the input picks: the memory a segment claims to be, or something else.
int some_fd(FuzzedDataProvider &in, size_t size, int own_cb_fd) {
    switch (in.ConsumeIntegralInRange<int>(0, 6)) {
    case 0:
    case 1:
        return memfd(size, true);
    case 2:
        return memfd(size, false);
    case 3: {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0)
            return -1;
        ::close(p[1]);
        return p[0];
    }
    case 4: {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
            return -1;
        ::close(sv[1]);
        return sv[0];
    }
    case 5:
        return ::fcntl(own_cb_fd, F_DUPFD_CLOEXEC, 0); // our control block, as a segment
    default:
        return ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
}

bool send_raw(int sock, const void *p, size_t n, const std::vector<int> &fds) {
    if (fds.size() > ipc::max_fds_per_message) { // the library's sender refuses more: go raw
        iovec iov{const_cast<void *>(p), n};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
        return ::sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) == static_cast<ssize_t>(n);
    }
    try {
        ipc::send_message(sock, p, n, fds.data(), fds.size());
        return true;
    } catch (const px::Error &) {
        return false; // the honest end hung up or its queue is full
    }
}

struct Peer {
    int honest_fd = -1, evil = -1, return_in = -1, return_out = -1;
    px::Ref<px::Segment> own_cb;
    px::FdGuard own_cb_fd; // the memfd behind own_cb, for the hello
    ipc::RingProducer out;
    ~Peer() {
        for (int fd : {honest_fd, evil, return_in, return_out})
            if (fd >= 0)
                ::close(fd);
    }
};

// Our hello, shaped by the input. False if the pieces could not be made.
bool greet(Peer &p, FuzzedDataProvider &in) {
    int sv[2], rp[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return false;
    p.honest_fd = sv[0];
    p.evil = sv[1];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rp) != 0)
        return false;
    p.return_in = rp[0];
    p.return_out = rp[1];
    {
        ipc::NewControlBlock made = ipc::create_control_block();
        p.own_cb = std::move(made.block);
        p.own_cb_fd = std::move(made.fd);
    }
    auto *cb = ipc::control_of(*p.own_cb);
    p.out = ipc::RingProducer(&cb->data_tail, &cb->data_head, ipc::data_ring_entries);
    wire::Hello hello;
    hello.pid = static_cast<uint64_t>(::getpid());
    wire::Bytes bytes = wire::encode(hello);
    Fds attach;
    int variant = in.ConsumeIntegralInRange<int>(0, 7);
    if (variant == 1) { // any bytes for a hello
        std::vector<uint8_t> raw = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange(0, 40));
        bytes.size = raw.size();
        if (!raw.empty())
            std::memcpy(bytes.data, raw.data(), raw.size());
    }
    if (variant == 2) { // any fds for the hello
        size_t n = in.ConsumeIntegralInRange<size_t>(0, 3);
        for (size_t i = 0; i < n; ++i) {
            size_t size =
                in.ConsumeBool() ? sizeof(ipc::ControlBlock) : in.ConsumeIntegral<uint16_t>();
            attach.add(some_fd(in, size ? size : 1, p.own_cb_fd.fd));
        }
    } else {
        attach.add(::fcntl(p.return_out, F_DUPFD_CLOEXEC, 0));
        attach.add(::fcntl(p.own_cb_fd.fd, F_DUPFD_CLOEXEC, 0));
    }
    if (variant == 3) // a control block with a bad magic
        cb->magic = in.ConsumeIntegral<uint64_t>();
    return send_raw(p.evil, bytes.data, bytes.size, attach.fds);
}

// A slot in our own data ring; -1 when it is full, or when our producer index no longer makes
// sense to the honest end's head (after we lied about the tail).
long reserve(ipc::RingProducer &out) {
    try {
        return out.reserve();
    } catch (const px::Error &) {
        return -1;
    }
}

void check_buffer(const px::Buffer &b) {
    const px::Segment &seg = b.segment();
    check(seg.readonly(), "a received segment is writable");
    check(seg.memory_type() == px::MemoryType::shared ||
              seg.memory_type() == px::MemoryType::huge_pages,
          "a received segment is neither shared nor huge-page memory");
    check(b.offset() <= seg.size() && b.size() <= seg.size() - b.offset(),
          "a received buffer lies outside its segment");
    check(b.data() == seg.data() + b.offset(), "a received buffer points elsewhere");
    check(b.mutable_data() == nullptr, "a received buffer is writable");
    check(b.metadata().user_len <= px::metadata_user_max, "received metadata user_len > 64");
    if (const px::Format *f = b.format()) {
        try {
            px::validate_format(*f, b.size(), px::Status::invalid);
        } catch (const px::Error &) {
            broken("a received buffer's format does not fit it");
        }
    }
    volatile unsigned sum = 0;
    for (size_t i = 0; i < b.size(); i += 512)
        sum = sum + static_cast<unsigned>(b.data()[i]);
    if (b.size())
        sum = sum + static_cast<unsigned>(b.data()[b.size() - 1]);
}

void run(FuzzedDataProvider &in) {
    Peer p;
    if (!greet(p, in))
        return;
    px::Ref<ipc::Channel> ch;
    try {
        ch = ipc::Channel::from_fd(p.honest_fd, 0); // our hello is already waiting
        p.honest_fd = -1;
    } catch (const px::Error &e) {
        p.honest_fd = -1; // from_fd closes it on failure
        auto s = e.status();
        check(s == px::Status::protocol || s == px::Status::permission || s == px::Status::closed,
              "the handshake was refused with an unexpected status");
        return;
    }
    { // The honest hello: take its fds (we do not need its control block to misbehave).
        uint8_t buf[wire::max_record_size];
        try {
            ipc::Received r = ipc::recv_message(p.evil, buf, sizeof buf, 2, true);
            ipc::close_all(r.fds);
        } catch (const px::Error &) {
            broken("the honest end's hello is malformed");
        }
    }
    auto *cb = ipc::control_of(*p.own_cb);
    std::vector<px::Buffer> held;
    bool dropped = false;
    for (int op = 0; op < 48 && in.remaining_bytes() > 0; ++op) {
        switch (in.ConsumeIntegralInRange<int>(0, 9)) {
        case 0: { // a segment registration, with fds of the input's choosing
            wire::SegmentInfo info;
            info.segment_id = in.ConsumeIntegralInRange<uint32_t>(0, 7);
            size_t real = 1 + in.ConsumeIntegralInRange<size_t>(0, 16384);
            info.size = in.ConsumeBool() ? real : in.ConsumeIntegral<uint64_t>();
            info.page_size = 4096;
            info.memory_type = in.ConsumeBool() ? 1 : in.ConsumeIntegralInRange<uint32_t>(0, 4);
            Fds attach;
            size_t n = in.ConsumeIntegralInRange<size_t>(0, 4) == 0
                           ? in.ConsumeIntegralInRange<size_t>(0, 9)
                           : 1;
            for (size_t i = 0; i < n; ++i)
                attach.add(some_fd(in, real, p.own_cb_fd.fd));
            wire::Bytes bytes = wire::encode(info);
            send_raw(p.evil, bytes.data, bytes.size, attach.fds);
            break;
        }
        case 1: { // any bytes on the socket, maybe with an fd
            std::vector<uint8_t> raw =
                in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 600));
            Fds attach;
            if (in.ConsumeBool())
                attach.add(memfd(4096, true));
            send_raw(p.evil, raw.data(), raw.size(), attach.fds);
            break;
        }
        case 2:
        case 3: { // a data record in the ring
            wire::Data d;
            d.segment_id = in.ConsumeIntegralInRange<uint32_t>(0, 7);
            d.offset = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint64_t>(0, 20000)
                                        : in.ConsumeIntegral<uint64_t>();
            d.len = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint64_t>(0, 20000)
                                     : in.ConsumeIntegral<uint64_t>();
            d.token = in.ConsumeIntegral<uint8_t>();
            d.meta.sequence = in.ConsumeIntegral<uint64_t>();
            d.meta.user_len = in.ConsumeIntegralInRange<uint32_t>(0, 70);
            d.typed = in.ConsumeBool();
            wire::Bytes bytes;
            try {
                bytes = wire::encode(d);
            } catch (const px::Error &) {
                break;
            }
            long slot = reserve(p.out);
            if (slot < 0)
                break;
            uint32_t len = static_cast<uint32_t>(bytes.size);
            std::memcpy(cb->data_entries[slot], &len, sizeof len);
            std::memcpy(cb->data_entries[slot] + sizeof len, bytes.data, bytes.size);
            p.out.publish();
            break;
        }
        case 4: { // an unregister record, or any entry at all, in the ring
            long slot = reserve(p.out);
            if (slot < 0)
                break;
            if (in.ConsumeBool()) {
                wire::Bytes bytes =
                    wire::encode(wire::Unregister{in.ConsumeIntegralInRange<uint32_t>(0, 7)});
                uint32_t len = static_cast<uint32_t>(bytes.size);
                std::memcpy(cb->data_entries[slot], &len, sizeof len);
                std::memcpy(cb->data_entries[slot] + sizeof len, bytes.data, bytes.size);
            } else {
                uint32_t len = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, 200)
                                                : in.ConsumeIntegral<uint32_t>();
                std::vector<uint8_t> raw = in.ConsumeBytes<uint8_t>(ipc::data_entry_size - 4);
                std::memcpy(cb->data_entries[slot], &len, sizeof len);
                if (!raw.empty())
                    std::memcpy(cb->data_entries[slot] + sizeof len, raw.data(), raw.size());
            }
            p.out.publish();
            break;
        }
        case 9: { // a format record in the ring: any fields, mostly near the valid ones
            px::Format f;
            f.dtype = in.ConsumeIntegralInRange<uint32_t>(0, 14);
            f.ndim = in.ConsumeIntegralInRange<uint32_t>(0, 10);
            if (in.ConsumeBool())
                f.fourcc = in.ConsumeIntegral<uint32_t>();
            if (in.ConsumeIntegralInRange<int>(0, 7) == 0)
                f.flags = in.ConsumeIntegral<uint32_t>();
            const bool strided = in.ConsumeBool();
            for (uint32_t i = 0; i < px::format_max_dims; ++i) {
                const bool used = i < f.ndim;
                if (!used && in.ConsumeIntegralInRange<int>(0, 15) != 0)
                    continue; // beyond ndim: mostly zero, as it must be
                f.shape[i] = in.ConsumeBool() ? in.ConsumeIntegralInRange<int64_t>(0, 64)
                                              : in.ConsumeIntegral<int64_t>();
                if (strided)
                    f.strides[i] = in.ConsumeBool() ? 4 * in.ConsumeIntegralInRange<int64_t>(0, 512)
                                                    : in.ConsumeIntegral<int64_t>();
            }
            long slot = reserve(p.out);
            if (slot < 0)
                break;
            wire::Bytes bytes = wire::encode(f);
            uint32_t len = static_cast<uint32_t>(bytes.size);
            std::memcpy(cb->data_entries[slot], &len, sizeof len);
            std::memcpy(cb->data_entries[slot] + sizeof len, bytes.data, bytes.size);
            p.out.publish();
            break;
        }
        case 5: // a lie about the ring's index
            cb->data_tail.store(in.ConsumeIntegral<uint64_t>());
            break;
        case 6:
        case 7: { // the honest end receives
            try {
                px::Buffer b = ch->recv(0);
                check(!dropped, "a dropped channel delivered a buffer");
                check_buffer(b);
                if (held.size() < 4)
                    held.push_back(std::move(b));
            } catch (const px::Error &e) {
                auto s = e.status();
                check(s == px::Status::would_block || s == px::Status::protocol ||
                          s == px::Status::closed,
                      "recv failed with an unexpected status");
                check(!dropped || s == px::Status::protocol, "a dropped channel came back");
                dropped = dropped || s == px::Status::protocol;
            }
            break;
        }
        default: // let go of what is held
            if (!held.empty())
                held.erase(held.begin());
            break;
        }
    }
    held.clear();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzedDataProvider in(data, size);
    const FdMask before = FdMask::now();
    try {
        run(in);
    } catch (const px::Error &e) {
        std::fprintf(stderr, "fuzz_channel: unexpected error: %s\n", e.what());
        broken("a px::Error escaped where none was expected");
    }
    check(FdMask::now().same_as(before), "an fd leaked (or one was closed that was not ours)");
    return 0;
}
