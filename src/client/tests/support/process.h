#pragma once

// Child processes for the integration tests: the real `magnetar` server (started the way
// tests/blackbox/conftest.py does: bootstrap admin and JWT secret in the environment, port 0, the
// port read back from its "listening on" line) and `magnetar` client commands with captured
// output.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace magnetar::client::testsupport {

// The magnetar binary: $MAGNETAR_BIN, else the one this build made (MAGNETAR_TEST_BIN).
std::string magnetar_binary();

// A fresh private directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A running child with its standard output and error collected by background threads.
class ChildProcess {
 public:
  // `env` entries are added to (or replace) the inherited environment; a value of nullopt removes
  // the variable.
  ChildProcess(std::vector<std::string> argv,
               std::map<std::string, std::optional<std::string>> env = {},
               std::optional<std::string> stdin_data = std::string());
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  std::string out() const;
  std::string err() const;
  // Waits until `pred(stdout, stderr)` holds; false on timeout or exit without it.
  bool wait_for(const std::function<bool(const std::string&, const std::string&)>& pred,
                std::chrono::milliseconds timeout);
  // Waits for the exit; the exit code (128 + signal when killed), or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  void signal(int sig);
  // Writes to standard input (when it was left open with stdin_data = nullopt).
  void write_stdin(const std::string& data);
  void close_stdin();

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  std::optional<int> status_;
  mutable std::mutex mutex_;
  std::string out_, err_;
  std::thread out_thread_, err_thread_;
};

struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs a command to completion (killed after `timeout`).
RunResult run_command(std::vector<std::string> argv,
                      std::map<std::string, std::optional<std::string>> env = {},
                      std::string stdin_data = {},
                      std::chrono::milliseconds timeout = std::chrono::seconds(60));

// `magnetar serve` on loopback with a known admin and JWT secret.
class MagnetarServer {
 public:
  // `storage`: "memory" or "rocksdb" (data in a temp dir kept across restart()).
  explicit MagnetarServer(std::string storage = "memory", std::vector<std::string> extra = {});
  ~MagnetarServer();

  // Starts on `port` (0 = any; restarts reuse the previous port).
  void start(uint16_t port = 0);
  void stop();  // SIGTERM and wait
  void kill();  // SIGKILL (a crash) and wait
  void restart() {
    stop();
    start(port_);
  }

  uint16_t port() const { return port_; }
  // The eFTL listener's port (a free one at the first start, the same one after a restart) and
  // the URL of a channel on it.
  uint16_t eftl_port() const { return eftl_port_; }
  std::string eftl_url(const std::string& channel) const {
    return "ws://127.0.0.1:" + std::to_string(eftl_port_) + "/" + channel;
  }
  // The Pulsar binary protocol port (a free one; restarts reuse it, so clients reconnect).
  uint16_t pulsar_port() const { return pulsar_port_; }
  // Its TLS listener (pulsar+ssl://), when started with --tls-cert/--tls-key; else 0.
  uint16_t pulsar_tls_port() const { return pulsar_tls_port_; }
  // http://, or https:// when started with --tls-cert/--tls-key.
  std::string url() const { return scheme_ + "://127.0.0.1:" + std::to_string(port_); }
  const std::string& admin_user() const { return admin_user_; }
  const std::string& admin_password() const { return admin_password_; }
  std::string log() const;

 private:
  std::string storage_;
  std::vector<std::string> extra_;
  TempDir dir_;
  std::string secret_;
  std::string admin_user_ = "admin";
  std::string admin_password_;
  uint16_t port_ = 0;
  uint16_t eftl_port_ = 0;
  uint16_t pulsar_port_ = 0;
  uint16_t pulsar_tls_port_ = 0;
  std::string scheme_ = "http";
  std::unique_ptr<ChildProcess> proc_;
};

}  // namespace magnetar::client::testsupport
