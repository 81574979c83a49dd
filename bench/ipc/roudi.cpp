// SPDX-License-Identifier: Apache-2.0 OR MIT
// Starting and stopping iceoryx's daemon, iox-roudi, for the iceoryx rows. It runs with its
// process monitoring off (a benchmark process pinned next to a spinning peer may miss
// keep-alives) and with mempools sized for the frames of this run; its log goes to a file in
// the results directory, and the last lines of that log are the reason given when it fails.
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <vector>

#include "ipc_bench.hpp"

namespace pxipc {
namespace {

std::string read_file(const std::string &path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string last_lines(const std::string &text, int n) {
    std::vector<std::string> lines;
    std::stringstream s(text);
    for (std::string line; std::getline(s, line);) {
        // Drop the colour escapes of iceoryx's logger.
        std::string clean;
        for (size_t i = 0; i < line.size(); ++i) {
            if (line[i] == '\x1b') {
                while (i < line.size() && line[i] != 'm')
                    ++i;
                continue;
            }
            clean += line[i];
        }
        if (!clean.empty())
            lines.push_back(clean);
    }
    std::string out;
    for (size_t i = lines.size() > static_cast<size_t>(n) ? lines.size() - n : 0; i < lines.size();
         ++i)
        out += (out.empty() ? "" : " | ") + lines[i];
    return out.empty() ? "(no output)" : out;
}

void sleep_ms(int ms) {
    timespec t{ms / 1000, (ms % 1000) * 1'000'000L};
    nanosleep(&t, nullptr);
}

} // namespace

int roudi_start(const std::string &workdir, const std::vector<size_t> &frame_sizes,
                std::string &why, size_t chunks) {
    // One mempool per frame size (chunks of that many payload bytes; iceoryx adds its chunk
    // header itself) plus small chunks for acks. 8 chunks per frame size: enough for a queue of
    // 4 frames in flight plus those held by either side, and no more than one publisher may
    // loan at once, so that the leader can fill them all before measuring.
    std::string config = workdir + "/roudi_config.toml";
    {
        std::ofstream out(config);
        out << "# written by px_bench_ipc\n[general]\nversion = 1\n\n[[segment]]\n\n"
            << "[[segment.mempool]]\nsize = 128\ncount = 1000\n\n";
        for (size_t s : frame_sizes)
            out << "[[segment.mempool]]\nsize = " << s << "\ncount = " << chunks << "\n\n";
        if (!out) {
            why = "cannot write " + config;
            return -1;
        }
    }
    std::string log = workdir + "/roudi.log";
    pid_t pid = fork();
    if (pid < 0) {
        why = std::string("fork: ") + std::strerror(errno);
        return -1;
    }
    if (pid == 0) {
        int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        setpgid(0, 0); // not in the benchmark's process group, not hit by its Ctrl-C twice
        execlp("iox-roudi", "iox-roudi", "-c", config.c_str(), "-m", "off", "-l", "info",
               static_cast<char *>(nullptr));
        std::fprintf(stderr, "exec iox-roudi: %s\n", std::strerror(errno));
        _exit(127);
    }
    for (int waited = 0; waited < 20000; waited += 10) {
        std::string text = read_file(log);
        if (text.find("RouDi is ready for clients") != std::string::npos)
            return pid;
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            why = "iox-roudi exited (" +
                  (WIFEXITED(status) ? "status " + std::to_string(WEXITSTATUS(status))
                                     : "signal " + std::to_string(WTERMSIG(status))) +
                  "): " + last_lines(text, 3);
            return -1;
        }
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    why = "iox-roudi did not become ready within 20 s: " + last_lines(read_file(log), 3);
    return -1;
}

void roudi_stop(int pid) {
    if (pid <= 0)
        return;
    kill(pid, SIGTERM); // RouDi removes its shared memory on SIGTERM
    for (int waited = 0; waited < 5000; waited += 10) {
        if (waitpid(pid, nullptr, WNOHANG) == pid)
            return;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
}

} // namespace pxipc
