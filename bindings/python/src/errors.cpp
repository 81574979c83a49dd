// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "errors.hpp"

namespace py = pybind11;

namespace pxpy {

namespace {
// Leaked on purpose: exceptions may be raised while the interpreter shuts down, after module
// objects would have been destroyed, and a strong reference here costs nothing.
PyObject *errors_module = nullptr;
} // namespace

void init_errors() {
    if (!errors_module)
        errors_module = py::module_::import("parallax.errors").release().ptr();
}

namespace {

void set_error(px_status_t status, const std::string &message, const char *class_name) {
    py::handle mod(errors_module);
    py::object cls = class_name ? mod.attr(class_name)
                                : mod.attr("error_class_for")(static_cast<int>(status));
    py::object exc = cls(message);
    exc.attr("status") = static_cast<int>(status);
    PyErr_SetObject(cls.ptr(), exc.ptr());
}

} // namespace

void raise_error(px_status_t status, const std::string &message, const char *class_name) {
    set_error(status, message, class_name);
    throw py::error_already_set();
}

void set_last_error(px_status_t status, const char *class_name) {
    // Copy the message now: it is only valid until the next failing call on this thread.
    std::string message = px_last_error_message();
    if (message.empty())
        message = px_status_string(status);
    set_error(status, message, class_name);
}

void raise_last(px_status_t status, const char *class_name) {
    set_last_error(status, class_name);
    throw py::error_already_set();
}

void raise_closed(const char *what) {
    std::string w(what);
    // Slots and buffers are released (like memoryview.release()); the rest are closed.
    bool released = w == "slot" || w == "buffer";
    raise_error(PX_E_INVALID, w + (released ? " was released" : " is closed"));
}

} // namespace pxpy
