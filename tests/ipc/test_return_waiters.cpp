// SPDX-License-Identifier: Apache-2.0 OR MIT
// A lender waiting for returns asks the borrower to ring the return socket (a pool's loan with
// a timeout, a stream's BLOCK publish). Two such waiters on one channel at once must not undo
// each other: the borrower rings while either waits, and stops once both have stopped.
#include <doctest/doctest.h>

#include <poll.h>
#include <vector>

#include "core/buffer.hpp"
#include "core/ipc/channel.hpp"
#include "core/memory_pool.hpp"
#include "core/shared_memory_segment.hpp"

using px::Buffer;
using px::MemoryPool;
using px::Metadata;
using px::Ref;
using px::RefCounted;
using px::ipc::Channel;

namespace {

// Lends a pool slot to `to`'s peer through `from`, and has the peer give it back.
void lend_and_give_back(MemoryPool &pool, Channel &from, Channel &to) {
    px::Slot *slot = pool.try_loan();
    REQUIRE(slot != nullptr);
    {
        Buffer frame(pool.segment_ref(), slot->index() * pool.slot_size(), 64, Metadata{},
                     Ref<RefCounted>::adopt(slot));
        from.send(frame, 1'000'000'000);
    }
    Buffer got = to.recv(1'000'000'000);
    CHECK(got.size() == 64);
} // `got` goes: the slot's return is on its way

// Whether the return socket (the first fd the channel waits on) is readable within `ms`.
bool rung(const Channel &ch, int ms) {
    std::vector<pollfd> fds;
    ch.add_return_wait_fds(fds);
    REQUIRE(!fds.empty());
    return ::poll(fds.data(), 1, ms) == 1 && (fds[0].revents & POLLIN);
}

} // namespace

TEST_CASE("a channel's waiters for returns are counted: one stopping leaves the other's doorbell") {
    auto pool = MemoryPool::create(px::shm::create("px-test-waiters", 4 * 4096), 4096);
    auto [lender, borrower] = Channel::pair();

    // Nobody waits: a return goes through the ring alone.
    lend_and_give_back(*pool, *lender, *borrower);
    CHECK_FALSE(rung(*lender, 50));
    lender->collect_returns();
    CHECK(lender->in_flight() == 0);

    // Two waiters; one stops: the other still gets its doorbell.
    lender->wait_for_returns(true);
    lender->wait_for_returns(true);
    lender->wait_for_returns(false);
    lend_and_give_back(*pool, *lender, *borrower);
    CHECK(rung(*lender, 1000));
    lender->collect_returns(); // takes the return and the doorbell
    CHECK(lender->in_flight() == 0);
    CHECK_FALSE(rung(*lender, 0));

    // Both stopped: no doorbell again.
    lender->wait_for_returns(false);
    lend_and_give_back(*pool, *lender, *borrower);
    CHECK_FALSE(rung(*lender, 50));
    lender->collect_returns();
    CHECK(lender->in_flight() == 0);
    CHECK(pool->available() == 4);
}
