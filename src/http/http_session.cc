#include "http/http_session.h"

#include <poll.h>

#include <algorithm>
#include <array>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "common/log.h"
#include "common/metrics.h"
#include "http/response_writer.h"
#include "http/target.h"

namespace magnetar::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::string_view kCorsMethods = "GET, POST, PUT, DELETE, OPTIONS";
constexpr std::string_view kCorsHeaders = "Authorization, Content-Type";

// How often a parked request whose client has sent more bytes is checked for a hang-up.
constexpr auto kRecheckInterval = std::chrono::milliseconds(500);
// Lingering close after an error response: how long and how much to discard at most.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr size_t kLingerMaxBytes = 64 << 20;
constexpr size_t kLingerChunkBytes = 64 << 10;

// What a plain HTTP request to the TLS port gets (it cannot be answered over TLS).
constexpr std::string_view kPlainHttpOnTlsPort =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 65\r\n"
    "Connection: close\r\n"
    "\r\n"
    R"({"detail":"This port speaks HTTPS: use https:// and wss:// URLs"})";
static_assert(kPlainHttpOnTlsPort.size() - kPlainHttpOnTlsPort.find("\r\n\r\n") - 4 == 65);

// The HTTP metrics, looked up once.
struct HttpMetrics {
  std::array<metrics::Counter*, 5> by_class{};  // 1xx..5xx
  metrics::Histogram* duration = nullptr;
  metrics::Gauge* open = nullptr;
};

const HttpMetrics& Metrics() {
  static const HttpMetrics m = [] {
    auto& r = metrics::Registry::Default();
    HttpMetrics out;
    for (size_t i = 0; i < out.by_class.size(); ++i) {
      out.by_class[i] = &r.GetCounter("magnetar_http_requests_total",
                                      "HTTP requests answered, by status class.",
                                      {{"code", std::to_string(i + 1) + "xx"}});
    }
    out.duration = &r.GetHistogram(
        "magnetar_http_request_duration_seconds",
        "Time from a request's arrival to its response (long-polls included: up to their timeout).",
        {}, metrics::LatencyBuckets());
    out.open = &r.GetGauge("magnetar_http_connections_open",
                           "HTTP connections open now (not counting those upgraded to WebSocket).");
    return out;
  }();
  return m;
}

const std::shared_ptr<spdlog::logger>& HttpLog() {
  static const std::shared_ptr<spdlog::logger> log = Logger("http");
  return log;
}

// True when the peer has closed or reset the connection, even if unread bytes are still queued
// (POLLRDHUP, Linux): a client that sent something and then hung up.
bool PeerHungUp(tcp::socket& socket) {
  pollfd p{};
  p.fd = socket.native_handle();
  p.events = POLLRDHUP;
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

template <class Stream>
Stream MakeStream(tcp::socket socket, asio::ssl::context* tls) {
  if constexpr (net::kIsTls<Stream>) {
    return Stream(std::move(socket), *tls);
  } else {
    (void)tls;
    return Stream(std::move(socket));
  }
}

}  // namespace

void HttpService::Accept(tcp::socket socket) {
  if (options_.tls) {
    std::make_shared<HttpSession<net::TlsStream>>(*this, std::move(socket), options_.tls.get())
        ->Start();
  } else {
    std::make_shared<HttpSession<net::PlainStream>>(*this, std::move(socket), nullptr)->Start();
  }
}

template <class Stream>
HttpSession<Stream>::HttpSession(HttpService& service, tcp::socket socket, asio::ssl::context* tls)
    : service_(service),
      stream_(MakeStream<Stream>(std::move(socket), tls)),
      watch_timer_(stream_.get_executor()) {
  Metrics().open->Inc();
}

template <class Stream>
HttpSession<Stream>::~HttpSession() {
  Metrics().open->Dec();
  service_.tracker().Remove(tracker_id_);
}

template <class Stream>
void HttpSession<Stream>::Start() {
  tracker_id_ = service_.tracker().Add(weak_from_this());
  asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    if constexpr (kTls) {
      self->StartTls();
    } else {
      self->ReadHeader();
    }
  });
}

template <class Stream>
void HttpSession<Stream>::StartTls() {
  if (shutting_down_ || closed_) return Close();
  // One deadline covers the first bytes and the whole handshake: a client that connects and
  // stays silent, or stalls mid-handshake, is dropped when it passes.
  lowest().expires_after(service_.options().tls_handshake_timeout);
  reading_ = true;
  beast::async_detect_ssl(lowest(), buffer_,
                          [self = shared_from_this()](beast::error_code ec, bool is_tls) {
                            self->reading_ = false;
                            self->OnDetected(ec, is_tls);
                          });
}

template <class Stream>
void HttpSession<Stream>::OnDetected(beast::error_code ec, bool is_tls) {
  if (ec || close_wanted_ || shutting_down_) return Close();
  if (!is_tls) return RejectPlainHttp();
  if constexpr (kTls) {
    reading_ = true;
    // The bytes detection read are the start of the ClientHello: hand them to the handshake.
    // (`used` has a default only because Boost 1.81's constraint on this overload checks for the
    // wrong signature, void(error_code); it is always passed.)
    stream_.async_handshake(asio::ssl::stream_base::server, buffer_.data(),
                            [self = shared_from_this()](beast::error_code ec, size_t used = 0) {
                              self->reading_ = false;
                              self->buffer_.consume(used);
                              self->OnHandshake(ec);
                            });
  }
}

template <class Stream>
void HttpSession<Stream>::OnHandshake(beast::error_code ec) {
  if (ec) {
    // Scanners, clients that distrust the certificate, timeouts: routine, not worth a warning.
    Logger("http")->debug("TLS handshake failed: {}", ec.message());
    return Close();
  }
  tls_ready_ = true;
  ReadHeader();
}

template <class Stream>
void HttpSession<Stream>::RejectPlainHttp() {
  writing_ = true;
  asio::async_write(lowest(), asio::buffer(kPlainHttpOnTlsPort.data(), kPlainHttpOnTlsPort.size()),
                    [self = shared_from_this()](beast::error_code, size_t) {
                      self->writing_ = false;
                      self->CloseSocket();
                    });
}

template <class Stream>
void HttpSession<Stream>::Shutdown() {
  asio::post(stream_.get_executor(), [self = shared_from_this()] {
    self->shutting_down_ = true;
    self->keep_alive_ = false;
    if (!self->busy_) self->Close();
  });
}

// Ends the connection. A write in flight finishes first (OnWritten comes back here). Over TLS
// after the handshake, the read in flight is cancelled (its handler comes back here) so that
// close_notify can be exchanged; the close timeout bounds that exchange.
template <class Stream>
void HttpSession<Stream>::Close() {
  if (closed_) return;
  close_wanted_ = true;
  if (writing_) return;
  if constexpr (kTls) {
    if (tls_ready_ && lowest().socket().is_open()) {
      if (reading_) {
        beast::error_code ignored;
        lowest().socket().cancel(ignored);
        return;
      }
      if (tls_closing_) return;
      tls_closing_ = true;
      watch_timer_.cancel();
      lowest().expires_after(service_.options().tls_close_timeout);
      stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
        self->CloseSocket();
      });
      return;
    }
  }
  if (linger_ && !lingering_) return LingerThenClose();
  CloseSocket();
}

// A connection closed right after an error response (413, 400...) often still has request bytes
// on the way. Closing a socket with unread input makes the kernel send a reset, which can destroy
// the response before the client reads it (the client sees a broken pipe instead of the 413). So
// half-close, discard what still arrives, and close when the client does, bounded in time and
// bytes like nginx's lingering close. A second Close() (server shutdown) ends it at once.
template <class Stream>
void HttpSession<Stream>::LingerThenClose() {
  lingering_ = true;
  beast::error_code ignored;
  lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
  lowest().expires_after(kLingerTime);
  buffer_.clear();
  DrainUntilClientCloses(0);
}

template <class Stream>
void HttpSession<Stream>::DrainUntilClientCloses(size_t drained) {
  if (closed_ || drained > kLingerMaxBytes) return CloseSocket();
  lowest().async_read_some(buffer_.prepare(kLingerChunkBytes),
                           [self = shared_from_this(), drained](beast::error_code ec, size_t n) {
                             if (ec) return self->CloseSocket();  // EOF, timeout or shutdown
                             self->DrainUntilClientCloses(drained + n);
                           });
}

template <class Stream>
void HttpSession<Stream>::CloseSocket() {
  if (closed_) return;
  closed_ = true;
  watch_timer_.cancel();
  beast::error_code ignored;
  lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
  lowest().close();
}

template <class Stream>
void HttpSession<Stream>::ReadHeader() {
  if (shutting_down_ || close_wanted_ || closed_) return Close();
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(service_.options().max_header_bytes));
  parser_->body_limit(service_.options().max_body_bytes);
  lowest().expires_after(service_.options().keep_alive_timeout);
  reading_ = true;
  bhttp::async_read_header(stream_, buffer_, *parser_,
                           [self = shared_from_this()](beast::error_code ec, size_t) {
                             self->reading_ = false;
                             self->OnHeader(ec);
                           });
}

template <class Stream>
void HttpSession<Stream>::OnHeader(beast::error_code ec) {
  if (close_wanted_) return Close();
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
  lowest().expires_after(service_.options().request_timeout);
  reading_ = true;
  bhttp::async_read(stream_, buffer_, *parser_,
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      self->reading_ = false;
                      self->OnBody(ec);
                    });
}

template <class Stream>
void HttpSession<Stream>::OnBody(beast::error_code ec) {
  if (close_wanted_) return Close();
  if (ec == bhttp::error::body_limit) return SendAndClose(PayloadTooLargeResponse());
  if (ec) return Close();
  Dispatch(parser_->release());
}

template <class Stream>
boost::asio::ip::tcp::endpoint HttpSession<Stream>::RemoteEndpoint() {
  if (!remote_known_) {
    beast::error_code ec;
    remote_ = lowest().socket().remote_endpoint(ec);
    remote_known_ = !ec;
  }
  return remote_;
}

template <class Stream>
void HttpSession<Stream>::Dispatch(Request request) {
  ++seq_;
  busy_ = true;
  keep_alive_ = request.keep_alive() && !shutting_down_;
  request_start_ = std::chrono::steady_clock::now();
  request_method_ = request.method();
  if (HttpLog()->should_log(spdlog::level::debug)) {
    const std::string_view target = request.target();
    request_path_.assign(target.substr(0, target.find('?')));
  }
  auto ctx = std::make_shared<RequestContext>();
  ctx->executor = stream_.get_executor();
  ctx->remote = RemoteEndpoint();
  ctx->is_tls = kTls;
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
  lowest().expires_never();  // the handler decides how long it takes (long-poll: up to 60 s)
  const uint64_t seq = seq_;
  try {
    (*match.handler)(ctx, MakeResponder());
  } catch (const std::exception& e) {
    Logger("http")->error("handler for {} threw: {}", ctx->path, e.what());
    Respond(seq, InternalErrorResponse());
  }
  if (busy_ && seq_ == seq) WatchForDisconnect(seq);
}

template <class Stream>
Response HttpSession<Stream>::Preflight(const RequestContext& ctx) const {
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

template <class Stream>
Responder HttpSession<Stream>::MakeResponder() {
  return [self = shared_from_this(), seq = seq_](Response response) {
    asio::dispatch(self->stream_.get_executor(),
                   [self, seq, response = std::move(response)]() mutable {
                     self->Respond(seq, std::move(response));
                   });
  };
}

// While a handler holds the request, wait for the socket to become readable: a client that hangs
// up makes it readable at once. Readable while still connected means it sent bytes (a pipelined
// request, or TLS records, which plain byte counts cannot tell from a close_notify): then look
// for a hang-up every kRecheckInterval instead, so the wait never spins.
template <class Stream>
void HttpSession<Stream>::WatchForDisconnect(uint64_t seq) {
  lowest().socket().async_wait(
      tcp::socket::wait_read, [self = shared_from_this(), seq](beast::error_code ec) {
        if (!self->busy_ || self->seq_ != seq || self->closed_) return;
        if (!ec && !PeerHungUp(self->lowest().socket())) return self->RecheckLater(seq);
        self->ClientGone();
      });
}

template <class Stream>
void HttpSession<Stream>::RecheckLater(uint64_t seq) {
  watch_timer_.expires_after(kRecheckInterval);
  watch_timer_.async_wait([self = shared_from_this(), seq](beast::error_code ec) {
    if (ec || !self->busy_ || self->seq_ != seq || self->closed_) return;
    if (!PeerHungUp(self->lowest().socket())) return self->RecheckLater(seq);
    self->ClientGone();
  });
}

// The peer closed while its request was parked. Tell the handler; no keep-alive.
template <class Stream>
void HttpSession<Stream>::ClientGone() {
  keep_alive_ = false;
  if (auto ctx = current_; ctx && ctx->on_client_gone) {
    auto gone = std::move(ctx->on_client_gone);
    gone();
  }
}

template <class Stream>
void HttpSession<Stream>::Respond(uint64_t seq, Response response) {
  if (seq != seq_ || !busy_ || closed_) return;  // stale or duplicate responder call
  busy_ = false;
  if (request_start_ != std::chrono::steady_clock::time_point{}) {
    const double seconds = metrics::SecondsSince(request_start_);
    const HttpMetrics& m = Metrics();
    m.by_class[std::clamp<unsigned>(response.status / 100, 1, 5) - 1]->Inc();
    m.duration->Observe(seconds);
    if (HttpLog()->should_log(spdlog::level::debug)) {
      const auto method = bhttp::to_string(request_method_);
      HttpLog()->debug("{} {} {} {:.1f}ms", std::string_view(method.data(), method.size()),
                       request_path_, response.status, seconds * 1000);
    }
    request_start_ = {};
  } else {
    // Refused before a request was complete (bad Host, too large): counted, logged without one.
    Metrics().by_class[std::clamp<unsigned>(response.status / 100, 1, 5) - 1]->Inc();
    HttpLog()->debug("- - {} (request refused before dispatch)", response.status);
  }
  current_.reset();
  watch_timer_.cancel();
  ResponseFraming framing{.keep_alive = keep_alive_};
  if (!origin_.empty() && service_.OriginAllowed(origin_)) framing.allowed_origin = origin_;
  auto bytes = std::make_shared<const std::string>(SerializeResponse(response, framing));
  lowest().expires_after(service_.options().request_timeout);
  const bool keep_alive = keep_alive_;
  writing_ = true;
  asio::async_write(stream_, asio::buffer(*bytes),
                    [self = shared_from_this(), bytes, keep_alive](beast::error_code ec, size_t) {
                      self->writing_ = false;
                      self->OnWritten(keep_alive, ec);
                    });
}

template <class Stream>
void HttpSession<Stream>::OnWritten(bool keep_alive, beast::error_code ec) {
  if (ec) return CloseSocket();  // the peer is gone: no close_notify to exchange
  if (!keep_alive || shutting_down_ || close_wanted_) return Close();
  ReadHeader();
}

template <class Stream>
void HttpSession<Stream>::SendAndClose(Response response) {
  linger_ = true;
  ++seq_;
  busy_ = true;
  keep_alive_ = false;
  Respond(seq_, std::move(response));
}

template <class Stream>
void HttpSession<Stream>::Upgrade(Request request) {
  auto ctx = std::make_shared<RequestContext>();
  ctx->executor = stream_.get_executor();
  ctx->remote = RemoteEndpoint();
  ctx->is_tls = kTls;
  ctx->request = std::move(request);
  ParsedTarget target;
  if (!ParseTarget(ctx->request.target(), *ctx, target)) return SendAndClose(NotFoundResponse());
  const UpgradeHandler* handler = service_.FindUpgrade(ctx->path);
  if (!handler) return SendAndClose(NotFoundResponse());
  HttpLog()->debug("GET {} upgrade to WebSocket", ctx->path);
  lowest().expires_never();
  watch_timer_.cancel();
  closed_ = true;  // the WebSocket owns the connection from here on
  (*handler)(ctx, net::MakeAnyStream(std::move(stream_)));
}

template class HttpSession<net::PlainStream>;
template class HttpSession<net::TlsStream>;

}  // namespace magnetar::http
