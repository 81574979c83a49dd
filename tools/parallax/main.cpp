// SPDX-License-Identifier: Apache-2.0 OR MIT
// parallax: inspect this user's libparallax streams (list, info, hz). Argument parsing and
// dispatch; the commands are in list_info.cpp and hz.cpp.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"

namespace px_cli {
namespace {

const char usage_text[] =
    "usage: parallax [--json] COMMAND [ARGS]\n"
    "\n"
    "Inspects the libparallax streams (publish-subscribe by name) of this user.\n"
    "\n"
    "commands:\n"
    "  list        live streams in the runtime directory, with their subscriber counts\n"
    "  info NAME   the publisher's counters and each subscriber: pid, buffers in flight\n"
    "              (held or queued), frames delivered, frames dropped for want of room\n"
    "  hz NAME [--window S] [--count N] [--timeout S]\n"
    "              subscribes (releasing each frame at once) and prints a line per second:\n"
    "              rate, frame sizes and gaps over the last S seconds (default 1), until\n"
    "              Ctrl-C, the end of the stream or N frames; then a summary. --timeout: how\n"
    "              long to wait for the publisher to admit it (default 10 s)\n"
    "\n"
    "options:\n"
    "  --json      machine-readable output: one JSON object per line\n"
    "  --help      this text\n"
    "  --version   the versions of this tool and of the libparallax it runs with\n"
    "\n"
    "A NAME without '/' lives in the runtime directory: $PARALLAX_RUNTIME_DIR, else\n"
    "$XDG_RUNTIME_DIR/parallax, else /tmp/parallax-<uid>. A NAME with '/' is a socket path.\n"
    "Exit status: 0 done, 1 failed (e.g. no such stream), 2 bad usage.\n";

const char usage_line[] = "usage: parallax [--json] list | info NAME | hz NAME [--window S] "
                          "[--count N] [--timeout S]\n"
                          "       parallax --help | --version\n";

int usage_error(const std::string &why) {
    std::fprintf(stderr, "parallax: %s\n%s", why.c_str(), usage_line);
    return exit_usage;
}

// A positive finite number of seconds, or nothing.
std::optional<double> parse_seconds(const std::string &s) {
    char *end = nullptr;
    errno = 0;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || errno != 0 || !std::isfinite(v) || v <= 0)
        return std::nullopt;
    return v;
}

// A positive integer, or nothing.
std::optional<uint64_t> parse_count(const std::string &s) {
    char *end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    if (s.empty() || s[0] == '-' || *end != '\0' || errno != 0 || v == 0)
        return std::nullopt;
    return static_cast<uint64_t>(v);
}

struct Parsed {
    Common common;
    bool help = false;
    bool version = false;
    std::vector<std::string> positional; // the command and its operands
    HzOptions hz;
    std::vector<std::string> hz_flags; // which hz options were given (refused elsewhere)
};

// Takes "--opt VALUE" or "--opt=VALUE" at args[i]; advances i past what it took. Returns
// whether args[i] is `opt`; `value` empty with `missing` set when no value follows.
bool take_valued(const std::vector<std::string> &args, size_t &i, const std::string &opt,
                 std::string &value, bool &missing) {
    const std::string &a = args[i];
    if (a.rfind(opt + "=", 0) == 0) {
        value = a.substr(opt.size() + 1);
        return true;
    }
    if (a != opt)
        return false;
    missing = i + 1 >= args.size();
    if (!missing)
        value = args[++i];
    return true;
}

// Parses argv; a message in `error` when it is malformed.
Parsed parse(const std::vector<std::string> &args, std::string &error) {
    Parsed p;
    for (size_t i = 0; i < args.size() && error.empty(); ++i) {
        const std::string &a = args[i];
        std::string value;
        bool missing = false;
        if (a == "--json") {
            p.common.json = true;
        } else if (a == "--help" || a == "-h") {
            p.help = true;
        } else if (a == "--version") {
            p.version = true;
        } else if (take_valued(args, i, "--window", value, missing)) {
            const auto v = parse_seconds(value);
            if (!v)
                error = "--window needs a positive number of seconds, not \"" + value + "\"";
            else
                p.hz.window_s = *v;
            p.hz_flags.push_back("--window");
        } else if (take_valued(args, i, "--timeout", value, missing)) {
            const auto v = parse_seconds(value);
            if (!v)
                error = "--timeout needs a positive number of seconds, not \"" + value + "\"";
            else
                p.hz.timeout_s = *v;
            p.hz_flags.push_back("--timeout");
        } else if (take_valued(args, i, "--count", value, missing)) {
            const auto v = parse_count(value);
            if (!v)
                error = "--count needs a positive whole number of frames, not \"" + value + "\"";
            else
                p.hz.count = *v;
            p.hz_flags.push_back("--count");
        } else if (a.size() > 1 && a[0] == '-') {
            error = "unknown option " + a;
        } else {
            p.positional.push_back(a);
        }
        if (missing)
            error = a + " needs a value";
    }
    return p;
}

// Checks the operands of `command`; a message when they do not fit.
std::string check_operands(const Parsed &p) {
    const std::string &command = p.positional[0];
    const size_t operands = p.positional.size() - 1;
    if (command != "hz" && !p.hz_flags.empty())
        return p.hz_flags[0] + " applies to hz only";
    if (command == "list")
        return operands == 0 ? "" : "list takes no operand";
    if (command == "info" || command == "hz") {
        if (operands == 0)
            return command + " needs a stream NAME";
        if (operands > 1)
            return command + " takes one NAME, not " + std::to_string(operands);
        if (p.positional[1].empty())
            return "the stream NAME is empty";
        return "";
    }
    return "unknown command \"" + command + "\"";
}

void print_version() {
    std::printf("parallax %d.%d.%d (libparallax %s)\n", PX_VERSION_MAJOR, PX_VERSION_MINOR,
                PX_VERSION_PATCH, px_version_string());
}

} // namespace
} // namespace px_cli

int main(int argc, char **argv) {
    using namespace px_cli;
    std::string error;
    const Parsed p = parse(std::vector<std::string>(argv + 1, argv + argc), error);
    if (!error.empty())
        return usage_error(error);
    if (p.help) {
        std::fputs(usage_text, stdout);
        return exit_ok;
    }
    if (p.version) {
        print_version();
        return exit_ok;
    }
    if (p.positional.empty())
        return usage_error("no command given");
    error = check_operands(p);
    if (!error.empty())
        return usage_error(error);
    const std::string &command = p.positional[0];
    if (command == "list")
        return run_list(p.common);
    if (command == "info")
        return run_info(p.common, p.positional[1]);
    return run_hz(p.common, p.positional[1], p.hz);
}
