#pragma once

// WsConnection: one WebSocket connection's mechanics, whatever protocol runs on it — handshake,
// read loop with a frame size limit (oversize closes with 1009), one write in flight plus a
// bounded send queue (a client that stops reading is closed with 1008 once the queue bound is
// hit, so it never grows server memory), and a close that cannot hang (a hard deadline). Frames
// queued while a write is in flight go out together in the next write (one gather write of
// pre-encoded frames; see README.md).
//
// Plain (ws://) and TLS (wss://) connections behave the same; the transport is chosen by the
// stream given to Create(). This header is the interface protocol code uses; the implementation
// (a template over the stream type, in ws_connection.cc) stays out of every other file. Over TLS
// a close also exchanges close_notify, under the same deadline.
//
// Threading: lives on the executor of the stream it was given; every method must be called on
// that executor (use Post() from elsewhere). Handler callbacks run there too.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "http/types.h"
#include "common/metrics.h"
#include "net/connection_tracker.h"
#include "net/stream.h"

namespace magnetar::ws {

struct WsOptions {
  size_t max_message_bytes = 1 << 20;
  size_t max_queue_bytes = 16 << 20;
  size_t max_queue_frames = 8192;
  std::chrono::seconds close_timeout{5};
  // The protocol's metrics (common/message_metrics.h), or null: connections open now, and frames
  // dropped when a client that does not read overflows its queue.
  metrics::Gauge* open_gauge = nullptr;
  metrics::Counter* dropped_frames = nullptr;
};

class WsConnection;

class WsHandler {
 public:
  virtual ~WsHandler() = default;
  virtual void OnOpen(WsConnection& /*conn*/) {}
  virtual void OnText(WsConnection& conn, std::string_view text) = 0;
  virtual void OnBinary(WsConnection& conn, std::string_view data) = 0;
  // Exactly once, when the connection is over (either side closed, error, shutdown).
  virtual void OnClosed(WsConnection& conn) = 0;
  // Server shutdown: the default closes with 1001 "Server shutting down".
  virtual void OnShutdown(WsConnection& conn);
};

class WsConnection : public std::enable_shared_from_this<WsConnection>, public net::Closable {
 public:
  using Frame = std::shared_ptr<const std::string>;

  // Takes over `stream` (from an HTTP upgrade). Nothing is sent until Accept().
  static std::shared_ptr<WsConnection> Create(net::AnyStream stream,
                                              net::ConnectionTracker& tracker, WsOptions options);
  ~WsConnection() override = default;

  // Completes the handshake answering with `subprotocol` (empty: none), then starts reading.
  virtual void Accept(http::Request request, std::string subprotocol,
                      std::shared_ptr<WsHandler> handler) = 0;

  // Queues a text frame. Drops it if closing; closes with 1008 if the queue bound is exceeded.
  // The string is written as the frame's payload as is, never copied: share one Frame across
  // every connection a message goes to.
  virtual void Send(Frame frame) = 0;
  void SendText(std::string text) { Send(std::make_shared<const std::string>(std::move(text))); }
  // Sends a close frame (after what is already queued) and ends the connection.
  virtual void Close(uint16_t code, std::string reason) = 0;

  virtual boost::asio::any_io_executor executor() = 0;
  template <typename F>
  void Post(F&& f) {
    boost::asio::post(executor(), std::forward<F>(f));
  }
  virtual bool open() const = 0;
  virtual bool is_tls() const = 0;
  // Bytes waiting to be written, including the frame being written.
  virtual size_t queued_bytes() const = 0;

 protected:
  WsConnection() = default;
};

// Refuses an upgrade before the handshake with a plain HTTP response, then closes (over TLS with
// close_notify). Bounded: the connection is gone within a few seconds whatever the client does.
void RejectUpgrade(net::AnyStream stream, http::Response response);

}  // namespace magnetar::ws
