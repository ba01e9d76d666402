#pragma once

// The HTTP vocabulary handlers use: a request context (owning the parsed request) and a Response.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace magnetar::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Verb = boost::beast::http::verb;

struct Response {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;

  static Response Json(unsigned status, std::string body) {
    return Response{status, std::move(body), "application/json", {}};
  }
  static Response Text(unsigned status, std::string body) {
    return Response{status, std::move(body), "text/plain; charset=utf-8", {}};
  }
  static Response Html(unsigned status, std::string body) {
    return Response{status, std::move(body), "text/html; charset=utf-8", {}};
  }
  static Response Empty(unsigned status) { return Response{status, {}, {}, {}}; }
  Response&& WithHeader(std::string name, std::string value) && {
    headers.emplace_back(std::move(name), std::move(value));
    return std::move(*this);
  }
};

// Everything a handler knows about one request. Shared so parked handlers (long-poll) can keep it.
// Lives on the connection's executor; handlers may complete from any thread via the Responder.
struct RequestContext {
  Request request;
  std::string path;                                          // decoded
  std::vector<std::pair<std::string, std::string>> path_params;  // decoded, from {name} segments
  std::vector<std::pair<std::string, std::string>> query;    // decoded, in order
  boost::asio::any_io_executor executor;
  boost::asio::ip::tcp::endpoint remote;
  // The request came over TLS (https://, wss://). Anything that builds an absolute URL of this
  // server from the request (e.g. a verification_uri) uses it to choose the scheme.
  bool is_tls = false;

  std::optional<std::string_view> Query(std::string_view name) const {
    for (const auto& [k, v] : query) {
      if (k == name) return std::string_view(v);
    }
    return std::nullopt;
  }
  std::string_view Param(std::string_view name) const {
    for (const auto& [k, v] : path_params) {
      if (k == name) return v;
    }
    return {};
  }
  std::string_view Header(boost::beast::http::field f) const {
    auto it = request.find(f);
    return it == request.end() ? std::string_view() : std::string_view(it->value());
  }
  std::string_view Header(std::string_view name) const {
    auto it = request.find(name);
    return it == request.end() ? std::string_view() : std::string_view(it->value());
  }

  // A parked handler sets this; the connection calls it (on its executor) if the client goes
  // away before the response is written.
  std::function<void()> on_client_gone;
};

using RequestContextPtr = std::shared_ptr<RequestContext>;
// Completes a request. Call exactly once, from any thread.
using Responder = std::function<void(Response)>;
using Handler = std::function<void(const RequestContextPtr&, Responder)>;

}  // namespace magnetar::http
