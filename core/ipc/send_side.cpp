// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/ipc/send_side.hpp"

#include <chrono>
#include <cstring>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <thread>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/hot.hpp"
#include "core/ipc/fd_passing.hpp"
#include "core/memory_pool.hpp"

namespace px::ipc {

static_assert(sizeof(uint32_t) + wire::data_size <= data_entry_size &&
                  sizeof(uint32_t) + wire::unregister_size <= data_entry_size &&
                  sizeof(uint32_t) + wire::format_size <= data_entry_size,
              "a ring entry holds a length and any record of the ring");

SendSide::SendSide(int sock, const Ref<Segment> &own_control, ReturnInbox &inbox) noexcept
    : sock_(sock), cb_(control_of(*own_control)), inbox_(inbox), wake_(cb_, sock),
      ring_(&cb_->data_tail, &cb_->data_head, data_ring_entries),
      // An end is made right after its handshake, which saw the peer alive: its first send
      // (a stream's welcome) need not look again (a poll, a collect of returns and a pidfd
      // poll). A peer that dies within the millisecond is found as at any other send: by
      // the registration's sendmsg, or by the check a millisecond later.
      last_alive_check_ns_(coarse_now_ns()) {}

SendSide::~SendSide() {
    for (auto &[serial, sent] : sent_segments_)
        sent.segment->release_peer_fd(); // this end no longer has it registered
}

PX_HOT void SendSide::send(const Buffer &buf, int64_t timeout_ns, wire::StreamTag tag) {
    if (!send_unless_closed(buf, timeout_ns, tag))
        fail(Status::closed, gone_why_);
}

PX_HOT bool SendSide::send_unless_closed(const Buffer &buf, int64_t timeout_ns, wire::StreamTag tag,
                                  Returns returns) {
    // Take back what the peer returned. Pools collect when they run dry, but a loan that is
    // not a pool slot (a received buffer sent on: a relay) has no pool to ask for it. Done on
    // the way out (declared before the lock, so after it), once the record is out: reading the
    // return ring costs two cache-line transfers from the peer's CPU, which would otherwise
    // delay every record by as much.
    const int64_t coarse_now = coarse_now_ns(); // one reading for both throttles
    struct CollectAfter {
        ReturnInbox &inbox;
        int64_t now;
        bool enabled;
        ~CollectAfter() {
            if (enabled)
                inbox.collect(false, now);
        }
    } collect_after{inbox_, coarse_now, returns == Returns::after};
    std::unique_lock lock(mutex_, std::defer_lock);
    if (!stream_end_)
        lock.lock();
    try {
        return send_locked(buf, timeout_ns, tag, coarse_now);
    } catch (const Error &e) {
        if (e.status() == Status::closed)
            return false; // found deeper in: the registration's sendmsg, or waiting for room
        throw;
    }
}

PX_HOT bool SendSide::send_locked(const Buffer &buf, int64_t timeout_ns, wire::StreamTag tag,
                           int64_t coarse_now) {
    if (!broken_.empty())
        fail(Status::protocol, "the channel was dropped after a protocol error: " + broken_);
    if (!peer_alive(false, coarse_now))
        return false;
    // A send that never waits (a stream's, timeout 0) needs no deadline: reading the clock for
    // one was ~20 ns of each subscriber's share of a publish.
    const int64_t deadline = timeout_ns == 0 ? 0 : deadline_for(timeout_ns);
    const uint32_t segment_id = segment_id_for(buf, deadline, timeout_ns);
    const Ref<SharedFormat> &format = buf.shared_format();
    if (format) // untyped buffers (the common case) pay this test only
        sync_format(format, deadline, timeout_ns);
    // The entry first: once it is ours nothing can fail, so a loan is never made for a record
    // that does not go out. The record is written in place, from the buffer.
    uint8_t *entry = reserve_entry(deadline, timeout_ns);
    const uint64_t token = buf.lease() ? inbox_.lend(buf.lease()) : 0;
    const uint32_t len = wire::data_size;
    std::memcpy(entry, &len, sizeof len);
    wire::encode_data(segment_id, buf.offset(), buf.size(), token, tag, format.get() != nullptr,
                      buf.metadata(), entry + sizeof len);
    publish_entry();
    ++counters_.buffers_sent;
    return true;
}

PX_HOT uint32_t SendSide::segment_id_for(const Buffer &buf, int64_t deadline_ns, int64_t timeout_ns) {
    const uint64_t serial = buf.segment().serial();
    if (serial == last_sent_serial_) // frames of one pool in a row: skip the hash look-up
        return last_sent_id_;
    uint32_t id;
    auto it = sent_segments_.find(serial);
    if (it != sent_segments_.end()) {
        id = it->second.id;
    } else {
        forget_unused_segments(deadline_ns, timeout_ns);
        id = register_segment(buf.segment_ref());
    }
    last_sent_serial_ = serial;
    last_sent_id_ = id;
    return id;
}

SendSide::Counters SendSide::counters() const {
    std::lock_guard lock(mutex_);
    return counters_;
}

bool SendSide::peer_alive(bool now, int64_t coarse_now) {
    if (peer_gone_)
        return false;
    int64_t t = coarse_now < 0 ? coarse_now_ns() : coarse_now;
    if (!now && t - last_alive_check_ns_ < 1'000'000)
        return true;
    last_alive_check_ns_ = t;
    pollfd p{sock_, 0, 0}; // no events asked: only hang-up and errors are reported
    const bool hung_up = ::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL));
    if (hung_up || inbox_.peer_gone()) {
        peer_gone_ = true;
        gone_why_ = hung_up ? "the peer closed the channel" : "the peer's process has exited";
        return false;
    }
    return true;
}

void SendSide::check_peer_alive(bool now, int64_t coarse_now) {
    if (!peer_alive(now, coarse_now))
        fail(Status::closed, gone_why_);
}

PX_HOT uint8_t *SendSide::reserve_entry(int64_t deadline_ns, int64_t timeout_ns) {
    long slot;
    for (int spins = 0;; ++spins) {
        try {
            slot = ring_.reserve();
        } catch (const Error &e) {
            broken_ = e.what();
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
        wake_.after_publish(false); // now: a stream's flush comes only after this send
        collect_all_returns(false); // our receiver may wait for a loan we hold
        if (spins < 64)
            std::this_thread::yield();
        else
            std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    return cb_->data_entries[slot];
}

PX_HOT void SendSide::publish_entry() noexcept {
    cb_->data_producer_cpu.store(static_cast<uint32_t>(::sched_getcpu() + 1),
                                 std::memory_order_relaxed);
    ring_.publish();
    wake_.after_publish();
}

void SendSide::push_record(const wire::Bytes &rec, int64_t deadline_ns, int64_t timeout_ns) {
    uint8_t *entry = reserve_entry(deadline_ns, timeout_ns);
    uint32_t len = static_cast<uint32_t>(rec.size);
    std::memcpy(entry, &len, sizeof len);
    std::memcpy(entry + sizeof len, rec.data, rec.size);
    publish_entry();
}

void SendSide::sync_format(const Ref<SharedFormat> &f, int64_t deadline_ns,
                           int64_t timeout_ns) {
    if (f.get() == sent_format_.get())
        return;
    if (sent_format_ && std::memcmp(&f->get(), &sent_format_->get(), sizeof(Format)) == 0) {
        sent_format_ = f; // the same format made again: the next compare is by pointer
        return;
    }
    const wire::Bytes rec = wire::encode(f->get());
    uint8_t *entry = reserve_entry(deadline_ns, timeout_ns);
    const uint32_t len = static_cast<uint32_t>(rec.size);
    std::memcpy(entry, &len, sizeof len);
    std::memcpy(entry + sizeof len, rec.data, rec.size);
    // No wake: the data record right behind it wakes the receiver, which finds both. (Alone,
    // should the data record not go out, it would wake a receiver for nothing to receive.)
    ring_.publish();
    sent_format_ = f;
}

void SendSide::forget_unused_segments(int64_t deadline_ns, int64_t timeout_ns) {
    // A segment only this table still references can never be sent again: tell the peer (in
    // ring order, after every record that used it) so it can unmap it, and let it go here.
    for (auto it = sent_segments_.begin(); it != sent_segments_.end();) {
        if (it->second.segment->ref_count() == 1) {
            push_record(wire::encode(wire::Unregister{it->second.id}), deadline_ns, timeout_ns);
            if (it->first == last_sent_serial_)
                last_sent_serial_ = 0;
            it->second.segment->release_peer_fd();
            it = sent_segments_.erase(it);
        } else {
            ++it;
        }
    }
}

bool SendSide::register_ahead(const Ref<Segment> &segment) {
    std::lock_guard lock(mutex_);
    if (!broken_.empty())
        fail(Status::protocol, "the channel was dropped after a protocol error: " + broken_);
    if (sent_segments_.count(segment->serial()))
        return false;
    check_peer_alive(true);
    forget_unused_segments(deadline_for(0), 0);
    register_segment(segment);
    return true;
}

uint32_t SendSide::register_segment(const Ref<Segment> &segment) {
    Segment &seg = *segment;
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
    // Shared by the channels that have the segment registered (the peer gets a copy). The
    // registration is counted until it is made (sent and entered in sent_segments_), or
    // forgotten.
    const int fd = seg.acquire_peer_fd();
    struct Hold {
        const Segment &seg;
        bool kept = false;
        ~Hold() {
            if (!kept)
                seg.release_peer_fd();
        }
    } hold{seg};
    wire::SegmentInfo info;
    info.segment_id = next_segment_id_++;
    info.size = seg.size();
    info.page_size = seg.page_size();
    info.memory_type = static_cast<uint32_t>(seg.memory_type());
    auto bytes = wire::encode(info);
    try {
        send_message(sock_, bytes.data, bytes.size, &fd, 1);
    } catch (const Error &e) {
        if (e.status() == Status::closed)
            peer_gone_ = true;
        throw;
    }
    sent_segments_.emplace(seg.serial(), Sent{info.segment_id, segment});
    hold.kept = true;
    ++counters_.segments_registered;
    return info.segment_id;
}

} // namespace px::ipc
