#include "client/subscriber.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json/serialize.hpp>
#include <type_traits>

#include "client/errors.h"
#include "client/http.h"
#include "client/json_util.h"
#include "client/runtime.h"
#include "client/url.h"
#include "common/log.h"
#include "common/message_id.h"

namespace magnetar::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
using asio::ip::tcp;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr uint16_t kCloseTokenInvalid = 4001;
constexpr int kMaxHandshakeRejections = 3;

std::shared_ptr<spdlog::logger> Log() { return Logger("client"); }

// The server refused the WebSocket upgrade with this HTTP status.
struct HandshakeRejected : std::runtime_error {
  explicit HandshakeRejected(int s)
      : std::runtime_error("WebSocket handshake rejected: HTTP " + std::to_string(s)), status(s) {}
  int status;
};

// The server refused the subscription itself (an error frame): retrying cannot help.
struct SubscriptionRefused : Error {
  using Error::Error;
};

// How one connection ended.
struct Outcome {
  bool subscribed = false;
  std::optional<uint16_t> close_code;
  std::string why;
  std::exception_ptr handler_error;
};

bool AtOrBefore(const std::string& id, const std::string& position) {
  auto a = MessageId::Parse(id);
  auto b = MessageId::Parse(position);
  return a && b && *a <= *b;
}

// The connection and what its ping loop shares with the read loop.
template <class Ws>
struct Conn {
  template <class... Args>
  explicit Conn(asio::any_io_executor ex, Args&&... args)
      : ws(std::forward<Args>(args)...), ping_timer(ex) {}
  Ws ws;
  beast::flat_buffer buffer;
  asio::steady_timer ping_timer;
  std::chrono::steady_clock::time_point last_frame = std::chrono::steady_clock::now();
  bool done = false;
  bool stale = false;

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(ws); }
};

template <class Ws>
asio::awaitable<void> PingLoop(std::shared_ptr<Conn<Ws>> conn, std::chrono::milliseconds interval,
                               std::chrono::milliseconds pong_timeout) {
  static const std::string kPing = R"({"type":"ping"})";
  while (!conn->done) {
    conn->ping_timer.expires_after(interval);
    co_await conn->ping_timer.async_wait(kTuple);
    if (conn->done) break;
    if (std::chrono::steady_clock::now() - conn->last_frame > interval + pong_timeout) {
      conn->stale = true;
      conn->lowest().close();  // the read loop sees the error and reconnects
      break;
    }
    auto [ec, n] = co_await conn->ws.async_write(asio::buffer(kPing), kTuple);
    if (ec) break;
  }
}

}  // namespace

RelaySubscriber::RelaySubscriber(std::string relay_url, std::shared_ptr<TokenProvider> tokens,
                                 SubscriberOptions options)
    : relay_url_(normalize_relay_url(relay_url)),
      tokens_(std::move(tokens)),
      options_(std::move(options)) {
  if (!tokens_) throw std::invalid_argument("RelaySubscriber needs a token provider");
  if (options_.topics.empty()) throw std::invalid_argument("RelaySubscriber needs topics");
  if (options_.offset != "last" && options_.offset != "first") {
    for (const auto& t : options_.topics) positions_[t] = options_.offset;
    baseline_done_ = true;
  } else if (options_.offset == "first") {
    baseline_done_ = true;
  }
}

RelaySubscriber::~RelaySubscriber() = default;

std::map<std::string, std::string> RelaySubscriber::positions() const {
  std::lock_guard lock(mutex_);
  return positions_;
}

void RelaySubscriber::stop() {
  stopping_ = true;
  std::function<void()> hook;
  {
    std::lock_guard lock(mutex_);
    hook = stop_hook_;
  }
  if (hook) hook();
}

void RelaySubscriber::run(Handler on_message, std::stop_token stop) {
  stopping_ = false;
  std::stop_callback on_stop(stop, [this] { this->stop(); });
  asio::io_context io;
  auto future = asio::co_spawn(io, run_loop(std::move(on_message), true), asio::use_future);
  io.run();
  future.get();
}

asio::awaitable<void> RelaySubscriber::async_run(Handler on_message) {
  stopping_ = false;
  // The read loop and the ping loop must not run at once: both go on one strand.
  auto strand = asio::make_strand(co_await asio::this_coro::executor);
  asio::awaitable<void> loop = run_loop(std::move(on_message), false);
  co_await asio::co_spawn(strand, std::move(loop), asio::use_awaitable);
}

// The pieces of run_loop, as named coroutines (g++ 12 miscompiles some lambda coroutines).
struct RelaySubscriber::Impl {
  using Fallback = std::map<std::string, std::string>;  // topic → offset while it has no position

  static asio::awaitable<std::string> token(RelaySubscriber& self, bool refresh,
                                            bool private_context,
                                            std::unique_ptr<detail::Runtime>& helper) {
    if (!refresh) {
      if (auto cached = self.tokens_->cached_token()) co_return *cached;
    }
    if (private_context) {  // our own thread: blocking here blocks nobody else
      if (refresh) self.tokens_->invalidate();
      co_return self.tokens_->get_token();
    }
    if (!helper) helper = std::make_unique<detail::Runtime>();
    asio::awaitable<std::string> op = detail::blocking_get_token(self.tokens_, refresh);
    co_return co_await asio::co_spawn(helper->executor(), std::move(op), asio::use_awaitable);
  }

  // "last": learn each topic's newest id, so that the first subscribe (and any reconnect before a
  // message arrives) starts exactly there.
  static asio::awaitable<void> baseline(RelaySubscriber& self, const RelayEndpoint& endpoint,
                                        const std::string& bearer, Fallback& fallback) {
    detail::HttpClient http(co_await asio::this_coro::executor, endpoint, self.options_.tls);
    const detail::HttpTimeouts timeouts{self.options_.connect_timeout,
                                        self.options_.connect_timeout};
    for (const auto& t : self.options_.topics) {
      detail::HttpRequest req;
      req.target = "/api/v1/topics/" + quote_topic(t) + "/messages?limit=1&order=desc";
      req.headers = {{"Authorization", "Bearer " + bearer}};
      detail::HttpResponse resp = co_await http.request(req, timeouts);
      if (resp.status == 401) throw HandshakeRejected(401);
      if (resp.status == 404) {
        fallback[t] = "first";  // no topic yet: whatever appears is new
        continue;
      }
      auto body = detail::parse_json_object(resp.body);
      const json::value* list = body ? body->if_contains("messages") : nullptr;
      if (resp.status != 200 || !list || !list->is_array()) {
        Log()->warn("cannot read the newest message of {} (HTTP {}); starting at \"last\"", t,
                    resp.status);
        continue;
      }
      if (list->get_array().empty()) {
        fallback[t] = "first";
        continue;
      }
      const json::value& newest = list->get_array().front();
      std::optional<std::string> id;
      if (newest.is_object()) id = detail::get_string(newest.get_object(), "message_id");
      if (id) {
        std::lock_guard lock(self.mutex_);
        self.positions_.emplace(t, *id);
      }
    }
  }

  // One connection: connect, subscribe, read until it ends.
  template <class Ws>
  static asio::awaitable<Outcome> session(RelaySubscriber& self, std::shared_ptr<Conn<Ws>> conn,
                                          const RelayEndpoint& endpoint, const std::string& bearer,
                                          const Fallback& fallback, const Handler& on_message) {
    const SubscriberOptions& options = self.options_;
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    Outcome out;
    const auto deadline = std::chrono::steady_clock::now() + options.connect_timeout;
    {
      std::lock_guard lock(self.mutex_);
      self.stop_hook_ = [ex, weak = std::weak_ptr<Conn<Ws>>(conn)] {
        asio::post(ex, [weak] {
          if (auto c = weak.lock()) c->lowest().close();
        });
      };
    }
    if (self.stopping_) co_return out;
    tcp::resolver resolver(ex);
    const std::string port = std::to_string(endpoint.port);
    auto [rec, results] = co_await resolver.async_resolve(endpoint.host, port, kTuple);
    if (rec) throw detail::HttpError(detail::HttpFailure::kConnect, rec.message());
    conn->lowest().expires_at(deadline);
    auto [cec, ep] = co_await conn->lowest().async_connect(results, kTuple);
    if (cec) {
      throw detail::HttpError(detail::HttpFailure::kConnect,
                              "cannot connect to " + endpoint.host_header + ": " + cec.message());
    }
    if constexpr (!std::is_same_v<Ws, websocket::stream<beast::tcp_stream>>) {
      auto& tls = conn->ws.next_layer();
      SSL_set_tlsext_host_name(tls.native_handle(), endpoint.host.c_str());
      if (options.tls.verify) {
        tls.set_verify_callback(asio::ssl::host_name_verification(endpoint.host));
      }
      auto [hec] = co_await tls.async_handshake(asio::ssl::stream_base::client, kTuple);
      if (hec) throw detail::HttpError(detail::HttpFailure::kConnect, "TLS: " + hec.message());
    }
    conn->lowest().expires_never();
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = options.connect_timeout;
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    conn->ws.set_option(timeouts);
    conn->ws.set_option(websocket::stream_base::decorator([bearer](websocket::request_type& req) {
      req.set(beast::http::field::sec_websocket_protocol, "bearer, bearer." + bearer);
      req.set(beast::http::field::user_agent, "magnetar-client/0.1");
    }));
    websocket::response_type response;
    auto [wec] = co_await conn->ws.async_handshake(response, endpoint.host_header, "/ws", kTuple);
    if (wec) {
      if (response.result_int() >= 400) throw HandshakeRejected(response.result_int());
      throw detail::HttpError(detail::HttpFailure::kConnect, "WebSocket: " + wec.message());
    }

    // Subscribe: one frame per distinct offset (the first frame must be a subscribe; later ones
    // add topics, Magnetar correction D15).
    std::map<std::string, std::vector<std::string>> by_offset;
    {
      std::lock_guard lock(self.mutex_);
      for (const auto& t : options.topics) {
        auto it = self.positions_.find(t);
        by_offset[it != self.positions_.end() ? it->second : fallback.at(t)].push_back(t);
      }
    }
    std::string offsets_used;
    for (const auto& [offset, topics] : by_offset) {
      json::array list;
      for (const auto& t : topics) list.emplace_back(t);
      json::object frame;
      frame["type"] = "subscribe";
      frame["topics"] = std::move(list);
      frame["client_id"] = options.client_id;
      frame["offset"] = offset;
      const std::string text = json::serialize(frame);
      auto [ec, n] = co_await conn->ws.async_write(asio::buffer(text), kTuple);
      if (ec) throw detail::HttpError(detail::HttpFailure::kIo, "send: " + ec.message());
      for (const auto& t : topics) {
        offsets_used += (offsets_used.empty() ? "" : ", ") + t + "@" + offset;
      }
    }
    conn->last_frame = std::chrono::steady_clock::now();
    asio::co_spawn(ex, PingLoop(conn, options.ping_interval, options.pong_timeout), asio::detached);

    size_t confirmations = 0;
    while (true) {
      conn->buffer.clear();
      auto [ec, n] = co_await conn->ws.async_read(conn->buffer, kTuple);
      if (ec) {
        if (ec == websocket::error::closed) {
          const auto& reason = conn->ws.reason();
          out.close_code = static_cast<uint16_t>(reason.code);
          out.why = "closed by the server (" + std::to_string(reason.code) +
                    (reason.reason.empty()
                         ? std::string()
                         : " " + std::string(reason.reason.data(), reason.reason.size())) +
                    ")";
        } else {
          out.why = conn->stale ? "no answer to pings" : ec.message();
        }
        break;
      }
      conn->last_frame = std::chrono::steady_clock::now();
      auto frame = detail::parse_json_object(beast::buffers_to_string(conn->buffer.data()));
      if (!frame) continue;
      const std::string type = detail::get_string(*frame, "type").value_or("");
      if (type == "subscribed") {
        if (++confirmations == 1) {
          out.subscribed = true;
          if (options.on_event) {
            options.on_event({SubscriberEvent::Kind::kConnected, offsets_used});
          }
        }
      } else if (type == "message") {
        auto topic = detail::get_string(*frame, "topic");
        auto id = detail::get_string(*frame, "message_id");
        bool seen = false;
        if (topic && id) {
          std::lock_guard lock(self.mutex_);
          auto pos = self.positions_.find(*topic);
          seen = pos != self.positions_.end() && AtOrBefore(*id, pos->second);
        }
        if (seen) continue;  // replayed after a reconnect: delivered already
        try {
          on_message(*frame);
        } catch (...) {
          out.handler_error = std::current_exception();
          break;
        }
        if (topic && id) {
          std::lock_guard lock(self.mutex_);
          self.positions_[*topic] = *id;
        }
      } else if (type == "error") {
        const std::string code = detail::get_string(*frame, "code").value_or("");
        const std::string message = detail::get_string(*frame, "message").value_or("");
        if (code == "SUBSCRIPTION_ERROR") {
          throw SubscriptionRefused("the relay refused the subscription: " + message);
        }
        Log()->warn("relay WebSocket error frame {}: {}", code, message);
      }
      if (self.stopping_) break;
    }
    co_return out;
  }

  template <class Ws>
  static void finish(RelaySubscriber& self, const std::shared_ptr<Conn<Ws>>& conn) {
    conn->done = true;
    conn->ping_timer.cancel();
    beast::error_code ignored;
    conn->lowest().socket().close(ignored);
    std::lock_guard lock(self.mutex_);
    self.stop_hook_ = nullptr;
  }

  template <class Ws>
  static asio::awaitable<Outcome> connect(RelaySubscriber& self, std::shared_ptr<Conn<Ws>> conn,
                                          const RelayEndpoint& endpoint, const std::string& bearer,
                                          const Fallback& fallback, const Handler& on_message) {
    Outcome out;
    try {
      out = co_await session(self, conn, endpoint, bearer, fallback, on_message);
    } catch (...) {
      finish(self, conn);
      throw;
    }
    finish(self, conn);
    co_return out;
  }
};

asio::awaitable<void> RelaySubscriber::run_loop(Handler on_message, bool private_context) {
  const asio::any_io_executor ex = co_await asio::this_coro::executor;
  const RelayEndpoint endpoint = parse_relay_endpoint(relay_url_);
  std::unique_ptr<asio::ssl::context> tls_ctx;
  if (endpoint.tls) {
    tls_ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    if (!options_.tls.ca_file.empty()) {
      tls_ctx->load_verify_file(options_.tls.ca_file);
    } else if (!options_.tls.ca_path.empty()) {
      tls_ctx->add_verify_path(options_.tls.ca_path);
    } else {
      tls_ctx->set_default_verify_paths();
    }
    tls_ctx->set_verify_mode(options_.tls.verify ? asio::ssl::verify_peer : asio::ssl::verify_none);
  }
  std::unique_ptr<detail::Runtime> helper;  // blocking token refreshes off a shared executor
  Impl::Fallback fallback;
  for (const auto& t : options_.topics) fallback[t] = options_.offset == "last" ? "last" : "first";

  std::chrono::milliseconds delay = options_.reconnect_initial;
  int failures = 0;
  int rejections = 0;
  bool refresh = false;
  while (!stopping_) {
    std::string why;
    bool immediate = false;
    try {
      const std::string bearer = co_await Impl::token(*this, refresh, private_context, helper);
      refresh = false;
      if (!baseline_done_) {
        co_await Impl::baseline(*this, endpoint, bearer, fallback);
        baseline_done_ = true;
      }
      Outcome out;
      if (endpoint.tls) {
        using Ws = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;
        auto conn = std::make_shared<Conn<Ws>>(ex, ex, *tls_ctx);
        out = co_await Impl::connect(*this, conn, endpoint, bearer, fallback, on_message);
      } else {
        using Ws = websocket::stream<beast::tcp_stream>;
        auto conn = std::make_shared<Conn<Ws>>(ex, ex);
        out = co_await Impl::connect(*this, conn, endpoint, bearer, fallback, on_message);
      }
      if (out.handler_error) std::rethrow_exception(out.handler_error);
      if (out.subscribed) {
        failures = 0;
        rejections = 0;
        delay = options_.reconnect_initial;
      }
      why = out.why;
      if (out.close_code == kCloseTokenInvalid) {
        refresh = true;  // expired or revoked: a fresh token, and straight back
        immediate = true;
      }
    } catch (const HandshakeRejected& e) {
      why = e.what();
      refresh = true;
      if (++rejections >= kMaxHandshakeRejections) {
        throw AuthError(std::string("the relay keeps refusing the WebSocket: ") + e.what());
      }
    } catch (const detail::HttpError& e) {
      why = e.what();
    }
    if (stopping_) break;
    if (options_.on_event) options_.on_event({SubscriberEvent::Kind::kDisconnected, why});
    Log()->info("relay WebSocket disconnected: {}", why);
    if (immediate) continue;
    ++failures;
    if (options_.max_reconnect_attempts && failures >= *options_.max_reconnect_attempts) {
      throw Error("relay WebSocket: giving up after " + std::to_string(failures) +
                  " failed attempts: " + why);
    }
    if (options_.on_event) {
      options_.on_event({SubscriberEvent::Kind::kReconnecting, why, delay});
    }
    auto wait = std::make_shared<asio::steady_timer>(ex, delay);
    {
      std::lock_guard lock(mutex_);
      stop_hook_ = [ex, wait] { asio::post(ex, [wait] { wait->cancel(); }); };
    }
    if (!stopping_) co_await wait->async_wait(kTuple);
    {
      std::lock_guard lock(mutex_);
      stop_hook_ = nullptr;
    }
    delay = std::min(delay * 2, options_.reconnect_max);
  }
}

}  // namespace magnetar::client
