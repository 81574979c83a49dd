#include "core/ipc/channel.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/fd_guard.hpp"
#include "core/ipc/fd_passing.hpp"
#include "core/shared_memory_segment.hpp"

namespace px::ipc {

namespace {

// The lines of an entry a data record without user bytes occupies: what a waiting receiver
// prefetches (the last line only travels when the sender uses user bytes).
constexpr size_t data_prefetch_size =
    (sizeof(uint32_t) + wire::data_meta_offset + offsetof(Metadata, user) + 63) / 64 * 64;
static_assert(data_prefetch_size <= data_entry_size, "a ring entry holds its prefetched lines");

static_assert(sizeof(uint32_t) + wire::data_size <= data_entry_size &&
                  sizeof(uint32_t) + wire::unregister_size <= data_entry_size,
              "a ring entry holds a length and any record of the ring");

// How long recv spins on pause hints before it yields the CPU between looks at the ring, when
// the sender does not seem to share its CPU.
constexpr int64_t spin_yield_after_ns = 10'000;

} // namespace

// ---------------------------------------------------------------------------------------------
// Construction and handshake

Channel::Channel(Connection conn)
    : sock_(conn.sock.release()), own_control_(std::move(conn.own_control)),
      peer_control_(std::move(conn.peer_control)), inbox_(std::move(conn.inbox)),
      outbox_(std::move(conn.outbox)), peer_pid_(static_cast<uint64_t>(conn.peer_pid)) {
    FdGuard sock_guard{sock_}; // until the channel is made
    auto *own = control_of(*own_control_);
    data_out_ = RingProducer(&own->data_tail, &own->data_head, data_ring_entries);
    auto *peer = control_of(*peer_control_);
    data_in_ = RingConsumer(&peer->data_tail, &peer->data_head, data_ring_entries);
    doorbell_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    poll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event on_socket{};
    on_socket.events = EPOLLIN | EPOLLRDHUP;
    on_socket.data.fd = sock_;
    epoll_event on_doorbell{};
    on_doorbell.events = EPOLLIN;
    on_doorbell.data.fd = doorbell_;
    if (doorbell_ < 0 || poll_fd_ < 0 || ::epoll_ctl(poll_fd_, EPOLL_CTL_ADD, sock_, &on_socket) < 0 ||
        ::epoll_ctl(poll_fd_, EPOLL_CTL_ADD, doorbell_, &on_doorbell) < 0) {
        int err = errno;
        if (doorbell_ >= 0)
            ::close(doorbell_);
        if (poll_fd_ >= 0)
            ::close(poll_fd_);
        fail_errno("eventfd/epoll for px_channel_fd", err);
    }
    sock_guard.release();
}

Channel::~Channel() {
    ::close(poll_fd_);
    ::close(doorbell_);
    if (inbox_)
        inbox_->channel_closed();
    ::close(sock_); // the peer's socket hangs up: PX_E_CLOSED once its ring is drained
    if (own_control_) {
        // A peer asleep on our ring wakes now and finds the hang-up, instead of at its next
        // time slice. (After fork() this may wake a peer of the other process: harmless.)
        auto *cb = control_of(*own_control_);
        cb->data_notify.fetch_add(1, std::memory_order_seq_cst);
        futex_wake_all(&cb->data_notify);
    }
}

Ref<Channel> Channel::from_connection(Connection conn) {
    return Ref<Channel>::adopt(new Channel(std::move(conn)));
}

std::pair<Ref<Channel>, Ref<Channel>> Channel::pair() {
    auto [a_fd, b_fd] = seqpacket_pair();
    auto [a, b] = handshake_pair(a_fd, b_fd);
    return {from_connection(std::move(a)), from_connection(std::move(b))};
}

Ref<Channel> Channel::from_fd(int socket_fd, int64_t handshake_timeout_ns) {
    FdGuard guard{socket_fd};
    if (socket_fd < 0)
        fail(Status::invalid, "fd " + std::to_string(socket_fd) + " is not a file descriptor");
    check_seqpacket_unix(socket_fd);
    return from_connection(handshake(guard.release(), handshake_timeout_ns));
}

Ref<Channel> Channel::connect(const std::string &path, int64_t timeout_ns) {
    sockaddr_un addr = unix_address(path);
    const int64_t deadline = deadline_for(timeout_ns);
    for (;;) {
        int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
            fail_errno("socket(AF_UNIX, SOCK_SEQPACKET)", errno);
        FdGuard guard{fd};
        if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0)
            return from_connection(
                handshake(guard.release(), handshake_timeout_within(deadline)));
        int err = errno;
        bool nobody_yet = err == ENOENT || err == ECONNREFUSED || err == EAGAIN;
        if (!nobody_yet)
            fail_errno("connect(" + path + ")", err);
        if (timeout_ns == 0)
            fail(Status::would_block, "nobody is listening on " + path);
        if (now_ns() >= deadline)
            fail(Status::timeout, "nobody listened on " + path + " within " +
                                      std::to_string(timeout_ns) + " ns");
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

int Channel::fd() noexcept {
    if (!peer_control_)
        return poll_fd_;
    control_of(*peer_control_)->consumer_polls_fd.store(1, std::memory_order_seq_cst);
    // Records the sender published before it saw the flag rang nothing: ring our own doorbell.
    // (If recv is running, it does so on its way out.)
    std::unique_lock lock(recv_mutex_, std::try_to_lock);
    if (lock.owns_lock() && !doorbell_rung_ && !data_in_.empty()) {
        uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(doorbell_, &one, sizeof one);
        doorbell_rung_ = true;
    }
    return poll_fd_;
}

// ---------------------------------------------------------------------------------------------
// Send side

void Channel::wake_consumer() noexcept {
    auto *cb = control_of(*own_control_);
    std::atomic_thread_fence(std::memory_order_seq_cst); // pairs with the consumer's state store
    uint32_t state = cb->data_state.load(std::memory_order_relaxed);
    if (state == consumer_sleeping) {
        cb->data_notify.fetch_add(1, std::memory_order_seq_cst);
        futex_wake_all(&cb->data_notify);
    } else if (state == consumer_away && cb->consumer_polls_fd.load(std::memory_order_relaxed) &&
               cb->data_state.compare_exchange_strong(state, consumer_away_woken)) {
        // The receiver polls px_channel_fd: make the socket readable. (A receiver that only
        // calls recv looks at the ring when it comes back: no system call for it.) Unless it
        // has taken every record already (it was in recv until just now): a wake record then
        // would leave px_channel_fd readable with nothing to read.
        if (cb->data_head.load(std::memory_order_acquire) >=
            cb->data_tail.load(std::memory_order_relaxed)) {
            uint32_t woken = consumer_away_woken;
            cb->data_state.compare_exchange_strong(woken, consumer_away);
            return;
        }
        auto wake = wire::encode_wake();
        [[maybe_unused]] ssize_t n = ::send(sock_, wake.data, wake.size, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
}

void Channel::check_peer_alive(bool now, int64_t coarse_now) {
    if (peer_gone_)
        fail(Status::closed, "the peer closed the channel");
    int64_t t = coarse_now < 0 ? coarse_now_ns() : coarse_now;
    if (!now && t - last_alive_check_ns_ < 1'000'000)
        return;
    last_alive_check_ns_ = t;
    pollfd p{sock_, 0, 0}; // no events asked: only hang-up and errors are reported
    if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL))) {
        peer_gone_ = true;
        fail(Status::closed, "the peer closed the channel");
    }
}

uint8_t *Channel::reserve_entry(int64_t deadline_ns, int64_t timeout_ns) {
    long slot;
    for (int spins = 0;; ++spins) {
        try {
            slot = data_out_.reserve();
        } catch (const Error &e) {
            send_broken_ = e.what();
            ::shutdown(sock_, SHUT_RDWR);
            throw;
        }
        if (slot >= 0)
            break;
        // Full: the receiver is behind. Wait for it, without forgetting that it may be gone.
        if (timeout_ns == 0)
            fail(Status::would_block, "the receiver has " + std::to_string(data_ring_entries) +
                                          " buffers waiting and takes no more now");
        check_peer_alive(true);
        if (now_ns() >= deadline_ns)
            fail(Status::timeout, "the receiver took no buffer within " +
                                      std::to_string(timeout_ns) + " ns");
        wake_consumer();
        collect_all_returns(false); // our receiver may wait for a loan we hold
        if (spins < 64)
            std::this_thread::yield();
        else
            std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    return control_of(*own_control_)->data_entries[slot];
}

void Channel::publish_entry() noexcept {
    control_of(*own_control_)
        ->data_producer_cpu.store(static_cast<uint32_t>(::sched_getcpu() + 1),
                                  std::memory_order_relaxed);
    data_out_.publish();
    wake_consumer();
}

void Channel::push_record(const wire::Bytes &rec, int64_t deadline_ns, int64_t timeout_ns) {
    uint8_t *entry = reserve_entry(deadline_ns, timeout_ns);
    uint32_t len = static_cast<uint32_t>(rec.size);
    std::memcpy(entry, &len, sizeof len);
    std::memcpy(entry + sizeof len, rec.data, rec.size);
    publish_entry();
}

void Channel::forget_unused_segments(int64_t deadline_ns, int64_t timeout_ns) {
    // A segment only this table still references can never be sent again: tell the peer (in
    // ring order, after every record that used it) so it can unmap it, and let it go here.
    for (auto it = sent_segments_.begin(); it != sent_segments_.end();) {
        if (it->second.segment->ref_count() == 1) {
            push_record(wire::encode(wire::Unregister{it->second.id}), deadline_ns, timeout_ns);
            if (it->first == last_sent_serial_)
                last_sent_serial_ = 0;
            it = sent_segments_.erase(it);
        } else {
            ++it;
        }
    }
}

uint32_t Channel::register_segment(const Buffer &buf) {
    Segment &seg = buf.segment();
    if (seg.memory_type() == MemoryType::heap)
        fail(Status::unsupported,
             "heap memory is private to this process; allocate frames from a shared-memory or "
             "huge-page segment to send them");
    if (seg.memory_type() == MemoryType::mapped_file)
        fail(Status::unsupported,
             "a mapped file cannot be sealed, so its owner could truncate it under the receiver "
             "(SIGBUS); processes share a file by opening its path");
    if (sent_segments_.size() >= max_sent_segments)
        fail(Status::busy, "this channel already carries " + std::to_string(max_sent_segments) +
                               " live segments; release some or send from a pool");
    FdGuard fd{seg.open_readonly_for_peer()};
    wire::SegmentInfo info;
    info.segment_id = next_segment_id_++;
    info.size = seg.size();
    info.page_size = seg.page_size();
    info.memory_type = static_cast<uint32_t>(seg.memory_type());
    auto bytes = wire::encode(info);
    try {
        send_message(sock_, bytes.data, bytes.size, &fd.fd, 1);
    } catch (const Error &e) {
        if (e.status() == Status::closed)
            peer_gone_ = true;
        throw;
    }
    sent_segments_.emplace(seg.serial(), Sent{info.segment_id, buf.segment_ref()});
    ++segments_registered_;
    return info.segment_id;
}

void Channel::send(const Buffer &buf, int64_t timeout_ns) {
    outbox_->flush();
    // Take back what the peer returned. Pools collect when they run dry, but a loan that is
    // not a pool slot (a received buffer sent on: a relay) has no pool to ask for it. Done on
    // the way out (declared before the lock, so after it), once the record is out: reading the
    // return ring costs two cache-line transfers from the peer's CPU, which would otherwise
    // delay every record by as much.
    const int64_t coarse_now = coarse_now_ns(); // one reading for both throttles
    struct CollectAfter {
        ReturnInbox &inbox;
        int64_t now;
        ~CollectAfter() { inbox.collect(false, now); }
    } collect_after{*inbox_, coarse_now};
    std::lock_guard lock(send_mutex_);
    if (!send_broken_.empty())
        fail(Status::protocol, "the channel was dropped after a protocol error: " + send_broken_);
    check_peer_alive(false, coarse_now);
    const int64_t deadline = deadline_for(timeout_ns);
    uint32_t segment_id;
    const uint64_t serial = buf.segment().serial();
    if (serial == last_sent_serial_) { // frames of one pool in a row: skip the hash look-up
        segment_id = last_sent_id_;
    } else {
        auto it = sent_segments_.find(serial);
        if (it != sent_segments_.end()) {
            segment_id = it->second.id;
        } else {
            forget_unused_segments(deadline, timeout_ns);
            segment_id = register_segment(buf);
        }
        last_sent_serial_ = serial;
        last_sent_id_ = segment_id;
    }
    // The entry first: once it is ours nothing can fail, so a loan is never made for a record
    // that does not go out. The record is written in place, from the buffer.
    uint8_t *entry = reserve_entry(deadline, timeout_ns);
    const uint64_t token = buf.lease() ? inbox_->lend(buf.lease()) : 0;
    const uint32_t len = wire::data_size;
    std::memcpy(entry, &len, sizeof len);
    wire::encode_data(segment_id, buf.offset(), buf.size(), token, buf.metadata(),
                      entry + sizeof len);
    publish_entry();
    ++buffers_sent_;
}

// ---------------------------------------------------------------------------------------------
// Receive side

void Channel::fail_dropped() const {
    fail(Status::protocol, "the channel was dropped after a protocol error: " + dropped_);
}

void Channel::drop(const std::string &why) {
    dropped_ = why;
    ::shutdown(sock_, SHUT_RDWR);
    forget_received_segment_cache();
    received_segments_.clear();
}

void Channel::handle_segment(const wire::SegmentInfo &info, std::vector<int> &fds) {
    if (fds.size() != 1)
        fail(Status::protocol, "a segment record must come with exactly one fd, not " +
                                   std::to_string(fds.size()));
    if (received_segments_.count(info.segment_id))
        fail(Status::protocol, "segment id " + std::to_string(info.segment_id) +
                                   " registered twice");
    if (received_segments_.size() >= max_segments_per_channel)
        fail(Status::protocol, "more than " + std::to_string(max_segments_per_channel) +
                                   " live segments on one channel");
    if (info.memory_type != static_cast<uint32_t>(MemoryType::shared) &&
        info.memory_type != static_cast<uint32_t>(MemoryType::huge_pages))
        fail(Status::protocol, "segment of memory type " + std::to_string(info.memory_type) +
                                   " cannot cross a channel");
    if (info.size > SIZE_MAX)
        fail(Status::protocol, "segment size does not fit in memory");
    Ref<Segment> seg;
    try {
        seg = SharedMemorySegment::from_fd(fds[0], static_cast<size_t>(info.size),
                                           SharedMemorySegment::map_readonly);
    } catch (const Error &e) {
        fail(Status::protocol, std::string("the peer's segment fd was refused: ") + e.what());
    }
    close_all(fds);
    received_segments_.emplace(info.segment_id, std::move(seg));
}

size_t Channel::pump_socket() {
    size_t registered = 0;
    // Bounded: a peer flooding the socket is read in portions, between which the caller
    // checks its deadline. (Registrations precede their first record, so 256 is plenty.)
    for (int n = 0; n < 256; ++n) {
        uint8_t buf[wire::max_record_size];
        Received r;
        try {
            r = recv_message(sock_, buf, sizeof buf, 1, true);
        } catch (const Error &e) {
            if (e.status() == Status::protocol)
                drop(e.what());
            throw;
        }
        if (r.would_block)
            return registered;
        if (r.closed) {
            peer_hung_up_ = true;
            return registered;
        }
        try {
            wire::Record rec = wire::decode(buf, r.len);
            if (rec.type == wire::Type::segment) {
                handle_segment(rec.segment, r.fds);
                ++registered;
            } else if (rec.type == wire::Type::wake) {
                if (!r.fds.empty())
                    fail(Status::protocol, "unexpected fd attached to a wake record");
            } else {
                fail(Status::protocol, "unexpected record type " +
                                           std::to_string(static_cast<uint32_t>(rec.type)) +
                                           " on the socket");
            }
        } catch (const Error &e) {
            close_all(r.fds);
            if (e.status() == Status::protocol)
                drop(e.what());
            throw;
        }
    }
    return registered;
}

Buffer Channel::make_buffer(const wire::Data &d) {
    const Ref<Segment> *found =
        d.segment_id == last_received_id_ ? last_received_segment_ : nullptr;
    if (!found) {
        auto it = received_segments_.find(d.segment_id);
        if (it == received_segments_.end()) {
            pump_socket(); // its registration was sent before this record: it is on the socket
            it = received_segments_.find(d.segment_id);
            if (it == received_segments_.end())
                fail(Status::protocol,
                     "data for unknown segment id " + std::to_string(d.segment_id));
        }
        found = &it->second; // stable: unordered_map nodes do not move
        last_received_id_ = d.segment_id;
        last_received_segment_ = found;
    }
    const Ref<Segment> &seg = *found;
    if (d.offset > seg->size() || d.len > seg->size() - d.offset)
        fail(Status::protocol, "range [" + std::to_string(d.offset) + ", +" +
                                   std::to_string(d.len) + ") exceeds segment length " +
                                   std::to_string(seg->size()));
    return Buffer(seg, static_cast<size_t>(d.offset), static_cast<size_t>(d.len), d.meta,
                  d.token ? outbox_->lease(d.token) : Ref<RefCounted>());
}

void Channel::forget_received_segment_cache() noexcept {
    last_received_id_ = 0;
    last_received_segment_ = nullptr;
}

std::optional<Buffer> Channel::take_record() {
    try {
        // A loop, not recursion: a peer may put any number of unregister records in a row.
        for (;;) {
            long slot = data_in_.peek();
            if (slot < 0)
                return std::nullopt;
            // Copy the entry out once; the peer may rewrite the shared one at any time. A data
            // record (the fast path) is copied in two parts: its head, and its metadata straight
            // where it is decoded to (a copy of a copy would cost more than the copy: the
            // second one's loads would straddle the first one's stores).
            const uint8_t *shared = control_of(*peer_control_)->data_entries[slot];
            uint32_t len;
            std::memcpy(&len, shared, sizeof len);
            if (len == wire::data_size) {
                uint8_t head[wire::data_meta_offset];
                std::memcpy(head, shared + sizeof len, sizeof head);
                if (wire::is_data(head, len)) {
                    // The metadata up to its user bytes, then only the user bytes it says are
                    // used (the rest stay zero): with few user bytes the entry's last cache line
                    // is never read, so it never travels from the sender's CPU.
                    wire::Data d;
                    constexpr size_t fixed = offsetof(Metadata, user);
                    const uint8_t *meta = shared + sizeof len + sizeof head;
                    std::memcpy(static_cast<void *>(&d.meta), meta, fixed);
                    if (d.meta.user_len <= metadata_user_max)
                        std::memcpy(d.meta.user, meta + fixed, d.meta.user_len);
                    data_in_.consume();
                    wire::decode_data_fields(head, d);
                    std::optional<Buffer> out(make_buffer(d));
                    ++buffers_received_;
                    return out;
                }
            }
            uint8_t entry[data_entry_size - sizeof len];
            std::memcpy(entry, shared + sizeof len, sizeof entry);
            data_in_.consume();
            if (len > sizeof entry)
                fail(Status::protocol, "ring entry of " + std::to_string(len) + " bytes");
            wire::Record rec = wire::decode(entry, len);
            if (rec.type != wire::Type::unregister)
                fail(Status::protocol, "unexpected record type " +
                                           std::to_string(static_cast<uint32_t>(rec.type)) +
                                           " in the ring");
            forget_received_segment_cache();
            if (received_segments_.erase(rec.unregister.segment_id) == 0)
                fail(Status::protocol, "unregister of unknown segment id " +
                                           std::to_string(rec.unregister.segment_id));
        }
    } catch (const Error &e) {
        if (e.status() == Status::protocol && dropped_.empty())
            drop(e.what());
        throw;
    }
}

Buffer Channel::recv(int64_t timeout_ns) {
    outbox_->flush();
    inbox_->collect(false); // see send()
    std::lock_guard lock(recv_mutex_);
    if (!dropped_.empty())
        fail_dropped();
    auto *cb = control_of(*peer_control_);
    // A receiver that polls px_channel_fd tells the sender when it is inside recv (no socket
    // wake needed) and when it leaves. One that never asked for the fd writes nothing here:
    // that cache line is one the sender reads on every send.
    const bool polls = cb->consumer_polls_fd.load(std::memory_order_relaxed) != 0;
    if (polls && cb->data_state.exchange(consumer_active, std::memory_order_seq_cst) ==
                     consumer_away_woken)
        pump_socket(); // eat the wake record (and any registrations behind it)
    if (doorbell_rung_) {
        uint64_t v;
        [[maybe_unused]] ssize_t n = ::read(doorbell_, &v, sizeof v);
        doorbell_rung_ = false;
    }
    // On the way out: from now on the sender rings the socket for new records; and records
    // already waiting keep px_channel_fd readable through the doorbell. (Dekker with the
    // sender's publish-fence-load: one of the two sees the other.)
    struct Away {
        Channel &ch;
        ControlBlock *cb;
        bool polls;
        ~Away() {
            if (!polls)
                return;
            cb->data_state.store(consumer_away, std::memory_order_seq_cst);
            if (!ch.doorbell_rung_ && !ch.data_in_.empty()) {
                uint64_t one = 1;
                [[maybe_unused]] ssize_t n = ::write(ch.doorbell_, &one, sizeof one);
                ch.doorbell_rung_ = true;
            }
        }
    } away{*this, cb, polls};

    if (auto b = take_record()) // the common case of a sender ahead: no clock read
        return std::move(*b);
    // The clock is read once per step of the wait: `now` is the latest reading.
    int64_t now = now_ns();
    const int64_t deadline = deadline_for(timeout_ns, now);
    const int64_t spin = spin_ns_.load(std::memory_order_relaxed);
    for (;;) {
        if (auto b = take_record())
            return std::move(*b);
        if (peer_hung_up_) {
            if (auto b = take_record()) // sent before the hang-up
                return std::move(*b);
            fail(Status::closed, "the peer closed the channel");
        }
        if (timeout_ns == 0) {
            // A registration on the socket means its first record is being published right
            // now: a poller woken by it should get that buffer, not PX_E_WOULD_BLOCK.
            if (pump_socket() > 0) {
                int64_t until = now_ns() + 10'000'000;
                while (data_in_.empty() && now_ns() < until)
                    cpu_relax();
            }
            if (auto b = take_record())
                return std::move(*b);
            if (peer_hung_up_)
                fail(Status::closed, "the peer closed the channel");
            fail(Status::would_block, "nothing to receive");
        }
        // Spin: the lowest latency while the sender is about to send. The ring is looked at
        // after every pause: a pause takes from a few to ~40 ns depending on the CPU, and a
        // burst of them would delay the pickup by as much. The clock (~25 ns) is read every
        // few turns only. The spin yields between looks (a sched_yield is ~1 us) when the
        // sender last published from this CPU, where spinning only keeps it from running, and
        // after spin_yield_after_ns in any case (the hint may be stale, or lie).
        if (spin != 0) {
            const int64_t start = now;
            const int64_t spin_until = spin < 0 ? deadline : std::min(deadline, start + spin);
            int64_t next_socket_check = start + 1'000'000;
            bool yielding = false;
            // The next entry's lines are fetched while we wait, so that when the tail moves
            // they travel from the sender's CPU together with it, not one after the other.
            const uint8_t *next = cb->data_entries[data_in_.next_slot()];
            for (uint32_t turn = 1; data_in_.empty(); ++turn) {
                for (size_t line = 0; line < data_prefetch_size; line += 64)
                    __builtin_prefetch(next + line);
                if (!yielding) {
                    cpu_relax();
                    if (turn % 8 != 0)
                        continue;
                } else {
                    ::sched_yield();
                }
                const int64_t t = now = now_ns();
                if (t >= spin_until)
                    break;
                const uint32_t sender_cpu =
                    cb->data_producer_cpu.load(std::memory_order_relaxed);
                yielding =
                    t - start >= spin_yield_after_ns ||
                    (sender_cpu != 0 && sender_cpu == static_cast<uint32_t>(::sched_getcpu() + 1));
                if (t >= next_socket_check) { // a spinning receiver still notices a hang-up
                    next_socket_check = t + 1'000'000;
                    collect_all_returns(false); // a relay waiting here still hands back loans
                    pump_socket();
                    if (peer_hung_up_)
                        break;
                }
            }
        }
        if (!data_in_.empty() || peer_hung_up_)
            continue;
        if (now >= deadline)
            fail(Status::timeout,
                 "nothing arrived within " + std::to_string(timeout_ns) + " ns");
        // Sleep on the futex word; the sender wakes us after it publishes. The time slice
        // bounds how long a dead sender's silence goes unnoticed.
        uint32_t seen = cb->data_notify.load(std::memory_order_acquire);
        cb->data_state.store(consumer_sleeping, std::memory_order_seq_cst);
        if (data_in_.empty()) {
            int64_t left = deadline == INT64_MAX ? INT64_MAX : deadline - now;
            futex_wait(&cb->data_notify, seen, std::min<int64_t>(left, 20'000'000));
        }
        // Woken by a record: on to it. Otherwise (a time slice passed, or a wake-up for
        // nothing), a relay asleep here hands back what its own peers returned of the buffers
        // it sent on, and the socket is looked at.
        const bool arrived = !data_in_.empty();
        if (!arrived)
            collect_all_returns(false);
        cb->data_state.store(consumer_active, std::memory_order_seq_cst);
        if (arrived)
            continue;
        pollfd p{sock_, POLLIN, 0};
        if (::poll(&p, 1, 0) > 0)
            pump_socket();
        now = now_ns();
        if (data_in_.empty() && !peer_hung_up_ && now >= deadline)
            fail(Status::timeout,
                 "nothing arrived within " + std::to_string(timeout_ns) + " ns");
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
    inbox_->collect(true);
    ReturnCounters c = inbox_->counters();
    s.slots_lent = c.lent;
    s.returns_accepted = c.accepted;
    s.returns_refused = c.refused;
    s.slots_reclaimed = c.reclaimed;
    s.peer_pid = peer_pid_;
    return s;
}

} // namespace px::ipc
