#pragma once

// Listener: accepts TCP connections on one endpoint and hands each socket, already bound to an
// io_context from the pool, to `on_accept`. Runs on the pool's first context.

#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "net/io_pool.h"

namespace magnetar::net {

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  using AcceptFn = std::function<void(boost::asio::ip::tcp::socket)>;

  Listener(IoPool& pool, AcceptFn on_accept);

  // Binds and listens; port 0 picks a free port (see port()).
  Status Listen(const std::string& host, uint16_t port);
  void Start();
  void Stop();  // stops accepting; thread-safe
  uint16_t port() const { return port_; }

 private:
  void DoAccept();

  IoPool& pool_;
  AcceptFn on_accept_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
};

}  // namespace magnetar::net
