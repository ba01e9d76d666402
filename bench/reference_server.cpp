// reference_server: the ceiling for "one HTTP publish per request" on this machine. A bare
// Boost.Beast HTTP/1.1 server with Magnetar's threading model (one io_context per thread, each
// connection on one of them for its whole life, accepts handed out round-robin) that answers
//
//   POST /api/v1/messages  201 {"message_id":"<ms>-<n>","topic":"<topic>","timestamp":"<RFC 3339>"}
//   POST /auth/login       200 a token response with a fixed token (so a generator can log in)
//   GET  /health           200
//
// and does nothing else: no auth, no validation, no storage, no fan-out. Whatever Magnetar costs
// beyond this is the cost of being a broker. magnetar-bench reports every publish figure as a
// ratio to this server measured in the same run.
//
//   reference_server [--host 127.0.0.1] [--port 0] [--threads N]
// prints "reference listening on http://HOST:PORT" once it accepts connections.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr char kLoginBody[] =
    R"({"access_token":"reference-token","token_type":"bearer","expires_in":600,)"
    R"("refresh_token":"reference.refresh","refresh_token_secondary":null})";

// RFC 3339 UTC with microseconds, as Magnetar writes it.
void AppendTimestamp(std::string& out) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  const std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(us % 1'000'000));
  out += buf;
}

std::atomic<uint64_t> g_sequence{0};

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : stream_(std::move(socket)) {}

  void Start() { Read(); }

 private:
  void Read() {
    req_ = {};
    stream_.expires_after(std::chrono::seconds(65));
    http::async_read(stream_, buffer_, req_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec) return Close();
    res_ = {};
    res_.version(11);
    res_.keep_alive(req_.keep_alive());
    const std::string_view target = req_.target();
    if (req_.method() == http::verb::post && target == "/api/v1/messages") {
      PublishResponse();
    } else if (req_.method() == http::verb::post && target == "/auth/login") {
      res_.result(200);
      res_.set(http::field::content_type, "application/json");
      res_.body() = kLoginBody;
    } else if (target == "/health") {
      res_.result(200);
      res_.set(http::field::content_type, "application/json");
      res_.body() = R"({"status":"healthy"})";
    } else {
      res_.result(404);
      res_.set(http::field::content_type, "application/json");
      res_.body() = R"({"detail":"Not Found"})";
    }
    res_.prepare_payload();
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec || !self->res_.keep_alive()) return self->Close();
      self->Read();
    });
  }

  // The same 201 body as Magnetar: an ordered id, the topic echoed, the publish time.
  void PublishResponse() {
    const std::string_view body = req_.body();
    std::string_view topic = "unknown";
    constexpr std::string_view kKey = R"("topic":")";
    if (const size_t at = body.find(kKey); at != std::string_view::npos) {
      const size_t start = at + kKey.size();
      const size_t end = body.find('"', start);
      if (end != std::string_view::npos) topic = body.substr(start, end - start);
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    std::string& out = res_.body();
    out.reserve(128);
    out = R"({"message_id":")";
    out += std::to_string(ms);
    out += '-';
    out += std::to_string(g_sequence.fetch_add(1, std::memory_order_relaxed));
    out += R"(","topic":")";
    out += topic;
    out += R"(","timestamp":")";
    AppendTimestamp(out);
    out += R"("})";
    res_.result(201);
    res_.set(http::field::content_type, "application/json");
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
};

class Server {
 public:
  explicit Server(size_t threads) {
    for (size_t i = 0; i < threads; ++i) contexts_.push_back(std::make_unique<asio::io_context>(1));
  }

  uint16_t Listen(const std::string& host, uint16_t port) {
    acceptor_.emplace(*contexts_[0]);
    const tcp::endpoint endpoint(asio::ip::make_address(host), port);
    acceptor_->open(endpoint.protocol());
    acceptor_->set_option(asio::socket_base::reuse_address(true));
    acceptor_->bind(endpoint);
    acceptor_->listen(asio::socket_base::max_listen_connections);
    Accept();
    return acceptor_->local_endpoint().port();
  }

  void Run() {
    asio::signal_set signals(*contexts_[0], SIGINT, SIGTERM);
    signals.async_wait([this](beast::error_code, int) {
      for (auto& c : contexts_) c->stop();
    });
    std::vector<std::thread> threads;
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    for (size_t i = 1; i < contexts_.size(); ++i) {
      guards.emplace_back(contexts_[i]->get_executor());
      threads.emplace_back([c = contexts_[i].get()] { c->run(); });
    }
    contexts_[0]->run();
    for (auto& c : contexts_) c->stop();
    for (auto& t : threads) t.join();
  }

 private:
  void Accept() {
    asio::io_context& next = *contexts_[next_++ % contexts_.size()];
    acceptor_->async_accept(next, [this](beast::error_code ec, tcp::socket socket) {
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(socket))->Start();
      }
      Accept();
    });
  }

  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::optional<tcp::acceptor> acceptor_;
  size_t next_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 0;
  size_t threads = std::max(1u, std::thread::hardware_concurrency());
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--host") {
      host = argv[i + 1];
    } else if (flag == "--port") {
      port = std::atoi(argv[i + 1]);
    } else if (flag == "--threads") {
      threads = static_cast<size_t>(std::max(1, std::atoi(argv[i + 1])));
    } else {
      std::cerr << "usage: reference_server [--host H] [--port P] [--threads N]\n";
      return 1;
    }
  }
  try {
    Server server(threads);
    const uint16_t bound = server.Listen(host, static_cast<uint16_t>(port));
    std::cout << "reference listening on http://" << host << ":" << bound << std::endl;
    server.Run();
  } catch (const std::exception& e) {
    std::cerr << "reference_server: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
