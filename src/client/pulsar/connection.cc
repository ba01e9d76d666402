#include "client/pulsar/connection.h"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/write.hpp>
#include <tuple>

#include "common/log.h"

namespace magnetar::client::pulsar::detail {

namespace asio = boost::asio;
using magnetar::pulsar::Frame;
using Type = proto::BaseCommand;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr int kProtocolVersion = 21;

std::shared_ptr<spdlog::logger> Log() {
  static auto log = Logger("client");
  return log;
}

std::string ServerErrorName(int code) {
  if (proto::ServerError_IsValid(code)) {
    return proto::ServerError_Name(static_cast<proto::ServerError>(code));
  }
  return "ServerError(" + std::to_string(code) + ")";
}

}  // namespace

Connection::Connection(asio::any_io_executor ex, ServiceUrl url, const ClientOptions& options,
                       std::shared_ptr<TokenSource> tokens, asio::ssl::context* tls)
    : ex_(std::move(ex)),
      url_(std::move(url)),
      options_(options),
      tokens_(std::move(tokens)),
      tls_(tls),
      backoff_(options.backoff_initial, options.backoff_max) {}

void Connection::start() {
  asio::co_spawn(ex_, run(shared_from_this()), asio::detached);
}

void Connection::stop() {
  if (state_ == State::kStopped) return;
  // Stopped first: the producers and consumers were closed before, nobody is told to reconnect.
  state_ = State::kStopped;
  teardown("client closed");
  if (sleep_timer_) sleep_timer_->cancel();
  ready_waiters_.notify();
}

void Connection::drop(const std::string& why) {
  if (state_ == State::kStopped || state_ == State::kDisconnected) return;
  Log()->warn("pulsar {}: dropping the connection: {}", url_.str(), why);
  last_failure_ = why;
  dropped_ = true;  // the read that fails next must not replace the reason
  if (socket_) {
    boost::system::error_code ignored;
    socket_->tcp.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_->tcp.close(ignored);
  }
}

asio::awaitable<std::string> Connection::token(bool refresh) {
  if (!tokens_) co_return std::string();
  if (!tokens_->fixed.empty()) co_return tokens_->fixed;
  if (!tokens_->fetch) co_return std::string();
  std::string t = co_await tokens_->fetch(refresh);
  co_return t;
}

asio::awaitable<void> Connection::run(std::shared_ptr<Connection> self) {
  while (state_ != State::kStopped) {
    bool failed = false;
    std::string why;
    try {
      std::string jwt = co_await token(false);
      asio::ip::tcp::resolver resolver(ex_);
      const std::string port = std::to_string(url_.port);
      auto [rec, endpoints] = co_await resolver.async_resolve(url_.host, port, kTuple);
      if (rec) throw std::runtime_error("resolving " + url_.host + ": " + rec.message());
      if (state_ == State::kStopped) break;
      if (url_.tls && !tls_) throw std::runtime_error("no TLS context for " + url_.str());
      auto socket = std::make_shared<Socket>(ex_, url_.tls ? tls_ : nullptr);
      // The connect timeout (TCP, then again for the TLS handshake) closes the socket, which ends
      // the operation with an error.
      auto guard = std::make_shared<asio::steady_timer>(ex_, options_.connect_timeout);
      guard->async_wait([socket](boost::system::error_code ec) {
        if (!ec) {
          boost::system::error_code ignored;
          socket->tcp.close(ignored);
        }
      });
      auto [cec, ep] = co_await asio::async_connect(socket->tcp, endpoints, kTuple);
      guard->cancel();
      if (cec) throw std::runtime_error("connecting to " + url_.str() + ": " + cec.message());
      if (state_ == State::kStopped) break;
      socket->tcp.set_option(asio::ip::tcp::no_delay(true));
      socket->tcp.set_option(asio::socket_base::keep_alive(true));
      if (socket->ssl) {
        SSL_set_tlsext_host_name(socket->ssl->native_handle(), url_.host.c_str());
        if (options_.tls.verify) {
          socket->ssl->set_verify_callback(asio::ssl::host_name_verification(url_.host));
        }
        guard->expires_after(options_.connect_timeout);
        guard->async_wait([socket](boost::system::error_code ec) {
          if (!ec) {
            boost::system::error_code ignored;
            socket->tcp.close(ignored);
          }
        });
        auto [hec] = co_await socket->ssl->async_handshake(asio::ssl::stream_base::client, kTuple);
        guard->cancel();
        if (hec) {
          throw std::runtime_error("TLS handshake with " + url_.str() + ": " + hec.message());
        }
        if (state_ == State::kStopped) break;
      }

      const uint64_t generation = ++generation_;
      socket_ = socket;
      state_ = State::kHandshaking;
      handshake_error_.reset();
      dropped_ = false;
      out_.clear();
      writing_ = false;
      proto::BaseCommand connect = magnetar::pulsar::MakeCommand(Type::CONNECT);
      auto* c = connect.mutable_connect();
      c->set_client_version(options_.client_version);
      c->set_protocol_version(kProtocolVersion);
      c->set_auth_method_name(jwt.empty() ? "none" : "token");
      if (!jwt.empty()) c->set_auth_data(jwt);
      c->mutable_feature_flags()->set_supports_auth_refresh(true);
      std::string frame;
      magnetar::pulsar::AppendCommand(frame, connect);
      write_raw(frame);

      // No CONNECTED within the connect timeout: drop and retry.
      auto handshake = std::make_shared<asio::steady_timer>(ex_, options_.connect_timeout);
      handshake->async_wait([weak = weak_from_this(), generation](boost::system::error_code ec) {
        auto conn = weak.lock();
        if (ec || !conn || conn->generation_ != generation) return;
        if (conn->state_ == State::kHandshaking) conn->drop("no CONNECTED from the broker in time");
      });
      ping_timer_ = std::make_shared<asio::steady_timer>(ex_);
      received_since_tick_ = false;
      ping_outstanding_ = false;
      asio::co_spawn(ex_, ping_loop(self, ping_timer_, generation), asio::detached);

      // (Operands named first: g++ 12 mishandles temporaries inside co_await expressions.)
      asio::awaitable<void> serving = serve(socket, generation);
      co_await std::move(serving);
      handshake->cancel();
      why = last_failure_;
    } catch (const std::exception& e) {
      failed = true;
      why = e.what();
    }
    if (state_ == State::kStopped) break;
    teardown(why);
    last_failure_ = why;
    prev_backoff_ = backoff_.next(prev_backoff_);
    Log()->warn("pulsar {}: {}{}; reconnecting in {} ms", url_.str(),
                failed ? "connection failed: " : "connection lost: ", why, prev_backoff_.count());
    sleep_timer_ = std::make_shared<asio::steady_timer>(ex_, prev_backoff_);
    auto sleeper = sleep_timer_;
    co_await sleeper->async_wait(kTuple);
  }
}

asio::awaitable<void> Connection::serve(std::shared_ptr<Socket> socket, uint64_t generation) {
  // The buffer belongs to this socket: half a frame never reaches the next connection.
  std::string buffer;
  std::array<char, 64 * 1024> chunk;
  const uint32_t max_frame = magnetar::pulsar::kDefaultMaxMessageSize + magnetar::pulsar::kFramePadding;
  size_t start = 0;
  for (;;) {
    boost::system::error_code ec;
    size_t n = 0;
    if (socket->ssl) {
      std::tie(ec, n) = co_await socket->ssl->async_read_some(asio::buffer(chunk), kTuple);
    } else {
      std::tie(ec, n) = co_await socket->tcp.async_read_some(asio::buffer(chunk), kTuple);
    }
    if (generation != generation_) co_return;
    if (ec) {
      if (!dropped_) last_failure_ = ec == asio::error::eof ? "closed by the broker" : ec.message();
      co_return;
    }
    received_since_tick_ = true;
    buffer.append(chunk.data(), n);
    for (;;) {
      Frame frame;
      std::string_view view(buffer);
      view.remove_prefix(start);
      auto parsed = magnetar::pulsar::ParseFrame(view, max_frame, &frame);
      if (parsed.status == magnetar::pulsar::ParseStatus::kNeedMore) break;
      if (parsed.status == magnetar::pulsar::ParseStatus::kError) {
        drop("bad frame from the broker: " + parsed.error);
        co_return;
      }
      start += parsed.consumed;
      dispatch(frame);
      if (generation != generation_ || state_ == State::kStopped) co_return;
    }
    if (start > 0) {
      buffer.erase(0, start);
      start = 0;
    }
  }
}

void Connection::write_raw(std::string_view bytes) {
  out_.append(bytes);
  if (!writing_ && socket_) {
    writing_ = true;
    asio::co_spawn(ex_, write_loop(shared_from_this(), socket_, generation_), asio::detached);
  }
}

asio::awaitable<void> Connection::write_loop(std::shared_ptr<Connection> self,
                                             std::shared_ptr<Socket> socket, uint64_t generation) {
  (void)self;  // keeps the connection alive while the write is in flight
  // Everything queued while a write is in flight leaves in the next single write.
  std::string buffer;
  while (generation == generation_ && !out_.empty()) {
    buffer.clear();
    buffer.swap(out_);
    boost::system::error_code ec;
    size_t n = 0;
    if (socket->ssl) {
      std::tie(ec, n) = co_await asio::async_write(*socket->ssl, asio::buffer(buffer), kTuple);
    } else {
      std::tie(ec, n) = co_await asio::async_write(socket->tcp, asio::buffer(buffer), kTuple);
    }
    (void)n;
    if (generation != generation_) co_return;  // a new socket has its own loop
    if (ec) {
      drop("write failed: " + ec.message());
      break;
    }
  }
  if (generation == generation_) writing_ = false;
}

asio::awaitable<void> Connection::ping_loop(std::shared_ptr<Connection> self,
                                            std::shared_ptr<asio::steady_timer> timer,
                                            uint64_t generation) {
  (void)self;
  while (generation == generation_ && state_ != State::kStopped) {
    timer->expires_after(options_.ping_interval);
    co_await timer->async_wait(kTuple);
    if (generation != generation_ || state_ != State::kConnected) continue;
    if (received_since_tick_) {
      received_since_tick_ = false;
      ping_outstanding_ = false;
      continue;
    }
    if (ping_outstanding_) {
      drop("no answer to PING for two intervals");
      co_return;
    }
    ping_outstanding_ = true;
    send(magnetar::pulsar::MakeCommand(Type::PING));
  }
}

asio::awaitable<void> Connection::answer_challenge(std::shared_ptr<Connection> self,
                                                   uint64_t generation) {
  (void)self;
  std::string jwt;
  try {
    jwt = co_await token(true);
  } catch (const std::exception& e) {
    Log()->error("pulsar {}: no token for the broker's auth challenge: {}", url_.str(), e.what());
    co_return;
  }
  if (generation != generation_) co_return;
  proto::BaseCommand reply = magnetar::pulsar::MakeCommand(Type::AUTH_RESPONSE);
  auto* r = reply.mutable_authresponse();
  r->set_client_version(options_.client_version);
  r->set_protocol_version(kProtocolVersion);
  r->mutable_response()->set_auth_method_name("token");
  r->mutable_response()->set_auth_data(jwt);
  std::string frame;
  magnetar::pulsar::AppendCommand(frame, reply);
  write_raw(frame);
}

asio::awaitable<void> Connection::wait_connected(Clock::time_point deadline) {
  asio::steady_timer timer(ex_);
  while (state_ != State::kConnected) {
    if (state_ == State::kStopped) throw PulsarError(ErrorCode::kClosed, "the client is closed");
    if (handshake_error_) throw *handshake_error_;
    if (Clock::now() >= deadline) {
      throw PulsarError(ErrorCode::kTimeout,
                        "no connection to " + url_.str() + " in time (" + last_failure_ + ")");
    }
    timer.expires_at(deadline);
    Waiters::Guard guard(ready_waiters_, &timer);
    co_await timer.async_wait(kTuple);
  }
}

asio::awaitable<proto::BaseCommand> Connection::request(
    uint64_t request_id, proto::BaseCommand command, Millis timeout,
    std::function<void(const proto::BaseCommand&)> on_reply) {
  if (state_ != State::kConnected) {
    throw PulsarError(ErrorCode::kDisconnected, "not connected to " + url_.str());
  }
  auto pending = std::make_shared<Pending>(ex_);
  pending->timer.expires_after(timeout);
  pending->on_reply = std::move(on_reply);
  pending_[request_id] = pending;
  send(command);
  co_await pending->timer.async_wait(kTuple);
  if (!pending->done) {
    pending_.erase(request_id);
    throw PulsarError(ErrorCode::kTimeout,
                      std::string(magnetar::pulsar::CommandName(command.type())) +
                          " got no answer from " + url_.str() + " within " +
                          std::to_string(timeout.count()) + " ms");
  }
  if (pending->error) throw *pending->error;
  co_return std::move(*pending->reply);
}

bool Connection::send(const proto::BaseCommand& command) {
  if (state_ != State::kConnected) return false;
  std::string frame;
  if (!magnetar::pulsar::AppendCommand(frame, command)) {
    Log()->error("pulsar: {} is missing a required field (not sent)",
                 magnetar::pulsar::CommandName(command.type()));
    return false;
  }
  write_raw(frame);
  return true;
}

bool Connection::write_frame(std::string_view frame) {
  if (state_ != State::kConnected) return false;
  write_raw(frame);
  return true;
}

void Connection::register_producer(uint64_t id, std::weak_ptr<ProducerSink> sink) {
  producers_[id] = std::move(sink);
}

void Connection::register_consumer(uint64_t id, std::weak_ptr<ConsumerSink> sink) {
  consumers_[id] = std::move(sink);
}

void Connection::complete(uint64_t request_id, proto::BaseCommand&& reply) {
  auto it = pending_.find(request_id);
  if (it == pending_.end()) {
    Log()->debug("pulsar {}: {} for request {} that nobody waits for", url_.str(),
                 magnetar::pulsar::CommandName(reply.type()), request_id);
    return;
  }
  auto p = it->second;
  pending_.erase(it);
  if (p->on_reply) p->on_reply(reply);
  p->done = true;
  p->reply = std::move(reply);
  p->timer.cancel();
}

void Connection::fail(uint64_t request_id, PulsarError error) {
  auto it = pending_.find(request_id);
  if (it == pending_.end()) return;
  auto p = it->second;
  pending_.erase(it);
  p->done = true;
  p->error = std::move(error);
  p->timer.cancel();
}

void Connection::dispatch(Frame& frame) {
  proto::BaseCommand& cmd = frame.command;
  switch (cmd.type()) {
    case Type::CONNECTED:
      state_ = State::kConnected;
      prev_backoff_ = Millis(0);
      last_failure_.clear();
      max_message_size_.reset();
      if (cmd.connected().has_max_message_size() && cmd.connected().max_message_size() > 0) {
        max_message_size_ = static_cast<uint32_t>(cmd.connected().max_message_size());
      }
      Log()->debug("pulsar {}: connected to {} (protocol {})", url_.str(),
                   cmd.connected().server_version(), cmd.connected().protocol_version());
      ready_waiters_.notify();
      return;
    case Type::PING:
      send(magnetar::pulsar::MakeCommand(Type::PONG));
      return;
    case Type::PONG:
      ping_outstanding_ = false;
      return;
    case Type::AUTH_CHALLENGE:
      asio::co_spawn(ex_, answer_challenge(shared_from_this(), generation_), asio::detached);
      return;
    case Type::ERROR: {
      const auto& e = cmd.error();
      PulsarError error(ErrorCode::kServerError, ServerErrorName(e.error()) + ": " + e.message(),
                        e.error());
      if (state_ == State::kHandshaking) {
        // The handshake was refused (a bad token): waiters hear why at once.
        handshake_error_ = error;
        ready_waiters_.notify();
        drop(error.what());
        return;
      }
      fail(e.request_id(), std::move(error));
      return;
    }
    case Type::SUCCESS: {
      const uint64_t id = cmd.success().request_id();
      return complete(id, std::move(cmd));
    }
    case Type::PRODUCER_SUCCESS: {
      const uint64_t id = cmd.producer_success().request_id();
      return complete(id, std::move(cmd));
    }
    case Type::LOOKUP_RESPONSE: {
      const uint64_t id = cmd.lookuptopicresponse().request_id();
      return complete(id, std::move(cmd));
    }
    case Type::PARTITIONED_METADATA_RESPONSE: {
      const uint64_t id = cmd.partitionmetadataresponse().request_id();
      return complete(id, std::move(cmd));
    }
    case Type::ACK_RESPONSE:
      if (cmd.ackresponse().has_request_id()) {
        const uint64_t id = cmd.ackresponse().request_id();
        return complete(id, std::move(cmd));
      }
      return;
    case Type::GET_LAST_MESSAGE_ID_RESPONSE: {
      const uint64_t id = cmd.getlastmessageidresponse().request_id();
      return complete(id, std::move(cmd));
    }
    case Type::SEND_RECEIPT: {
      auto it = producers_.find(cmd.send_receipt().producer_id());
      if (it == producers_.end()) return;
      if (auto sink = it->second.lock()) sink->on_receipt(cmd.send_receipt());
      return;
    }
    case Type::SEND_ERROR: {
      auto it = producers_.find(cmd.send_error().producer_id());
      if (it == producers_.end()) return;
      if (auto sink = it->second.lock()) sink->on_send_error(cmd.send_error());
      return;
    }
    case Type::MESSAGE: {
      auto it = consumers_.find(cmd.message().consumer_id());
      if (it == consumers_.end()) {
        Log()->debug("pulsar {}: MESSAGE for unknown consumer {}", url_.str(),
                     cmd.message().consumer_id());
        return;
      }
      if (auto sink = it->second.lock()) sink->on_message(frame);
      return;
    }
    case Type::ACTIVE_CONSUMER_CHANGE: {
      auto it = consumers_.find(cmd.active_consumer_change().consumer_id());
      if (it == consumers_.end()) return;
      if (auto sink = it->second.lock()) sink->on_active_change(cmd.active_consumer_change().is_active());
      return;
    }
    case Type::CLOSE_PRODUCER: {
      auto it = producers_.find(cmd.close_producer().producer_id());
      if (it == producers_.end()) return;
      auto sink = it->second.lock();
      producers_.erase(it);
      if (sink) sink->on_closed_by_broker();
      return;
    }
    case Type::CLOSE_CONSUMER: {
      auto it = consumers_.find(cmd.close_consumer().consumer_id());
      if (it == consumers_.end()) return;
      auto sink = it->second.lock();
      consumers_.erase(it);
      if (sink) sink->on_closed_by_broker();
      return;
    }
    case Type::REACHED_END_OF_TOPIC:
      return;
    default:
      Log()->debug("pulsar {}: ignoring {}", url_.str(), magnetar::pulsar::CommandName(cmd.type()));
      return;
  }
}

void Connection::teardown(const std::string& why) {
  const bool was_up = state_ == State::kConnected || state_ == State::kHandshaking;
  ++generation_;
  if (state_ != State::kStopped) state_ = State::kDisconnected;
  if (socket_) {
    boost::system::error_code ignored;
    socket_->tcp.close(ignored);
    socket_.reset();
  }
  if (ping_timer_) ping_timer_->cancel();
  out_.clear();
  writing_ = false;
  max_message_size_.reset();
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, p] : pending) {
    p->done = true;
    p->error = PulsarError(ErrorCode::kConnectionLost, "connection to " + url_.str() + " lost: " + why);
    p->timer.cancel();
  }
  if (!was_up) return;
  auto producers = std::move(producers_);
  auto consumers = std::move(consumers_);
  producers_.clear();
  consumers_.clear();
  for (auto& [id, weak] : producers) {
    if (auto sink = weak.lock()) sink->on_connection_lost();
  }
  for (auto& [id, weak] : consumers) {
    if (auto sink = weak.lock()) sink->on_connection_lost();
  }
}

}  // namespace magnetar::client::pulsar::detail
