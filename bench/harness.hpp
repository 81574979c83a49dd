// SPDX-License-Identifier: Apache-2.0 OR MIT
// A small comparison harness: every row runs our code and the baseline a user would otherwise
// pick, interleaved in the same process, and prints both medians and their ratio.
//
// Why not Google Benchmark: it reports one benchmark per line, so "ours vs baseline from the
// same run" would need post-processing; this harness also alternates the two sides repetition
// by repetition, so drift on a noisy VM (frequency, neighbours) hits both sides alike.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <limits>
#include <string>
#include <sys/resource.h>
#include <vector>

namespace pxbench {

using Clock = std::chrono::steady_clock;

// Minor page faults of this process so far (first touches of fresh memory).
inline double minor_faults() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_minflt);
}

inline double elapsed_ns(Clock::time_point since) {
    return std::chrono::duration<double, std::nano>(Clock::now() - since).count();
}

// CPU time of the calling thread (user + system, so page faults count). One-thread rows use it
// rather than the wall clock: time the thread spends descheduled on a busy machine is not the
// cost of the operation, and on a 2-core VM shared with builds it can be most of the wall time.
class ThreadCpuTimer {
  public:
    ThreadCpuTimer() noexcept : start_(now()) {}
    double elapsed_ns() const noexcept { return now() - start_; }

  private:
    static double now() noexcept {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
    }
    double start_;
};

// Makes the compiler believe `p` (and whatever it points to) is read and may be modified:
// allocations cannot be elided and stores into them are not dead.
inline void escape(const void *p) {
    asm volatile("" : : "g"(p) : "memory");
}

constexpr size_t page_bytes = 4096;

// The one way both sides use the memory they get: one byte written per 4 KiB page, so a fresh
// mapping pays its page faults and a reused one does not. Identical code on both sides.
inline void touch_pages(void *p, size_t len) {
    auto *bytes = static_cast<volatile unsigned char *>(p);
    for (size_t off = 0; off < len; off += page_bytes)
        bytes[off] = static_cast<unsigned char>(off >> 12);
    escape(p);
}

// Runs `iters` operations and returns the elapsed nanoseconds of the timed part (a side may
// exclude its setup, or time its own threads).
using Side = std::function<double(uint64_t iters)>;

struct Target {
    double max_ns = std::numeric_limits<double>::infinity(); // our median must be <= this
    double min_ratio = 0;                                    // baseline / ours must be >= this
    bool any() const { return std::isfinite(max_ns) || min_ratio > 0; }
};

struct Options {
    int reps = 15;      // repetitions per side (medians are taken over these)
    double rep_ms = 20; // target duration of one repetition of one side
    std::string filter; // substring of the row name; empty = all
    bool check = false; // exit status 1 when a target is missed
};

struct Row {
    std::string name;
    std::string baseline; // what the baseline is, in a few words
    double ours_ns = 0, base_ns = 0;
    double ours_spread = 0, base_spread = 0; // (p75 - p25) / median
    double ours_faults = 0, base_faults = 0; // minor page faults per operation (median)
    Target target;
    bool met = true;
};

inline std::string format_ns(double ns) {
    char buf[32];
    if (ns < 1000)
        std::snprintf(buf, sizeof buf, "%.1f ns", ns);
    else if (ns < 1e6)
        std::snprintf(buf, sizeof buf, "%.2f us", ns / 1e3);
    else
        std::snprintf(buf, sizeof buf, "%.2f ms", ns / 1e6);
    return buf;
}

inline double quantile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    double pos = q * static_cast<double>(v.size() - 1);
    size_t lo = static_cast<size_t>(pos);
    size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

class Runner {
  public:
    explicit Runner(Options o) : opt_(std::move(o)) {}

    bool selected(const std::string &name) const {
        return opt_.filter.empty() || name.find(opt_.filter) != std::string::npos;
    }

    // Measures one row. `granule`: iteration counts are multiples of it (e.g. a burst of 64).
    void compare(const std::string &name, const std::string &baseline, const Side &ours,
                 const Side &base, Target target = {}, uint64_t granule = 1) {
        if (!selected(name))
            return;
        uint64_t n_ours = calibrate(ours, granule);
        uint64_t n_base = calibrate(base, granule);
        std::vector<double> o, b, of, bf;
        auto once = [](const Side &side, uint64_t n, std::vector<double> &ns,
                       std::vector<double> &faults) {
            double f0 = minor_faults();
            ns.push_back(side(n) / static_cast<double>(n));
            faults.push_back((minor_faults() - f0) / static_cast<double>(n));
        };
        for (int r = 0; r < opt_.reps; ++r) {
            // Alternate who goes first, so neither side always runs right after the other.
            if (r % 2 == 0) {
                once(ours, n_ours, o, of);
                once(base, n_base, b, bf);
            } else {
                once(base, n_base, b, bf);
                once(ours, n_ours, o, of);
            }
        }
        Row row{name, baseline, quantile(o, 0.5), quantile(b, 0.5), 0, 0, 0, 0, target, true};
        row.ours_faults = quantile(of, 0.5);
        row.base_faults = quantile(bf, 0.5);
        row.ours_spread = (quantile(o, 0.75) - quantile(o, 0.25)) / row.ours_ns;
        row.base_spread = (quantile(b, 0.75) - quantile(b, 0.25)) / row.base_ns;
        row.met = row.ours_ns <= target.max_ns && row.base_ns / row.ours_ns >= target.min_ratio;
        print(row);
        rows_.push_back(row);
    }

    void header() const {
        std::printf("%-44s %12s %12s %10s  %s\n", "case (per operation, medians)", "parallax",
                    "baseline", "base/ours", "target");
        std::printf("%s\n", std::string(100, '-').c_str());
    }

    // Exit status: 1 when --check was given and a target was missed.
    int finish() const {
        int missed = 0;
        for (const Row &r : rows_)
            missed += r.target.any() && !r.met;
        std::printf("%s\n", std::string(100, '-').c_str());
        std::printf("%zu rows, %d repetitions per side, targets missed: %d\n", rows_.size(),
                    opt_.reps, missed);
        return opt_.check && missed ? 1 : 0;
    }

    const Options &options() const { return opt_; }

  private:
    // Smallest multiple of `granule` that makes one repetition last about rep_ms.
    uint64_t calibrate(const Side &side, uint64_t granule) const {
        uint64_t n = granule;
        side(n); // warm-up: first-touch faults, allocator arenas, caches
        for (;;) {
            double ns = side(n);
            if (ns >= opt_.rep_ms * 1e6 / 8 || n >= (uint64_t{1} << 40)) {
                double want = static_cast<double>(n) * opt_.rep_ms * 1e6 / std::max(ns, 1.0);
                uint64_t m =
                    std::max<uint64_t>(granule, static_cast<uint64_t>(want) / granule * granule);
                return m;
            }
            n *= 4;
        }
    }

    static void print(const Row &r) {
        std::string target = "-";
        if (r.target.any()) {
            target.clear();
            if (std::isfinite(r.target.max_ns))
                target += "<= " + format_ns(r.target.max_ns);
            if (r.target.min_ratio > 0) {
                char buf[32];
                std::snprintf(buf, sizeof buf, "%s>= %.1fx", target.empty() ? "" : ", ",
                              r.target.min_ratio);
                target += buf;
            }
            target += r.met ? ": met" : ": MISSED";
        }
        char ratio[32];
        std::snprintf(ratio, sizeof ratio, "%.2fx", r.base_ns / r.ours_ns);
        std::printf("%-44s %12s %12s %10s  %s\n", r.name.c_str(), format_ns(r.ours_ns).c_str(),
                    format_ns(r.base_ns).c_str(), ratio, target.c_str());
        std::printf("%-44s %11.0f%% %11.0f%%             baseline: %s\n", "  spread (IQR/median)",
                    r.ours_spread * 100, r.base_spread * 100, r.baseline.c_str());
        if (r.ours_faults >= 0.01 || r.base_faults >= 0.01)
            std::printf("%-44s %12.2f %12.2f\n", "  page faults per operation", r.ours_faults,
                        r.base_faults);
        std::fflush(stdout);
    }

    Options opt_;
    std::vector<Row> rows_;
};

inline Options parse_options(int argc, char **argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](const char *flag) -> const char * {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", flag);
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--reps")
            o.reps = std::max(1, std::atoi(value("--reps")));
        else if (a == "--rep-ms")
            o.rep_ms = std::max(0.1, std::atof(value("--rep-ms")));
        else if (a == "--filter")
            o.filter = value("--filter");
        else if (a == "--check")
            o.check = true;
        else if (a == "--quick") {
            o.reps = 5;
            o.rep_ms = 5;
        } else {
            std::fprintf(stderr,
                         "usage: %s [--reps N] [--rep-ms MS] [--filter SUBSTRING] [--quick] "
                         "[--check]\n"
                         "  --reps N      repetitions per side, medians over them (default 15)\n"
                         "  --rep-ms MS   duration of one repetition of one side (default 20)\n"
                         "  --quick       --reps 5 --rep-ms 5\n"
                         "  --check       exit 1 when a target is missed\n",
                         argv[0]);
            std::exit(a == "--help" || a == "-h" ? 0 : 2);
        }
    }
    return o;
}

} // namespace pxbench
