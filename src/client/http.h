#pragma once

// The library's HTTP/1.1 client over Beast (internal). One HttpClient talks to one relay and keeps
// its idle keep-alive connections for reuse; each request takes a connection (reusing an idle one
// or connecting a new one), so concurrent requests on one client each get their own.
//
// Threading: an HttpClient lives on one executor; request() must run there (every public class
// of the library runs its HttpClient on its own Runtime thread or on a private io_context).
// CancelState is the exception: cancel() may be called from any thread.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "client/tls_options.h"
#include "client/url.h"

namespace magnetar::client::detail {

struct HttpRequest {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  std::string target;        // "/api/v1/messages"
  std::string body;          // sent when non-empty or when content_type is set
  std::string content_type;  // "application/json", "application/x-www-form-urlencoded", ...
  std::vector<std::pair<std::string, std::string>> headers;
};

struct HttpResponse {
  int status = 0;
  std::string reason;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// Why a request got no response.
enum class HttpFailure {
  kConnect,         // resolve, TCP connect or TLS handshake failed (refused, unreachable, bad cert)
  kConnectTimeout,  // the connect phase took longer than its timeout
  kReadTimeout,     // no complete response within the read timeout
  kIo,              // the connection broke while sending or receiving
  kTooLarge,        // the response exceeded the body limit
  kCancelled,       // CancelState::cancel()
};

class HttpError : public std::runtime_error {
 public:
  HttpError(HttpFailure kind, const std::string& message)
      : std::runtime_error(message), kind_(kind) {}
  HttpFailure kind() const { return kind_; }
  bool timeout() const {
    return kind_ == HttpFailure::kConnectTimeout || kind_ == HttpFailure::kReadTimeout;
  }

 private:
  HttpFailure kind_;
};

struct HttpTimeouts {
  std::chrono::milliseconds connect{10'000};  // resolve + TCP + TLS handshake
  std::chrono::milliseconds read{10'000};     // send the request and receive the whole response
};

// Lets another thread interrupt a request or a backoff sleep. The current operation registers
// how to stop itself (closing its socket, cancelling its timer); cancel() runs that once.
class CancelState {
 public:
  void cancel();
  bool cancelled() const;
  // Runs `stop` now when already cancelled; otherwise keeps it for cancel().
  void set_handler(std::function<void()> stop);
  void clear_handler();

 private:
  mutable std::mutex mutex_;
  bool cancelled_ = false;
  std::function<void()> stop_;
};

// "Cancelled" as an exception type, so that callers can tell it from failures.
class Cancelled : public std::runtime_error {
 public:
  Cancelled() : std::runtime_error("operation cancelled") {}
};

class HttpClient {
 public:
  HttpClient(boost::asio::any_io_executor executor, RelayEndpoint endpoint, TlsOptions tls,
             std::size_t max_response_bytes = 64u << 20);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and reads the response; throws HttpError (or Cancelled). A request that
  // fails on a reused keep-alive connection before any response byte arrives (the server had
  // closed it) is sent once more on a new connection.
  boost::asio::awaitable<HttpResponse> request(HttpRequest request, HttpTimeouts timeouts,
                                               std::shared_ptr<CancelState> cancel = nullptr);

  // Drops the idle connections.
  void close_idle();

  const RelayEndpoint& endpoint() const { return endpoint_; }

 private:
  struct Connection;
  boost::asio::awaitable<std::shared_ptr<Connection>> connect(HttpTimeouts timeouts,
                                                              std::shared_ptr<CancelState> cancel);
  boost::asio::awaitable<HttpResponse> exchange(Connection& conn, const HttpRequest& request,
                                                HttpTimeouts timeouts, bool* nothing_received,
                                                bool* keep_alive);

  boost::asio::any_io_executor executor_;
  RelayEndpoint endpoint_;
  TlsOptions tls_options_;
  std::size_t max_response_bytes_;
  struct TlsContext;
  std::unique_ptr<TlsContext> tls_;
  std::vector<std::shared_ptr<Connection>> idle_;
};

// Percent-encodes `value` for an application/x-www-form-urlencoded body or a query string.
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace magnetar::client::detail

namespace magnetar::client::detail {

// One request on a private io_context on the calling thread, with a connection of its own (for
// rare calls: logins, refreshes, the device flow). Throws HttpError.
HttpResponse blocking_request(const RelayEndpoint& endpoint, const TlsOptions& tls,
                              HttpRequest request, HttpTimeouts timeouts);

// Python requests' raise_for_status() text: "404 Client Error: Not Found for url: <url>".
std::string status_error_text(const HttpResponse& response, const std::string& url);

}  // namespace magnetar::client::detail

namespace magnetar::client {
class TokenProvider;
}

namespace magnetar::client::detail {

// Drops `http`'s idle connections (run on its executor).
boost::asio::awaitable<void> close_idle(HttpClient* http);

// tokens->get_token(), after invalidate() when `refresh`: a blocking call, for a helper thread.
boost::asio::awaitable<std::string> blocking_get_token(std::shared_ptr<TokenProvider> tokens,
                                                       bool refresh);

}  // namespace magnetar::client::detail
