// Closes an fd at the end of a scope unless release() handed it on.
#pragma once

#include <unistd.h>
#include <utility>

namespace px {

struct FdGuard {
    int fd;
    ~FdGuard() {
        if (fd >= 0)
            ::close(fd);
    }
    int release() { return std::exchange(fd, -1); }
};

} // namespace px
