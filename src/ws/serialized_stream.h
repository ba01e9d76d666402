#pragma once

// SerializedStream: the layer between Beast's websocket::stream and the transport (plain TCP or
// TLS), so that WsConnection can write its data frames itself — many pre-encoded frames in one
// gather write — while Beast still does the handshake, the read side, and its control frames
// (the pong answering a ping, the close frame).
//
// Two writers share one socket, so every write here is complete (async_write_some writes all of
// the buffers it is given, never a part) and writes run one at a time, in the order they were
// started: a Beast pong waits for the data write in progress and is never interleaved with its
// bytes mid-frame, and the other way round. Reads pass straight through.
//
// Threading: like the stream it wraps, used only on its executor.

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include <cstddef>
#include <deque>
#include <utility>

namespace magnetar::ws {

template <class NextLayer>
class SerializedStream {
 public:
  using next_layer_type = NextLayer;
  using executor_type = typename NextLayer::executor_type;

  explicit SerializedStream(NextLayer next) : next_(std::move(next)) {}
  // Beast moves the stream into websocket::stream before any I/O: the waiters (empty then) move
  // with it.
  SerializedStream(SerializedStream&&) = default;
  SerializedStream& operator=(SerializedStream&&) = default;

  executor_type get_executor() noexcept { return next_.get_executor(); }
  NextLayer& next_layer() noexcept { return next_; }
  const NextLayer& next_layer() const noexcept { return next_; }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return next_.async_read_some(buffers, std::forward<Token>(token));
  }

  // Writes all of `buffers` (they must stay valid until the handler runs), after every write
  // started before it. The handler gets the total size on success.
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::beast::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (!busy_) {
            busy_ = true;
            return StartWrite(b, std::move(handler));
          }
          waiting_.emplace_back([this, b, h = std::move(handler)]() mutable {
            StartWrite(b, std::move(h));
          });
        },
        token, buffers);
  }

  // Writes waiting behind the one in progress.
  size_t waiting_writes() const { return waiting_.size(); }

 private:
  template <class ConstBuffers, class Handler>
  void StartWrite(const ConstBuffers& buffers, Handler&& handler) {
    boost::asio::async_write(
        next_, buffers,
        [this, h = std::forward<Handler>(handler)](boost::beast::error_code ec,
                                                   std::size_t n) mutable {
          Release();
          std::move(h)(ec, n);
        });
  }

  // The write in progress is over: the next waiting one starts (after an error too: it fails at
  // once on the broken transport and completes, so no waiter is left holding its handler).
  void Release() {
    if (waiting_.empty()) {
      busy_ = false;
      return;
    }
    auto next = std::move(waiting_.front());
    waiting_.pop_front();
    std::move(next)();
  }

  NextLayer next_;
  bool busy_ = false;
  std::deque<boost::asio::any_completion_handler<void()>> waiting_;
};

// Beast's websocket close handshake ends by tearing the transport down (for TLS: close_notify,
// then TCP); it finds these by argument-dependent lookup and they forward to the transport's own.
template <class NextLayer>
void teardown(boost::beast::role_type role, SerializedStream<NextLayer>& stream,
              boost::beast::error_code& ec) {
  using boost::beast::websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}

template <class NextLayer, class TeardownHandler>
void async_teardown(boost::beast::role_type role, SerializedStream<NextLayer>& stream,
                    TeardownHandler&& handler) {
  using boost::beast::websocket::async_teardown;
  async_teardown(role, stream.next_layer(), std::forward<TeardownHandler>(handler));
}

}  // namespace magnetar::ws
