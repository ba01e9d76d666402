#include "ws/ws_connection.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <array>
#include <deque>
#include <memory>
#include <variant>
#include <vector>

#include "common/log.h"
#include "net/stream_types.h"
#include "ws/frame_header.h"
#include "ws/serialized_stream.h"

namespace magnetar::ws {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;

namespace {

// One gather write: at most this many frames (two buffers each, header and payload: Asio passes
// up to 64 buffers to one writev) and about this many bytes, so one write stays short and a
// connection with a long queue does not hold the thread for long.
constexpr size_t kMaxFramesPerWrite = 32;
constexpr size_t kMaxBytesPerWrite = 256 * 1024;

// The frames of the write in progress, their encoded headers and the buffer list pointing at both.
// A connection holds one only while it is writing and gives it back when its queue drains, so an
// idle connection (there may be tens of thousands) does not carry it.
struct WriteBatch {
  std::array<WsConnection::Frame, kMaxFramesPerWrite> frames;
  std::array<FrameHeader, kMaxFramesPerWrite> headers;
  std::array<asio::const_buffer, 2 * kMaxFramesPerWrite> buffers;
  size_t count = 0;  // frames in use
  size_t bytes = 0;  // their payload bytes
};

// Batches given back, for the next connection of this thread that starts writing. Measured: in a
// fan-out each of 1,000 connections takes a batch and gives it back once per message; with plain
// new/delete, glibc returned the freed top of the heap to the kernel and page-faulted it back in
// on every round (12% of the server's time).
class WriteBatchPool {
 public:
  static std::unique_ptr<WriteBatch> Take() {
    auto& free = Free();
    if (free.empty()) return std::make_unique<WriteBatch>();
    auto batch = std::move(free.back());
    free.pop_back();
    return batch;
  }
  static void Give(std::unique_ptr<WriteBatch> batch) {
    if (!batch) return;
    auto& free = Free();
    if (free.size() < kMaxKept) free.push_back(std::move(batch));
  }

 private:
  static constexpr size_t kMaxKept = 4096;  // about 8 MiB per I/O thread at most
  static std::vector<std::unique_ptr<WriteBatch>>& Free() {
    thread_local std::vector<std::unique_ptr<WriteBatch>> free;
    return free;
  }
};

// A buffer sequence over part of WriteBatch::buffers (Asio copies the sequence it is given into
// the operation: a view costs nothing to copy, a std::vector would allocate).
struct BufferRange {
  using value_type = asio::const_buffer;
  using const_iterator = const asio::const_buffer*;
  const asio::const_buffer* first;
  const asio::const_buffer* last;
  const_iterator begin() const { return first; }
  const_iterator end() const { return last; }
};

// The connection over one transport (net::PlainStream or net::TlsStream). Over TLS, Beast's
// close handshake ends with the TLS teardown (close_notify); the close deadline bounds both.
//
// Data frames do not go through Beast's write path: Write() encodes each queued frame's header
// (server frames are unmasked, so the payload bytes are the shared Frame itself) and writes the
// headers and payloads of up to kMaxFramesPerWrite queued frames in one gather write on the
// SerializedStream below Beast, which also carries Beast's own writes (handshake response, pong,
// close) one at a time. permessage-deflate is never enabled (Beast's default), so a frame's
// payload is the message as given.
template <class Stream>
class WsConnectionImpl final : public WsConnection {
 public:
  WsConnectionImpl(Stream stream, net::ConnectionTracker& tracker, WsOptions options)
      : ws_(std::move(stream)),
        tracker_(tracker),
        options_(options),
        close_deadline_(ws_.get_executor()) {}
  ~WsConnectionImpl() override { tracker_.Remove(tracker_id_); }

  void Accept(http::Request request, std::string subprotocol,
              std::shared_ptr<WsHandler> handler) override;
  void Send(Frame frame) override;
  void Close(uint16_t code, std::string reason) override;
  void Shutdown() override;
  asio::any_io_executor executor() override { return ws_.get_executor(); }
  bool open() const override { return open_ && !closing_; }
  bool is_tls() const override { return net::kIsTls<Stream>; }
  size_t queued_bytes() const override {
    return queued_bytes_ + (batch_ ? batch_->bytes : 0);
  }

 private:
  std::shared_ptr<WsConnectionImpl> self() {
    return std::static_pointer_cast<WsConnectionImpl>(shared_from_this());
  }
  void Read();
  void OnRead(beast::error_code ec);
  void Write();
  void ReleaseWritten();
  void StartClose();
  void Finish();

  websocket::stream<SerializedStream<Stream>> ws_;
  net::ConnectionTracker& tracker_;
  WsOptions options_;
  std::shared_ptr<WsHandler> handler_;
  beast::flat_buffer read_buffer_;
  std::deque<Frame> queue_;  // waiting frames (not those being written)
  size_t queued_bytes_ = 0;  // bytes in queue_
  // The frames being written, kept alive until the write completes; null when not writing.
  std::unique_ptr<WriteBatch> batch_;
  bool writing_ = false;
  bool open_ = false;
  bool closing_ = false;
  bool close_sent_ = false;
  bool finished_ = false;
  websocket::close_reason close_reason_;
  asio::steady_timer close_deadline_;
  uint64_t tracker_id_ = 0;
  bool counted_open_ = false;  // options_.open_gauge was incremented (Finish decrements it)
};

template <class Stream>
void WsConnectionImpl<Stream>::Accept(http::Request request, std::string subprotocol,
                                      std::shared_ptr<WsHandler> handler) {
  handler_ = std::move(handler);
  tracker_id_ = tracker_.Add(weak_from_this());
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = options_.close_timeout;
  timeouts.idle_timeout = websocket::stream_base::none();
  timeouts.keep_alive_pings = false;
  ws_.set_option(timeouts);
  ws_.read_message_max(options_.max_message_bytes);
  ws_.set_option(websocket::stream_base::decorator(
      [subprotocol](websocket::response_type& res) {
        res.set(beast::http::field::server, "magnetar");
        if (!subprotocol.empty()) res.set(beast::http::field::sec_websocket_protocol, subprotocol);
      }));
  auto req = std::make_shared<http::Request>(std::move(request));
  ws_.async_accept(*req, [self = self(), req](beast::error_code ec) {
    if (ec) return self->Finish();
    self->open_ = true;
    if (self->options_.open_gauge) {
      self->options_.open_gauge->Inc();
      self->counted_open_ = true;
    }
    self->handler_->OnOpen(*self);
    if (!self->finished_) self->Read();
  });
}

template <class Stream>
void WsConnectionImpl<Stream>::Read() {
  ws_.async_read(read_buffer_, [self = self()](beast::error_code ec, size_t) {
    self->OnRead(ec);
  });
}

template <class Stream>
void WsConnectionImpl<Stream>::OnRead(beast::error_code ec) {
  if (ec) {
    // Includes message_too_big: Beast has already failed the connection with close code 1009.
    return Finish();
  }
  // A failed write finished the connection (and released the handler) while this read was
  // completing: Beast completes reads from frames it already buffered even after the socket is
  // closed (a client that pipelines frames and then drops the connection).
  if (finished_) return;
  const std::string_view data(static_cast<const char*>(read_buffer_.data().data()),
                              read_buffer_.size());
  if (!closing_) {
    if (ws_.got_text()) {
      handler_->OnText(*this, data);
    } else {
      handler_->OnBinary(*this, data);
    }
  }
  read_buffer_.consume(read_buffer_.size());
  if (!finished_) Read();
}

template <class Stream>
void WsConnectionImpl<Stream>::Send(Frame frame) {
  if (!open_ || closing_) return;
  if (queue_.size() + 1 > options_.max_queue_frames ||
      queued_bytes_ + frame->size() > options_.max_queue_bytes) {
    Logger("ws")->warn("closing a WebSocket whose client does not read: send queue full "
                       "({} frames, {} bytes)", queue_.size(), queued_bytes_);
    // Drop what has not started: the client cannot take it, and memory must stay bounded.
    if (options_.dropped_frames) options_.dropped_frames->Inc(queue_.size() + 1);
    queue_.clear();
    queued_bytes_ = 0;
    return Close(1008, "Send queue overflow: client too slow");
  }
  queued_bytes_ += frame->size();
  queue_.push_back(std::move(frame));
  if (!writing_) Write();
}

template <class Stream>
void WsConnectionImpl<Stream>::Write() {
  ReleaseWritten();
  if (queue_.empty() || finished_) {
    WriteBatchPool::Give(std::move(batch_));
    writing_ = false;
    if (closing_ && !finished_) StartClose();
    return;
  }
  if (!ws_.is_open()) {
    // Beast is answering the peer's close or failing the connection: no data frame may follow
    // its close frame, and the read loop is about to finish the connection.
    WriteBatchPool::Give(std::move(batch_));
    writing_ = false;
    queue_.clear();
    queued_bytes_ = 0;
    return;
  }
  writing_ = true;
  // The frames being written live in batch_ until the write completes, whatever happens to the
  // queue meanwhile (overflow or Finish clear it): the transport reads from their bytes.
  if (!batch_) batch_ = WriteBatchPool::Take();
  WriteBatch& b = *batch_;
  while (!queue_.empty() && b.count < kMaxFramesPerWrite &&
         (b.count == 0 || b.bytes + queue_.front()->size() <= kMaxBytesPerWrite)) {
    Frame& frame = queue_.front();
    const size_t i = b.count++;
    b.headers[i] = EncodeFrameHeader(Opcode::kText, frame->size());
    b.buffers[2 * i] = asio::const_buffer(b.headers[i].data(), b.headers[i].size);
    b.buffers[2 * i + 1] = asio::buffer(*frame);
    b.bytes += frame->size();
    queued_bytes_ -= frame->size();
    b.frames[i] = std::move(frame);
    queue_.pop_front();
  }
  ws_.next_layer().async_write_some(
      BufferRange{b.buffers.data(), b.buffers.data() + 2 * b.count},
      [self = self()](beast::error_code ec, size_t) {
        if (ec) {
          self->ReleaseWritten();
          WriteBatchPool::Give(std::move(self->batch_));
          self->writing_ = false;
          return self->Finish();
        }
        self->Write();
      });
}

// The write of batch_ is over: its frames are released (the batch itself is kept for the next).
template <class Stream>
void WsConnectionImpl<Stream>::ReleaseWritten() {
  if (!batch_) return;
  for (size_t i = 0; i < batch_->count; ++i) batch_->frames[i].reset();
  batch_->count = 0;
  batch_->bytes = 0;
}

template <class Stream>
void WsConnectionImpl<Stream>::Close(uint16_t code, std::string reason) {
  if (closing_ || finished_) return;
  closing_ = true;
  close_reason_.code = code;
  close_reason_.reason = reason;
  // Whatever happens, the socket is gone after the deadline (a peer that never reads cannot
  // complete a close handshake, nor a TLS close_notify exchange).
  close_deadline_.expires_after(options_.close_timeout);
  close_deadline_.async_wait([self = self()](beast::error_code ec) {
    if (ec) return;
    beast::get_lowest_layer(self->ws_).close();
  });
  if (!open_) return;
  if (!writing_) StartClose();
}

template <class Stream>
void WsConnectionImpl<Stream>::StartClose() {
  if (close_sent_ || finished_) return;
  close_sent_ = true;
  ws_.async_close(close_reason_, [self = self()](beast::error_code ec) {
    // On success the read loop sees the peer's close and finishes; the deadline covers a peer
    // that never answers.
    if (ec) self->Finish();
  });
}

template <class Stream>
void WsConnectionImpl<Stream>::Shutdown() {
  asio::post(ws_.get_executor(), [self = self()] {
    if (self->finished_) return;
    if (self->handler_ && self->open_) {
      self->handler_->OnShutdown(*self);
    } else {
      self->Close(1001, "Server shutting down");
    }
  });
}

template <class Stream>
void WsConnectionImpl<Stream>::Finish() {
  if (finished_) return;
  finished_ = true;
  open_ = false;
  if (counted_open_) {
    counted_open_ = false;
    options_.open_gauge->Dec();
  }
  close_deadline_.cancel();
  queue_.clear();
  queued_bytes_ = 0;
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(ws_).close();
  if (handler_) {
    auto handler = std::move(handler_);
    handler->OnClosed(*this);
  }
}

// Writes one HTTP response and closes; over TLS with close_notify. One deadline bounds it all.
template <class Stream>
void Reject(Stream stream, http::Response response) {
  struct State {
    explicit State(Stream s) : stream(std::move(s)) {}
    Stream stream;
    beast::http::response<beast::http::string_body> res;
  };
  auto state = std::make_shared<State>(std::move(stream));
  state->res.version(11);
  state->res.result(response.status);
  if (!response.content_type.empty()) {
    state->res.set(beast::http::field::content_type, response.content_type);
  }
  for (auto& [k, v] : response.headers) state->res.insert(k, v);
  state->res.body() = std::move(response.body);
  state->res.keep_alive(false);
  state->res.prepare_payload();
  beast::get_lowest_layer(state->stream).expires_after(std::chrono::seconds(5));
  auto close = [state] {
    beast::error_code ignored;
    auto& lowest = beast::get_lowest_layer(state->stream);
    lowest.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    lowest.close();
  };
  beast::http::async_write(state->stream, state->res,
                           [state, close](beast::error_code ec, size_t) {
                             if constexpr (net::kIsTls<Stream>) {
                               if (!ec) {
                                 state->stream.async_shutdown(
                                     [close](beast::error_code) { close(); });
                                 return;
                               }
                             }
                             close();
                           });
}

}  // namespace

void WsHandler::OnShutdown(WsConnection& conn) { conn.Close(1001, "Server shutting down"); }

std::shared_ptr<WsConnection> WsConnection::Create(net::AnyStream stream,
                                                   net::ConnectionTracker& tracker,
                                                   WsOptions options) {
  return std::visit(
      [&](auto& s) -> std::shared_ptr<WsConnection> {
        using S = std::decay_t<decltype(s)>;
        return std::make_shared<WsConnectionImpl<S>>(std::move(s), tracker, options);
      },
      stream.impl().stream);
}

void RejectUpgrade(net::AnyStream stream, http::Response response) {
  std::visit([&](auto& s) { Reject(std::move(s), std::move(response)); }, stream.impl().stream);
}

}  // namespace magnetar::ws
