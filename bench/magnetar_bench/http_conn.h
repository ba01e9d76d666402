#pragma once

// HttpConn: one keep-alive HTTP/1.1 client connection for load generation. One request at a
// time (no pipelining); the caller owns the request bytes and keeps them alive until the
// response. The read buffer and the completion path are reused, so once warmed up a
// request/response cycle does not allocate (Asio recycles its per-operation memory).
//
// The response parser understands what a relay server can send: Content-Length bodies, chunked
// bodies and bodies ending at connection close. A response is handed to the listener as views
// into the connection's buffer, valid only during the callback.
//
// Threading: lives on one io_context; call it only from there.

#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/magnetar_bench/common.h"

namespace magnetar::bench {

struct HttpResponse {
  int status = 0;
  std::string_view body;
};

class HttpConn;

class HttpListener {
 public:
  virtual ~HttpListener() = default;
  virtual void OnConnected(HttpConn& conn) = 0;
  // `now_ns` is the time the response was complete.
  virtual void OnResponse(HttpConn& conn, const HttpResponse& response, uint64_t now_ns) = 0;
  // Connecting, writing or reading failed, or the server closed; the connection is closed.
  virtual void OnFailed(HttpConn& conn, const std::string& what) = 0;
};

// Opens a TCP socket bound to `source` (if any) without reserving a port before connect, so
// several source addresses multiply the usable ephemeral ports.
boost::system::error_code OpenBound(tcp::socket& socket, const tcp::endpoint& remote,
                                    const std::optional<asio::ip::address>& source);

class HttpConn {
 public:
  HttpConn(asio::io_context& io, const Target& target, std::optional<asio::ip::address> source,
           HttpListener* listener);
  HttpConn(const HttpConn&) = delete;
  HttpConn& operator=(const HttpConn&) = delete;

  void Connect();
  // Sends `request` (kept alive by the caller) and reads one response.
  void Send(std::string_view request);
  void Close();
  bool open() const { return open_; }
  asio::io_context& io() { return io_; }

 private:
  void Read();
  void OnRead(const boost::system::error_code& ec, size_t n);
  // Returns true when a whole response was parsed (and delivered).
  bool TryParse(uint64_t now_ns);
  void Fail(const std::string& what);

  asio::io_context& io_;
  const Target& target_;
  std::optional<asio::ip::address> source_;
  HttpListener* listener_;
  tcp::socket socket_;
  std::vector<char> buf_;
  size_t len_ = 0;          // bytes in buf_
  size_t header_scan_ = 0;  // where the search for the header end resumes
  std::string chunked_body_;
  bool open_ = false;
  bool connecting_ = false;
  uint32_t gen_ = 0;  // bumped on close; handlers of older sockets ignore themselves
  bool eof_ = false;
};

}  // namespace magnetar::bench
