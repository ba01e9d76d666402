// Fuzzes the HTTP/1.1 front door: the input is raw bytes from a client. They go through a Beast
// request_parser<string_body> with the server's limits (header 16 KiB, body 1 MiB), fed in
// pieces as a socket would deliver them; a request that parses is then routed the way
// http_session.cc does it: Boost.URL origin-form target parsing (ParseTarget), the WebSocket
// upgrade check, and http::Router::Find over the relay's route templates.

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "http/http_service.h"
#include "http/router.h"
#include "http/target.h"
#include "http/types.h"

namespace magnetar::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

constexpr size_t kMaxHeaderBytes = 16 * 1024;  // HttpOptions defaults
constexpr size_t kMaxBodyBytes = 1 << 20;

// The relay's routes (src/relay/*_routes.cc), in registration order.
struct RouteSpec {
  Verb method;
  const char* path;
};
constexpr RouteSpec kRoutes[] = {
    {Verb::get, "/health"},
    {Verb::get, "/ready"},
    {Verb::post, "/auth/login"},
    {Verb::post, "/auth/register"},
    {Verb::get, "/auth/me"},
    {Verb::post, "/auth/logout"},
    {Verb::post, "/api/v1/topics"},
    {Verb::get, "/api/v1/topics"},
    {Verb::get, "/api/v1/topics/stats"},
    {Verb::get, "/api/v1/topics/{topic_name}"},
    {Verb::get, "/api/v1/topics/{topic_name}/messages"},
    {Verb::put, "/api/v1/topics/{topic_name}"},
    {Verb::delete_, "/api/v1/topics/{topic_name}"},
    {Verb::post, "/api/v1/messages"},
    {Verb::post, "/api/v1/messages/bulk"},
    {Verb::post, "/messages/poll"},
    {Verb::get, "/messages/poll/stats"},
};
constexpr std::string_view kUpgradePath = "/ws";

const Router& RelayRouter() {
  static const Router router = [] {
    Router r;
    for (size_t i = 0; i < std::size(kRoutes); ++i) {
      r.Add(kRoutes[i].method, kRoutes[i].path, [](const RequestContextPtr&, Responder) {});
    }
    return r;
  }();
  return router;
}

void Route(Request request) {
  RequestContext ctx;
  ctx.request = std::move(request);
  ParsedTarget target;
  if (!ParseTarget(ctx.request.target(), ctx, target)) return;
  const auto& segments = target.segments;
  const bool trailing_slash = target.trailing_slash;
  const std::string& raw_path = target.raw_path;
  for (const auto& s : segments) FUZZ_CHECK(!s.empty());
  FUZZ_CHECK(!trailing_slash || raw_path.back() == '/');

  // The handlers' view of the request.
  (void)ctx.Header(bhttp::field::authorization);
  (void)ctx.Header("Idempotency-Key");
  (void)ctx.Query("limit");
  (void)ctx.request.keep_alive();

  if (beast::websocket::is_upgrade(ctx.request)) {
    (void)(ctx.path == kUpgradePath);  // HttpService::FindUpgrade is an exact lookup
    return;
  }
  auto match = RelayRouter().Find(ctx.request.method(), segments, trailing_slash, raw_path);
  switch (match.kind) {
    case Router::Match::Kind::kFound:
      FUZZ_CHECK(match.handler != nullptr);
      for (const auto& [name, value] : match.params) {
        FUZZ_CHECK(name == "topic_name");
        FUZZ_CHECK(!value.empty());
      }
      break;
    case Router::Match::Kind::kRedirect: {
      FUZZ_CHECK(trailing_slash);
      // The path without its trailing slash, with a run of leading slashes collapsed to one: a
      // Location of "//host/..." would be protocol-relative, an open redirect.
      const std::string_view without_slash =
          std::string_view(raw_path).substr(0, raw_path.size() - 1);
      FUZZ_CHECK(!match.redirect_to.empty() && match.redirect_to[0] == '/');
      FUZZ_CHECK(match.redirect_to.size() < 2 || match.redirect_to[1] != '/');
      FUZZ_CHECK(without_slash.ends_with(match.redirect_to));
      const std::string_view removed =
          without_slash.substr(0, without_slash.size() - match.redirect_to.size());
      FUZZ_CHECK(removed.find_first_not_of('/') == std::string_view::npos);
      // The Location header the session would send keeps the query.
      std::string location = match.redirect_to;
      auto target = ctx.request.target();
      if (auto q = target.find('?'); q != std::string_view::npos) location += target.substr(q);
      break;
    }
    case Router::Match::Kind::kNotFound:
    case Router::Match::Kind::kMethodNotAllowed:
      FUZZ_CHECK(match.handler == nullptr);
      break;
  }
  // Split the decoded path too (the router's own splitter must agree on emptiness).
  (void)SplitPath(ctx.path);
}

}  // namespace
}  // namespace magnetar::http

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace bhttp = boost::beast::http;
  using namespace magnetar::http;
  if (size == 0) return 0;
  // The first byte picks how the bytes arrive (1-256 per read), the rest is the stream.
  const size_t chunk = static_cast<size_t>(data[0]) + 1;
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(static_cast<uint32_t>(kMaxHeaderBytes));
  parser.body_limit(kMaxBodyBytes);
  parser.eager(true);

  std::string buffer;  // received, not yet consumed (a flat_buffer's readable bytes)
  size_t offset = 0;
  boost::beast::error_code ec;
  while (!parser.is_done()) {
    if (offset < stream.size()) {
      const size_t n = std::min(chunk, stream.size() - offset);
      buffer.append(stream.substr(offset, n));
      offset += n;
    } else {
      // The client closed. Beast's read does what follows: nothing received is end_of_stream,
      // otherwise the parser hears of the EOF (a body delimited by EOF may end here).
      if (!parser.got_some()) return 0;
      parser.put_eof(ec);
      break;
    }
    // Consume as much as the parser takes; need_more means "read more bytes".
    while (!buffer.empty() && !parser.is_done()) {
      const size_t used = parser.put(boost::asio::buffer(buffer.data(), buffer.size()), ec);
      buffer.erase(0, used);
      if (ec == bhttp::error::need_more) {
        ec = {};
        break;
      }
      if (ec) break;
      if (used == 0) break;
    }
    if (ec) break;
    // http_session.cc answers a Content-Length over the cap right after the header (413).
    if (parser.is_header_done()) {
      if (auto length = parser.content_length(); length && *length > kMaxBodyBytes) return 0;
    }
  }
  if (ec || !parser.is_done()) return 0;
  FUZZ_CHECK(parser.get().body().size() <= kMaxBodyBytes);
  Route(parser.release());
  return 0;
}
