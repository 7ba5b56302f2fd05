#include "harness/launch.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>

#include "harness/errors.h"

namespace capbench {
namespace {

volatile std::sig_atomic_t forwarded_signal = 0;
void remember_signal(int signal) {
  forwarded_signal = signal;
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("finding a free port: " + why);
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

int launch_local_ranks(const LaunchOptions& o, const std::vector<std::string>& command) {
  if (o.ranks < 1 || o.ranks > 1024)
    throw UsageError(fmt::format("-n must be in [1, 1024], got {}", o.ranks));
  if (o.port < 0 || o.port > 65535)
    throw UsageError(fmt::format("--port must be in [1, 65535], got {}", o.port));
  if (command.empty())
    throw UsageError("launch needs a capbench command after --, e.g. launch -n 2 -- run SUITE");
  const int port = o.port ? o.port : free_local_port();
  struct sigaction action {};
  action.sa_handler = remember_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  std::vector<pid_t> pids;
  for (int rank = 0; rank < o.ranks; ++rank) {
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      // Its own process group: a terminal's Ctrl-C reaches the launcher, which forwards it once.
      ::setpgid(0, 0);
      ::setenv("RANK", std::to_string(rank).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(o.ranks).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.ranks).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      ::unsetenv("TORCHELASTIC_USE_AGENT_STORE");
      std::vector<std::string> args{"capbench"};
      args.insert(args.end(), command.begin(), command.end());
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "capbench launch: cannot start rank %d: %s\n", rank,
                   std::strerror(errno));
      ::_exit(127);
    }
    pids.push_back(pid);
  }

  std::vector<int> codes(pids.size(), -1);
  size_t running = pids.size();
  int forwarded = 0;
  double failed_at = -1;
  int first_failed = -1;
  const auto now = [] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  const auto signal_all = [&](int signal) {
    for (size_t i = 0; i < pids.size(); ++i)
      if (codes[i] < 0) ::kill(pids[i], signal);
  };
  bool terminated = false, killed = false;
  while (running > 0) {
    if (forwarded_signal && forwarded_signal != forwarded) {
      forwarded = forwarded_signal;
      signal_all(forwarded);
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (size_t i = 0; i < pids.size(); ++i)
        if (pids[i] == pid && codes[i] < 0) {
          codes[i] = exit_code_of(status);
          --running;
          if (codes[i] != 0 && failed_at < 0) {
            failed_at = now();
            first_failed = static_cast<int>(i);
            if (running > 0)
              std::fprintf(stderr,
                           "capbench launch: rank %zu exited with %d; the other ranks get %.0f s "
                           "to finish before they are stopped\n",
                           i, codes[i], o.grace_s);
          }
        }
      continue;
    }
    if (failed_at >= 0 && !terminated && now() - failed_at > o.grace_s) {
      signal_all(SIGTERM);
      terminated = true;
    }
    if (terminated && !killed && now() - failed_at > o.grace_s + 10) {
      signal_all(SIGKILL);
      killed = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (codes[0] != 0) return codes[0];
  if (first_failed >= 0) return codes[static_cast<size_t>(first_failed)];
  for (int c : codes)
    if (c != 0) return c;
  return 0;
}

}  // namespace capbench
