// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/fd_guard.hpp"

namespace px {

namespace {
thread_local std::vector<int> *deferred_closes = nullptr;
} // namespace

bool defer_close(int fd) noexcept {
    std::vector<int> *sink = deferred_closes;
    // Only without reallocating: push_back cannot throw then.
    if (!sink || sink->size() >= sink->capacity())
        return false;
    sink->push_back(fd);
    return true;
}

DeferCloses::DeferCloses(std::vector<int> &sink) noexcept : outer_(deferred_closes) {
    deferred_closes = &sink;
}

DeferCloses::~DeferCloses() { deferred_closes = outer_; }

} // namespace px
