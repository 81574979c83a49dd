// SPDX-License-Identifier: Apache-2.0 OR MIT
// One subscriber, a stream against a plain channel, frame by frame (issue 13: "with 1 subscriber
// in spin mode, no slower than a plain channel").
//
// The run-by-run comparison (main.cpp's one_subscriber) runs the stream and the channel in turn,
// 0.3 s each: on this VM the noise between two such runs (quartiles of their ratio 0.7-1.3) is
// larger than what separates them. Here one publisher process holds both a stream with one
// subscriber and a plain channel, and one subscriber process both a px_subscriber and the
// channel's other end; frames alternate between the two, 250 us apart, in pairs whose order
// alternates (stream first in even pairs, channel first in odd ones), so that a noisy moment of
// the machine falls on both transports alike. The receiver spins (or sleeps: the default mode)
// on the transport whose frame comes next. Each frame's one-way latency (the subscriber's
// CLOCK_MONOTONIC at arrival minus the stamp the publisher put in pts_ns) and each publish/send
// call are recorded per pair, and the result is the median of the per-pair ratios and
// differences, with their quartiles.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <poll.h>
#include <string>
#include <time.h>
#include <unistd.h>
#include <vector>

#include "../ipc/ipc_bench.hpp"
#include "stream_bench.hpp"

using pxipc::die;
using pxipc::now_ns;

namespace pxstream {
namespace {

constexpr int64_t gap_ns = 250'000;   // between two frames: a pair every 500 us
constexpr uint64_t warm_pairs = 400;  // 200 ms: page faults and first mappings, not recorded
constexpr int64_t warm_gap_ns = 250'000;
constexpr int results_fd_in_subscriber = 100;

// Pair `k`'s first frame goes through the stream when k is even.
bool stream_first(uint64_t k) {
    return k % 2 == 0;
}

// Frame numbers: pair index and transport, plus the phase bit.
uint64_t frame_seq(uint64_t bit, uint64_t k, bool stream) {
    return bit | (k << 1) | (stream ? 0 : 1);
}

double quantile(std::vector<double> v, double q) {
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

} // namespace

int interleaved_subscriber_main(const std::string &name, uint64_t pairs, int64_t spin) {
    std::unique_ptr<Subscriber> stream = parallax_subscriber(name, spin);
    std::unique_ptr<Subscriber> channel = channel_subscriber(name, spin);
    write_all(results_fd_in_subscriber, "R", 1);
    // Pair k: [2k] the stream's latency, [2k + 1] the channel's; 0 for a frame that never came
    // (the stream under DROP skips a subscriber that the VM stalled for its whole credit, 8
    // frames = 4 ms here, where the channel's send waits): such pairs are left out.
    std::vector<int64_t> lat(2 * pairs, 0);
    for (uint64_t bit : {warm_bit, paced_bit}) {
        const uint64_t n = bit == warm_bit ? warm_pairs : pairs;
        uint64_t next[2] = {0, 0}; // per transport (0: stream), the first pair not yet taken
        for (uint64_t k = 0; k < n; ++k)
            for (int i = 0; i < 2; ++i) {
                const bool via_stream = stream_first(k) == (i == 0);
                const int t = via_stream ? 0 : 1;
                if (k < next[t])
                    continue; // dropped: a later frame of this transport came already
                uint64_t seq = 0;
                int64_t pts = 0, now = 0;
                if (!(via_stream ? *stream : *channel).next(seq, pts, now))
                    die("the publisher left before the last frame");
                const uint64_t got = (seq & ~(warm_bit | paced_bit)) >> 1;
                if ((seq & (warm_bit | paced_bit)) != bit || (seq & 1) != static_cast<uint64_t>(t) ||
                    got < k || got >= n)
                    die(std::string(via_stream ? "the stream" : "the channel") + " delivered " +
                        std::to_string(seq) + " where pair " + std::to_string(k) + " was due");
                next[t] = got + 1;
                if (bit == paced_bit)
                    lat[2 * got + static_cast<uint64_t>(t)] = now - pts;
            }
    }
    write_all(results_fd_in_subscriber, lat.data(), lat.size() * sizeof(int64_t));
    return 0;
}

int interleaved_publisher_main(size_t payload, double seconds, int64_t spin) {
    pxipc::g_is_leader = true; // die() reports on fd 3
    const std::string name = "pxbench-pair-" + std::to_string(getpid());
    const uint64_t pairs = std::max<uint64_t>(
        16, static_cast<uint64_t>(seconds * 1e9 / static_cast<double>(2 * gap_ns)));
    std::unique_ptr<Publisher> stream = parallax_publisher(name, payload);
    std::unique_ptr<Publisher> channel = channel_publisher(name, payload);

    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        die(std::string("pipe: ") + std::strerror(errno));
    const pid_t kid = spawn_self({"--role", "pair-sub", "--name", name, "--pairs",
                                  std::to_string(pairs), "--spin", std::to_string(spin)},
                                 p[1], results_fd_in_subscriber, false);
    close(p[1]);
    std::string data;
    const int64_t give_up = now_ns() + 20'000'000'000;
    while (data.empty()) { // "R": both subscribed (the stream's join is admitted in poll)
        if (now_ns() > give_up)
            die("the pair subscriber did not subscribe within 20 s");
        stream->housekeeping();
        channel->housekeeping();
        pollfd pf{p[0], POLLIN, 0};
        if (poll(&pf, 1, 0) > 0) {
            char c;
            if (read(p[0], &c, 1) != 1)
                die("the pair subscriber exited before subscribing (see its stderr)");
            data.push_back(c);
        }
    }

    std::vector<int64_t> cost(2 * pairs);
    for (uint64_t bit : {warm_bit, paced_bit}) {
        const uint64_t n = bit == warm_bit ? warm_pairs : pairs;
        const int64_t gap = bit == warm_bit ? warm_gap_ns : gap_ns;
        int64_t next = now_ns();
        for (uint64_t k = 0; k < n; ++k)
            for (int i = 0; i < 2; ++i) {
                const bool via_stream = stream_first(k) == (i == 0);
                const int64_t took =
                    (via_stream ? *stream : *channel).publish(frame_seq(bit, k, via_stream));
                if (bit == paced_bit)
                    cost[2 * k + (via_stream ? 0 : 1)] = took;
                next += gap;
                sleep_until(next);
            }
    }

    std::vector<int64_t> lat(2 * pairs);
    size_t got = 0;
    const int64_t finish_by = now_ns() + 20'000'000'000;
    while (got < lat.size() * sizeof(int64_t)) {
        if (now_ns() > finish_by)
            die("the pair subscriber sent no latencies within 20 s of the last frame");
        pollfd pf{p[0], POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        const ssize_t r = read(p[0], reinterpret_cast<char *>(lat.data()) + got,
                               lat.size() * sizeof(int64_t) - got);
        if (r <= 0)
            die("the pair subscriber failed before its latencies (see its stderr)");
        got += static_cast<size_t>(r);
    }
    close(p[0]);
    if (!pxipc::reap(kid))
        die("the pair subscriber failed (see its stderr)");

    // Per pair: channel / stream (> 1: the stream better) and stream - channel (ns).
    std::vector<double> lat_ratio, lat_diff, cost_ratio, cost_diff, lat_s, lat_c, cost_s, cost_c;
    uint64_t incomplete = 0;
    for (uint64_t k = 0; k < pairs; ++k) {
        if (lat[2 * k] <= 0 || lat[2 * k + 1] <= 0) {
            ++incomplete; // a frame of it dropped (see interleaved_subscriber_main)
            continue;
        }
        const double ls = static_cast<double>(lat[2 * k]), lc = static_cast<double>(lat[2 * k + 1]);
        const double cs = static_cast<double>(cost[2 * k]),
                     cc = static_cast<double>(cost[2 * k + 1]);
        lat_s.push_back(ls);
        lat_c.push_back(lc);
        cost_s.push_back(cs);
        cost_c.push_back(cc);
        lat_ratio.push_back(lc / ls);
        lat_diff.push_back(ls - lc);
        if (cs > 0 && cc > 0)
            cost_ratio.push_back(cc / cs);
        cost_diff.push_back(cs - cc);
    }
    char line[768];
    std::snprintf(line, sizeof line,
                  "ok pairs=%llu incomplete=%llu lat_stream=%.1f lat_channel=%.1f lat_ratio=%.4f lat_ratio_q1=%.4f "
                  "lat_ratio_q3=%.4f lat_diff=%.1f lat_diff_q1=%.1f lat_diff_q3=%.1f "
                  "pub_stream=%.1f pub_channel=%.1f "
                  "pub_ratio=%.4f pub_ratio_q1=%.4f pub_ratio_q3=%.4f pub_diff=%.1f\n",
                  static_cast<unsigned long long>(pairs),
                  static_cast<unsigned long long>(incomplete), quantile(lat_s, 0.5),
                  quantile(lat_c, 0.5), quantile(lat_ratio, 0.5), quantile(lat_ratio, 0.25),
                  quantile(lat_ratio, 0.75), quantile(lat_diff, 0.5), quantile(lat_diff, 0.25),
                  quantile(lat_diff, 0.75),
                  quantile(cost_s, 0.5), quantile(cost_c, 0.5), quantile(cost_ratio, 0.5),
                  quantile(cost_ratio, 0.25), quantile(cost_ratio, 0.75),
                  quantile(cost_diff, 0.5));
    write_all(3, line, std::strlen(line));
    return 0;
}

} // namespace pxstream
