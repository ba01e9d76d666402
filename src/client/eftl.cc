#include "client/eftl.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <random>

#include "client/runtime.h"
#include "common/json_string.h"
#include "common/log.h"
#include "eftl/codec.h"
#include "eftl/protocol.h"

namespace magnetar::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
using asio::ip::tcp;

// The delivery envelope of a received message (EftlMessage keeps it private).
namespace detail {
struct EftlAccess {
  static void set(EftlMessage& m, std::string subscription, std::int64_t seq, std::int64_t sid,
                  std::int64_t cnt, std::string reply_to, std::int64_t req, bool client_ack) {
    m.envelope_.subscription = std::move(subscription);
    m.envelope_.seq = seq;
    m.envelope_.sid = sid;
    m.envelope_.cnt = cnt;
    m.envelope_.reply_to = std::move(reply_to);
    m.envelope_.req = req;
    m.envelope_.client_ack = client_ack;
  }
  static bool client_ack(const EftlMessage& m) { return m.envelope_.client_ack; }
  static const std::string& reply_to(const EftlMessage& m) { return m.envelope_.reply_to; }
  static std::int64_t req(const EftlMessage& m) { return m.envelope_.req; }
};
}  // namespace detail

namespace {

// The wire's op numbers and subprotocol, shared with the server (eftl/protocol.h).
using eftl::kSubprotocol;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr char kClientVersion[] = "magnetar-cpp 0.1";
// What a publish/request/reply/map-set envelope adds to the body, for the max_size check.
constexpr std::size_t kEnvelopeOverhead = 64;


std::shared_ptr<spdlog::logger> Log() { return Logger("client"); }

// A frame as compact JSON text (bodies are inserted as already-encoded messages).
class Frame {
 public:
  explicit Frame(int op) : s_("{\"op\":" + std::to_string(op)) {}
  Frame& str(std::string_view key, std::string_view value) {
    Key(key);
    magnetar::AppendJsonString(s_, value);
    return *this;
  }
  Frame& num(std::string_view key, std::int64_t value) {
    Key(key);
    s_ += std::to_string(value);
    return *this;
  }
  Frame& raw(std::string_view key, std::string_view json_text) {
    Key(key);
    s_ += json_text;
    return *this;
  }
  std::string done() {
    s_.push_back('}');
    return std::move(s_);
  }

 private:
  void Key(std::string_view key) {
    s_ += ",\"";
    s_ += key;
    s_ += "\":";
  }
  std::string s_;
};

std::optional<std::string> GetString(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (!v || !v->is_string()) return std::nullopt;
  return std::string(v->get_string());
}

std::optional<std::int64_t> GetInt(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v->get_uint64());
  }
  if (v->is_string()) {  // some servers send numbers as strings
    try {
      return std::stoll(std::string(v->get_string()));
    } catch (const std::exception&) {
    }
  }
  return std::nullopt;
}

std::optional<std::string> GetId(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (!v) return std::nullopt;
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_int64()) return std::to_string(v->get_int64());
  if (v->is_uint64()) return std::to_string(v->get_uint64());
  return std::nullopt;
}

// "true" / true.
bool GetTrue(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (!v) return false;
  if (v->is_bool()) return v->get_bool();
  if (v->is_string()) {
    std::string s(v->get_string());
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s == "true";
  }
  return false;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() &&
        std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// A failed connection attempt; `auth` when the server refused the credentials (trying the other
// URLs cannot help).
struct OpenFailure : std::runtime_error {
  OpenFailure(const std::string& what, bool auth_failure, int close_code = 1006)
      : std::runtime_error(what), auth(auth_failure), code(close_code) {}
  bool auth;
  int code;
};

using PlainWs = websocket::stream<beast::tcp_stream>;
using TlsWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

// One WebSocket connection and its write queue (one write in flight). Lives on the I/O thread.
struct WsConn {
  std::unique_ptr<PlainWs> plain;
  std::unique_ptr<TlsWs> tls;
  beast::flat_buffer buffer;
  std::deque<std::string> out;
  bool writing = false;
  bool close_after_writes = false;  // a graceful disconnect: close once the queue is sent
  bool closing = false;
  bool done = false;
  bool login_timed_out = false;
  std::string local_reason;  // why we cut it ("Connection timeout")
  std::string goodbye;       // the reason of a GOODBYE op
  json::object welcome;
  std::unique_ptr<asio::steady_timer> watchdog;
  std::chrono::steady_clock::time_point last_frame = std::chrono::steady_clock::now();

  beast::tcp_stream& lowest() {
    return plain ? beast::get_lowest_layer(*plain) : beast::get_lowest_layer(*tls);
  }
  void close_now() {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().socket().close(ec);
  }
  template <class Option>
  void set_option(Option o) {
    if (plain) plain->set_option(std::move(o));
    else tls->set_option(std::move(o));
  }
  void read_message_max(std::size_t n) {
    if (plain) plain->read_message_max(n);
    else tls->read_message_max(n);
  }
  websocket::close_reason reason() const { return plain ? plain->reason() : tls->reason(); }

  asio::awaitable<beast::error_code> handshake(websocket::response_type& response,
                                               const std::string& host, const std::string& target) {
    beast::error_code ec;
    if (plain) {
      std::tie(ec) = co_await plain->async_handshake(response, host, target, kTuple);
    } else {
      std::tie(ec) = co_await tls->async_handshake(response, host, target, kTuple);
    }
    co_return ec;
  }
  asio::awaitable<beast::error_code> write(const std::string& text) {
    beast::error_code ec;
    std::size_t n = 0;
    if (plain) {
      std::tie(ec, n) = co_await plain->async_write(asio::buffer(text), kTuple);
    } else {
      std::tie(ec, n) = co_await tls->async_write(asio::buffer(text), kTuple);
    }
    co_return ec;
  }
  asio::awaitable<beast::error_code> read(std::string* text) {
    buffer.clear();
    beast::error_code ec;
    std::size_t n = 0;
    if (plain) {
      std::tie(ec, n) = co_await plain->async_read(buffer, kTuple);
    } else {
      std::tie(ec, n) = co_await tls->async_read(buffer, kTuple);
    }
    if (!ec) *text = beast::buffers_to_string(buffer.data());
    co_return ec;
  }
  asio::awaitable<beast::error_code> close(websocket::close_code code) {
    beast::error_code ec;
    const websocket::close_reason reason(code);
    if (plain) {
      std::tie(ec) = co_await plain->async_close(reason, kTuple);
    } else {
      std::tie(ec) = co_await tls->async_close(reason, kTuple);
    }
    co_return ec;
  }
};

asio::awaitable<void> WriteLoop(std::shared_ptr<WsConn> c) {
  while (!c->done) {
    if (c->out.empty()) {
      if (c->close_after_writes && !c->closing) {
        c->closing = true;
        beast::error_code ec = co_await c->close(websocket::close_code::normal);
        if (ec) c->close_now();
      }
      break;
    }
    std::string frame = std::move(c->out.front());
    c->out.pop_front();
    beast::error_code ec = co_await c->write(frame);
    if (ec) {
      c->close_now();  // the read loop sees it and handles the loss
      break;
    }
  }
  c->writing = false;
}

const char* AckName(EftlAckMode m) {
  switch (m) {
    case EftlAckMode::kAuto: return "auto";
    case EftlAckMode::kClient: return "client";
    case EftlAckMode::kNone: return "none";
  }
  return "auto";
}

const char* TypeName(EftlDurableType t) {
  switch (t) {
    case EftlDurableType::kStandard: return "standard";
    case EftlDurableType::kShared: return "shared";
    case EftlDurableType::kLastValue: return "last-value";
  }
  return "standard";
}

// Close codes after which the client reconnects by itself (spec §b.8 names 1006 and 1012; 1001
// is what a server says when it stops, e.g. for a restart).
bool Reconnectable(int code) { return code == 1001 || code == 1006 || code == 1012; }

}  // namespace

const char* to_string(EftlState state) {
  switch (state) {
    case EftlState::kConnecting: return "CONNECTING";
    case EftlState::kConnected: return "CONNECTED";
    case EftlState::kReconnecting: return "RECONNECTING";
    case EftlState::kDisconnecting: return "DISCONNECTING";
    case EftlState::kDisconnected: return "DISCONNECTED";
  }
  return "?";
}

// ---- URLs ----------------------------------------------------------------------------------------

std::string EftlUrl::display() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return std::string(tls ? "wss://" : "ws://") + (ipv6 ? "[" + host + "]" : host) + ":" +
         std::to_string(port) + target;
}

std::vector<EftlUrl> parse_eftl_urls(const std::string& urls) {
  std::vector<EftlUrl> out;
  size_t start = 0;
  while (start <= urls.size()) {
    size_t bar = urls.find('|', start);
    if (bar == std::string::npos) bar = urls.size();
    const std::string entry = Trim(std::string_view(urls).substr(start, bar - start));
    start = bar + 1;
    if (entry.empty()) continue;
    auto bad = [&](const std::string& why) {
      return std::invalid_argument("invalid eFTL URL '" + entry + "': " + why);
    };
    for (char c : entry) {
      if (std::iscntrl(static_cast<unsigned char>(c)) || c == ' ') throw bad("whitespace");
    }
    EftlUrl u;
    const size_t colon = entry.find("://");
    if (colon == std::string::npos) throw bad("needs ws:// or wss://");
    const std::string scheme = Lower(entry.substr(0, colon));
    if (scheme == "ws") u.tls = false;
    else if (scheme == "wss") u.tls = true;
    else throw bad("the scheme must be ws or wss");
    std::string rest = entry.substr(colon + 3);
    const size_t fragment = rest.find('#');
    if (fragment != std::string::npos) rest.resize(fragment);
    size_t path_at = rest.find_first_of("/?");
    std::string authority = rest.substr(0, path_at);
    std::string target = path_at == std::string::npos ? "/" : rest.substr(path_at);
    if (!target.empty() && target.front() == '?') target = "/" + target;
    if (const size_t at = authority.rfind('@'); at != std::string::npos) {
      const std::string info = authority.substr(0, at);
      authority = authority.substr(at + 1);
      const size_t sep = info.find(':');
      u.username = PercentDecode(info.substr(0, sep));
      if (sep != std::string::npos) u.password = PercentDecode(info.substr(sep + 1));
    }
    std::string port_text;
    if (!authority.empty() && authority.front() == '[') {
      const size_t close = authority.find(']');
      if (close == std::string::npos) throw bad("unterminated IPv6 address");
      u.host = authority.substr(1, close - 1);
      if (close + 1 < authority.size()) {
        if (authority[close + 1] != ':') throw bad("junk after the IPv6 address");
        port_text = authority.substr(close + 2);
      }
    } else {
      const size_t sep = authority.rfind(':');
      u.host = authority.substr(0, sep);
      if (sep != std::string::npos) port_text = authority.substr(sep + 1);
    }
    if (u.host.empty()) throw bad("no host");
    u.port = u.tls ? 443 : 80;
    if (!port_text.empty()) {
      if (port_text.size() > 5 ||
          !std::all_of(port_text.begin(), port_text.end(),
                       [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
        throw bad("the port must be a number");
      }
      const int port = std::stoi(port_text);
      if (port < 1 || port > 65535) throw bad("the port must be 1-65535");
      u.port = static_cast<std::uint16_t>(port);
    }
    // ?clientId= (or client_id=) is taken out: the client sends it in the login op.
    if (const size_t q = target.find('?'); q != std::string::npos) {
      std::string kept;
      std::string query = target.substr(q + 1);
      target.resize(q);
      size_t p = 0;
      while (p <= query.size()) {
        size_t amp = query.find('&', p);
        if (amp == std::string::npos) amp = query.size();
        const std::string param = query.substr(p, amp - p);
        p = amp + 1;
        if (param.empty()) continue;
        const size_t eq = param.find('=');
        const std::string name = param.substr(0, eq);
        if (name == "clientId" || name == "client_id") {
          u.client_id = eq == std::string::npos ? "" : PercentDecode(param.substr(eq + 1));
          continue;
        }
        kept += (kept.empty() ? "" : "&") + param;
      }
      if (!kept.empty()) target += "?" + kept;
    }
    u.target = target;
    out.push_back(std::move(u));
  }
  if (out.empty()) throw std::invalid_argument("no eFTL URL given");
  return out;
}

// ---- the connection --------------------------------------------------------------------------

struct EftlConnection::Impl : std::enable_shared_from_this<Impl> {
  struct Pending {
    int op = 0;
    std::string frame;
    EftlCallback done;
    bool sent = false;
    std::shared_ptr<asio::steady_timer> timer;  // requests: the client-side timeout
  };
  struct Sub {
    std::string id;
    EftlSubscribeOptions options;
    EftlMessageHandler handler;
    EftlCallback on_subscribed;  // until the first answer
    std::int64_t last_seq = 0;
    bool stopped = false;
    bool confirmed = false;
  };

  Impl(asio::any_io_executor executor, detail::Runtime* rt, std::vector<EftlUrl> list,
       EftlOptions opts)
      : ex(std::move(executor)), runtime(rt), urls(std::move(list)), options(std::move(opts)) {
    if (options.shuffle_urls) std::shuffle(urls.begin(), urls.end(), rng);
  }

  // ---- any thread ----

  bool post(std::function<void()> fn) {
    std::lock_guard lock(mutex);
    if (shut_down) return false;
    asio::post(ex, std::move(fn));
    return true;
  }
  void post_or_throw(std::function<void()> fn) {
    if (!post(std::move(fn))) throw EftlError(EftlError::kPublishFailed, "the eFTL connection is closed");
  }
  void check_size(std::size_t body_size) {
    std::lock_guard lock(mutex);
    if (max_size > 0 && body_size + kEnvelopeOverhead > max_size) {
      throw EftlMessageTooLarge("eFTL message of " + std::to_string(body_size) +
                                " bytes exceeds the server's max_size of " +
                                std::to_string(max_size));
    }
  }
  // Runs `start(callback)` and waits for the callback's result.
  EftlResult blocking(const std::function<void(EftlCallback)>& start) {
    if (runtime->on_runtime_thread()) {
      throw std::logic_error("eFTL client: blocking call made on the connection's I/O thread");
    }
    auto promise = std::make_shared<std::promise<EftlResult>>();
    auto future = promise->get_future();
    start([promise](const EftlResult& r) { promise->set_value(r); });
    return future.get();
  }

  // ---- I/O thread ----

  void set_state(EftlState s) {
    {
      std::lock_guard lock(mutex);
      if (state == s) return;
      state = s;
    }
    if (options.on_state_change) {
      try {
        options.on_state_change(s);
      } catch (const std::exception& e) {
        Log()->warn("eFTL on_state_change threw: {}", e.what());
      }
    }
  }

  static void Call(const EftlCallback& cb, const EftlResult& r) {
    if (!cb) return;
    try {
      cb(r);
    } catch (const std::exception& e) {
      Log()->warn("eFTL callback threw: {}", e.what());
    }
  }

  void send(std::string frame) {
    if (!conn || conn->done || conn->close_after_writes) return;
    conn->out.push_back(std::move(frame));
    kick(conn);
  }
  void kick(const std::shared_ptr<WsConn>& c) {
    if (c->writing) return;
    c->writing = true;
    asio::co_spawn(ex, WriteLoop(c), asio::detached);
  }

  std::string login_frame(const EftlUrl& url) {
    const std::string& user = url.username.empty() && url.password.empty() ? options.username : url.username;
    const std::string& password = url.username.empty() && url.password.empty() ? options.password : url.password;
    std::string cid = client_id;
    if (cid.empty()) cid = url.client_id.empty() ? options.client_id : url.client_id;
    Frame f(eftl::kOpLogin);
    f.num("protocol", 1).str("client_type", "cpp").str("client_version", kClientVersion);
    if (!user.empty()) f.str("user", user);
    if (!password.empty()) f.str("password", password);
    if (!cid.empty()) f.str("client_id", cid);
    if (!id_token.empty()) f.str("id_token", id_token);
    if (options.max_pending_acks > 0) f.num("max_pending_acks", options.max_pending_acks);
    f.raw("login_options", R"({"_qos":"true","_resume":"true"})");
    return f.done();
  }

  std::string subscribe_frame(const Sub& s) {
    Frame f(eftl::kOpSubscribe);
    f.str("id", s.id);
    if (!s.options.matcher.empty()) f.str("matcher", s.options.matcher);
    if (!s.options.durable.empty()) f.str("durable", s.options.durable);
    if (s.options.type) f.str("type", TypeName(*s.options.type));
    if (!s.options.key.empty()) f.str("key", s.options.key);
    f.str("ack", AckName(s.options.ack));
    if (s.stopped) f.raw("stopped", "true");
    return f.done();
  }

  // Connects to one URL, upgrades, logs in and waits for the welcome. Throws OpenFailure.
  asio::awaitable<std::shared_ptr<WsConn>> open(EftlUrl url) {
    auto c = std::make_shared<WsConn>();
    if (url.tls) {
      if (!tls_ctx) {
        tls_ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
        if (!options.tls.ca_file.empty()) tls_ctx->load_verify_file(options.tls.ca_file);
        else if (!options.tls.ca_path.empty()) tls_ctx->add_verify_path(options.tls.ca_path);
        else tls_ctx->set_default_verify_paths();
        tls_ctx->set_verify_mode(options.tls.verify ? asio::ssl::verify_peer : asio::ssl::verify_none);
      }
      c->tls = std::make_unique<TlsWs>(ex, *tls_ctx);
    } else {
      c->plain = std::make_unique<PlainWs>(ex);
    }
    attempt = c;
    const std::string where = url.display();
    tcp::resolver resolver(ex);
    const std::string port = std::to_string(url.port);
    auto [rec, results] = co_await resolver.async_resolve(url.host, port, kTuple);
    if (rec) throw OpenFailure("cannot resolve " + url.host + ": " + rec.message(), false);
    c->lowest().expires_after(options.handshake_timeout);
    auto [cec, ep] = co_await c->lowest().async_connect(results, kTuple);
    if (cec) throw OpenFailure("cannot connect to " + where + ": " + cec.message(), false);
    beast::error_code ignored;
    c->lowest().socket().set_option(tcp::no_delay(true), ignored);
    if (c->tls) {
      auto& stream = c->tls->next_layer();
      SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str());
      if (options.tls.verify) stream.set_verify_callback(asio::ssl::host_name_verification(url.host));
      auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, kTuple);
      if (hec) throw OpenFailure("TLS handshake with " + where + ": " + hec.message(), false);
    }
    c->lowest().expires_never();
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = options.handshake_timeout;
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    c->set_option(timeouts);
    c->read_message_max(64u << 20);
    const bool url_creds = !url.username.empty() || !url.password.empty();
    const std::string user = url_creds ? url.username : options.username;
    const std::string password = url_creds ? url.password : options.password;
    std::string basic;
    if (!user.empty() || !password.empty()) basic = "Basic " + Base64Encode(user + ":" + password);
    c->set_option(websocket::stream_base::decorator([basic](websocket::request_type& req) {
      req.set(beast::http::field::sec_websocket_protocol, kSubprotocol);
      req.set(beast::http::field::user_agent, kClientVersion);
      if (!basic.empty()) req.set(beast::http::field::authorization, basic);
    }));
    websocket::response_type response;
    const std::string host = url.host.find(':') != std::string::npos
                                 ? "[" + url.host + "]:" + port
                                 : url.host + ":" + port;
    beast::error_code wec = co_await c->handshake(response, host, url.target);
    if (wec) {
      const int status = response.result_int();
      if (status == 401 || status == 403) {
        throw OpenFailure("authentication failed at " + where + " (HTTP " + std::to_string(status) + ")", true, 4002);
      }
      if (status == 404) throw OpenFailure("no eFTL channel at " + where + " (HTTP 404)", false);
      if (status >= 400) {
        throw OpenFailure("WebSocket upgrade refused by " + where + " (HTTP " + std::to_string(status) + ")", false);
      }
      throw OpenFailure("WebSocket handshake with " + where + ": " + wec.message(), false);
    }
    const std::string login = login_frame(url);
    if (beast::error_code lec = co_await c->write(login); lec) {
      throw OpenFailure("sending the login to " + where + ": " + lec.message(), false);
    }
    auto timer = std::make_shared<asio::steady_timer>(ex, options.login_timeout);
    timer->async_wait([weak = std::weak_ptr<WsConn>(c)](beast::error_code ec) {
      if (ec) return;
      if (auto cc = weak.lock()) {
        cc->login_timed_out = true;
        cc->close_now();
      }
    });
    std::optional<std::pair<int, std::string>> refused;  // op 10 before the welcome
    while (true) {
      std::string text;
      beast::error_code ec = co_await c->read(&text);
      if (ec) {
        timer->cancel();
        if (c->login_timed_out) throw OpenFailure("no welcome from " + where + " within the login timeout", false);
        int code = 1006;
        std::string reason = ec.message();
        if (ec == websocket::error::closed) {
          code = c->reason().code;
          reason = std::string(c->reason().reason.data(), c->reason().reason.size());
        }
        if (refused) {
          code = (refused->first == 4002 || code == 4002) ? 4002 : code;
          reason = refused->second;
        }
        const bool auth = code == 4002;
        throw OpenFailure("login at " + where + " failed: " + (reason.empty() ? "closed" : reason) +
                              " (" + std::to_string(code) + ")",
                          auth, code);
      }
      auto parsed = eftl::ParseJson(text, 2 * eftl::kMaxDepth + 8);
      if (!parsed.ok() || !parsed->is_object()) continue;
      const json::object& o = parsed->get_object();
      const auto op = GetInt(o, "op");
      if (op == eftl::kOpHeartbeat) {
        (void)co_await c->write(text);
      } else if (op == eftl::kOpError) {
        refused = std::make_pair(static_cast<int>(GetInt(o, "err").value_or(4002)),
                                 GetString(o, "reason").value_or("login refused"));
      } else if (op == eftl::kOpWelcome) {
        timer->cancel();
        c->welcome = o;
        co_return c;
      }
    }
  }

  // A welcomed connection becomes the live one: subscriptions and unanswered ops go out again.
  void activate(std::shared_ptr<WsConn> c, const EftlUrl& url) {
    const json::object& w = c->welcome;
    const bool resumed = GetTrue(w, "_resume");
    qos = GetTrue(w, "_qos");
    heartbeat_seconds = static_cast<int>(GetInt(w, "heartbeat").value_or(240));
    timeout_seconds = static_cast<int>(GetInt(w, "timeout").value_or(600));
    id_token = GetString(w, "id_token").value_or("");
    {
      std::lock_guard lock(mutex);
      client_id = GetString(w, "client_id").value_or(client_id);
      max_size = static_cast<std::uint64_t>(std::max<std::int64_t>(0, GetInt(w, "max_size").value_or(0)));
      connected_url = url.display();
    }
    conn = c;
    c->last_frame = std::chrono::steady_clock::now();
    attempt.reset();
    set_state(EftlState::kConnected);
    if (!resumed) {
      for (auto& [id, s] : subs) s.last_seq = 0;
      std::vector<EftlCallback> failed;
      for (auto it = pending.begin(); it != pending.end();) {
        if (it->second.sent) {
          if (it->second.timer) it->second.timer->cancel();
          failed.push_back(std::move(it->second.done));
          it = pending.erase(it);
        } else {
          ++it;
        }
      }
      for (auto& cb : failed) {
        Call(cb, {EftlError::kPublishFailed, "Reconnect: the server did not resume the session", {}});
      }
    }
    for (auto& [id, s] : subs) send(subscribe_frame(s));
    for (auto& [seq, p] : pending) {  // in seq order, with their original seqs
      send(p.frame);
      p.sent = true;
    }
    c->watchdog = std::make_unique<asio::steady_timer>(ex);
    asio::co_spawn(ex, watchdog(c), asio::detached);
  }

  // Closes a connection from which nothing arrived for the welcome's `timeout`.
  asio::awaitable<void> watchdog(std::shared_ptr<WsConn> c) {
    const auto period = std::chrono::seconds(std::max(1, std::min(heartbeat_seconds, timeout_seconds)));
    const auto limit = std::chrono::seconds(std::max(1, timeout_seconds));
    while (!c->done) {
      c->watchdog->expires_after(period);
      co_await c->watchdog->async_wait(kTuple);  // cancelled when the connection ends
      if (c->done) break;
      if (std::chrono::steady_clock::now() - c->last_frame > limit) {
        c->local_reason = "Connection timeout";
        c->close_now();
        break;
      }
    }
  }

  struct Ended {
    int code = 1006;
    std::string reason;
  };

  asio::awaitable<Ended> read_loop(std::shared_ptr<WsConn> c) {
    Ended end;
    while (true) {
      std::string text;
      beast::error_code ec = co_await c->read(&text);
      if (ec) {
        if (ec == websocket::error::closed) {
          const auto r = c->reason();
          end.code = r.code;
          end.reason = std::string(r.reason.data(), r.reason.size());
        } else {
          end.code = 1006;
          end.reason = c->local_reason.empty() ? ec.message() : c->local_reason;
        }
        if (end.reason.empty()) end.reason = c->goodbye;
        co_return end;
      }
      c->last_frame = std::chrono::steady_clock::now();
      handle_text(*c, text);
    }
  }

  void handle_text(WsConn& c, const std::string& text) {
    auto parsed = eftl::ParseJson(text, 2 * eftl::kMaxDepth + 8);
    if (!parsed.ok()) {
      Log()->warn("eFTL: ignoring a frame that is not JSON: {}", parsed.status().message());
      return;
    }
    if (parsed->is_array()) {  // batched events
      for (const auto& item : parsed->get_array()) {
        if (item.is_object()) dispatch(c, item.get_object(), text);
      }
    } else if (parsed->is_object()) {
      dispatch(c, parsed->get_object(), text);
    }
  }

  void dispatch(WsConn& c, const json::object& o, const std::string& text) {
    const auto op = GetInt(o, "op");
    if (!op) return;
    switch (*op) {
      case eftl::kOpHeartbeat: return send(text);  // echo the exact text
      case eftl::kOpEvent: return on_event(o);
      case eftl::kOpAck:
      case eftl::kOpRequestReply:
      case eftl::kOpMapResponse: return on_response(o);
      case eftl::kOpSubscribed: {
        auto id = GetId(o, "id");
        auto it = id ? subs.find(*id) : subs.end();
        if (it == subs.end()) return;
        it->second.confirmed = true;
        EftlCallback cb = std::move(it->second.on_subscribed);
        it->second.on_subscribed = nullptr;
        return Call(cb, {});
      }
      case eftl::kOpUnsubscribed: {
        auto id = GetId(o, "id");
        const int err = static_cast<int>(GetInt(o, "err").value_or(EftlError::kSubscriptionFailed));
        const std::string reason = GetString(o, "reason").value_or("subscription failed");
        auto it = id ? subs.find(*id) : subs.end();
        if (it == subs.end()) return;
        EftlCallback cb = std::move(it->second.on_subscribed);
        // Invalid, or refused before it ever worked: forget it. Otherwise it is tried again
        // after the next reconnect (spec §b.2).
        if (err == EftlError::kSubscriptionInvalid || !it->second.confirmed) subs.erase(it);
        else it->second.on_subscribed = nullptr;
        if (cb) return Call(cb, {err, reason, {}});
        if (options.on_error) options.on_error(err, "subscription " + *id + ": " + reason);
        return;
      }
      case eftl::kOpError: {
        const int err = static_cast<int>(GetInt(o, "err").value_or(0));
        const std::string reason = GetString(o, "reason").value_or("");
        Log()->warn("eFTL server error {}: {}", err, reason);
        if (options.on_error) options.on_error(err, reason);
        return;
      }
      case eftl::kOpGoodbye: c.goodbye = GetString(o, "reason").value_or("goodbye"); return;
      case eftl::kOpStarted: return;
      default: return;
    }
  }

  void on_event(const json::object& o) {
    auto to = GetId(o, "to");
    auto it = to ? subs.find(*to) : subs.end();
    if (it == subs.end()) return;
    Sub& s = it->second;
    const auto seq = GetInt(o, "seq");
    const bool auto_ack = qos && seq && s.options.ack == EftlAckMode::kAuto;
    const std::string id = s.id;
    if (seq && *seq <= s.last_seq) {  // seen already (redelivered after a resume)
      if (auto_ack) send(Frame(eftl::kOpAck).num("seq", *seq).str("id", id).done());
      return;
    }
    if (s.stopped) return;  // the server redelivers it after start
    const json::value* body = o.if_contains("body");
    eftl::Message decoded;
    if (body && body->is_object()) {
      auto m = eftl::DecodeMessage(*body, eftl::DecodeMode::kLenient);
      if (m.ok()) decoded = std::move(m).value();
    }
    EftlMessage message(std::move(decoded));
    detail::EftlAccess::set(message, id, seq.value_or(0), GetInt(o, "sid").value_or(0),
                            GetInt(o, "cnt").value_or(0), GetString(o, "reply_to").value_or(""),
                            GetInt(o, "req").value_or(0), s.options.ack == EftlAckMode::kClient);
    if (seq) s.last_seq = *seq;
    EftlMessageHandler handler = s.handler;  // it may unsubscribe
    try {
      if (handler) handler(message);
    } catch (const std::exception& e) {
      Log()->warn("eFTL message handler of subscription {} threw: {}", id, e.what());
    }
    if (auto_ack) send(Frame(eftl::kOpAck).num("seq", *seq).str("id", id).done());
  }

  void on_response(const json::object& o) {
    const auto seq = GetInt(o, "seq");
    if (!seq) return;
    EftlResult r;
    if (auto err = GetInt(o, "err")) {
      r.code = static_cast<int>(*err);
      r.reason = GetString(o, "reason").value_or("failed");
    }
    const json::value* body = o.if_contains("body");
    if (!body) body = o.if_contains("value");
    if (r.ok() && body && body->is_object()) {
      auto m = eftl::DecodeMessage(*body, eftl::DecodeMode::kLenient);
      if (m.ok()) r.message = EftlMessage(std::move(m).value());
    }
    complete(*seq, r);
  }

  void complete(std::int64_t seq, const EftlResult& r) {
    auto it = pending.find(seq);
    if (it == pending.end()) return;
    EftlCallback cb = std::move(it->second.done);
    if (it->second.timer) it->second.timer->cancel();
    pending.erase(it);
    Call(cb, r);
  }

  // Starts an op that the server answers by its seq.
  void start_op(int op, const std::function<std::string(std::int64_t)>& build, EftlCallback done,
                std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    if (!driver_running) {
      return Call(done, {EftlError::kPublishFailed, "not connected", {}});
    }
    const std::int64_t seq = ++next_seq;
    Pending p;
    p.op = op;
    p.frame = build(seq);
    p.done = std::move(done);
    if (timeout) {
      p.timer = std::make_shared<asio::steady_timer>(ex, *timeout);
      p.timer->async_wait([weak = weak_from_this(), seq](beast::error_code ec) {
        if (ec) return;
        if (auto self = weak.lock()) self->complete(seq, {EftlError::kRequestTimeout, "request timeout", {}});
      });
    }
    if (conn && !conn->close_after_writes) {
      send(p.frame);
      p.sent = true;
      if (!qos && (op == eftl::kOpMessage || op == eftl::kOpReply)) {  // no acks without QoS
        EftlCallback cb = std::move(p.done);
        return Call(cb, {});
      }
    }
    pending.emplace(seq, std::move(p));
  }

  void fail_all(const std::string& reason) {
    std::vector<EftlCallback> failed;
    for (auto& [seq, p] : pending) {
      if (p.timer) p.timer->cancel();
      failed.push_back(std::move(p.done));
    }
    pending.clear();
    for (auto it = subs.begin(); it != subs.end();) {
      if (it->second.on_subscribed) {
        failed.push_back(std::move(it->second.on_subscribed));
        it = it->second.confirmed ? std::next(it) : subs.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& cb : failed) Call(cb, {EftlError::kPublishFailed, reason, {}});
  }

  void finish(int code, const std::string& reason) {
    driver_running = false;
    conn.reset();
    attempt.reset();
    set_state(EftlState::kDisconnected);
    fail_all(user_disconnect ? "Disconnected" : "Connection lost: " + reason);
    auto waiting = std::move(waiters);
    waiters.clear();
    for (auto& w : waiting) w();
    if (options.on_disconnect) {
      try {
        options.on_disconnect(code, reason);
      } catch (const std::exception& e) {
        Log()->warn("eFTL on_disconnect threw: {}", e.what());
      }
    }
  }

  // After a loss: the next URL at once, then passes over the list with a growing delay.
  asio::awaitable<std::shared_ptr<WsConn>> reconnect_loop(Ended& end) {
    for (int pass = 0; pass < options.auto_reconnect_attempts && !user_disconnect; ++pass) {
      for (size_t i = 0; i < urls.size() && !user_disconnect; ++i) {
        url_index = (url_index + 1) % urls.size();
        EftlUrl url = urls[url_index];
        try {
          std::shared_ptr<WsConn> c = co_await open(url);
          co_return c;
        } catch (const OpenFailure& f) {
          Log()->info("eFTL reconnect to {} failed: {}", url.display(), f.what());
          end.reason = f.what();
          if (f.auth) {
            end.code = f.code;
            co_return nullptr;
          }
        }
      }
      if (user_disconnect) break;
      const double jitter = std::uniform_real_distribution<double>(0.5, 1.5)(rng);
      const double factor = std::ldexp(1.0, std::min(pass, 20));
      auto delay = std::chrono::milliseconds(static_cast<std::int64_t>(
          static_cast<double>(options.auto_reconnect_base_delay.count()) * factor * jitter));
      delay = std::min(delay, options.auto_reconnect_max_delay);
      backoff = std::make_unique<asio::steady_timer>(ex, delay);
      co_await backoff->async_wait(kTuple);  // cancelled by disconnect()
    }
    co_return nullptr;
  }

  asio::awaitable<void> drive(std::shared_ptr<WsConn> c) {
    while (true) {
      Ended end = co_await read_loop(c);
      c->done = true;
      if (c->watchdog) c->watchdog->cancel();
      c->close_now();
      conn.reset();
      if (user_disconnect) {
        finish(1000, "disconnected");
        co_return;
      }
      if (!Reconnectable(end.code)) {
        finish(end.code, end.reason);
        co_return;
      }
      Log()->info("eFTL connection to {} lost ({} {}); reconnecting", url(), end.code, end.reason);
      set_state(EftlState::kReconnecting);
      std::shared_ptr<WsConn> next;
      try {
        next = co_await reconnect_loop(end);
      } catch (const std::exception& e) {
        end.reason = e.what();
      }
      if (next && user_disconnect) {  // disconnect() while the attempt was under way
        next->done = true;
        next->close_now();
        next.reset();
      }
      if (!next) {
        finish(user_disconnect ? 1000 : end.code,
               user_disconnect ? "disconnected" : "reconnect failed: " + end.reason);
        co_return;
      }
      c = next;
      const bool resumed = GetTrue(c->welcome, "_resume");
      activate(c, urls[url_index]);
      if (options.on_reconnect) {
        try {
          options.on_reconnect(resumed);
        } catch (const std::exception& e) {
          Log()->warn("eFTL on_reconnect threw: {}", e.what());
        }
      }
    }
  }

  asio::awaitable<void> connect_first() {
    if (driver_running) co_return;
    user_disconnect = false;
    set_state(EftlState::kConnecting);
    std::string last;
    for (size_t i = 0; i < urls.size(); ++i) {
      url_index = i;
      EftlUrl url = urls[i];
      std::shared_ptr<WsConn> c;
      try {
        c = co_await open(url);
      } catch (const OpenFailure& f) {
        last = f.what();
        if (f.auth) {
          attempt.reset();
          set_state(EftlState::kDisconnected);
          throw EftlError(EftlError::kAuthenticationFailed, last);
        }
        continue;
      }
      driver_running = true;
      activate(c, url);
      asio::co_spawn(ex, drive(c), asio::detached);
      co_return;
    }
    attempt.reset();
    set_state(EftlState::kDisconnected);
    throw EftlError(EftlError::kConnectFailed, "Connection failed across all provided urls: " + last);
  }

  void begin_disconnect(std::function<void()> done) {
    if (!driver_running) return done();
    waiters.push_back(std::move(done));
    if (user_disconnect) return;
    user_disconnect = true;
    set_state(EftlState::kDisconnecting);
    if (conn) {
      send(Frame(eftl::kOpDisconnect).str("reason", "disconnect").done());
      conn->close_after_writes = true;
      kick(conn);
    } else {
      if (backoff) backoff->cancel();
      if (auto a = attempt.lock()) a->close_now();
    }
  }

  std::string url() const {
    std::lock_guard lock(mutex);
    return connected_url;
  }

  asio::any_io_executor ex;
  detail::Runtime* runtime;
  std::vector<EftlUrl> urls;
  EftlOptions options;
  std::mt19937_64 rng{std::random_device{}()};
  std::unique_ptr<asio::ssl::context> tls_ctx;

  // Shared with other threads (mutex).
  mutable std::mutex mutex;
  bool shut_down = false;
  EftlState state = EftlState::kDisconnected;
  std::string client_id;
  std::string connected_url;
  std::uint64_t max_size = 0;
  std::atomic<std::uint64_t> next_sub_id{0};

  // I/O thread only.
  std::shared_ptr<WsConn> conn;     // the welcomed connection, if any
  std::weak_ptr<WsConn> attempt;    // a connection being opened
  std::unique_ptr<asio::steady_timer> backoff;
  size_t url_index = 0;
  std::string id_token;
  bool qos = true;
  int heartbeat_seconds = 240;
  int timeout_seconds = 600;
  std::int64_t next_seq = 0;
  std::map<std::int64_t, Pending> pending;
  std::map<std::string, Sub> subs;
  bool driver_running = false;
  bool user_disconnect = false;
  std::vector<std::function<void()>> waiters;
};

// ---- EftlConnection ----------------------------------------------------------------------------

EftlConnection::EftlConnection(const std::string& urls, EftlOptions options) {
  auto list = parse_eftl_urls(urls);
  if (options.auto_reconnect_attempts < 0) options.auto_reconnect_attempts = 256;
  runtime_ = std::make_unique<detail::Runtime>();
  impl_ = std::make_shared<Impl>(runtime_->executor(), runtime_.get(), std::move(list),
                                 std::move(options));
  try {
    runtime_->run(impl_->connect_first());
  } catch (...) {
    {
      std::lock_guard lock(impl_->mutex);
      impl_->shut_down = true;
    }
    runtime_.reset();
    throw;
  }
}

EftlConnection::~EftlConnection() {
  try {
    disconnect();
  } catch (const std::exception& e) {
    Log()->warn("eFTL disconnect: {}", e.what());
  }
  // Drop every I/O object while the io_context still exists, then stop its thread.
  auto done = std::make_shared<std::promise<void>>();
  auto future = done->get_future();
  if (impl_->post([impl = impl_, done] {
        impl->subs.clear();
        impl->pending.clear();
        impl->backoff.reset();
        impl->conn.reset();
        done->set_value();
      })) {
    if (!runtime_->on_runtime_thread()) future.wait();
  }
  {
    std::lock_guard lock(impl_->mutex);
    impl_->shut_down = true;
  }
  runtime_.reset();
}

EftlState EftlConnection::state() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->state;
}

std::string EftlConnection::client_id() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->client_id;
}

std::string EftlConnection::url() const { return impl_->url(); }

void EftlConnection::disconnect() {
  auto done = std::make_shared<std::promise<void>>();
  auto future = done->get_future();
  if (!impl_->post([impl = impl_, done] { impl->begin_disconnect([done] { done->set_value(); }); })) {
    return;
  }
  if (runtime_->on_runtime_thread()) {
    throw std::logic_error("eFTL client: disconnect() called on the connection's I/O thread");
  }
  future.wait();
}

void EftlConnection::reconnect() {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->shut_down) throw EftlError(EftlError::kConnectFailed, "the eFTL connection is closed");
  }
  runtime_->run(impl_->connect_first());
}

void EftlConnection::publish_async(const EftlMessage& message, EftlCallback done) {
  std::string body = message.to_json();
  impl_->check_size(body.size());
  impl_->post_or_throw([impl = impl_, body = std::move(body), done = std::move(done)]() mutable {
    impl->start_op(
        eftl::kOpMessage,
        [&body](std::int64_t seq) { return Frame(eftl::kOpMessage).num("seq", seq).raw("body", body).done(); },
        std::move(done));
  });
}

void EftlConnection::publish(const EftlMessage& message) {
  EftlResult r = impl_->blocking([&](EftlCallback cb) { publish_async(message, std::move(cb)); });
  if (!r.ok()) throw EftlError(r.code, "publish failed: " + r.reason);
}

std::string EftlConnection::subscribe_async(const EftlSubscribeOptions& options,
                                            EftlMessageHandler on_message,
                                            EftlCallback on_subscribed) {
  if (!options.matcher.empty()) {
    boost::system::error_code ec;
    json::value v = json::parse(options.matcher, ec);
    if (ec || !v.is_object()) {
      throw std::invalid_argument("an eFTL matcher must be a JSON object text: " + options.matcher);
    }
  }
  if (!options.key.empty() && options.type != EftlDurableType::kLastValue) {
    throw std::invalid_argument("key is only for last-value durables");
  }
  if (options.type && options.durable.empty()) {
    throw std::invalid_argument("a durable type needs a durable name");
  }
  const std::string id = std::to_string(++impl_->next_sub_id);
  impl_->post_or_throw([impl = impl_, id, options, on_message = std::move(on_message),
                        on_subscribed = std::move(on_subscribed)]() mutable {
    if (!impl->driver_running) {
      return Impl::Call(on_subscribed, {EftlError::kPublishFailed, "not connected", {}});
    }
    Impl::Sub s;
    s.id = id;
    s.options = options;
    s.handler = std::move(on_message);
    s.on_subscribed = std::move(on_subscribed);
    auto it = impl->subs.insert_or_assign(id, std::move(s)).first;
    impl->send(impl->subscribe_frame(it->second));
  });
  return id;
}

std::string EftlConnection::subscribe(const EftlSubscribeOptions& options,
                                      EftlMessageHandler on_message) {
  std::string id;
  EftlResult r = impl_->blocking(
      [&](EftlCallback cb) { id = subscribe_async(options, std::move(on_message), std::move(cb)); });
  if (!r.ok()) throw EftlError(r.code, "subscribe failed: " + r.reason);
  return id;
}

void EftlConnection::acknowledge(const EftlMessage& message) {
  if (!detail::EftlAccess::client_ack(message)) {
    throw std::invalid_argument("acknowledge: the message is not from a client-ack subscription");
  }
  impl_->post_or_throw([impl = impl_, seq = message.seq()] {
    if (impl->qos) impl->send(Frame(eftl::kOpAck).num("seq", seq).done());
  });
}

void EftlConnection::acknowledge_all(const EftlMessage& message) {
  if (!detail::EftlAccess::client_ack(message)) {
    throw std::invalid_argument("acknowledge_all: the message is not from a client-ack subscription");
  }
  impl_->post_or_throw([impl = impl_, seq = message.seq(), id = message.subscription_id()] {
    if (impl->qos) impl->send(Frame(eftl::kOpAck).num("seq", seq).str("id", id).done());
  });
}

void EftlConnection::close_subscription(const std::string& id) {
  impl_->post_or_throw([impl = impl_, id] {
    if (impl->subs.erase(id) == 0) return;
    impl->send(Frame(eftl::kOpUnsubscribe).str("id", id).raw("del", "false").done());
  });
}

void EftlConnection::close_all_subscriptions() {
  impl_->post_or_throw([impl = impl_] {
    for (const auto& [id, s] : impl->subs) {
      impl->send(Frame(eftl::kOpUnsubscribe).str("id", id).raw("del", "false").done());
    }
    impl->subs.clear();
  });
}

void EftlConnection::unsubscribe(const std::string& id) {
  impl_->post_or_throw([impl = impl_, id] {
    if (impl->subs.erase(id) == 0) return;
    impl->send(Frame(eftl::kOpUnsubscribe).str("id", id).done());
  });
}

void EftlConnection::unsubscribe_all() {
  impl_->post_or_throw([impl = impl_] {
    for (const auto& [id, s] : impl->subs) impl->send(Frame(eftl::kOpUnsubscribe).str("id", id).done());
    impl->subs.clear();
  });
}

void EftlConnection::stop_subscription(const std::string& id) {
  impl_->post_or_throw([impl = impl_, id] {
    auto it = impl->subs.find(id);
    if (it == impl->subs.end() || it->second.stopped) return;
    it->second.stopped = true;
    impl->send(Frame(eftl::kOpStop).str("id", id).num("seq", it->second.last_seq).done());
  });
}

void EftlConnection::start_subscription(const std::string& id) {
  impl_->post_or_throw([impl = impl_, id] {
    auto it = impl->subs.find(id);
    if (it == impl->subs.end() || !it->second.stopped) return;
    it->second.stopped = false;
    impl->send(Frame(eftl::kOpStart).str("id", id).done());
  });
}

void EftlConnection::send_request_async(const EftlMessage& request,
                                        std::chrono::milliseconds timeout, EftlCallback on_reply) {
  if (timeout.count() <= 0) throw std::invalid_argument("send_request: the timeout must be positive");
  std::string body = request.to_json();
  impl_->check_size(body.size());
  impl_->post_or_throw([impl = impl_, body = std::move(body), timeout,
                        on_reply = std::move(on_reply)]() mutable {
    impl->start_op(
        eftl::kOpRequest,
        [&body](std::int64_t seq) { return Frame(eftl::kOpRequest).num("seq", seq).raw("body", body).done(); },
        std::move(on_reply), timeout);
  });
}

EftlMessage EftlConnection::send_request(const EftlMessage& request,
                                         std::chrono::milliseconds timeout) {
  EftlResult r = impl_->blocking(
      [&](EftlCallback cb) { send_request_async(request, timeout, std::move(cb)); });
  if (!r.ok()) throw EftlError(r.code, "request failed: " + r.reason);
  return r.message ? std::move(*r.message) : EftlMessage();
}

void EftlConnection::send_reply_async(const EftlMessage& request, const EftlMessage& reply,
                                      EftlCallback done) {
  if (!request.is_request()) throw std::invalid_argument("send_reply: not a request message");
  std::string body = reply.to_json();
  impl_->check_size(body.size() + detail::EftlAccess::reply_to(request).size());
  impl_->post_or_throw([impl = impl_, body = std::move(body),
                        to = detail::EftlAccess::reply_to(request),
                        req = detail::EftlAccess::req(request), done = std::move(done)]() mutable {
    impl->start_op(
        eftl::kOpReply,
        [&](std::int64_t seq) {
          return Frame(eftl::kOpReply).num("seq", seq).str("to", to).num("req", req).raw("body", body).done();
        },
        std::move(done));
  });
}

void EftlConnection::send_reply(const EftlMessage& request, const EftlMessage& reply) {
  EftlResult r = impl_->blocking(
      [&](EftlCallback cb) { send_reply_async(request, reply, std::move(cb)); });
  if (!r.ok()) throw EftlError(r.code, "reply failed: " + r.reason);
}

EftlKvMap EftlConnection::kv_map(std::string name) {
  if (name.empty()) throw std::invalid_argument("a key-value map needs a name");
  return EftlKvMap(impl_, std::move(name));
}

void EftlConnection::remove_kv_map(const std::string& name) {
  if (name.empty()) throw std::invalid_argument("a key-value map needs a name");
  impl_->post_or_throw([impl = impl_, name] {
    impl->send(Frame(eftl::kOpMapDestroy).str("map", name).done());
  });
}

// ---- EftlKvMap ---------------------------------------------------------------------------------

void EftlKvMap::set_async(const std::string& key, const EftlMessage& value, EftlCallback done) {
  if (key.empty()) throw std::invalid_argument("a key-value map key must not be empty");
  std::string body = value.to_json();
  impl_->check_size(body.size() + key.size() + name_.size());
  impl_->post_or_throw([impl = impl_, map = name_, key, body = std::move(body),
                        done = std::move(done)]() mutable {
    impl->start_op(
        eftl::kOpMapSet,
        [&](std::int64_t seq) {
          return Frame(eftl::kOpMapSet).str("map", map).str("key", key).raw("value", body).num("seq", seq).done();
        },
        std::move(done));
  });
}

void EftlKvMap::set(const std::string& key, const EftlMessage& value) {
  EftlResult r = impl_->blocking([&](EftlCallback cb) { set_async(key, value, std::move(cb)); });
  if (!r.ok()) throw EftlError(r.code, "map set failed: " + r.reason);
}

void EftlKvMap::get_async(const std::string& key, EftlCallback done) {
  if (key.empty()) throw std::invalid_argument("a key-value map key must not be empty");
  impl_->post_or_throw([impl = impl_, map = name_, key, done = std::move(done)]() mutable {
    impl->start_op(
        eftl::kOpMapGet,
        [&](std::int64_t seq) { return Frame(eftl::kOpMapGet).str("map", map).str("key", key).num("seq", seq).done(); },
        std::move(done));
  });
}

std::optional<EftlMessage> EftlKvMap::get(const std::string& key) {
  EftlResult r = impl_->blocking([&](EftlCallback cb) { get_async(key, std::move(cb)); });
  if (!r.ok()) throw EftlError(r.code, "map get failed: " + r.reason);
  return r.message;
}

void EftlKvMap::remove_async(const std::string& key, EftlCallback done) {
  if (key.empty()) throw std::invalid_argument("a key-value map key must not be empty");
  impl_->post_or_throw([impl = impl_, map = name_, key, done = std::move(done)]() mutable {
    impl->start_op(
        eftl::kOpMapRemove,
        [&](std::int64_t seq) {
          return Frame(eftl::kOpMapRemove).str("map", map).str("key", key).num("seq", seq).done();
        },
        std::move(done));
  });
}

void EftlKvMap::remove(const std::string& key) {
  EftlResult r = impl_->blocking([&](EftlCallback cb) { remove_async(key, std::move(cb)); });
  if (!r.ok()) throw EftlError(r.code, "map remove failed: " + r.reason);
}

}  // namespace magnetar::client
