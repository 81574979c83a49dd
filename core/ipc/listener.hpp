// Listener: a socket path (mode 0600) that accepts channels.
#pragma once

#include <string>

#include "core/ipc/channel.hpp"
#include "core/ref.hpp"

namespace px::ipc {

class Listener final : public RefCounted {
public:
    // A stale socket file at `path` (nobody listening) is replaced; a live one is busy; any
    // other kind of file is refused.
    static Ref<Listener> create(const std::string &path);
    // timeout_ns: < 0 forever, 0 poll, > 0 wait. The handshake is bounded too.
    Ref<Channel> accept(int64_t timeout_ns);
    int fd() const noexcept { return fd_; }
    ~Listener() override; // closes and removes the socket file

private:
    Listener(int fd, std::string path, dev_t dev, ino_t ino)
        : fd_(fd), path_(std::move(path)), dev_(dev), ino_(ino) {}
    int fd_;
    std::string path_;
    dev_t dev_;
    ino_t ino_;
};

} // namespace px::ipc
