// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/ipc/recv_side.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/hot.hpp"
#include "core/ipc/fd_passing.hpp"
#include "core/memory_pool.hpp"
#include "core/shared_memory_segment.hpp"

namespace px::ipc {

namespace {

// The lines of an entry a data record without user bytes occupies: what a waiting receiver
// prefetches (the last line only travels when the sender uses user bytes).
constexpr size_t data_prefetch_size =
    (sizeof(uint32_t) + wire::data_meta_offset + offsetof(Metadata, user) + 63) / 64 * 64;
static_assert(data_prefetch_size <= data_entry_size, "a ring entry holds its prefetched lines");

// How long recv spins on pause hints before it yields the CPU between looks at the ring, when
// the sender does not seem to share its CPU.
constexpr int64_t spin_yield_after_ns = 10'000;

// How often a waiting receiver looks at the socket (hang-up, registrations) and hands back
// what its own peers returned (a relay).
constexpr int64_t socket_check_interval_ns = 1'000'000;

// How often a caller that keeps polling (recv with timeout 0) finds the ring empty and has the
// socket read for it (hang-up, a peer's stray bytes): the first empty poll after this long, or
// after a closing peer said so in its control block, reads it; the others answer from the ring
// alone. A busy-polling receiver used to read it at every poll (a recvmsg, ~0.4 us on this VM,
// most of an empty poll's cost); now at most once per interval, a bound well under the time any
// caller could notice (a process exit takes far longer to reach us).
constexpr int64_t empty_poll_socket_interval_ns = 20'000;

} // namespace

RecvSide::RecvSide(int sock, const Ref<Segment> &peer_control, ReturnOutbox &outbox,
                   ReturnInbox &inbox) noexcept
    : sock_(sock), cb_(control_of(*peer_control)), outbox_(outbox), inbox_(inbox),
      ring_(&cb_->data_tail, &cb_->data_head, data_ring_entries), wake_(cb_, sock) {}

int RecvSide::fd() {
    const int fd = wake_.fd();
    // Records published before the sender saw the flag rang nothing: ring our own doorbell.
    // (If recv is running, it does so on its way out.)
    std::unique_lock lock(mutex_, std::try_to_lock);
    if (lock.owns_lock())
        wake_.ring_if_waiting(ring_);
    return fd;
}

void RecvSide::abandon(const std::string &why) {
    std::lock_guard lock(mutex_);
    if (dropped_.empty())
        drop(Status::protocol, why);
}

uint64_t RecvSide::buffers_received() const {
    std::lock_guard lock(mutex_);
    return buffers_received_;
}

PX_HOT Buffer RecvSide::recv(int64_t timeout_ns, wire::StreamTag *tag) {
    if (std::optional<Buffer> b = receive(timeout_ns, tag))
        return std::move(*b);
    fail(Status::would_block, "nothing to receive");
}

PX_HOT std::optional<Buffer> RecvSide::receive(int64_t timeout_ns, wire::StreamTag *tag,
                                               RecordFilter *filter) {
    std::lock_guard lock(mutex_);
    if (!dropped_.empty())
        fail_dropped();
    // A wait that a filter may make longer (a record it consumed) waits for what is left.
    const int64_t deadline = filter && timeout_ns > 0 ? deadline_for(timeout_ns) : 0;
    for (;;) {
        std::optional<Buffer> b = take_any(timeout_ns);
        if (!b)
            return b;
        if (tag) {
            *tag = last_tag_;
        } else if (last_tag_.kind != wire::DataKind::frame) {
            const std::string why =
                "a stream's own record (kind " +
                std::to_string(static_cast<uint32_t>(last_tag_.kind)) +
                ") on a plain channel: subscribe to a stream with a subscriber";
            drop(Status::protocol, why);
            fail(Status::protocol, why);
        }
        if (!filter || filter->keep(*b, last_tag_))
            return b;
        if (timeout_ns > 0)
            timeout_ns = timeout_left(deadline, now_ns()); // 0 once it ran out: a last look
    }
}

std::optional<Buffer> RecvSide::take_any(int64_t timeout_ns) {
    // A receiver that polls px_channel_fd tells the sender when it is inside recv (no socket
    // wake needed) and when it leaves (declared after the lock: runs before it is released).
    struct Bracket {
        WakeReceiver &wake;
        const RingConsumer &ring;
        ~Bracket() { wake.leave(ring); }
    } bracket{wake_, ring_};
    if (wake_.enter())
        pump_socket(true);      // eat the wake record (registrations wait for their record)
    if (auto b = take_record()) { // the common case of a sender ahead: no clock read
        wake_.took_record();
        return b;
    }
    if (timeout_ns == 0)
        return poll_once();
    return wait_for_record(timeout_ns);
}

std::optional<Buffer> RecvSide::poll_once() {
    // Never waits: a registration on the socket may announce a record the sender is about to
    // publish, but a poller whose fd became readable for it is woken again when it is. (A
    // record whose registration is on the socket reads it itself: make_buffer.)
    if (socket_due()) {
        pump_socket();
        if (auto b = take_record())
            return b;
    }
    if (peer_closed())
        fail(Status::closed, "the peer closed the channel");
    // A caller polling in a loop on the CPU the sender last published from only keeps the
    // sender from running (its next record comes after our time slice): give the CPU up now,
    // as a waiting recv does. Another CPU's sender costs nothing here (no system call).
    if (producer_shares_cpu())
        ::sched_yield();
    return std::nullopt;
}

bool RecvSide::socket_due() noexcept {
    const int64_t now = now_ns();
    if (now - last_socket_read_ns_ < empty_poll_socket_interval_ns &&
        cb_->producer_closing.load(std::memory_order_acquire) == 0)
        return false;
    last_socket_read_ns_ = now;
    return true;
}

bool RecvSide::producer_shares_cpu() const noexcept {
    const uint32_t sender_cpu = cb_->data_producer_cpu.load(std::memory_order_relaxed);
    return sender_cpu != 0 && sender_cpu == static_cast<uint32_t>(::sched_getcpu() + 1);
}

bool RecvSide::peer_closed() noexcept {
    // The process check also catches a peer whose socket lives on in another process.
    return peer_hung_up_ || inbox_.peer_gone();
}

PX_HOT Buffer RecvSide::wait_for_record(int64_t timeout_ns) {
    // The clock is read once per step of the wait: `now` is the latest reading.
    int64_t now = now_ns();
    const int64_t deadline = deadline_for(timeout_ns, now);
    // A stream with more processes than CPUs: a bounded spin (the default) would hold a CPU
    // that a subscriber woken by the same frame is waiting for. Spin mode (< 0) still spins.
    int64_t spin = spin_ns_.load(std::memory_order_relaxed);
    if (spin > 0 && wake_.crowded())
        spin = 0;
    bool yielded = false;
    for (;;) {
        if (auto b = take_record())
            return std::move(*b);
        if (peer_closed()) {
            if (auto b = take_record()) // sent before the hang-up
                return std::move(*b);
            fail(Status::closed, "the peer closed the channel");
        }
        if (spin != 0) {
            now = spin_for_record(now, deadline, spin);
        } else if (!yielded && producer_shares_cpu()) {
            // Spin 0 gives the CPU up at once, but to the sender first when it last published
            // from this CPU: it is runnable here (often it has just woken us, and we took the
            // CPU from it). It sends on while we are "active", waking no one, and we find its
            // records after one yield instead of a futex wait and a wake each. Once per wait:
            // the hint may be stale, and a sender with nothing more to send leaves us to sleep.
            yielded = true;
            ::sched_yield();
            now = now_ns(); // the yield may have lasted another process's time slice
        }
        if (!ring_.empty() || peer_hung_up_)
            continue;
        if (now >= deadline)
            fail(Status::timeout, "nothing arrived within " + std::to_string(timeout_ns) + " ns");
        now = sleep_for_record(now, deadline);
        if (ring_.empty() && !peer_hung_up_ && now >= deadline)
            fail(Status::timeout, "nothing arrived within " + std::to_string(timeout_ns) + " ns");
    }
}

PX_HOT int64_t RecvSide::spin_for_record(int64_t start, int64_t deadline, int64_t spin) {
    // The lowest latency while the sender is about to send. The ring is looked at after every
    // pause: a pause takes from a few to ~40 ns depending on the CPU, and a burst of them would
    // delay the pickup by as much. The clock (~25 ns) is read every few turns only. The spin
    // yields between looks (a sched_yield is ~1 us) when the sender last published from this
    // CPU, where spinning only keeps it from running, and after spin_yield_after_ns in any case
    // (the hint may be stale, or lie). The hint is looked at before the first pause too: a
    // receiver on the sender's CPU yields at once (same-core ping-pong 2.21 -> 1.98 us; ~10 ns
    // more cross-core, where reading the clock at the first turn instead cost ~15).
    int64_t now = start;
    const int64_t spin_until = spin < 0 ? deadline : std::min(deadline, start + spin);
    int64_t next_socket_check = start + socket_check_interval_ns;
    bool yielding = producer_shares_cpu();
    // The next entry's lines are fetched while we wait, so that when the tail moves they
    // travel from the sender's CPU together with it, not one after the other.
    const uint8_t *next = cb_->data_entries[ring_.next_slot()];
    for (uint32_t turn = 1; ring_.empty(); ++turn) {
        for (size_t line = 0; line < data_prefetch_size; line += 64)
            __builtin_prefetch(next + line);
        if (!yielding) {
            cpu_relax();
            if (turn % 8 != 0)
                continue;
        } else {
            ::sched_yield();
        }
        now = now_ns();
        if (now >= spin_until)
            break;
        yielding = now - start >= spin_yield_after_ns || producer_shares_cpu();
        if (now >= next_socket_check) { // a spinning receiver still notices a hang-up
            next_socket_check = now + socket_check_interval_ns;
            collect_all_returns(false); // a relay waiting here still hands back loans
            pump_socket();
            if (peer_closed())
                break;
        }
    }
    return now;
}

int64_t RecvSide::sleep_for_record(int64_t now, int64_t deadline) {
    // The sender wakes us after it publishes. The time slice bounds how long a dead sender's
    // silence goes unnoticed.
    const int64_t left = timeout_left(deadline, now);
    wake_.sleep(ring_, left < 0 ? INT64_MAX : left);
    if (!ring_.empty())
        return now_ns(); // woken by a record: on to it
    // A time slice passed, or a wake-up for nothing: a relay asleep here hands back what its
    // own peers returned of the buffers it sent on, and the socket is looked at.
    collect_all_returns(false);
    pollfd p{sock_, POLLIN, 0};
    if (::poll(&p, 1, 0) > 0)
        pump_socket();
    return now_ns();
}

// ---------------------------------------------------------------------------------------------
// Records

void RecvSide::fail_dropped() const {
    fail(dropped_status_, "the channel was dropped: " + dropped_);
}

void RecvSide::drop(Status status, const std::string &why) {
    dropped_ = why;
    dropped_status_ = status;
    // Both paths go down: the peer sees the hang-up and takes back what it lent us, as when
    // we release the channel; and what we lent it comes back to us.
    ::shutdown(sock_, SHUT_RDWR);
    outbox_.shut_down();
    forget_segment_cache();
    segments_.clear();
}

void RecvSide::handle_segment(const wire::SegmentInfo &info, std::vector<int> &fds) {
    if (fds.size() != 1)
        fail(Status::protocol,
             "a segment record must come with exactly one fd, not " + std::to_string(fds.size()));
    if (segments_.count(info.segment_id))
        fail(Status::protocol,
             "segment id " + std::to_string(info.segment_id) + " registered twice");
    if (segments_.size() >= max_segments_per_channel)
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
        seg = shm::from_fd(fds[0], static_cast<size_t>(info.size), shm::map_readonly);
    } catch (const Error &e) {
        if (e.status() == Status::io)
            throw; // ours (out of fds or memory mapping it), not the peer's fault
        fail(Status::protocol, std::string("the peer's segment fd was refused: ") + e.what());
    }
    close_all(fds);
    segments_.emplace(info.segment_id, std::move(seg));
}

void RecvSide::handle_record(const uint8_t *bytes, size_t len, std::vector<int> &fds) {
    wire::Record rec = wire::decode(bytes, len);
    if (rec.type == wire::Type::segment)
        return handle_segment(rec.segment, fds);
    if (rec.type != wire::Type::wake)
        fail(Status::protocol, "unexpected record type " +
                                   std::to_string(static_cast<uint32_t>(rec.type)) +
                                   " on the socket");
    if (!fds.empty())
        fail(Status::protocol, "unexpected fd attached to a wake record");
}

size_t RecvSide::pump_socket(bool until_wake) {
    size_t registered = 0;
    // Bounded: a peer flooding the socket is read in portions, between which the caller
    // checks its deadline. (Registrations precede their first record, so 256 is plenty.)
    for (int n = 0; n < 256; ++n) {
        uint8_t buf[wire::max_record_size];
        Received r;
        try {
            r = recv_message(sock_, buf, sizeof buf, 1, true);
            if (r.would_block)
                return registered;
            if (r.closed) {
                peer_hung_up_ = true;
                return registered;
            }
            const size_t before = segments_.size();
            handle_record(buf, r.len, r.fds);
            registered += segments_.size() - before;
            // The wake record we were told of: the socket is not read again to hear EAGAIN
            // (what may follow it is a registration, read when its record comes, or hang-up,
            // which the next look at the socket finds).
            if (until_wake && segments_.size() == before)
                return registered;
        } catch (const Error &e) {
            close_all(r.fds);
            // A peer that breaks the protocol, and a segment we could not take (this process is
            // out of fds): either way the connection cannot go on.
            if (e.status() == Status::protocol || e.status() == Status::io)
                drop(e.status(), e.what());
            throw;
        }
    }
    return registered;
}

PX_HOT Buffer RecvSide::make_buffer(const wire::Data &d) {
    const Ref<Segment> *found = d.segment_id == last_id_ ? last_segment_ : nullptr;
    if (!found) {
        auto it = segments_.find(d.segment_id);
        if (it == segments_.end()) {
            pump_socket(); // its registration was sent before this record: it is on the socket
            it = segments_.find(d.segment_id);
            if (it == segments_.end())
                fail(Status::protocol,
                     "data for unknown segment id " + std::to_string(d.segment_id));
        }
        found = &it->second; // stable: unordered_map nodes do not move
        last_id_ = d.segment_id;
        last_segment_ = found;
    }
    const Ref<Segment> &seg = *found;
    if (d.offset > seg->size() || d.len > seg->size() - d.offset)
        fail(Status::protocol, "range [" + std::to_string(d.offset) + ", +" +
                                   std::to_string(d.len) + ") exceeds segment length " +
                                   std::to_string(seg->size()));
    return Buffer(seg, static_cast<size_t>(d.offset), static_cast<size_t>(d.len), d.meta,
                  d.token ? outbox_.lease(d.token) : Ref<RefCounted>());
}

void RecvSide::check_format(const wire::Data &d) {
    if (!format_)
        fail(Status::protocol, "a typed data record before any format record");
    if (d.len < format_fits_from_) {
        try {
            validate_format(format_->get(), d.len, Status::protocol);
        } catch (const Error &e) {
            fail(Status::protocol, std::string("a typed data record's ") + e.what());
        }
        format_fits_from_ = d.len;
    }
}

void RecvSide::take_other_record(const uint8_t *shared, uint32_t len) {
    uint8_t entry[data_entry_size - sizeof len];
    std::memcpy(entry, shared + sizeof len, sizeof entry);
    ring_.consume();
    if (len > sizeof entry)
        fail(Status::protocol, "ring entry of " + std::to_string(len) + " bytes");
    wire::Record rec = wire::decode(entry, len);
    if (rec.type == wire::Type::format) { // in force for the typed records after it
        format_ = Ref<SharedFormat>::make(rec.format);
        format_fits_from_ = UINT64_MAX;
        return;
    }
    if (rec.type != wire::Type::unregister)
        fail(Status::protocol, "unexpected record type " +
                                   std::to_string(static_cast<uint32_t>(rec.type)) +
                                   " in the ring");
    forget_segment_cache();
    if (segments_.erase(rec.unregister.segment_id) == 0)
        fail(Status::protocol,
             "unregister of unknown segment id " + std::to_string(rec.unregister.segment_id));
}

void RecvSide::forget_segment_cache() noexcept {
    last_id_ = 0;
    last_segment_ = nullptr;
}

PX_HOT std::optional<Buffer> RecvSide::take_record() {
    try {
        // A loop, not recursion: a peer may put any number of unregister records in a row.
        for (;;) {
            long slot = ring_.peek();
            if (slot < 0)
                return std::nullopt;
            // Copy the entry out once; the peer may rewrite the shared one at any time. A data
            // record (the fast path) is copied in two parts: its head, and its metadata straight
            // where it is decoded to (a copy of a copy would cost more than the copy: the
            // second one's loads would straddle the first one's stores).
            const uint8_t *shared = cb_->data_entries[slot];
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
                    ring_.consume();
                    wire::decode_data_fields(head, d);
                    if (d.typed) // before a loan is taken for it
                        check_format(d);
                    std::optional<Buffer> out(make_buffer(d));
                    if (d.typed)
                        out->set_shared_format(format_);
                    last_tag_ = d.tag;
                    ++buffers_received_;
                    return out;
                }
            }
            take_other_record(shared, len);
        }
    } catch (const Error &e) {
        if (e.status() == Status::protocol && dropped_.empty())
            drop(e.status(), e.what());
        throw;
    }
}

} // namespace px::ipc
