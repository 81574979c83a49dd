// SPDX-License-Identifier: Apache-2.0 OR MIT
// libparallax streams through the public C API, as a user writes them (see
// examples/c/stream_publisher.c): default publisher options (PX_SLOW_DROP, max_in_flight 8),
// a pool over a shared-memory segment, loan -> write -> px_slot_into_buffer with pts_ns in the
// metadata -> px_publisher_publish; the subscriber receives a read-only view and releases it.
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

class ParallaxPublisher final : public Publisher {
  public:
    ParallaxPublisher(const std::string &name, size_t payload, size_t slots) : payload_(payload) {
        px_segment_t *seg = nullptr;
        check(px_segment_shm_new("px_bench_stream", slots * payload, &seg),
              "px_segment_shm_new");
        pxipc::fill_frame(px_segment_mut_ptr(seg), px_segment_len(seg)); // produced in place
        check(px_pool_new(seg, payload, &pool_), "px_pool_new");
        px_segment_release(seg); // the pool keeps it
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
        px_slot_t *slot = nullptr;
        check(px_pool_loan_timeout(pool_, patience_ns, &slot), "px_pool_loan_timeout");
        pxipc::store_seq(px_slot_data(slot), seq);
        px_metadata_t meta;
        px_metadata_init(&meta);
        meta.sequence = seq;
        meta.pts_ns = pxipc::now_ns();
        px_buffer_t *buf = nullptr;
        check(px_slot_into_buffer(slot, payload_, &meta, &buf), "px_slot_into_buffer");
        const int64_t t0 = pxipc::now_ns();
        px_status_t st = px_publisher_publish(pub_, buf);
        const int64_t took = pxipc::now_ns() - t0;
        px_buffer_release(buf); // each subscriber's loan keeps the slot out until it releases
        check(st, "px_publisher_publish");
        return took;
    }

  private:
    size_t payload_;
    px_pool_t *pool_ = nullptr;
    px_publisher_t *pub_ = nullptr;
};

class ParallaxSubscriber final : public Subscriber {
  public:
    explicit ParallaxSubscriber(const std::string &name) {
        check(px_subscriber_new(name.c_str(), patience_ns, &sub_), "px_subscriber_new");
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
        now = pxipc::now_ns();
        px_metadata_t meta;
        check(px_buffer_metadata(buf, &meta), "px_buffer_metadata");
        pts = meta.pts_ns;
        // Read the frame's first bytes, as the iceoryx subscriber must (its stamp is there).
        seq = pxipc::load_seq(px_buffer_ptr(buf));
        if (seq != meta.sequence)
            pxipc::die("frame and metadata disagree on the sequence number");
        px_buffer_release(buf);
        return true;
    }

  private:
    px_subscriber_t *sub_ = nullptr;
};

} // namespace

std::unique_ptr<Publisher> parallax_publisher(const std::string &name, size_t payload,
                                              size_t slots) {
    return std::make_unique<ParallaxPublisher>(name, payload, slots);
}

std::unique_ptr<Subscriber> parallax_subscriber(const std::string &name) {
    return std::make_unique<ParallaxSubscriber>(name);
}

} // namespace pxstream
