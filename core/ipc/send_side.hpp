// SPDX-License-Identifier: Apache-2.0 OR MIT
// The send side of a channel end: its data ring (the records it produces), the segments whose
// fds the peer has, and the wake-up of the receiver. One mutex guards all of it, so two threads
// sending on one end take turns.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/buffer.hpp"
#include "core/ipc/return_path.hpp"
#include "core/ipc/ring.hpp"
#include "core/ipc/wake.hpp"
#include "core/ipc/wire.hpp"
#include "core/ref.hpp"

namespace px::ipc {

// Registered send-side segments kept alive for the peer before sends are refused.
constexpr size_t max_sent_segments = 256;

// When a send reads the returns its peer made (see SendSide::send_unless_closed).
enum class Returns { after, by_caller };

class SendSide {
public:
    // `own_control`: this end's control block (the data ring lives there); `sock`: the main
    // socket (registrations, wake records); `inbox`: where loans are recorded.
    SendSide(int sock, const Ref<Segment> &own_control, ReturnInbox &inbox) noexcept;
    ~SendSide(); // lets go of the registered segments' peer fds (Segment::acquire_peer_fd)
    SendSide(const SendSide &) = delete;
    SendSide &operator=(const SendSide &) = delete;

    // timeout_ns bounds the wait while the peer is too far behind (< 0: forever). `tag`: what
    // the record is to a stream (a plain channel sends frames numbered 0). A typed buffer whose
    // format differs from the last one sent on this end takes a format record before its data
    // record: two ring entries. The format record goes out (unannounced: the data record wakes
    // the receiver) only once its entry is ours; if the data record then finds the ring full,
    // send fails as for a full ring (would_block or timeout), and the format record stays in
    // force, so the retry needs one entry. A stream's credit (max_in_flight <= 128) leaves room
    // in the 256 entries for a format record before every frame.
    void send(const Buffer &buf, int64_t timeout_ns, wire::StreamTag tag = {});
    // send, except that a peer found gone answers false instead of throwing closed: a stream
    // drops a departed subscriber without the cost of an exception (its allocation, unwinding
    // and message: several us, more on a loaded machine). The usual way is a check before
    // anything is sent, which throws nothing; a hang-up found by the segment registration's
    // sendmsg, or while waiting for room, is caught here. Every other failure throws as send.
    // `returns`: after (the default) reads the peer's returns once the record is out; by_caller
    // leaves them to the caller's next in_flight(): a stream sends to every subscriber first.
    [[nodiscard]] bool send_unless_closed(const Buffer &buf, int64_t timeout_ns,
                                          wire::StreamTag tag = {},
                                          Returns returns = Returns::after);
    // Registers `segment` with the peer now (its fd passed on the socket) unless the peer has it
    // already, so that the next send from it is a ring record only: a stream registers its
    // segments with a joining subscriber in steps of their own, before the welcome, instead of
    // in the publish that sends its first frame. No ring record; nothing the receiver sees
    // until a record uses it. False when the peer had it; throws as send (closed when the peer
    // has gone, busy past max_sent_segments, unsupported for heap or mapped-file memory).
    bool register_ahead(const Ref<Segment> &segment);
    // The end closes: wake a receiver asleep on the ring.
    void on_close() noexcept { wake_.on_close(); }
    // The channel is a stream's, to a subscriber: see WakeSender::set_stream. Its publisher
    // makes every call on this side under its own lock from now on, so sends take no lock of
    // their own (a locked instruction on a cold line, which held up every load after it: ~1-2%
    // of a spinning subscriber's latency, issue 13).
    void set_stream(Ref<StreamWake> stream) {
        std::lock_guard lock(mutex_);
        wake_.set_stream(std::move(stream));
        stream_end_ = true;
    }
    // A stream publisher's end (set_stream).
    bool stream_end() const noexcept { return stream_end_; }
    bool receiver_shares_cpu() const noexcept { return wake_.consumer_shares_cpu(); }
    uint64_t receiver_position() const noexcept { return wake_.consumer_position(); }

    struct Counters {
        uint64_t buffers_sent = 0;
        uint64_t segments_registered = 0;
    };
    Counters counters() const;

private:
    uint32_t segment_id_for(const Buffer &buf, int64_t deadline_ns, int64_t timeout_ns);
    // A record goes out as reserve_entry (waits while the ring is full; throws), writing it
    // there, then publish_entry.
    uint8_t *reserve_entry(int64_t deadline_ns, int64_t timeout_ns);
    void publish_entry() noexcept;
    void push_record(const wire::Bytes &rec, int64_t deadline_ns, int64_t timeout_ns);
    // Sends a format record unless `f` is the one the receiver has in force.
    void sync_format(const Ref<SharedFormat> &f, int64_t deadline_ns, int64_t timeout_ns);
    // False once the peer has gone: its socket hung up or its process exited (gone_why_ says
    // which). Looks at most once a millisecond, unless `now`. coarse_now: the caller's
    // coarse_now_ns(), or < 0.
    bool peer_alive(bool now, int64_t coarse_now = -1);
    // peer_alive, throwing closed when it is not.
    void check_peer_alive(bool now, int64_t coarse_now = -1);
    // send's work; false when peer_alive found the peer gone before anything was sent.
    bool send_locked(const Buffer &buf, int64_t timeout_ns, wire::StreamTag tag,
                     int64_t coarse_now);
    void forget_unused_segments(int64_t deadline_ns, int64_t timeout_ns);
    uint32_t register_segment(const Ref<Segment> &segment);

    const int sock_;
    ControlBlock *const cb_;
    ReturnInbox &inbox_;
    WakeSender wake_;

    struct Sent {
        uint32_t id;
        Ref<Segment> segment;
    };
    // set_stream: every call is made under the caller's lock (a stream publisher's), and sends
    // skip mutex_. Written under both locks, before the stream's first send.
    bool stream_end_ = false;
    mutable std::mutex mutex_; // guards everything below (stream_end_: the caller's lock does)
    RingProducer ring_;
    std::unordered_map<uint64_t, Sent> sent_segments_; // by Segment::serial()
    uint32_t next_segment_id_ = 1;
    uint64_t last_sent_serial_ = 0; // the segment of the last send (0: none) and its id
    uint32_t last_sent_id_ = 0;
    Counters counters_;
    int64_t last_alive_check_ns_; // check_peer_alive's throttle; starts at construction
    bool peer_gone_ = false;
    std::string broken_; // non-empty once the peer lied about the ring
    // The format of the last format record sent (null: none yet). Compared by pointer first
    // (clones of one buffer, frames of a pool given one shared format), then by bytes. (Last:
    // the members above are laid out as before typed frames existed.)
    Ref<SharedFormat> sent_format_;
    const char *gone_why_ = "the peer closed the channel"; // set with peer_gone_
};

} // namespace px::ipc
