// SPDX-License-Identifier: Apache-2.0 OR MIT
// px_bench_stream: fan-out of libparallax streams against iceoryx publish-subscribe (issue 13).
//
//   px_bench_stream [--quick] [--reps N] [--seconds S] [--lag-seconds S] [--churn-seconds S]
//                   [--churn-only] [--lag-only] [--spin-only] [--pairs-only] [--fan-out-only]
//                   [--size 4k|8m] [--mode spin|default] [--subs N]
//
// Fan-out: one publisher, 1/2/4/8 subscriber processes, 4 KiB and 8 MiB frames, in two phases
// with the same processes. Paced (one frame every 500 us, so that every subscriber is waiting
// when a frame comes): the publish call's median cost and the one-way latency (subscriber's
// CLOCK_MONOTONIC at arrival minus the publisher's stamp), as the median over all subscribers'
// frames and the median of the slowest subscriber. Free-running (the publisher publishes as
// fast as it can; a subscriber with no room misses frames, the default of both libraries):
// frames per second received by the slowest subscriber. Under a free-running publisher a
// latency would measure the queue (8 frames deep), not the transport, hence the two phases. Lag: 4
// subscribers, one of them sleeping 100 ms per frame; the other three's frame rate with and without
// it. Repetitions are interleaved (every case of a repetition runs before the next repetition
// starts), each row is the median over them, and libparallax and iceoryx run from the same binary
// in the same run. Processes are not pinned. Join/leave stall (libparallax only, churn.cpp): the
// publish calls of a publisher paced every 50 us while subscriber processes join and leave.
// One subscriber: a stream against one plain channel, the receiver in spin and default mode.
#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <memory>
#include <poll.h>
#include <sched.h>
#include <sstream>
#include <string>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <vector>

#include "../ipc/ipc_bench.hpp"
#include "stream_bench.hpp"

using pxipc::die;
using pxipc::now_ns;

namespace pxstream {

pid_t spawn_self(const std::vector<std::string> &args, int keep, int at, bool new_group) {
    std::vector<std::string> all = {"/proc/self/exe"};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char *> argv;
    for (auto &a : all)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = fork();
    if (pid < 0)
        die(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        if (new_group)
            setpgid(0, 0); // a stuck case is killed as a group
        if (at != 3)
            close(3);
        if (keep >= 0 && dup2(keep, at) < 0)
            _exit(126);
        execv("/proc/self/exe", argv.data());
        _exit(127);
    }
    return pid;
}

void sleep_until(int64_t t) {
    const timespec at{static_cast<time_t>(t / 1'000'000'000), t % 1'000'000'000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr) == EINTR) {
    }
}

void write_all(int fd, const void *p, size_t n) {
    const char *b = static_cast<const char *>(p);
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die(std::string("write results: ") + std::strerror(errno));
        b += w;
        n -= static_cast<size_t>(w);
    }
}

namespace {

constexpr size_t KiB = 1024, MiB = 1024 * KiB;
constexpr int result_fd_in_subscriber = 100;
constexpr size_t max_samples = size_t{1} << 20; // per subscriber (8 MiB of a pipe at most)
constexpr int lag_ms = 100;
constexpr int64_t pace_ns = 500'000; // the latency phase's interval between frames

// ---- one case, as the publisher process sees it -------------------------------------------------
struct Spec {
    std::string transport; // parallax | iceoryx
    size_t payload = 4 * KiB;
    int subscribers = 1;
    bool lag = false; // subscriber 0 sleeps lag_ms per frame and is left out of the figures
    double seconds = 0.1;
    int churners = -1; // >= 0: a join/leave stall case (churn.cpp) with that many churners
    bool churn_polls = false; // that case's publisher polls its fd between frames
    bool churn_decoy = false; // its churners join and leave another publisher's stream
    int churn_stables = 1;    // its subscribers that stay
    size_t slots = frames_out; // the libparallax publisher's pool
    int64_t spin = default_spin; // the subscribers' recv wait (libparallax and channel)
    bool interleaved = false; // stream and channel frame by frame (interleaved.cpp)
};

std::vector<std::string> spec_args(const Spec &s) {
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.6f", s.seconds);
    return {"--transport",   s.transport,
            "--payload",     std::to_string(s.payload),
            "--subscribers", std::to_string(s.subscribers),
            "--lag",         s.lag ? "1" : "0",
            "--seconds",     seconds,
            "--churners",    std::to_string(s.churners),
            "--churn-polls", s.churn_polls ? "1" : "0",
            "--churn-decoy", s.churn_decoy ? "1" : "0",
            "--churn-stables", std::to_string(s.churn_stables),
            "--slots",       std::to_string(s.slots),
            "--spin",        std::to_string(s.spin),
            "--interleaved", s.interleaved ? "1" : "0"};
}

Spec parse_spec(const std::vector<std::string> &args, size_t i) {
    Spec s;
    for (; i + 1 < args.size(); i += 2) {
        const std::string &k = args[i], &v = args[i + 1];
        if (k == "--transport")
            s.transport = v;
        else if (k == "--payload")
            s.payload = std::max<size_t>(std::strtoull(v.c_str(), nullptr, 10), 16);
        else if (k == "--subscribers")
            s.subscribers = std::atoi(v.c_str());
        else if (k == "--lag")
            s.lag = v == "1";
        else if (k == "--seconds")
            s.seconds = std::atof(v.c_str());
        else if (k == "--churners")
            s.churners = std::atoi(v.c_str());
        else if (k == "--churn-polls")
            s.churn_polls = v == "1";
        else if (k == "--churn-decoy")
            s.churn_decoy = v == "1";
        else if (k == "--churn-stables")
            s.churn_stables = std::atoi(v.c_str());
        else if (k == "--slots")
            s.slots = std::max<size_t>(std::strtoull(v.c_str(), nullptr, 10), 1);
        else if (k == "--spin")
            s.spin = std::strtoll(v.c_str(), nullptr, 10);
        else if (k == "--interleaved")
            s.interleaved = v == "1";
    }
    return s;
}

// ---- subscriber role
// -----------------------------------------------------------------------------
volatile sig_atomic_t g_stop = 0; // the lagging subscriber is told to stop with SIGTERM

void on_term(int) {
    g_stop = 1;
}

// Sleeps `ms` in 1 ms steps, returning early once told to stop.
void lag_sleep(int ms) {
    for (int i = 0; i < ms && !g_stop; ++i)
        usleep(1000);
}

// Receives until the stop frame (or the publisher is gone, or SIGTERM), then writes to fd 100:
// frames received in the free-running phase, and the latencies of the paced phase's frames.
int subscriber_main(const std::string &transport, const std::string &name, bool lag,
                    int64_t spin) {
    std::signal(SIGTERM, on_term);
    std::unique_ptr<Subscriber> sub = transport == "parallax" ? parallax_subscriber(name, spin)
                                      : transport == "channel" ? channel_subscriber(name, spin)
                                                               : iceoryx_subscriber(name);
    write_all(result_fd_in_subscriber, "R", 1); // subscribed (admitted, for libparallax)
    std::vector<int64_t> lat;
    lat.reserve(1 << 16);
    uint64_t received = 0, seq = 0;
    int64_t pts = 0, now = 0;
    while (!g_stop && sub->next(seq, pts, now) && seq != pxipc::seq_stop) {
        if (lag)
            ++received; // the laggard's figure is how many frames it got at all
        else if (seq & paced_bit && lat.size() < max_samples)
            lat.push_back(now - pts);
        else if (!(seq & (warm_bit | paced_bit)))
            ++received;
        if (lag)
            lag_sleep(lag_ms);
    }
    const uint64_t n = lat.size();
    write_all(result_fd_in_subscriber, &received, sizeof received);
    write_all(result_fd_in_subscriber, &n, sizeof n);
    write_all(result_fd_in_subscriber, lat.data(), n * sizeof(int64_t));
    return 0;
}

// ---- publisher role
// --------------------------------------------------------------------------------
struct Child {
    pid_t pid = -1;
    int fd = -1; // its results pipe
    bool ready = false, done = false;
    std::string data; // what it wrote after "R"
};

// Reads what is there from every child still writing (waiting up to timeout_ms for some).
void gather(std::vector<Child> &kids, int timeout_ms) {
    std::vector<pollfd> fds;
    for (auto &k : kids)
        if (!k.done)
            fds.push_back({k.fd, POLLIN, 0});
    if (fds.empty() || poll(fds.data(), fds.size(), timeout_ms) <= 0)
        return;
    char buf[65536];
    for (auto &k : kids) {
        if (k.done)
            continue;
        pollfd p{k.fd, POLLIN, 0};
        if (poll(&p, 1, 0) <= 0)
            continue;
        ssize_t n = read(k.fd, buf, sizeof buf);
        if (n <= 0) {
            k.done = true;
            continue;
        }
        size_t off = 0;
        if (!k.ready) {
            k.ready = buf[0] == 'R';
            off = 1;
        }
        k.data.append(buf + off, static_cast<size_t>(n) - off);
    }
}

std::vector<Child> spawn_subscribers(const Spec &s, const std::string &name) {
    std::vector<Child> kids(static_cast<size_t>(s.subscribers));
    for (size_t i = 0; i < kids.size(); ++i) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0)
            die(std::string("pipe: ") + std::strerror(errno));
        const bool lag = s.lag && i == 0;
        kids[i].pid = spawn_self(
            {"--role", "sub", "--transport", s.transport, "--name", name, "--lag", lag ? "1" : "0",
             "--spin", std::to_string(s.spin)},
            p[1], result_fd_in_subscriber, false);
        close(p[1]);
        kids[i].fd = p[0];
    }
    return kids;
}

void wait_until_subscribed(Publisher &pub, std::vector<Child> &kids) {
    const int64_t give_up = now_ns() + 20'000'000'000;
    for (;;) {
        bool all = true;
        for (auto &k : kids) {
            if (k.done)
                die("a subscriber exited before subscribing (see its stderr)");
            all = all && k.ready;
        }
        if (all)
            return;
        if (now_ns() > give_up)
            die("the subscribers did not all subscribe within 20 s");
        pub.housekeeping(); // libparallax admits joiners here
        gather(kids, 0);
    }
}

double median(std::vector<int64_t> &v) {
    if (v.empty())
        return 0;
    auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
    std::nth_element(v.begin(), mid, v.end());
    return static_cast<double>(*mid);
}

struct SubResult {
    uint64_t received = 0;
    std::vector<int64_t> lat;
};

SubResult decode(const Child &k, size_t index) {
    SubResult r;
    uint64_t n = 0;
    const std::string &d = k.data;
    if (d.size() < 16)
        die("subscriber " + std::to_string(index) + " exited without its results");
    std::memcpy(&r.received, d.data(), 8);
    std::memcpy(&n, d.data() + 8, 8);
    if (d.size() != 16 + n * 8)
        die("subscriber " + std::to_string(index) + " wrote truncated results");
    r.lat.resize(n);
    std::memcpy(r.lat.data(), d.data() + 16, n * 8);
    return r;
}

// One frame every pace_ns for `seconds` (absolute deadlines: no drift); the publish calls' costs.
std::vector<int64_t> paced_phase(Publisher &pub, double seconds) {
    std::vector<int64_t> cost;
    const int64_t end = now_ns() + static_cast<int64_t>(seconds * 1e9);
    int64_t next = now_ns();
    for (uint64_t seq = 0; next < end; ++seq) {
        next += pace_ns;
        cost.push_back(pub.publish(paced_bit | seq));
        sleep_until(next);
    }
    // Let the last paced frames arrive before the flood starts.
    usleep(static_cast<useconds_t>(2 * pace_ns / 1000));
    return cost;
}

int publisher_main(const Spec &s) {
    if (s.interleaved)
        return interleaved_publisher_main(s.payload, s.seconds, s.spin);
    if (s.churners >= 0)
        return churn_publisher_main(s.churners, s.churn_stables, s.seconds, s.churn_polls,
                                    s.churn_decoy);
    pxipc::g_is_leader = true; // die() reports on fd 3
    const std::string name = "pxbench-stream-" + std::to_string(getpid());
    std::unique_ptr<Publisher> pub =
        s.transport == "parallax"  ? parallax_publisher(name, s.payload, s.slots)
        : s.transport == "channel" ? channel_publisher(name, s.payload, s.slots)
                                   : iceoryx_publisher(name, s.payload);
    std::vector<Child> kids = spawn_subscribers(s, name);
    wait_until_subscribed(*pub, kids);

    // Warm-up (page faults, first mappings; every frame cycled at least twice), not recorded.
    uint64_t seq = 0;
    const int64_t warm_end = now_ns() + 20'000'000;
    while (now_ns() < warm_end || seq < 2 * frames_out)
        pub->publish(warm_bit | seq++);

    std::vector<int64_t> cost = s.lag ? std::vector<int64_t>{} : paced_phase(*pub, s.seconds);

    const int64_t t0 = now_ns(), deadline = t0 + static_cast<int64_t>(s.seconds * 1e9);
    uint64_t published = 0;
    do
        pub->publish(published++);
    while (now_ns() < deadline);
    const double elapsed = static_cast<double>(now_ns() - t0) / 1e9;

    // The lagging subscriber would take up to a second to reach the stop frame: tell it to stop.
    if (s.lag)
        kill(kids[0].pid, SIGTERM);
    // The stop frame is published until everyone has answered: under a dropping policy a
    // subscriber with no room misses a frame, the stop frame included.
    const int64_t give_up = now_ns() + 20'000'000'000;
    while (!std::all_of(kids.begin(), kids.end(), [](const Child &k) { return k.done; })) {
        if (now_ns() > give_up)
            die("the subscribers did not all finish within 20 s of the stop frame");
        pub->publish(pxipc::seq_stop);
        gather(kids, 1);
    }
    for (auto &k : kids) {
        close(k.fd);
        if (!pxipc::reap(k.pid))
            die("a subscriber failed (see its stderr)");
    }

    std::vector<int64_t> all;
    double slowest = 0, min_fps = 1e300, others_fps = 0;
    uint64_t lag_received = 0;
    for (size_t i = 0; i < kids.size(); ++i) {
        SubResult r = decode(kids[i], i);
        if (s.lag && i == 0) {
            lag_received = r.received;
            continue;
        }
        const double fps = static_cast<double>(r.received) / elapsed;
        min_fps = std::min(min_fps, fps);
        if (i > 0) // "the others" of the lag case: subscribers 1.. with or without a laggard
            others_fps += fps / static_cast<double>(kids.size() - 1);
        all.insert(all.end(), r.lat.begin(), r.lat.end());
        slowest = std::max(slowest, median(r.lat));
    }
    char line[512];
    std::snprintf(line, sizeof line,
                  "ok publish_ns=%.1f lat_all=%.1f lat_slowest=%.1f published_fps=%.1f "
                  "min_fps=%.1f others_fps=%.1f lag_received=%llu\n",
                  median(cost), median(all), slowest, static_cast<double>(published) / elapsed,
                  min_fps, others_fps, static_cast<unsigned long long>(lag_received));
    write_all(3, line, std::strlen(line));
    return 0;
}

// ---- orchestrator
// ------------------------------------------------------------------------------------
using Outcome = std::map<std::string, double>; // empty with `error` set when the case failed

// Runs one case in fresh processes; its figures, or why not.
Outcome run_case(const Spec &s, std::string &error) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        die(std::string("pipe: ") + std::strerror(errno));
    std::vector<std::string> args = {"--role", "pub"};
    for (auto &a : spec_args(s))
        args.push_back(a);
    pid_t pid = spawn_self(args, p[1], 3, true);
    close(p[1]);
    std::string text;
    const int64_t give_up = now_ns() + static_cast<int64_t>((s.seconds + 60) * 1e9);
    char buf[1024];
    for (;;) {
        pollfd pf{p[0], POLLIN, 0};
        if (poll(&pf, 1, 100) > 0) {
            ssize_t n = read(p[0], buf, sizeof buf);
            if (n <= 0)
                break;
            text.append(buf, static_cast<size_t>(n));
        }
        if (now_ns() > give_up) {
            text = "error no result within " + std::to_string(int(s.seconds + 60)) + " s";
            break;
        }
    }
    close(p[0]);
    kill(-pid, SIGKILL); // whatever is left of the case (nothing, normally)
    waitpid(pid, nullptr, 0);
    Outcome o;
    std::istringstream in(text);
    std::string word;
    in >> word;
    if (word != "ok") {
        std::getline(in, error);
        if (error.empty())
            error = "the publisher process died without a result";
        return {};
    }
    while (in >> word) {
        auto eq = word.find('=');
        if (eq != std::string::npos)
            o[word.substr(0, eq)] = std::atof(word.c_str() + eq + 1);
    }
    return o;
}

struct Options {
    int reps = 7;
    double seconds = 0.3, lag_seconds = 1.0, churn_seconds = 1.0;
    bool churn_only = false;
    bool lag_only = false;
    bool spin_only = false;
    bool pairs_only = false;
    bool fan_out_only = false;
    // The frame sizes of the fan-out and frame-by-frame cases (--size), the latter's modes
    // (--mode), the former's subscriber counts (--subs): all when empty.
    std::vector<size_t> sizes;
    std::vector<std::string> pair_modes;
    std::vector<int> fan_out_counts;
};

std::string first_line_of(const char *path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

std::string size_name(size_t b) {
    return b >= MiB ? std::to_string(b / MiB) + " MiB" : std::to_string(b / KiB) + " KiB";
}

// The figures of one row: per metric, the median over the repetitions that worked.
struct Row {
    std::map<std::string, std::vector<double>> values;
    std::string error;
    // Sorts a copy: values keeps the order of the runs, which paired_ratios pairs up.
    double med(const std::string &k) {
        std::vector<double> v = values[k];
        if (v.empty())
            return 0;
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    }
};

void record(Row &row, const Spec &s) {
    std::string error;
    Outcome o = run_case(s, error);
    if (o.empty()) {
        row.error = error;
        return;
    }
    for (auto &[k, v] : o)
        row.values[k].push_back(v);
}

std::string cell(Row &row, const std::string &k, const char *fmt) {
    if (row.values[k].empty())
        return "-";
    char b[64];
    std::snprintf(b, sizeof b, fmt, row.med(k));
    return b;
}

// better / worse: > 1 means libparallax did better.
std::string ratio(double better, double worse) {
    if (better <= 0 || worse <= 0)
        return "-";
    char b[32];
    std::snprintf(b, sizeof b, "%.2fx", better / worse);
    return b;
}

// One figure of a comparison table: its label, its key in the result lines, how it prints.
struct Metric {
    const char *label, *key, *fmt;
    bool lower_is_better;
};

// `ours` against `theirs` for `m`: > 1 means ours did better.
std::string metric_ratio(const Metric &m, Row &ours, Row &theirs) {
    return m.lower_is_better ? ratio(theirs.med(m.key), ours.med(m.key))
                             : ratio(ours.med(m.key), theirs.med(m.key));
}

// `ours` against `theirs` for `m`, run by run (the two ran one after the other in each
// repetition, so a noisy moment of the VM touches both): the median of those ratios, their
// quartiles, and in how many runs ours did at least as well. Steadier than a ratio of medians
// when the noise between repetitions is larger than the difference.
std::string paired_ratios(const Metric &m, Row &ours, Row &theirs) {
    const std::vector<double> &a = ours.values[m.key], &b = theirs.values[m.key];
    if (a.size() != b.size())
        return "-"; // a run failed: the runs no longer pair up
    std::vector<double> r;
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i] > 0 && b[i] > 0)
            r.push_back(m.lower_is_better ? b[i] / a[i] : a[i] / b[i]);
    if (r.empty())
        return "-";
    const size_t at_least = std::count_if(r.begin(), r.end(), [](double x) { return x >= 1; });
    std::sort(r.begin(), r.end());
    char s[96];
    std::snprintf(s, sizeof s, "%.2fx (%.2f-%.2f) %zu/%zu", r[r.size() / 2], r[r.size() / 4],
                  r[(3 * r.size()) / 4], at_least, r.size());
    return s;
}

const std::vector<std::string> transports = {"parallax", "iceoryx"};

void fan_out(const Options &o, const std::string &iox_why) {
    const std::vector<size_t> sizes =
        o.sizes.empty() ? std::vector<size_t>{4 * KiB, 8 * MiB} : o.sizes;
    const std::vector<int> counts =
        o.fan_out_counts.empty() ? std::vector<int>{1, 2, 4, 8} : o.fan_out_counts;
    std::map<std::string, Row> rows; // transport/size/subscribers
    auto key = [](const std::string &t, size_t sz, int n) {
        return t + "/" + std::to_string(sz) + "/" + std::to_string(n);
    };
    for (int rep = 0; rep < o.reps; ++rep)
        for (size_t sz : sizes)
            for (int n : counts)
                for (auto &t : transports) {
                    if (t == "iceoryx" && !iox_why.empty())
                        continue;
                    record(rows[key(t, sz, n)], Spec{t, sz, n, false, o.seconds});
                }
    for (size_t sz : sizes) {
        std::printf("\n== Fan-out, %s frames: libparallax streams (default options: DROP, "
                    "max_in_flight 8) vs iceoryx (WaitSet, queue 8); median of %d x (%.2f s paced, "
                    "same free-running)\n",
                    size_name(sz).c_str(), o.reps, o.seconds);
        std::printf("%-5s %-28s %14s %14s %8s  %s\n", "subs", "metric", "parallax", "iceoryx",
                    "ratio", "paired: median of each run's ratio (q1-q3), runs >= 1");
        for (int n : counts) {
            Row &px = rows[key("parallax", sz, n)], &ix = rows[key("iceoryx", sz, n)];
            const Metric metrics[] = {
                {"publish call ns, paced", "publish_ns", "%.0f", true},
                {"latency p50 ns, all subs", "lat_all", "%.0f", true},
                {"latency p50 ns, slowest sub", "lat_slowest", "%.0f", true},
                {"frames/s free-run, slowest", "min_fps", "%.0f", false},
            };
            for (const Metric &m : metrics)
                std::printf("%-5d %-28s %14s %14s %8s  %s\n", n, m.label,
                            cell(px, m.key, m.fmt).c_str(), cell(ix, m.key, m.fmt).c_str(),
                            metric_ratio(m, px, ix).c_str(), paired_ratios(m, px, ix).c_str());
        }
        for (auto &t : transports)
            for (int n : counts)
                if (!rows[key(t, sz, n)].error.empty())
                    std::printf("  %s, %d subscriber(s): %s\n", t.c_str(), n,
                                rows[key(t, sz, n)].error.c_str());
    }
    std::printf("ratio > 1: libparallax better (iceoryx/parallax for times, parallax/iceoryx for "
                "frames/s)\n");
    if (!iox_why.empty())
        std::printf("iceoryx rows: %s\n", iox_why.c_str());
}

void lagging(const Options &o, const std::string &iox_why) {
    const std::vector<size_t> sizes = {4 * KiB, 8 * MiB};
    std::map<std::string, Row> rows;
    auto key = [](const std::string &t, size_t sz, bool lag) {
        return t + "/" + std::to_string(sz) + (lag ? "/lag" : "/none");
    };
    for (int rep = 0; rep < o.reps; ++rep)
        for (size_t sz : sizes)
            for (bool lag : {false, true})
                for (auto &t : transports) {
                    if (t == "iceoryx" && !iox_why.empty())
                        continue;
                    // Under DROP a laggard keeps its max_in_flight frames (the newest go
                    // past it), where iceoryx's DISCARD_OLDEST_DATA recycles its queue: the
                    // libparallax pool has room for every subscriber's credit here, with and
                    // without the laggard (with 2 x 8 + 1 the laggard's 8 left the others 9).
                    Spec s{t, sz, 4, lag, o.lag_seconds};
                    s.slots = 4 * in_flight + 1;
                    record(rows[key(t, sz, lag)], s);
                }
    std::printf("\n== Lagging subscriber: 4 subscribers, subscriber 0 sleeps %d ms per frame "
                "(libparallax PX_SLOW_DROP, iceoryx DISCARD_OLDEST_DATA); frames/s of each of "
                "the 3 others (mean), median of %d x %.2f s\n",
                lag_ms, o.reps, o.lag_seconds);
    std::printf("%-8s %-10s %14s %14s %16s %12s\n", "frames", "transport", "without lag",
                "with lag", "with / without", "laggard got");
    for (size_t sz : sizes)
        for (auto &t : transports) {
            Row &a = rows[key(t, sz, false)], &b = rows[key(t, sz, true)];
            std::printf("%-8s %-10s %14s %14s %16s %12s\n", size_name(sz).c_str(), t.c_str(),
                        cell(a, "others_fps", "%.0f").c_str(),
                        cell(b, "others_fps", "%.0f").c_str(),
                        ratio(b.med("others_fps"), a.med("others_fps")).c_str(),
                        cell(b, "lag_received", "%.0f").c_str());
            if (!a.error.empty() || !b.error.empty())
                std::printf("  %s: %s\n", t.c_str(), (a.error.empty() ? b : a).error.c_str());
        }
    if (!iox_why.empty())
        std::printf("iceoryx rows: %s\n", iox_why.c_str());
}

void one_subscriber_interleaved(const Options &o);

// Issue 13's "with 1 subscriber in spin mode, no slower than a plain channel": the same frames,
// processes and phases as the fan-out, one subscriber, through a stream and through one plain
// channel, the receiver in spin mode (and, for reference, in the default mode).
void one_subscriber(const Options &o) {
    const std::vector<size_t> sizes = {4 * KiB, 8 * MiB};
    const std::vector<std::pair<const char *, int64_t>> modes = {{"spin", -1},
                                                                 {"default", default_spin}};
    const std::vector<std::string> ways = {"parallax", "channel"};
    std::map<std::string, Row> rows;
    auto key = [](const std::string &t, size_t sz, const char *mode) {
        return t + "/" + std::to_string(sz) + "/" + mode;
    };
    // Which of the two runs first alternates from one repetition to the next: the first run
    // after the other's processes exit meets the machine in another state than the second.
    for (int rep = 0; rep < o.reps; ++rep)
        for (size_t sz : sizes)
            for (auto &[mode, spin] : modes)
                for (size_t i = 0; i < ways.size(); ++i) {
                    const std::string &t = ways[(i + static_cast<size_t>(rep)) % ways.size()];
                    Spec s{t, sz, 1, false, o.seconds};
                    s.spin = spin;
                    record(rows[key(t, sz, mode)], s);
                }
    std::printf("\n== One subscriber: a libparallax stream (default options) vs one plain "
                "px_channel (px_channel_send), the receiver in spin mode (set_spin_ns -1) and in "
                "the default mode; median of %d x (%.2f s paced, same free-running)\n",
                o.reps, o.seconds);
    std::printf("%-8s %-8s %-28s %12s %12s %8s  %s\n", "frames", "mode", "metric", "stream",
                "channel", "ratio", "paired: median (quartiles) runs >= 1");
    const Metric metrics[] = {
        {"publish / send call ns", "publish_ns", "%.0f", true},
        {"latency p50 ns", "lat_all", "%.0f", true},
        {"frames/s free-run", "min_fps", "%.0f", false},
    };
    for (size_t sz : sizes)
        for (auto &[mode, spin] : modes) {
            Row &st = rows[key("parallax", sz, mode)], &ch = rows[key("channel", sz, mode)];
            for (const Metric &m : metrics)
                std::printf("%-8s %-8s %-28s %12s %12s %8s  %s\n", size_name(sz).c_str(),
                            mode, m.label, cell(st, m.key, m.fmt).c_str(),
                            cell(ch, m.key, m.fmt).c_str(), metric_ratio(m, st, ch).c_str(),
                            paired_ratios(m, st, ch).c_str());
            for (auto &t : ways)
                if (!rows[key(t, sz, mode)].error.empty())
                    std::printf("  %s: %s\n", t.c_str(), rows[key(t, sz, mode)].error.c_str());
        }
    std::printf("ratio > 1: the stream better (channel/stream for times, stream/channel for "
                "frames/s); paired: the same ratio run by run (each stream run next to its "
                "channel run). Free-running, the stream under DROP skips a subscriber with no "
                "credit where the channel's send waits for room\n");
    one_subscriber_interleaved(o);
}

// Each run's paired ratio, in order; past a dozen runs, their quartiles and how many favour the
// stream instead. The runs differ by more than their pairs' sampling error (each run's processes
// find their memory where they find it): a difference of 2-3% shows only over tens of runs.
std::string runs_summary(const std::vector<double> &values) {
    char b[128];
    if (values.size() <= 12) {
        std::string s;
        for (double v : values) {
            std::snprintf(b, sizeof b, "%s%.3f", s.empty() ? "" : " ", v);
            s += b;
        }
        return s;
    }
    std::vector<double> v = values;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    const size_t at_least = std::count_if(v.begin(), v.end(), [](double x) { return x >= 1; });
    std::snprintf(b, sizeof b, "%zu runs: q1 %.3f, median %.3f, q3 %.3f; %zu of them >= 1", n,
                  v[n / 4], v[n / 2], v[(3 * n) / 4], at_least);
    return b;
}

// The same comparison frame by frame (interleaved.cpp): one process pair holds both the stream
// and the channel, and their frames alternate, so that the VM's noise falls on both alike.
void one_subscriber_interleaved(const Options &o) {
    const std::vector<size_t> sizes =
        o.sizes.empty() ? std::vector<size_t>{4 * KiB, 8 * MiB} : o.sizes;
    std::vector<std::pair<const char *, int64_t>> modes;
    for (auto [mode, spin] : {std::pair<const char *, int64_t>{"spin", -1}, {"default", default_spin}})
        if (o.pair_modes.empty() ||
            std::find(o.pair_modes.begin(), o.pair_modes.end(), mode) != o.pair_modes.end())
            modes.emplace_back(mode, spin);
    const double seconds = std::max(1.0, 4 * o.seconds);
    std::map<std::string, Row> rows;
    auto key = [](size_t sz, const char *mode) { return std::to_string(sz) + "/" + mode; };
    for (int rep = 0; rep < o.reps; ++rep)
        for (size_t sz : sizes)
            for (auto &[mode, spin] : modes) {
                Spec s{"parallax", sz, 1, false, seconds};
                s.spin = spin;
                s.interleaved = true;
                record(rows[key(sz, mode)], s);
            }
    std::printf("\n== One subscriber, frame by frame: one publisher process with a stream and a "
                "plain channel, one subscriber process with both; their frames alternate 250 us "
                "apart (%d x %.1f s, fresh processes each time). Per pair of frames: channel / "
                "stream (> 1: the stream better) and stream - channel; median over the pairs, "
                "then over the runs\n",
                o.reps, seconds);
    std::printf("%-8s %-8s %-22s %9s %9s %20s %22s  %s\n", "frames", "mode", "metric", "stream",
                "channel", "paired ratio (q1-q3)", "stream - channel ns", "each run's paired ratio");
    struct Fig {
        const char *label, *a, *b, *r, *rq1, *rq3, *d;
    };
    const Fig figs[] = {
        {"latency p50 ns", "lat_stream", "lat_channel", "lat_ratio", "lat_ratio_q1",
         "lat_ratio_q3", "lat_diff"},
        {"publish / send call ns", "pub_stream", "pub_channel", "pub_ratio", "pub_ratio_q1",
         "pub_ratio_q3", "pub_diff"},
    };
    for (size_t sz : sizes)
        for (auto &[mode, spin] : modes) {
            Row &row = rows[key(sz, mode)];
            for (const Fig &f : figs) {
                char paired[64];
                std::snprintf(paired, sizeof paired, "%.3fx (%.2f-%.2f)", row.med(f.r),
                              row.med(f.rq1), row.med(f.rq3));
                const std::string runs = runs_summary(row.values[f.r]);
                std::printf("%-8s %-8s %-22s %9s %9s %20s %22s  %s\n", size_name(sz).c_str(), mode,
                            f.label, cell(row, f.a, "%.0f").c_str(), cell(row, f.b, "%.0f").c_str(),
                            row.values[f.r].empty() ? "-" : paired, cell(row, f.d, "%+.0f").c_str(),
                            runs.c_str());
            }
            double left_out = 0, all_pairs = 0;
            for (double v : row.values["incomplete"])
                left_out += v;
            for (double v : row.values["pairs"])
                all_pairs += v;
            if (left_out > 0)
                std::printf("  %s %s: %.0f of %.0f pairs left out (a stream frame dropped: the "
                            "subscriber stalled past its credit, where the channel's send waited)\n",
                            size_name(sz).c_str(), mode, left_out, all_pairs);
            if (!row.error.empty())
                std::printf("  %s %s: %s\n", size_name(sz).c_str(), mode, row.error.c_str());
        }
}

// Issue 13's "joining or leaving never stalls publish for more than 50 us" (churn.cpp): rounds
// with subscribers joining and leaving, interleaved with control rounds where nobody does.
void join_leave(const Options &o) {
    constexpr int churners = 2;
    Row churn, churn_polling, decoy, fan_out, control;
    for (int rep = 0; rep < o.reps; ++rep) {
        record(churn, Spec{"parallax", 4 * KiB, 1, false, o.churn_seconds, churners, false});
        record(churn_polling, Spec{"parallax", 4 * KiB, 1, false, o.churn_seconds, churners, true});
        record(decoy,
               Spec{"parallax", 4 * KiB, 1, false, o.churn_seconds, churners, true, true});
        record(fan_out,
               Spec{"parallax", 4 * KiB, 1, false, o.churn_seconds, 0, true, false, 3});
        record(control, Spec{"parallax", 4 * KiB, 1, false, o.churn_seconds, 0, false});
    }
    auto max_of = [](Row &row, const std::string &k) {
        auto &v = row.values[k];
        return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end());
    };
    std::printf("\n== Join/leave stall: libparallax publisher paced every 50 us (4 KiB, default "
                "options), 1 stable subscriber, %d subscriber processes joining and leaving "
                "over and over (join, %s); %d rounds of %.2f s each of a publisher that never "
                "polls (joins and departures done in pieces inside publish) and of one that "
                "polls px_publisher_fd between frames (API.md's way: they are done in "
                "px_publisher_poll), interleaved with control rounds: a load control (the "
                "publisher polls; the churners join and leave another publisher's stream), a "
                "fan-out control (it polls; 3 subscribers that stay, as many as a churn round "
                "has at most) and one where nobody joins\n",
                churners, "10 frames, leave holding 4", o.reps, o.churn_seconds);
    struct Group {
        const char *label, *key;
        Row &row;
    };
    const Group groups[] = {
        {"never polls: admitted or removed one", "jl", churn},
        {"never polls: a join/leave waited", "pend", churn},
        {"never polls: nothing waited", "none", churn},
        {"polls its fd: admitted or removed one", "jl", churn_polling},
        {"polls its fd: a join/leave waited", "pend", churn_polling},
        {"polls its fd: nothing waited", "none", churn_polling},
        {"load control: they churn another stream", "all", decoy},
        {"fan-out control: 3 subscribers stay", "all", fan_out},
        {"control round: nobody joins or leaves", "all", control},
    };
    for (const char *clock : {"wall clock", "CPU time of the publishing thread"}) {
        const std::string prefix = clock[0] == 'w' ? "" : "c";
        std::printf("%-44s %8s %8s %9s %12s %12s %9s\n", clock, "n/round", "p50 ns", "p99 ns",
                    "max ns (med)", "max ns (all)", ">50us/rnd");
        for (const Group &g : groups) {
            const std::string k = prefix + g.key;
            std::printf("  %-42s %8s %8s %9s %12s %12.0f %9s\n", g.label,
                        cell(g.row, k + "_n", "%.0f").c_str(),
                        cell(g.row, k + "_p50", "%.0f").c_str(),
                        cell(g.row, k + "_p99", "%.0f").c_str(),
                        cell(g.row, k + "_max", "%.0f").c_str(), max_of(g.row, k + "_max"),
                        cell(g.row, k + "_over", "%.0f").c_str());
        }
    }
    for (Row *r : {&churn, &churn_polling})
        std::printf("%s: joins per round %s, leaves %s; the stable subscriber received %s frames "
                    "per round and missed %s (median of rounds)\n",
                    r == &churn ? "never polls" : "polls its fd", cell(*r, "joins", "%.0f").c_str(),
                    cell(*r, "leaves", "%.0f").c_str(),
                    cell(*r, "stable_received", "%.0f").c_str(),
                    cell(*r, "stable_missed", "%.0f").c_str());
    std::printf("p50/p99/max (med), >50us/rnd: medians over the rounds of each round's figure; "
                "max (all): the largest of all rounds. On a shared machine the control row's max "
                "is the scheduler's noise floor\n");
    for (Row *r : {&churn, &churn_polling, &decoy, &fan_out, &control})
        if (!r->error.empty())
            std::printf("  %s: %s\n",
                        r == &churn           ? "churn"
                        : r == &control       ? "control"
                        : r == &churn_polling ? "churn, polling"
                        : r == &fan_out       ? "fan-out control"
                                              : "load control",
                        r->error.c_str());
}

// Starts iox-roudi when iceoryx was built in; "" when it runs, else why its rows are empty.
std::string start_iceoryx(int &roudi, std::string &workdir) {
    std::string why = pxipc::iceoryx_build_problem();
    if (!why.empty())
        return why;
    char dir[] = "/tmp/px_bench_stream.XXXXXX";
    if (!mkdtemp(dir))
        return std::string("mkdtemp: ") + std::strerror(errno);
    workdir = dir;
    roudi = pxipc::roudi_start(workdir, {4 * KiB, 8 * MiB}, why, frames_out);
    return roudi < 0 ? "iox-roudi: " + why : "";
}

int orchestrate(const Options &o) {
    const int64_t t0 = now_ns();
    utsname u{};
    uname(&u);
    std::printf("px_bench_stream: %ld CPUs, Linux %s; iceoryx %s; load average %s\n",
                sysconf(_SC_NPROCESSORS_ONLN), u.release,
                pxipc::iceoryx_version().empty() ? "(not built)" : pxipc::iceoryx_version().c_str(),
                first_line_of("/proc/loadavg").substr(0, 14).c_str());
    if (o.churn_only) {
        join_leave(o);
        return 0;
    }
    if (o.spin_only) {
        one_subscriber(o);
        return 0;
    }
    if (o.pairs_only) {
        one_subscriber_interleaved(o);
        return 0;
    }
    int roudi = -1;
    std::string workdir;
    const std::string iox_why = start_iceoryx(roudi, workdir);
    if (!o.lag_only)
        fan_out(o, iox_why);
    if (!o.lag_only && !o.fan_out_only)
        one_subscriber(o);
    if (!o.fan_out_only)
        lagging(o, iox_why);
    if (!o.lag_only && !o.fan_out_only)
        join_leave(o);
    pxipc::roudi_stop(roudi);
    if (!workdir.empty()) { // its config and log: kept only when iox-roudi failed
        if (roudi >= 0) {
            unlink((workdir + "/roudi_config.toml").c_str());
            unlink((workdir + "/roudi.log").c_str());
            rmdir(workdir.c_str());
        } else {
            std::printf("iox-roudi's log: %s/roudi.log\n", workdir.c_str());
        }
    }
    std::printf("\n%.0f s; load average at the end %s\n", static_cast<double>(now_ns() - t0) / 1e9,
                first_line_of("/proc/loadavg").substr(0, 14).c_str());
    return 0;
}

// PX_BENCH_PIN=1 (a diagnostic, inherited by the role processes): the publisher runs on CPU 0
// and every subscriber on CPU 1, so that where the scheduler puts them is out of the figures.
void pin_role(const std::string &role) {
    if (!std::getenv("PX_BENCH_PIN"))
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(role == "pub" ? 0 : 1, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        std::perror("px_bench_stream: sched_setaffinity (PX_BENCH_PIN)");
}

int usage(const char *why) {
    std::fprintf(stderr,
                 "px_bench_stream: %s\nusage: px_bench_stream [--quick] [--reps N] "
                 "[--seconds S] [--lag-seconds S] [--churn-seconds S] [--churn-only] [--lag-only]\n"
                 "                 [--spin-only] [--pairs-only] [--fan-out-only] [--size S] [--mode M]\n"
                 "                 [--subs N]\n"
                 "  --quick          5 repetitions of 0.1 s (lag case 0.4 s, join/leave 0.5 s)\n"
                 "  --churn-only     only the join/leave stall phase\n"
                 "  --spin-only      only the one-subscriber phase (stream vs plain channel)\n"
                 "  --pairs-only     only its frame-by-frame part (one process pair holds both)\n"
                 "  --size 4k|8m     frame sizes of the fan-out and frame-by-frame parts\n"
                 "  --subs N         subscriber counts of the fan-out part (1-64)\n"
                 "  --mode spin|default\n"
                 "                   modes of the frame-by-frame part (each repeatable; all by\n"
                 "                   default): with --reps 40, to see a 2-3%% difference\n"
                 "  --fan-out-only   only the fan-out phase (1-8 subscribers vs iceoryx)\n",
                 why);
    return 2;
}

} // namespace
} // namespace pxstream

int main(int argc, char **argv) {
    using namespace pxstream;
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() >= 2 && args[0] == "--role") {
        pin_role(args[1]);
        Spec s = parse_spec(args, 2);
        if (args[1] == "pub")
            return publisher_main(s);
        if (args[1] == "churn-sub") {
            std::string name, kind;
            for (size_t i = 2; i + 1 < args.size(); i += 2) {
                if (args[i] == "--name")
                    name = args[i + 1];
                else if (args[i] == "--kind")
                    kind = args[i + 1];
            }
            return churn_subscriber_main(name, kind);
        }
        if (args[1] == "pair-sub") {
            std::string name;
            uint64_t pairs = 0;
            for (size_t i = 2; i + 1 < args.size(); i += 2) {
                if (args[i] == "--name")
                    name = args[i + 1];
                else if (args[i] == "--pairs")
                    pairs = std::strtoull(args[i + 1].c_str(), nullptr, 10);
            }
            return interleaved_subscriber_main(name, pairs, s.spin);
        }
        std::string name;
        bool lag = false;
        for (size_t i = 2; i + 1 < args.size(); i += 2) {
            if (args[i] == "--name")
                name = args[i + 1];
            else if (args[i] == "--lag")
                lag = args[i + 1] == "1";
        }
        return subscriber_main(s.transport, name, lag, s.spin);
    }
    Options o;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string &a = args[i];
        const char *v = i + 1 < args.size() ? args[i + 1].c_str() : nullptr;
        if (a == "--quick") {
            o.reps = 5;
            o.seconds = 0.1;
            o.lag_seconds = 0.4;
            o.churn_seconds = 0.5;
        } else if (a == "--churn-only") {
            o.churn_only = true;
        } else if (a == "--lag-only") {
            o.lag_only = true;
        } else if (a == "--spin-only") {
            o.spin_only = true;
        } else if (a == "--pairs-only") {
            o.pairs_only = true;
        } else if (a == "--size" && v && (std::string(v) == "4k" || std::string(v) == "8m")) {
            o.sizes.push_back(std::string(v) == "4k" ? 4 * KiB : 8 * MiB);
            ++i;
        } else if (a == "--subs" && v && std::atoi(v) > 0 && std::atoi(v) <= 64) {
            o.fan_out_counts.push_back(std::atoi(v));
            ++i;
        } else if (a == "--mode" && v && (std::string(v) == "spin" || std::string(v) == "default")) {
            o.pair_modes.emplace_back(v);
            ++i;
        } else if (a == "--fan-out-only") {
            o.fan_out_only = true;
        } else if (a == "--churn-seconds" && v && std::atof(v) > 0) {
            o.churn_seconds = std::atof(v);
            ++i;
        } else if (a == "--reps" && v && std::atoi(v) > 0) {
            o.reps = std::atoi(v);
            ++i;
        } else if (a == "--seconds" && v && std::atof(v) > 0) {
            o.seconds = std::atof(v);
            ++i;
        } else if (a == "--lag-seconds" && v && std::atof(v) > 0) {
            o.lag_seconds = std::atof(v);
            ++i;
        } else {
            return usage(("unknown option or bad value: " + a).c_str());
        }
    }
    return orchestrate(o);
}
