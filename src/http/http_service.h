#pragma once

// HttpService: what every HTTP connection on a listener shares — the router, WebSocket upgrade
// routes, limits and the host/origin policy. Built at start-up, read-only afterwards.

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <memory>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/router.h"
#include "http/types.h"
#include "net/connection_tracker.h"
#include "net/stream.h"

namespace boost::asio::ssl {
class context;
}

namespace magnetar::http {

struct HttpOptions {
  size_t max_body_bytes = 1 << 20;
  size_t max_header_bytes = 16 * 1024;
  // Host header values accepted (port stripped); "*.example.com" matches sub-domains; "*" any.
  std::vector<std::string> trusted_hosts = {"127.0.0.1", "localhost", "::1", "[::1]"};
  // Exact Origin values allowed for CORS and WebSocket handshakes; "*" allows any.
  std::vector<std::string> allowed_origins;
  std::chrono::seconds keep_alive_timeout{65};
  std::chrono::seconds request_timeout{30};
  // Set: every connection speaks TLS (HTTPS, WSS) with this context (net/tls.h); a plain HTTP
  // request gets a plain 400 and is closed. Null: plain HTTP and WebSocket.
  std::shared_ptr<boost::asio::ssl::context> tls;
  // A client that has not finished its TLS handshake by then is dropped.
  std::chrono::seconds tls_handshake_timeout{10};
  // How long a closing TLS connection waits for the peer's close_notify after sending its own
  // (which goes out at once). Short: an idle keep-alive client is not reading and never answers,
  // and TLS does not require the answer (RFC 8446 §6.1); it only delays the close.
  std::chrono::seconds tls_close_timeout{1};
};

// Takes over the connection (plain or TLS) of an HTTP request that asked to upgrade to WebSocket.
using UpgradeHandler = std::function<void(const RequestContextPtr&, net::AnyStream)>;

class HttpService {
 public:
  HttpService(HttpOptions options, net::ConnectionTracker& tracker)
      : options_(std::move(options)), tracker_(tracker) {}

  Router& router() { return router_; }
  const Router& router() const { return router_; }
  void AddUpgrade(std::string path, UpgradeHandler handler) {
    upgrades_[std::move(path)] = std::move(handler);
  }
  // Every upgrade whose path starts with `prefix` (exact paths win), for protocols that carry
  // names in the path (the Pulsar WebSocket API: /ws/v2/producer/...).
  void AddUpgradePrefix(std::string prefix, UpgradeHandler handler) {
    upgrade_prefixes_.emplace_back(std::move(prefix), std::move(handler));
  }
  const UpgradeHandler* FindUpgrade(const std::string& path) const {
    auto it = upgrades_.find(path);
    if (it != upgrades_.end()) return &it->second;
    for (const auto& [prefix, handler] : upgrade_prefixes_) {
      if (path.compare(0, prefix.size(), prefix) == 0) return &handler;
    }
    return nullptr;
  }
  const HttpOptions& options() const { return options_; }
  net::ConnectionTracker& tracker() { return tracker_; }

  bool HostTrusted(std::string_view host_header) const;
  bool OriginAllowed(std::string_view origin) const;

  // Starts serving one accepted connection.
  void Accept(boost::asio::ip::tcp::socket socket);

 private:
  HttpOptions options_;
  net::ConnectionTracker& tracker_;
  Router router_;
  std::unordered_map<std::string, UpgradeHandler> upgrades_;
  std::vector<std::pair<std::string, UpgradeHandler>> upgrade_prefixes_;
};

// True when the request's Origin is this server as the client reached it: the scheme of the
// connection and the Host header (which the trusted-hosts check has vetted), e.g. a page served
// by this server opening a WebSocket back to it. Not a cross-origin request, so the allowed
// origins need not list it.
bool IsSameOrigin(const RequestContext& ctx);

// Error bodies every route shares (relay spec §0.2).
Response NotFoundResponse();
Response MethodNotAllowedResponse();
Response InternalErrorResponse();
Response PayloadTooLargeResponse();

}  // namespace magnetar::http
