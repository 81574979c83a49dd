// SPDX-License-Identifier: Apache-2.0 OR MIT
// libparallax through its public C API, as a user writes it: the producer loans a slot from a
// pool over a shared-memory segment, writes the frame's sequence number, turns the slot into a
// buffer and sends it over a channel; the consumer receives a read-only view of the same memory
// and releases it, which hands the slot back to the producer's pool.
//
// Ping-pong: the follower answers each frame with a frame of the same size from its own pool
// (zero-copy both ways); the leader times loan -> send -> receive the answer -> release. Stream:
// the producer sends as fast as its pool lets it (slots come back when the consumer releases them).
//
// Modes (px_channel_set_spin_ns on both ends): spin (< 0: recv never sleeps), blocking (0: recv
// sleeps at once), default (not set: PX_CHANNEL_DEFAULT_SPIN_NS of spinning, then sleep).
#include <sys/socket.h>
#include <unistd.h>

#include "ipc_bench.hpp"
#include "parallax/parallax.h"

namespace pxipc {
namespace {

constexpr int64_t patience_ns = 10'000'000'000; // a step that takes longer is a failure

void check(px_status_t st, const char *what) {
    if (st != PX_OK)
        die(std::string(what) + ": " + px_status_string(st) + " (" + px_last_error_message() + ")");
}

void apply_mode(px_channel_t *ch, const std::string &mode) {
    if (mode == "spin")
        check(px_channel_set_spin_ns(ch, -1), "px_channel_set_spin_ns(-1)");
    else if (mode == "blocking")
        check(px_channel_set_spin_ns(ch, 0), "px_channel_set_spin_ns(0)");
    else if (mode != "default" && !mode.empty())
        die("unknown parallax mode " + mode);
}

struct Producer {
    px_channel_t *ch = nullptr;
    px_pool_t *pool = nullptr;
    size_t payload = 0;

    Producer(px_channel_t *channel, size_t frame_bytes, size_t slots)
        : ch(channel), payload(frame_bytes) {
        px_segment_t *seg = nullptr;
        check(px_segment_shm_new("px_bench_ipc", slots * frame_bytes, &seg), "px_segment_shm_new");
        fill_frame(px_segment_mut_ptr(seg), px_segment_len(seg)); // frames produced in place
        check(px_pool_new(seg, frame_bytes, &pool), "px_pool_new");
        px_segment_release(seg); // the pool keeps it
    }
    ~Producer() { px_pool_release(pool); }

    void send(uint64_t seq) {
        px_slot_t *slot = nullptr;
        check(px_pool_loan_timeout(pool, patience_ns, &slot), "px_pool_loan_timeout");
        store_seq(px_slot_data(slot), seq);
        px_metadata_t meta;
        px_metadata_init(&meta);
        meta.sequence = seq;
        px_buffer_t *buf = nullptr;
        check(px_slot_into_buffer(slot, payload, &meta, &buf), "px_slot_into_buffer");
        px_status_t st = px_channel_send(ch, buf);
        px_buffer_release(buf); // the consumer's reference keeps the slot out
        check(st, "px_channel_send");
    }

    // The next buffer from the peer (its sequence number in *seq).
    px_buffer_t *recv(uint64_t *seq) {
        px_buffer_t *buf = nullptr;
        check(px_channel_recv(ch, patience_ns, &buf), "px_channel_recv");
        px_metadata_t meta;
        check(px_buffer_metadata(buf, &meta), "px_buffer_metadata");
        *seq = meta.sequence;
        return buf;
    }
};

} // namespace

Result parallax_leader(const Case &c) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        die("socketpair(AF_UNIX, SOCK_SEQPACKET) failed");
    int pid = spawn_follower(c, {sv[1]});
    close(sv[1]);
    px_channel_t *ch = nullptr;
    check(px_channel_from_fd(sv[0], &ch), "px_channel_from_fd");
    apply_mode(ch, c.mode);
    Result r;
    {
        Producer p(ch, c.payload, c.kind == Kind::pingpong ? 4 : c.slots);
        if (c.kind == Kind::pingpong) {
            time_round_trips(c, r, [&](uint64_t seq) {
                p.send(seq);
                uint64_t got = 0;
                px_buffer_t *echo = p.recv(&got);
                if (got != seq || load_seq(px_buffer_ptr(echo)) != seq)
                    die("the echo did not come back intact");
                px_buffer_release(echo);
            });
        } else {
            auto drain = [&] { // every frame sent so far has been consumed
                p.send(seq_mark);
                uint64_t got = 0;
                px_buffer_release(p.recv(&got));
                if (got != seq_mark)
                    die("no ack from the consumer");
            };
            uint64_t seq = 0;
            const int64_t warm_end = now_ns() + static_cast<int64_t>(c.seconds * 0.1e9);
            while (now_ns() < warm_end || seq < 2 * c.slots) {
                p.send(seq++);
                note_cpu();
            }
            drain();
            const int64_t t0 = now_ns(), deadline = t0 + static_cast<int64_t>(c.seconds * 1e9);
            uint64_t n = 0;
            do {
                p.send(seq++);
                note_cpu();
                ++n;
            } while (now_ns() < deadline);
            drain();
            r.ok = true;
            r.frames = n;
            r.elapsed_s = static_cast<double>(now_ns() - t0) / 1e9;
        }
        p.send(seq_stop);
    }
    px_channel_release(ch);
    reap(pid);
    return r;
}

int parallax_follower(const Case &c, const std::vector<int> &fds) {
    px_channel_t *ch = nullptr;
    check(px_channel_from_fd(fds.at(0), &ch), "px_channel_from_fd");
    apply_mode(ch, c.mode);
    // Replies (the ping-pong's echo, the stream's acks) come from the follower's own pool, as
    // a process answering another does. (Sending the received buffer itself back also crosses
    // zero-copy, but its slot only returns to the leader once the follower's channel collects
    // the leader's return of it, which a follower without a pool of its own never does.)
    Producer reply(ch, c.kind == Kind::pingpong ? c.payload : min_payload, 4);
    volatile uint64_t sink = 0;
    for (;;) {
        px_buffer_t *buf = nullptr;
        px_status_t st = px_channel_recv(ch, -1, &buf);
        if (st == PX_E_CLOSED)
            break;
        check(st, "px_channel_recv");
        note_cpu();
        px_metadata_t meta;
        check(px_buffer_metadata(buf, &meta), "px_buffer_metadata");
        const uint64_t seq = meta.sequence;
        if (seq == seq_stop) {
            px_buffer_release(buf);
            break;
        }
        if (c.kind == Kind::pingpong || seq == seq_mark) {
            if (load_seq(px_buffer_ptr(buf)) != seq)
                die("frame and metadata disagree");
            px_buffer_release(buf); // the leader's slot goes back to its pool
            reply.send(seq);
            continue;
        }
        if (c.read_all)
            sink = sink + read_every_byte(px_buffer_ptr(buf), px_buffer_len(buf));
        else
            sink = sink + load_seq(px_buffer_ptr(buf));
        px_buffer_release(buf); // the slot goes back to the producer's pool
    }
    px_channel_release(ch);
    return 0;
}

} // namespace pxipc
