// SPDX-License-Identifier: Apache-2.0 OR MIT
// libFuzzer target: an honest stream subscriber (px::stream::Subscriber, as the C API uses it)
// against a publisher forged from the input. The forged publisher listens on a socket path,
// answers the subscriber's handshake honestly, then puts what the input says in its data ring:
// data records of every stream kind (welcome, description, refusal, frames) with any stream
// numbers, typed or not, format records, unregister records and raw entries, after segment
// registrations whose memory holds description text; and it stays or hangs up. The subscriber
// joins and receives until it is told no. This is the stream's record kinds in their context:
// join, descriptions in force, numbering, drop after a protocol error (issue 13 had no target).
//
// Properties, beyond the sanitizers' (and LeakSanitizer's):
//  - joining succeeds, or is refused with protocol / busy / closed, or runs out of time
//    (timeout);
//  - recv answers only OK, would_block, protocol or closed; after a protocol error it answers
//    protocol for ever;
//  - a received frame lies inside its read-only segment, every byte readable, its format (if
//    any) fits it; the subscriber counts exactly the frames it returned; its description is at
//    most 64 KiB;
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
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz_support.hpp"

#include "core/error.hpp"
#include "core/format.hpp"
#include "core/ipc/fd_passing.hpp"
#include "core/ipc/handshake.hpp"
#include "core/ipc/ring.hpp"
#include "core/ipc/wire.hpp"
#include "core/stream/publisher.hpp" // max_description_size
#include "core/stream/subscriber.hpp"

namespace ipc = px::ipc;
namespace wire = px::ipc::wire;

const char *const px_fuzz::target_name = "fuzz_subscriber";

namespace {

using px_fuzz::broken;
using px_fuzz::check;
using px_fuzz::FdMask;

constexpr int64_t ms_ns = 1'000'000;

// One listening socket for the whole run (made before the first input's fd census).
struct Listener {
    std::string path;
    int fd = -1;
    Listener() {
        char dir[] = "/tmp/px-fuzz-subscriber.XXXXXX";
        if (!::mkdtemp(dir))
            broken("mkdtemp failed");
        path = std::string(dir) + "/stream";
        fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
            ::listen(fd, 4) != 0)
            broken("cannot listen where the forged publisher should be");
        dir_path = dir;
    }
    ~Listener() {
        ::close(fd);
        ::unlink(path.c_str());
        ::rmdir(dir_path.c_str());
    }
    // Takes out the connections an earlier input left waiting (a subscriber that tried again
    // after its forged publisher hung up, when nobody accepted any more). Left there, the next
    // input's forger would accept that one instead of its own subscriber, and so on for every
    // input after it: no join would succeed for the rest of the run (the run's coverage was
    // 383 or ~750 from one run to the next, the same seeds).
    void drain() const {
        while (ipc::wait_readable(fd, 0)) {
            const int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0)
                break;
            ::close(c);
        }
    }
    std::string dir_path;
};

// What the forged publisher does, decided from the input before anything runs (the input is
// read by one thread only).
struct Move {
    enum Kind { segment, data, format, unregister, raw } kind;
    wire::Bytes record;        // segment: its registration; others: the ring entry's record
    uint32_t raw_len = 0;      // raw: the length word, whatever the bytes
    std::vector<uint8_t> text; // segment: the memory's bytes
};

px::Format some_format(FuzzedDataProvider &in) {
    px::Format f;
    f.dtype = in.ConsumeIntegralInRange<uint32_t>(0, 13);
    f.ndim = in.ConsumeIntegralInRange<uint32_t>(0, 9);
    for (uint32_t i = 0; i < f.ndim && i < px::format_max_dims; ++i)
        f.shape[i] = in.ConsumeBool() ? in.ConsumeIntegralInRange<int64_t>(0, 64)
                                      : in.ConsumeIntegral<int64_t>();
    if (in.ConsumeBool() && f.ndim > 0 && f.ndim <= px::format_max_dims)
        f.strides[0] = in.ConsumeIntegral<int64_t>();
    return f;
}

Move some_move(FuzzedDataProvider &in) {
    Move m;
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
    case 0: { // a segment of description text (or anything) for records to point into
        m.kind = Move::segment;
        wire::SegmentInfo info;
        info.segment_id = in.ConsumeIntegralInRange<uint32_t>(1, 3);
        info.memory_type = 1;
        info.page_size = 4096;
        const size_t size = in.ConsumeBool() ? 1 + in.ConsumeIntegralInRange<size_t>(0, 256)
                                             : px::stream::max_description_size + 1;
        info.size = size;
        m.text = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 64));
        m.text.resize(size);
        m.record = wire::encode(info);
        return m;
    }
    case 1:
    case 2:
    case 3: { // a stream's record: welcome, description, refusal or frame
        m.kind = Move::data;
        wire::Data d;
        d.segment_id = in.ConsumeIntegralInRange<uint32_t>(0, 3);
        d.len = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint64_t>(0, 300)
                                 : in.ConsumeIntegral<uint64_t>();
        d.tag.kind = static_cast<wire::DataKind>(
            in.ConsumeIntegralInRange<uint32_t>(0, wire::max_data_kind));
        d.tag.seq = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint64_t>(0, 20)
                                     : in.ConsumeIntegral<uint64_t>();
        d.typed = in.ConsumeBool();
        m.record = wire::encode(d);
        return m;
    }
    case 4:
        m.kind = Move::format;
        m.record = wire::encode(some_format(in));
        return m;
    case 5:
        m.kind = Move::unregister;
        m.record = wire::encode(wire::Unregister{in.ConsumeIntegralInRange<uint32_t>(0, 3)});
        return m;
    default: { // any entry at all
        m.kind = Move::raw;
        m.raw_len = in.ConsumeIntegralInRange<uint32_t>(0, 200);
        std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(ipc::data_entry_size - 4);
        if (!bytes.empty()) // an empty vector's data() may be null
            std::memcpy(m.record.data, bytes.data(), bytes.size());
        m.record.size = bytes.size();
        return m;
    }
    }
}

int sealed_memfd(const std::vector<uint8_t> &bytes) {
    int fd = ::memfd_create("fuzz-publisher", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    if (::ftruncate(fd, static_cast<off_t>(bytes.size())) != 0 ||
        ::pwrite(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size()) ||
        ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// The forged publisher's end of one connection.
struct Publisher {
    int sock = -1, return_in = -1, return_out = -1;
    px::Ref<px::Segment> cb;
    ipc::RingProducer out;
    ~Publisher() {
        for (int fd : {sock, return_in, return_out})
            if (fd >= 0)
                ::close(fd);
    }
    void hang_up() {
        ::close(sock);
        sock = -1;
    }

    // Accepts the subscriber and answers its handshake as a library publisher would. False
    // when it did not come or did not greet.
    bool greet(int listener) {
        if (!ipc::wait_readable(listener, 2000 * ms_ns))
            return false;
        sock = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        int rp[2];
        if (sock < 0 || ::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rp) != 0)
            return false;
        return_in = rp[0];
        return_out = rp[1];
        ipc::NewControlBlock made = ipc::create_control_block();
        cb = std::move(made.block);
        auto *block = ipc::control_of(*cb);
        out = ipc::RingProducer(&block->data_tail, &block->data_head, ipc::data_ring_entries);
        wire::Hello hello;
        hello.pid = static_cast<uint64_t>(::getpid());
        const wire::Bytes bytes = wire::encode(hello);
        const int fds[2] = {return_out, made.fd.fd};
        uint8_t buf[wire::max_record_size];
        try {
            ipc::send_message(sock, bytes.data, bytes.size, fds, 2);
            if (!ipc::wait_readable(sock, 2000 * ms_ns))
                return false;
            ipc::Received r = ipc::recv_message(sock, buf, sizeof buf, 2, true);
            ipc::close_all(r.fds); // its return socket and ring: not needed to lie
        } catch (const px::Error &) {
            return false;
        }
        return true;
    }

    void entry(const uint8_t *bytes, size_t n, uint32_t len) {
        long slot;
        try {
            slot = out.reserve();
        } catch (const px::Error &) {
            return;
        }
        if (slot < 0)
            return; // full: the subscriber does not read before the script ends
        uint8_t *e = ipc::control_of(*cb)->data_entries[slot];
        std::memcpy(e, &len, sizeof len);
        std::memcpy(e + sizeof len, bytes, n);
        out.publish();
    }

    void play(const Move &m) {
        if (m.kind == Move::segment) {
            int fd = sealed_memfd(m.text);
            if (fd < 0)
                return;
            try {
                ipc::send_message(sock, m.record.data, m.record.size, &fd, 1);
            } catch (const px::Error &) {
                // The subscriber hung up.
            }
            ::close(fd);
            return;
        }
        const uint32_t len = m.kind == Move::raw ? m.raw_len : static_cast<uint32_t>(m.record.size);
        entry(m.record.data, m.record.size, len);
    }
};

void check_frame(const px::Buffer &b) {
    const px::Segment &seg = b.segment();
    check(seg.readonly() && b.mutable_data() == nullptr, "a received frame is writable");
    check(b.offset() <= seg.size() && b.size() <= seg.size() - b.offset(),
          "a received frame lies outside its segment");
    volatile unsigned sum = 0;
    for (size_t i = 0; i < b.size(); i += 512)
        sum = sum + static_cast<unsigned>(b.data()[i]);
    if (b.size())
        sum = sum + static_cast<unsigned>(b.data()[b.size() - 1]);
    if (const px::Format *f = b.format()) {
        try {
            px::validate_format(*f, b.size(), px::Status::invalid);
        } catch (const px::Error &) {
            broken("a received frame's format does not fit it");
        }
    }
}

void receive_all(px::stream::Subscriber &sub) {
    uint64_t frames = 0;
    bool dropped = false;
    for (int n = 0; n < 300; ++n) {
        try {
            std::optional<px::Buffer> b = sub.receive(0);
            check(!dropped, "a dropped subscriber delivered a frame");
            if (!b)
                return;
            check_frame(*b);
            ++frames;
        } catch (const px::Error &e) {
            const px::Status s = e.status();
            check(s == px::Status::protocol || s == px::Status::closed,
                  "recv failed with an unexpected status");
            check(!dropped || s == px::Status::protocol, "a dropped subscriber came back");
            if (s == px::Status::closed || dropped)
                break; // the end, or a drop confirmed by a second look
            dropped = true;
        }
        check(sub.description()->size() <= px::stream::max_description_size,
              "a description longer than 64 KiB was taken");
    }
    check(sub.stats().received == frames, "the subscriber miscounted its frames");
}

void run(FuzzedDataProvider &in, const Listener &listener) {
    const bool hang_up = in.ConsumeBool();
    std::vector<Move> script;
    while (in.remaining_bytes() > 0 && script.size() < 64)
        script.push_back(some_move(in));
    Publisher pub;
    listener.drain();
    std::thread forger([&] {
        if (!pub.greet(listener.fd))
            return;
        for (const Move &m : script)
            pub.play(m);
        if (hang_up)
            pub.hang_up();
    });
    px::Ref<px::stream::Subscriber> sub;
    try {
        sub = px::stream::Subscriber::create(listener.path, 50 * ms_ns);
    } catch (const px::Error &e) {
        const px::Status s = e.status();
        // timeout: the join's time ran out (the handshake's included: a forged publisher
        // that stops answering costs the 50 ms, not a channel's 1 s).
        if (s != px::Status::protocol && s != px::Status::busy && s != px::Status::closed &&
            s != px::Status::timeout) {
            std::fprintf(stderr, "fuzz_subscriber: %s\n", e.what());
            broken("joining failed with an unexpected status");
        }
    }
    forger.join(); // every record is out before the subscriber looks for them
    if (sub)
        receive_all(*sub);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const Listener listener;
    FuzzedDataProvider in(data, size);
    const FdMask before = FdMask::now();
    try {
        run(in, listener);
    } catch (const px::Error &e) {
        std::fprintf(stderr, "fuzz_subscriber: unexpected error: %s\n", e.what());
        broken("a px::Error escaped where none was expected");
    }
    check(FdMask::now().same_as(before), "an fd leaked (or one was closed that was not ours)");
    return 0;
}
