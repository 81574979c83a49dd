#include "core/ipc/channel.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <fcntl.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

#include "core/error.hpp"
#include "core/ipc/fd_passing.hpp"
#include "core/shared_memory_segment.hpp"

namespace px::ipc {

namespace {

using clock = std::chrono::steady_clock;

int64_t remaining_ns(clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - clock::now());
    return left.count() > 0 ? left.count() : 0;
}

struct FdGuard {
    int fd;
    ~FdGuard() {
        if (fd >= 0)
            ::close(fd);
    }
    int release() { return std::exchange(fd, -1); }
};

void check_seqpacket_unix(int fd) {
    int type = 0, domain = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
        if (errno == EBADF)
            fail(Status::invalid, "fd " + std::to_string(fd) + " is not an open file descriptor");
        if (errno == ENOTSOCK)
            fail(Status::invalid, "fd " + std::to_string(fd) + " is not a socket");
        fail_errno("getsockopt(SO_TYPE)", errno);
    }
    len = sizeof domain;
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
        fail_errno("getsockopt(SO_DOMAIN)", errno);
    if (domain != AF_UNIX || type != SOCK_SEQPACKET)
        fail(Status::invalid, "fd " + std::to_string(fd) +
                                  " is not an AF_UNIX SOCK_SEQPACKET socket");
}

std::pair<int, int> seqpacket_pair() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        fail_errno("socketpair(AF_UNIX, SOCK_SEQPACKET)", errno);
    return {sv[0], sv[1]};
}

} // namespace

Channel::Channel(int socket_fd) : sock_(socket_fd) {}

Channel::~Channel() {
    if (inbox_)
        inbox_->channel_closed();
    ::close(sock_); // the peer's recv sees the end of the stream: PX_E_CLOSED
}

Ref<Channel> Channel::adopt_unshaken(int socket_fd) {
    FdGuard guard{socket_fd};
    auto ch = Ref<Channel>::adopt(new Channel(socket_fd));
    guard.release();
    return ch;
}

void Channel::send_hello() {
    auto [mine, theirs] = seqpacket_pair();
    FdGuard their_guard{theirs};
    int flags = ::fcntl(mine, F_GETFL);
    ::fcntl(mine, F_SETFL, flags | O_NONBLOCK);
    inbox_ = Ref<ReturnInbox>::adopt(new ReturnInbox(mine));
    wire::Hello hello;
    hello.pid = static_cast<uint64_t>(::getpid());
    auto bytes = wire::encode(hello);
    send_message(sock_, bytes.data(), bytes.size(), &theirs, 1);
}

void Channel::receive_hello(int64_t timeout_ns) {
    if (!wait_readable(sock_, timeout_ns))
        fail(timeout_ns == 0 ? Status::would_block : Status::timeout,
             "the peer did not complete the handshake in time");
    uint8_t buf[wire::max_record_size];
    Received r = recv_message(sock_, buf, sizeof buf, 1, false);
    if (r.closed)
        fail(Status::closed, "the peer closed the connection during the handshake");
    FdGuard fd{r.fds.empty() ? -1 : r.fds[0]};
    wire::Record rec = wire::decode(buf, r.len);
    if (rec.type != wire::Type::hello)
        fail(Status::protocol, "the peer's first record is not a hello");
    if (fd.fd < 0)
        fail(Status::protocol, "the peer's hello carries no return socket");
    check_seqpacket_unix(fd.fd);

    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(sock_, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        fail_errno("getsockopt(SO_PEERCRED)", errno);
    if (cred.uid != ::geteuid())
        fail(Status::permission, "peer runs as uid " + std::to_string(cred.uid) +
                                     "; only the same uid (" + std::to_string(::geteuid()) +
                                     ") may connect");
    peer_pid_ = rec.hello.pid;
    outbox_ = Ref<ReturnOutbox>::adopt(new ReturnOutbox(fd.release()));
}

std::pair<Ref<Channel>, Ref<Channel>> Channel::pair() {
    auto [a_fd, b_fd] = seqpacket_pair();
    Ref<Channel> a = adopt_unshaken(a_fd);
    Ref<Channel> b = adopt_unshaken(b_fd);
    a->send_hello();
    b->send_hello();
    a->receive_hello(0);
    b->receive_hello(0);
    return {a, b};
}

Ref<Channel> Channel::from_fd(int socket_fd, int64_t handshake_timeout_ns) {
    FdGuard guard{socket_fd};
    if (socket_fd < 0)
        fail(Status::invalid, "fd " + std::to_string(socket_fd) + " is not a file descriptor");
    check_seqpacket_unix(socket_fd);
    Ref<Channel> ch = adopt_unshaken(guard.release());
    ch->send_hello();
    ch->receive_hello(handshake_timeout_ns);
    return ch;
}

Ref<Channel> Channel::connect(const std::string &path, int64_t timeout_ns) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty())
        fail(Status::invalid, "socket path is empty");
    if (path.size() >= sizeof addr.sun_path)
        fail(Status::invalid, "socket path is " + std::to_string(path.size()) +
                                  " bytes; at most " + std::to_string(sizeof addr.sun_path - 1) +
                                  " fit");
    std::memcpy(addr.sun_path, path.data(), path.size());
    const auto deadline = clock::now() + std::chrono::nanoseconds(timeout_ns > 0 ? timeout_ns : 0);
    for (;;) {
        int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
            fail_errno("socket(AF_UNIX, SOCK_SEQPACKET)", errno);
        FdGuard guard{fd};
        if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0) {
            Ref<Channel> ch = adopt_unshaken(guard.release());
            ch->send_hello();
            int64_t hs = timeout_ns < 0 ? default_handshake_timeout_ns
                                        : std::max<int64_t>(remaining_ns(deadline), 1'000'000'000);
            ch->receive_hello(hs);
            return ch;
        }
        int err = errno;
        bool nobody_yet = err == ENOENT || err == ECONNREFUSED || err == EAGAIN;
        if (!nobody_yet)
            fail_errno("connect(" + path + ")", err);
        if (timeout_ns == 0)
            fail(Status::would_block, "nobody is listening on " + path);
        if (timeout_ns > 0 && remaining_ns(deadline) == 0)
            fail(Status::timeout, "nobody listened on " + path + " within " +
                                      std::to_string(timeout_ns) + " ns");
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

void Channel::fail_dropped() const {
    fail(Status::protocol, "the channel was dropped after a protocol error: " + dropped_);
}

void Channel::drop(const std::string &why) {
    dropped_ = why;
    ::shutdown(sock_, SHUT_RDWR);
    received_segments_.clear();
}

void Channel::forget_unused_segments_locked() {
    // A segment only this table still references can never be sent again: tell the peer so
    // it can unmap it once its buffers are gone, and let it go here.
    for (auto it = sent_segments_.begin(); it != sent_segments_.end();) {
        if (it->second.segment->ref_count() == 1) {
            auto bytes = wire::encode(wire::Unregister{it->second.id});
            send_message(sock_, bytes.data(), bytes.size(), nullptr, 0);
            it = sent_segments_.erase(it);
        } else {
            ++it;
        }
    }
}

void Channel::send(const Buffer &buf, int64_t timeout_ns) {
    (void)timeout_ns; // the socket path blocks like a socket write
    outbox_->flush();
    Segment &seg = buf.segment();
    std::lock_guard lock(send_mutex_);
    wire::Data d;
    auto it = sent_segments_.find(seg.serial());
    FdGuard fd{-1};
    if (it == sent_segments_.end()) {
        if (seg.memory_type() == MemoryType::heap)
            fail(Status::unsupported,
                 "heap memory is private to this process; allocate frames from a shared-memory "
                 "or huge-page segment to send them");
        if (seg.memory_type() == MemoryType::mapped_file)
            fail(Status::unsupported,
                 "a mapped file cannot be sealed, so its owner could truncate it under the "
                 "receiver (SIGBUS); processes share a file by opening its path");
        forget_unused_segments_locked();
        if (sent_segments_.size() >= max_sent_segments)
            fail(Status::busy, "this channel already carries " +
                                   std::to_string(max_sent_segments) +
                                   " live segments; release some or use a pool");
        fd.fd = seg.open_readonly_for_peer();
        d.flags = wire::Data::new_segment;
        d.segment_id = next_segment_id_++;
        d.segment_size = seg.size();
        d.page_size = seg.page_size();
        d.memory_type = static_cast<uint32_t>(seg.memory_type());
    } else {
        d.segment_id = it->second.id;
    }
    d.offset = buf.offset();
    d.len = buf.size();
    d.meta = buf.metadata();
    if (buf.lease()) {
        d.token = next_token_++;
        inbox_->lend(d.token, buf.lease());
    }
    auto bytes = wire::encode(d);
    try {
        send_message(sock_, bytes.data(), bytes.size(), fd.fd >= 0 ? &fd.fd : nullptr,
                     fd.fd >= 0 ? 1 : 0);
    } catch (...) {
        if (d.token)
            inbox_->unlend(d.token);
        throw;
    }
    if (d.flags & wire::Data::new_segment) {
        sent_segments_.emplace(seg.serial(), Sent{d.segment_id, buf.segment_ref()});
        ++segments_registered_;
    }
    ++buffers_sent_;
}

void Channel::handle_unregister(uint32_t id) {
    if (received_segments_.erase(id) == 0)
        fail(Status::protocol, "unregister of unknown segment id " + std::to_string(id));
}

Buffer Channel::handle_data(const wire::Data &d, std::vector<int> &fds) {
    Ref<Segment> seg;
    if (d.flags & wire::Data::new_segment) {
        if (fds.size() != 1)
            fail(Status::protocol, "a new segment must come with exactly one fd, not " +
                                       std::to_string(fds.size()));
        if (received_segments_.count(d.segment_id))
            fail(Status::protocol, "segment id " + std::to_string(d.segment_id) +
                                       " registered twice");
        if (received_segments_.size() >= max_segments_per_channel)
            fail(Status::protocol, "more than " + std::to_string(max_segments_per_channel) +
                                       " live segments on one channel");
        if (d.memory_type != static_cast<uint32_t>(MemoryType::shared) &&
            d.memory_type != static_cast<uint32_t>(MemoryType::huge_pages))
            fail(Status::protocol, "segment of memory type " + std::to_string(d.memory_type) +
                                       " cannot cross a channel");
        if (d.segment_size > SIZE_MAX)
            fail(Status::protocol, "segment size does not fit in memory");
        try {
            seg = SharedMemorySegment::from_fd(fds[0], static_cast<size_t>(d.segment_size),
                                               SharedMemorySegment::map_readonly);
        } catch (const Error &e) {
            fail(Status::protocol, std::string("the peer's segment fd was refused: ") + e.what());
        }
        close_all(fds);
        received_segments_.emplace(d.segment_id, seg);
    } else {
        if (!fds.empty())
            fail(Status::protocol, "unexpected fd attached to a data record");
        auto it = received_segments_.find(d.segment_id);
        if (it == received_segments_.end())
            fail(Status::protocol, "data for unknown segment id " + std::to_string(d.segment_id));
        seg = it->second;
    }
    if (d.offset > seg->size() || d.len > seg->size() - d.offset)
        fail(Status::protocol, "range [" + std::to_string(d.offset) + ", +" +
                                   std::to_string(d.len) + ") exceeds segment length " +
                                   std::to_string(seg->size()));
    Ref<RefCounted> lease;
    if (d.token)
        lease = Ref<RefCounted>::adopt(new RemoteLease(outbox_, d.token));
    return Buffer(std::move(seg), static_cast<size_t>(d.offset), static_cast<size_t>(d.len),
                  d.meta, std::move(lease));
}

Buffer Channel::recv(int64_t timeout_ns) {
    outbox_->flush();
    std::lock_guard lock(recv_mutex_);
    if (!dropped_.empty())
        fail_dropped();
    const auto deadline =
        clock::now() + std::chrono::nanoseconds(timeout_ns > 0 ? timeout_ns : 0);
    for (;;) {
        int64_t wait = timeout_ns < 0 ? -1 : timeout_ns == 0 ? 0 : remaining_ns(deadline);
        if (!wait_readable(sock_, wait))
            fail(timeout_ns == 0 ? Status::would_block : Status::timeout,
                 timeout_ns == 0 ? "nothing to receive"
                                 : "nothing arrived within " + std::to_string(timeout_ns) + " ns");
        uint8_t buf[wire::max_record_size];
        Received r;
        try {
            r = recv_message(sock_, buf, sizeof buf, 1, true);
        } catch (const Error &e) {
            if (e.status() == Status::would_block)
                continue; // another reader took it
            if (e.status() == Status::protocol)
                drop(e.what());
            throw;
        }
        if (r.closed)
            fail(Status::closed, "the peer closed the channel");
        try {
            wire::Record rec = wire::decode(buf, r.len);
            switch (rec.type) {
            case wire::Type::data: {
                Buffer b = handle_data(rec.data, r.fds);
                ++buffers_received_;
                return b;
            }
            case wire::Type::unregister:
                if (!r.fds.empty())
                    fail(Status::protocol, "unexpected fd attached to an unregister record");
                handle_unregister(rec.unregister.segment_id);
                continue;
            default:
                fail(Status::protocol, "unexpected record type " +
                                           std::to_string(static_cast<uint32_t>(rec.type)) +
                                           " after the handshake");
            }
        } catch (const Error &e) {
            close_all(r.fds);
            if (e.status() == Status::protocol)
                drop(e.what());
            throw;
        }
    }
}

ChannelStats Channel::stats() const {
    ChannelStats s;
    {
        std::lock_guard lock(send_mutex_);
        s.buffers_sent = buffers_sent_;
        s.segments_registered = segments_registered_;
    }
    {
        std::lock_guard lock(recv_mutex_);
        s.buffers_received = buffers_received_;
    }
    inbox_->collect();
    ReturnCounters c = inbox_->counters();
    s.slots_lent = c.lent;
    s.returns_accepted = c.accepted;
    s.returns_refused = c.refused;
    s.slots_reclaimed = c.reclaimed;
    s.peer_pid = peer_pid_;
    return s;
}

} // namespace px::ipc
