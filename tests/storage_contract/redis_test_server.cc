#include "tests/storage_contract/redis_test_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

namespace magnetar::contract {
namespace {

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

bool Accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

class TestRedis {
 public:
  ~TestRedis() {
    Stop();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  Result<std::string> Url() {
    std::lock_guard lock(mutex_);
    if (const char* url = getenv("MAGNETAR_TEST_REDIS_URL"); url && *url) return std::string(url);
    if (pid_ <= 0) {
      Status started = StartLocked(/*new_port=*/port_ == 0);
      if (!started.ok()) return started;
    }
    return "redis://127.0.0.1:" + std::to_string(port_);
  }

  Status Restart() {
    std::lock_guard lock(mutex_);
    StopLocked();
    return StartLocked(false);
  }
  Status StopOnly() {
    std::lock_guard lock(mutex_);
    StopLocked();
    return Status::Ok();
  }
  Status StartOnly() {
    std::lock_guard lock(mutex_);
    return StartLocked(false);
  }
  void Stop() {
    std::lock_guard lock(mutex_);
    StopLocked();
  }

 private:
  Status StartLocked(bool new_port) {
    if (dir_.empty()) {
      const char* base = getenv("TMPDIR");
      std::string pattern = std::string(base && *base ? base : "/tmp") + "/magnetar-redis-XXXXXX";
      if (mkdtemp(pattern.data()) == nullptr) return Internal("mkdtemp failed");
      dir_ = pattern;
    }
    std::string last_error;
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (new_port || port_ == 0) port_ = FreePort();
      const std::string port = std::to_string(port_);
      const std::string log = dir_ + "/redis.log";
      std::vector<std::string> args = {"redis-server", "--port", port, "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "yes", "--appendfsync",
                                       "always", "--dir", dir_, "--daemonize", "no",
                                       "--logfile", log};
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      const pid_t parent = getpid();
      const pid_t pid = fork();
      if (pid < 0) return Internal("fork failed");
      if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        const int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
          dup2(devnull, 1);
          dup2(devnull, 2);
        }
        execvp("redis-server", argv.data());
        _exit(127);
      }
      pid_ = pid;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
          pid_ = 0;
          last_error = WIFEXITED(status) && WEXITSTATUS(status) == 127
                           ? "redis-server is not installed (apt-get install redis-server; "
                             "scripts/deps.sh)"
                           : "redis-server exited at start (see " + log + ")";
          break;
        }
        if (Accepts(port_)) return Status::Ok();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (pid_ > 0) {
        StopLocked();
        last_error = "redis-server did not accept connections on port " + port;
      }
      if (last_error.find("not installed") != std::string::npos) break;
      new_port = true;
    }
    return Unavailable(last_error);
  }

  void StopLocked() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = 0;
  }

  std::mutex mutex_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = 0;
};

TestRedis& Instance() {
  static TestRedis redis;
  return redis;
}

}  // namespace

Result<std::string> TestRedisUrl() { return Instance().Url(); }
Status RestartTestRedis() { return Instance().Restart(); }
Status StopTestRedis() { return Instance().StopOnly(); }
Status StartTestRedis() { return Instance().StartOnly(); }

}  // namespace magnetar::contract
