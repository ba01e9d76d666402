#include "net/listener.h"

#include <boost/asio/post.hpp>

#include "common/log.h"

namespace magnetar::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Listener::Listener(IoPool& pool, AcceptFn on_accept)
    : pool_(pool), on_accept_(std::move(on_accept)), acceptor_(pool.At(0)) {}

Status Listener::Listen(const std::string& host, uint16_t port) {
  boost::system::error_code ec;
  tcp::resolver resolver(pool_.At(0));
  auto results = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
  if (ec || results.empty()) return InvalidArgument("cannot resolve listen address " + host);
  const tcp::endpoint endpoint = results.begin()->endpoint();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unavailable("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                       ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
  return Status::Ok();
}

void Listener::Start() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] { self->DoAccept(); });
}

void Listener::Stop() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ignored;
    self->acceptor_.close(ignored);
  });
}

void Listener::DoAccept() {
  acceptor_.async_accept(pool_.Next(), [self = shared_from_this()](
                                           boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !self->acceptor_.is_open()) return;
    if (ec) {
      // Out of descriptors and the like: log, keep accepting (the next try may succeed).
      Logger("net")->warn("accept failed: {}", ec.message());
    } else {
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      self->on_accept_(std::move(socket));
    }
    self->DoAccept();
  });
}

}  // namespace magnetar::net
