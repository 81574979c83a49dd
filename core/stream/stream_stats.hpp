// SPDX-License-Identifier: Apache-2.0 OR MIT
// A publisher's counters, and the stats page through which another process reads them
// (px_stream_stats) whether or not the publisher is publishing: a small file beside the stream's
// socket (runtime_dir.hpp) that the publisher maps and keeps current.
//
// The page is also how a stream is known to be live without disturbing it: the publisher holds
// an open-file-description write lock on it for its whole life (the kernel drops the lock when
// the process dies, however it dies), and a reader only asks whether the lock is held
// (F_OFD_GETLK), never takes it, so a reader can neither block a publisher nor be mistaken for
// one. Connecting to the socket instead would cost the publisher a handshake per question.
//
// Readers use pread, never a mapping: a page truncated under them is then a short read, not a
// SIGBUS. The counters are written under a sequence lock (odd while being written), so a reader
// never sees half an update.
//
// After the counters' page comes a table of the admitted subscribers (pid, in flight, delivered,
// dropped), written under the same sequence lock, for `parallax info`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <sys/types.h>
#include <vector>

#include "core/fd_guard.hpp"

namespace px::stream {

struct PublisherStats {
    uint64_t published = 0;          // frames published
    uint64_t subscribers = 0;        // admitted now
    uint64_t joined = 0;             // admitted since the start
    uint64_t departed = 0;           // gone since the start (closed, died, disconnected)
    uint64_t dropped = 0;            // frames a subscriber missed for want of room
    uint64_t disconnected_slow = 0;  // subscribers dropped by PX_SLOW_DISCONNECT
    uint64_t slots_lent = 0;         // buffers held or queued by subscribers now
};

// One admitted subscriber as its publisher knows it.
struct SubscriberRow {
    uint64_t pid = 0;       // its process (the handshake's credentials)
    uint64_t in_flight = 0; // buffers it holds plus those queued for it now
    uint64_t delivered = 0; // frames sent to it since it joined (history included)
    uint64_t dropped = 0;   // frames it missed for want of room (its `missed`, seen from here)
};

// Rows the table holds: as many as a publisher may admit (publisher.hpp's limit).
constexpr size_t max_subscriber_rows = 1024;

class StatsPage {
public:
    // Creates (or takes over a dead publisher's) page at `path` and locks it: busy when a live
    // publisher holds it, permission when it is not a regular file of this uid.
    explicit StatsPage(const std::string &path);
    StatsPage(const StatsPage &) = delete;
    StatsPage &operator=(const StatsPage &) = delete;
    // Removes the page (while still holding the lock, so no new publisher's page is removed).
    ~StatsPage();

    // Rows beyond max_subscriber_rows are left out (a publisher never admits that many).
    void store(const PublisherStats &s, const SubscriberRow *rows = nullptr,
               size_t row_count = 0) noexcept;

    struct Layout; // of the page (stream_stats.cpp)

private:
    std::string path_;
    FdGuard fd_;
    Layout *page_ = nullptr;
    // The file is removed only by the process that made the page, and only while the path is
    // still this file: a forked child closing its copy of a publisher leaves the stream listed.
    pid_t owner_pid_ = 0;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
};

// A live publisher's counters from its page: closed at once when no live publisher has it,
// timeout when no consistent reading came within timeout_ns (a publisher stopped mid-update).
PublisherStats read_stats(const std::string &path, int64_t timeout_ns);
// A live publisher's subscriber table, errors as read_stats; unsupported when the page has no
// table (a publisher built before it existed).
std::vector<SubscriberRow> read_subscribers(const std::string &path, int64_t timeout_ns);
// Whether a live publisher holds the page at `path`. Never blocks, never throws.
bool publisher_alive(const std::string &path) noexcept;

} // namespace px::stream
