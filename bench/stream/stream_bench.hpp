// SPDX-License-Identifier: Apache-2.0 OR MIT
// Issue 13 benchmarks: one publisher fanning frames out to 1..8 subscriber processes,
// libparallax streams against iceoryx publish-subscribe, in the same run.
//
// Process layout of one case: the orchestrator (main.cpp) execs a *publisher* process, which
// creates the stream and fork+execs its subscribers (this binary again, one process each); the
// publisher measures, gathers what every subscriber recorded, and writes one result line back
// to the orchestrator on fd 3 (bench/ipc's die() turns a failure into that line). Every case
// starts from fresh processes: iceoryx allows one runtime per process, and a stuck case is
// killed as a process group without taking the orchestrator down.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

#include "parallax/parallax.h"

namespace pxstream {

// Both transports carry the same frames: bytes 0..7 hold the sequence number, 8..15 (iceoryx)
// the publish time; libparallax carries the time in its metadata (pts_ns) instead.
constexpr uint64_t warm_bit = uint64_t{1} << 62;  // frames of the warm-up, not recorded
constexpr uint64_t paced_bit = uint64_t{1} << 61; // frames of the latency phase

// The publisher's side of one transport.
class Publisher {
  public:
    virtual ~Publisher() = default;
    // Admits joining subscribers while waiting for them (libparallax admits inside its calls).
    virtual void housekeeping() = 0;
    // Loans a frame (waiting while every one is out), writes `seq` into it, stamps the publish
    // time (CLOCK_MONOTONIC) and publishes it. Returns the ns the publish call itself took.
    virtual int64_t publish(uint64_t seq) = 0;
};

// A subscriber's side.
class Subscriber {
  public:
    virtual ~Subscriber() = default;
    // Waits for the next frame; false once the publisher is gone. On return `now` is the time
    // of arrival and `pts` the time the publisher stamped.
    virtual bool next(uint64_t &seq, int64_t &pts, int64_t &now) = 0;
};

// Frames a publisher can have out at once: what every subscriber may hold or have queued
// (libparallax's default max_in_flight, iceoryx's queue capacity here) twice over, plus one,
// as examples/c/stream_publisher.c sizes its pool. iox-roudi gets as many chunks.
constexpr uint32_t in_flight = 8;
constexpr size_t frames_out = 2 * in_flight + 1;

// A pool of `slots` frames of `payload` bytes over a shared-memory segment, written once
// (parallax_stream.cpp; dies on failure, as every helper here).
px_pool_t *frame_pool(size_t payload, size_t slots);
// Loans a frame (waiting while every one is out), writes `seq` into it and stamps the publish
// time in its metadata (pts_ns). Owned by the caller.
px_buffer_t *stamped_frame(px_pool_t *pool, size_t payload, uint64_t seq);

// A pool of `slots` frames (frames_out unless a case needs more).
std::unique_ptr<Publisher> parallax_publisher(const std::string &name, size_t payload,
                                              size_t slots = frames_out);
// A subscriber's recv wait: default_spin leaves the library's default, else the
// px_subscriber_set_spin_ns / px_channel_set_spin_ns value (-1: spin mode).
constexpr int64_t default_spin = INT64_MIN;
std::unique_ptr<Subscriber> parallax_subscriber(const std::string &name,
                                                int64_t spin_ns = default_spin);
// One plain channel (px_listener_new / px_channel_connect): the baseline of 1 subscriber.
std::unique_ptr<Publisher> channel_publisher(const std::string &name, size_t payload,
                                             size_t slots = frames_out);
std::unique_ptr<Subscriber> channel_subscriber(const std::string &name,
                                               int64_t spin_ns = default_spin);
std::unique_ptr<Publisher> iceoryx_publisher(const std::string &name, size_t payload);
std::unique_ptr<Subscriber> iceoryx_subscriber(const std::string &name);

// Starts this binary as `args`; fd `keep` of ours becomes `at` in the child (-1: none). The
// child closes fd 3, the publisher's result pipe, which is not its business.
pid_t spawn_self(const std::vector<std::string> &args, int keep, int at, bool new_group);
// Writes all of it, or dies.
void write_all(int fd, const void *p, size_t n);
// Sleeps until CLOCK_MONOTONIC reads `t` (ns): the paced loops' absolute deadlines, no drift.
void sleep_until(int64_t t);

// The join/leave stall case (churn.cpp): a publisher paced every 50 us with one stable
// subscriber and `churners` processes joining and leaving, for `seconds`; its result line goes
// to fd 3. A subscriber of it: kind "stable" or "churn".
int churn_publisher_main(int churners, int stables, double seconds, bool polls, bool decoy);
int churn_subscriber_main(const std::string &name, const std::string &kind);

// One subscriber, stream against plain channel frame by frame (interleaved.cpp): a publisher
// process with both, for `seconds` of frame pairs; its result line goes to fd 3. Its subscriber
// process receives `pairs` pairs (after the warm-up) with recv wait `spin`.
int interleaved_publisher_main(size_t payload, double seconds, int64_t spin);
int interleaved_subscriber_main(const std::string &name, uint64_t pairs, int64_t spin);

} // namespace pxstream
