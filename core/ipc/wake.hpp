// SPDX-License-Identifier: Apache-2.0 OR MIT
// The wake-up protocol of a data ring: how a sender makes sure a receiver that is not looking
// at the ring learns that a record arrived, at the lowest cost for the common cases.
//
// The receiver publishes where it is in the ring's control block (data_state, ring.hpp):
//   active      inside recv, looking at the ring             -> the sender does nothing
//   sleeping    inside recv, asleep on the futex data_notify -> the sender marks it active (so
//               one wake serves a burst), bumps data_notify and futex-wakes
//   away        outside recv                                 -> if the receiver polls
//               px_channel_fd (consumer_polls_fd), the sender puts one wake record on the
//               socket and moves the state to away_woken; otherwise nothing (a receiver that
//               only calls recv looks at the ring when it comes back)
//   away_woken  outside recv, a wake record is on the socket -> nothing more
//   away_rung   outside recv, it left records in the ring    -> nothing: its doorbell (below)
//               keeps px_channel_fd readable until it comes back
// Ordering (Dekker): the sender publishes its record, fences, then reads the state; the
// receiver stores its state, fences, then looks at the ring. One of them sees the other.
//
// px_channel_fd is an epoll set of the socket (wake records, registrations, hang-up) and a
// doorbell eventfd the receiver rings itself when it leaves recv with records still in the
// ring: those arrived while it was active, so the sender rang nothing for them. Both fds are
// made at the first px_channel_fd call: an end that is never polled does not pay for them.
// The doorbell follows the ring as the receiver leaves recv (rung while records wait, cleared
// once none do), so a receiver draining a backlog one recv at a time makes no system call for
// it: each eventfd write or read is a change between "records wait" and "none".
//
// A stream's subscribers sleep on one word instead (StreamWake below): a publish to N sleeping
// subscribers puts the frame in every ring, then wakes them all with one futex call, where a
// word per ring cost N calls, and the last subscriber waited for the N - 1 wakes before its own
// (4-5 us each on a VM, where waking a task on another vCPU is an IPI).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "core/fd_guard.hpp"
#include "core/ipc/ring.hpp"
#include "core/ref.hpp"
#include "core/segment.hpp"

namespace px::ipc {

// A stream's wake word: a futex word in a small shared-memory page of the publisher's, mapped
// read-only by each subscriber (sent to it once, after its welcome). A subscriber about to sleep
// reads the word, publishes consumer_sleeping_stream, looks at its ring once more, and sleeps on
// the word; the publisher, finding that state after a record (WakeSender::after_publish), marks
// a wake due, and once the frame is out to everyone bumps the word and wakes all its sleepers.
// Used under the publisher's lock (due() and flush()); wake_now() from any thread.
//
// The page's second word is the number of subscribers, for a subscriber deciding whether to
// spin: with more processes in the stream than CPUs to run them, a bounded spin takes the CPU
// from the very subscribers the frame is also for (WakeReceiver::crowded).
struct StreamWakePage {
    std::atomic<uint32_t> word;        // the futex word
    std::atomic<uint32_t> subscribers; // admitted now (the publisher's count)
};

class StreamWake final : public RefCounted {
public:
    StreamWake();
    // The page, as the buffer sent to subscribers (no lease: it is not a loan).
    const Ref<Segment> &page() const noexcept { return segment_; }
    void due() noexcept { due_.store(true, std::memory_order_relaxed); }
    // Wakes the subscribers asleep on the word if a record made a wake due since the last call.
    void flush() noexcept {
        if (due_.load(std::memory_order_relaxed)) {
            due_.store(false, std::memory_order_relaxed);
            wake_now();
        }
    }
    void wake_now() noexcept;
    void set_subscribers(size_t n) noexcept {
        const uint32_t v = static_cast<uint32_t>(n);
        if (page_->subscribers.load(std::memory_order_relaxed) != v)
            page_->subscribers.store(v, std::memory_order_relaxed);
    }

private:
    Ref<Segment> segment_;
    StreamWakePage *page_;
    std::atomic<bool> due_{false};
};

// The sender's half, on its own control block.
class WakeSender {
public:
    WakeSender() = default;
    WakeSender(ControlBlock *own, int sock) noexcept : cb_(own), sock_(sock) {}
    // After a record was published. `defer`: a receiver asleep on its stream's word is woken
    // by the publisher's StreamWake::flush (the stream's sends all end with one); else now.
    void after_publish(bool defer = true) noexcept;
    // The channel is a stream's, to a subscriber (set once, before its first record).
    void set_stream(Ref<StreamWake> stream) noexcept { stream_ = std::move(stream); }
    // The end is closing: a receiver asleep on the ring wakes now and finds the hang-up.
    void on_close() noexcept;
    // The receiver last slept on the CPU this thread runs on (a hint: it may have moved).
    bool consumer_shares_cpu() const noexcept;
    // How many records the receiver has taken so far (its ring position).
    uint64_t consumer_position() const noexcept {
        return cb_->data_head.load(std::memory_order_relaxed);
    }

private:
    ControlBlock *cb_ = nullptr;
    int sock_ = -1;
    Ref<StreamWake> stream_; // null: a plain channel
};

// The receiver's half, on the peer's control block. Everything but fd() runs under the
// receive side's lock.
class WakeReceiver {
public:
    WakeReceiver() = default;
    WakeReceiver(ControlBlock *peer, int sock) noexcept : cb_(peer), sock_(sock) {}
    WakeReceiver(const WakeReceiver &) = delete;
    WakeReceiver &operator=(const WakeReceiver &) = delete;

    // The pollable fd, made at the first call (throws io when the process is out of fds);
    // from then on the sender rings the socket for a receiver outside recv. Any thread.
    int fd();
    // Whether px_channel_fd was asked for (only then does recv publish its state).
    bool polled() const noexcept;

    // recv starts: true when a wake record waits on the socket (the caller reads it now).
    bool enter() noexcept;
    // recv ends: records still waiting keep the doorbell rung (px_channel_fd stays readable,
    // and the sender need not ring the socket); with none, the doorbell is cleared and the
    // sender rings the socket for the next record.
    void leave(const RingConsumer &ring) noexcept;
    // Rings the doorbell if records wait and it is not rung (fd()'s first call, under the lock).
    void ring_if_waiting(const RingConsumer &ring) noexcept;
    // Sleeps until the sender publishes, at most min(max_ns, slice_ns): the slice bounds how
    // long a dead sender's silence goes unnoticed.
    void sleep(const RingConsumer &ring, int64_t max_ns) noexcept;
    // From now on sleep() sleeps on a stream's wake word, the StreamWakePage at `offset` of
    // `page` (mapped read-only here; kept mapped while this lives). Throws protocol when the
    // window is too small or misaligned.
    void sleep_on(Ref<Segment> page, size_t offset, size_t len);
    // The stream has more processes (its subscribers and the publisher) than this thread has
    // CPUs to run on: a bounded spin before sleeping only delays the others. False for a
    // plain channel.
    bool crowded() const noexcept {
        return stream_ && stream_->subscribers.load(std::memory_order_relaxed) + 1 > cpus_;
    }

    static constexpr int64_t slice_ns = 20'000'000;

    // A record was taken: every 64th, the CPU we run on goes into the hint a sleep writes
    // (WakeSender::consumer_shares_cpu), so that a receiver that never sleeps because the
    // sender keeps ahead of it (one that shares the sender's CPU and runs only when the sender
    // yields to it) is known too. A store only when the CPU changed.
    void took_record() noexcept {
        if ((++records_ & 63) == 0)
            note_cpu();
    }

private:
    void clear_doorbell() noexcept;
    void note_cpu() noexcept;

    ControlBlock *cb_ = nullptr;
    int sock_ = -1;
    Ref<Segment> stream_page_; // sleep_on's segment, kept mapped
    StreamWakePage *stream_ = nullptr; // in it (null: sleep on data_notify); read-only memory
    uint32_t cpus_ = 1; // CPUs this thread may run on, as of sleep_on
    bool polls_ = false;       // this recv publishes its state (the receiver polls the fd)
    bool doorbell_rung_ = false;
    uint32_t records_ = 0;     // records taken (took_record)
    std::once_flag made_;      // the epoll set and the doorbell
    std::atomic<int> poll_fd_{-1};
    FdGuard poll_guard_{-1};
    FdGuard doorbell_{-1};
};

} // namespace px::ipc
