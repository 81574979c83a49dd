// SPDX-License-Identifier: Apache-2.0 OR MIT
// The fast path's bookkeeping (issue 7): the lender's loan table, whose tokens name an entry and
// its generation, and the borrower's recycled leases. Tokens come from an untrusted peer: a
// forged, stale or repeated one must be refused and counted, never free a loan twice.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <set>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "core/ipc/return_path.hpp"
#include "core/ipc/ring.hpp"
#include "ipc_support.hpp"

using namespace px_test;
using px::Ref;
using px::RefCounted;
using px::ipc::ReturnInbox;

namespace {

// A lent thing that counts its own end.
std::atomic<int> ended{0};
class Lent final : public RefCounted {
public:
    Lent() = default;

private:
    ~Lent() override { ended.fetch_add(1); }
};

// A lender's inbox over a control block of its own, with the borrower's side of the return
// ring and socket in the test's hands.
struct Lender {
    int borrower_fd = -1;
    Ref<px::Segment> control = px::ipc::create_control_block().block;
    Ref<ReturnInbox> inbox;
    px::ipc::RingProducer returns;

    Lender() {
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
        borrower_fd = sv[1];
        inbox = Ref<ReturnInbox>::adopt(new ReturnInbox(
            Ref<px::ipc::ReturnSocket>::adopt(new px::ipc::ReturnSocket(sv[0])), control, 0));
        auto *cb = px::ipc::control_of(*control);
        returns = px::ipc::RingProducer(&cb->return_tail, &cb->return_head,
                                        px::ipc::return_ring_entries);
    }
    ~Lender() {
        if (borrower_fd >= 0)
            ::close(borrower_fd);
        inbox->channel_closed();
        inbox->collect(true);
    }
    uint64_t lend() { return inbox->lend(Ref<RefCounted>::adopt(new Lent)); }
    void give_back(uint64_t token) {
        long slot = returns.reserve();
        REQUIRE(slot >= 0);
        px::ipc::control_of(*control)->return_entries[slot].store(token);
        returns.publish();
        inbox->collect(true);
    }
    px::ipc::ReturnCounters counters() { return inbox->counters(); }
};

} // namespace

TEST_CASE("loan tokens: an entry and its generation; forged, stale and repeated ones are refused") {
    ended = 0;
    Lender l;
    uint64_t t0 = l.lend(), t1 = l.lend(), t2 = l.lend();
    CHECK(t0 != 0);
    CHECK(std::set<uint64_t>{t0, t1, t2}.size() == 3);
    CHECK(l.counters().lent == 3);

    l.give_back(t1);
    CHECK(ended == 1);
    CHECK(l.counters().accepted == 1);
    l.give_back(t1); // twice
    CHECK(l.counters().refused == 1);

    // The freed entry is lent again under a new generation: the old token stays dead.
    uint64_t t3 = l.lend();
    CHECK((t3 & 0xffffffffu) == (t1 & 0xffffffffu));
    CHECK(t3 != t1);
    l.give_back(t1); // stale
    CHECK(l.counters().refused == 2);
    CHECK(ended == 1);

    // Forged: out of the table, generation 0, a live entry under another generation, 0.
    l.give_back(1000);
    l.give_back(t0 & 0xffffffffu);
    l.give_back(t0 + (uint64_t{7} << 32));
    l.give_back(0);
    l.give_back(~uint64_t{0});
    CHECK(l.counters().refused == 7);
    CHECK(ended == 1);
    CHECK(l.counters().lent == 3);

    for (uint64_t t : {t0, t2, t3})
        l.give_back(t);
    CHECK(ended == 4);
    CHECK(l.counters().accepted == 4);
    CHECK(l.counters().lent == 0);
    CHECK(l.counters().refused == 7);
}

TEST_CASE("the loan table grows to the loans out at once and reuses its entries") {
    ended = 0;
    Lender l;
    std::vector<uint64_t> tokens;
    for (int round = 0; round < 3; ++round) {
        tokens.clear();
        for (int i = 0; i < 3000; ++i)
            tokens.push_back(l.lend());
        CHECK(std::set<uint64_t>(tokens.begin(), tokens.end()).size() == tokens.size());
        std::set<uint64_t> entries;
        for (uint64_t t : tokens)
            entries.insert(t & 0xffffffffu);
        CHECK(*entries.rbegin() < 3000); // no entry beyond the largest number out at once
        // Returned in an order of their own, a ring's worth at most between collects.
        for (size_t i = 0; i < tokens.size(); i += 2)
            l.give_back(tokens[i]);
        for (size_t i = 1; i < tokens.size(); i += 2)
            l.give_back(tokens[i]);
        CHECK(l.counters().lent == 0);
    }
    CHECK(ended == 9000);
    CHECK(l.counters().accepted == 9000);
    CHECK(l.counters().refused == 0);
}

TEST_CASE("a borrower that hangs up: every loan still out is reclaimed, once") {
    ended = 0;
    Lender l;
    uint64_t t0 = l.lend();
    l.lend();
    l.lend();
    l.give_back(t0);
    ::close(l.borrower_fd);
    l.borrower_fd = -1;
    l.inbox->collect(true);
    CHECK(ended == 3);
    CHECK(l.counters().reclaimed == 2);
    CHECK(l.counters().lent == 0);
    CHECK_THROWS(l.lend()); // nothing more goes to a peer that has gone
    CHECK(ended == 4);      // the lease offered is dropped, not kept
}

TEST_CASE("received loans released in any order and on any thread all go home, many times") {
    constexpr size_t slots = 64;
    px_pool_t *pool = shm_pool(slots, 4096);
    REQUIRE(pool);
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    uint64_t seq = 0;
    for (int round = 0; round < 40; ++round) {
        std::vector<px_buffer_t *> got;
        for (size_t i = 0; i < slots; ++i) {
            px_buffer_t *f = make_frame(pool, 128, seq + i);
            REQUIRE(f);
            REQUIRE(px_channel_send(a, f) == PX_OK);
            px_buffer_release(f);
        }
        for (size_t i = 0; i < slots; ++i) {
            px_buffer_t *x = nullptr;
            REQUIRE(px_channel_recv(b, 5'000'000'000, &x) == PX_OK);
            CHECK(frame_ok(x, 128, seq + i));
            got.push_back(x);
        }
        seq += slots;
        // A clone keeps its loan out after the original is released.
        px_buffer_t *clone = nullptr;
        REQUIRE(px_buffer_clone(got[round % slots], &clone) == PX_OK);
        // Four threads release a quarter each, from the back.
        std::vector<std::thread> threads;
        for (size_t t = 0; t < 4; ++t)
            threads.emplace_back([&, t] {
                for (size_t i = slots; i-- > 0;)
                    if (i % 4 == t)
                        px_buffer_release(got[i]);
            });
        for (auto &t : threads)
            t.join();
        CHECK(eventually([&] { return px_pool_available(pool) == slots - 1; }));
        px_buffer_release(clone);
        CHECK(eventually([&] { return px_pool_available(pool) == slots; }));
    }
    px_channel_stats_t st;
    REQUIRE(px_channel_get_stats(a, &st) == PX_OK);
    CHECK(st.returns_accepted == 40 * slots);
    CHECK(st.returns_refused == 0);
    CHECK(st.slots_lent == 0);
    px_channel_release(a);
    px_channel_release(b);
    px_pool_release(pool);
}

TEST_CASE("frames from several segments in turn, one of them dropped and replaced") {
    px_pool_t *pools[3] = {shm_pool(4, 4096), shm_pool(4, 4096), nullptr};
    REQUIRE(pools[0]);
    REQUIRE(pools[1]);
    px_channel_t *a = nullptr, *b = nullptr;
    REQUIRE(px_channel_pair(&a, &b) == PX_OK);
    auto pass = [&](px_pool_t *pool, uint64_t seq) {
        px_buffer_t *f = make_frame(pool, 64, seq);
        REQUIRE(f);
        REQUIRE(px_channel_send(a, f) == PX_OK);
        px_buffer_release(f);
        px_buffer_t *x = nullptr;
        REQUIRE(px_channel_recv(b, 5'000'000'000, &x) == PX_OK);
        CHECK(frame_ok(x, 64, seq));
        px_buffer_release(x);
    };
    uint64_t seq = 0;
    for (int i = 0; i < 20; ++i)
        pass(pools[i % 3 == 2 ? 1 : 0], seq++); // runs of one segment, then a switch
    // The first pool goes away; once the channel notices, its segment is unregistered at the
    // receiver, and a new pool (perhaps at the same address) gets an id of its own.
    CHECK(eventually([&] { return px_pool_available(pools[0]) == 4; }));
    px_pool_release(pools[0]);
    pools[2] = shm_pool(4, 4096);
    REQUIRE(pools[2]);
    for (int i = 0; i < 20; ++i)
        pass(pools[1 + i % 2], seq++);
    px_channel_stats_t st;
    REQUIRE(px_channel_get_stats(a, &st) == PX_OK);
    CHECK(st.segments_registered == 3);
    px_channel_release(a);
    px_channel_release(b);
    px_pool_release(pools[1]);
    px_pool_release(pools[2]);
}
