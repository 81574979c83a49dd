// SPDX-License-Identifier: Apache-2.0 OR MIT
// Names and the runtime directory: every rule of API.md, with the message naming the rule.
#include <doctest/doctest.h>

#include <csignal>
#include <set>
#include <sys/socket.h>
#include <sys/un.h>

#include "stream_support.hpp"

using namespace px_stream_test;

namespace {

px_status_t new_publisher(const char *name, px_publisher_t **pub) {
    return px_publisher_new(name, nullptr, pub);
}

bool message_has(const char *what) {
    return std::strstr(px_last_error_message(), what) != nullptr;
}

std::string mode_of(const std::string &path) {
    struct stat st {};
    ::stat(path.c_str(), &st);
    char text[8];
    std::snprintf(text, sizeof text, "%o", st.st_mode & 0777);
    return text;
}

} // namespace

TEST_CASE("a malformed name is PX_E_INVALID naming the rule it broke") {
    RuntimeDir dir;
    px_publisher_t *pub = nullptr;
    CHECK(new_publisher(nullptr, &pub) == PX_E_INVALID);
    CHECK(message_has("name is NULL"));
    CHECK(new_publisher("", &pub) == PX_E_INVALID);
    CHECK(message_has("empty"));
    CHECK(new_publisher(".hidden", &pub) == PX_E_INVALID);
    CHECK(message_has("starts with '.'"));
    CHECK(new_publisher("a b", &pub) == PX_E_INVALID);
    CHECK(message_has("character 32 at 1"));
    CHECK(new_publisher("caf\xc3\xa9", &pub) == PX_E_INVALID);
    CHECK(message_has("character 195 at 3"));
    CHECK(new_publisher(std::string(101, 'a').c_str(), &pub) == PX_E_INVALID);
    CHECK(message_has("101 characters"));
    CHECK(new_publisher("/tmp/", &pub) == PX_E_INVALID);
    CHECK(message_has("ends with '/'"));
    const std::string long_path = "/tmp/" + std::string(103, 'p');
    CHECK(new_publisher(long_path.c_str(), &pub) == PX_E_INVALID);
    CHECK(message_has("sun_path"));
    CHECK(pub == nullptr);
    // 100 characters is fine when the directory is short enough for sun_path; the longest
    // name the rules allow and a path at exactly 107 bytes both work.
    const std::string longest = std::string(100, 'n');
    const bool fits = dir.path.size() + 1 + longest.size() <= 107;
    CHECK((new_publisher(longest.c_str(), &pub) == PX_OK) == fits);
    px_publisher_release(pub);
    pub = nullptr;
    const std::string exact = dir.path + "/" + std::string(106 - dir.path.size(), 'x');
    REQUIRE(exact.size() == 107);
    CHECK(new_publisher(exact.c_str(), &pub) == PX_OK);
    px_publisher_release(pub);
    // Subscribers and px_stream_stats apply the same rules.
    px_subscriber_t *sub = nullptr;
    CHECK(px_subscriber_new("a:b", 0, &sub) == PX_E_INVALID);
    CHECK(message_has("character 58 at 1"));
    px_publisher_stats_t st;
    CHECK(px_stream_stats(".x", 0, &st) == PX_E_INVALID);
}

TEST_CASE("PARALLAX_RUNTIME_DIR is used as given: never created, and it must be ours alone") {
    RuntimeDir dir;
    px_publisher_t *pub = nullptr;
    const std::string missing = dir.path + "/missing";
    ::setenv("PARALLAX_RUNTIME_DIR", missing.c_str(), 1);
    CHECK(new_publisher("cam", &pub) == PX_E_INVALID);
    CHECK(message_has("never created"));
    struct stat st {};
    CHECK(::stat(missing.c_str(), &st) != 0);

    const std::string shared = dir.path + "/shared";
    REQUIRE(::mkdir(shared.c_str(), 0700) == 0);
    ::chmod(shared.c_str(), 0770);
    ::setenv("PARALLAX_RUNTIME_DIR", shared.c_str(), 1);
    CHECK(new_publisher("cam", &pub) == PX_E_PERMISSION);
    CHECK(message_has("writable by group or others"));
    ::chmod(shared.c_str(), 0755); // others may read and enter, not write: fine
    CHECK(new_publisher("cam", &pub) == PX_OK);
    px_publisher_release(pub);
    pub = nullptr;

    if (::geteuid() == 0) { // only root can give a directory away
        const std::string foreign = dir.path + "/foreign";
        REQUIRE(::mkdir(foreign.c_str(), 0700) == 0);
        REQUIRE(::chown(foreign.c_str(), 65534, 65534) == 0);
        ::setenv("PARALLAX_RUNTIME_DIR", foreign.c_str(), 1);
        CHECK(new_publisher("cam", &pub) == PX_E_PERMISSION);
        CHECK(message_has("owned by uid 65534"));
        px_subscriber_t *sub = nullptr;
        CHECK(px_subscriber_new("cam", 0, &sub) == PX_E_PERMISSION);
    }
    const std::string file = dir.path + "/file";
    std::fclose(std::fopen(file.c_str(), "w"));
    ::setenv("PARALLAX_RUNTIME_DIR", file.c_str(), 1);
    CHECK(new_publisher("cam", &pub) == PX_E_INVALID);
    CHECK(message_has("not a directory"));
    ::setenv("PARALLAX_RUNTIME_DIR", dir.path.c_str(), 1);
}

TEST_CASE("XDG_RUNTIME_DIR/parallax is made mode 0700, and refused when it is a symlink") {
    RuntimeDir dir;
    ::unsetenv("PARALLAX_RUNTIME_DIR");
    const char *old_xdg = std::getenv("XDG_RUNTIME_DIR");
    const std::string saved = old_xdg ? old_xdg : "";
    ::setenv("XDG_RUNTIME_DIR", dir.path.c_str(), 1);
    px_publisher_t *pub = nullptr;
    REQUIRE(new_publisher("cam", &pub) == PX_OK);
    CHECK(mode_of(dir.path + "/parallax") == "700");
    struct stat st {};
    CHECK(::lstat((dir.path + "/parallax/cam").c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK(::lstat((dir.path + "/parallax/.cam.stats").c_str(), &st) == 0);
    px_publisher_release(pub);
    CHECK(::lstat((dir.path + "/parallax/cam").c_str(), &st) != 0); // removed on release

    // Someone else's directory planted where ours would be made.
    const std::string other = dir.path + "/other";
    ::mkdir(other.c_str(), 0700);
    ::setenv("XDG_RUNTIME_DIR", other.c_str(), 1);
    REQUIRE(::symlink(dir.path.c_str(), (other + "/parallax").c_str()) == 0);
    CHECK(new_publisher("cam", &pub) == PX_E_PERMISSION);
    CHECK(message_has("symbolic link"));
    if (saved.empty())
        ::unsetenv("XDG_RUNTIME_DIR");
    else
        ::setenv("XDG_RUNTIME_DIR", saved.c_str(), 1);
}

TEST_CASE("a live publisher's name is PX_E_BUSY; a dead one's is taken over at once") {
    RuntimeDir dir;
    px_publisher_t *pub = nullptr;
    REQUIRE(new_publisher("cam", &pub) == PX_OK);
    px_publisher_t *second = nullptr;
    CHECK(new_publisher("cam", &second) == PX_E_BUSY);
    CHECK(message_has("live publisher"));
    CHECK(second == nullptr);
    px_publisher_release(pub);
    REQUIRE(new_publisher("cam", &pub) == PX_OK); // released: free again at once
    px_publisher_release(pub);

    Signal ready;
    pid_t child = fork_child([&] {
        px_publisher_t *p = nullptr;
        if (new_publisher("cam", &p) != PX_OK)
            return 1;
        ready.post();
        ::pause();
        return 0;
    });
    REQUIRE(ready.wait() == 'x');
    CHECK(new_publisher("cam", &second) == PX_E_BUSY);
    ::kill(child, SIGKILL);
    wait_child(child);
    // Its socket and stats page are still there, stale: replaced, no waiting.
    struct stat st {};
    CHECK(::lstat((dir.path + "/cam").c_str(), &st) == 0);
    CHECK(new_publisher("cam", &pub) == PX_OK);
    px_publisher_release(pub);
}

TEST_CASE("a socket path name is used as is") {
    RuntimeDir dir;
    const std::string path = dir.path + "/sub/dir.sock";
    ::mkdir((dir.path + "/sub").c_str(), 0700);
    px_publisher_t *pub = nullptr;
    REQUIRE(px_publisher_new(path.c_str(), nullptr, &pub) == PX_OK);
    struct stat st {};
    CHECK(::lstat(path.c_str(), &st) == 0);
    CHECK(::lstat((dir.path + "/sub/.dir.sock.stats").c_str(), &st) == 0);
    px_publisher_stats_t s;
    CHECK(px_stream_stats(path.c_str(), 0, &s) == PX_OK);
    px_publisher_release(pub);
}

TEST_CASE("px_stream_list names the live streams and skips stale sockets") {
    RuntimeDir dir;
    px_publisher_t *a = nullptr, *b = nullptr;
    REQUIRE(px_publisher_new("alpha", nullptr, &a) == PX_OK);
    REQUIRE(px_publisher_new("beta", nullptr, &b) == PX_OK);
    // A dead publisher's files (killed: nothing removed) and a plain listener's socket.
    Signal ready;
    pid_t child = fork_child([&] {
        px_publisher_t *p = nullptr;
        if (px_publisher_new("gamma", nullptr, &p) != PX_OK)
            return 1;
        ready.post();
        ::pause();
        return 0;
    });
    REQUIRE(ready.wait() == 'x');
    ::kill(child, SIGKILL);
    wait_child(child);
    px_listener_t *plain = nullptr;
    REQUIRE(px_listener_new((dir.path + "/plain").c_str(), &plain) == PX_OK);

    std::set<std::string> names;
    auto collect = [](const char *name, void *ctx) {
        static_cast<std::set<std::string> *>(ctx)->insert(name);
    };
    REQUIRE(px_stream_list(collect, &names) == PX_OK);
    CHECK(names == std::set<std::string>{"alpha", "beta"});
    struct stat st {};
    CHECK(::lstat((dir.path + "/gamma").c_str(), &st) == 0); // skipped, not removed
    CHECK(px_stream_list(nullptr, nullptr) == PX_E_INVALID);
    px_listener_release(plain);
    px_publisher_release(a);
    px_publisher_release(b);
}
