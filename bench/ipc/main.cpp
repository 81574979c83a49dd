// SPDX-License-Identifier: Apache-2.0 OR MIT
// px_bench_ipc: handing a frame to another process on this machine, libparallax against the
// transports a user would otherwise pick, every figure measured by this binary in this run.
//
//   px_bench_ipc [--quick] [--reps N] [--sections latency,frames,sweep] [--out DIR]
//                [--no-iceoryx] [--placements unpinned,cross,same] [--check]
//
// Sections (see bench/PERFORMANCE.md for what each side does):
//   latency  one-way latency of a 4 KiB frame = half the median round trip of a ping-pong
//            between two processes, for each core placement;
//   frames   8 MiB frames streamed to a consumer that reads 8 bytes of each / every byte;
//   sweep    4 KiB .. 64 MiB: cost per frame when streaming, and one-way latency.
// Every case runs in fresh processes (a leader that measures and its follower), repetitions of
// all rows of a section are interleaved so that the noise of a shared VM hits every row alike,
// and the figure printed is the median over repetitions.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <poll.h>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "ipc_bench.hpp"
#include "parallax/parallax.h"

using namespace pxipc;

namespace {

constexpr size_t KiB = 1024, MiB = 1024 * KiB;

std::string g_iceoryx_problem;          // non-empty: why the iceoryx rows are not measured
std::string g_case_log;                 // stdout and stderr of every leader and follower
int g_nice = 0;                         // --nice
std::string g_label;                    // --label: which build of the library this is
volatile sig_atomic_t g_case_group = 0; // process group of the case running now
volatile sig_atomic_t g_roudi = 0;      // iox-roudi's pid while it runs

// Ctrl-C or kill: take the running case and iox-roudi down too (they run in process groups of
// their own), so that no busy-polling follower or daemon outlives the benchmark.
extern "C" void on_signal(int sig) {
    if (g_case_group > 0)
        kill(-g_case_group, SIGKILL);
    if (g_roudi > 0) {
        kill(g_roudi, SIGTERM); // it removes its shared memory on SIGTERM
        for (int i = 0; i < 300 && waitpid(g_roudi, nullptr, WNOHANG) == 0; ++i) {
            timespec ten_ms{0, 10'000'000};
            nanosleep(&ten_ms, nullptr);
        }
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

// ---- options -----------------------------------------------------------------------------------

struct Options {
    int reps = 5;         // 8 MiB cases
    int latency_reps = 9; // many short repetitions: the host moves this VM's vCPUs around
    int sweep_reps = 5;
    double latency_s = 0.08; // per repetition of one latency case
    double frames_s = 0.25;  // per repetition of one 8 MiB case
    double sweep_s = 0.12;
    std::vector<std::string> sections = {"latency", "frames", "sweep"};
    std::vector<std::string> placements = {"unpinned", "cross", "same"};
    // Pinned: left to the scheduler, each case of the sweep landed on one core or two by chance
    // (it moved the cost per frame by 2x either way), so the payload would not be the only
    // variable. One core: the placement unpinned processes usually get here, the most stable one,
    // and the socket copy's fastest.
    std::string sweep_placement = "same";
    std::string out = "ipc-results";
    bool iceoryx = true;
    bool check = false;
    int nice = 0; // added to the leaders' and followers' nice value (negative: more CPU share)
};

std::vector<std::string> split(const std::string &s) {
    std::vector<std::string> v;
    std::stringstream in(s);
    for (std::string item; std::getline(in, item, ',');)
        if (!item.empty())
            v.push_back(item);
    return v;
}

bool has(const std::vector<std::string> &v, const std::string &x) {
    return std::find(v.begin(), v.end(), x) != v.end();
}

[[noreturn]] void usage(int code) {
    std::printf(
        "usage: px_bench_ipc [options]\n"
        "  --quick               fewer and shorter repetitions (a smoke test, ~1 minute)\n"
        "  --reps N              repetitions of every case (default: latency 9, others 5)\n"
        "  --sections LIST       latency,frames,sweep (default: all)\n"
        "  --placements LIST     unpinned,cross,same (default: all; 8 MiB frames skip same)\n"
        "  --sweep-placement P   same (default: both on CPU 0), cross or unpinned, for the sweep\n"
        "  --out DIR             where the CSV files and the markdown summary go\n"
        "  --no-iceoryx          skip the iceoryx rows (they then say so)\n"
        "  --nice N              run leaders and followers at nice N (e.g. -10 on a machine\n"
        "                        shared with other work; default: unchanged)\n"
        "  --label TEXT          names the library build in the output (e.g. a commit)\n"
        "  --check               exit 1 when a target is missed\n");
    std::exit(code);
}

Options parse_options(int argc, char **argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc)
                usage(2);
            return argv[++i];
        };
        if (a == "--quick") {
            o.reps = 3;
            o.latency_reps = 3;
            o.sweep_reps = 1;
            o.latency_s = 0.05;
            o.frames_s = 0.1;
            o.sweep_s = 0.08;
        } else if (a == "--reps") {
            o.reps = o.latency_reps = o.sweep_reps = std::max(1, std::atoi(value().c_str()));
        } else if (a == "--sections") {
            o.sections = split(value());
        } else if (a == "--placements") {
            o.placements = split(value());
        } else if (a == "--out") {
            o.out = value();
        } else if (a == "--no-iceoryx") {
            o.iceoryx = false;
        } else if (a == "--check") {
            o.check = true;
        } else if (a == "--sweep-placement") {
            o.sweep_placement = value();
            if (o.sweep_placement != "unpinned" && o.sweep_placement != "cross" &&
                o.sweep_placement != "same")
                usage(2);
        } else if (a == "--label") {
            g_label = value();
        } else if (a == "--nice") {
            o.nice = std::atoi(value().c_str());
        } else {
            usage(a == "--help" || a == "-h" ? 0 : 2);
        }
    }
    return o;
}

// ---- running one case --------------------------------------------------------------------------

Result parse_result(const std::string &line) {
    Result r;
    if (line.rfind("ok ", 0) != 0) {
        r.error = line.rfind("error ", 0) == 0 ? line.substr(6) : "leader died: " + line;
        while (!r.error.empty() && (r.error.back() == '\n' || r.error.back() == ' '))
            r.error.pop_back();
        return r;
    }
    r.ok = true;
    std::stringstream in(line.substr(3));
    for (std::string kv; in >> kv;) {
        auto eq = kv.find('=');
        if (eq == std::string::npos)
            continue;
        std::string k = kv.substr(0, eq);
        double v = std::atof(kv.c_str() + eq + 1);
        if (k == "samples")
            r.samples = static_cast<uint64_t>(v);
        else if (k == "p50")
            r.rtt_p50 = v;
        else if (k == "p99")
            r.rtt_p99 = v;
        else if (k == "min")
            r.rtt_min = v;
        else if (k == "frames")
            r.frames = static_cast<uint64_t>(v);
        else if (k == "elapsed")
            r.elapsed_s = v;
        else if (k == "overlap")
            r.overlap = v;
    }
    return r;
}

Result run_case(const Case &c) {
    if (c.transport == "iceoryx" && !g_iceoryx_problem.empty()) {
        Result r;
        r.error = g_iceoryx_problem;
        return r;
    }
    int res[2];
    if (pipe2(res, O_CLOEXEC) < 0) {
        std::perror("pipe2");
        std::exit(1);
    }
    std::vector<std::string> args = {"/proc/self/exe", "--role", "leader"};
    for (auto &a : case_args(c))
        args.push_back(a);
    std::vector<char *> argv;
    for (auto &a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    std::fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        std::perror("fork");
        std::exit(1);
    }
    if (pid == 0) {
        setpgid(0, 0); // leader and follower: one group, killed together if stuck
        if (g_nice != 0 && setpriority(PRIO_PROCESS, 0, g_nice) != 0)
            std::fprintf(stderr, "px_bench_ipc: setpriority(%d): %s\n", g_nice,
                         std::strerror(errno));
        dup2(res[1], 3);
        int log = open(g_case_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log >= 0) { // iceoryx's runtime logs to stdout; keep the tables readable
            dup2(log, 1);
            dup2(log, 2);
        }
        execv("/proc/self/exe", argv.data());
        _exit(127);
    }
    setpgid(pid, pid);
    g_case_group = pid;
    close(res[1]);
    std::string line;
    // Budget: warm-up, measurement, setup of big pools, iceoryx registration; then give up.
    const int timeout_ms = static_cast<int>(c.seconds * 3000) + 30000;
    int64_t give_up = now_ns() + int64_t{timeout_ms} * 1'000'000;
    for (;;) {
        pollfd p{res[0], POLLIN, 0};
        int left = static_cast<int>((give_up - now_ns()) / 1'000'000);
        if (left <= 0) {
            line = "error timed out after " + std::to_string(timeout_ms / 1000) + " s";
            break;
        }
        int n = poll(&p, 1, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            continue;
        char buf[512];
        ssize_t got = read(res[0], buf, sizeof buf);
        if (got <= 0)
            break;
        line.append(buf, static_cast<size_t>(got));
        if (line.find('\n') != std::string::npos)
            break;
    }
    close(res[0]);
    kill(-pid, SIGKILL); // whatever is left of the group (normally nothing)
    int status = 0;
    waitpid(pid, &status, 0);
    g_case_group = 0;
    if (line.empty())
        line = WIFSIGNALED(status)
                   ? "error leader killed by signal " + std::to_string(WTERMSIG(status))
                   : "error leader exited without a result";
    return parse_result(line);
}

// ---- statistics and formatting -----------------------------------------------------------------

double median(std::vector<double> v) {
    if (v.empty())
        return NAN;
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Spread of repetition medians: (max - min) / median, in percent.
double spread(const std::vector<double> &v) {
    if (v.size() < 2)
        return 0;
    auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    return (*hi - *lo) / median(v) * 100;
}

std::string fmt_time(double ns) {
    char b[32];
    if (std::isnan(ns))
        return "-";
    if (ns < 1000)
        std::snprintf(b, sizeof b, "%.0f ns", ns);
    else if (ns < 1e6)
        std::snprintf(b, sizeof b, "%.2f us", ns / 1e3);
    else
        std::snprintf(b, sizeof b, "%.2f ms", ns / 1e6);
    return b;
}

std::string fmt_rate(double per_s) {
    char b[32];
    if (std::isnan(per_s))
        return "-";
    if (per_s >= 1e6)
        std::snprintf(b, sizeof b, "%.2f M/s", per_s / 1e6);
    else if (per_s >= 1e3)
        std::snprintf(b, sizeof b, "%.1f k/s", per_s / 1e3);
    else
        std::snprintf(b, sizeof b, "%.0f /s", per_s);
    return b;
}

std::string fmt_ratio(double x) {
    char b[32];
    if (std::isnan(x))
        return "-";
    std::snprintf(b, sizeof b, x >= 100 ? "%.0fx" : x >= 10 ? "%.1fx" : "%.2fx", x);
    return b;
}

std::string size_name(size_t n) {
    return n >= MiB ? std::to_string(n / MiB) + " MiB" : std::to_string(n / KiB) + " KiB";
}

std::string pad(const std::string &s, size_t w) {
    return s.size() >= w ? s : s + std::string(w - s.size(), ' ');
}

std::string lpad(const std::string &s, size_t w) {
    return s.size() >= w ? s : std::string(w - s.size(), ' ') + s;
}

// Footnote number (1-based) of "transport: error" in `notes`, added if new: one note per reason.
size_t note_index(std::vector<std::string> &notes, const std::string &transport,
                  const std::string &error) {
    std::string note = transport + ": " + error;
    for (size_t i = 0; i < notes.size(); ++i)
        if (notes[i] == note)
            return i + 1;
    notes.push_back(note);
    return notes.size();
}

// Prints `text` in lines of at most 100 columns, each indented by `indent` spaces.
void print_wrapped(const std::string &text, size_t indent) {
    std::stringstream in(text);
    std::string line, word;
    while (in >> word) {
        if (!line.empty() && indent + line.size() + 1 + word.size() > 100) {
            std::printf("%s%s\n", std::string(indent, ' ').c_str(), line.c_str());
            line.clear();
        }
        line += (line.empty() ? "" : " ") + word;
    }
    if (!line.empty())
        std::printf("%s%s\n", std::string(indent, ' ').c_str(), line.c_str());
}

// Results land in CSV files (for the chart) and a markdown summary (for the README).
struct Outputs {
    std::ofstream latency, frames, sweep, md;
    void open(const std::string &dir) {
        mkdir(dir.c_str(), 0755);
        latency.open(dir + "/ipc_latency.csv");
        latency << "transport,mode,label,placement,payload,rep,rtt_p50_ns,rtt_p99_ns,samples,"
                   "cpu_overlap,error\n";
        frames.open(dir + "/ipc_frames.csv");
        frames << "transport,mode,label,placement,payload,consumer,rep,frames,seconds,"
                  "cpu_overlap,error\n";
        sweep.open(dir + "/ipc_sweep.csv");
        sweep << "transport,mode,label,placement,kind,payload,rep,value,cpu_overlap,error\n";
        md.open(dir + "/ipc_summary.md");
    }
};

// A CSV field, quoted (RFC 4180) when it holds a comma or a quote.
std::string csv_safe(const std::string &s) {
    if (s.find_first_of(",\"\n") == std::string::npos)
        return s;
    std::string q = "\"";
    for (char ch : s) {
        if (ch == '"')
            q += '"';
        q += ch == '\n' ? ' ' : ch;
    }
    return q + "\"";
}

// ---- what is compared ------------------------------------------------------------------------

struct Row {
    std::string label, transport, mode, what; // `what`: one phrase on what crosses
};

std::vector<Row> latency_rows() {
    return {
        {"parallax, spin mode", "parallax", "spin", "buffer descriptor; payload in place"},
        {"parallax, default mode", "parallax", "default", "buffer descriptor; payload in place"},
        {"parallax, blocking mode", "parallax", "blocking", "buffer descriptor; payload in place"},
        {"iceoryx, busy-poll", "iceoryx", "busy", "chunk in shared memory"},
        {"iceoryx, WaitSet", "iceoryx", "waitset", "chunk in shared memory"},
        {"Unix socket (stream)", "socket", "", "4 KiB copied each way"},
        {"pipe", "pipe", "", "4 KiB copied each way"},
        {"eventfd", "eventfd", "", "wake-up only"},
        {"futex (shared memfd)", "futex", "", "wake-up only"},
        {"atomic, busy-poll", "spin", "", "wake-up only (the floor)"},
    };
}

struct Placement {
    std::string key, label;
    int leader, follower;
};

std::vector<Placement> placements(const Options &o) {
    std::vector<Placement> all = {{"unpinned", "unpinned", -1, -1},
                                  {"cross", "cross-core (CPUs 0, 1)", 0, 1},
                                  {"same", "same core (CPU 0)", 0, 0}};
    std::vector<Placement> v;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    for (auto &p : all)
        if (has(o.placements, p.key) && (p.key != "cross" || cpus >= 2))
            v.push_back(p);
    return v;
}

struct Verdict {
    std::string target, measured;
    bool met;
};
std::vector<Verdict> g_verdicts;

void verdict(const std::string &target, double ratio, double limit, bool at_most,
             const std::string &detail) {
    if (std::isnan(ratio)) {
        g_verdicts.push_back({target, "not measured (" + detail + ")", false});
        return;
    }
    bool met = at_most ? ratio <= limit : ratio >= limit;
    g_verdicts.push_back({target, fmt_ratio(ratio) + " (" + detail + ")", met});
}

// ---- section: one-way latency ----------------------------------------------------------------

// How the scheduler placed two unpinned processes, from the median overlap of their CPUs.
std::string where(const std::vector<double> &overlaps) {
    std::vector<double> known;
    for (double o : overlaps)
        if (o >= 0)
            known.push_back(o);
    if (known.empty())
        return "";
    double m = median(known);
    return m >= 0.8 ? " [1 core]" : m <= 0.2 ? " [2 cores]" : " [mixed]";
}

struct LatencyCell {
    std::vector<double> p50, p99, overlap;
    std::string error;
    double one_way() const { return median(p50) / 2; }
    double one_way_p99() const { return median(p99) / 2; }
};

void section_latency(const Options &o, Outputs &out) {
    const size_t payload = 4 * KiB;
    auto rows = latency_rows();
    auto places = placements(o);
    std::map<std::pair<size_t, size_t>, LatencyCell> cells; // (row, placement)
    std::printf("== One-way latency of a %s frame: half the round trip of a ping-pong between two "
                "processes\n   (leader sends, follower answers with a frame of its own; %d "
                "repetitions of %.2f s per cell,\n   interleaved; median of repetition medians)\n",
                size_name(payload).c_str(), o.latency_reps, o.latency_s);
    for (size_t pi = 0; pi < places.size(); ++pi) {
        const Placement &pl = places[pi];
        std::printf("   %s:", pl.label.c_str());
        std::fflush(stdout);
        for (int rep = 0; rep < o.latency_reps; ++rep) {
            for (size_t k = 0; k < rows.size(); ++k) {
                size_t ri = (k + static_cast<size_t>(rep)) % rows.size(); // rotate the order
                const Row &row = rows[ri];
                LatencyCell &cell = cells[{ri, pi}];
                if (!cell.error.empty())
                    continue;
                Case c;
                c.kind = Kind::pingpong;
                c.transport = row.transport;
                c.mode = row.mode;
                c.payload = payload;
                c.leader_cpu = pl.leader;
                c.follower_cpu = pl.follower;
                c.seconds = o.latency_s;
                Result r = run_case(c);
                out.latency << row.transport << "," << row.mode << "," << csv_safe(row.label) << ","
                            << pl.key << "," << payload << "," << rep << "," << r.rtt_p50 << ","
                            << r.rtt_p99 << "," << r.samples << "," << r.overlap << ","
                            << csv_safe(r.error) << "\n";
                if (!r.ok) {
                    cell.error = r.error;
                    continue;
                }
                cell.p50.push_back(r.rtt_p50);
                cell.p99.push_back(r.rtt_p99);
                cell.overlap.push_back(r.overlap);
            }
            std::printf(" %d", rep + 1);
            std::fflush(stdout);
        }
        std::printf("\n");
    }

    // The table: one column per placement, "median (p99)" of the one-way time.
    const size_t w0 = 26, w = 33;
    std::printf("\n%s", pad("transport", w0).c_str());
    for (auto &pl : places)
        std::printf("%s", lpad(pl.label + " p50 (p99)", w).c_str());
    std::printf("   what crosses\n%s\n", std::string(w0 + w * places.size() + 30, '-').c_str());
    out.md << "### One-way latency, " << size_name(payload)
           << " frame (half the round trip of a two-process ping-pong; median, p99 in "
              "parentheses)\n\n| transport |";
    for (auto &pl : places)
        out.md << " " << pl.label << " |";
    out.md << " what crosses |\n|---|";
    for (size_t i = 0; i < places.size(); ++i)
        out.md << "---:|";
    out.md << "---|\n";
    std::vector<std::string> errors;
    for (size_t ri = 0; ri < rows.size(); ++ri) {
        std::printf("%s", pad(rows[ri].label, w0).c_str());
        out.md << "| " << rows[ri].label << " |";
        for (size_t pi = 0; pi < places.size(); ++pi) {
            const LatencyCell &cell = cells[{ri, pi}];
            std::string s;
            if (!cell.error.empty() && cell.p50.empty()) {
                s = "n/a [" + std::to_string(note_index(errors, rows[ri].transport, cell.error)) +
                    "]";
            } else {
                s = fmt_time(cell.one_way()) + " (" + fmt_time(cell.one_way_p99()) + ")";
                if (spread(cell.p50) > 50)
                    s += "~"; // repetitions disagree by more than 50%
                if (places[pi].key == "unpinned")
                    s += where(cell.overlap);
            }
            std::printf("%s", lpad(s, w).c_str());
            out.md << " " << s << " |";
        }
        std::printf("   %s\n", rows[ri].what.c_str());
        out.md << " " << rows[ri].what << " |\n";
    }
    std::printf(
        "(~: repetition medians differ by more than 50%% of their median: noisy; [1 core] / "
        "[2 cores] / [mixed]:\n where the scheduler ran the two unpinned processes, from "
        "the CPUs each noted every 16th message)\n");
    for (size_t i = 0; i < errors.size(); ++i)
        std::printf("[%zu] %s\n", i + 1, errors[i].c_str());
    out.md << "\n";
    for (size_t i = 0; i < errors.size(); ++i)
        out.md << "[" << i + 1 << "] " << errors[i] << "  \n";

    // Ratios and targets, per placement.
    auto find = [&](const std::string &t, const std::string &m) -> size_t {
        for (size_t i = 0; i < rows.size(); ++i)
            if (rows[i].transport == t && rows[i].mode == m)
                return i;
        return 0;
    };
    size_t spin = find("parallax", "spin"), def = find("parallax", "default"),
           blk = find("parallax", "blocking"), iox = find("iceoryx", "busy"),
           sock = find("socket", "");
    std::printf("\nratios (ours / baseline, one-way medians; lower is better):\n");
    out.md << "\nRatios (ours / baseline, one-way medians; lower is better):\n\n"
              "| ratio | target |";
    for (auto &pl : places)
        out.md << " " << pl.label << " |";
    out.md << "\n|---|---|";
    for (size_t i = 0; i < places.size(); ++i)
        out.md << "---:|";
    out.md << "\n";
    struct Check {
        std::string name;
        size_t ours, base;
        double limit;    // NAN: context, not a target
        bool spin_based; // judged only where each process surely has a core of its own
    };
    size_t futex = find("futex", ""), atomic = find("spin", "");
    std::vector<Check> checks = {
        {"parallax spin / iceoryx busy-poll", spin, iox, 0.5, true},
        {"parallax default / iceoryx busy-poll", def, iox, 1.0, true},
        {"parallax blocking / Unix socket", blk, sock, 0.5, false},
        {"floor: atomic busy-poll / iceoryx busy-poll", atomic, iox, NAN, true},
        {"floor: futex / Unix socket", futex, sock, NAN, false},
    };
    for (auto &ck : checks) {
        std::printf("  %s", pad(ck.name, 44).c_str());
        char tgt[32] = "(context)";
        if (!std::isnan(ck.limit))
            std::snprintf(tgt, sizeof tgt, "<= %.1f", ck.limit);
        out.md << "| " << ck.name << " | " << tgt << " |";
        for (size_t pi = 0; pi < places.size(); ++pi) {
            double a = cells[{ck.ours, pi}].one_way(), b = cells[{ck.base, pi}].one_way();
            double ratio = a / b;
            bool judged = !std::isnan(ck.limit) && (!ck.spin_based || places[pi].key == "cross");
            std::string s = fmt_ratio(ratio);
            if (!std::isnan(ratio) && !std::isnan(ck.limit))
                s += judged ? (ratio <= ck.limit ? " met" : " MISSED") : " (info)";
            std::printf("%s",
                        lpad(places[pi].label.substr(0, places[pi].label.find(' ')) + ": " + s, 28)
                            .c_str());
            out.md << " " << s << " |";
            if (judged)
                verdict("one-way latency, " + ck.name + " " + tgt + ", " + places[pi].label, ratio,
                        ck.limit, true, fmt_time(a) + " vs " + fmt_time(b));
        }
        std::printf("\n");
        out.md << "\n";
    }
    const char *note =
        "Spin-based targets are judged cross-core only: on one core a spinning receiver holds "
        "the CPU its sender needs (until preempted, milliseconds), and unpinned processes are "
        "often placed on one core by the scheduler (a waker's core is preferred for the wakee), "
        "so there both parallax's spin mode and iceoryx's busy-poll degrade alike. The floors "
        "are what the hardware and kernel allow: a transport adds its own work on top of them.";
    print_wrapped(std::string("(") + note + ")", 2);
    std::printf("\n");
    out.md << "\n" << note << "\n\n";
}

// ---- section: 8 MiB frames -------------------------------------------------------------------

struct Stream {
    std::vector<double> fps, overlap;
    std::string error;
    double rate() const { return median(fps); }
};

struct FrameRow {
    std::string label, transport, mode;
};

std::vector<FrameRow> frame_rows() {
    return {{"parallax, default mode", "parallax", "default"},
            {"parallax, spin mode", "parallax", "spin"},
            {"iceoryx, busy-poll", "iceoryx", "busy"},
            {"iceoryx, WaitSet", "iceoryx", "waitset"},
            {"Unix socket copy", "socket", ""}};
}

void section_frames(const Options &o, Outputs &out) {
    const size_t payload = 8 * MiB;
    auto rows = frame_rows();
    std::vector<Placement> places;
    for (auto &p : placements(o))
        if (p.key != "same") // two busy processes on one core say nothing about throughput
            places.push_back(p);
    std::map<std::tuple<size_t, int, size_t>, Stream> cells; // (row, read_all, placement)
    std::printf("== %s frames streamed to a consumer process (%zu frames in flight; %d "
                "repetitions of %.2f s, interleaved)\n   consumer reads 8 bytes of each frame "
                "(\"touch\") or every byte (\"read all\");\n   the producer writes the frame's "
                "sequence number (the frame itself was produced in place beforehand)\n",
                size_name(payload).c_str(), Case{}.slots, o.reps, o.frames_s);
    std::printf("   runs:");
    for (int rep = 0; rep < o.reps; ++rep) {
        for (size_t pi = 0; pi < places.size(); ++pi)
            for (int read_all = 0; read_all < 2; ++read_all)
                for (size_t k = 0; k < rows.size(); ++k) {
                    size_t ri = (k + static_cast<size_t>(rep)) % rows.size();
                    Stream &cell = cells[{ri, read_all, pi}];
                    if (!cell.error.empty())
                        continue;
                    Case c;
                    c.kind = Kind::stream;
                    c.transport = rows[ri].transport;
                    c.mode = rows[ri].mode;
                    c.payload = payload;
                    c.read_all = read_all;
                    c.leader_cpu = places[pi].leader;
                    c.follower_cpu = places[pi].follower;
                    c.seconds = o.frames_s;
                    Result r = run_case(c);
                    out.frames << c.transport << "," << c.mode << "," << csv_safe(rows[ri].label)
                               << "," << places[pi].key << "," << payload << ","
                               << (read_all ? "read_all" : "touch") << "," << rep << "," << r.frames
                               << "," << r.elapsed_s << "," << r.overlap << "," << csv_safe(r.error)
                               << "\n";
                    if (!r.ok || r.elapsed_s <= 0) {
                        cell.error = r.error;
                        continue;
                    }
                    cell.fps.push_back(static_cast<double>(r.frames) / r.elapsed_s);
                    cell.overlap.push_back(r.overlap);
                }
        std::printf(" %d", rep + 1);
        std::fflush(stdout);
    }
    std::printf("\n");
    const size_t sock = rows.size() - 1;
    std::vector<std::string> errors;
    for (int read_all = 0; read_all < 2; ++read_all) {
        const char *title = read_all ? "consumer reads every byte" : "consumer reads 8 bytes";
        std::printf("\n-- %s\n%s", title, pad("transport", 26).c_str());
        out.md << "### " << size_name(payload) << " frames streamed to another process, " << title
               << " (median frames/s; ratio against the Unix socket copy)\n\n| transport |";
        for (auto &pl : places) {
            std::printf("%s%s%s%s",
                        lpad(pl.label.substr(0, pl.label.find(' ')) + " frames/s", 27).c_str(),
                        lpad("GB/s", 7).c_str(), lpad("per frame", 12).c_str(),
                        lpad("vs socket", 11).c_str());
            out.md << " " << pl.label << " frames/s | GB/s | per frame | vs socket |";
        }
        std::printf("\n%s\n", std::string(26 + 57 * places.size(), '-').c_str());
        out.md << "\n|---|";
        for (size_t i = 0; i < places.size(); ++i)
            out.md << "---:|---:|---:|---:|";
        out.md << "\n";
        for (size_t ri = 0; ri < rows.size(); ++ri) {
            std::printf("%s", pad(rows[ri].label, 26).c_str());
            out.md << "| " << rows[ri].label << " |";
            for (size_t pi = 0; pi < places.size(); ++pi) {
                const Stream &cell = cells[{ri, read_all, pi}];
                const std::string placed =
                    places[pi].key == "unpinned" ? where(cell.overlap) : std::string();
                const Stream &base = cells[{sock, read_all, pi}];
                if (cell.fps.empty()) {
                    std::string n =
                        "n/a [" +
                        std::to_string(note_index(errors, rows[ri].transport, cell.error)) + "]";
                    std::printf("%s%s%s%s", lpad(n, 27).c_str(), lpad("-", 7).c_str(),
                                lpad("-", 12).c_str(), lpad("-", 11).c_str());
                    out.md << " " << n << " | - | - | - |";
                    continue;
                }
                double fps = cell.rate();
                std::string ratio = fmt_ratio(fps / base.rate());
                char gbs[16];
                std::snprintf(gbs, sizeof gbs, "%.1f", fps * static_cast<double>(payload) / 1e9);
                std::printf("%s%s%s%s", lpad(fmt_rate(fps) + placed, 27).c_str(),
                            lpad(gbs, 7).c_str(), lpad(fmt_time(1e9 / fps), 12).c_str(),
                            lpad(ratio, 11).c_str());
                out.md << " " << fmt_rate(fps) << placed << " | " << gbs << " | "
                       << fmt_time(1e9 / fps) << " | " << ratio << " |";
            }
            std::printf("\n");
            out.md << "\n";
        }
        out.md << "\n";
    }
    std::printf("(GB/s: frame bytes handed over per second; with \"touch\" the consumer reads 8 "
                "of them)\n");
    for (size_t i = 0; i < errors.size(); ++i) {
        std::printf("[%zu] %s\n", i + 1, errors[i].c_str());
        out.md << "[" << i + 1 << "] " << errors[i] << "  \n";
    }
    for (size_t pi = 0; pi < places.size(); ++pi) {
        double ours = cells[{0, 0, pi}].rate(), base = cells[{sock, 0, pi}].rate();
        verdict("8 MiB frames, consumer touching the frame: parallax default >= 500x socket "
                "copy, " +
                    places[pi].label,
                ours / base, 500, false, fmt_rate(ours) + " vs " + fmt_rate(base));
    }
    std::printf("\n");
    out.md << "\n";
}

// ---- section: payload sweep ------------------------------------------------------------------

void section_sweep(const Options &o, Outputs &out) {
    std::vector<size_t> sizes;
    for (size_t s = 4 * KiB; s <= 64 * MiB; s *= 4)
        sizes.push_back(s);
    struct SweepRow {
        std::string label, transport, mode;
    };
    std::vector<SweepRow> rows = {{"parallax (default mode)", "parallax", "default"},
                                  {"iceoryx (WaitSet)", "iceoryx", "waitset"},
                                  {"Unix socket copy", "socket", ""}};
    // (row, size, kind) -> values; kind 0 = stream frames/s, 1 = ping-pong round trip ns
    std::map<std::tuple<size_t, size_t, int>, std::vector<double>> vals;
    std::map<std::tuple<size_t, size_t, int>, std::string> errs;
    std::map<std::pair<size_t, int>, std::vector<int>> placed; // (row, kind) -> 0/1/2 per case
    Placement pl{"unpinned", "unpinned", -1, -1};
    for (auto &p : placements(Options{}))
        if (p.key == o.sweep_placement)
            pl = p;
    std::printf("== Payload sweep %s .. %s (%s; %d repetition(s) of %.2f s per point)\n"
                "   cost per frame = 1 / frames per second of a stream whose consumer reads 8 "
                "bytes of each frame;\n   latency = half the round trip of a ping-pong of that "
                "frame\n   sizes:",
                size_name(sizes.front()).c_str(), size_name(sizes.back()).c_str(), pl.label.c_str(),
                o.sweep_reps, o.sweep_s);
    for (size_t si = 0; si < sizes.size(); ++si) {
        for (int rep = 0; rep < o.sweep_reps; ++rep)
            for (size_t ri = 0; ri < rows.size(); ++ri)
                for (int kind = 0; kind < 2; ++kind) {
                    auto key = std::make_tuple(ri, si, kind);
                    if (errs.count(key))
                        continue;
                    Case c;
                    c.kind = kind == 0 ? Kind::stream : Kind::pingpong;
                    c.transport = rows[ri].transport;
                    c.mode = rows[ri].mode;
                    c.payload = sizes[si];
                    c.seconds = o.sweep_s;
                    c.leader_cpu = pl.leader;
                    c.follower_cpu = pl.follower;
                    Result r = run_case(c);
                    if (r.ok && r.overlap >= 0)
                        placed[{ri, kind}].push_back(r.overlap >= 0.8   ? 1
                                                     : r.overlap <= 0.2 ? 2
                                                                        : 0);
                    double v = !r.ok       ? NAN
                               : kind == 0 ? static_cast<double>(r.frames) / r.elapsed_s
                                           : r.rtt_p50;
                    out.sweep << c.transport << "," << c.mode << "," << csv_safe(rows[ri].label)
                              << "," << pl.key << ","
                              << (kind == 0 ? "stream_fps" : "pingpong_rtt_ns") << "," << sizes[si]
                              << "," << rep << "," << v << "," << r.overlap << ","
                              << csv_safe(r.error) << "\n";
                    if (!r.ok)
                        errs[key] = r.error;
                    else
                        vals[key].push_back(v);
                }
        std::printf(" %s", size_name(sizes[si]).c_str());
        std::fflush(stdout);
    }
    std::printf("\n\n");
    const size_t sock = rows.size() - 1;
    std::printf("%s", pad("payload", 10).c_str());
    for (auto &r : rows)
        std::printf("%s", lpad(r.label.substr(0, r.label.find(' ')) + " cost", 16).c_str());
    std::printf("%s", lpad("socket/px", 11).c_str());
    for (auto &r : rows)
        std::printf("%s", lpad(r.label.substr(0, r.label.find(' ')) + " 1-way", 16).c_str());
    std::printf("\n%s\n", std::string(10 + 32 * rows.size() + 11, '-').c_str());
    out.md << "### Payload sweep: cost per frame when streaming (1 / frames per second, consumer "
              "reads 8 bytes of each frame) and one-way latency\n\n| payload |";
    for (auto &r : rows)
        out.md << " " << r.label << " cost/frame |";
    out.md << " socket / parallax |";
    for (auto &r : rows)
        out.md << " " << r.label << " one-way |";
    out.md << "\n|---|";
    for (size_t i = 0; i < 2 * rows.size() + 1; ++i)
        out.md << "---:|";
    out.md << "\n";
    std::vector<std::string> errors;
    auto cell = [&](size_t ri, size_t si, int kind) -> std::string {
        auto key = std::make_tuple(ri, si, kind);
        if (vals[key].empty()) {
            std::string e = errs[key];
            for (size_t i = 0; i < errors.size(); ++i)
                if (errors[i] == rows[ri].label + ": " + e)
                    return "n/a [" + std::to_string(i + 1) + "]";
            errors.push_back(rows[ri].label + ": " + e);
            return "n/a [" + std::to_string(errors.size()) + "]";
        }
        double v = median(vals[key]);
        return kind == 0 ? fmt_time(1e9 / v) : fmt_time(v / 2);
    };
    for (size_t si = 0; si < sizes.size(); ++si) {
        std::printf("%s", pad(size_name(sizes[si]), 10).c_str());
        out.md << "| " << size_name(sizes[si]) << " |";
        for (size_t ri = 0; ri < rows.size(); ++ri) {
            std::string s = cell(ri, si, 0);
            std::printf("%s", lpad(s, 16).c_str());
            out.md << " " << s << " |";
        }
        double ratio = median(vals[{0, si, 0}]) / median(vals[{sock, si, 0}]);
        std::printf("%s", lpad(fmt_ratio(ratio), 11).c_str());
        out.md << " " << fmt_ratio(ratio) << " |";
        for (size_t ri = 0; ri < rows.size(); ++ri) {
            std::string s = cell(ri, si, 1);
            std::printf("%s", lpad(s, 16).c_str());
            out.md << " " << s << " |";
        }
        std::printf("\n");
        out.md << "\n";
    }
    for (size_t i = 0; i < errors.size(); ++i) {
        std::printf("[%zu] %s\n", i + 1, errors[i].c_str());
        out.md << "\n[" << i + 1 << "] " << errors[i] << "  ";
    }
    if (pl.key == "unpinned") {
        std::printf("where the scheduler ran the two processes (cases on 1 core / 2 cores / "
                    "mixed):\n");
        out.md << "\nWhere the scheduler ran the two processes (cases on 1 core / 2 cores / "
                  "mixed):";
        for (size_t ri = 0; ri < rows.size(); ++ri)
            for (int kind = 0; kind < 2; ++kind) {
                int n[3] = {0, 0, 0};
                for (int k : placed[{ri, kind}])
                    ++n[k];
                char line[160];
                std::snprintf(line, sizeof line, "%s, %s: %d / %d / %d", rows[ri].label.c_str(),
                              kind == 0 ? "stream" : "ping-pong", n[1], n[2], n[0]);
                std::printf("  %s\n", line);
                out.md << (ri || kind ? "; " : " ") << line;
            }
        out.md << ".\n\n";
    }
    double c_small = 1e9 / median(vals[{0, 0, 0}]);
    double c_big = 1e9 / median(vals[{0, sizes.size() - 1, 0}]);
    verdict("sweep: parallax cost per frame at 64 MiB <= 1.5x the cost at 4 KiB", c_big / c_small,
            1.5, true, fmt_time(c_big) + " vs " + fmt_time(c_small));
    std::printf("\n");
    out.md << "\n\n";
}

// ---- context -----------------------------------------------------------------------------------

std::string first_line_of(const char *path, const std::string &prefix = "") {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
        if (prefix.empty() || line.rfind(prefix, 0) == 0)
            return prefix.empty() ? line : line.substr(line.find(':') + 2);
    return "unknown";
}

std::string context_line() {
    utsname u{};
    uname(&u);
    char b[512];
    std::snprintf(
        b, sizeof b, "%s, %ld CPUs, Linux %s; libparallax %s%s; iceoryx %s; load average %s%s",
        first_line_of("/proc/cpuinfo", "model name").c_str(), sysconf(_SC_NPROCESSORS_ONLN),
        u.release, px_version_string(), g_label.empty() ? "" : (" (" + g_label + ")").c_str(),
        g_iceoryx_problem.empty() ? iceoryx_version().c_str() : "not measured",
        first_line_of("/proc/loadavg").substr(0, 14).c_str(),
        g_nice ? ("; processes at nice " + std::to_string(g_nice)).c_str() : "");
    return b;
}

int orchestrate(const Options &o) {
    Outputs out;
    out.open(o.out);
    g_case_log = o.out + "/cases.log";
    g_nice = o.nice;
    unlink(g_case_log.c_str());
    g_iceoryx_problem = iceoryx_build_problem();
    if (!o.iceoryx)
        g_iceoryx_problem = "skipped (--no-iceoryx)";
    int roudi = -1;
    if (g_iceoryx_problem.empty()) {
        std::vector<size_t> sizes = {4 * KiB};
        if (has(o.sections, "frames"))
            sizes.push_back(8 * MiB);
        if (has(o.sections, "sweep"))
            for (size_t s = 4 * KiB; s <= 64 * MiB; s *= 4)
                if (s != 4 * KiB)
                    sizes.push_back(s);
        std::sort(sizes.begin(), sizes.end());
        std::string why;
        roudi = roudi_start(o.out, sizes, why);
        g_roudi = roudi > 0 ? roudi : 0;
        if (roudi < 0)
            g_iceoryx_problem = "iox-roudi could not start: " + why;
    }
    std::string ctx = context_line();
    std::printf("px_bench_ipc: %s\n", ctx.c_str());
#if !defined(__OPTIMIZE__)
    std::printf("WARNING: not an optimised build; the figures mean little.\n");
#endif
    if (!g_iceoryx_problem.empty())
        std::printf("iceoryx rows: %s\n", g_iceoryx_problem.c_str());
    std::printf("\n");
    out.md << "<!-- generated by bench/run_ipc_benchmarks.sh (px_bench_ipc) -->\n"
           << "Measured on: " << ctx << "\n\n";
    int64_t t0 = now_ns();
    if (has(o.sections, "latency"))
        section_latency(o, out);
    if (has(o.sections, "frames"))
        section_frames(o, out);
    if (has(o.sections, "sweep"))
        section_sweep(o, out);
    g_roudi = 0;
    roudi_stop(roudi);

    std::printf("== Targets\n");
    out.md << "### Targets\n\n| target | measured | |\n|---|---|---|\n";
    int missed = 0;
    for (auto &v : g_verdicts) {
        std::printf("  %-7s %s: %s\n", v.met ? "met" : "MISSED", v.target.c_str(),
                    v.measured.c_str());
        out.md << "| " << v.target << " | " << v.measured << " | " << (v.met ? "met" : "**missed**")
               << " |\n";
        missed += !v.met;
    }
    std::printf("\n%zu targets, %d missed; %.0f s; load average at the end %s\n", g_verdicts.size(),
                missed, static_cast<double>(now_ns() - t0) / 1e9,
                first_line_of("/proc/loadavg").substr(0, 14).c_str());
    std::printf("results: %s/ipc_{latency,frames,sweep}.csv, %s/ipc_summary.md (processes' own "
                "output: %s)\n",
                o.out.c_str(), o.out.c_str(), g_case_log.c_str());
    return o.check && missed ? 1 : 0;
}

} // namespace

int main(int argc, char **argv) {
    if (argc > 2 && std::string(argv[1]) == "--role") {
        std::vector<std::string> args(argv + 3, argv + argc);
        size_t i = 0;
        Case c = parse_case(args, i);
        std::string role = argv[2];
        if (role == "leader") {
            g_is_leader = true;
            pin_to(c.leader_cpu);
            tally_create();
            Result r = c.transport == "parallax"  ? parallax_leader(c)
                       : c.transport == "iceoryx" ? iceoryx_leader(c)
                                                  : posix_leader(c);
            r.overlap = tally_overlap(); // every leader has reaped its follower by now
            report(r);
            return 0;
        }
        std::vector<int> fds;
        if (i + 1 < args.size() && args[i] == "--fds" && args[i + 1] != "-")
            for (auto &f : split(args[i + 1]))
                fds.push_back(std::atoi(f.c_str()));
        pin_to(c.follower_cpu);
        tally_attach(tally_fd_in_follower);
        return c.transport == "parallax"  ? parallax_follower(c, fds)
               : c.transport == "iceoryx" ? iceoryx_follower(c, fds)
                                          : posix_follower(c, fds);
    }
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    for (int sig : {SIGINT, SIGTERM, SIGHUP})
        signal(sig, on_signal);
    return orchestrate(parse_options(argc, argv));
}
