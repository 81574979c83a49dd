// SPDX-License-Identifier: Apache-2.0 OR MIT
// 100 rounds of kill -9 of a receiver at a random moment while it holds lent buffers (and
// clones of them), with the sender streaming to it the whole time. After each round the sender
// (the survivor) must have every slot back, every loan accounted for exactly once, no fd or
// mapping left behind, and must still serve a long-lived honest receiver.
#include <doctest/doctest.h>

#include <deque>
#include <memory>
#include <vector>

#include "fault_support.hpp"

using namespace px_test;
using namespace px_fault;

namespace {

constexpr int rounds = 100;
constexpr size_t pool_slots = 8;
constexpr size_t slot_size = 4096;
constexpr int64_t bounded_ns = 2'000'000'000; // every wait in this file: 2 s at most

struct Plan {
    uint64_t kill_after; // frames the victim receives before the killer starts its clock
    uint64_t delay_us;   // then the killer waits this long while both sides keep going
    size_t hold;         // buffers the victim holds at once (it releases the oldest beyond)
    uint64_t child_seed;
};

// The victim: receives in order, checks every frame, holds `hold` of them (and sometimes a clone
// too), and tells the parent when it has seen `kill_after`. It never returns on its own unless
// something is wrong; the exit code says what.
int victim(px_channel_t *ch, const Plan &plan, Signal &reached) {
    limit_child_lifetime(20);
    std::mt19937_64 rng(plan.child_seed);
    std::deque<px_buffer_t *> held;
    if (plan.kill_after == 0)
        reached.post();
    for (uint64_t seq = 0;; ++seq) {
        px_buffer_t *b = nullptr;
        px_status_t rc = px_channel_recv(ch, bounded_ns, &b);
        if (rc != PX_OK)
            return 10 - rc; // 11..21: the status that broke the stream
        if (!frame_intact(b, seq))
            return 3;
        held.push_back(b);
        if (uniform(rng, 0, 3) == 0) {
            px_buffer_t *c = nullptr;
            if (px_buffer_clone(b, &c) != PX_OK)
                return 4;
            held.push_back(c);
        }
        while (held.size() > plan.hold) {
            px_buffer_release(held.front());
            held.pop_front();
        }
        if (seq + 1 == plan.kill_after)
            reached.post();
    }
}

// The honest receiver that lives through all rounds: one frame per round, in order.
int witness(px_channel_t *ch) {
    limit_child_lifetime(120);
    for (uint64_t seq = 0;; ++seq) {
        px_buffer_t *b = nullptr;
        px_status_t rc = px_channel_recv(ch, 30'000'000'000, &b);
        if (rc == PX_E_CLOSED)
            return seq == rounds + 1 ? 0 : 5;
        if (rc != PX_OK)
            return 6;
        bool ok = frame_intact(b, seq);
        px_buffer_release(b);
        if (!ok)
            return 7;
    }
}

struct SenderResult {
    uint64_t sent = 0;
    px_status_t ended_with = PX_OK; // PX_E_CLOSED once the victim is gone
    std::string message;
};

// Streams frames of random length until the channel reports the peer gone, or until 3 s after
// `killed` was set (then the victim's death went unnoticed: a failure).
void stream(px_channel_t *ch, px_pool_t *pool, uint64_t seed, const std::atomic<bool> &killed,
            SenderResult &out) {
    std::mt19937_64 rng(seed);
    clock::time_point killed_seen{};
    for (uint64_t seq = 0;; ++seq) {
        if (killed.load() && killed_seen == clock::time_point{})
            killed_seen = clock::now();
        if (killed_seen != clock::time_point{} && clock::now() - killed_seen > 3s) {
            out.ended_with = PX_OK;
            out.message = "still sending 3 s after the receiver was killed";
            return;
        }
        px_slot_t *slot = nullptr;
        px_status_t rc = px_pool_loan_timeout(pool, bounded_ns, &slot);
        if (rc != PX_OK) {
            out.ended_with = rc;
            out.message = std::string("loan: ") + px_last_error_message();
            return;
        }
        size_t len = uniform(rng, 1, slot_size);
        px_metadata_t meta = fill_frame(px_slot_data(slot), len, seq);
        px_buffer_t *frame = nullptr;
        if (px_slot_into_buffer(slot, len, &meta, &frame) != PX_OK) {
            out.ended_with = PX_E_INTERNAL;
            out.message = px_last_error_message();
            return;
        }
        rc = px_channel_send_timeout(ch, frame, bounded_ns);
        px_buffer_release(frame);
        if (rc != PX_OK) {
            out.ended_with = rc;
            out.message = px_last_error_message();
            return;
        }
        ++out.sent;
    }
}

} // namespace

TEST_CASE("kill -9 of a receiver holding buffers, 100 times: no slot leaks, no hang") {
    auto rng = rng_for("kill-receiver");
    px_pool_t *pool = shm_pool(pool_slots, slot_size);
    REQUIRE(pool);
    const size_t capacity = px_pool_capacity(pool);

    px_channel_t *wa = nullptr, *wb = nullptr;
    REQUIRE(px_channel_pair(&wa, &wb) == PX_OK);
    pid_t witness_pid = fork_child([&] {
        px_channel_release(wa);
        return witness(wb);
    });
    px_channel_release(wb);
    // Warm-up, so that one-time costs are not counted as leaks: the pool's segment registered
    // with the witness (frame 0), and a thread stack that the C library keeps for reuse.
    px_buffer_t *first = make_frame(pool, 64, 0);
    REQUIRE(first);
    REQUIRE(px_channel_send_timeout(wa, first, bounded_ns) == PX_OK);
    px_buffer_release(first);
    std::thread([] {}).join();
    // And the pidfd through which this end watches the witness, once it has announced itself.
    px_channel_stats_t st{};
    REQUIRE(eventually([&] {
        return px_channel_get_stats(wa, &st) == PX_OK &&
               st.peer_pid == static_cast<uint64_t>(witness_pid);
    }));
    const Footprint base;

    int passed = 0, failed = 0;
    uint64_t frames = 0, accepted = 0, reclaimed = 0, refused = 0, leaked = 0, max_reclaim_us = 0;
    for (int round = 0; round < rounds; ++round) {
        CAPTURE(round);
        Plan plan{uniform(rng, 0, 40), uniform(rng, 0, 400), uniform(rng, 1, 6), rng()};
        uint64_t sender_seed = rng();
        CAPTURE(plan.kill_after);
        CAPTURE(plan.delay_us);
        CAPTURE(plan.hold);
        bool ok = true;
        auto expect = [&](bool cond, const std::string &what) {
            if (!cond) {
                ok = false;
                FAIL_CHECK(what);
            }
        };

        px_channel_t *a = nullptr, *b = nullptr;
        REQUIRE(px_channel_pair(&a, &b) == PX_OK);
        auto reached = std::make_unique<Signal>(); // closed before the fd count below
        pid_t pid = fork_child([&] {
            px_channel_release(a);
            px_channel_release(wa);
            return victim(b, plan, *reached);
        });
        REQUIRE(pid > 0);
        px_channel_release(b);

        std::atomic<bool> killed{false};
        SenderResult sender;
        std::thread streamer(stream, a, pool, sender_seed, std::cref(killed), std::ref(sender));
        bool got_there = wait_posted(*reached, 5000ms);
        spin_for_us(plan.delay_us);
        ::kill(pid, SIGKILL);
        killed = true;
        int status = wait_child_for(pid);
        streamer.join();
        reached.reset();

        expect(got_there, "the victim never reached its kill point");
        expect(status == 128 + SIGKILL, "victim ended with " + std::to_string(status) +
                                            " instead of being killed");
        expect(sender.ended_with == PX_E_CLOSED,
               "the sender ended with " + std::string(px_status_string(sender.ended_with)) +
                   " (" + sender.message + "), not PX_E_CLOSED");
        auto t0 = clock::now();
        bool all_back = eventually([&] { return px_pool_available(pool) == capacity; }, 2000ms);
        uint64_t us = static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - t0).count());
        max_reclaim_us = std::max(max_reclaim_us, us);
        size_t missing = capacity - px_pool_available(pool);
        leaked += missing;
        expect(all_back, "slots leaked: " + std::to_string(missing) + " of " +
                             std::to_string(capacity) + " never came back");
        px_channel_stats_t st{};
        REQUIRE(px_channel_get_stats(a, &st) == PX_OK);
        expect(st.slots_lent == 0, "stats still count " + std::to_string(st.slots_lent) +
                                       " slots lent to a dead peer");
        expect(st.buffers_sent == sender.sent, "buffers_sent disagrees with the sender's count");
        // Every loan ends exactly once: returned by the victim before it died, or reclaimed.
        expect(st.returns_accepted + st.slots_reclaimed == st.buffers_sent,
               "loans: " + std::to_string(st.buffers_sent) + " sent, " +
                   std::to_string(st.returns_accepted) + " returned + " +
                   std::to_string(st.slots_reclaimed) + " reclaimed");
        expect(st.returns_refused == 0, "an honest dead peer's returns were counted as refused");
        frames += st.buffers_sent;
        accepted += st.returns_accepted;
        reclaimed += st.slots_reclaimed;
        refused += st.returns_refused;
        px_channel_release(a);

        const Footprint now;
        expect(now.fds == base.fds, "fds: " + std::to_string(now.fds) + " open, " +
                                        std::to_string(base.fds) + " before the round:" + now.fd_list +
                                        " instead of" + base.fd_list);
        expect(now.mappings == base.mappings, "memfd mappings: " + std::to_string(now.mappings) +
                                                  " now, " + std::to_string(base.mappings) +
                                                  " before the round");
        // The survivor keeps working: a frame from the same pool to the long-lived receiver.
        px_buffer_t *f = make_frame(pool, 1 + round * 37 % slot_size, round + 1u);
        expect(f != nullptr, "no slot for the witness");
        expect(f && px_channel_send_timeout(wa, f, bounded_ns) == PX_OK,
               std::string("witness send: ") + px_last_error_message());
        px_buffer_release(f);
        ok ? ++passed : ++failed;
    }
    px_channel_release(wa);
    int witness_status = wait_child_for(witness_pid, 10000ms);
    CHECK_MESSAGE(witness_status == 0, "the witness ended with " << witness_status);
    CHECK(eventually([&] { return px_pool_available(pool) == capacity; }));
    px_pool_release(pool);

    std::printf("faults: kill -9 receiver (seed 0x%" PRIx64 "): %d rounds passed, %d failed; "
                "%" PRIu64 " frames lent, %" PRIu64 " returned, %" PRIu64 " reclaimed, %" PRIu64
                " refused, %" PRIu64 " leaked; slowest reclaim %" PRIu64 " us; witness %s\n",
                suite_seed(), passed, failed, frames, accepted, reclaimed, refused, leaked,
                max_reclaim_us,
                witness_status == 0 ? "ok" : "FAILED");
    std::fflush(stdout);
    CHECK(passed == rounds);
    CHECK(leaked == 0);
}
