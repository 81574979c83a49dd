// SPDX-License-Identifier: Apache-2.0 OR MIT
// Built instead of iceoryx_transport.cpp when CMake did not find iceoryx_posh: the iceoryx rows
// then say why, and every other row still runs.
#include "ipc_bench.hpp"

namespace pxipc {

std::string iceoryx_build_problem() {
    return "not built: CMake found no iceoryx_posh package (Debian: apt-get install "
           "libiceoryx-posh-dev iceoryx), reconfigure after installing it";
}

std::string iceoryx_version() {
    return {};
}

Result iceoryx_leader(const Case &) {
    die(iceoryx_build_problem());
}

int iceoryx_follower(const Case &, const std::vector<int> &) {
    die(iceoryx_build_problem());
}

} // namespace pxipc
