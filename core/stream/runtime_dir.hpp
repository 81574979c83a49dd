// SPDX-License-Identifier: Apache-2.0 OR MIT
// Stream names and where they live (API.md, "Streams"). A name without '/' is a file in the
// runtime directory: $PARALLAX_RUNTIME_DIR (used as given, never created), else
// $XDG_RUNTIME_DIR/parallax, else /tmp/parallax-<uid> (both made mode 0700 when missing).
// Whichever is used is checked like a lock file's directory: a directory (not a symlink to one
// someone else could swap), owned by this uid, not writable by group or others; else
// Status::permission. A name with '/' is a socket path used as is.
//
// Each stream has two files: its socket (the publisher's listener) and, beside it, the
// publisher's stats page (stream_stats.hpp), named "." + the socket's file name + ".stats" so
// that no stream name can collide with it (names never start with '.').
#pragma once

#include <string>

namespace px::stream {

// 1-100 characters of [A-Za-z0-9._-], not starting with '.'.
constexpr size_t max_name_length = 100;
// sun_path holds 108 bytes with the terminating NUL.
constexpr size_t max_socket_path_length = 107;

struct StreamPaths {
    std::string socket; // the publisher's listener
    std::string stats;  // the publisher's stats page
};

// The files of stream `name`, the runtime directory checked (and made) on the way. Throws
// invalid naming the rule a malformed name breaks, permission for an unsafe directory.
StreamPaths paths_for(const std::string &name);

// The runtime directory in use, checked (and made when missing, as above).
std::string runtime_dir();

// Throws invalid (saying which rule broke) unless `name` is a valid name without '/'.
void check_bare_name(const std::string &name);
// Whether check_bare_name would accept it (for listing a directory).
bool is_bare_name(const std::string &name) noexcept;

// The stats page beside a socket path.
std::string stats_path_for(const std::string &socket_path);

} // namespace px::stream
