#pragma once

// Server: the composition root. Builds the chosen storage engine, the core, auth and the relay
// front end, binds the listener, and runs until Shutdown().
//
// Shutdown order (graceful): stop accepting; answer parked long-polls; ask every connection to
// finish (HTTP: the request in flight, WebSocket: close 1001); wait for them (bounded); stop the
// I/O threads; stop the blocking pool.

#include <memory>
#include <string>

#include "common/status.h"
#include "server/config.h"

namespace magnetar::server {

class Server {
 public:
  explicit Server(ServeConfig config);
  ~Server();

  Status Start();          // binds and starts serving; prints where it listens
  void Shutdown();         // graceful; idempotent; call from the main thread
  uint16_t port() const;
  uint16_t pulsar_port() const;  // 0 when the binary protocol is off

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace magnetar::server
