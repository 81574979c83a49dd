// SPDX-License-Identifier: Apache-2.0 OR MIT
// Reserves 2 MiB huge pages for a test (as root) and restores the kernel's previous value.
#pragma once

#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

namespace px_test {

class HugePageReservation {
public:
    // Asks the kernel for `pages` more free pages than it has now; ok() tells if it got them.
    explicit HugePageReservation(long pages, const char *size_dir = "hugepages-2048kB")
        : dir_(std::string("/sys/kernel/mm/hugepages/") + size_dir) {
        old_ = read("nr_hugepages");
        if (old_ < 0 || ::geteuid() != 0)
            return;
        long free_now = read("free_hugepages");
        write("nr_hugepages", old_ + pages);
        changed_ = true;
        ok_ = read("free_hugepages") >= free_now + pages;
    }
    ~HugePageReservation() {
        if (changed_)
            write("nr_hugepages", old_);
    }
    bool ok() const { return ok_; }
    long free_pages() const { return read("free_hugepages"); }
    HugePageReservation(const HugePageReservation &) = delete;
    HugePageReservation &operator=(const HugePageReservation &) = delete;

private:
    long read(const char *file) const {
        std::ifstream in(dir_ + "/" + file);
        long v = -1;
        in >> v;
        return v;
    }
    void write(const char *file, long v) const {
        std::ofstream out(dir_ + "/" + file);
        out << v << std::flush;
    }
    std::string dir_;
    long old_ = -1;
    bool changed_ = false;
    bool ok_ = false;
};

// A fresh temporary directory, removed (with its files) at the end of the test.
class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/px-test-XXXXXX";
        path_ = ::mkdtemp(tmpl);
    }
    ~TempDir() {
        std::string cmd = "rm -rf '" + path_ + "'";
        [[maybe_unused]] int rc = std::system(cmd.c_str());
    }
    std::string file(const std::string &name) const { return path_ + "/" + name; }
    const std::string &path() const { return path_; }

private:
    std::string path_;
};

} // namespace px_test
