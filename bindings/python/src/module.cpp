// SPDX-License-Identifier: Apache-2.0 OR MIT
// parallax._parallax: the whole C API for Python. Built on parallax.h alone.
#include <pybind11/typing.h>

#include "convert.hpp"
#include "objects.hpp"

namespace pxpy {
// Streams (stream.cpp): its objects are its own, so only the section is declared here.
void bind_stream(py::module_ &m);
} // namespace pxpy

PYBIND11_MODULE(_parallax, m) {
    using namespace pxpy;
    m.doc() = "Bindings of libparallax (use the `parallax` package, which re-exports them).";
    init_errors();

    m.attr("__version__") = px_version_string();
    m.def(
        "version",
        []() {
            uint32_t v = px_version();
            return py::typing::Tuple<int, int, int>(
                py::make_tuple(v >> 16, (v >> 8) & 0xff, v & 0xff));
        },
        R"doc(
``(major, minor, patch)`` of the libparallax actually loaded (HEADER_VERSION is the one the
module was built against).

Example::

    assert px.version()[0] == px.HEADER_VERSION[0]
)doc");
    m.attr("HEADER_VERSION") = py::make_tuple(PX_VERSION_MAJOR, PX_VERSION_MINOR,
                                              PX_VERSION_PATCH);
    m.attr("TIME_NONE") = PX_TIME_NONE;
    m.attr("METADATA_USER_MAX") = PX_METADATA_USER_MAX;
    m.attr("SPIN_DEFAULT") = PX_CHANNEL_DEFAULT_SPIN_NS / 1e9; // seconds, as Channel.set_spin

    m.def(
        "status_string", [](int32_t status) { return px_status_string(status); },
        py::arg("status"), R"doc(
The name of a libparallax status code (``exc.status`` of a ParallaxError); unknown codes get
a generic name, never an error.

Raises:
    TypeError: not an int. OverflowError: outside int32.

Example::

    assert px.status_string(-1) == "PX_E_INVALID"
)doc");

    // Private: the seconds -> nanoseconds rule every timeout argument goes through, so that the
    // tests can check values whose waits are too long to observe (e.g. 2**63 ns is forever).
    m.def("_timeout_ns", [](py::handle seconds) { return as_timeout_ns(seconds); },
          py::arg("seconds"));

    bind_metadata(m);
    bind_segments(m);
    bind_pool(m);
    bind_buffer(m);
    bind_channel(m);
    bind_stream(m);
}
