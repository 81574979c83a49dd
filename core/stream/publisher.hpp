// SPDX-License-Identifier: Apache-2.0 OR MIT
// Publisher: one stream, published to every subscriber that connects by name (API.md,
// "Streams"). Built on channels: one Channel per subscriber, plus a table of them.
//
// No thread is started: joins (handshakes, by the listener, never blocking), departures and
// the stats page are looked after inside poll(), which a publisher calls when fd() is readable
// (API.md's way: then no publish does any of it while poll keeps up), and inside publish(),
// for a publisher that never polls. A join or a departure is kernel work (memfds, mappings,
// sockets, fds passed) that would stall a publish for 100-200 us at once: it is done in pieces
// of one system call or so, at most one piece per publish (for a join: making the offer for the
// next connection ahead (memfd; size and seals; mapping; the data ring's pages faulted in, two
// at a time; socketpair), accepting the connection, greeting it, watching it, each stage of its
// handshake (Listener::accept_step), watching the new subscriber's socket, registering the
// description's and the frames' segments with it, then the welcome; for a departure: taking it
// out (one found by a publish leaves the table there, with no system call), closing its
// channel with its fds kept open, closing each fd, and for each control block dropping its
// pages, then unmapping it). A publish looks for work once a millisecond; while the pieces find
// work, each publish does the next one (a join takes about twenty frames). poll(), which stalls
// no frame, does every piece there is.
// PX_STREAM_PIECES=<file> writes what each kind of piece costs, and bench/stream's join/leave
// phase what publish costs meanwhile, polling or not.
//
// Publish puts one descriptor in each subscriber's ring; the frame's slot is lent once per
// subscriber and returns when the publisher and every subscriber have released it or died.
// Each subscriber has a credit, max_in_flight: what it holds plus what is queued for it. The
// slow-subscriber policy applies only to a subscriber without credit, so one slow subscriber
// never touches the others' path.
//
// The stream numbers what it publishes (from 1, apart from the user's Metadata::sequence);
// a subscriber counts what it missed from gaps. The description is a record on the same
// ordered path as frames, sent to a subscriber before the first frame that follows a change.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/buffer.hpp"
#include "core/fd_guard.hpp"
#include "core/ipc/channel.hpp"
#include "core/ipc/listener.hpp"
#include "core/ref.hpp"
#include "core/stream/stream_stats.hpp"

namespace px::stream {

enum class SlowPolicy : uint32_t { drop = 0, block = 1, disconnect = 2 };

struct PublisherOptions {
    SlowPolicy slow_policy = SlowPolicy::drop;
    uint32_t max_subscribers = 64;
    uint32_t max_in_flight = 8;
    uint32_t history = 0;
    int64_t block_timeout_ns = 1'000'000'000;
};

// Bounds of the options (each refused with a message naming it).
constexpr uint32_t max_subscribers_limit = 1024;
// A subscriber's ring holds 256 records; a credit of at most half of it leaves room for a
// record before each frame it may have queued: a format record (a typed frame whose format
// differs from the last one sent on that channel), a description or an unregister record.
// (A history replay can need more: welcome_locked caps it to what the ring holds.)
constexpr uint32_t max_in_flight_limit = 128;
constexpr uint32_t max_history = 1024;
// The description is a short text (GStreamer caps, JSON shapes).
constexpr size_t max_description_size = 64 * 1024;

class Publisher final : public RefCounted {
public:
    // Throws busy when a live publisher has `name`, invalid for a bad name or options.
    static Ref<Publisher> create(const std::string &name, const PublisherOptions &opts);

    // Sends `buf` to every admitted subscriber with credit; the policy decides for the others.
    // Throws timeout (BLOCK) after delivering to those with room. Never blocked by a subscriber
    // joining, lagging (DROP, DISCONNECT) or dying.
    void publish(const Buffer &buf);
    size_t subscriber_count() const;
    // Readable when poll() has work: a connection to admit, a subscriber gone.
    int fd() const noexcept { return poll_fd_.fd; }
    // Waits up to timeout_ns for work, then does it; would_block / timeout when none came.
    void poll(int64_t timeout_ns);
    // Throws invalid when longer than max_description_size.
    void set_description(const std::string &text);
    // Advances the stream's numbering by `count` without sending anything: each subscriber's
    // next frame shows the gap (its missed grows by count). Throws invalid when the numbers
    // would run out.
    void skip(uint64_t count);
    PublisherStats stats();

    ~Publisher() override;

private:
    struct Description;
    struct Subscriber;
    class PieceProfile;
    // skipped: this frame could not go to it for a reason of ours (out of fds registering the
    // frame's segment with it): it misses the frame, counted as dropped, and stays.
    enum class Delivery { sent, no_room, skipped, gone };

    Publisher(const std::string &socket_path, const std::string &stats_path,
              const PublisherOptions &opts);

    void housekeeping_locked();
    void after_frame_locked(bool took_out);
    bool piece_locked();
    bool timed_piece_locked();
    bool admit_locked();
    void watch_joining_locked();
    bool register_ahead_locked();
    void welcome_locked();
    size_t replay_count_locked() const;
    void refuse(ipc::Channel &ch) noexcept;
    int reap_departed_locked();
    bool tear_down_piece_locked() noexcept;
    void signal_pieces_locked() noexcept;
    Delivery deliver_locked(Subscriber &sub, const Buffer &frame, uint64_t seq);
    bool out_of_credit(ipc::Channel &ch) const;
    Delivery send_frame_locked(ipc::Channel &ch, const Buffer &frame, uint64_t seq);
    void deliver_all_locked(const Buffer &frame, uint64_t seq, std::vector<Subscriber *> &no_room,
                            std::vector<Subscriber *> &gone);
    void set_hot_locked() noexcept;
    Delivery deliver_profiled_locked(Subscriber &sub, const Buffer &frame, uint64_t seq);
    Delivery sync_description_locked(Subscriber &sub, int64_t timeout_ns);
    void apply_slow_policy_locked(std::vector<Subscriber *> &no_room, const Buffer &frame,
                                  uint64_t seq);
    void block_for_room_locked(std::vector<Subscriber *> &waiting, const Buffer &frame,
                               uint64_t seq);
    void remove_locked(Subscriber *sub, bool slow) noexcept;
    void set_aside_locked(Subscriber *sub) noexcept;
    void retire_locked(std::unique_ptr<Subscriber> sub) noexcept;
    void count_dropped_locked(const std::vector<Subscriber *> &missed) noexcept;
    // Each subscriber's loans for the page: its returns read first (read_returns), or as of
    // the last read (as_last_read: never fewer than now, at most a housekeeping interval old).
    // Not ipc::Returns, which says who reads returns after a send.
    enum class Loans { read_returns, as_last_read };
    void publish_stats_locked(Loans loans) noexcept;

    const PublisherOptions opts_;
    StatsPage stats_page_;
    Ref<ipc::Listener> listener_;
    FdGuard poll_fd_; // epoll: the listener, every subscriber's socket and pieces_fd_
    // An eventfd, readable while a departed subscriber's teardown or a joining one's welcome
    // has pieces left, so that a publisher waiting on fd() comes back to finish them.
    FdGuard pieces_fd_;

    // What publish reads before its first records go out, on two adjacent cache lines: a
    // publisher that slept between frames finds each line cold, and each delayed the record
    // (issue 13: one subscriber in spin mode, no slower than a plain channel). The first
    // subscribers' channels are here too (hot_): their records need neither the subscriber
    // list's array nor the subscribers' own records, two more lines, each read only once the
    // one before it had come.
    alignas(64) mutable std::mutex mutex_; // guards everything below but wake_
    uint64_t last_seq_ = 0;
    // The segment of the last frame published (kept until a frame from another one), which a
    // joining subscriber gets registered ahead of its welcome.
    Ref<Segment> frames_segment_;
    // The word every subscriber sleeps on (ipc/wake.hpp): each send that finds one asleep marks
    // a wake due, and every call that sends ends with one flush (a FlushWakes after its lock).
    const Ref<ipc::StreamWake> wake_ = Ref<ipc::StreamWake>::adopt(new ipc::StreamWake);
    std::vector<std::unique_ptr<Subscriber>> subs_;
    static constexpr size_t hot_subscribers = 4;
    // subs_[i]->ch for i < hot_subscribers (null past the last one): set_hot_locked after every
    // change of subs_. Read only while described_all_.
    std::array<ipc::Channel *, hot_subscribers> hot_{};
    const uint32_t max_in_flight_ = opts_.max_in_flight;
    // Every subscriber has had the description in force sent (and no profile_ is kept): publish
    // sends the hot_ ones their frames without looking at their records first. Cleared by a
    // new description and by a subscriber admitted with an older one; set again by the publish
    // that finds them all up to date.
    bool described_all_ = false;
    uint64_t description_version_ = 0; // description_->version
    // Debugging (PX_STREAM_PIECES=<file>, or "-" for stderr): the CPU time of each piece of
    // housekeeping, by kind, written out as a table when the publisher goes. Null otherwise.
    std::unique_ptr<PieceProfile> profile_;

    // Removed subscribers whose channels are yet to be closed, and the control blocks of closed
    // ones yet to be unmapped (ipc::DeferControlUnmaps): a teardown's pieces. Each keeps the
    // capacity for every subscriber (reserved at admission), so removing one never allocates.
    std::vector<std::unique_ptr<Subscriber>> departed_;
    std::vector<Ref<Segment>> unmaps_;
    std::vector<int> closes_; // fds of closed channels, closed one per piece (DeferCloses)
    bool back_dropped_ = false; // unmaps_.back()'s pages are dropped: its munmap is next
    bool pieces_signalled_ = false; // pieces_fd_ is readable
    // A subscriber whose handshake is done: its socket is watched by the next piece
    // (joining_watched_), then it is welcomed by the one after.
    std::unique_ptr<Subscriber> joining_;
    bool joining_watched_ = false;
    int joining_registered_ = 0; // register_ahead_locked's steps done (of 3)
    uint64_t next_sub_id_ = 1;
    std::shared_ptr<const Description> description_; // its version: description_version_
    struct Past {
        uint64_t seq;                                    // its stream number
        Buffer frame;
        std::shared_ptr<const Description> description; // in force when it was published
    };
    std::deque<Past> history_; // oldest first
    int64_t last_housekeeping_ns_ = 0;
    bool more_pieces_ = false; // the last piece found work: the next publish does the next one
    PublisherStats counters_;
    std::vector<SubscriberRow> rows_; // the stats page's subscriber table, rebuilt in place
    const char *piece_kind_ = "none"; // what the last piece_locked did (for profile_)
};

} // namespace px::stream
