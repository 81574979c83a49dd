// SPDX-License-Identifier: Apache-2.0 OR MIT
// Shared-memory control block of a channel end: the fast path of issue 7.
//
// Each end creates one control block (a sealed memfd) and hands it to its peer in the handshake.
// It holds two single-producer/single-consumer rings:
//   - the data ring: the owner produces descriptor records, the peer consumes them;
//   - the return ring: the peer produces slot-return tokens, the owner consumes them.
// Both processes map the block read-write, so either may scribble on it. Each side therefore
// keeps its own index privately and only publishes it; every index read from the block is
// checked (0 <= tail - head <= capacity), and every entry is copied out once into private memory
// before it is decoded and validated. A violation is a protocol error, never a wild access.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/cpu_relax.hpp"
#include "core/fd_guard.hpp"
#include "core/ref.hpp"
#include "core/segment.hpp"

namespace px::ipc {

constexpr size_t data_ring_entries = 256;
constexpr size_t data_entry_size = 192; // a 4-byte length, then the record
constexpr size_t return_ring_entries = 1024;

// States of the data ring's consumer, as seen by the producer deciding how to wake it.
enum ConsumerState : uint32_t {
    consumer_active = 0,     // inside recv, polling the ring: no wake needed
    consumer_sleeping = 1,   // inside recv, asleep on the futex word: futex wake
    consumer_away = 2,       // outside recv: one wake record, if it polls px_channel_fd
    consumer_away_woken = 3, // outside recv, a wake record is already on the socket
    // outside recv, records were waiting when it left: its doorbell keeps px_channel_fd
    // readable, so a wake record would only cost a send and a read
    consumer_away_rung = 4,
    // inside recv, asleep on its stream's wake word (a stream subscriber, wake.hpp's
    // StreamWake): the publisher wakes every such subscriber with one call once its frame is
    // out to all of them
    consumer_sleeping_stream = 5
};

struct alignas(64) ControlBlock {
    static constexpr uint64_t magic_value = 0x50584354524c3031ull; // "PXCTRL01"
    uint64_t magic;
    alignas(64) std::atomic<uint64_t> data_tail;
    // 1 + the CPU the producer last published from (0: unknown). A hint for a spinning
    // consumer: on the producer's CPU, spinning only keeps the producer from running.
    std::atomic<uint32_t> data_producer_cpu;
    // Set by a producer end that is closing: a consumer that polls with recv(0) reads the
    // socket (and finds the hang-up) at its next empty poll instead of at its next periodic
    // look. Only ever a reason to read the socket, never taken for the hang-up itself (a forked
    // copy of the end may set it while the end lives on). On the line the consumer reads anyway.
    std::atomic<uint32_t> producer_closing;
    alignas(64) std::atomic<uint64_t> data_head;
    alignas(64) std::atomic<uint32_t> data_state;  // ConsumerState
    std::atomic<uint32_t> data_notify;             // futex word, bumped to wake a sleeper
    std::atomic<uint32_t> consumer_polls_fd;       // the consumer asked for px_channel_fd
    // 1 + the CPU the consumer last went to sleep on (0: unknown). A hint for a producer that
    // finds it behind: sharing its CPU, the consumer runs only if the producer gives the CPU up.
    std::atomic<uint32_t> data_consumer_cpu;
    alignas(64) std::atomic<uint64_t> return_tail;
    alignas(64) std::atomic<uint64_t> return_head;
    alignas(64) std::atomic<uint32_t> owner_waits_for_returns;
    alignas(64) uint8_t data_entries[data_ring_entries][data_entry_size];
    std::atomic<uint64_t> return_entries[return_ring_entries];
};
static_assert(std::atomic<uint64_t>::is_always_lock_free &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "rings in shared memory need address-free atomics");

// A new control block: its mapping (a segment that keeps no fd) and the sealed memfd behind it,
// to hand to the peer in the handshake and close after.
struct NewControlBlock {
    Ref<Segment> block;
    FdGuard fd{-1};
};
NewControlBlock create_control_block();
// create_control_block in two halves, for a caller that makes one in pieces (Listener): the
// sealed memfd, then its mapping with the block's start state.
// The name of every control block's memfd (tests count mappings by it; an offer made ahead
// creates its memfd in two pieces under the same name).
inline constexpr const char *control_memfd_name = "parallax-channel";
FdGuard create_control_memfd();
Ref<Segment> map_new_control_block(int fd);
// Validates and maps a peer's control block fd (read-write; the caller keeps the fd); throws
// protocol when unfit.
Ref<Segment> map_peer_control_block(int fd);
inline ControlBlock *control_of(const Segment &s) {
    return reinterpret_cast<ControlBlock *>(s.mutable_data());
}

// While one of these lives on a thread, a control block whose last reference is dropped there
// is not unmapped but handed to `sink` (when it has room: reserve it first), for the caller
// to drop later. Unmapping the last mapping of a block frees its pages (tens of microseconds):
// a publisher taking a departed subscriber down spreads that over its later calls.
class DeferControlUnmaps {
public:
    explicit DeferControlUnmaps(std::vector<Ref<Segment>> &sink) noexcept;
    ~DeferControlUnmaps();
    DeferControlUnmaps(const DeferControlUnmaps &) = delete;
    DeferControlUnmaps &operator=(const DeferControlUnmaps &) = delete;

private:
    std::vector<Ref<Segment>> *outer_;
};

// Producer side of an SPSC ring of `capacity` entries (indices free-running).
class RingProducer {
public:
    RingProducer() = default;
    RingProducer(std::atomic<uint64_t> *tail, std::atomic<uint64_t> *head, size_t capacity)
        : tail_(tail), head_(head), capacity_(capacity) {}
    // Slot index to write next, or -1 when full. Throws protocol if the consumer's index lies.
    long reserve();
    void publish() noexcept { tail_->store(++mine_, std::memory_order_release); }

private:
    std::atomic<uint64_t> *tail_ = nullptr;
    std::atomic<uint64_t> *head_ = nullptr;
    size_t capacity_ = 0;
    uint64_t mine_ = 0;      // the authoritative tail
    uint64_t seen_head_ = 0; // the consumer's index as last read (and checked)
};

// Consumer side.
class RingConsumer {
public:
    RingConsumer() = default;
    RingConsumer(std::atomic<uint64_t> *tail, std::atomic<uint64_t> *head, size_t capacity)
        : tail_(tail), head_(head), capacity_(capacity) {}
    // Slot index to read next, or -1 when empty. Throws protocol if the producer's index lies.
    long peek();
    void consume() noexcept { head_->store(++mine_, std::memory_order_release); }
    bool empty() const noexcept { return tail_->load(std::memory_order_acquire) == mine_; }
    // Where the next entry will be (no shared index read): for a prefetch while waiting.
    size_t next_slot() const noexcept { return static_cast<size_t>(mine_ % capacity_); }

private:
    std::atomic<uint64_t> *tail_ = nullptr;
    std::atomic<uint64_t> *head_ = nullptr;
    size_t capacity_ = 0;
    uint64_t mine_ = 0;      // the authoritative head
    uint64_t seen_tail_ = 0; // the producer's index as last read (and checked)
};

// Cross-process futex on a word in shared memory.
void futex_wake_all(std::atomic<uint32_t> *word) noexcept;
// Sleeps while *word == expected, at most timeout_ns (> 0). Spurious returns are fine.
void futex_wait(std::atomic<uint32_t> *word, uint32_t expected, int64_t timeout_ns) noexcept;

} // namespace px::ipc
