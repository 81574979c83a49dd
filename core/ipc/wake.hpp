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
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "core/fd_guard.hpp"
#include "core/ipc/ring.hpp"

namespace px::ipc {

// The sender's half, on its own control block.
class WakeSender {
public:
    WakeSender() = default;
    WakeSender(ControlBlock *own, int sock) noexcept : cb_(own), sock_(sock) {}
    // After a record was published.
    void after_publish() noexcept;
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
    bool polls_ = false;       // this recv publishes its state (the receiver polls the fd)
    bool doorbell_rung_ = false;
    uint32_t records_ = 0;     // records taken (took_record)
    std::once_flag made_;      // the epoll set and the doorbell
    std::atomic<int> poll_fd_{-1};
    FdGuard poll_guard_{-1};
    FdGuard doorbell_{-1};
};

} // namespace px::ipc
