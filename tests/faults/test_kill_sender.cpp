// SPDX-License-Identifier: Apache-2.0 OR MIT
// 100 rounds of kill -9 of a sender in the middle of sending: it streams pool frames and, now and
// then, a frame from a brand-new segment (so that some kills land around an fd-carrying
// registration), while the receiver consumes and holds some of them. The receiver (the
// survivor) must see every frame that arrived intact and in order, then PX_E_CLOSED within a
// bounded time (never PX_E_PROTOCOL: a half-sent record must not exist), keep reading the dead
// sender's memory, get back to its fd and mapping count once it lets go, and keep receiving
// from a long-lived honest sender.
#include <doctest/doctest.h>

#include <deque>
#include <utility>
#include <vector>

#include "fault_support.hpp"

using namespace px_test;
using namespace px_fault;

namespace {

constexpr int rounds = 100;
constexpr size_t pool_slots = 8;
constexpr size_t slot_size = 4096;
constexpr int64_t bounded_ns = 2'000'000'000; // every wait in this file: 2 s at most

// A frame from a segment of its own: registered (fd over SCM_RIGHTS) as it is sent.
px_buffer_t *fresh_segment_frame(size_t len, uint64_t seq) {
    px_segment_t *seg = nullptr;
    if (px_segment_shm_new("fault-fresh", len, &seg) != PX_OK)
        return nullptr;
    px_metadata_t meta = fill_frame(px_segment_mut_ptr(seg), len, seq);
    px_buffer_t *buf = nullptr;
    px_status_t rc = px_buffer_from_segment(seg, &meta, &buf);
    px_segment_release(seg);
    return rc == PX_OK ? buf : nullptr;
}

// The victim: sends frames until it is killed. Any failure before that is a bug: exit code.
int victim(px_channel_t *ch, uint64_t seed) {
    limit_child_lifetime(20);
    std::mt19937_64 rng(seed);
    px_pool_t *pool = shm_pool(pool_slots, slot_size);
    if (!pool)
        return 2;
    for (uint64_t seq = 0;; ++seq) {
        px_buffer_t *frame = nullptr;
        size_t len = uniform(rng, 1, slot_size);
        if (uniform(rng, 0, 7) == 0) {
            frame = fresh_segment_frame(uniform(rng, 1, 3 * slot_size), seq);
        } else {
            px_slot_t *slot = nullptr;
            if (px_pool_loan_timeout(pool, bounded_ns, &slot) != PX_OK)
                return 3;
            px_metadata_t meta = fill_frame(px_slot_data(slot), len, seq);
            if (px_slot_into_buffer(slot, len, &meta, &frame) != PX_OK)
                return 4;
        }
        if (!frame)
            return 5;
        px_status_t rc = px_channel_send_timeout(ch, frame, bounded_ns);
        px_buffer_release(frame);
        if (rc != PX_OK)
            return 10 - rc; // 11..21: the status that broke the stream
    }
}

// The honest sender that lives through all rounds: one frame per 'g' on its pipe; on 'q' it
// waits for all its slots to come back and exits 0 if they did.
int witness(px_channel_t *ch, Signal &go) {
    limit_child_lifetime(120);
    px_pool_t *pool = shm_pool(4, slot_size);
    if (!pool)
        return 2;
    for (uint64_t seq = 0;; ++seq) {
        if (go.wait() != 'g')
            break;
        px_buffer_t *f = make_frame(pool, 1 + seq * 53 % slot_size, seq);
        if (!f || px_channel_send_timeout(ch, f, bounded_ns) != PX_OK)
            return 3;
        px_buffer_release(f);
    }
    bool all_back = eventually([&] { return px_pool_available(pool) == px_pool_capacity(pool); },
                               5000ms);
    px_channel_release(ch);
    px_pool_release(pool);
    return all_back ? 0 : 4;
}

} // namespace

TEST_CASE("kill -9 of a sender mid-send, 100 times: the receiver sees CLOSED, keeps working") {
    auto rng = rng_for("kill-sender");

    px_channel_t *wa = nullptr, *wb = nullptr;
    REQUIRE(px_channel_pair(&wa, &wb) == PX_OK);
    Signal go;
    pid_t witness_pid = fork_child([&] {
        px_channel_release(wb);
        return witness(wa, go);
    });
    px_channel_release(wa);
    // Warm-up, so that one-time costs are not counted as leaks: the witness's segment mapped
    // here (frame 0), and a thread stack that the C library keeps for reuse.
    go.post('g');
    px_buffer_t *first = nullptr;
    REQUIRE(px_channel_recv(wb, bounded_ns, &first) == PX_OK);
    CHECK(frame_intact(first, 0));
    px_buffer_release(first);
    std::thread([] {}).join();
    // And the pidfd through which this end watches the witness, once it has announced itself.
    px_channel_stats_t st{};
    REQUIRE(eventually([&] {
        return px_channel_get_stats(wb, &st) == PX_OK &&
               st.peer_pid == static_cast<uint64_t>(witness_pid);
    }));
    const Footprint base;

    int passed = 0, failed = 0;
    uint64_t frames = 0, held_at_death = 0, max_notice_us = 0;
    for (int round = 0; round < rounds; ++round) {
        CAPTURE(round);
        const uint64_t kill_after = uniform(rng, 0, 40);
        const uint64_t delay_us = uniform(rng, 0, 400);
        const size_t hold = uniform(rng, 0, 6);
        const uint64_t child_seed = rng();
        CAPTURE(kill_after);
        CAPTURE(delay_us);
        CAPTURE(hold);
        bool ok = true;
        auto expect = [&](bool cond, const std::string &what) {
            if (!cond) {
                ok = false;
                FAIL_CHECK(what);
            }
        };

        px_channel_t *a = nullptr, *b = nullptr;
        REQUIRE(px_channel_pair(&a, &b) == PX_OK);
        pid_t pid = fork_child([&] {
            px_channel_release(b);
            px_channel_release(wb);
            return victim(a, child_seed);
        });
        REQUIRE(pid > 0);
        px_channel_release(a);

        std::atomic<bool> killed{false};
        clock::time_point killed_at{};
        std::thread killer;
        auto start_killer = [&] {
            killer = std::thread([&] {
                spin_for_us(delay_us);
                ::kill(pid, SIGKILL);
                killed_at = clock::now();
                killed = true;
            });
        };
        if (kill_after == 0)
            start_killer();

        std::deque<std::pair<px_buffer_t *, uint64_t>> held;
        px_status_t end = PX_OK;
        std::string end_message;
        uint64_t seq = 0;
        for (;; ++seq) {
            px_buffer_t *buf = nullptr;
            end = px_channel_recv(b, bounded_ns, &buf);
            if (end != PX_OK) {
                end_message = px_last_error_message();
                break;
            }
            if (!frame_intact(buf, seq)) {
                expect(false, "frame " + std::to_string(seq) + " arrived damaged or out of order");
                px_buffer_release(buf);
                break;
            }
            held.emplace_back(buf, seq);
            while (held.size() > hold) {
                px_buffer_release(held.front().first);
                held.pop_front();
            }
            if (seq + 1 == kill_after)
                start_killer();
            if (seq > kill_after + 100000) {
                expect(false, "the sender is still sending long after it was killed");
                break;
            }
        }
        if (killer.joinable())
            killer.join();
        auto noticed = clock::now();
        int status = wait_child_for(pid);

        expect(killed.load(), "the stream ended before the kill: " + end_message);
        expect(status == 128 + SIGKILL, "the victim ended with " + std::to_string(status) +
                                            " instead of being killed");
        expect(end == PX_E_CLOSED, std::string("the receiver ended with ") +
                                       px_status_string(end) + " (" + end_message +
                                       "), not PX_E_CLOSED");
        if (killed.load()) {
            auto us = std::chrono::duration_cast<std::chrono::microseconds>(noticed - killed_at);
            max_notice_us = std::max<uint64_t>(max_notice_us, static_cast<uint64_t>(us.count()));
        }
        px_buffer_t *none = nullptr;
        expect(px_channel_recv(b, 0, &none) == PX_E_CLOSED, "a second recv is not PX_E_CLOSED");
        // The dead sender's memory stays mapped and intact for as long as we hold it.
        held_at_death += held.size();
        for (auto &[buf, s] : held) {
            expect(frame_intact(buf, s), "a held frame changed after its sender died");
            px_buffer_release(buf);
        }
        held.clear();
        frames += seq;
        px_channel_release(b);

        const Footprint now;
        expect(now.fds == base.fds, "fds: " + std::to_string(now.fds) + " open, " +
                                        std::to_string(base.fds) + " before the round:" + now.fd_list +
                                        " instead of" + base.fd_list);
        expect(now.mappings == base.mappings, "memfd mappings: " + std::to_string(now.mappings) +
                                                  " now, " + std::to_string(base.mappings) +
                                                  " before the round");
        // The survivor keeps working: one frame from the long-lived honest sender.
        go.post('g');
        px_buffer_t *w = nullptr;
        px_status_t rc = px_channel_recv(wb, bounded_ns, &w);
        expect(rc == PX_OK && frame_intact(w, round + 1u),
               std::string("witness frame: ") + px_status_string(rc));
        px_buffer_release(w);
        ok ? ++passed : ++failed;
    }
    go.post('q');
    int witness_status = wait_child_for(witness_pid, 10000ms);
    CHECK_MESSAGE(witness_status == 0, "the witness ended with " << witness_status);
    px_channel_release(wb);

    std::printf("faults: kill -9 sender (seed 0x%" PRIx64 "): %d rounds passed, %d failed; "
                "%" PRIu64 " frames received intact, %" PRIu64 " held across the sender's "
                "death; death noticed within %" PRIu64 " us at worst; witness %s\n",
                suite_seed(), passed, failed, frames, held_at_death, max_notice_us,
                witness_status == 0 ? "ok" : "FAILED");
    std::fflush(stdout);
    CHECK(passed == rounds);
}
