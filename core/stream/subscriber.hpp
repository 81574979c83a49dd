// SPDX-License-Identifier: Apache-2.0 OR MIT
// Subscriber: one stream's frames, received over a channel from its publisher (publisher.hpp).
//
// The publisher's first record is its welcome (or, when it is full, its refusal): the stream's
// description at join, and the number of the first frame this subscriber will be sent; then
// the stream's wake page (ipc/wake.hpp's StreamWake), whose word recv sleeps on. Frames
// follow in the stream's numbering; a gap is what this subscriber missed (the publisher had no
// room for it). Description records arrive in order with frames: the description in force for
// a frame is the last one received before it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <sys/types.h>

#include "core/buffer.hpp"
#include "core/ipc/channel.hpp"
#include "core/ref.hpp"

namespace px::stream {

struct SubscriberStats {
    uint64_t received = 0;
    uint64_t missed = 0;
    uint64_t publisher_pid = 0;
};

class Subscriber final : public RefCounted, private ipc::RecordFilter {
public:
    // Waits up to timeout_ns for a publisher of `name` to appear and admit this subscriber:
    // busy when it is full; would_block / timeout when none did in time.
    static Ref<Subscriber> create(const std::string &name, int64_t timeout_ns);

    // The next frame. Throws closed once the publisher has gone and everything it sent has
    // been received (buffers already received stay valid).
    Buffer recv(int64_t timeout_ns);
    // recv without an exception for "nothing yet" (nullopt, timeout 0 only): a busy poll.
    std::optional<Buffer> receive(int64_t timeout_ns);
    // In force for the last frame received (before the first: the one current at join).
    // Shared and immutable: reading it copies no text.
    std::shared_ptr<const std::string> description() const;
    // Changes whenever description() starts answering with another record (1 from the join
    // on): a caller compares it with the last value it saw instead of reading the text at
    // every frame. Lock-free.
    uint64_t description_version() const {
        return description_version_.load(std::memory_order_acquire);
    }
    // Pollable: readable when recv may not block (it may still find only a description).
    int fd() { return ch_->fd(); }
    // recv's busy-poll budget before it sleeps, as a channel's: 0 never spins, < 0 never
    // sleeps (the channel's ring is what recv waits on).
    void set_spin_ns(int64_t ns) noexcept { ch_->set_spin_ns(ns); }
    SubscriberStats stats() const;

private:
    Subscriber(std::string name, Ref<ipc::Channel> ch)
        : name_(std::move(name)), ch_(std::move(ch)) {}
    void join(int64_t deadline_ns);
    // One of the join's records (the welcome, then the wake page), within its deadline; a
    // timeout or a publisher gone meanwhile is said in the join's terms.
    Buffer recv_joining(int64_t deadline_ns, ipc::wire::StreamTag *tag);
    static Ref<Subscriber> connect_and_join(const std::string &name, const std::string &socket,
                                            int64_t deadline);
    static constexpr useconds_t retry_join_us = 10'000; // between joins the publisher cut off
    // A record's bookkeeping, under the channel's receive lock (ipc::RecordFilter): a
    // description is kept for the frames after it (false), a frame counted (true); anything
    // else, or a number that does not grow, throws protocol.
    bool keep(const Buffer &record, const ipc::wire::StreamTag &tag) override;
    // The text of a description record (the peer's word: its length is checked).
    static std::string text_of(const Buffer &b);

    const std::string name_;
    Ref<ipc::Channel> ch_;

    // The receiving thread's own, under the channel's receive lock (one receive at a time, so
    // frames are numbered in the order taken): a frame's bookkeeping takes no lock of its own,
    // so that it adds as little as it can to the frame's latency.
    // Shared, so that a frame takes the one in force without copying up to 64 KiB.
    std::shared_ptr<const std::string> pending_description_; // the last one received
    uint64_t next_seq_ = 0; // the number the next frame should have
    // Written by the receiving thread only, read by stats() from any thread.
    std::atomic<uint64_t> received_{0}, missed_{0};
    uint64_t publisher_pid_ = 0; // set by the join, before anyone else sees this

    mutable std::mutex state_mutex_; // guards description_ (read by description())
    std::shared_ptr<const std::string> description_; // in force for the last frame received;
                                                     // written by the receiving thread only
    std::atomic<uint64_t> description_version_{0}; // see description_version()
};

} // namespace px::stream
