// SPDX-License-Identifier: Apache-2.0 OR MIT
// iceoryx 2.x publish-subscribe (Debian's libiceoryx-posh-dev), the peer of libparallax's
// default mode: an untyped publisher and one untyped subscriber per process, loan -> write ->
// publish, and the subscriber sleeping in a WaitSet until it has data, then take -> read ->
// release (as bench/ipc does). Policies are iceoryx's defaults (DISCARD_OLDEST_DATA both
// sides: a slow subscriber loses frames and never blocks the publisher, like PX_SLOW_DROP);
// the queue holds `in_flight` frames, as libparallax's max_in_flight.
#include <thread>
#include <unistd.h>

#include "../ipc/ipc_bench.hpp"
#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/popo/wait_set.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#include "stream_bench.hpp"

namespace pxstream {
namespace {

constexpr int64_t patience_ns = 10'000'000'000;

iox::capro::ServiceDescription service(const std::string &name) {
    return {"pxstream", iox::capro::IdString_t(iox::cxx::TruncateToCapacity, name.c_str()),
            "frames"};
}

void init_runtime(const char *role) {
    // Its debug chatter (one line per segment per process) would bury the tables.
    iox::log::LogManager::GetLogManager().SetDefaultLogLevel(
        iox::log::LogLevel::kWarn, iox::log::LogLevelOutput::kHideLogLevel);
    std::string name = std::string("pxstream-") + role + "-" + std::to_string(getpid());
    iox::runtime::PoshRuntime::initRuntime(
        iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name.c_str()));
}

void store_pts(void *chunk, int64_t pts) {
    pxipc::store_seq(static_cast<char *>(chunk) + 8, static_cast<uint64_t>(pts));
}

class IceoryxPublisher final : public Publisher {
  public:
    IceoryxPublisher(const std::string &name, size_t payload)
        : payload_(static_cast<uint32_t>(payload)), pub_((init_runtime("pub"), service(name))) {}

    void housekeeping() override { std::this_thread::sleep_for(std::chrono::milliseconds(1)); }

    int64_t publish(uint64_t seq) override {
        const int64_t give_up = pxipc::now_ns() + patience_ns;
        for (;;) {
            auto chunk = pub_.loan(payload_);
            if (!chunk.has_error()) {
                pxipc::store_seq(chunk.value(), seq);
                store_pts(chunk.value(), pxipc::now_ns());
                const int64_t t0 = pxipc::now_ns();
                pub_.publish(chunk.value());
                return pxipc::now_ns() - t0;
            }
            // Every chunk is out (held or queued by subscribers): wait, as a pool loan does.
            if (pxipc::now_ns() > give_up)
                pxipc::die("iceoryx: loan of " + std::to_string(payload_) +
                           " bytes kept failing (mempool too small or exhausted)");
            std::this_thread::yield();
        }
    }

  private:
    uint32_t payload_;
    iox::popo::UntypedPublisher pub_;
};

iox::popo::SubscriberOptions subscriber_options() {
    iox::popo::SubscriberOptions o;
    o.queueCapacity = in_flight;
    return o;
}

class IceoryxSubscriber final : public Subscriber {
  public:
    explicit IceoryxSubscriber(const std::string &name)
        : sub_((init_runtime("sub"), service(name)), subscriber_options()) {
        if (waitset_.attachState(sub_, iox::popo::SubscriberState::HAS_DATA).has_error())
            pxipc::die("iceoryx: WaitSet::attachState failed");
        const int64_t give_up = pxipc::now_ns() + patience_ns;
        while (sub_.getSubscriptionState() != iox::SubscribeState::SUBSCRIBED) {
            if (pxipc::now_ns() > give_up)
                pxipc::die("iceoryx: not subscribed within 10 s");
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }

    bool next(uint64_t &seq, int64_t &pts, int64_t &now) override {
        const pid_t publisher = getppid();
        for (;;) {
            auto got = sub_.take();
            if (!got.has_error()) {
                now = pxipc::now_ns();
                const void *chunk = got.value();
                seq = pxipc::load_seq(chunk);
                pts = static_cast<int64_t>(pxipc::load_seq(static_cast<const char *>(chunk) + 8));
                sub_.release(chunk);
                return true;
            }
            if (got.get_error() != iox::popo::ChunkReceiveResult::NO_CHUNK_AVAILABLE)
                pxipc::die("iceoryx: take failed (too many chunks held)");
            // iceoryx does not tell a subscriber its publisher died: our parent is the
            // publisher, so a change of parent means it is gone.
            if (getppid() != publisher)
                return false;
            waitset_.timedWait(iox::units::Duration::fromMilliseconds(100));
        }
    }

  private:
    iox::popo::UntypedSubscriber sub_;
    iox::popo::WaitSet<> waitset_;
};

} // namespace

std::unique_ptr<Publisher> iceoryx_publisher(const std::string &name, size_t payload) {
    return std::make_unique<IceoryxPublisher>(name, payload);
}

std::unique_ptr<Subscriber> iceoryx_subscriber(const std::string &name) {
    return std::make_unique<IceoryxSubscriber>(name);
}

} // namespace pxstream
