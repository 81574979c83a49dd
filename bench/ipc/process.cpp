// SPDX-License-Identifier: Apache-2.0 OR MIT
// Shared by every role: frames, clocks, pinning, the command line of a role, spawning and
// reaping the follower, and the leader's one-line report.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipc_bench.hpp"

namespace pxipc {

bool g_is_leader = false; // set by main() for the leader role: die() reports on fd 3

namespace {
constexpr int tally_cpus = 64;
struct Tally {
    std::atomic<uint64_t> leader[tally_cpus];
    std::atomic<uint64_t> follower[tally_cpus];
};
Tally *g_tally = nullptr;
int g_tally_fd = -1;

void map_tally(int fd) {
    void *p = mmap(nullptr, sizeof(Tally), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED)
        g_tally = static_cast<Tally *>(p);
}
} // namespace

void tally_create() {
    g_tally_fd = memfd_create("px_bench_tally", MFD_CLOEXEC);
    if (g_tally_fd >= 0 && ftruncate(g_tally_fd, sizeof(Tally)) == 0)
        map_tally(g_tally_fd); // zero-filled: all counts 0
}

void tally_attach(int fd) {
    if (fcntl(fd, F_GETFD) >= 0)
        map_tally(fd);
}

void note_cpu() {
    static uint64_t calls = 0;
    if (!g_tally || calls++ % 16 != 0)
        return;
    int cpu = sched_getcpu();
    if (cpu < 0 || cpu >= tally_cpus)
        return;
    (g_is_leader ? g_tally->leader : g_tally->follower)[cpu].fetch_add(1,
                                                                       std::memory_order_relaxed);
}

double tally_overlap() {
    if (!g_tally)
        return -1;
    double l = 0, f = 0, overlap = 0;
    for (int i = 0; i < tally_cpus; ++i) {
        l += static_cast<double>(g_tally->leader[i].load());
        f += static_cast<double>(g_tally->follower[i].load());
    }
    if (l == 0 || f == 0)
        return -1;
    for (int i = 0; i < tally_cpus; ++i)
        overlap += std::min(static_cast<double>(g_tally->leader[i].load()) / l,
                            static_cast<double>(g_tally->follower[i].load()) / f);
    return overlap;
}

void fill_frame(void *p, size_t n) {
    auto *b = static_cast<unsigned char *>(p);
    for (size_t i = 0; i < n; ++i)
        b[i] = static_cast<unsigned char>(i * 131 + 7);
}

uint64_t read_every_byte(const void *p, size_t n) {
    const auto *b = static_cast<const unsigned char *>(p);
    uint64_t a = 0, c = 0, d = 0, e = 0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) { // four independent sums: the loop is bound by memory
        uint64_t w[4];
        std::memcpy(w, b + i, sizeof w);
        a += w[0];
        c += w[1];
        d += w[2];
        e += w[3];
    }
    for (; i < n; ++i)
        a += b[i];
    return a ^ c ^ d ^ e;
}

uint64_t load_seq(const void *p) {
    uint64_t s;
    std::memcpy(&s, p, sizeof s);
    return s;
}

void store_seq(void *p, uint64_t seq) {
    std::memcpy(p, &seq, sizeof seq);
}

int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (cpu < 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        for (long i = 0; i < n && i < CPU_SETSIZE; ++i)
            CPU_SET(static_cast<int>(i), &set);
    } else {
        CPU_SET(cpu, &set);
    }
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        die("sched_setaffinity(cpu " + std::to_string(cpu) + "): " + std::strerror(errno));
}

std::vector<std::string> case_args(const Case &c) {
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.6f", c.seconds);
    return {"--kind",         c.kind == Kind::pingpong ? "pingpong" : "stream",
            "--transport",    c.transport,
            "--mode",         c.mode.empty() ? "-" : c.mode,
            "--payload",      std::to_string(c.payload),
            "--read-all",     c.read_all ? "1" : "0",
            "--leader-cpu",   std::to_string(c.leader_cpu),
            "--follower-cpu", std::to_string(c.follower_cpu),
            "--seconds",      seconds,
            "--slots",        std::to_string(c.slots)};
}

Case parse_case(const std::vector<std::string> &args, size_t &i) {
    Case c;
    for (; i + 1 < args.size(); i += 2) {
        const std::string &k = args[i], &v = args[i + 1];
        if (k == "--kind")
            c.kind = v == "stream" ? Kind::stream : Kind::pingpong;
        else if (k == "--transport")
            c.transport = v;
        else if (k == "--mode")
            c.mode = v == "-" ? "" : v;
        else if (k == "--payload")
            c.payload = std::strtoull(v.c_str(), nullptr, 10);
        else if (k == "--read-all")
            c.read_all = v == "1";
        else if (k == "--leader-cpu")
            c.leader_cpu = std::atoi(v.c_str());
        else if (k == "--follower-cpu")
            c.follower_cpu = std::atoi(v.c_str());
        else if (k == "--seconds")
            c.seconds = std::atof(v.c_str());
        else if (k == "--slots")
            c.slots = std::strtoull(v.c_str(), nullptr, 10);
        else
            break;
    }
    c.payload = std::max(c.payload, min_payload);
    return c;
}

int spawn_follower(const Case &c, const std::vector<int> &fds) {
    std::vector<std::string> args = {"/proc/self/exe", "--role", "follower"};
    for (auto &a : case_args(c))
        args.push_back(a);
    std::string list;
    for (size_t i = 0; i < fds.size(); ++i)
        list.append(i ? "," : "").append(std::to_string(100 + i));
    args.push_back("--fds");
    args.push_back(list.empty() ? "-" : list);
    std::vector<char *> argv;
    for (auto &a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);

    pid_t pid = fork();
    if (pid < 0)
        die(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        // The follower's fds at 100, 101, ...: first out of the way of each other, then placed.
        std::vector<int> high;
        for (int fd : fds)
            high.push_back(fcntl(fd, F_DUPFD_CLOEXEC, 200));
        for (size_t i = 0; i < high.size(); ++i)
            if (high[i] < 0 || dup2(high[i], static_cast<int>(100 + i)) < 0)
                _exit(126);
        if (g_tally_fd >= 0)
            dup2(g_tally_fd, tally_fd_in_follower);
        close(3); // the leader's result pipe is not the follower's business
        execv("/proc/self/exe", argv.data());
        _exit(127);
    }
    return pid;
}

bool reap(int pid, int timeout_ms) {
    int status = 0;
    for (int waited = 0;; ++waited) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (r < 0)
            return false;
        if (waited >= timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return false;
        }
        timespec ms{0, 1'000'000};
        nanosleep(&ms, nullptr);
    }
}

void report(const Result &r) {
    char line[512];
    if (r.ok)
        std::snprintf(line, sizeof line,
                      "ok samples=%" PRIu64 " p50=%.1f p99=%.1f min=%.1f frames=%" PRIu64
                      " elapsed=%.6f overlap=%.3f\n",
                      r.samples, r.rtt_p50, r.rtt_p99, r.rtt_min, r.frames, r.elapsed_s, r.overlap);
    else {
        std::string e = r.error;
        std::replace(e.begin(), e.end(), '\n', ' ');
        std::snprintf(line, sizeof line, "error %s\n", e.c_str());
    }
    size_t len = std::strlen(line);
    if (write(3, line, len) != static_cast<ssize_t>(len))
        std::fprintf(stderr, "%s", line);
}

void die(const std::string &what) {
    if (g_is_leader) {
        Result r;
        r.error = what;
        report(r);
    } else {
        std::fprintf(stderr, "px_bench_ipc follower: %s\n", what.c_str());
    }
    // The follower (if any) is in our process group; the orchestrator cleans it up.
    _exit(1);
}

void record_round_trips(Result &r, std::vector<int64_t> &rtts) {
    if (rtts.empty())
        die("no round trip completed within the budget");
    std::sort(rtts.begin(), rtts.end());
    auto at = [&](double q) {
        return static_cast<double>(
            rtts[static_cast<size_t>(q * static_cast<double>(rtts.size() - 1))]);
    };
    r.ok = true;
    r.samples = rtts.size();
    r.rtt_p50 = at(0.5);
    r.rtt_p99 = at(0.99);
    r.rtt_min = static_cast<double>(rtts.front());
}

} // namespace pxipc
