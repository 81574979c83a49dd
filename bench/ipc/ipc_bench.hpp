// SPDX-License-Identifier: Apache-2.0 OR MIT
// Issue 7 benchmarks: handing a frame to another process, libparallax against the alternatives a
// user would otherwise pick, all run by the same binary in the same run.
//
// Process layout of one measurement ("case"): the orchestrator (main.cpp) execs a *leader*
// child, which creates the transport's resources and fork+execs its *follower*; the leader
// measures and writes one result line back to the orchestrator through a pipe. Every case
// therefore starts from fresh processes (iceoryx allows one runtime per process; a stuck case is
// killed as a process group without taking the orchestrator down), and both sides can be
// pinned with sched_setaffinity before they do anything.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pxipc {

// What a case measures.
enum class Kind {
    pingpong, // leader sends a frame, follower echoes it, leader times the round trip
    stream,   // leader produces frames as fast as the transport takes them, follower consumes
};

struct Case {
    Kind kind = Kind::pingpong;
    std::string transport; // parallax, iceoryx, socket, pipe, eventfd, futex, spin
    std::string mode;      // parallax: spin|default|blocking; iceoryx: busy|waitset; else ""
    size_t payload = 4096; // frame bytes
    bool read_all = false; // stream: the consumer reads every byte (else 8 bytes: the sequence)
    int leader_cpu = -1;   // -1: not pinned
    int follower_cpu = -1;
    double seconds = 0.15; // measuring budget of one repetition (after a warm-up)
    size_t slots = 4;      // frames in flight for stream cases (pool slots / queue depth)
};

// What the leader reports.
struct Result {
    bool ok = false;
    std::string error;
    // pingpong: round-trip times in ns
    uint64_t samples = 0;
    double rtt_p50 = 0, rtt_p99 = 0, rtt_min = 0;
    // stream
    uint64_t frames = 0;
    double elapsed_s = 0;
    // Where the two processes ran (see note_cpu): 1 = always on the same single CPU, 0 = never
    // on a common one, < 0 = unknown.
    double overlap = -1;
};

// ---- frames ----------------------------------------------------------------------------------
// Every transport carries the same frames: the first 8 bytes hold the sequence number (the one
// part the producer writes per frame and the consumer reads in "touch" mode); the rest of the
// frame was filled once, before the measurement, as a camera or decoder would fill it.
constexpr uint64_t seq_mark = ~uint64_t{0} - 1; // "ack when you get here" (stream drain)
constexpr uint64_t seq_stop = ~uint64_t{0};     // "exit"
inline constexpr size_t min_payload = 16;

void fill_frame(void *p, size_t n);
// Reads every byte of the frame (8 bytes at a time) and returns a checksum the caller sinks.
uint64_t read_every_byte(const void *p, size_t n);
uint64_t load_seq(const void *p);
void store_seq(void *p, uint64_t seq);

// ---- time, placement ----------------------------------------------------------------------
int64_t now_ns();
// Pins the calling thread to `cpu` (-1: allowed on every CPU). Dies on failure.
void pin_to(int cpu);
inline void cpu_relax() {
    __builtin_ia32_pause();
}

// ---- where the two processes ran --------------------------------------------------------------
// Every 16th message each side notes the CPU it is on, in a tally that leader and follower share
// (a memfd the follower inherits at fd 99), so that an unpinned result can say whether the
// scheduler kept both processes on one core or spread them over two.
constexpr int tally_fd_in_follower = 99;
void tally_create();       // leader, before it spawns the follower
void tally_attach(int fd); // follower
void note_cpu();           // both sides, once per message
double tally_overlap();    // leader, once the follower is done: sum over CPUs of min(shares)

// ---- roles -----------------------------------------------------------------------------------
// Command line of a role (leader/follower), and back. `fds` are passed to the child at 100+i.
std::vector<std::string> case_args(const Case &c);
Case parse_case(const std::vector<std::string> &args, size_t &i);

// Starts this binary as the follower of `c`, handing it `fds` (which stay open here too).
// Returns the pid; the caller closes its copies of the follower's ends.
int spawn_follower(const Case &c, const std::vector<int> &fds);
// Waits for a follower to exit (up to timeout_ms, then SIGKILL). Returns true on exit 0.
bool reap(int pid, int timeout_ms = 5000);
// True in the leader role: die() then reports the error as the case's result.
extern bool g_is_leader;
// Dies with a message (in a leader: becomes the case's error line).
[[noreturn]] void die(const std::string &what);

// The leader-side results writer (fd 3 of a leader, set up by the orchestrator).
void report(const Result &r);

// Round-trip loop shared by every ping-pong leader: warm-up, then times `rt(seq)` until the
// budget is spent. Fills r.samples and the quantiles.
template <class F> void time_round_trips(const Case &c, Result &r, F &&rt);

// Each transport: leader and follower of both kinds. Followers get their fds in order.
Result parallax_leader(const Case &c);
int parallax_follower(const Case &c, const std::vector<int> &fds);
Result posix_leader(const Case &c);
int posix_follower(const Case &c, const std::vector<int> &fds);
Result iceoryx_leader(const Case &c);
int iceoryx_follower(const Case &c, const std::vector<int> &fds);
// Empty when iceoryx was compiled in; else why not.
std::string iceoryx_build_problem();
std::string iceoryx_version(); // of the headers built against ("" when not built)

// ---- iox-roudi (orchestrator side) ------------------------------------------------------------
// Starts the iceoryx daemon with one mempool per frame size (log and config in `workdir`).
// Returns its pid once it is ready for clients, or -1 with `why` set. `chunks` per frame size:
// 8 suits one subscriber (see roudi.cpp); fan-out (bench/stream) needs more.
int roudi_start(const std::string &workdir, const std::vector<size_t> &frame_sizes,
                std::string &why, size_t chunks = 8);
void roudi_stop(int pid);

// ---- implementation of the template ----------------------------------------------------------
void record_round_trips(Result &r, std::vector<int64_t> &rtts);

template <class F> void time_round_trips(const Case &c, Result &r, F &&rt) {
    uint64_t seq = 1;
    // Warm-up: page faults, lazy mappings, first registrations, caches; at most 20 ms.
    const int64_t warm_end = now_ns() + 20'000'000;
    for (int i = 0; i < 2000 && now_ns() < warm_end; ++i) {
        rt(seq++);
        note_cpu();
    }
    std::vector<int64_t> rtts;
    rtts.reserve(1 << 16);
    const int64_t deadline = now_ns() + static_cast<int64_t>(c.seconds * 1e9);
    int64_t t0 = now_ns();
    while (t0 < deadline && rtts.size() < (1u << 22)) {
        rt(seq++);
        note_cpu();
        int64_t t1 = now_ns();
        rtts.push_back(t1 - t0);
        t0 = t1;
    }
    record_round_trips(r, rtts);
}

} // namespace pxipc
