// SPDX-License-Identifier: Apache-2.0 OR MIT
// parallax list, parallax info NAME: what the live publishers' stats pages say, read through
// px_stream_list, px_stream_stats and px_stream_subscribers (no publisher is disturbed).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "cli.hpp"
#include "json.hpp"

namespace px_cli {
namespace {

// How long to wait for a consistent reading of a page a publisher is updating.
constexpr int64_t read_timeout_ns = 500'000'000;

struct StreamRow {
    std::string name;
    px_publisher_stats_t stats;
};

void collect_name(const char *name, void *ctx) {
    static_cast<std::vector<std::string> *>(ctx)->push_back(name);
}

std::string stats_json(const px_publisher_stats_t &s) {
    return JsonObject()
        .field("published", uint64_t{s.published})
        .field("subscribers", uint64_t{s.subscribers})
        .field("joined", uint64_t{s.joined})
        .field("departed", uint64_t{s.departed})
        .field("dropped", uint64_t{s.dropped})
        .field("disconnected_slow", uint64_t{s.disconnected_slow})
        .field("slots_lent", uint64_t{s.slots_lent})
        .str();
}

void print_list_text(const std::vector<StreamRow> &rows) {
    if (rows.empty()) {
        std::printf("no live streams in %s\n", runtime_dir_described().c_str());
        return;
    }
    size_t width = 4; // "NAME"
    for (const auto &r : rows)
        width = std::max(width, r.name.size());
    const int w = static_cast<int>(width);
    std::printf("%-*s  %11s  %10s  %8s\n", w, "NAME", "SUBSCRIBERS", "PUBLISHED", "DROPPED");
    for (const auto &r : rows)
        std::printf("%-*s  %11llu  %10llu  %8llu\n", w, r.name.c_str(),
                    static_cast<unsigned long long>(r.stats.subscribers),
                    static_cast<unsigned long long>(r.stats.published),
                    static_cast<unsigned long long>(r.stats.dropped));
}

void print_list_json(const std::vector<StreamRow> &rows) {
    std::string streams = "[";
    for (const auto &r : rows) {
        if (streams.size() > 1)
            streams += ',';
        streams += JsonObject()
                       .field("name", r.name)
                       .field("subscribers", uint64_t{r.stats.subscribers})
                       .field("published", uint64_t{r.stats.published})
                       .field("dropped", uint64_t{r.stats.dropped})
                       .str();
    }
    streams += "]";
    std::printf("%s\n", JsonObject()
                            .field("runtime_dir", runtime_dir().path)
                            .raw("streams", streams)
                            .str()
                            .c_str());
}

std::string fmt_u64(uint64_t v) {
    return std::to_string(v);
}

void print_info_text(const std::string &name, const px_publisher_stats_t &s,
                     const std::vector<px_stream_subscriber_info_t> &subs) {
    std::printf("stream %s\n", name.c_str());
    std::printf(
        "  published %llu, subscribers %llu (joined %llu, departed %llu), dropped %llu, "
        "disconnected as slow %llu, buffers lent %llu\n",
        static_cast<unsigned long long>(s.published),
        static_cast<unsigned long long>(s.subscribers), static_cast<unsigned long long>(s.joined),
        static_cast<unsigned long long>(s.departed), static_cast<unsigned long long>(s.dropped),
        static_cast<unsigned long long>(s.disconnected_slow),
        static_cast<unsigned long long>(s.slots_lent));
    if (subs.empty()) {
        std::printf("  no subscribers\n");
        return;
    }
    std::printf("  %8s  %9s  %10s  %8s\n", "PID", "IN_FLIGHT", "DELIVERED", "DROPPED");
    for (const auto &sub : subs)
        std::printf("  %8s  %9s  %10s  %8s\n", fmt_u64(sub.pid).c_str(),
                    fmt_u64(sub.in_flight).c_str(), fmt_u64(sub.delivered).c_str(),
                    fmt_u64(sub.dropped).c_str());
}

void print_info_json(const std::string &name, const px_publisher_stats_t &s,
                     const std::vector<px_stream_subscriber_info_t> &subs) {
    std::string table = "[";
    for (const auto &sub : subs) {
        if (table.size() > 1)
            table += ',';
        table += JsonObject()
                     .field("pid", uint64_t{sub.pid})
                     .field("in_flight", uint64_t{sub.in_flight})
                     .field("delivered", uint64_t{sub.delivered})
                     .field("dropped", uint64_t{sub.dropped})
                     .str();
    }
    table += "]";
    std::printf("%s\n", JsonObject()
                            .field("stream", name)
                            .raw("stats", stats_json(s))
                            .raw("subscribers", table)
                            .str()
                            .c_str());
}

// The subscriber table; its size may change between asking and reading, so ask until it fits.
px_status_t read_subscribers(const std::string &name,
                             std::vector<px_stream_subscriber_info_t> &out) {
    size_t count = 0;
    for (;;) {
        px_status_t rc =
            px_stream_subscribers(name.c_str(), read_timeout_ns, out.data(), out.size(), &count);
        if (rc != PX_OK)
            return rc;
        if (count <= out.size()) {
            out.resize(count);
            return PX_OK;
        }
        out.resize(count);
    }
}

} // namespace

int run_list(const Common &c) {
    std::vector<std::string> names;
    if (px_status_t rc = px_stream_list(collect_name, &names); rc != PX_OK)
        return report_failure("px_stream_list", rc);
    std::sort(names.begin(), names.end());
    std::vector<StreamRow> rows;
    int status = exit_ok;
    for (const auto &name : names) {
        StreamRow r{name, {}};
        const px_status_t rc = px_stream_stats(name.c_str(), read_timeout_ns, &r.stats);
        if (rc == PX_E_CLOSED)
            continue; // its publisher left since it was listed
        if (rc != PX_OK) {
            status = report_failure(("px_stream_stats(" + name + ")").c_str(), rc);
            continue;
        }
        rows.push_back(std::move(r));
    }
    if (c.json)
        print_list_json(rows);
    else
        print_list_text(rows);
    return status;
}

int run_info(const Common &c, const std::string &name) {
    px_publisher_stats_t stats{};
    if (px_status_t rc = px_stream_stats(name.c_str(), read_timeout_ns, &stats); rc != PX_OK)
        return report_failure("px_stream_stats", rc, name);
    std::vector<px_stream_subscriber_info_t> subs(stats.subscribers);
    if (px_status_t rc = read_subscribers(name, subs); rc != PX_OK)
        return report_failure("px_stream_subscribers", rc, name);
    if (c.json)
        print_info_json(name, stats, subs);
    else
        print_info_text(name, stats, subs);
    return exit_ok;
}

} // namespace px_cli
