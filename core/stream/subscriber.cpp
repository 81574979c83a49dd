// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/stream/subscriber.hpp"

#include <unistd.h>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/hot.hpp"
#include "core/stream/publisher.hpp"
#include "core/stream/runtime_dir.hpp"

namespace px::stream {

using ipc::wire::DataKind;
using ipc::wire::StreamTag;

Ref<Subscriber> Subscriber::create(const std::string &name, int64_t timeout_ns) {
    const StreamPaths paths = paths_for(name);
    const int64_t deadline = deadline_for(timeout_ns);
    // A publisher that goes away while we join (killed, restarted, or one that dropped our
    // handshake because it did not admit us in time) is, for the caller, a publisher that has
    // not appeared yet: try again while the timeout lasts (start order does not matter).
    for (;;) {
        try {
            return connect_and_join(name, paths.socket, deadline);
        } catch (const Error &e) {
            // A step that found no time left at all polls, and answers would_block: a
            // positive timeout that ran out answers timeout (the API's rule).
            if (e.status() == Status::would_block && timeout_ns > 0)
                fail(Status::timeout, e.what());
            if (e.status() != Status::closed || timeout_left(deadline, now_ns()) == 0)
                throw;
        }
        ::usleep(retry_join_us);
    }
}

Ref<Subscriber> Subscriber::connect_and_join(const std::string &name, const std::string &socket,
                                             int64_t deadline) {
    Ref<ipc::Channel> ch;
    try {
        // The caller's timeout bounds the handshake too (the header's promise): a publisher
        // that accepts and then does not answer costs the time left, not a channel's 1 s.
        ch = ipc::Channel::connect(socket, timeout_left(deadline, now_ns()), 0);
    } catch (const Error &e) {
        if (e.status() == Status::would_block || e.status() == Status::timeout)
            fail(e.status(), "no publisher of \"" + name + "\" appeared in time (" + e.what() +
                                 ")");
        throw;
    }
    auto sub = Ref<Subscriber>::adopt(new Subscriber(name, std::move(ch)));
    sub->join(deadline);
    return sub;
}

std::string Subscriber::text_of(const Buffer &b) {
    if (b.size() > max_description_size)
        fail(Status::protocol, "a description of " + std::to_string(b.size()) +
                                   " bytes (at most " + std::to_string(max_description_size) +
                                   ")");
    return std::string(reinterpret_cast<const char *>(b.data()), b.size());
}

Buffer Subscriber::recv_joining(int64_t deadline_ns, StreamTag *tag) {
    try {
        return ch_->recv(timeout_left(deadline_ns, now_ns()), tag);
    } catch (const Error &e) {
        if (e.status() == Status::would_block || e.status() == Status::timeout)
            fail(e.status(), "the publisher of \"" + name_ +
                                 "\" did not admit this subscriber in time (it admits "
                                 "inside px_publisher_publish and px_publisher_poll)");
        if (e.status() == Status::closed)
            fail(Status::closed, "the publisher of \"" + name_ + "\" went away while "
                                 "this subscriber joined");
        throw;
    }
}

void Subscriber::join(int64_t deadline_ns) {
    StreamTag tag;
    const Buffer welcome = recv_joining(deadline_ns, &tag);
    if (tag.kind == DataKind::stream_refused)
        fail(Status::busy, "the publisher of \"" + name_ +
                               "\" is full: it has its max_subscribers already");
    if (tag.kind != DataKind::stream_welcome)
        fail(Status::protocol, "the publisher's first record is not a welcome (kind " +
                                   std::to_string(static_cast<uint32_t>(tag.kind)) + ")");
    auto text = std::make_shared<const std::string>(text_of(welcome));
    // The stream's wake word follows the welcome at once: recv sleeps on it from now on.
    StreamTag wake_tag;
    const Buffer wake = recv_joining(deadline_ns, &wake_tag);
    if (wake_tag.kind != DataKind::stream_wake)
        fail(Status::protocol, "the publisher's welcome is not followed by its wake page (kind " +
                                   std::to_string(static_cast<uint32_t>(wake_tag.kind)) + ")");
    ch_->sleep_on_stream(wake);
    // Before state_mutex_: a receive takes it under the channel's lock (keep), so it is never
    // held while the channel's is taken.
    const uint64_t publisher_pid = ch_->stats().peer_pid;
    std::lock_guard lock(state_mutex_);
    pending_description_ = text;
    description_ = std::move(text);
    description_version_.store(1, std::memory_order_release);
    next_seq_ = tag.seq;
    publisher_pid_ = publisher_pid;
}

Buffer Subscriber::recv(int64_t timeout_ns) {
    if (std::optional<Buffer> b = receive(timeout_ns))
        return std::move(*b);
    fail(Status::would_block, "nothing to receive");
}

PX_HOT std::optional<Buffer> Subscriber::receive(int64_t timeout_ns) {
    try {
        // A poll stays a poll (and "nothing yet" is no exception); a wait that meets a
        // description waits on for what is left of it.
        StreamTag tag;
        return ch_->receive(timeout_ns, &tag, this);
    } catch (const Error &e) {
        if (e.status() == Status::closed)
            fail(Status::closed, "the publisher of \"" + name_ +
                                     "\" has gone (everything it sent was received)");
        // A publisher that breaks the stream's rules is dropped like one that breaks the
        // channel's: later calls fail too, and it sees us leave.
        if (e.status() == Status::protocol)
            ch_->abandon(e.what());
        throw;
    }
}

PX_HOT bool Subscriber::keep(const Buffer &b, const StreamTag &tag) {
    if (tag.kind == DataKind::stream_description) {
        pending_description_ = std::make_shared<const std::string>(text_of(b));
        return false;
    }
    if (tag.kind != DataKind::frame)
        fail(Status::protocol, "a welcome, refusal or wake page in the middle of the stream");
    if (tag.seq < next_seq_)
        fail(Status::protocol, "frame " + std::to_string(tag.seq) + " came after frame " +
                                   std::to_string(next_seq_ - 1) +
                                   ": a stream's numbers only grow");
    // Relaxed stores of our own counters (one writer): no read-modify-write.
    if (tag.seq != next_seq_)
        missed_.store(missed_.load(std::memory_order_relaxed) + (tag.seq - next_seq_),
                      std::memory_order_relaxed);
    next_seq_ = tag.seq + 1;
    received_.store(received_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (description_ != pending_description_) { // we are its only writer: no lock to read
        std::lock_guard lock(state_mutex_);
        description_ = pending_description_;
        description_version_.fetch_add(1, std::memory_order_release);
    }
    return true;
}

std::shared_ptr<const std::string> Subscriber::description() const {
    std::lock_guard lock(state_mutex_);
    return description_;
}

SubscriberStats Subscriber::stats() const {
    return SubscriberStats{received_.load(std::memory_order_relaxed),
                           missed_.load(std::memory_order_relaxed), publisher_pid_};
}

} // namespace px::stream
