// SPDX-License-Identifier: Apache-2.0 OR MIT
// The receive side of a channel end: the peer's data ring (records it consumes), the segments
// the peer registered, and the receiver's half of the wake-up protocol. One mutex guards all of
// it, so two threads receiving on one end take turns.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/buffer.hpp"
#include "core/error.hpp"
#include "core/ipc/return_path.hpp"
#include "core/ipc/ring.hpp"
#include "core/ipc/wake.hpp"
#include "core/ipc/wire.hpp"
#include "core/ref.hpp"

namespace px::ipc {

constexpr int64_t default_spin_ns = 20'000;

// Limits against a hostile peer.
constexpr size_t max_segments_per_channel = 1024;

// What a layer above makes of each record a receive takes (a stream's subscriber: its
// numbering, its descriptions), judged under the receive side's lock, so in the order the
// records were taken, and with no lock of the layer's own. keep: true to return the record;
// false when it was the layer's to consume (the receive then waits on, within its timeout). May
// throw: the record is dropped and the receive fails with the exception.
class RecordFilter {
  public:
    virtual bool keep(const Buffer &record, const wire::StreamTag &tag) = 0;

  protected:
    ~RecordFilter() = default;
};

class RecvSide {
  public:
    // `peer_control`: the peer's control block (its data ring); `sock`: the main socket;
    // `outbox`: where received loans go back; `inbox`: tells whether the peer has gone.
    RecvSide(int sock, const Ref<Segment> &peer_control, ReturnOutbox &outbox,
             ReturnInbox &inbox) noexcept;

    // timeout_ns: < 0 forever, 0 poll (would_block), > 0 wait (timeout). `tag` (nullable)
    // receives what the record is to a stream; without it, only plain frames are accepted (a
    // stream's own record on a plain channel is a protocol error).
    Buffer recv(int64_t timeout_ns, wire::StreamTag *tag = nullptr);
    // recv without an exception for "nothing yet": nullopt when timeout_ns is 0 and nothing is
    // there (a busy-polling caller meets that case millions of times; a throw costs ~4 us).
    // `filter` (nullable) judges each record first (RecordFilter).
    std::optional<Buffer> receive(int64_t timeout_ns, wire::StreamTag *tag = nullptr,
                                  RecordFilter *filter = nullptr);
    // recv's busy-poll budget before sleeping: 0 never spins, < 0 never sleeps.
    void set_spin_ns(int64_t ns) noexcept { spin_ns_.store(ns, std::memory_order_relaxed); }
    // Pollable: readable when recv may not block. Made at the first call (throws io when the
    // process is out of fds).
    int fd();
    // A layer above found the peer breaking its protocol: the connection is dropped as for a
    // protocol error of the channel's own (later calls fail with `why`; the peer sees hang-up).
    void abandon(const std::string &why);
    uint64_t buffers_received() const;
    // A stream subscriber's recv sleeps on its stream's wake word from now on (WakeReceiver::
    // sleep_on): `page` is the publisher's record of it. Throws protocol when it is malformed.
    void sleep_on_stream(const Buffer &page) {
        std::lock_guard lock(mutex_);
        wake_.sleep_on(page.segment_ref(), page.offset(), page.size());
    }

  private:
    std::optional<Buffer> take_any(int64_t timeout_ns);
    std::optional<Buffer> poll_once();
    Buffer wait_for_record(int64_t timeout_ns);
    // Spins on the ring up to `spin` ns (< 0: until the deadline); returns the last clock
    // reading.
    int64_t spin_for_record(int64_t start, int64_t deadline, int64_t spin);
    // Sleeps on the ring's futex for at most one slice; returns the clock reading after.
    int64_t sleep_for_record(int64_t now, int64_t deadline);
    bool peer_closed() noexcept;
    // The sender last published from the CPU this thread runs on (a hint: either may move).
    bool producer_shares_cpu() const noexcept;

    std::optional<Buffer> take_record();
    // A ring entry that is not a data record (format, unregister), consumed. Out of line: its
    // decoded Record (~500 bytes) stays off the stack frame of the data records' fast path.
    [[gnu::noinline]] void take_other_record(const uint8_t *shared, uint32_t len);
    // Reads what the socket holds (`until_wake`: up to the first wake record); returns how many
    // segments were registered.
    size_t pump_socket(bool until_wake = false);
    // An empty poll's question: read the socket now (see empty_poll_socket_interval_ns)?
    bool socket_due() noexcept;
    void handle_record(const uint8_t *bytes, size_t len, std::vector<int> &fds);
    void handle_segment(const wire::SegmentInfo &info, std::vector<int> &fds);
    Buffer make_buffer(const wire::Data &d);
    // Throws protocol unless a format is in force and fits the typed record `d`.
    void check_format(const wire::Data &d);
    void forget_segment_cache() noexcept; // before any erase from segments_
    // A failure that ends the connection: protocol errors, and fds we could not take.
    void drop(Status status, const std::string &why);
    [[noreturn]] void fail_dropped() const;

    const int sock_;
    ControlBlock *const cb_;
    ReturnOutbox &outbox_;
    ReturnInbox &inbox_;
    std::atomic<int64_t> spin_ns_{default_spin_ns};

    mutable std::mutex mutex_; // guards everything below
    RingConsumer ring_;
    WakeReceiver wake_;
    std::unordered_map<uint32_t, Ref<Segment>> segments_; // registered by the peer, by id
    uint32_t last_id_ = 0; // the segment of the last record (0: none) and its entry
    const Ref<Segment> *last_segment_ = nullptr;
    uint64_t buffers_received_ = 0;
    wire::StreamTag last_tag_; // of the record take_record() answered last
    bool peer_hung_up_ = false;
    // When an empty poll last read the socket (socket_due).
    int64_t last_socket_read_ns_ = INT64_MIN / 2;
    std::string dropped_;                      // non-empty once a failure dropped the connection
    Status dropped_status_ = Status::protocol; // what later calls answer then
    // The format of the peer's last format record (null: none yet), shared by every buffer
    // received under it; and the shortest length it has been checked to fit (it fits any
    // longer one too), so that frames of one size check it once. (Last: the members above are
    // laid out as before typed frames existed, for the untyped path's cache lines.)
    Ref<SharedFormat> format_;
    uint64_t format_fits_from_ = UINT64_MAX;
};

} // namespace px::ipc
