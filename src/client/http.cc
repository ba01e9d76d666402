#include "client/http.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "client/auth.h"
#include "client/runtime.h"
#include "common/log.h"

namespace magnetar::client::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxIdleConnections = 8;
constexpr const char* kUserAgent = "magnetar-client/0.1";

bool IsUnreserved(unsigned char c) {
  return std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~';
}

// Registers "cancel whatever `target` is doing" with `cancel` for the life of this object.
// The handler may run on any thread, so it posts to the executor that owns `target`.
template <class Target>
class CancelHook {
 public:
  CancelHook(const std::shared_ptr<CancelState>& cancel, asio::any_io_executor ex,
             std::shared_ptr<Target> target)
      : cancel_(cancel) {
    if (!cancel_) return;
    cancel_->set_handler([ex, weak = std::weak_ptr<Target>(target)] {
      asio::post(ex, [weak] {
        if (auto t = weak.lock()) t->cancel();
      });
    });
  }
  ~CancelHook() {
    if (cancel_) cancel_->clear_handler();
  }

 private:
  std::shared_ptr<CancelState> cancel_;
};

void ThrowIfCancelled(const std::shared_ptr<CancelState>& cancel) {
  if (cancel && cancel->cancelled()) throw Cancelled();
}

}  // namespace

// ---- CancelState -------------------------------------------------------------------------------

void CancelState::cancel() {
  std::function<void()> stop;
  {
    std::lock_guard lock(mutex_);
    if (cancelled_) return;
    cancelled_ = true;
    stop = std::move(stop_);
  }
  if (stop) stop();
}

bool CancelState::cancelled() const {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

void CancelState::set_handler(std::function<void()> stop) {
  {
    std::lock_guard lock(mutex_);
    if (!cancelled_) {
      stop_ = std::move(stop);
      return;
    }
  }
  stop();
}

void CancelState::clear_handler() {
  std::lock_guard lock(mutex_);
  stop_ = nullptr;
}

// ---- HttpClient --------------------------------------------------------------------------------

struct HttpClient::TlsContext {
  asio::ssl::context ctx{asio::ssl::context::tls_client};
};

struct HttpClient::Connection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  void cancel() { lowest().cancel(); }
};

HttpClient::HttpClient(asio::any_io_executor executor, RelayEndpoint endpoint, TlsOptions tls,
                       std::size_t max_response_bytes)
    : executor_(std::move(executor)),
      endpoint_(std::move(endpoint)),
      tls_options_(std::move(tls)),
      max_response_bytes_(max_response_bytes) {
  if (!endpoint_.tls) return;
  tls_ = std::make_unique<TlsContext>();
  auto& ctx = tls_->ctx;
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                  asio::ssl::context::no_tlsv1_1);
  if (!tls_options_.ca_file.empty()) {
    ctx.load_verify_file(tls_options_.ca_file);
  } else if (!tls_options_.ca_path.empty()) {
    ctx.add_verify_path(tls_options_.ca_path);
  } else {
    ctx.set_default_verify_paths();
  }
  if (tls_options_.verify) {
    ctx.set_verify_mode(asio::ssl::verify_peer);
  } else {
    Logger("client")->warn("TLS certificate verification is OFF for {}", endpoint_.host_header);
    ctx.set_verify_mode(asio::ssl::verify_none);
  }
}

HttpClient::~HttpClient() = default;

void HttpClient::close_idle() { idle_.clear(); }

asio::awaitable<std::shared_ptr<HttpClient::Connection>> HttpClient::connect(
    HttpTimeouts timeouts, std::shared_ptr<CancelState> cancel) {
  ThrowIfCancelled(cancel);
  const auto deadline = std::chrono::steady_clock::now() + timeouts.connect;
  const std::string where = endpoint_.host_header;

  // Resolve, bounded by the connect timeout (the resolver cannot time out on its own).
  auto resolver = std::make_shared<tcp::resolver>(executor_);
  auto timer = std::make_shared<asio::steady_timer>(executor_, deadline);
  auto timed_out = std::make_shared<bool>(false);
  timer->async_wait([resolver, timed_out](boost::system::error_code ec) {
    if (ec) return;
    *timed_out = true;
    resolver->cancel();
  });
  tcp::resolver::results_type results;
  {
    CancelHook hook(cancel, executor_, resolver);
    const std::string port = std::to_string(endpoint_.port);
    auto [ec, r] = co_await resolver->async_resolve(endpoint_.host, port, kTuple);
    timer->cancel();
    ThrowIfCancelled(cancel);
    if (*timed_out) throw HttpError(HttpFailure::kConnectTimeout, "connect timeout to " + where);
    if (ec) {
      throw HttpError(HttpFailure::kConnect,
                      "cannot resolve " + endpoint_.host + ": " + ec.message());
    }
    results = std::move(r);
  }

  auto conn = std::make_shared<Connection>();
  if (tls_) {
    conn->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(executor_, tls_->ctx);
  } else {
    conn->plain = std::make_unique<beast::tcp_stream>(executor_);
  }
  CancelHook hook(cancel, executor_, conn);
  conn->lowest().expires_at(deadline);
  {
    auto [ec, ep] = co_await conn->lowest().async_connect(results, kTuple);
    ThrowIfCancelled(cancel);
    if (ec == beast::error::timeout) {
      throw HttpError(HttpFailure::kConnectTimeout, "connect timeout to " + where);
    }
    if (ec)
      throw HttpError(HttpFailure::kConnect, "cannot connect to " + where + ": " + ec.message());
  }
  conn->lowest().socket().set_option(tcp::no_delay(true));
  if (conn->tls) {
    if (!SSL_set_tlsext_host_name(conn->tls->native_handle(), endpoint_.host.c_str())) {
      throw HttpError(HttpFailure::kConnect, "cannot set TLS server name " + endpoint_.host);
    }
    if (tls_options_.verify) {
      conn->tls->set_verify_callback(asio::ssl::host_name_verification(endpoint_.host));
    }
    auto [ec] = co_await conn->tls->async_handshake(asio::ssl::stream_base::client, kTuple);
    ThrowIfCancelled(cancel);
    if (ec == beast::error::timeout) {
      throw HttpError(HttpFailure::kConnectTimeout, "TLS handshake timeout with " + where);
    }
    if (ec) {
      throw HttpError(HttpFailure::kConnect,
                      "TLS handshake with " + where + " failed: " + ec.message());
    }
  }
  conn->lowest().expires_never();
  co_return conn;
}

namespace {

template <class Stream>
asio::awaitable<HttpResponse> Exchange(Stream& stream, beast::tcp_stream& lowest,
                                       beast::flat_buffer& buffer, const HttpRequest& request,
                                       const RelayEndpoint& endpoint, HttpTimeouts timeouts,
                                       std::size_t max_body, bool* nothing_received,
                                       bool* keep_alive) {
  http::request<http::string_body> req{request.method, request.target, 11};
  req.set(http::field::host, endpoint.host_header);
  req.set(http::field::user_agent, kUserAgent);
  for (const auto& [name, value] : request.headers) req.set(name, value);
  if (!request.content_type.empty()) req.set(http::field::content_type, request.content_type);
  req.body() = request.body;
  req.keep_alive(true);
  req.prepare_payload();

  lowest.expires_after(timeouts.read);
  *nothing_received = true;
  {
    auto [ec, n] = co_await http::async_write(stream, req, kTuple);
    if (ec == beast::error::timeout) throw HttpError(HttpFailure::kReadTimeout, "write timeout");
    if (ec) throw HttpError(HttpFailure::kIo, "send failed: " + ec.message());
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_body);
  auto [ec, n] = co_await http::async_read(stream, buffer, parser, kTuple);
  if (ec) {
    *nothing_received = !parser.got_some() && buffer.size() == 0;
    if (ec == beast::error::timeout) {
      throw HttpError(HttpFailure::kReadTimeout,
                      "read timeout after " + std::to_string(timeouts.read.count()) + " ms");
    }
    if (ec == http::error::body_limit) {
      throw HttpError(HttpFailure::kTooLarge,
                      "response larger than " + std::to_string(max_body) + " bytes");
    }
    throw HttpError(HttpFailure::kIo, "receive failed: " + ec.message());
  }
  *nothing_received = false;
  lowest.expires_never();
  auto res = parser.release();
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  out.reason = std::string(res.reason());
  for (const auto& field : res) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(field.value());
  }
  out.body = std::move(res.body());
  *keep_alive = res.keep_alive();
  co_return out;
}

}  // namespace

asio::awaitable<HttpResponse> HttpClient::exchange(Connection& conn, const HttpRequest& request,
                                                   HttpTimeouts timeouts, bool* nothing_received,
                                                   bool* keep) {
  bool keep_alive = false;
  HttpResponse response;
  // (Not a conditional expression: g++ 12 destroys co_await results in ?: twice.)
  if (conn.tls) {
    response = co_await Exchange(*conn.tls, conn.lowest(), conn.buffer, request, endpoint_,
                                 timeouts, max_response_bytes_, nothing_received, &keep_alive);
  } else {
    response = co_await Exchange(*conn.plain, conn.lowest(), conn.buffer, request, endpoint_,
                                 timeouts, max_response_bytes_, nothing_received, &keep_alive);
  }
  if (!keep_alive) conn.lowest().close();
  *keep = keep_alive;
  co_return response;
}

asio::awaitable<HttpResponse> HttpClient::request(HttpRequest request, HttpTimeouts timeouts,
                                                  std::shared_ptr<CancelState> cancel) {
  for (int attempt = 0;; ++attempt) {
    ThrowIfCancelled(cancel);
    std::shared_ptr<Connection> conn;
    const bool reused = attempt == 0 && !idle_.empty();
    if (reused) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    } else {
      conn = co_await connect(timeouts, cancel);
    }
    bool nothing_received = false;
    bool retry_fresh = false;
    try {
      CancelHook hook(cancel, executor_, conn);
      bool keep = false;
      HttpResponse response = co_await exchange(*conn, request, timeouts, &nothing_received, &keep);
      if (keep && idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(conn));
      co_return response;
    } catch (const HttpError& e) {
      ThrowIfCancelled(cancel);
      // The server may close an idle keep-alive connection at any time; a request that met such
      // a connection never reached it, so it is sent again on a fresh one.
      if (!(reused && nothing_received && e.kind() == HttpFailure::kIo)) throw;
      retry_fresh = true;
    }
    if (!retry_fresh) break;
  }
  throw HttpError(HttpFailure::kIo, "unreachable");
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  auto append = [&](std::string_view s) {
    for (char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      if (IsUnreserved(c)) {
        out.push_back(ch);
      } else if (c == ' ') {
        out.push_back('+');
      } else {
        out.push_back('%');
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
      }
    }
  };
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out.push_back('&');
    append(name);
    out.push_back('=');
    append(value);
  }
  return out;
}

}  // namespace magnetar::client::detail

namespace magnetar::client::detail {

HttpResponse blocking_request(const RelayEndpoint& endpoint, const TlsOptions& tls,
                              HttpRequest request, HttpTimeouts timeouts) {
  asio::io_context io;
  HttpClient client(io.get_executor(), endpoint, tls);
  auto future = asio::co_spawn(io, client.request(std::move(request), timeouts), asio::use_future);
  io.run();
  return future.get();
}

std::string status_error_text(const HttpResponse& response, const std::string& url) {
  std::string kind = response.status >= 500   ? "Server Error"
                     : response.status >= 400 ? "Client Error"
                                              : "Unexpected Status";
  std::string reason = response.reason;
  if (reason.empty()) {
    reason = std::string(http::obsolete_reason(static_cast<http::status>(response.status)));
  }
  return std::to_string(response.status) + " " + kind + ": " + reason + " for url: " + url;
}

}  // namespace magnetar::client::detail

namespace magnetar::client::detail {

asio::awaitable<void> close_idle(HttpClient* http) {
  http->close_idle();
  co_return;
}

asio::awaitable<std::string> blocking_get_token(std::shared_ptr<TokenProvider> tokens,
                                                bool refresh) {
  if (refresh) tokens->invalidate();
  co_return tokens->get_token();
}

}  // namespace magnetar::client::detail
