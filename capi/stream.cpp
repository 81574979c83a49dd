// SPDX-License-Identifier: Apache-2.0 OR MIT
// px_publisher_*, px_subscriber_*, px_stream_*.
#include <cstddef>
#include <cstring>
#include <optional>
#include <dirent.h>
#include <string>
#include <vector>

#include "capi/guard.hpp"
#include "capi/handles.hpp"
#include "core/fd_guard.hpp"
#include "core/hot.hpp"
#include "core/stream/publisher.hpp"
#include "core/stream/runtime_dir.hpp"
#include "core/stream/stream_stats.hpp"
#include "core/stream/subscriber.hpp"

using namespace px;
using namespace px::capi;
using px::stream::Publisher;
using px::stream::Subscriber;

namespace {

// A field of the caller's options is read only when its struct_size covers it.
template <class T>
bool covers(const px_publisher_options_t &o, const T &field) {
    const size_t end = static_cast<size_t>(reinterpret_cast<const char *>(&field) -
                                           reinterpret_cast<const char *>(&o)) +
                       sizeof field;
    return o.struct_size >= end;
}

// A caller built against a newer header may pass a larger struct: its fields beyond ours must
// be zero (their defaults), or it asked for something this library cannot do.
void check_unknown_tail(const px_publisher_options_t *opts) {
    const auto *bytes = reinterpret_cast<const unsigned char *>(opts);
    for (size_t i = sizeof *opts; i < opts->struct_size; ++i)
        if (bytes[i] != 0)
            fail(Status::invalid, "opts: byte " + std::to_string(i) +
                                      " is set, beyond the fields this library knows (" +
                                      std::to_string(sizeof *opts) + " bytes)");
}

stream::PublisherOptions options_from_c(const px_publisher_options_t *opts) {
    stream::PublisherOptions o;
    if (!opts)
        return o;
    if (opts->struct_size < sizeof(uint32_t))
        fail(Status::invalid, "opts->struct_size " + std::to_string(opts->struct_size) +
                                  " is too small: call px_publisher_options_init() first");
    check_unknown_tail(opts);
    if (covers(*opts, opts->slow_policy))
        o.slow_policy = static_cast<stream::SlowPolicy>(opts->slow_policy);
    if (covers(*opts, opts->max_subscribers))
        o.max_subscribers = opts->max_subscribers;
    if (covers(*opts, opts->max_in_flight))
        o.max_in_flight = opts->max_in_flight;
    if (covers(*opts, opts->history))
        o.history = opts->history;
    if (covers(*opts, opts->reserved) && opts->reserved != 0)
        fail(Status::invalid, "opts->reserved is " + std::to_string(opts->reserved) +
                                  "; it must be 0");
    if (covers(*opts, opts->block_timeout_ns))
        o.block_timeout_ns = opts->block_timeout_ns;
    return o;
}

void stats_to_c(const stream::PublisherStats &s, px_publisher_stats_t *out) {
    out->published = s.published;
    out->subscribers = s.subscribers;
    out->joined = s.joined;
    out->departed = s.departed;
    out->dropped = s.dropped;
    out->disconnected_slow = s.disconnected_slow;
    out->slots_lent = s.slots_lent;
}

} // namespace

extern "C" {

void px_publisher_options_init(px_publisher_options_t *opts) {
    if (!opts)
        return;
    const stream::PublisherOptions d;
    *opts = px_publisher_options_t{};
    opts->struct_size = sizeof *opts;
    opts->slow_policy = static_cast<uint32_t>(d.slow_policy);
    opts->max_subscribers = d.max_subscribers;
    opts->max_in_flight = d.max_in_flight;
    opts->history = d.history;
    opts->block_timeout_ns = d.block_timeout_ns;
}

px_status_t px_publisher_new(const char *name, const px_publisher_options_t *opts,
                             px_publisher_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        *out = to_handle(
            Publisher::create(require_text(name, "name"), options_from_c(opts)).detach());
    });
}

PX_HOT px_status_t px_publisher_publish(px_publisher_t *pub, const px_buffer_t *buf) {
    return px_guard(__func__, [&] {
        require(pub, "pub");
        from_handle(pub)->publish(*from_handle(require(buf, "buf")));
    });
}

size_t px_publisher_subscriber_count(const px_publisher_t *pub) {
    return pub ? from_handle(pub)->subscriber_count() : 0;
}

int px_publisher_fd(const px_publisher_t *pub) { return pub ? from_handle(pub)->fd() : -1; }

px_status_t px_publisher_poll(px_publisher_t *pub, int64_t timeout_ns) {
    return px_guard(__func__, [&] { from_handle(require(pub, "pub"))->poll(timeout_ns); });
}

px_status_t px_publisher_set_description(px_publisher_t *pub, const char *utf8) {
    return px_guard(__func__, [&] {
        require(pub, "pub");
        require(utf8, "utf8");
        // Bounded scan: a text without its NUL within the limit is refused, not overrun.
        const size_t len = ::strnlen(utf8, stream::max_description_size + 1);
        if (len > stream::max_description_size)
            fail(Status::invalid, "the description is longer than " +
                                      std::to_string(stream::max_description_size) + " bytes");
        from_handle(pub)->set_description(std::string(utf8, len));
    });
}

px_status_t px_publisher_skip(px_publisher_t *pub, uint64_t count) {
    return px_guard(__func__, [&] { from_handle(require(pub, "pub"))->skip(count); });
}

px_status_t px_publisher_get_stats(const px_publisher_t *pub, px_publisher_stats_t *out) {
    return px_guard(__func__, [&] {
        require_out(out);
        stats_to_c(from_handle(require(pub, "pub"))->stats(), out);
    });
}

void px_publisher_release(px_publisher_t *pub) {
    if (pub)
        from_handle(pub)->release_ref();
}

px_status_t px_subscriber_new(const char *name, int64_t timeout_ns, px_subscriber_t **out) {
    return px_guard(__func__, [&] {
        require_out(out);
        *out = to_handle(Subscriber::create(require_text(name, "name"), timeout_ns).detach());
    });
}

PX_HOT px_status_t px_subscriber_recv(px_subscriber_t *sub, int64_t timeout_ns, px_buffer_t **out) {
    return px_guard_poll(__func__, [&](bool &nothing) {
        require_out(out);
        if (std::optional<Buffer> b = from_handle(require(sub, "sub"))->receive(timeout_ns))
            *out = new_buffer_handle(std::move(*b));
        else
            nothing = true;
    });
}

px_status_t px_subscriber_description(const px_subscriber_t *sub, char *dst, size_t cap,
                                      size_t *len) {
    return px_guard(__func__, [&] {
        require_out(len, "len");
        const std::shared_ptr<const std::string> shared =
            from_handle(require(sub, "sub"))->description();
        const std::string &text = *shared;
        *len = text.size();
        if (cap < text.size() + 1)
            fail(Status::invalid, "cap " + std::to_string(cap) + " is too small for the " +
                                      std::to_string(text.size()) +
                                      "-byte description and its NUL (*len says how long)");
        require(dst, "dst");
        std::memcpy(dst, text.c_str(), text.size() + 1);
    });
}

uint64_t px_subscriber_description_version(const px_subscriber_t *sub) {
    return sub ? from_handle(sub)->description_version() : 0;
}

px_status_t px_subscriber_set_spin_ns(px_subscriber_t *sub, int64_t spin_ns) {
    return px_guard(__func__, [&] { from_handle(require(sub, "sub"))->set_spin_ns(spin_ns); });
}

int px_subscriber_fd(const px_subscriber_t *sub) {
    int fd = -1;
    px_guard("px_subscriber_fd", [&] { fd = from_handle(require(sub, "sub"))->fd(); });
    return fd;
}

px_status_t px_subscriber_get_stats(const px_subscriber_t *sub, px_subscriber_stats_t *out) {
    return px_guard(__func__, [&] {
        require_out(out);
        const stream::SubscriberStats s = from_handle(require(sub, "sub"))->stats();
        out->received = s.received;
        out->missed = s.missed;
        out->publisher_pid = s.publisher_pid;
    });
}

void px_subscriber_release(px_subscriber_t *sub) {
    if (sub)
        from_handle(sub)->release_ref();
}

px_status_t px_stream_stats(const char *name, int64_t timeout_ns, px_publisher_stats_t *out) {
    return px_guard(__func__, [&] {
        require_out(out);
        const stream::StreamPaths paths = stream::paths_for(require_text(name, "name"));
        stats_to_c(stream::read_stats(paths.stats, timeout_ns), out);
    });
}

px_status_t px_stream_subscribers(const char *name, int64_t timeout_ns,
                                  px_stream_subscriber_info_t *out, size_t cap, size_t *count) {
    return px_guard(__func__, [&] {
        require_out(count, "count");
        if (cap > 0 && !out)
            fail(Status::invalid, "out is NULL but cap is " + std::to_string(cap));
        const stream::StreamPaths paths = stream::paths_for(require_text(name, "name"));
        const std::vector<stream::SubscriberRow> rows =
            stream::read_subscribers(paths.stats, timeout_ns);
        *count = rows.size();
        for (size_t i = 0; i < rows.size() && i < cap; ++i)
            out[i] = px_stream_subscriber_info_t{rows[i].pid, rows[i].in_flight,
                                                 rows[i].delivered, rows[i].dropped};
    });
}

px_status_t px_stream_list(px_stream_list_fn fn, void *ctx) {
    return px_guard(__func__, [&] {
        require(fn, "fn");
        const std::string dir = stream::runtime_dir();
        // The names first, then the calls: fn may create or remove streams.
        std::vector<std::string> live;
        {
            DIR *d = ::opendir(dir.c_str());
            if (!d)
                fail_errno("opendir(" + dir + ")", errno);
            while (dirent *e = ::readdir(d)) {
                const std::string name = e->d_name;
                if (stream::is_bare_name(name) &&
                    stream::publisher_alive(stream::stats_path_for(dir + "/" + name)))
                    live.push_back(name);
            }
            ::closedir(d);
        }
        for (const std::string &name : live)
            fn(name.c_str(), ctx);
    });
}

} // extern "C"
