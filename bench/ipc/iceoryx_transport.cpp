// SPDX-License-Identifier: Apache-2.0 OR MIT
// iceoryx 2.x (the Debian packages libiceoryx-posh-dev / iceoryx), the zero-copy IPC library
// users pick today, used the way its own latency benchmark (iceperf) uses it: an untyped
// publisher and subscriber per direction, loan -> write -> publish, take -> read -> release.
//
// Modes: busy (the receiver polls take() in a loop, one core busy while waiting) and waitset
// (it sleeps in a WaitSet attached to "subscriber has data", woken by iceoryx's notification).
// Stream cases use WAIT_FOR_CONSUMER / BLOCK_PRODUCER, so no frame is dropped: the producer
// waits when the consumer's queue (depth = Case::slots) is full, like a parallax pool that ran
// dry.
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/popo/wait_set.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#include "iceoryx_versions.hpp"
#include "ipc_bench.hpp"

namespace pxipc {
namespace {

iox::capro::ServiceDescription service(pid_t leader, const char *event) {
    std::string instance = "leader" + std::to_string(leader);
    return {"pxbench", iox::capro::IdString_t(iox::cxx::TruncateToCapacity, instance.c_str()),
            iox::capro::IdString_t(iox::cxx::TruncateToCapacity, event)};
}

class Endpoint {
  public:
    Endpoint(const Case &c, const std::string &role, pid_t leader, const char *out_event,
             const char *in_event)
        : c_(c), runtime_(init(role)), pub_(service(leader, out_event), publisher_options(c)),
          sub_(service(leader, in_event), subscriber_options(c)) {
        if (c.mode == "waitset") {
            waitset_.emplace();
            if (waitset_->attachState(sub_, iox::popo::SubscriberState::HAS_DATA).has_error())
                die("iceoryx: WaitSet::attachState failed");
        } else if (c.mode != "busy") {
            die("unknown iceoryx mode " + c.mode);
        }
    }

    // Fills every chunk of the frames' mempool once (the leader, before its follower exists):
    // the frames are produced in place beforehand, as for the other transports, and later
    // only their sequence number is written. The mempools hold 8 chunks per frame size (see
    // roudi.cpp), as many as a publisher may hold at once.
    void prefill(size_t bytes) {
        std::vector<void *> held;
        for (int i = 0; i < 64; ++i) {
            auto chunk = pub_.loan(static_cast<uint32_t>(bytes));
            if (chunk.has_error())
                break;
            fill_frame(chunk.value(), bytes);
            held.push_back(chunk.value());
        }
        for (void *p : held)
            pub_.release(p);
    }

    void wait_for_peer() {
        const int64_t give_up = now_ns() + 10'000'000'000;
        while (!pub_.hasSubscribers() ||
               sub_.getSubscriptionState() != iox::SubscribeState::SUBSCRIBED) {
            if (now_ns() > give_up)
                die("iceoryx: the peer did not subscribe within 10 s");
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }

    // Loans a chunk (waiting while the mempool is exhausted), stamps `seq`, publishes.
    void send(uint64_t seq, size_t bytes) {
        const int64_t give_up = now_ns() + 10'000'000'000;
        for (;;) {
            auto chunk = pub_.loan(static_cast<uint32_t>(bytes));
            if (!chunk.has_error()) {
                store_seq(chunk.value(), seq);
                pub_.publish(chunk.value());
                return;
            }
            if (now_ns() > give_up)
                die("iceoryx: loan of " + std::to_string(bytes) +
                    " bytes kept failing (mempool too small or exhausted)");
            std::this_thread::yield();
        }
    }

    // Waits for the next chunk (busy-polling or in the WaitSet). The caller releases it.
    const void *take() {
        for (;;) {
            auto got = sub_.take();
            if (!got.has_error())
                return got.value();
            if (got.get_error() != iox::popo::ChunkReceiveResult::NO_CHUNK_AVAILABLE)
                die("iceoryx: take failed (too many chunks held)");
            if (waitset_)
                waitset_->wait();
        }
    }

    void release(const void *chunk) { sub_.release(chunk); }

  private:
    static iox::popo::PublisherOptions publisher_options(const Case &c) {
        iox::popo::PublisherOptions o;
        if (c.kind == Kind::stream)
            o.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
        return o;
    }
    static iox::popo::SubscriberOptions subscriber_options(const Case &c) {
        iox::popo::SubscriberOptions o;
        if (c.kind == Kind::stream) {
            o.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
            o.queueCapacity = c.slots;
        }
        return o;
    }
    static iox::runtime::PoshRuntime &init(const std::string &role) {
        std::string name = "pxbench-" + role + "-" + std::to_string(getpid());
        return iox::runtime::PoshRuntime::initRuntime(
            iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name.c_str()));
    }

    const Case &c_;
    iox::runtime::PoshRuntime &runtime_;
    iox::popo::UntypedPublisher pub_;
    iox::popo::UntypedSubscriber sub_;
    iox::cxx::optional<iox::popo::WaitSet<>> waitset_;
};

} // namespace

std::string iceoryx_build_problem() {
    return {};
}
std::string iceoryx_version() {
    return ICEORYX_LATEST_RELEASE_VERSION;
}

Result iceoryx_leader(const Case &c) {
    Result r;
    int pid = -1;
    {
        Endpoint ep(c, "leader", getpid(), "ping", "pong");
        ep.prefill(c.payload);
        pid = spawn_follower(c, {});
        ep.wait_for_peer();
        if (c.kind == Kind::pingpong) {
            time_round_trips(c, r, [&](uint64_t seq) {
                ep.send(seq, c.payload);
                const void *echo = ep.take();
                if (load_seq(echo) != seq)
                    die("the echo did not come back intact");
                ep.release(echo);
            });
        } else {
            auto drain = [&] {
                ep.send(seq_mark, c.payload);
                const void *ack = ep.take();
                if (load_seq(ack) != seq_mark)
                    die("no ack from the consumer");
                ep.release(ack);
            };
            uint64_t seq = 0;
            const int64_t warm_end = now_ns() + static_cast<int64_t>(c.seconds * 0.1e9);
            while (now_ns() < warm_end || seq < 2 * c.slots) {
                ep.send(seq++, c.payload);
                note_cpu();
            }
            drain();
            const int64_t t0 = now_ns(), deadline = t0 + static_cast<int64_t>(c.seconds * 1e9);
            uint64_t n = 0;
            do {
                ep.send(seq++, c.payload);
                note_cpu();
                ++n;
            } while (now_ns() < deadline);
            drain();
            r.ok = true;
            r.frames = n;
            r.elapsed_s = static_cast<double>(now_ns() - t0) / 1e9;
        }
        ep.send(seq_stop, c.payload);
        reap(pid);
    }
    return r;
}

int iceoryx_follower(const Case &c, const std::vector<int> &) {
    Endpoint ep(c, "follower", getppid(), "pong", "ping");
    ep.wait_for_peer();
    volatile uint64_t sink = 0;
    for (;;) {
        const void *chunk = ep.take();
        note_cpu();
        uint64_t seq = load_seq(chunk);
        if (seq == seq_stop) {
            ep.release(chunk);
            return 0;
        }
        if (c.kind == Kind::pingpong || seq == seq_mark) {
            // iceoryx publishes chunks of the publisher's own mempool: the echo is a new
            // chunk (same size, only its sequence written), as in iceperf.
            ep.send(seq, c.kind == Kind::pingpong ? c.payload : min_payload);
        } else if (c.read_all) {
            sink = sink + read_every_byte(chunk, c.payload);
        }
        ep.release(chunk);
    }
}

} // namespace pxipc
