// SPDX-License-Identifier: Apache-2.0 OR MIT
// Before/after for changes to the pool and buffer hot paths: loads two builds of libparallax.so
// into one process (each in its own link namespace, so both keep their px_* symbols) and runs
// the same loops through each, interleaved like every other row of this directory.
//
//   px_bench_compare_builds OLD/libparallax.so NEW/libparallax.so [--reps N] [--quick] ...
//
// "baseline" is OLD and "parallax" is NEW: base/ours > 1 means NEW is faster.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include "harness.hpp"
#include "parallax/parallax.h"

using namespace pxbench;

namespace {

// The entry points the loops use, from one loaded build.
struct Build {
    decltype(&px_segment_heap_new) segment_heap_new;
    decltype(&px_segment_release) segment_release;
    decltype(&px_pool_new) pool_new;
    decltype(&px_pool_release) pool_release;
    decltype(&px_pool_loan) pool_loan;
    decltype(&px_slot_data) slot_data;
    decltype(&px_slot_release) slot_release;
    decltype(&px_slot_into_buffer) slot_into_buffer;
    decltype(&px_buffer_clone) buffer_clone;
    decltype(&px_buffer_release) buffer_release;
    decltype(&px_version_string) version_string;

    px_pool_t *pool = nullptr; // 128 slots of 4 KiB
    px_buffer_t *buf = nullptr;

    explicit Build(const char *path) {
        void *lib = dlmopen(LM_ID_NEWLM, path, RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            std::fprintf(stderr, "compare_builds: %s\n", dlerror());
            std::exit(2);
        }
        auto sym = [&](auto &fn, const char *name) {
            fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
            if (!fn) {
                std::fprintf(stderr, "compare_builds: %s has no %s\n", path, name);
                std::exit(2);
            }
        };
        sym(segment_heap_new, "px_segment_heap_new");
        sym(segment_release, "px_segment_release");
        sym(pool_new, "px_pool_new");
        sym(pool_release, "px_pool_release");
        sym(pool_loan, "px_pool_loan");
        sym(slot_data, "px_slot_data");
        sym(slot_release, "px_slot_release");
        sym(slot_into_buffer, "px_slot_into_buffer");
        sym(buffer_clone, "px_buffer_clone");
        sym(buffer_release, "px_buffer_release");
        sym(version_string, "px_version_string");

        px_segment_t *seg = nullptr;
        if (segment_heap_new(128 * page_bytes, &seg) != PX_OK ||
            pool_new(seg, page_bytes, &pool) != PX_OK) {
            std::fprintf(stderr, "compare_builds: could not make a pool with %s\n", path);
            std::exit(1);
        }
        segment_release(seg);
        buf = make_buffer();
    }

    px_buffer_t *make_buffer() {
        px_slot_t *s = loan();
        px_buffer_t *b = nullptr;
        if (slot_into_buffer(s, 100, nullptr, &b) != PX_OK)
            std::exit(1);
        return b;
    }

    px_slot_t *loan() {
        px_slot_t *s = nullptr;
        if (pool_loan(pool, &s) != PX_OK) [[unlikely]] {
            std::fprintf(stderr, "compare_builds: px_pool_loan failed\n");
            std::exit(1);
        }
        return s;
    }

    double single(uint64_t iters) {
        ThreadCpuTimer timer;
        for (uint64_t i = 0; i < iters; ++i) {
            px_slot_t *s = loan();
            touch_pages(slot_data(s), page_bytes);
            slot_release(s);
        }
        return timer.elapsed_ns();
    }

    double burst(uint64_t iters) {
        px_slot_t *held[64];
        ThreadCpuTimer timer;
        for (uint64_t i = 0; i < iters; i += 64) {
            for (auto &s : held) {
                s = loan();
                touch_pages(slot_data(s), page_bytes);
            }
            for (auto *s : held)
                slot_release(s);
        }
        return timer.elapsed_ns();
    }

    double clone(uint64_t iters) {
        ThreadCpuTimer timer;
        for (uint64_t i = 0; i < iters; ++i) {
            px_buffer_t *c = nullptr;
            if (buffer_clone(buf, &c) != PX_OK) [[unlikely]]
                std::exit(1);
            escape(c);
            buffer_release(c);
        }
        return timer.elapsed_ns();
    }
};

} // namespace

int main(int argc, char **argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s OLD/libparallax.so NEW/libparallax.so [harness options]\n",
                     argv[0]);
        return 2;
    }
    Build old_build(argv[1]), new_build(argv[2]);
    std::vector<char *> rest{argv[0]};
    rest.insert(rest.end(), argv + 3, argv + argc);
    Runner runner(parse_options(static_cast<int>(rest.size()), rest.data()));

    std::printf("parallax = NEW %s (%s)\nbaseline = OLD %s (%s)\nbase/ours > 1: NEW is faster\n\n",
                argv[2], new_build.version_string(), argv[1], old_build.version_string());
    runner.header();
    runner.compare(
        "loan+release 4 KiB, one at a time", "the OLD build",
        [&](uint64_t n) { return new_build.single(n); },
        [&](uint64_t n) { return old_build.single(n); });
    runner.compare(
        "loan+release 4 KiB, bursts of 64", "the OLD build",
        [&](uint64_t n) { return new_build.burst(n); },
        [&](uint64_t n) { return old_build.burst(n); }, {}, 64);
    runner.compare(
        "buffer clone+release", "the OLD build", [&](uint64_t n) { return new_build.clone(n); },
        [&](uint64_t n) { return old_build.clone(n); });
    return runner.finish();
}
