// SPDX-License-Identifier: Apache-2.0 OR MIT
// libparallax streams through the public C API, as a user writes them (see
// examples/c/stream_publisher.c): default publisher options (PX_SLOW_DROP, max_in_flight 8),
// a pool over a shared-memory segment, loan -> write -> px_slot_into_buffer with pts_ns in the
// metadata -> px_publisher_publish; the subscriber receives a read-only view and releases it.
// And the same frames over one plain channel: the baseline of a stream with one subscriber.
#include "../ipc/ipc_bench.hpp"
#include "parallax/parallax.h"
#include "stream_bench.hpp"

namespace pxstream {
namespace {

constexpr int64_t patience_ns = 10'000'000'000; // a step that takes longer is a failure

void check(px_status_t st, const char *what) {
    if (st != PX_OK)
        pxipc::die(std::string(what) + ": " + px_status_string(st) + " (" +
                   px_last_error_message() + ")");
}

// The receiving side's part of next(): arrival time, the publisher's stamp, the frame's
// number (read from its first bytes, as the iceoryx subscriber must: its stamp is there).
void take(px_buffer_t *buf, uint64_t &seq, int64_t &pts, int64_t &now) {
    now = pxipc::now_ns();
    px_metadata_t meta;
    check(px_buffer_metadata(buf, &meta), "px_buffer_metadata");
    pts = meta.pts_ns;
    seq = pxipc::load_seq(px_buffer_ptr(buf));
    if (seq != meta.sequence)
        pxipc::die("frame and metadata disagree on the sequence number");
    px_buffer_release(buf);
}

class ParallaxPublisher final : public Publisher {
  public:
    ParallaxPublisher(const std::string &name, size_t payload, size_t slots)
        : payload_(payload), pool_(frame_pool(payload, slots)) {
        check(px_publisher_new(name.c_str(), nullptr, &pub_), "px_publisher_new (defaults)");
    }
    ~ParallaxPublisher() override {
        px_publisher_release(pub_);
        px_pool_release(pool_);
    }

    void housekeeping() override {
        px_status_t st = px_publisher_poll(pub_, 1'000'000);
        if (st != PX_OK && st != PX_E_TIMEOUT && st != PX_E_WOULD_BLOCK)
            check(st, "px_publisher_poll");
    }

    int64_t publish(uint64_t seq) override {
        px_buffer_t *buf = stamped_frame(pool_, payload_, seq);
        const int64_t t0 = pxipc::now_ns();
        px_status_t st = px_publisher_publish(pub_, buf);
        const int64_t took = pxipc::now_ns() - t0;
        px_buffer_release(buf); // each subscriber's loan keeps the slot out until it releases
        check(st, "px_publisher_publish");
        return took;
    }

  private:
    size_t payload_;
    px_pool_t *pool_;
    px_publisher_t *pub_ = nullptr;
};

class ParallaxSubscriber final : public Subscriber {
  public:
    ParallaxSubscriber(const std::string &name, int64_t spin_ns) {
        check(px_subscriber_new(name.c_str(), patience_ns, &sub_), "px_subscriber_new");
        if (spin_ns != default_spin)
            check(px_subscriber_set_spin_ns(sub_, spin_ns), "px_subscriber_set_spin_ns");
    }
    ~ParallaxSubscriber() override { px_subscriber_release(sub_); }

    bool next(uint64_t &seq, int64_t &pts, int64_t &now) override {
        const int64_t give_up = pxipc::now_ns() + patience_ns;
        px_buffer_t *buf = nullptr;
        for (;;) {
            px_status_t st = px_subscriber_recv(sub_, patience_ns, &buf);
            if (st == PX_E_CLOSED)
                return false;
            if (st == PX_OK)
                break;
            // A description record can answer WOULD_BLOCK; anything else, or no frame for
            // the whole patience, is a failure.
            if ((st != PX_E_WOULD_BLOCK && st != PX_E_TIMEOUT) || pxipc::now_ns() > give_up)
                check(st, "px_subscriber_recv");
        }
        take(buf, seq, pts, now);
        return true;
    }

  private:
    px_subscriber_t *sub_ = nullptr;
};

// The baseline of the spin-mode case: one plain channel, as a user with one consumer writes
// it (px_listener_new / px_channel_connect, px_channel_send). Under the publisher's name, in
// /tmp.
std::string channel_path(const std::string &name) {
    return "/tmp/" + name + ".chan";
}

class ChannelPublisher final : public Publisher {
  public:
    ChannelPublisher(const std::string &name, size_t payload, size_t slots)
        : payload_(payload), pool_(frame_pool(payload, slots)) {
        check(px_listener_new(channel_path(name).c_str(), &listener_), "px_listener_new");
    }
    ~ChannelPublisher() override {
        px_channel_release(ch_);
        px_listener_release(listener_);
        px_pool_release(pool_);
    }

    void housekeeping() override {
        if (ch_)
            return;
        px_status_t st = px_listener_accept(listener_, 1'000'000, &ch_);
        if (st != PX_OK && st != PX_E_TIMEOUT && st != PX_E_WOULD_BLOCK)
            check(st, "px_listener_accept");
    }

    int64_t publish(uint64_t seq) override {
        if (!ch_)
            pxipc::die("the channel case publishes before its subscriber connected");
        px_buffer_t *buf = stamped_frame(pool_, payload_, seq);
        const int64_t t0 = pxipc::now_ns();
        // Waits while the receiver is a ring behind (a stream under DROP would skip it).
        px_status_t st = px_channel_send_timeout(ch_, buf, patience_ns);
        const int64_t took = pxipc::now_ns() - t0;
        px_buffer_release(buf);
        if (st != PX_E_CLOSED) // the stop frame goes on until the subscriber has exited
            check(st, "px_channel_send_timeout");
        return took;
    }

  private:
    size_t payload_;
    px_pool_t *pool_;
    px_listener_t *listener_ = nullptr;
    px_channel_t *ch_ = nullptr;
};

class ChannelSubscriber final : public Subscriber {
  public:
    ChannelSubscriber(const std::string &name, int64_t spin_ns) {
        check(px_channel_connect(channel_path(name).c_str(), patience_ns, &ch_),
              "px_channel_connect");
        if (spin_ns != default_spin)
            check(px_channel_set_spin_ns(ch_, spin_ns), "px_channel_set_spin_ns");
    }
    ~ChannelSubscriber() override { px_channel_release(ch_); }

    bool next(uint64_t &seq, int64_t &pts, int64_t &now) override {
        px_buffer_t *buf = nullptr;
        px_status_t st = px_channel_recv(ch_, patience_ns, &buf);
        if (st == PX_E_CLOSED)
            return false;
        check(st, "px_channel_recv");
        take(buf, seq, pts, now);
        return true;
    }

  private:
    px_channel_t *ch_ = nullptr;
};

} // namespace

px_pool_t *frame_pool(size_t payload, size_t slots) {
    px_segment_t *seg = nullptr;
    check(px_segment_shm_new("px_bench_stream", slots * payload, &seg), "px_segment_shm_new");
    pxipc::fill_frame(px_segment_mut_ptr(seg), px_segment_len(seg)); // produced in place
    px_pool_t *pool = nullptr;
    check(px_pool_new(seg, payload, &pool), "px_pool_new");
    px_segment_release(seg); // the pool keeps it
    return pool;
}

px_buffer_t *stamped_frame(px_pool_t *pool, size_t payload, uint64_t seq) {
    px_slot_t *slot = nullptr;
    check(px_pool_loan_timeout(pool, patience_ns, &slot), "px_pool_loan_timeout");
    pxipc::store_seq(px_slot_data(slot), seq);
    px_metadata_t meta;
    px_metadata_init(&meta);
    meta.sequence = seq;
    meta.pts_ns = pxipc::now_ns();
    px_buffer_t *buf = nullptr;
    check(px_slot_into_buffer(slot, payload, &meta, &buf), "px_slot_into_buffer");
    return buf;
}

std::unique_ptr<Publisher> parallax_publisher(const std::string &name, size_t payload,
                                              size_t slots) {
    return std::make_unique<ParallaxPublisher>(name, payload, slots);
}

std::unique_ptr<Subscriber> parallax_subscriber(const std::string &name, int64_t spin_ns) {
    return std::make_unique<ParallaxSubscriber>(name, spin_ns);
}

std::unique_ptr<Publisher> channel_publisher(const std::string &name, size_t payload,
                                             size_t slots) {
    return std::make_unique<ChannelPublisher>(name, payload, slots);
}

std::unique_ptr<Subscriber> channel_subscriber(const std::string &name, int64_t spin_ns) {
    return std::make_unique<ChannelSubscriber>(name, spin_ns);
}

} // namespace pxstream
