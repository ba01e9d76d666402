#pragma once

// A scripted HTTP/1.1 server for the client's unit tests: real sockets on 127.0.0.1:0, its own
// thread, keep-alive, and per-route replies that can be delayed (read timeouts) or dropped
// (connection closed without an answer). Every request is recorded.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace magnetar::client::testsupport {

struct Recorded {
  std::string method;  // "POST"
  std::string target;  // "/api/v1/topics/x%2Fy/messages?limit=1"
  std::string path;    // target before '?'
  std::string query;   // after '?'
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::chrono::steady_clock::time_point at;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

struct Reply {
  int status = 200;
  std::string body = "{}";
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds delay{0};  // wait before answering
  bool drop = false;                   // close the connection instead of answering
};

using Handler = std::function<Reply(const Recorded&)>;

class FakeHttpServer {
 public:
  FakeHttpServer();
  ~FakeHttpServer();
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  uint16_t port() const { return port_; }

  // `handler` answers METHOD PATH (replaces an earlier one). Unrouted requests get 404.
  void route(const std::string& method, const std::string& path, Handler handler);
  // Replies in order, the last one repeating.
  void script(const std::string& method, const std::string& path, std::vector<Reply> replies);

  std::vector<Recorded> requests() const;
  std::vector<Recorded> requests(const std::string& method, const std::string& path) const;
  size_t count(const std::string& method, const std::string& path) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

// A loopback port with nothing listening (connections are refused).
uint16_t closed_port();

}  // namespace magnetar::client::testsupport
