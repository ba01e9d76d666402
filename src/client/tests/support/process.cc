#include "client/tests/support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace magnetar::client::testsupport {

namespace {

std::string RandomHex(int n) {
  static std::mt19937_64 rng{std::random_device{}()};
  static std::mutex m;
  std::lock_guard lock(m);
  const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(hex[rng() % 16]);
  return s;
}

void ReadAll(int fd, std::string* sink, std::mutex* mutex) {
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::lock_guard lock(*mutex);
    sink->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
}

}  // namespace

std::string magnetar_binary() {
  if (const char* env = std::getenv("MAGNETAR_BIN"); env && *env) return env;
#ifdef MAGNETAR_TEST_BIN
  return MAGNETAR_TEST_BIN;
#else
  return "magnetar";
#endif
}

TempDir::TempDir() {
  path_ = std::filesystem::temp_directory_path() / ("magnetar-client-test-" + RandomHex(12));
  std::filesystem::create_directories(path_);
  std::filesystem::permissions(path_, std::filesystem::perms::owner_all);
}

TempDir::~TempDir() {
  std::error_code ec;
  // Tests chmod some directories read-only; give them back so they can be removed.
  for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) {
      std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all, ec);
    }
  }
  std::filesystem::remove_all(path_, ec);
}

ChildProcess::ChildProcess(std::vector<std::string> argv,
                           std::map<std::string, std::optional<std::string>> env,
                           std::optional<std::string> stdin_data) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) {
    throw std::runtime_error("pipe failed");
  }
  // The environment, built before fork.
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) vars[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : env) {
    if (v) {
      vars[k] = *v;
    } else {
      vars.erase(k);
    }
  }
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : vars) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::setpgid(0, 0);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  stdin_fd_ = in[1];
  out_thread_ = std::thread(ReadAll, out[0], &out_, &mutex_);
  err_thread_ = std::thread(ReadAll, err[0], &err_, &mutex_);
  if (stdin_data) {
    write_stdin(*stdin_data);
    close_stdin();
  }
}

ChildProcess::~ChildProcess() {
  if (!status_) {
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(10));
  }
  close_stdin();
  if (out_thread_.joinable()) out_thread_.join();
  if (err_thread_.joinable()) err_thread_.join();
}

std::string ChildProcess::out() const {
  std::lock_guard lock(mutex_);
  return out_;
}

std::string ChildProcess::err() const {
  std::lock_guard lock(mutex_);
  return err_;
}

void ChildProcess::write_stdin(const std::string& data) {
  size_t done = 0;
  while (done < data.size() && stdin_fd_ >= 0) {
    ssize_t n = ::write(stdin_fd_, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
}

void ChildProcess::close_stdin() {
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  stdin_fd_ = -1;
}

void ChildProcess::signal(int sig) {
  if (!status_) ::kill(pid_, sig);
}

bool ChildProcess::wait_for(const std::function<bool(const std::string&, const std::string&)>& pred,
                            std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred(out(), err())) return true;
    if (status_) return pred(out(), err());
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      if (out_thread_.joinable()) out_thread_.join();
      if (err_thread_.joinable()) err_thread_.join();
      return pred(out(), err());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (out_thread_.joinable()) out_thread_.join();
  if (err_thread_.joinable()) err_thread_.join();
  return status_;
}

RunResult run_command(std::vector<std::string> argv,
                      std::map<std::string, std::optional<std::string>> env, std::string stdin_data,
                      std::chrono::milliseconds timeout) {
  ChildProcess child(std::move(argv), std::move(env), std::move(stdin_data));
  RunResult r;
  auto code = child.wait(timeout);
  if (!code) {
    child.signal(SIGKILL);
    code = child.wait(std::chrono::seconds(5));
    r.code = -1;
  } else {
    r.code = *code;
  }
  r.out = child.out();
  r.err = child.err();
  return r;
}

// ---- MagnetarServer ----------------------------------------------------------------------------

MagnetarServer::MagnetarServer(std::string storage, std::vector<std::string> extra)
    : storage_(std::move(storage)), extra_(std::move(extra)) {
  secret_ = RandomHex(48);
  admin_password_ = "pw-" + RandomHex(16);
}

MagnetarServer::~MagnetarServer() { stop(); }

void MagnetarServer::start(uint16_t port) {
  std::vector<std::string> argv{
      magnetar_binary(), "serve", "--host", "127.0.0.1", "--port", std::to_string(port),
      "--storage", storage_, "--data-dir", (dir_.path() / "data").string(),
      // Tests run servers side by side: no extra listener may take its fixed default port (the
      // Pulsar and eFTL ports are kept across restarts, so clients reconnect).
      "--pulsar-port", std::to_string(pulsar_port_), "--eftl-port",
      std::to_string(port == 0 ? 0 : eftl_port_), "--pulsar-ws-port", "0",
      "--pulsar-tls-port", std::to_string(pulsar_tls_port_),
      // The contract's rate limits would trip on the tests' logins.
      "--rate-limit-login", "0", "--rate-limit-refresh", "0", "--rate-limit-publish", "0",
      "--rate-limit-bulk", "0", "--rate-limit-device-code", "0"};
  argv.insert(argv.end(), extra_.begin(), extra_.end());
  std::map<std::string, std::optional<std::string>> env;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    if (kv.rfind("PULSAR_", 0) == 0 || kv.rfind("MAGNETAR_", 0) == 0) {
      env[kv.substr(0, kv.find('='))] = std::nullopt;
    }
  }
  env["PULSAR_JWT_SECRET_KEY"] = secret_;
  env["PULSAR_BOOTSTRAP_ADMIN_USERNAME"] = admin_user_;
  env["PULSAR_BOOTSTRAP_ADMIN_PASSWORD"] = admin_password_;
  env["PULSAR_TRUSTED_HOSTS"] = R"(["127.0.0.1","localhost"])";
  proc_ = std::make_unique<ChildProcess>(argv, env);
  std::smatch m;
  const std::regex listening(R"(listening on (https?)://127\.0\.0\.1:(\d+))");
  const bool up = proc_->wait_for(
      [&](const std::string& out, const std::string&) {
        return std::regex_search(out, m, listening);
      },
      std::chrono::seconds(30));
  if (!up) throw std::runtime_error("magnetar did not start: " + proc_->out() + proc_->err());
  const std::string out = proc_->out();
  std::regex_search(out, m, listening);
  scheme_ = m[1].str();
  port_ = static_cast<uint16_t>(std::stoi(m[2].str()));
  // The eFTL line follows the relay's (absent when the server has no eFTL listener).
  const std::regex eftl_listening(R"(magnetar eftl listening on wss?://[^/]+:(\d+)/)");
  if (proc_->wait_for(
          [&](const std::string& o, const std::string&) {
            return std::regex_search(o, m, eftl_listening);
          },
          std::chrono::seconds(5))) {
    const std::string again = proc_->out();
    std::regex_search(again, m, eftl_listening);
    eftl_port_ = static_cast<uint16_t>(std::stoi(m[1].str()));
  }
  const std::regex pulsar(R"(Pulsar binary protocol on pulsar://[^:]+:(\d+))");
  std::smatch pm;
  if (proc_->wait_for(
          [&](const std::string& out, const std::string& err) {
            const std::string all = out + err;
            return std::regex_search(all, pm, pulsar);
          },
          std::chrono::seconds(10))) {
    const std::string all = proc_->out() + proc_->err();
    std::regex_search(all, pm, pulsar);
    pulsar_port_ = static_cast<uint16_t>(std::stoi(pm[1].str()));
  }
  // Logged just after the plain one, when the server has TLS.
  const std::regex pulsar_tls(R"(Pulsar binary protocol over TLS on pulsar\+ssl://[^:]+:(\d+))");
  const bool with_tls = std::find(extra_.begin(), extra_.end(), "--tls-cert") != extra_.end();
  if (with_tls && proc_->wait_for(
                      [&](const std::string& out, const std::string& err) {
                        const std::string all = out + err;
                        return std::regex_search(all, pm, pulsar_tls);
                      },
                      std::chrono::seconds(10))) {
    const std::string all = proc_->out() + proc_->err();
    std::regex_search(all, pm, pulsar_tls);
    pulsar_tls_port_ = static_cast<uint16_t>(std::stoi(pm[1].str()));
  }
}

void MagnetarServer::kill() {
  if (!proc_) return;
  proc_->signal(SIGKILL);
  proc_->wait(std::chrono::seconds(10));
  proc_.reset();
}

void MagnetarServer::stop() {
  if (!proc_) return;
  proc_->signal(SIGTERM);
  if (!proc_->wait(std::chrono::seconds(15))) {
    proc_->signal(SIGKILL);
    proc_->wait(std::chrono::seconds(5));
  }
  proc_.reset();
}

std::string MagnetarServer::log() const { return proc_ ? proc_->out() + proc_->err() : ""; }

}  // namespace magnetar::client::testsupport
