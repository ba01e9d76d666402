#pragma once

// WsConnection: one WebSocket connection's mechanics, whatever protocol runs on it — handshake,
// read loop with a frame size limit (oversize closes with 1009), one write in flight plus a
// bounded send queue (a client that stops reading is closed with 1008 once the queue bound is
// hit, so it never grows server memory), and a close that cannot hang (a hard deadline).
//
// Threading: lives on the executor of the socket it was given; every method must be called on
// that executor (use Post() from elsewhere). Handler callbacks run there too.

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "http/types.h"
#include "net/connection_tracker.h"

namespace magnetar::ws {

struct WsOptions {
  size_t max_message_bytes = 1 << 20;
  size_t max_queue_bytes = 16 << 20;
  size_t max_queue_frames = 8192;
  std::chrono::seconds close_timeout{5};
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

  WsConnection(boost::beast::tcp_stream stream, net::ConnectionTracker& tracker, WsOptions options);
  ~WsConnection() override;

  // Completes the handshake answering with `subprotocol` (empty: none), then starts reading.
  void Accept(http::Request request, std::string subprotocol, std::shared_ptr<WsHandler> handler);

  // Queues a text frame. Drops it if closing; closes with 1008 if the queue bound is exceeded.
  void Send(Frame frame);
  void SendText(std::string text) { Send(std::make_shared<const std::string>(std::move(text))); }
  // Sends a close frame (after what is already queued) and ends the connection.
  void Close(uint16_t code, std::string reason);

  void Shutdown() override;

  boost::asio::any_io_executor executor() { return ws_.get_executor(); }
  template <typename F>
  void Post(F&& f) {
    boost::asio::post(ws_.get_executor(), std::forward<F>(f));
  }
  bool open() const { return open_ && !closing_; }
  // Bytes waiting to be written, including the frame being written.
  size_t queued_bytes() const { return queued_bytes_ + (in_flight_ ? in_flight_->size() : 0); }

 private:
  void Read();
  void OnRead(boost::beast::error_code ec);
  void Write();
  void StartClose();
  void Finish();

  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  net::ConnectionTracker& tracker_;
  WsOptions options_;
  std::shared_ptr<WsHandler> handler_;
  boost::beast::flat_buffer read_buffer_;
  std::deque<Frame> queue_;  // waiting frames (not the one being written)
  size_t queued_bytes_ = 0;  // bytes in queue_
  Frame in_flight_;          // the frame Beast is writing; kept alive until its write completes
  bool writing_ = false;
  bool open_ = false;
  bool closing_ = false;
  bool close_sent_ = false;
  bool finished_ = false;
  boost::beast::websocket::close_reason close_reason_;
  boost::asio::steady_timer close_deadline_;
  uint64_t tracker_id_ = 0;
};

// Refuses an upgrade before the handshake with a plain HTTP response, then closes.
void RejectUpgrade(boost::beast::tcp_stream stream, http::Response response);

}  // namespace magnetar::ws
