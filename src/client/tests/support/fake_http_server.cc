#include "client/tests/support/fake_http_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

namespace magnetar::client::testsupport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
}

struct FakeHttpServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread thread;
  mutable std::mutex mutex;
  std::map<std::pair<std::string, std::string>, Handler> routes;
  std::vector<Recorded> recorded;

  Reply Dispatch(const Recorded& r) {
    Handler h;
    {
      std::lock_guard lock(mutex);
      recorded.push_back(r);
      auto it = routes.find({r.method, r.path});
      if (it != routes.end()) h = it->second;
    }
    if (!h) return Reply{404, R"({"detail":"Not Found"})"};
    return h(r);
  }

  asio::awaitable<void> Serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    while (true) {
      http::request<http::string_body> req;
      auto [ec, n] = co_await http::async_read(stream, buffer, req, kTuple);
      if (ec) co_return;
      Recorded r;
      r.method = std::string(req.method_string());
      r.target = std::string(req.target());
      const size_t q = r.target.find('?');
      r.path = r.target.substr(0, q);
      r.query = q == std::string::npos ? "" : r.target.substr(q + 1);
      r.body = req.body();
      for (const auto& f : req) {
        std::string name(f.name_string());
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers[name] = std::string(f.value());
      }
      r.at = std::chrono::steady_clock::now();
      Reply reply = Dispatch(r);
      if (reply.delay.count() > 0) {
        asio::steady_timer timer(co_await asio::this_coro::executor, reply.delay);
        co_await timer.async_wait(kTuple);
      }
      if (reply.drop) {
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream.socket().close(ignored);
        co_return;
      }
      http::response<http::string_body> res{static_cast<http::status>(reply.status), 11};
      if (!reply.content_type.empty()) res.set(http::field::content_type, reply.content_type);
      for (const auto& [k, v] : reply.headers) res.set(k, v);
      res.body() = reply.body;
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(stream, res, kTuple);
      if (wec || !req.keep_alive()) co_return;
    }
  }

  asio::awaitable<void> Accept() {
    while (true) {
      auto [ec, socket] = co_await acceptor.async_accept(kTuple);
      if (ec) co_return;
      asio::co_spawn(io, Serve(std::move(socket)), asio::detached);
    }
  }
};

FakeHttpServer::FakeHttpServer() : impl_(std::make_unique<Impl>()) {
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  port_ = impl_->acceptor.local_endpoint().port();
  asio::co_spawn(impl_->io, impl_->Accept(), asio::detached);
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

FakeHttpServer::~FakeHttpServer() {
  impl_->io.stop();
  impl_->thread.join();
}

void FakeHttpServer::route(const std::string& method, const std::string& path, Handler handler) {
  std::lock_guard lock(impl_->mutex);
  impl_->routes[{method, path}] = std::move(handler);
}

void FakeHttpServer::script(const std::string& method, const std::string& path,
                            std::vector<Reply> replies) {
  auto state = std::make_shared<std::pair<std::mutex, std::vector<Reply>>>();
  state->second = std::move(replies);
  auto next = std::make_shared<size_t>(0);
  route(method, path, [state, next](const Recorded&) {
    std::lock_guard lock(state->first);
    const size_t i = std::min(*next, state->second.size() - 1);
    ++*next;
    return state->second[i];
  });
}

std::vector<Recorded> FakeHttpServer::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->recorded;
}

std::vector<Recorded> FakeHttpServer::requests(const std::string& method,
                                               const std::string& path) const {
  std::vector<Recorded> out;
  for (auto& r : requests()) {
    if (r.method == method && r.path == path) out.push_back(std::move(r));
  }
  return out;
}

size_t FakeHttpServer::count(const std::string& method, const std::string& path) const {
  return requests(method, path).size();
}

uint16_t closed_port() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const uint16_t port = acceptor.local_endpoint().port();
  acceptor.close();
  return port;
}

}  // namespace magnetar::client::testsupport
