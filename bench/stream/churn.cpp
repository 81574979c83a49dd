// SPDX-License-Identifier: Apache-2.0 OR MIT
// Join/leave stall (issue 13: "joining or leaving never stalls publish for more than 50 us").
//
// One case, in fresh processes: a libparallax publisher (default options, 4 KiB frames)
// publishes one frame every 50 us for `seconds` to one stable subscriber process, while
// `churners` other subscriber processes join and leave over and over (each: subscribe, receive
// a few frames, hold some, leave, again). Every publish call is timed and sorted into one of:
//   - "joined/left": the publisher's joined or departed counter moved during the call (the
//     call finished a join with its welcome, or took a departed subscriber down);
//   - "pending": px_publisher_fd was readable just before the call (a connection, a handshake
//     or a hang-up waited) and no counter moved: the earlier pieces of a join are among these,
//     and so are calls that left the work to a later call;
//   - "none": nothing waited.
// Each call is timed twice: on the wall clock, and in CPU time of the publishing thread
// (CLOCK_THREAD_CPUTIME_ID), which leaves out the time the scheduler gave the CPU to another
// process: on a loaded 2-core machine that noise is milliseconds, and the work is what a join
// or a departure adds.
// Between frames the publisher either sleeps (it never polls: joins and departures are done in
// pieces inside publish, one per call at most) or waits on px_publisher_fd and calls
// px_publisher_poll when it is readable (API.md's way for a publisher with an event loop: the
// pieces are done there, and a publish meets only what it finds itself, such as a subscriber
// gone). Churners rejoin as fast as they are admitted, so the two see different numbers of joins.
// With churners = 0 the same loop is the control: what a publish costs on this machine when
// nobody joins (its maximum is the scheduler's noise, not ours).
// Where the time of a join or a departure goes: run with PX_STREAM_PIECES=<file> (or "-" for
// stderr), and each publisher appends, as it goes, the CPU time of each kind of housekeeping
// piece (core/stream/publisher.cpp); one table per round, control rounds included.
// What else ran on the CPU meanwhile: run with PX_CHURN_WINDOWS=<file>, and a never-polling
// round appends, at its end, one line per publish call that admitted or removed a subscriber
// or took over 40 us of CPU: "pid start_ns end_ns cpu_ns kind cpu" (CLOCK_MONOTONIC; kind 1
// admitted/removed, 2 a join/leave waited, 0 nothing waited), to be matched against an ftrace
// record taken with trace_clock "mono" (bench/stream/trace_windows.py does).
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
#include <vector>

#include "../ipc/ipc_bench.hpp"
#include "parallax/parallax.h"
#include "stream_bench.hpp"

using pxipc::die;
using pxipc::now_ns;

namespace pxstream {
namespace {

constexpr size_t frame_size = 4096;
constexpr int64_t churn_pace_ns = 50'000;
constexpr int64_t patience_ns = 10'000'000'000;
constexpr int frames_per_visit = 10; // a churner's stay: ~0.5 ms of frames
constexpr int frames_held = 4;       // held across its leave, as a consumer that keeps some
constexpr int stats_fd_in_subscriber = 100;

volatile sig_atomic_t g_churn_stop = 0;
void on_churn_term(int) {
    g_churn_stop = 1;
}

void check(px_status_t st, const char *what) {
    if (st != PX_OK)
        die(std::string(what) + ": " + px_status_string(st) + " (" + px_last_error_message() +
            ")");
}

// A churner: join, take a few frames, keep some, leave; until SIGTERM.
int churner(const std::string &name) {
    uint64_t visits = 0;
    while (!g_churn_stop) {
        px_subscriber_t *sub = nullptr;
        const px_status_t st = px_subscriber_new(name.c_str(), patience_ns, &sub);
        if (st == PX_E_CLOSED || g_churn_stop)
            break; // the publisher is finishing
        check(st, "px_subscriber_new (churner)");
        std::vector<px_buffer_t *> held;
        for (int i = 0; i < frames_per_visit && !g_churn_stop; ++i) {
            px_buffer_t *buf = nullptr;
            const px_status_t rc = px_subscriber_recv(sub, 1'000'000'000, &buf);
            if (rc == PX_E_CLOSED)
                break;
            if (rc != PX_OK)
                continue; // a description record, or a slow moment: take what comes
            if (i >= frames_per_visit - frames_held)
                held.push_back(buf);
            else
                px_buffer_release(buf);
        }
        px_subscriber_release(sub); // leaves with frames still held: they return after
        for (px_buffer_t *b : held)
            px_buffer_release(b);
        ++visits;
    }
    write_all(stats_fd_in_subscriber, &visits, sizeof visits);
    return 0;
}

// The stable subscriber: every frame until the stop frame; writes received and missed.
int stable(const std::string &name) {
    px_subscriber_t *sub = nullptr;
    check(px_subscriber_new(name.c_str(), patience_ns, &sub), "px_subscriber_new (stable)");
    write_all(stats_fd_in_subscriber, "R", 1);
    uint64_t received = 0;
    const int64_t give_up = now_ns() + 120'000'000'000;
    for (;;) {
        px_buffer_t *buf = nullptr;
        const px_status_t rc = px_subscriber_recv(sub, patience_ns, &buf);
        if (rc == PX_E_CLOSED)
            break;
        if (now_ns() > give_up)
            die("the stable subscriber saw no stop frame within 120 s");
        if (rc != PX_OK)
            continue;
        const uint64_t seq = pxipc::load_seq(px_buffer_ptr(buf));
        px_buffer_release(buf);
        if (seq == pxipc::seq_stop)
            break;
        ++received;
    }
    px_subscriber_stats_t st{};
    check(px_subscriber_get_stats(sub, &st), "px_subscriber_get_stats");
    px_subscriber_release(sub);
    const uint64_t out[2] = {received, st.missed};
    write_all(stats_fd_in_subscriber, out, sizeof out);
    return 0;
}

// ---- the publisher's side ---------------------------------------------------------------------

struct Kid {
    pid_t pid = -1;
    int fd = -1;
    std::string data;
};

Kid spawn_sub(const std::string &name, const char *kind) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        die(std::string("pipe: ") + std::strerror(errno));
    Kid k;
    k.pid = spawn_self({"--role", "churn-sub", "--name", name, "--kind", kind}, p[1],
                       stats_fd_in_subscriber, false);
    close(p[1]);
    k.fd = p[0];
    return k;
}

// Appends what `k` wrote, waiting up to timeout_ms; false once it closed its end.
bool read_some(Kid &k, int timeout_ms) {
    pollfd p{k.fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0)
        return true;
    char buf[256];
    const ssize_t n = read(k.fd, buf, sizeof buf);
    if (n <= 0)
        return false;
    k.data.append(buf, static_cast<size_t>(n));
    return true;
}

bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
}

int64_t cpu_now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct Took {
    int64_t wall = 0, cpu = 0;
};

struct Timed {
    std::vector<int64_t> joined_left, pending, none;         // wall clock
    std::vector<int64_t> cpu_joined_left, cpu_pending, cpu_none; // thread CPU time
    std::string windows; // PX_CHURN_WINDOWS's lines, written at the end of the round
};

class Stream {
  public:
    // The stable subscriber and every churner may hold max_in_flight (8) frames each.
    explicit Stream(const std::string &name) : pool_(frame_pool(frame_size, 128)) {
        check(px_publisher_new(name.c_str(), nullptr, &pub_), "px_publisher_new");
    }
    ~Stream() {
        px_publisher_release(pub_);
        px_pool_release(pool_);
    }
    px_publisher_t *pub() { return pub_; }

    // Publishes frame `seq`; the ns px_publisher_publish took.
    Took publish(uint64_t seq) {
        px_buffer_t *buf = stamped_frame(pool_, frame_size, seq);
        const int64_t c0 = cpu_now_ns(), t0 = now_ns();
        const px_status_t st = px_publisher_publish(pub_, buf);
        const int64_t t1 = now_ns(), c1 = cpu_now_ns();
        px_buffer_release(buf);
        check(st, "px_publisher_publish");
        return Took{t1 - t0, c1 - c0};
    }
    uint64_t joins_and_leaves() {
        px_publisher_stats_t s{};
        check(px_publisher_get_stats(pub_, &s), "px_publisher_get_stats");
        return s.joined + s.departed;
    }
    px_publisher_stats_t stats() {
        px_publisher_stats_t s{};
        check(px_publisher_get_stats(pub_, &s), "px_publisher_get_stats");
        return s;
    }

  private:
    px_pool_t *pool_ = nullptr;
    px_publisher_t *pub_ = nullptr;
};

// Until `t`, px_publisher_poll whenever px_publisher_fd is readable: what a publisher that
// waits for its next frame in an event loop does (API.md).
void poll_until(px_publisher_t *pub, int64_t t) {
    for (;;) {
        const int64_t left = t - now_ns();
        if (left <= 0)
            return;
        pollfd p{px_publisher_fd(pub), POLLIN, 0};
        const timespec ts{0, static_cast<long>(left)};
        if (ppoll(&p, 1, &ts, nullptr) > 0) {
            const px_status_t st = px_publisher_poll(pub, 0);
            if (st != PX_E_WOULD_BLOCK)
                check(st, "px_publisher_poll");
        }
    }
}

// One frame every churn_pace_ns until `end`, each call timed and sorted (see the top); between
// frames the publisher sleeps, or polls its fd (`polls`).
void paced(Stream &s, int64_t end, bool polls, Timed &t) {
    const bool windows = !polls && std::getenv("PX_CHURN_WINDOWS");
    int64_t next = now_ns();
    for (uint64_t seq = 0; next < end; ++seq) {
        next += churn_pace_ns;
        const bool pending = readable(px_publisher_fd(s.pub()));
        const uint64_t before = s.joins_and_leaves();
        const int64_t start = now_ns();
        const Took took = s.publish(seq);
        const uint64_t after = s.joins_and_leaves();
        if (windows && (after != before || took.cpu > 40'000)) {
            char line[128];
            std::snprintf(line, sizeof line, "%d %lld %lld %lld %d %d\n", getpid(),
                          static_cast<long long>(start),
                          static_cast<long long>(start + took.wall + 2'000),
                          static_cast<long long>(took.cpu), after != before ? 1 : pending ? 2 : 0,
                          sched_getcpu());
            t.windows += line;
        }
        (after != before ? t.joined_left : pending ? t.pending : t.none).push_back(took.wall);
        (after != before ? t.cpu_joined_left : pending ? t.cpu_pending : t.cpu_none)
            .push_back(took.cpu);
        if (polls)
            poll_until(s.pub(), next);
        else
            sleep_until(next);
    }
}

void add_quantiles(std::string &line, const char *key, std::vector<int64_t> &v) {
    char b[200];
    std::sort(v.begin(), v.end());
    const size_t over = static_cast<size_t>(
        v.end() - std::upper_bound(v.begin(), v.end(), int64_t{50'000}));
    auto at = [&](double q) {
        return v.empty() ? 0.0 : static_cast<double>(v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))]);
    };
    std::snprintf(b, sizeof b, " %s_n=%zu %s_p50=%.0f %s_p99=%.0f %s_max=%.0f %s_over=%zu", key,
                  v.size(), key, at(0.5), key, at(0.99), key,
                  v.empty() ? 0.0 : static_cast<double>(v.back()), key, over);
    line += b;
}

} // namespace

// The decoy: a publisher of its own stream, paced and polling as the measured one, that the
// churners join and leave instead, so that the machine is as busy as in a churn round while
// the measured publisher has no join or departure to look after. Until SIGTERM.
int decoy(const std::string &name) {
    prctl(PR_SET_TIMERSLACK, 1UL);
    Stream s(name);
    write_all(stats_fd_in_subscriber, "R", 1);
    int64_t next = now_ns();
    for (uint64_t seq = 0; !g_churn_stop; ++seq) {
        next += churn_pace_ns;
        s.publish(seq);
        poll_until(s.pub(), next);
    }
    return 0;
}

int churn_subscriber_main(const std::string &name, const std::string &kind) {
    std::signal(SIGTERM, on_churn_term);
    if (kind == "decoy")
        return decoy(name);
    return kind == "stable" ? stable(name) : churner(name);
}

int churn_publisher_main(int churners, int stables, double seconds, bool polls, bool decoy) {
    pxipc::g_is_leader = true;
    prctl(PR_SET_TIMERSLACK, 1UL); // a 50 us pace, not the default 50 us of slack on top
    const std::string name = "pxbench-churn-" + std::to_string(getpid());
    Stream s(name);
    std::vector<Kid> stable_kids;
    for (int i = 0; i < std::max(stables, 1); ++i)
        stable_kids.push_back(spawn_sub(name, "stable"));
    Kid &stable_kid = stable_kids[0]; // the one whose figures are reported
    const int64_t give_up = now_ns() + 20'000'000'000;
    for (Kid &k : stable_kids)
        while (k.data.empty()) {
            if (now_ns() > give_up || !read_some(k, 0))
                die("a stable subscriber did not subscribe within 20 s");
            px_publisher_poll(s.pub(), 1'000'000);
        }
    // Warm-up: the pool's pages and the stable subscriber's mappings, not recorded.
    for (uint64_t seq = 0; seq < 200; ++seq)
        s.publish(warm_bit | seq);

    std::vector<Kid> kids;
    const std::string churn_name = decoy ? name + "-decoy" : name;
    if (decoy) {
        kids.push_back(spawn_sub(churn_name, "decoy"));
        while (kids.back().data.empty()) {
            if (now_ns() > give_up || !read_some(kids.back(), 100))
                die("the decoy publisher did not start within 20 s");
        }
    }
    for (int i = 0; i < churners; ++i)
        kids.push_back(spawn_sub(churn_name, "churn"));
    Timed t;
    const px_publisher_stats_t start = s.stats();
    paced(s, now_ns() + static_cast<int64_t>(seconds * 1e9), polls, t);
    const px_publisher_stats_t end = s.stats();
    if (!t.windows.empty()) {
        if (FILE *f = std::fopen(std::getenv("PX_CHURN_WINDOWS"), "a")) {
            std::fputs(t.windows.c_str(), f);
            std::fclose(f);
        }
    }

    // Churners stop at SIGTERM; one mid-join is admitted by the publishes that follow (the
    // decoy's, by the decoy, which stops after them).
    for (size_t i = decoy ? 1 : 0; i < kids.size(); ++i)
        kill(kids[i].pid, SIGTERM);
    std::vector<Kid *> all;
    for (size_t i = decoy ? 1 : 0; i < kids.size(); ++i)
        all.push_back(&kids[i]);
    if (decoy)
        all.push_back(&kids[0]);
    for (Kid &k : stable_kids)
        all.push_back(&k);
    const int64_t finish_by = now_ns() + 20'000'000'000;
    for (Kid *k : all) {
        if (decoy && k == &kids[0])
            kill(k->pid, SIGTERM); // the churners have finished
        while (read_some(*k, 0)) {
            if (now_ns() > finish_by)
                die("a subscriber did not finish within 20 s of the end");
            s.publish(pxipc::seq_stop); // the stable one stops at this frame
            usleep(200);
        }
        close(k->fd);
        if (!pxipc::reap(k->pid))
            die("a subscriber failed (see its stderr)");
    }
    uint64_t received_missed[2] = {0, 0};
    if (stable_kid.data.size() != 1 + sizeof received_missed)
        die("the stable subscriber wrote no results");
    std::memcpy(received_missed, stable_kid.data.data() + 1, sizeof received_missed);

    std::string line = "ok";
    add_quantiles(line, "jl", t.joined_left);
    add_quantiles(line, "pend", t.pending);
    add_quantiles(line, "none", t.none);
    std::vector<int64_t> every = t.joined_left;
    every.insert(every.end(), t.pending.begin(), t.pending.end());
    every.insert(every.end(), t.none.begin(), t.none.end());
    add_quantiles(line, "all", every);
    add_quantiles(line, "cjl", t.cpu_joined_left);
    add_quantiles(line, "cpend", t.cpu_pending);
    add_quantiles(line, "cnone", t.cpu_none);
    std::vector<int64_t> cpu_every = t.cpu_joined_left;
    cpu_every.insert(cpu_every.end(), t.cpu_pending.begin(), t.cpu_pending.end());
    cpu_every.insert(cpu_every.end(), t.cpu_none.begin(), t.cpu_none.end());
    add_quantiles(line, "call", cpu_every);
    char b[200];
    std::snprintf(b, sizeof b, " joins=%llu leaves=%llu stable_received=%llu stable_missed=%llu\n",
                  static_cast<unsigned long long>(end.joined - start.joined),
                  static_cast<unsigned long long>(end.departed - start.departed),
                  static_cast<unsigned long long>(received_missed[0]),
                  static_cast<unsigned long long>(received_missed[1]));
    line += b;
    write_all(3, line.data(), line.size());
    return 0;
}

} // namespace pxstream
