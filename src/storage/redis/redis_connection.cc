#include "storage/redis/redis_connection.h"

#include <hiredis/hiredis.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

#include "common/log.h"

namespace magnetar::storage {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);

RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING: out.type = RedisReply::Type::kString; break;
    case REDIS_REPLY_STATUS: out.type = RedisReply::Type::kStatus; break;
    case REDIS_REPLY_ERROR: out.type = RedisReply::Type::kError; break;
    case REDIS_REPLY_INTEGER: out.type = RedisReply::Type::kInteger; break;
    case REDIS_REPLY_ARRAY: out.type = RedisReply::Type::kArray; break;
    default: out.type = RedisReply::Type::kNil; break;
  }
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
      r->type == REDIS_REPLY_ERROR) {
    out.str.assign(r->str, r->len);
  }
  out.integer = r->integer;
  if (r->type == REDIS_REPLY_ARRAY) {
    out.elements.reserve(r->elements);
    for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
  }
  return out;
}

}  // namespace

struct RedisConnection::Impl {
  using TlsStream = asio::ssl::stream<asio::ip::tcp::socket&>;

  redisReader* reader = nullptr;
  // Shared with the handlers of its pending operations, which may complete (aborted) after the
  // connection has moved on to a new stream.
  std::shared_ptr<TlsStream> tls;
  ~Impl() { Reset(); }
  void Reset() {
    if (reader) redisReaderFree(reader);
    reader = nullptr;
  }
};

RedisConnection::RedisConnection(asio::io_context& io, RedisEndpoint endpoint, std::string name,
                                 std::vector<RedisArgs> prelude, Hooks hooks,
                                 std::shared_ptr<asio::ssl::context> tls)
    : io_(io),
      endpoint_(std::move(endpoint)),
      name_(std::move(name)),
      prelude_(std::move(prelude)),
      hooks_(std::move(hooks)),
      tls_context_(std::move(tls)),
      resolver_(io),
      socket_(io),
      retry_timer_(io),
      reply_timer_(io),
      setup_timer_(io),
      impl_(std::make_unique<Impl>()),
      read_buffer_(kReadChunk),
      health_(Unavailable("not connected to Redis at " + endpoint_.Describe() + " yet")) {}

RedisConnection::~RedisConnection() = default;

void RedisConnection::SetHealth(Status status) {
  std::lock_guard lock(health_mutex_);
  health_ = std::move(status);
}

Status RedisConnection::health() const {
  std::lock_guard lock(health_mutex_);
  return health_;
}

void RedisConnection::Start() {
  asio::post(io_, [self = shared_from_this()] { self->Connect(); });
}

void RedisConnection::Stop() {
  asio::post(io_, [self = shared_from_this()] {
    self->stopped_ = true;
    self->retry_timer_.cancel();
    self->Fail(self->generation_, "the Redis connection was closed");
  });
}

void RedisConnection::Connect() {
  if (stopped_) return;
  const uint64_t generation = ++generation_;
  stage_ = "connecting to " + endpoint_.host + ":" + std::to_string(endpoint_.port);
  setup_timer_.expires_after(kSetupTimeout);
  setup_timer_.async_wait([this, self = shared_from_this(), generation](error_code ec) {
    if (ec || generation != generation_ || ready_) return;
    Fail(generation, stage_ + " did not finish within " + std::to_string(kSetupTimeout.count()) +
                         " s");
  });
  resolver_.async_resolve(
      endpoint_.host, std::to_string(endpoint_.port),
      [this, self = shared_from_this(), generation](error_code ec,
                                                    asio::ip::tcp::resolver::results_type results) {
        if (generation != generation_) return;
        if (ec) return Fail(generation, "cannot resolve " + endpoint_.host + ": " + ec.message());
        asio::async_connect(socket_, results,
                            [this, self, generation](error_code ec, const asio::ip::tcp::endpoint&) {
                              if (generation != generation_) return;
                              if (ec) {
                                return Fail(generation, "cannot connect to " + endpoint_.host +
                                                            ":" + std::to_string(endpoint_.port) +
                                                            ": " + ec.message());
                              }
                              OnConnected(generation);
                            });
      });
}

void RedisConnection::OnConnected(uint64_t generation) {
  error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  socket_.set_option(asio::socket_base::keep_alive(true), ignored);
  if (!tls_context_) return StartSession(generation);
  auto tls = std::make_shared<Impl::TlsStream>(socket_, *tls_context_);
  impl_->tls = tls;
  if (!SSL_set_tlsext_host_name(tls->native_handle(), endpoint_.host.c_str())) {
    return Fail(generation, "cannot set the TLS server name " + endpoint_.host);
  }
  tls->set_verify_mode(asio::ssl::verify_peer);
  tls->set_verify_callback(asio::ssl::host_name_verification(endpoint_.host));
  stage_ = "the TLS handshake with " + endpoint_.host + ":" + std::to_string(endpoint_.port);
  tls->async_handshake(asio::ssl::stream_base::client,
                       [this, self = shared_from_this(), tls, generation](error_code ec) {
                         if (generation != generation_) return;
                         if (ec) {
                           return Fail(generation, "TLS handshake with " + endpoint_.host + ":" +
                                                       std::to_string(endpoint_.port) +
                                                       " failed: " + ec.message());
                         }
                         StartSession(generation);
                       });
}

void RedisConnection::StartSession(uint64_t generation) {
  stage_ = "the set-up (AUTH, SELECT, SCRIPT LOAD) on " + endpoint_.host + ":" +
           std::to_string(endpoint_.port);
  impl_->Reset();
  impl_->reader = redisReaderCreate();
  Read(generation);
  // The prelude: credentials, database, then the owner's commands. An error reply to any of them
  // fails the connection with that error (e.g. WRONGPASS), which health() then reports.
  std::vector<RedisArgs> prelude;
  if (!endpoint_.password.empty()) {
    if (endpoint_.user.empty()) {
      prelude.push_back({"AUTH", endpoint_.password});
    } else {
      prelude.push_back({"AUTH", endpoint_.user, endpoint_.password});
    }
  }
  if (endpoint_.db != 0) prelude.push_back({"SELECT", std::to_string(endpoint_.db)});
  prelude.insert(prelude.end(), prelude_.begin(), prelude_.end());
  prelude.push_back({"PING"});
  prelude_left_ = prelude.size();
  for (size_t i = 0; i < prelude.size(); ++i) {
    const bool secret = prelude[i].front() == "AUTH";
    Enqueue(prelude[i], [this, generation, secret](Result<RedisReply> reply) {
      if (generation != generation_ || !reply.ok()) return;
      if (reply->is_error()) {
        // An AUTH error names no secret (Redis answers WRONGPASS/NOAUTH), but be explicit.
        return Fail(generation, std::string("Redis refused the connection's set-up") +
                                    (secret ? " (AUTH)" : "") + ": " + reply->str);
      }
      if (--prelude_left_ == 0) {
        ready_ = true;
        setup_timer_.cancel();
        backoff_ = std::chrono::milliseconds(100);
        SetHealth(Status::Ok());
        Logger("storage")->info("redis {}: connected to {}", name_, endpoint_.Describe());
        if (hooks_.on_ready) hooks_.on_ready();
      }
    });
  }
}

void RedisConnection::Send(RedisArgs args, ReplyCallback done) {
  asio::post(io_, [self = shared_from_this(), args = std::move(args),
                   done = std::move(done)]() mutable {
    if (!self->ready_) {
      if (done) done(self->health().ok() ? Unavailable("Redis connection not ready") : self->health());
      return;
    }
    self->Enqueue(args, std::move(done));
  });
}

void RedisConnection::Enqueue(const RedisArgs& args, ReplyCallback done) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  char* command = nullptr;
  const int n = redisFormatCommandArgv(&command, static_cast<int>(argv.size()), argv.data(),
                                       lengths.data());
  if (n < 0 || command == nullptr) {
    if (done) done(Internal("could not encode a Redis command"));
    return;
  }
  out_.append(command, static_cast<size_t>(n));
  redisFreeCommand(command);
  // In pub/sub mode replies after the prelude are pushes, not answers to a queued callback.
  if (!(hooks_.on_push && ready_)) {
    waiting_.push_back({std::move(done), std::chrono::steady_clock::now()});
    if (!reply_timer_armed_) ArmReplyTimer(generation_);
  }
  Write(generation_);
}

void RedisConnection::ArmReplyTimer(uint64_t generation) {
  if (waiting_.empty()) {
    reply_timer_armed_ = false;
    return;
  }
  reply_timer_armed_ = true;
  reply_timer_.expires_at(waiting_.front().sent + kReplyTimeout);
  reply_timer_.async_wait([this, self = shared_from_this(), generation](error_code ec) {
    if (ec || generation != generation_) return;  // Fail() re-arms for the next connection
    if (!waiting_.empty() &&
        std::chrono::steady_clock::now() - waiting_.front().sent >= kReplyTimeout) {
      return Fail(generation, "Redis did not answer for " +
                                  std::to_string(kReplyTimeout.count()) + " s");
    }
    ArmReplyTimer(generation);
  });
}

void RedisConnection::Write(uint64_t generation) {
  if (write_in_flight_ || out_.empty()) return;
  writing_.swap(out_);
  out_.clear();
  write_in_flight_ = true;
  auto done = [this, self = shared_from_this(), tls = impl_->tls, generation](error_code ec,
                                                                             size_t) {
    if (generation != generation_) return;
    write_in_flight_ = false;
    writing_.clear();
    if (ec) return Fail(generation, "writing to Redis failed: " + ec.message());
    Write(generation);
  };
  if (impl_->tls) {
    asio::async_write(*impl_->tls, asio::buffer(writing_), std::move(done));
  } else {
    asio::async_write(socket_, asio::buffer(writing_), std::move(done));
  }
}

void RedisConnection::Read(uint64_t generation) {
  auto on_read = [this, self = shared_from_this(), tls = impl_->tls, generation](error_code ec,
                                                                                size_t n) {
        if (generation != generation_) return;
        if (ec) {
          return Fail(generation, ec == asio::error::eof
                                      ? "Redis closed the connection"
                                      : "reading from Redis failed: " + ec.message());
        }
        if (redisReaderFeed(impl_->reader, read_buffer_.data(), n) != REDIS_OK) {
          return Fail(generation, "bad reply from Redis");
        }
        for (;;) {
          void* raw = nullptr;
          if (redisReaderGetReply(impl_->reader, &raw) != REDIS_OK) {
            return Fail(generation, std::string("bad reply from Redis: ") + impl_->reader->errstr);
          }
          if (raw == nullptr) break;
          RedisReply reply = Convert(static_cast<redisReply*>(raw));
          freeReplyObject(raw);
          Dispatch(std::move(reply));
          if (generation != generation_) return;  // a callback failed the connection
        }
        Read(generation);
      };
  if (impl_->tls) {
    impl_->tls->async_read_some(asio::buffer(read_buffer_), std::move(on_read));
  } else {
    socket_.async_read_some(asio::buffer(read_buffer_), std::move(on_read));
  }
}

void RedisConnection::Dispatch(RedisReply reply) {
  if (!waiting_.empty()) {
    ReplyCallback done = std::move(waiting_.front().done);
    waiting_.pop_front();
    if (done) done(std::move(reply));
    return;
  }
  if (hooks_.on_push) {
    hooks_.on_push(std::move(reply));
    return;
  }
  Logger("storage")->warn("redis {}: a reply nobody asked for; ignored", name_);
}

void RedisConnection::Fail(uint64_t generation, const std::string& reason) {
  if (generation != generation_) return;
  ++generation_;  // every handler of the failed connection now returns early
  const bool was_ready = ready_;
  ready_ = false;
  write_in_flight_ = false;
  out_.clear();
  writing_.clear();
  error_code ignored;
  socket_.close(ignored);
  resolver_.cancel();
  reply_timer_.cancel();
  setup_timer_.cancel();
  reply_timer_armed_ = false;
  impl_->Reset();
  impl_->tls.reset();  // pending operations keep theirs until they complete (aborted)
  SetHealth(Unavailable(reason));
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& w : waiting) {
    if (w.done) w.done(Unavailable(reason));
  }
  if (stopped_) return;
  if (was_ready) {
    Logger("storage")->error("redis {}: {}; reconnecting", name_, reason);
  } else {
    Logger("storage")->warn("redis {}: {}; retrying in {} ms", name_, reason, backoff_.count());
  }
  retry_timer_.expires_after(was_ready ? std::chrono::milliseconds(0) : backoff_);
  if (!was_ready) backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  retry_timer_.async_wait([this, self = shared_from_this()](error_code ec) {
    if (!ec) Connect();
  });
}

}  // namespace magnetar::storage
