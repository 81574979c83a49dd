// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "core/stream/runtime_dir.hpp"

#include <cerrno>
#include <cstdlib>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.hpp"

namespace px::stream {

namespace {

bool name_char(char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

const char *name_rules = "a stream name is 1 to 100 characters of A-Z a-z 0-9 . _ -, not "
                         "starting with '.' (or a socket path, with a '/')";

std::string quoted(const std::string &s) { return "\"" + s + "\""; }

// An environment variable, or "" when unset.
std::string env(const char *var) {
    const char *v = std::getenv(var);
    return v ? v : "";
}

// The directory must be ours alone: another user who could write to it could swap our socket
// for theirs (and read what subscribers send back), or plant a stats page.
void check_private_dir(const std::string &dir, bool follow, const std::string &origin) {
    struct stat st {};
    const int rc = follow ? ::stat(dir.c_str(), &st) : ::lstat(dir.c_str(), &st);
    if (rc != 0) {
        const int err = errno;
        if (err == ENOENT)
            fail(Status::invalid, "runtime directory " + dir + " (" + origin +
                                      ") does not exist; it is used as given, never created");
        fail_errno("stat(" + dir + ")", err);
    }
    if (S_ISLNK(st.st_mode))
        fail(Status::permission, "runtime directory " + dir + " (" + origin +
                                     ") is a symbolic link; it must be a directory of its own");
    if (!S_ISDIR(st.st_mode))
        fail(Status::invalid,
             "runtime directory " + dir + " (" + origin + ") is not a directory");
    if (st.st_uid != ::geteuid())
        fail(Status::permission, "runtime directory " + dir + " (" + origin +
                                     ") is owned by uid " + std::to_string(st.st_uid) +
                                     ", not by this process's uid " +
                                     std::to_string(::geteuid()));
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        fail(Status::permission, "runtime directory " + dir + " (" + origin +
                                     ") is writable by group or others (mode " +
                                     std::to_string((st.st_mode >> 6) & 7) +
                                     std::to_string((st.st_mode >> 3) & 7) +
                                     std::to_string(st.st_mode & 7) + "); chmod 0700 it");
}

// Makes `dir` mode 0700 unless it exists (whatever it is: the check that follows judges it).
void make_private_dir(const std::string &dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        fail_errno("mkdir(" + dir + ", 0700)", errno);
}

} // namespace

bool is_bare_name(const std::string &name) noexcept {
    if (name.empty() || name.size() > max_name_length || name[0] == '.')
        return false;
    for (char c : name)
        if (!name_char(c))
            return false;
    return true;
}

void check_bare_name(const std::string &name) {
    if (name.empty())
        fail(Status::invalid, std::string("the name is empty: ") + name_rules);
    if (name.size() > max_name_length)
        fail(Status::invalid, "name " + quoted(name.substr(0, 20)) + "... is " +
                                  std::to_string(name.size()) + " characters long: " +
                                  name_rules);
    if (name[0] == '.')
        fail(Status::invalid, "name " + quoted(name) + " starts with '.': " + name_rules);
    for (size_t i = 0; i < name.size(); ++i)
        if (!name_char(name[i]))
            fail(Status::invalid, "name " + quoted(name) + " has character " +
                                      std::to_string(static_cast<unsigned char>(name[i])) +
                                      " at " + std::to_string(i) + ": " + name_rules);
}

std::string runtime_dir() {
    if (std::string given = env("PARALLAX_RUNTIME_DIR"); !given.empty()) {
        check_private_dir(given, true, "PARALLAX_RUNTIME_DIR");
        return given;
    }
    if (std::string xdg = env("XDG_RUNTIME_DIR"); !xdg.empty()) {
        std::string dir = xdg + "/parallax";
        make_private_dir(dir);
        check_private_dir(dir, false, "$XDG_RUNTIME_DIR/parallax");
        return dir;
    }
    std::string dir = "/tmp/parallax-" + std::to_string(::geteuid());
    make_private_dir(dir);
    check_private_dir(dir, false, "/tmp/parallax-<uid>");
    return dir;
}

std::string stats_path_for(const std::string &socket_path) {
    const size_t slash = socket_path.rfind('/');
    const size_t base = slash == std::string::npos ? 0 : slash + 1;
    return socket_path.substr(0, base) + "." + socket_path.substr(base) + ".stats";
}

StreamPaths paths_for(const std::string &name) {
    if (name.find('\0') != std::string::npos)
        fail(Status::invalid, "the name has a NUL byte");
    std::string socket;
    if (name.find('/') != std::string::npos) {
        if (name.back() == '/')
            fail(Status::invalid, "socket path " + quoted(name) +
                                      " ends with '/': it names a directory, not a socket");
        socket = name;
    } else {
        check_bare_name(name);
        socket = runtime_dir() + "/" + name;
    }
    if (socket.size() > max_socket_path_length)
        fail(Status::invalid, "socket path " + quoted(socket) + " is " +
                                  std::to_string(socket.size()) + " bytes; it must fit sun_path (" +
                                  std::to_string(max_socket_path_length) + " bytes)" +
                                  (name.find('/') == std::string::npos
                                       ? ": use a shorter name or runtime directory"
                                       : ""));
    return {socket, stats_path_for(socket)};
}

} // namespace px::stream
