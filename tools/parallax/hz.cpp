// SPDX-License-Identifier: Apache-2.0 OR MIT
// parallax hz NAME: subscribes to a stream like any subscriber, releases each frame at once,
// and prints what it sees once a second (rate, frame sizes, gaps over the last --window
// seconds), then a summary when it stops (Ctrl-C, --count frames, or the stream ended).
//
// Two kinds of gap are told apart: `missed`, frames of the stream this subscriber had no room
// for (the library counts them from gaps in the stream's own numbering), and `seq_skipped`,
// numbers missing from the producer's own metadata.sequence (frames that never reached the
// publisher, e.g. a camera's drops; 0 for a producer that does not number its frames).
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <deque>
#include <string>
#include <time.h>

#include "cli.hpp"
#include "json.hpp"

namespace px_cli {
namespace {

constexpr int64_t ns_per_s = 1'000'000'000;
constexpr int64_t print_interval_ns = ns_per_s;
// The longest recv waits between looks at the Ctrl-C flag.
constexpr int64_t max_wait_ns = 100'000'000;

volatile std::sig_atomic_t interrupted = 0;

void on_signal(int) {
    interrupted = 1;
}

// SIGINT and SIGTERM end the measurement with its summary (no SA_RESTART: a wait returns).
void catch_stop_signals() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * ns_per_s + ts.tv_nsec;
}

struct Sample {
    int64_t t_ns;
    uint64_t bytes;
    uint64_t missed;      // frames of the stream missed just before this one
    uint64_t seq_skipped; // producer sequence numbers missing just before this one
};

// Figures over some frames and the time they span.
struct Figures {
    uint64_t frames = 0;
    uint64_t bytes_min = 0;
    uint64_t bytes_max = 0;
    uint64_t bytes_total = 0;
    uint64_t missed = 0;
    uint64_t seq_skipped = 0;
    double span_s = 0;

    void add(const Sample &s) {
        bytes_min = frames ? std::min(bytes_min, s.bytes) : s.bytes;
        bytes_max = std::max(bytes_max, s.bytes);
        bytes_total += s.bytes;
        missed += s.missed;
        seq_skipped += s.seq_skipped;
        ++frames;
    }
    double rate_hz() const { return span_s > 0 ? static_cast<double>(frames) / span_s : 0.0; }
    double bytes_mean() const {
        return frames ? static_cast<double>(bytes_total) / static_cast<double>(frames) : 0.0;
    }
};

// The frames of the last window_ns, and the totals since the start.
class Meter {
  public:
    Meter(int64_t start_ns, int64_t window_ns) : start_ns_(start_ns), window_ns_(window_ns) {}

    void add(const Sample &s) {
        recent_.push_back(s);
        total_.add(s);
    }
    Figures window(int64_t now) {
        while (!recent_.empty() && recent_.front().t_ns <= now - window_ns_)
            recent_.pop_front();
        Figures f;
        for (const Sample &s : recent_)
            f.add(s);
        f.span_s = static_cast<double>(std::min(window_ns_, now - start_ns_)) / ns_per_s;
        return f;
    }
    Figures total(int64_t now) const {
        Figures f = total_;
        f.span_s = static_cast<double>(now - start_ns_) / ns_per_s;
        return f;
    }

  private:
    const int64_t start_ns_;
    const int64_t window_ns_;
    std::deque<Sample> recent_;
    Figures total_;
};

// What a received frame adds to the meter; tracks the missed count and the producer's numbering.
class FrameReader {
  public:
    explicit FrameReader(px_subscriber_t *sub) : sub_(sub) {}

    // Releases the frame at once (hz must never hold up the publisher's slots).
    Sample take(px_buffer_t *buf, int64_t t_ns) {
        px_metadata_t meta;
        px_metadata_init(&meta);
        px_buffer_metadata(buf, &meta);
        Sample s{t_ns, px_buffer_len(buf), 0, 0};
        px_buffer_release(buf);
        px_subscriber_stats_t st{};
        if (px_subscriber_get_stats(sub_, &st) == PX_OK) {
            s.missed = st.missed - missed_;
            missed_ = st.missed;
        }
        // Only a jump forward is a gap: a producer that restarts its numbering, or does not
        // number frames at all (every sequence 0), skips nothing.
        if (have_seq_ && meta.sequence > last_seq_ + 1)
            s.seq_skipped = meta.sequence - last_seq_ - 1;
        last_seq_ = meta.sequence;
        have_seq_ = true;
        return s;
    }

  private:
    px_subscriber_t *sub_;
    uint64_t missed_ = 0;
    uint64_t last_seq_ = 0;
    bool have_seq_ = false;
};

std::string figures_json(const std::string &name, const Figures &f, double elapsed_s) {
    return JsonObject()
        .field("stream", name)
        .field("elapsed_s", elapsed_s)
        .field("span_s", f.span_s)
        .field("frames", f.frames)
        .field("rate_hz", f.rate_hz())
        .field("bytes_min", f.bytes_min)
        .field("bytes_mean", f.bytes_mean())
        .field("bytes_max", f.bytes_max)
        .field("missed", f.missed)
        .field("seq_skipped", f.seq_skipped)
        .str();
}

std::string figures_text(const Figures &f) {
    char line[256];
    std::snprintf(
        line, sizeof line,
        "%.2f Hz, %llu frames in %.2f s, %.0f B mean (min %llu, max %llu), missed %llu, "
        "seq skipped %llu",
        f.rate_hz(), static_cast<unsigned long long>(f.frames), f.span_s, f.bytes_mean(),
        static_cast<unsigned long long>(f.bytes_min), static_cast<unsigned long long>(f.bytes_max),
        static_cast<unsigned long long>(f.missed), static_cast<unsigned long long>(f.seq_skipped));
    return line;
}

void print_window(const Common &c, const std::string &name, const Figures &f, double elapsed_s) {
    if (c.json) {
        // One object per line; "summary": false tells a line from the last one.
        std::string obj = figures_json(name, f, elapsed_s);
        obj.insert(1, "\"summary\":false,");
        std::printf("%s\n", obj.c_str());
    } else {
        std::printf("%s: %s\n", name.c_str(), figures_text(f).c_str());
    }
    std::fflush(stdout); // a reader at the end of a pipe sees each line when it is printed
}

void print_summary(const Common &c, const std::string &name, const Figures &f, const char *end) {
    if (c.json) {
        std::string obj = figures_json(name, f, f.span_s);
        obj.insert(1, "\"summary\":true,\"end\":" + json_string(end) + ",");
        std::printf("%s\n", obj.c_str());
    } else {
        std::printf("%s: total: %s (%s)\n", name.c_str(), figures_text(f).c_str(), end);
    }
    std::fflush(stdout);
}

// Subscribes, or reports why not (no such stream, a publisher that never admits us, full).
int subscribe(const std::string &name, const HzOptions &o, px_subscriber_t **sub) {
    // A stream that does not exist is said so at once, rather than waited for.
    px_publisher_stats_t st{};
    if (px_status_t rc = px_stream_stats(name.c_str(), 500'000'000, &st); rc != PX_OK)
        return report_failure("px_stream_stats", rc, name);
    const auto timeout_ns = static_cast<int64_t>(o.timeout_s * ns_per_s);
    const px_status_t rc = px_subscriber_new(name.c_str(), timeout_ns, sub);
    if (rc == PX_E_TIMEOUT) {
        std::fprintf(stderr,
                     "parallax: the publisher of \"%s\" did not admit this subscriber within "
                     "%g s (a publisher admits inside its publish and poll calls: is it "
                     "publishing or polling?)\n",
                     name.c_str(), o.timeout_s);
        return exit_failed;
    }
    return rc == PX_OK ? exit_ok : report_failure("px_subscriber_new", rc, name);
}

} // namespace

int run_hz(const Common &c, const std::string &name, const HzOptions &o) {
    catch_stop_signals();
    px_subscriber_t *sub = nullptr;
    if (int status = subscribe(name, o, &sub); status != exit_ok)
        return status;
    const int64_t start = now_ns();
    Meter meter(start, static_cast<int64_t>(o.window_s * ns_per_s));
    FrameReader reader(sub);
    int64_t next_print = start + print_interval_ns;
    uint64_t frames = 0;
    const char *end = nullptr;
    int status = exit_ok;
    while (!end) {
        if (interrupted) {
            end = "interrupted";
            break;
        }
        const int64_t wait = std::clamp<int64_t>(next_print - now_ns(), 0, max_wait_ns);
        px_buffer_t *buf = nullptr;
        const px_status_t rc = px_subscriber_recv(sub, wait, &buf);
        const int64_t now = now_ns();
        if (rc == PX_OK) {
            meter.add(reader.take(buf, now));
            if (o.count && ++frames >= o.count)
                end = "count";
        } else if (rc == PX_E_CLOSED) {
            end = "closed";
        } else if (rc != PX_E_TIMEOUT && rc != PX_E_WOULD_BLOCK) {
            status = report_failure("px_subscriber_recv", rc, name);
            end = "failed";
        }
        if (!end && now >= next_print) {
            print_window(c, name, meter.window(now), static_cast<double>(now - start) / ns_per_s);
            // A late wake-up prints once, not once per second it missed.
            while (next_print <= now)
                next_print += print_interval_ns;
        }
    }
    print_summary(c, name, meter.total(now_ns()), end);
    px_subscriber_release(sub);
    return status;
}

} // namespace px_cli
