#include "http/http_session.h"

#include <boost/asio/dispatch.hpp>
#include <algorithm>
#include <boost/beast/websocket/rfc6455.hpp>

#include "common/log.h"
#include "http/target.h"

namespace magnetar::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::string_view kCorsMethods = "GET, POST, PUT, DELETE, OPTIONS";
constexpr std::string_view kCorsHeaders = "Authorization, Content-Type";

}  // namespace

void HttpService::Accept(tcp::socket socket) {
  auto session = std::make_shared<HttpSession>(*this, std::move(socket));
  session->Start();
}

HttpSession::HttpSession(HttpService& service, tcp::socket socket)
    : service_(service), stream_(std::move(socket)) {}

HttpSession::~HttpSession() { service_.tracker().Remove(tracker_id_); }

void HttpSession::Start() {
  tracker_id_ = service_.tracker().Add(weak_from_this());
  asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
}

void HttpSession::Shutdown() {
  asio::post(stream_.get_executor(), [self = shared_from_this()] {
    self->shutting_down_ = true;
    self->keep_alive_ = false;
    if (!self->busy_) self->Close();
  });
}

void HttpSession::Close() {
  if (closed_) return;
  closed_ = true;
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.close();
}

void HttpSession::ReadHeader() {
  if (shutting_down_ || closed_) return Close();
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(service_.options().max_header_bytes));
  parser_->body_limit(service_.options().max_body_bytes);
  stream_.expires_after(service_.options().keep_alive_timeout);
  bhttp::async_read_header(stream_, buffer_, *parser_,
                           [self = shared_from_this()](beast::error_code ec, size_t) {
                             self->OnHeader(ec);
                           });
}

void HttpSession::OnHeader(beast::error_code ec) {
  if (ec == bhttp::error::body_limit) {
    // A Content-Length over the cap fails the header parse itself: answer without reading it.
    return SendAndClose(PayloadTooLargeResponse());
  }
  if (ec == bhttp::error::header_limit) {
    return SendAndClose(Response::Json(431, R"({"detail":"Request header fields too large"})"));
  }
  if (ec) return Close();  // end of stream, timeout, garbage: nothing to answer
  const auto& req = parser_->get();
  if (!service_.HostTrusted(req[bhttp::field::host])) {
    return SendAndClose(Response::Text(400, "Invalid host header"));
  }
  if (auto length = parser_->content_length();
      length && *length > service_.options().max_body_bytes) {
    // Answer without reading the body, then close: the unread bytes make the stream unusable.
    return SendAndClose(PayloadTooLargeResponse());
  }
  if (beast::websocket::is_upgrade(req)) return Upgrade(parser_->release());
  stream_.expires_after(service_.options().request_timeout);
  bhttp::async_read(stream_, buffer_, *parser_,
                    [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
}

void HttpSession::OnBody(beast::error_code ec) {
  if (ec == bhttp::error::body_limit) return SendAndClose(PayloadTooLargeResponse());
  if (ec) return Close();
  Dispatch(parser_->release());
}

void HttpSession::Dispatch(Request request) {
  ++seq_;
  busy_ = true;
  keep_alive_ = request.keep_alive() && !shutting_down_;
  auto ctx = std::make_shared<RequestContext>();
  ctx->executor = stream_.get_executor();
  beast::error_code ignored;
  ctx->remote = stream_.socket().remote_endpoint(ignored);
  ctx->request = std::move(request);
  origin_ = std::string(ctx->Header(bhttp::field::origin));
  current_ = ctx;

  ParsedTarget target;
  if (!ParseTarget(ctx->request.target(), *ctx, target)) return Respond(seq_, NotFoundResponse());

  // CORS preflight (relay spec §8.4), answered as Starlette's CORSMiddleware does.
  if (ctx->request.method() == Verb::options && !origin_.empty() &&
      !ctx->Header(bhttp::field::access_control_request_method).empty()) {
    return Respond(seq_, Preflight(*ctx));
  }

  auto match = service_.router().Find(ctx->request.method(), target.segments,
                                      target.trailing_slash, target.raw_path);
  switch (match.kind) {
    case Router::Match::Kind::kNotFound:
      return Respond(seq_, NotFoundResponse());
    case Router::Match::Kind::kMethodNotAllowed:
      return Respond(seq_, MethodNotAllowedResponse());
    case Router::Match::Kind::kRedirect: {
      std::string location = match.redirect_to;
      const std::string_view raw_target = ctx->request.target();
      if (auto q = raw_target.find('?'); q != std::string_view::npos) {
        location += raw_target.substr(q);
      }
      return Respond(seq_, Response::Empty(307).WithHeader("Location", location));
    }
    case Router::Match::Kind::kFound:
      break;
  }
  ctx->path_params = std::move(match.params);
  stream_.expires_never();  // the handler decides how long it takes (long-poll: up to 60 s)
  const uint64_t seq = seq_;
  try {
    (*match.handler)(ctx, MakeResponder());
  } catch (const std::exception& e) {
    Logger("http")->error("handler for {} threw: {}", ctx->path, e.what());
    Respond(seq, InternalErrorResponse());
  }
  if (busy_ && seq_ == seq) WatchForDisconnect(seq);
}

Response HttpSession::Preflight(const RequestContext& ctx) const {
  std::string failures;
  auto fail = [&](std::string_view what) {
    if (!failures.empty()) failures += ", ";
    failures += what;
  };
  if (!service_.OriginAllowed(origin_)) fail("origin");
  const std::string_view method = ctx.Header(bhttp::field::access_control_request_method);
  static constexpr std::string_view kAllowed[] = {"GET", "POST", "PUT", "DELETE", "OPTIONS"};
  if (std::find(std::begin(kAllowed), std::end(kAllowed), method) == std::end(kAllowed)) {
    fail("method");
  }
  // Every requested header must be one of the allowed ones (case-insensitive).
  std::string requested(ctx.Header(bhttp::field::access_control_request_headers));
  for (auto& c : requested) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t i = 0;
  bool headers_ok = true;
  while (i < requested.size()) {
    size_t comma = requested.find(',', i);
    if (comma == std::string::npos) comma = requested.size();
    std::string name = requested.substr(i, comma - i);
    while (!name.empty() && name.front() == ' ') name.erase(name.begin());
    while (!name.empty() && name.back() == ' ') name.pop_back();
    if (!name.empty() && name != "authorization" && name != "content-type" && name != "accept" &&
        name != "accept-language" && name != "content-language") {
      headers_ok = false;
    }
    i = comma + 1;
  }
  if (!headers_ok) fail("headers");
  if (!failures.empty()) return Response::Text(400, "Disallowed CORS " + failures);
  return Response::Text(200, "OK")
      .WithHeader("Access-Control-Allow-Methods", std::string(kCorsMethods))
      .WithHeader("Access-Control-Allow-Headers", std::string(kCorsHeaders))
      .WithHeader("Access-Control-Max-Age", "600");
}

Responder HttpSession::MakeResponder() {
  return [self = shared_from_this(), seq = seq_](Response response) {
    asio::dispatch(self->stream_.get_executor(),
                   [self, seq, response = std::move(response)]() mutable {
                     self->Respond(seq, std::move(response));
                   });
  };
}

void HttpSession::WatchForDisconnect(uint64_t seq) {
  stream_.socket().async_wait(
      tcp::socket::wait_read, [self = shared_from_this(), seq](beast::error_code ec) {
        if (!self->busy_ || self->seq_ != seq || self->closed_) return;
        if (!ec) {
          beast::error_code avail_ec;
          if (self->stream_.socket().available(avail_ec) > 0 && !avail_ec) {
            return;  // the client sent more (pipelining): it is still there
          }
        }
        // Readable with nothing to read = the peer closed. Tell the handler; no keep-alive.
        self->keep_alive_ = false;
        if (auto ctx = self->current_; ctx && ctx->on_client_gone) {
          auto gone = std::move(ctx->on_client_gone);
          gone();
        }
      });
}

void HttpSession::Respond(uint64_t seq, Response response) {
  if (seq != seq_ || !busy_ || closed_) return;  // stale or duplicate responder call
  busy_ = false;
  current_.reset();
  auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
  res->version(11);
  res->result(response.status);
  if (!response.content_type.empty()) res->set(bhttp::field::content_type, response.content_type);
  for (auto& [name, value] : response.headers) res->insert(name, value);
  if (!origin_.empty() && service_.OriginAllowed(origin_)) {
    res->set(bhttp::field::access_control_allow_origin, origin_);
    res->set(bhttp::field::vary, "Origin");
  }
  res->body() = std::move(response.body);
  res->keep_alive(keep_alive_);
  res->prepare_payload();
  stream_.expires_after(service_.options().request_timeout);
  const bool keep_alive = keep_alive_;
  bhttp::async_write(stream_, *res,
                     [self = shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
                       self->OnWritten(keep_alive, ec);
                     });
}

void HttpSession::OnWritten(bool keep_alive, beast::error_code ec) {
  if (ec || !keep_alive || shutting_down_) return Close();
  ReadHeader();
}

void HttpSession::SendAndClose(Response response) {
  ++seq_;
  busy_ = true;
  keep_alive_ = false;
  Respond(seq_, std::move(response));
}

void HttpSession::Upgrade(Request request) {
  auto ctx = std::make_shared<RequestContext>();
  ctx->executor = stream_.get_executor();
  beast::error_code ignored;
  ctx->remote = stream_.socket().remote_endpoint(ignored);
  ctx->request = std::move(request);
  ParsedTarget target;
  if (!ParseTarget(ctx->request.target(), *ctx, target)) return SendAndClose(NotFoundResponse());
  const UpgradeHandler* handler = service_.FindUpgrade(ctx->path);
  if (!handler) return SendAndClose(NotFoundResponse());
  stream_.expires_never();
  closed_ = true;  // the WebSocket owns the socket from here on
  (*handler)(ctx, std::move(stream_));
}

}  // namespace magnetar::http
