// SPDX-License-Identifier: Apache-2.0 OR MIT
// libFuzzer target: validation of a file descriptor received from a peer. The input chooses
// what the "peer" hands over — a memfd with any seals, size and access mode, a regular file, a
// pipe, a socket, an eventfd, a device, a directory, an O_PATH fd, a closed or negative number —
// the size it claims, the flags the receiver maps it with, and whether it arrives directly or
// through a socket (SCM_RIGHTS, with any number of fds and any payload length) as
// px::ipc::recv_message takes it. Then shm::from_fd decides.
//
// Properties, beyond the sanitizers':
//  - refusals are px::Error with invalid / permission / io / nomem (protocol for recv_message),
//    nothing else escapes;
//  - an accepted fd is what was promised: a regular file at least as large as claimed, sealed
//    against shrinking unless PX_MAP_ALLOW_UNSEALED, mapped read-only iff asked, writable only
//    through an O_RDWR description without write seals; every page of it can be read (no
//    SIGBUS), and nobody can shrink it when it is sealed;
//  - received fds are close-on-exec, at most max_fds of them are kept;
//  - no fd is leaked, whatever happened.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz_support.hpp"

#include "core/error.hpp"
#include "core/ipc/fd_passing.hpp"
#include "core/shared_memory_segment.hpp"

namespace shm = px::shm;

const char *const px_fuzz::target_name = "fuzz_received_fd";

namespace {

using px_fuzz::broken;
using px_fuzz::check;
using px_fuzz::FdMask;

int memfd(size_t size, unsigned flags, unsigned seal_mask) {
    int fd = ::memfd_create("fuzz", MFD_CLOEXEC | flags);
    if (fd < 0)
        return -1;
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
        ::close(fd);
        return -1;
    }
    static const int seal_bits[] = {F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE,
                                    F_SEAL_FUTURE_WRITE, F_SEAL_SEAL};
    int seals = 0;
    for (unsigned i = 0; i < 5; ++i)
        if (seal_mask & (1u << i))
            seals |= seal_bits[i];
    if (seals)
        (void)::fcntl(fd, F_ADD_SEALS, seals); // may be refused (no MFD_ALLOW_SEALING): fine
    return fd;
}

int reopen(int fd, int how) {
    std::string path = "/proc/self/fd/" + std::to_string(fd);
    int out = ::open(path.c_str(), how | O_CLOEXEC);
    ::close(fd);
    return out;
}

// The fd the "peer" hands over (owned by the caller; may be -1 or not open at all).
int make_fd(FuzzedDataProvider &in, size_t size) {
    unsigned seals = in.ConsumeIntegral<uint8_t>();
    switch (in.ConsumeIntegralInRange<int>(0, 13)) {
    case 0: // what a libparallax sender makes
        return memfd(size, MFD_ALLOW_SEALING, seals);
    case 1: // not sealable at all
        return memfd(size, 0, 0);
    case 2: // what a channel actually sends: a read-only description
        return reopen(memfd(size, MFD_ALLOW_SEALING, seals), O_RDONLY);
    case 3: { // read-write reopen through /proc
        int fd = memfd(size, MFD_ALLOW_SEALING, seals);
        return fd < 0 ? -1 : reopen(fd, O_RDWR);
    }
    case 4: { // a regular file
        int fd = ::open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0 && ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
            ::close(fd);
            return -1;
        }
        return fd;
    }
    case 5: {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0)
            return -1;
        ::close(p[1]);
        return p[0];
    }
    case 6: {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
            return -1;
        ::close(sv[1]);
        return sv[0];
    }
    case 7:
        return ::eventfd(0, EFD_CLOEXEC);
    case 8:
        return ::open("/dev/null", O_RDWR | O_CLOEXEC);
    case 9:
        return ::open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    case 10: { // O_PATH: no access at all
        int fd = memfd(size, MFD_ALLOW_SEALING, seals);
        return fd < 0 ? -1 : reopen(fd, O_PATH);
    }
    case 11: { // a number that is not (any more) an open fd
        int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        ::close(fd);
        return fd;
    }
    case 12:
        return -1 - in.ConsumeIntegralInRange<int>(0, 1000);
    default: { // huge pages (often none reserved here: then mmap fails, it must not crash)
        int fd = memfd(size, MFD_ALLOW_SEALING | MFD_HUGETLB, seals);
        return fd >= 0 ? fd : memfd(size, MFD_ALLOW_SEALING, seals);
    }
    }
}

bool is_open(int fd) { return fd >= 0 && ::fcntl(fd, F_GETFD) >= 0; }

// Sends `fd` (plus `extra` more fds) with `payload` bytes over a fresh socketpair and takes it
// as the channel does (one fd allowed). Returns the received fd, -1 if none was kept.
int through_socket(int fd, FuzzedDataProvider &in) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    size_t extra = in.ConsumeIntegralInRange<size_t>(0, 6);
    size_t payload = in.ConsumeIntegralInRange<size_t>(0, 200);
    const size_t cap = 64;
    std::vector<int> fds;
    if (is_open(fd))
        fds.push_back(fd);
    for (size_t i = 0; i < extra; ++i)
        fds.push_back(is_open(fd) ? fd : sv[0]); // the same file again, or a socket
    std::vector<uint8_t> bytes(payload, 0x5a);
    iovec iov{bytes.data(), bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control(CMSG_SPACE(sizeof(int) * (fds.empty() ? 1 : fds.size())));
    if (!fds.empty()) {
        msg.msg_control = control.data();
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    int got = -1;
    if (::sendmsg(sv[1], &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(payload)) {
        uint8_t buf[cap];
        try {
            px::ipc::Received r = px::ipc::recv_message(sv[0], buf, sizeof buf, 1, true);
            check(r.fds.size() <= 1, "recv_message kept more fds than allowed");
            check(fds.size() <= 1, "recv_message accepted more fds than allowed");
            check(payload <= cap, "recv_message accepted a truncated message");
            // The sender is still connected: nothing here is a hang-up, and an empty message
            // (no bytes, no fds) is a protocol error, never taken as one (issue 12, defect 4).
            // Fds with no bytes are the transport's to hand over; record decoders refuse them.
            check(!r.closed, "recv_message took a message from a live peer for a hang-up");
            check(payload > 0 || !r.fds.empty(), "recv_message accepted an empty message");
            if (!r.fds.empty()) {
                got = r.fds[0];
                int fl = ::fcntl(got, F_GETFD);
                check(fl >= 0 && (fl & FD_CLOEXEC), "a received fd is not close-on-exec");
            }
        } catch (const px::Error &e) {
            check(e.status() == px::Status::protocol,
                  "recv_message refused with a status other than protocol");
            check(fds.size() > 1 || payload > cap || (payload == 0 && fds.empty()),
                  "recv_message refused a fair message");
        }
    }
    ::close(sv[0]);
    ::close(sv[1]);
    return got;
}

void check_accepted(const px::Segment &seg, size_t claimed, uint32_t flags) {
    int fd = seg.ipc_fd();
    struct stat st {};
    check(::fstat(fd, &st) == 0 && S_ISREG(st.st_mode), "accepted something not a file");
    check(claimed > 0 && static_cast<uint64_t>(st.st_size) >= claimed,
          "accepted an fd smaller than claimed");
    check(seg.size() == claimed, "the segment is not the size claimed");
    int seals = ::fcntl(fd, F_GET_SEALS);
    bool sealed = seals >= 0 && (seals & F_SEAL_SHRINK);
    if (!(flags & shm::map_allow_unsealed))
        check(sealed, "accepted an fd that can shrink without PX_MAP_ALLOW_UNSEALED");
    bool readonly = flags & shm::map_readonly;
    check(seg.readonly() == readonly, "read-only differs from what was asked");
    check((seg.mutable_data() == nullptr) == readonly, "mutable_data disagrees with read-only");
    if (!readonly) {
        int acc = ::fcntl(fd, F_GETFL) & O_ACCMODE;
        check(acc == O_RDWR, "mapped writable through a description that is not O_RDWR");
        check(seals < 0 || !(seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)),
              "mapped writable despite a write seal");
    }
    // Every page can be read: this is where a SIGBUS would be.
    volatile unsigned sum = 0;
    const std::byte *p = seg.data();
    for (size_t i = 0; i < claimed; i += 4096)
        sum = sum + static_cast<unsigned>(p[i]);
    sum = sum + static_cast<unsigned>(p[claimed - 1]);
    std::byte last{};
    seg.read_into(claimed - 1, &last, 1);
    check(last == p[claimed - 1], "read_into disagrees with the mapping");
    if (!readonly) {
        seg.mutable_data()[claimed - 1] = std::byte{0x42};
        seg.read_into(claimed - 1, &last, 1);
        check(last == std::byte{0x42}, "read_into does not see a write through the mapping");
    }
    if (sealed)
        check(::ftruncate(fd, 0) != 0, "a sealed segment could be truncated");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzedDataProvider in(data, size);
    const FdMask before = FdMask::now();

    size_t file_size = in.ConsumeIntegralInRange<size_t>(0, 64 * 1024);
    int fd = make_fd(in, file_size);
    uint64_t claimed;
    switch (in.ConsumeIntegralInRange<int>(0, 2)) {
    case 0:
        claimed = file_size;
        break;
    case 1: // near the real size, either side
        claimed = file_size + in.ConsumeIntegralInRange<uint64_t>(0, 8192) - 4096;
        break;
    default:
        claimed = in.ConsumeIntegral<uint64_t>();
        break;
    }
    uint32_t flags = in.ConsumeBool() ? in.ConsumeIntegral<uint32_t>()
                                      : in.ConsumeIntegralInRange<uint32_t>(0, 3);
    int target = fd;
    if (in.ConsumeBool()) {
        target = through_socket(fd, in);
        if (fd >= 0)
            ::close(fd);
        fd = -1;
    }

    try {
        px::Ref<px::Segment> seg = shm::from_fd(target, static_cast<size_t>(claimed), flags);
        check(claimed <= SIZE_MAX, "accepted a size that does not fit");
        check((flags & ~3u) == 0, "accepted unknown flags");
        check_accepted(*seg, static_cast<size_t>(claimed), flags);
    } catch (const px::Error &e) {
        auto s = e.status();
        check(s == px::Status::invalid || s == px::Status::permission || s == px::Status::io ||
                  s == px::Status::nomem,
              "from_fd refused with an unexpected status");
    } catch (...) {
        broken("from_fd threw something other than px::Error");
    }
    if (fd >= 0)
        ::close(fd);
    if (target >= 0 && target != fd)
        ::close(target);
    check(FdMask::now().same_as(before), "an fd leaked (or one was closed that was not ours)");
    return 0;
}
