// SPDX-License-Identifier: Apache-2.0 OR MIT
// Built instead of iceoryx_stream.cpp when CMake did not find iceoryx_posh: the orchestrator
// then prints why (bench/ipc's iceoryx_build_problem()) in the iceoryx rows and never gets here.
#include "../ipc/ipc_bench.hpp"
#include "stream_bench.hpp"

namespace pxstream {

std::unique_ptr<Publisher> iceoryx_publisher(const std::string &, size_t) {
    pxipc::die(pxipc::iceoryx_build_problem());
}

std::unique_ptr<Subscriber> iceoryx_subscriber(const std::string &) {
    pxipc::die(pxipc::iceoryx_build_problem());
}

} // namespace pxstream
