// SPDX-License-Identifier: Apache-2.0 OR MIT
// What the commands share: where names live (for messages) and how failures are reported.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

#include "cli.hpp"

namespace px_cli {

RuntimeDir runtime_dir() {
    // The order of API.md's rule; an empty variable counts as unset, as in the library.
    if (const char *v = std::getenv("PARALLAX_RUNTIME_DIR"); v && *v)
        return {v, "from $PARALLAX_RUNTIME_DIR"};
    if (const char *v = std::getenv("XDG_RUNTIME_DIR"); v && *v)
        return {std::string(v) + "/parallax", "from $XDG_RUNTIME_DIR"};
    return {"/tmp/parallax-" + std::to_string(::geteuid()),
            "neither $PARALLAX_RUNTIME_DIR nor $XDG_RUNTIME_DIR is set"};
}

std::string runtime_dir_described() {
    const RuntimeDir d = runtime_dir();
    return d.path + " (" + d.origin + ")";
}

int report_failure(const char *what, px_status_t rc, const std::string &name) {
    if (rc == PX_E_CLOSED && !name.empty()) {
        if (name.find('/') != std::string::npos)
            std::fprintf(stderr, "parallax: no live stream at socket path %s\n", name.c_str());
        else
            std::fprintf(stderr, "parallax: no live stream \"%s\" in the runtime directory %s\n",
                         name.c_str(), runtime_dir_described().c_str());
        return exit_failed;
    }
    // The library's message names the call and what was wrong; `what` stands in when it is empty.
    const char *message = px_last_error_message();
    std::fprintf(stderr, "parallax: %s (%s)\n", *message ? message : what, px_status_string(rc));
    // A name the library refuses is a bad argument, like an unknown option.
    return rc == PX_E_INVALID && !name.empty() ? exit_usage : exit_failed;
}

} // namespace px_cli
