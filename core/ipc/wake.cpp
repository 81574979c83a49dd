// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/ipc/wake.hpp"

#include <algorithm>
#include <cerrno>
#include <new>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/error.hpp"
#include "core/hot.hpp"
#include "core/ipc/wire.hpp"
#include "core/shared_memory_segment.hpp"

namespace px::ipc {

StreamWake::StreamWake()
    : segment_(shm::create("px-stream-wake", sizeof(StreamWakePage))),
      page_(new (segment_->mutable_data()) StreamWakePage{}) {}

PX_HOT void StreamWake::wake_now() noexcept {
    page_->word.fetch_add(1, std::memory_order_seq_cst);
    futex_wake_all(&page_->word);
}

PX_HOT void WakeSender::after_publish(bool defer) noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst); // pairs with the receiver's state store
    uint32_t state = cb_->data_state.load(std::memory_order_relaxed);
    if (state == consumer_sleeping || state == consumer_sleeping_stream) {
        // One wake per sleep: the first record marks the receiver active, so the records that
        // follow before it has run (a burst, a busy machine) make no system call each. The
        // receiver's futex_wait compares the word, bumped here (or by the stream's flush), so
        // it cannot sleep through.
        if (!cb_->data_state.compare_exchange_strong(state, consumer_active))
            return;
        if (state == consumer_sleeping_stream && stream_) {
            if (defer)
                stream_->due();
            else
                stream_->wake_now();
            return;
        }
        // (A receiver that says it sleeps on a stream's word on a plain channel lies: this
        // wakes nobody, and costs only it.)
        cb_->data_notify.fetch_add(1, std::memory_order_seq_cst);
        futex_wake_all(&cb_->data_notify);
        return;
    }
    if (state != consumer_away || !cb_->consumer_polls_fd.load(std::memory_order_relaxed) ||
        !cb_->data_state.compare_exchange_strong(state, consumer_away_woken))
        return;
    // The receiver polls px_channel_fd: make the socket readable. Unless it has taken every
    // record already (it was in recv until just now): a wake record then would leave
    // px_channel_fd readable with nothing to read.
    if (cb_->data_head.load(std::memory_order_acquire) >=
        cb_->data_tail.load(std::memory_order_relaxed)) {
        uint32_t woken = consumer_away_woken;
        cb_->data_state.compare_exchange_strong(woken, consumer_away);
        return;
    }
    auto wake = wire::encode_wake();
    [[maybe_unused]] ssize_t n = ::send(sock_, wake.data, wake.size, MSG_DONTWAIT | MSG_NOSIGNAL);
}

bool WakeSender::consumer_shares_cpu() const noexcept {
    const uint32_t cpu = cb_->data_consumer_cpu.load(std::memory_order_relaxed);
    return cpu != 0 && cpu == static_cast<uint32_t>(::sched_getcpu() + 1);
}

void WakeSender::on_close() noexcept {
    // (After fork() this may wake a receiver of the other process, and make its polls read the
    // socket: harmless.)
    cb_->producer_closing.store(1, std::memory_order_release);
    cb_->data_notify.fetch_add(1, std::memory_order_seq_cst);
    futex_wake_all(&cb_->data_notify);
    // A subscriber asleep on its stream's word (the publisher dropped it, or is going): the
    // others asleep there wake for nothing and sleep again. One that hung up is not asleep.
    if (stream_ && cb_->data_state.load(std::memory_order_seq_cst) == consumer_sleeping_stream)
        stream_->wake_now();
}

int WakeReceiver::fd() {
    std::call_once(made_, [this] {
        FdGuard doorbell{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
        if (doorbell.fd < 0)
            fail_errno("eventfd (for px_channel_fd)", errno);
        FdGuard poll{::epoll_create1(EPOLL_CLOEXEC)};
        if (poll.fd < 0)
            fail_errno("epoll_create1 (for px_channel_fd)", errno);
        epoll_event on_socket{};
        on_socket.events = EPOLLIN | EPOLLRDHUP;
        on_socket.data.fd = sock_;
        epoll_event on_doorbell{};
        on_doorbell.events = EPOLLIN;
        on_doorbell.data.fd = doorbell.fd;
        if (::epoll_ctl(poll.fd, EPOLL_CTL_ADD, sock_, &on_socket) < 0 ||
            ::epoll_ctl(poll.fd, EPOLL_CTL_ADD, doorbell.fd, &on_doorbell) < 0)
            fail_errno("epoll_ctl (for px_channel_fd)", errno);
        doorbell_ = std::move(doorbell);
        poll_guard_ = std::move(poll);
        poll_fd_.store(poll_guard_.fd, std::memory_order_release);
        cb_->consumer_polls_fd.store(1, std::memory_order_seq_cst);
    });
    return poll_fd_.load(std::memory_order_acquire);
}

bool WakeReceiver::polled() const noexcept {
    return cb_->consumer_polls_fd.load(std::memory_order_relaxed) != 0 &&
           poll_fd_.load(std::memory_order_acquire) >= 0;
}

PX_HOT bool WakeReceiver::enter() noexcept {
    // A receiver that never asked for the fd writes nothing here: that cache line is one the
    // sender reads on every send.
    // The doorbell is left as it is: leave() sets it for the ring it leaves behind (clearing
    // it here and ringing it again there cost a read and a write per recv of a backlog).
    polls_ = polled();
    return polls_ && cb_->data_state.exchange(consumer_active, std::memory_order_seq_cst) ==
                         consumer_away_woken;
}

PX_HOT void WakeReceiver::leave(const RingConsumer &ring) noexcept {
    if (!polls_)
        return;
    if (!ring.empty()) {
        // Records wait: the doorbell says so, and the sender need not ring the socket for the
        // ones that follow (the ring only empties in recv, which comes back here).
        ring_if_waiting(ring);
        cb_->data_state.store(consumer_away_rung, std::memory_order_seq_cst);
        return;
    }
    cb_->data_state.store(consumer_away, std::memory_order_seq_cst);
    // Dekker with after_publish: a record published before the store above found us active
    // and rang nothing; one published after it rings the socket.
    if (!ring.empty())
        ring_if_waiting(ring);
    else if (doorbell_rung_)
        clear_doorbell();
}

void WakeReceiver::ring_if_waiting(const RingConsumer &ring) noexcept {
    if (doorbell_rung_ || ring.empty() || doorbell_.fd < 0)
        return;
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(doorbell_.fd, &one, sizeof one);
    doorbell_rung_ = true;
}

void WakeReceiver::clear_doorbell() noexcept {
    uint64_t v;
    [[maybe_unused]] ssize_t n = ::read(doorbell_.fd, &v, sizeof v);
    doorbell_rung_ = false;
}

void WakeReceiver::note_cpu() noexcept {
    const uint32_t cpu = static_cast<uint32_t>(::sched_getcpu() + 1);
    if (cb_->data_consumer_cpu.load(std::memory_order_relaxed) != cpu)
        cb_->data_consumer_cpu.store(cpu, std::memory_order_relaxed);
}

void WakeReceiver::sleep(const RingConsumer &ring, int64_t max_ns) noexcept {
    std::atomic<uint32_t> *word = stream_ ? &stream_->word : &cb_->data_notify;
    uint32_t seen = word->load(std::memory_order_acquire);
    cb_->data_consumer_cpu.store(static_cast<uint32_t>(::sched_getcpu() + 1),
                                 std::memory_order_relaxed);
    cb_->data_state.store(stream_ ? consumer_sleeping_stream : consumer_sleeping,
                          std::memory_order_seq_cst);
    if (ring.empty())
        futex_wait(word, seen, std::min<int64_t>(max_ns, slice_ns));
    cb_->data_state.store(consumer_active, std::memory_order_seq_cst);
}

void WakeReceiver::sleep_on(Ref<Segment> page, size_t offset, size_t len) {
    static_assert(sizeof(StreamWakePage) == 2 * sizeof(std::atomic<uint32_t>));
    if (len < sizeof(StreamWakePage) || offset % alignof(std::atomic<uint32_t>) != 0)
        fail(Status::protocol, "a stream wake page of " + std::to_string(len) +
                                   " bytes at offset " + std::to_string(offset) +
                                   " (two 4-byte aligned words are needed)");
    cpu_set_t set;
    CPU_ZERO(&set);
    cpus_ = ::sched_getaffinity(0, sizeof set, &set) == 0
                ? static_cast<uint32_t>(std::max(CPU_COUNT(&set), 1))
                : static_cast<uint32_t>(std::max(::sysconf(_SC_NPROCESSORS_ONLN), 1L));
    // Only ever loaded and waited on here (the mapping is read-only): the futex call reads it.
    stream_ = reinterpret_cast<StreamWakePage *>(const_cast<std::byte *>(page->data()) + offset);
    stream_page_ = std::move(page);
}

} // namespace px::ipc
