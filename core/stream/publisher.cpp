// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/stream/publisher.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/hot.hpp"
#include "core/ipc/fd_passing.hpp"
#include "core/ipc/ring.hpp"
#include "core/shared_memory_segment.hpp"
#include "core/stream/runtime_dir.hpp"

namespace px::stream {

using ipc::Channel;
using ipc::wire::DataKind;
using ipc::wire::StreamTag;

namespace {

// How often publish looks after joins, departures and the stats page: often enough that a
// joining subscriber waits no longer than a frame or a millisecond, rarely enough that a
// publish costs one send per subscriber.
// Timed by CLOCK_MONOTONIC, not the coarse clock (5 ns a read, the fine one 24 ns here): that
// one moves only at the kernel's tick (every 4 ms at HZ=250) and on a CPU back from idle, so a
// publish that timed housekeeping by it did so the first time it ran after a tick, and its
// admissions and removals met the tick's own work (the timer interrupt, RCU callbacks, the
// hypervisor's exits), which the other publishes met seldom: 2-5% of them took over 50 us,
// against 0.05% of the rest (issue 13: "joining or leaving never stalls publish for more than
// 50 us"). With the fine clock, three rounds of a publisher that never polls: p99 of those
// publishes 43-46 us (55-77 with the coarse clock), 4-6 over 50 us per round (12-48).
constexpr int64_t housekeeping_interval_ns = 1'000'000;
// The epoll ids of the publisher's own fds (subscribers have ids from 1).
constexpr uint64_t listener_id = 0;
constexpr uint64_t pieces_id = UINT64_MAX;
// Departures taken out of the table per housekeeping: each costs an epoll_ctl and a shutdown
// (10-20 us on a loaded machine), as much as a piece of a join.
constexpr int departures_per_round = 1;
// poll() stalls no frame: it does every piece of work there is, up to this many.
constexpr int pieces_per_poll = 64;
// A BLOCK publish looks again between yields this long, then sleeps until a return, at most
// block_poll_cap_ns at a time.
constexpr int64_t block_spin_ns = 50'000;
constexpr int64_t block_poll_cap_ns = 1'000'000;
// Room kept for the fds one channel's close lets go of (more are closed at once).
constexpr size_t fds_per_channel_close = 8;
// The most publishes between two yields to a subscriber without credit whom yields do not
// help (see publish).
constexpr uint32_t max_yield_backoff = 63;

// What keeps a frame that is not a pool slot counted while a subscriber holds it: a channel
// tracks loans by lease, and credit is counted in loans.
class FrameLease final : public RefCounted {};

// Declared after a publisher's lock: the wake its sends made due goes out before the lock is
// released, on every way out (an exception included).
struct FlushWakes {
    ipc::StreamWake &wake;
    ~FlushWakes() { wake.flush(); }
};

Buffer counted(const Buffer &buf) {
    if (buf.lease())
        return buf;
    return Buffer(buf.segment_ref(), buf.offset(), buf.size(), buf.metadata(),
                  Ref<RefCounted>::adopt(new FrameLease));
}

void check_options(const PublisherOptions &o) {
    if (o.slow_policy != SlowPolicy::drop && o.slow_policy != SlowPolicy::block &&
        o.slow_policy != SlowPolicy::disconnect)
        fail(Status::invalid, "slow_policy " + std::to_string(static_cast<uint32_t>(
                                                   o.slow_policy)) +
                                  " is none of PX_SLOW_DROP (0), PX_SLOW_BLOCK (1), "
                                  "PX_SLOW_DISCONNECT (2)");
    if (o.max_subscribers == 0 || o.max_subscribers > max_subscribers_limit)
        fail(Status::invalid, "max_subscribers " + std::to_string(o.max_subscribers) +
                                  " is not in 1.." + std::to_string(max_subscribers_limit));
    if (o.max_in_flight == 0 || o.max_in_flight > max_in_flight_limit)
        fail(Status::invalid, "max_in_flight " + std::to_string(o.max_in_flight) +
                                  " is not in 1.." + std::to_string(max_in_flight_limit) +
                                  " (a subscriber's ring holds 256 records)");
    if (o.history > max_history)
        fail(Status::invalid, "history " + std::to_string(o.history) + " is more than " +
                                  std::to_string(max_history));
}

} // namespace

// A description version: its text in a sealed memfd of its own (sent like a frame: the
// subscriber maps it read-only and copies the text out).
struct Publisher::Description {
    uint64_t version = 0;
    Buffer text;
};

// PX_STREAM_PIECES: how much CPU each kind of housekeeping piece takes (issue 13's "joining or
// leaving never stalls publish for more than 50 us" is met piece by piece). A debugging aid:
// costs nothing unless the variable is set (one null test per publish and per subscriber).
class Publisher::PieceProfile {
public:
    // Null unless PX_STREAM_PIECES names a file to append to ("-": stderr).
    static std::unique_ptr<PieceProfile> from_env() {
        const char *path = std::getenv("PX_STREAM_PIECES");
        if (!path || !*path)
            return nullptr;
        return std::make_unique<PieceProfile>(path);
    }
    explicit PieceProfile(std::string path) : path_(std::move(path)) {}
    PieceProfile(const PieceProfile &) = delete;
    PieceProfile &operator=(const PieceProfile &) = delete;
    ~PieceProfile() { write(); }

    // CPU time of this thread: what a piece costs, not what the scheduler gave others.
    static int64_t cpu_now_ns() noexcept {
        timespec ts{};
        ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
    }
    void add(const char *kind, int64_t cpu_ns) { samples_[kind].push_back(cpu_ns); }

private:
    void write() noexcept {
        FILE *out = path_ == "-" ? stderr : std::fopen(path_.c_str(), "a");
        if (!out)
            return;
        std::fprintf(out, "# publisher pid %d: CPU us per housekeeping piece\n", ::getpid());
        std::fprintf(out, "%-44s %7s %7s %7s %7s %7s\n", "piece", "n", "p50", "p90", "p99",
                     "max");
        for (auto &entry : samples_) {
            // Named, not a structured binding: clang before 16 cannot capture those.
            const std::string &kind = entry.first;
            std::vector<int64_t> &v = entry.second;
            std::sort(v.begin(), v.end());
            auto at = [&](double q) {
                return static_cast<double>(v[static_cast<size_t>(q * double(v.size() - 1))]) /
                       1e3;
            };
            std::fprintf(out, "%-44s %7zu %7.1f %7.1f %7.1f %7.1f\n", kind.c_str(), v.size(),
                         at(0.5), at(0.9), at(0.99), static_cast<double>(v.back()) / 1e3);
        }
        if (out != stderr)
            std::fclose(out);
    }

    std::string path_;
    std::map<std::string, std::vector<int64_t>> samples_;
};

// On a cache line of its own: publish reads it for every frame.
struct alignas(64) Publisher::Subscriber {
    uint64_t id = 0;
    Ref<Channel> ch;
    uint64_t description_version = 0; // the last one sent to it
    uint64_t pid = 0;                 // its process, for the stats page's table
    uint64_t delivered = 0;           // frames sent to it
    uint64_t dropped = 0;             // frames it had no room for
    // Yields to it while it has no credit (publish): its ring position at the last one, the
    // publishes to let go before the next, and how many that is while yields do not move it.
    uint64_t position_at_yield = UINT64_MAX;
    uint32_t yields_skipped = 0;
    uint32_t yield_backoff = 0;
};

Ref<Publisher> Publisher::create(const std::string &name, const PublisherOptions &opts) {
    check_options(opts);
    StreamPaths paths = paths_for(name);
    return Ref<Publisher>::adopt(new Publisher(paths.socket, paths.stats, opts));
}

namespace {

Buffer description_buffer(const std::string &text) {
    // A segment cannot be empty: "" is a 0-byte window on a 1-byte one.
    Ref<Segment> seg = shm::create("px-stream-description",
                                                   std::max<size_t>(text.size(), 1));
    if (!text.empty())
        std::memcpy(seg->mutable_data(), text.data(), text.size());
    return Buffer(seg, 0, text.size(), Metadata{});
}

} // namespace

Publisher::Publisher(const std::string &socket_path, const std::string &stats_path,
                     const PublisherOptions &opts)
    : opts_(opts), stats_page_(stats_path), listener_(ipc::Listener::create(socket_path)),
      poll_fd_(::epoll_create1(EPOLL_CLOEXEC)),
      pieces_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (poll_fd_.fd < 0)
        fail_errno("epoll_create1", errno);
    if (pieces_fd_.fd < 0)
        fail_errno("eventfd for the publisher's joins and departures", errno);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = listener_id;
    if (::epoll_ctl(poll_fd_.fd, EPOLL_CTL_ADD, listener_->fd(), &ev) != 0)
        fail_errno("epoll_ctl(ADD, listener)", errno);
    ev.data.u64 = pieces_id;
    if (::epoll_ctl(poll_fd_.fd, EPOLL_CTL_ADD, pieces_fd_.fd, &ev) != 0)
        fail_errno("epoll_ctl(ADD, joins and departures)", errno);
    profile_ = PieceProfile::from_env();
    description_ = std::make_shared<Description>(Description{0, description_buffer("")});
    stats_page_.store(counters_);
    // A joining subscriber's control block and return socketpair are made ahead, in a piece of
    // their own (the listener's fd is readable until they are), not while it is admitted.
    listener_->keep_offer_ready();
}

Publisher::~Publisher() {
    for (const int fd : closes_)
        ::close(fd);
}

size_t Publisher::subscriber_count() const {
    std::lock_guard lock(mutex_);
    return subs_.size();
}

// ---------------------------------------------------------------------------------------------
// Joins and departures

// One piece of a join or a departure at most (none when taking departures out was the piece): a
// piece costs 3-20 us of CPU on the loaded 2-core VM (PX_STREAM_PIECES; 10-40 us when pieces
// come a millisecond apart), and one that looked quick may be followed by a slow one. A join is
// about twenty pieces, so a publisher that never polls admits a subscriber in as many frames
// (after_frame_locked), unless it polls its fd (poll does them all, one per call of this).
void Publisher::housekeeping_locked() {
    const int64_t cpu_start = profile_ ? PieceProfile::cpu_now_ns() : 0;
    last_housekeeping_ns_ = now_ns();
    // An epoll_wait, and for each one that left an epoll_ctl and a shutdown: that is this
    // call's piece then, and its teardown starts at the next.
    const int reaped = reap_departed_locked();
    if (profile_)
        profile_->add(reaped ? "departure: take out (with epoll_wait)" : "epoll_wait for departures",
                      PieceProfile::cpu_now_ns() - cpu_start);
    more_pieces_ = reaped != 0 || timed_piece_locked();
    signal_pieces_locked();
    publish_stats_locked(Loans::read_returns);
    if (profile_)
        profile_->add("housekeeping: whole call", PieceProfile::cpu_now_ns() - cpu_start);
}

// piece_locked, its CPU time added to profile_ (when there is one) under what it did.
bool Publisher::timed_piece_locked() {
    if (!profile_)
        return piece_locked();
    const int64_t start = PieceProfile::cpu_now_ns();
    const bool worked = piece_locked();
    if (worked)
        profile_->add(piece_kind_, PieceProfile::cpu_now_ns() - start);
    return worked;
}

// One piece of work: a teardown's first, since they give back fds, memory and slots; then a
// welcome, which ends a join (its socket watched first, in a piece of its own); then the
// listener's next piece. False when there was none.
bool Publisher::piece_locked() {
    piece_kind_ = !closes_.empty()  ? "departure: close an fd"
                  : unmaps_.empty() ? "departure: close its channel"
                  : back_dropped_   ? "departure: unmap a control block"
                                    : "departure: drop a control block's pages";
    if (tear_down_piece_locked())
        return true;
    if (joining_ && !joining_watched_) {
        piece_kind_ = "watch a joining subscriber";
        watch_joining_locked();
        return true;
    }
    if (joining_ && register_ahead_locked())
        return true;
    if (joining_) {
        piece_kind_ = "welcome";
        welcome_locked();
        return true;
    }
    const bool worked = admit_locked();
    piece_kind_ = listener_->last_piece();
    return worked;
}

// One piece of a join (see Listener::accept_step): a crowd joining at once delays each
// publish by a few system calls, not by the sum. False when the listener had nothing to do.
bool Publisher::admit_locked() {
    Ref<Channel> ch;
    pid_t pid = 0;
    bool worked = false;
    try {
        // Never blocks: handshakes advance as bytes arrive.
        ch = listener_->accept_step(&pid, &worked);
    } catch (const Error &) {
        // The listener's own trouble (out of fds): the subscribers already here must not pay
        // for it, and the connection waits in the kernel's backlog for the next round.
        return false;
    }
    if (ch) {
        // Watched, then welcomed, in pieces of their own (sending the welcome may pass the
        // description's fd).
        joining_ = std::make_unique<Subscriber>();
        joining_registered_ = 0;
        joining_->id = next_sub_id_++;
        joining_->ch = std::move(ch);
        joining_->pid = static_cast<uint64_t>(pid);
    }
    return worked;
}

// The joining subscriber's socket joins the epoll set (a departure before its welcome is then
// found as any other), and the room its admission and removal take is reserved, so that
// neither allocates.
void Publisher::watch_joining_locked() {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = joining_->id;
    try {
        rows_.reserve(subs_.size() + 1); // publish_stats_locked, noexcept, never allocates
        departed_.reserve(subs_.size() + departed_.size() + 1); // retire_locked, set_aside_locked
        subs_.reserve(subs_.size() + 1);
    } catch (const std::bad_alloc &) {
        joining_ = nullptr; // it is not admitted (it sees PX_E_CLOSED)
        return;
    }
    if (::epoll_ctl(poll_fd_.fd, EPOLL_CTL_ADD, joining_->ch->socket_fd(), &ev) != 0) {
        joining_ = nullptr; // out of memory for epoll: the same
        return;
    }
    joining_watched_ = true;
}

// The segments a joining subscriber's welcome and first frames use (the description's, the
// stream's wake page, and the last frame's: its pool, most likely) are registered with it
// ahead, one per piece (each
// passes an fd), so that neither the welcome nor the publish that sends its first frame passes
// one. True when this was a piece (a registration was made or tried).
bool Publisher::register_ahead_locked() {
    while (joining_registered_ < 3) {
        const int step = joining_registered_++;
        const Ref<Segment> &seg = step == 0   ? description_->text.segment_ref()
                                  : step == 1 ? wake_->page()
                                              : frames_segment_;
        if (!seg)
            continue;
        piece_kind_ = step == 0   ? "register the description ahead"
                      : step == 1 ? "register the wake page ahead"
                                  : "register the frames' segment ahead";
        try {
            if (!joining_->ch->register_ahead(seg))
                continue; // it had it: no system call
        } catch (const Error &) {
            // Gone, or out of fds: the welcome (or the frame) meets the same and deals with it.
        }
        return true;
    }
    return false;
}

void Publisher::refuse(Channel &ch) noexcept {
    try {
        ch.send(description_->text, 0, StreamTag{DataKind::stream_refused, 0});
    } catch (const Error &) {
        // It has gone already: nothing to tell.
    }
}

namespace {

// Whether SendSide sends a format record between two typed frames (it compares formats the same
// way: by pointer, then by value).
bool same_format(const Buffer &a, const Buffer &b) {
    if (a.shared_format().get() == b.shared_format().get())
        return true;
    return std::memcmp(a.format(), b.format(), sizeof(Format)) == 0;
}

} // namespace

// How many of the latest history frames a joining subscriber gets: at most its credit, and no
// more than its fresh ring holds with the welcome and the records that go between them (a
// description before a frame published under another one than the frame before; a format record
// before a typed frame whose format differs from the last typed one). A replay that overran the
// ring would stop half-way, and the frames left out would count as missed at the subscriber.
// Counted from the newest back, in one pass: only the oldest typed frame of the window pays its
// format record whatever comes before it, so extending the window changes that one's cost alone.
size_t Publisher::replay_count_locked() const {
    const size_t end = history_.size();
    const size_t oldest = end - std::min<size_t>(end, opts_.max_in_flight);
    // The window's records whatever precedes it: its frames, a description before each frame
    // published under another one than the frame before, a format record before each typed
    // frame but the oldest whose format differs from the typed one before it.
    size_t inner = 0;
    const Buffer *first_typed = nullptr; // the window's oldest typed frame
    size_t count = 0;
    for (size_t i = end; i-- > oldest;) {
        const Past &past = history_[i];
        const bool typed = past.frame.format() != nullptr;
        size_t with_it = inner + 1;
        if (i + 1 < end && history_[i + 1].description != past.description)
            ++with_it;
        if (typed && first_typed && !same_format(past.frame, *first_typed))
            ++with_it;
        // What depends on the window's start: the welcome and the wake page's record, a
        // description before the oldest frame unless it is the one in the welcome, the oldest
        // typed frame's format record.
        const size_t leading = 2 + (past.description != description_ ? 1 : 0) +
                               (typed || first_typed ? 1 : 0);
        if (with_it + leading > ipc::data_ring_entries)
            break; // an older start never needs fewer
        inner = with_it;
        if (typed)
            first_typed = &past.frame;
        ++count;
    }
    return count;
}

void Publisher::welcome_locked() {
    std::unique_ptr<Subscriber> sub = std::move(joining_);
    joining_watched_ = false;
    joining_registered_ = 0;
    Channel *ch = sub->ch.get();
    if (subs_.size() >= opts_.max_subscribers) {
        refuse(*ch);
        return retire_locked(std::move(sub));
    }
    ch->set_stream_wake(wake_); // before its first record
    const size_t replay = replay_count_locked();
    const size_t from = history_.size() - replay;
    const uint64_t first_seq = replay ? history_[from].seq : last_seq_ + 1;
    // The welcome carries the description current at join (what the subscriber reports before
    // its first frame); each history frame comes after the description it was published under.
    const Description *sent = description_.get();
    bool welcomed = false;
    size_t replayed = 0;
    try {
        // Gone meanwhile: found without an exception, as at a frame.
        if (!ch->send_unless_closed(description_->text, 0,
                                    StreamTag{DataKind::stream_welcome, first_seq}))
            return retire_locked(std::move(sub));
        // Part of the welcome (the subscriber takes both before px_subscriber_new returns):
        // from then on it sleeps on the stream's word, one wake for all subscribers.
        ch->send(Buffer(wake_->page(), 0, sizeof(ipc::StreamWakePage), Metadata{}), 0,
                 StreamTag{DataKind::stream_wake, first_seq});
        welcomed = true;
        for (size_t i = from; i < history_.size(); ++i, ++replayed) {
            const Past &past = history_[i];
            if (past.description.get() != sent) {
                ch->send(past.description->text, 0,
                         StreamTag{DataKind::stream_description, past.seq - 1});
                sent = past.description.get();
            }
            ch->send(past.frame, 0, StreamTag{DataKind::frame, past.seq});
        }
    } catch (const Error &e) {
        // Its ring full (never expected: the replay was counted to fit): it is admitted with
        // the history sent so far, and misses the rest. Anything else: it went away (or we are
        // out of fds) while joining, and never joined.
        if (e.status() != Status::would_block || !welcomed)
            return retire_locked(std::move(sub));
    }
    sub->description_version = sent->version; // the current one follows before the next frame
    sub->delivered = replayed;
    if (sub->description_version != description_version_)
        described_all_ = false;
    subs_.push_back(std::move(sub)); // room reserved by watch_joining_locked
    set_hot_locked();
    ++counters_.joined;
}

// Takes out the subscribers that hung up, a few at a time: how many.
int Publisher::reap_departed_locked() {
    // A subscriber never writes to its main socket after the handshake: readable means it hung
    // up (closed, or its process died), or it sent bytes it must not send. Either way it goes.
    // A few at a time: the others stay readable for the next round.
    epoll_event events[departures_per_round + 2];
    const int n = ::epoll_wait(poll_fd_.fd, events, departures_per_round + 2, 0);
    int removed = 0;
    for (int i = 0; i < n; ++i) {
        const uint64_t id = events[i].data.u64;
        if (id == listener_id || id == pieces_id)
            continue; // housekeeping's pieces look after them
        if (joining_ && joining_watched_ && id == joining_->id) {
            // Gone before its welcome: it never joined, so no counter moves.
            joining_watched_ = false;
            retire_locked(std::move(joining_));
            ++removed;
            continue;
        }
        auto it = std::find_if(subs_.begin(), subs_.end(),
                               [&](const auto &s) { return s->id == id; });
        if (it != subs_.end()) {
            remove_locked(it->get(), false);
            ++removed;
        }
    }
    return removed;
}

void Publisher::remove_locked(Subscriber *sub, bool slow) noexcept {
    ++counters_.departed;
    if (slow)
        ++counters_.disconnected_slow;
    auto it = std::find_if(subs_.begin(), subs_.end(),
                           [&](const auto &s) { return s.get() == sub; });
    if (it == subs_.end())
        return;
    retire_locked(std::move(*it));
    subs_.erase(it);
    set_hot_locked();
}

// A subscriber found gone by a publish leaves the table there, counted, and joins the departed
// with no system call of its own: it has gone, so there is nobody to shut its socket down for,
// and closing its channel (the next piece) takes the socket out of the epoll set (meanwhile a
// hang-up there is ignored: it is in no table). pieces_fd_ is signalled if it was not. Room was
// reserved when it was watched.
void Publisher::set_aside_locked(Subscriber *sub) noexcept {
    if (departed_.size() == departed_.capacity())
        return remove_locked(sub, false); // without room (never expected): as any departure
    ++counters_.departed;
    auto it = std::find_if(subs_.begin(), subs_.end(),
                           [&](const auto &s) { return s.get() == sub; });
    if (it == subs_.end())
        return;
    departed_.push_back(std::move(*it));
    subs_.erase(it);
    set_hot_locked();
    signal_pieces_locked();
}

// Out of the epoll set, and torn down by later pieces. Its channel is closed by a later piece;
// its socket goes down now, so that a subscriber still there (disconnected by the policy,
// refused) drains what it has, then PX_E_CLOSED, as at once as before. Until the close its
// loans still come back through its return path, and whatever it holds then is reclaimed.
// Room was reserved when it was watched: no allocation.
void Publisher::retire_locked(std::unique_ptr<Subscriber> sub) noexcept {
    ::epoll_ctl(poll_fd_.fd, EPOLL_CTL_DEL, sub->ch->socket_fd(), nullptr);
    if (departed_.size() < departed_.capacity()) {
        ::shutdown(sub->ch->socket_fd(), SHUT_RDWR);
        departed_.push_back(std::move(sub));
        signal_pieces_locked(); // a publisher waiting on fd() comes back to tear it down
    }
    // Without room (never expected): its channel closes here, at once.
}

// Makes pieces_fd_ readable, or not, to match whether a teardown or a welcome has pieces left:
// a system call only when that changes.
void Publisher::signal_pieces_locked() noexcept {
    const bool pieces = joining_ || !departed_.empty() || !unmaps_.empty() || !closes_.empty();
    if (pieces == pieces_signalled_)
        return;
    uint64_t value = 1;
    [[maybe_unused]] const ssize_t n = pieces ? ::write(pieces_fd_.fd, &value, sizeof value)
                                              : ::read(pieces_fd_.fd, &value, sizeof value);
    pieces_signalled_ = pieces;
}

// One piece of a departed subscriber's teardown: close one channel (its fds are kept open, into
// closes_, and its control blocks mapped, into unmaps_), then close each fd, and for each
// control block drop its pages' mappings, then unmap it (a channel's close took 25-40 us of CPU
// under load with its fds, each 30-50 us with its unmaps). False when there was none left.
bool Publisher::tear_down_piece_locked() noexcept {
    if (!closes_.empty()) {
        ::close(closes_.back());
        closes_.pop_back();
    } else if (!unmaps_.empty()) {
        if (!back_dropped_) {
            unmaps_.back()->drop_pages();
            back_dropped_ = true;
        } else {
            unmaps_.pop_back();
            back_dropped_ = false;
        }
    } else if (!departed_.empty()) {
        // Room for its two control blocks (and those of channels its close lets go of): one
        // that finds none is unmapped at once instead.
        // The same for its fds (a socket, a pidfd, a return socket: a few per channel).
        try {
            unmaps_.reserve(2 * (subs_.size() + departed_.size()) + 2);
            closes_.reserve(fds_per_channel_close);
        } catch (const std::bad_alloc &) {
        }
        ipc::DeferControlUnmaps defer(unmaps_);
        DeferCloses defer_closes(closes_);
        departed_.pop_back();
    } else {
        return false;
    }
    return true;
}

void Publisher::poll(int64_t timeout_ns) {
    if (!ipc::wait_readable(poll_fd_.fd, timeout_ns))
        fail(timeout_ns == 0 ? Status::would_block : Status::timeout,
             "no subscriber joined or left in time");
    std::lock_guard lock(mutex_);
    FlushWakes flush{*wake_};
    // No frame waits on poll: every piece there is now, not one per call.
    for (int n = 0; n < pieces_per_poll && ipc::wait_readable(poll_fd_.fd, 0); ++n)
        housekeeping_locked();
    // What is left waits on input (fd() says when), or for the next poll: not for a publish.
    more_pieces_ = false;
}

// ---------------------------------------------------------------------------------------------
// Publishing

// Sends the description in force to `sub` unless it has it: sent (or had it), no_room (its ring
// is full: it goes before the next frame that fits), gone (departed: found without an
// exception, as for frames). Other failures throw.
PX_HOT Publisher::Delivery Publisher::sync_description_locked(Subscriber &sub, int64_t timeout_ns) {
    if (sub.description_version == description_version_) // not description_'s line: cold
        return Delivery::sent;
    try {
        if (!sub.ch->send_unless_closed(description_->text, timeout_ns,
                                        StreamTag{DataKind::stream_description, last_seq_}))
            return Delivery::gone;
    } catch (const Error &e) {
        if (e.status() == Status::would_block || e.status() == Status::timeout)
            return Delivery::no_room;
        throw;
    }
    sub.description_version = description_->version;
    return Delivery::sent;
}

// The subscriber on `ch` holds or has queued its whole credit. The returns are read after the
// send (SendSide::send_unless_closed), not before it, unless the credit seems spent: reading
// them first put the subscriber's cache lines on the way of every frame (1.5 us of a spinning
// subscriber's 2.7 us latency).
PX_HOT bool Publisher::out_of_credit(ipc::Channel &ch) const {
    return ch.in_flight_at_most() >= max_in_flight_ && ch.in_flight() >= max_in_flight_;
}

// A frame's record to the subscriber on `ch` if it has credit; the caller has seen to its
// description. Counts nothing.
PX_HOT Publisher::Delivery Publisher::send_frame_locked(ipc::Channel &ch, const Buffer &frame,
                                                        uint64_t seq) {
    try {
        if (out_of_credit(ch))
            return Delivery::no_room;
        // A departed subscriber answers false, without the cost of an exception.
        // Its returns are read when its credit looks spent (out_of_credit), and by housekeeping.
        if (!ch.send_unless_closed(frame, 0, StreamTag{DataKind::frame, seq},
                                   ipc::Returns::by_caller))
            return Delivery::gone;
        return Delivery::sent;
    } catch (const Error &e) {
        if (e.status() == Status::would_block)
            return Delivery::no_room; // its ring is full of other records
        if (e.status() == Status::io)
            return Delivery::skipped; // ours (e.g. out of fds): not its fault, and not for ever
        return Delivery::gone;        // closed, died, broke the protocol
    }
}

PX_HOT Publisher::Delivery Publisher::deliver_locked(Subscriber &sub, const Buffer &frame,
                                                     uint64_t seq) {
    Delivery d;
    try {
        // No description for a subscriber without credit: it would not get the frame after it.
        d = out_of_credit(*sub.ch) ? Delivery::no_room : sync_description_locked(sub, 0);
    } catch (const Error &e) {
        d = e.status() == Status::io ? Delivery::skipped : Delivery::gone; // as for a frame
    }
    if (d == Delivery::sent && (d = send_frame_locked(*sub.ch, frame, seq)) == Delivery::sent)
        ++sub.delivered;
    return d;
}

// The frame to every subscriber with credit (publish): those without go to `no_room`, those
// found gone to `gone`.
PX_HOT void Publisher::deliver_all_locked(const Buffer &frame, uint64_t seq,
                                          std::vector<Subscriber *> &no_room,
                                          std::vector<Subscriber *> &gone) {
    const auto note = [&](Subscriber &sub, Delivery d) {
        if (d == Delivery::no_room)
            no_room.push_back(&sub);
        else if (d == Delivery::gone)
            gone.push_back(&sub);
        else if (d == Delivery::skipped)
            ++counters_.dropped;
    };
    const size_t n = subs_.size();
    if (described_all_) {
        // The first ones' records straight from hot_, before anything of theirs is read.
        const size_t hot = std::min(n, hot_subscribers);
        std::array<Delivery, hot_subscribers> first;
        for (size_t i = 0; i < hot; ++i)
            first[i] = send_frame_locked(*hot_[i], frame, seq);
        for (size_t i = hot; i < n; ++i)
            note(*subs_[i], deliver_locked(*subs_[i], frame, seq));
        for (size_t i = 0; i < hot; ++i) {
            if (first[i] == Delivery::sent)
                ++subs_[i]->delivered;
            note(*subs_[i], first[i]);
        }
        return;
    }
    bool described = !profile_;
    for (auto &sub : subs_) {
        note(*sub, profile_ ? deliver_profiled_locked(*sub, frame, seq)
                            : deliver_locked(*sub, frame, seq));
        described = described && sub->description_version == description_version_;
    }
    described_all_ = described;
}

// hot_ from subs_ (after every change of subs_).
void Publisher::set_hot_locked() noexcept {
    for (size_t i = 0; i < hot_subscribers; ++i)
        hot_[i] = i < subs_.size() ? subs_[i]->ch.get() : nullptr;
}

// deliver_locked, its CPU time added to profile_ for a subscriber's first frame after its
// welcome (the send that registers the frame's segment with its channel).
Publisher::Delivery Publisher::deliver_profiled_locked(Subscriber &sub, const Buffer &frame,
                                                       uint64_t seq) {
    if (sub.delivered != 0)
        return deliver_locked(sub, frame, seq);
    const int64_t start = PieceProfile::cpu_now_ns();
    const Delivery d = deliver_locked(sub, frame, seq);
    profile_->add("first frame to a subscriber (in publish)", PieceProfile::cpu_now_ns() - start);
    return d;
}

// Looks again at the waiting subscribers between yields for block_spin_ns (a subscriber that
// releases at once, on this CPU or the other, is met without a sleep and a wake-up), then
// sleeps until one of them gives a slot back or goes away (each rings its return socket
// meanwhile, as for a pool's loan). Those still without room when the block timeout passes
// are left in `waiting`. A sleep lasts at most block_poll_cap_ns: room in a ring full of other
// records (a description, a format) comes without a return.
void Publisher::block_for_room_locked(std::vector<Subscriber *> &waiting, const Buffer &frame,
                                      uint64_t seq) {
    const int64_t start = now_ns();
    const int64_t deadline = deadline_for(opts_.block_timeout_ns, start);
    // Once asked to ring (before the first sleep), a subscriber is told to stop before it
    // leaves `waiting`, or when this returns (however it does).
    bool asked = false;
    struct StopAsking {
        std::vector<Subscriber *> &waiting;
        const bool &asked;
        ~StopAsking() {
            if (asked)
                for (Subscriber *s : waiting)
                    s->ch->wait_for_returns(false);
        }
    } stop_asking{waiting, asked};
    std::vector<pollfd> fds;
    for (;;) {
        for (auto it = waiting.begin(); it != waiting.end();) {
            Subscriber *s = *it;
            if (asked)
                s->ch->collect_returns(); // its doorbells too
            const Delivery d = deliver_locked(*s, frame, seq);
            if (d == Delivery::no_room) {
                ++it;
                continue;
            }
            if (asked)
                s->ch->wait_for_returns(false);
            it = waiting.erase(it);
            if (d == Delivery::gone)
                remove_locked(s, false);
            else if (d == Delivery::skipped)
                ++counters_.dropped;
        }
        wake_->flush(); // those that had room this round, if asleep, wake now
        if (waiting.empty())
            return;
        const int64_t now = now_ns();
        const int64_t left = timeout_left(deadline, now);
        if (left == 0)
            return;
        if (now - start < block_spin_ns) {
            std::this_thread::yield();
            continue;
        }
        if (!asked) {
            // Asked, then looked at again before the first sleep: a slot given back in
            // between is not slept through.
            fds.reserve(2 * waiting.size()); // a return socket and a pidfd each
            for (Subscriber *s : waiting)
                s->ch->wait_for_returns(true);
            asked = true;
            continue;
        }
        fds.clear();
        for (Subscriber *s : waiting)
            s->ch->add_return_wait_fds(fds);
        const timespec ts =
            timespec_from_ns(left < 0 ? block_poll_cap_ns : std::min(left, block_poll_cap_ns));
        if (::ppoll(fds.data(), fds.size(), &ts, nullptr) < 0 && errno != EINTR)
            std::this_thread::sleep_for(std::chrono::microseconds(50)); // ENOMEM: look soon
    }
}

PX_HOT void Publisher::publish(const Buffer &buf) {
    // Until the record is out, every cache line touched here delays it (a publisher that
    // slept since its last frame finds them cold): a pool slot is sent as the caller's buffer,
    // not a copy, and the memory type is looked at once per segment.
    std::optional<Buffer> own; // a frame that is not a pool slot, counted (see counted())
    const Buffer &frame = buf.lease() ? buf : own.emplace(counted(buf));
    std::lock_guard lock(mutex_);
    // Every subscriber that slept gets the frame in its ring first, then one wake for all.
    FlushWakes flush{*wake_};
    // Up to the last record, only what the records need, from the lines next to mutex_ (see
    // publisher.hpp); the bookkeeping follows them.
    if (frame.segment_ref().get() != frames_segment_.get()) {
        const MemoryType type = frame.segment().memory_type();
        if (type == MemoryType::heap || type == MemoryType::mapped_file)
            fail(Status::unsupported,
                 "only shared-memory and huge-page buffers can be published (a subscriber maps "
                 "them); allocate frames from a pool over px_segment_shm_new");
    }
    if (last_seq_ == UINT64_MAX) // only skip() gets this far: a frame numbered 0 would be refused
        fail(Status::invalid, "the stream's numbering is used up (skip() took it to the end)");
    const uint64_t seq = ++last_seq_;
    if (frame.segment_ref().get() != frames_segment_.get())
        frames_segment_ = frame.segment_ref();
    std::vector<Subscriber *> no_room, gone;
    deliver_all_locked(frame, seq, no_room, gone);
    // Everyone with room has the frame: one wake for those asleep, before anything that may
    // take longer (the bookkeeping, a BLOCK wait, a housekeeping piece).
    wake_->flush();
    ++counters_.published;
    const uint64_t departed_before = counters_.departed; // set_aside_locked and the policies
    if (opts_.history) { // before the policies: a BLOCK timeout throws
        history_.push_back(Past{seq, frame, description_});
        if (history_.size() > opts_.history)
            history_.pop_front();
    }
    for (Subscriber *s : gone)
        set_aside_locked(s);
    if (!no_room.empty()) {
        // A subscriber without credit on our CPU may be runnable and yet never run while we
        // publish (until the scheduler's tick, ~8 frames per 4 ms): let it. Once a yield has
        // not moved it on (it is busy or asleep in its own code: a subscriber taking 100 ms per
        // frame, to which a yield at every publish cost the others half their frame rate),
        // the next waits twice as many publishes, up to max_yield_backoff, until it moves.
        bool yield = false;
        for (Subscriber *s : no_room) {
            if (!s->ch->receiver_shares_cpu())
                continue;
            const uint64_t position = s->ch->receiver_position();
            if (position != s->position_at_yield) {
                s->yield_backoff = s->yields_skipped = 0; // it ran since: yields help it
            } else if (s->yields_skipped < s->yield_backoff) {
                ++s->yields_skipped;
                continue;
            } else {
                s->yields_skipped = 0;
                s->yield_backoff = std::min(2 * s->yield_backoff + 1, max_yield_backoff);
            }
            s->position_at_yield = position;
            yield = true;
        }
        if (yield)
            ::sched_yield();
        try {
            apply_slow_policy_locked(no_room, frame, seq);
        } catch (const Error &) {
            // A BLOCK timeout: joins and departures go on all the same.
            after_frame_locked(counters_.departed != departed_before);
            throw;
        }
    }
    after_frame_locked(counters_.departed != departed_before);
}

void Publisher::skip(uint64_t count) {
    std::lock_guard lock(mutex_);
    if (count > UINT64_MAX - last_seq_)
        fail(Status::invalid, "count " + std::to_string(count) +
                                  " overflows the stream's numbering (at frame " +
                                  std::to_string(last_seq_) + " now, of at most 2^64 - 1)");
    // Nothing else: each subscriber's next frame carries the larger number, and the gap is its
    // missed. Nothing was published and nobody lacked room, so no counter of ours moves.
    last_seq_ += count;
}

// `took_out`: this publish found a departed subscriber and set it aside (its delivery to the
// others took the longer for it): housekeeping waits for the next publish.
PX_HOT void Publisher::after_frame_locked(bool took_out) {
    // After the frame went out, not before: a subscriber welcomed here starts at the next
    // frame, so its first frame's segment registration (an fd passed) falls on the next
    // publish instead of adding to this one.
    // The stats page follows every frame; the subscribers' returns are read only by
    // housekeeping (once a millisecond while publishing) and when a credit looks spent
    // (deliver_locked): reading them after every frame took as long as the send itself
    // (2-3 cache lines the subscriber wrote; a channel's send does it, which is what made a
    // stream's publish slower than a plain channel's send).
    if (took_out) {
        publish_stats_locked(Loans::as_last_read);
    } else if (now_ns() - last_housekeeping_ns_ >= housekeeping_interval_ns) {
        housekeeping_locked();
    } else if (more_pieces_) {
        // The last piece found work: the next follows at this publish, while the kernel's
        // caches still hold what the last one touched (a piece a millisecond after the one
        // before costs 2-5 times the CPU of one that follows it at once), and a join takes as
        // many frames, not as many milliseconds.
        more_pieces_ = timed_piece_locked();
        signal_pieces_locked();
        publish_stats_locked(Loans::as_last_read);
    } else {
        publish_stats_locked(Loans::as_last_read);
    }
}

void Publisher::apply_slow_policy_locked(std::vector<Subscriber *> &no_room, const Buffer &frame,
                                         uint64_t seq) {
    switch (opts_.slow_policy) {
    case SlowPolicy::drop:
        count_dropped_locked(no_room);
        break;
    case SlowPolicy::disconnect:
        for (Subscriber *s : no_room)
            remove_locked(s, true);
        break;
    case SlowPolicy::block:
        block_for_room_locked(no_room, frame, seq);
        if (!no_room.empty()) {
            count_dropped_locked(no_room);
            publish_stats_locked(Loans::read_returns);
            fail(Status::timeout, std::to_string(no_room.size()) + " of " +
                                      std::to_string(subs_.size()) +
                                      " subscribers had no room within " +
                                      std::to_string(opts_.block_timeout_ns) +
                                      " ns (frame " + std::to_string(seq) +
                                      " went to the others)");
        }
        break;
    }
}

void Publisher::count_dropped_locked(const std::vector<Subscriber *> &missed) noexcept {
    counters_.dropped += missed.size();
    for (Subscriber *s : missed)
        ++s->dropped;
}

void Publisher::set_description(const std::string &text) {
    if (text.size() > max_description_size)
        fail(Status::invalid, "a description of " + std::to_string(text.size()) +
                                  " bytes is longer than " +
                                  std::to_string(max_description_size));
    Buffer buf = description_buffer(text);
    std::lock_guard lock(mutex_);
    FlushWakes flush{*wake_};
    description_ =
        std::make_shared<Description>(Description{description_->version + 1, std::move(buf)});
    description_version_ = description_->version;
    described_all_ = false;
    // Sent now where there is room; to the others before their next frame.
    std::vector<Subscriber *> gone;
    for (auto &sub : subs_) {
        try {
            if (sync_description_locked(*sub, 0) == Delivery::gone)
                gone.push_back(sub.get());
        } catch (const Error &e) {
            // Out of fds registering the text (ours): it goes before its next frame, as in
            // deliver_locked. Anything else: it broke the protocol.
            if (e.status() != Status::io)
                gone.push_back(sub.get());
        }
    }
    for (Subscriber *s : gone)
        remove_locked(s, false);
}

// ---------------------------------------------------------------------------------------------
// Stats

PX_HOT void Publisher::publish_stats_locked(Loans loans) noexcept {
    counters_.subscribers = subs_.size();
    wake_->set_subscribers(subs_.size());
    uint64_t lent = 0;
    rows_.clear(); // keeps its capacity: no allocation once the table has grown
    for (auto &sub : subs_) {
        const uint64_t in_flight = loans == Loans::read_returns ? sub->ch->in_flight()
                                                                : sub->ch->in_flight_at_most();
        lent += in_flight;
        rows_.push_back(SubscriberRow{sub->pid, in_flight, sub->delivered, sub->dropped});
    }
    counters_.slots_lent = lent;
    stats_page_.store(counters_, rows_.data(), rows_.size());
}

PublisherStats Publisher::stats() {
    std::lock_guard lock(mutex_);
    publish_stats_locked(Loans::read_returns);
    return counters_;
}

} // namespace px::stream
