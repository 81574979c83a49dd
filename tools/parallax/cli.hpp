// SPDX-License-Identifier: Apache-2.0 OR MIT
// The `parallax` command-line tool: what its commands share. A client of the public header only
// (parallax.h): everything it shows, another program could learn the same way.
#pragma once

#include <cstdint>
#include <string>

#include "parallax/parallax.h"

namespace px_cli {

// Exit statuses: 0 done, 1 the command failed (no such stream, a library error), 2 bad usage.
constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;

// Options every command takes.
struct Common {
    bool json = false;
};

struct HzOptions {
    double window_s = 1.0; // the span each line's figures cover
    uint64_t count = 0;    // stop after this many frames (0: until Ctrl-C or the stream ends)
    double timeout_s = 10; // how long to wait for the publisher to admit us
};

int run_list(const Common &c);
int run_info(const Common &c, const std::string &name);
int run_hz(const Common &c, const std::string &name, const HzOptions &o);

// Where a name without '/' lives, by API.md's rule, and which part of the rule chose it. For
// messages only: the library resolves and checks the directory itself.
struct RuntimeDir {
    std::string path;
    std::string origin; // e.g. "from $PARALLAX_RUNTIME_DIR"
};
RuntimeDir runtime_dir();
// "PATH (ORIGIN)".
std::string runtime_dir_described();

// Reports a failed library call on stderr ("parallax: MESSAGE (PX_E_...)", the library's
// message naming the call, or `what` when there is none) and returns the exit status it
// deserves: exit_usage when the call took `name` and refused it as invalid, exit_failed for the
// rest. A stream with no live publisher (PX_E_CLOSED) is reported as such, naming where it was
// looked for.
int report_failure(const char *what, px_status_t rc, const std::string &name = "");

} // namespace px_cli
