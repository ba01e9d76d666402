#include "storage/redis/redis_engine.h"

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <condition_variable>
#include <future>
#include <optional>

#include "common/log.h"

namespace magnetar::storage {

namespace asio = boost::asio;

Status ReplyError(const RedisReply& reply) {
  return Unavailable("Redis refused a command: " + reply.str);
}

namespace {

// The client side of rediss://: TLS 1.2 or later, the peer verified against the given CAs (or the
// system's). Refusals name the file, never its content.
Result<std::shared_ptr<asio::ssl::context>> MakeTlsContext(const RedisOptions& options) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  if (!options.tls_ca_file.empty()) {
    if (ctx->load_verify_file(options.tls_ca_file, ec); ec) {
      return InvalidArgument("Redis TLS CA file " + options.tls_ca_file + ": " + ec.message());
    }
  } else if (ctx->set_default_verify_paths(ec); ec) {
    return InvalidArgument("the system's CA certificates: " + ec.message());
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return InvalidArgument("a Redis TLS client certificate needs both the certificate and the key");
  }
  if (!options.tls_cert_file.empty()) {
    if (ctx->use_certificate_chain_file(options.tls_cert_file, ec); ec) {
      return InvalidArgument("Redis TLS client certificate " + options.tls_cert_file + ": " +
                             ec.message());
    }
    if (ctx->use_private_key_file(options.tls_key_file, asio::ssl::context::pem, ec); ec) {
      return InvalidArgument("Redis TLS client key " + options.tls_key_file + ": " + ec.message());
    }
  }
  return ctx;
}

}  // namespace

RedisEngine::RedisEngine(const RedisOptions& options, const Clock& clock,
                         std::shared_ptr<asio::ssl::context> tls)
    : options_(options),
      clock_(clock),
      tls_(std::move(tls)),
      io_work_(io_.get_executor()),
      completions_work_(completions_.get_executor()) {
  std::vector<RedisArgs> prelude;
  for (const redis::Script* script : redis::AllScripts()) {
    prelude.push_back({"SCRIPT", "LOAD", script->text});
  }
  RedisConnection::Hooks hooks;
  hooks.on_ready = [this] {
    for (auto& fn : ready_listeners_) fn();
  };
  commands_ = std::make_shared<RedisConnection>(io_, options_.endpoint, "commands",
                                                std::move(prelude), std::move(hooks), tls_);
}

Result<std::shared_ptr<RedisEngine>> RedisEngine::Open(const RedisOptions& options,
                                                       const Clock& clock) {
  std::shared_ptr<asio::ssl::context> tls;
  if (options.endpoint.tls) {
    auto made = MakeTlsContext(options);
    if (!made.ok()) return made.status();
    tls = std::move(made).value();
  }
  std::shared_ptr<RedisEngine> engine(new RedisEngine(options, clock, std::move(tls)));
  std::promise<std::thread::id> started;
  engine->io_thread_ = std::thread([e = engine.get(), &started] {
    started.set_value(std::this_thread::get_id());
    e->io_.run();
  });
  engine->io_thread_id_ = started.get_future().get();
  engine->completion_thread_ = std::thread([e = engine.get()] { e->completions_.run(); });
  engine->commands_->Start();
  // Wait for the first connection (and its prelude) or the deadline: Redis down at start is a
  // refusal, with the reason the connection gave.
  const auto deadline = std::chrono::steady_clock::now() + options.connect_timeout;
  Status health = engine->Health();
  while (!health.ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    health = engine->Health();
  }
  if (!health.ok()) {
    engine->Stop();
    return Unavailable("cannot use Redis at " + options.endpoint.Describe() + ": " +
                       health.message());
  }
  return engine;
}

RedisEngine::~RedisEngine() { Stop(); }

void RedisEngine::Stop() {
  std::call_once(stop_once_, [this] {
    commands_->Stop();
    // After Stop's handler (FIFO on one thread): waiting commands have failed by then.
    asio::post(io_, [this] { io_.stop(); });
    if (io_thread_.joinable()) io_thread_.join();
    completions_work_.reset();
    if (completion_thread_.joinable()) completion_thread_.join();
  });
}

void RedisEngine::Complete(std::function<void()> fn) { asio::post(completions_, std::move(fn)); }

void RedisEngine::OnCommandsReady(std::function<void()> fn) {
  asio::post(io_, [this, fn = std::move(fn)]() mutable { ready_listeners_.push_back(std::move(fn)); });
}

RedisArgs RedisEngine::Eval(const redis::Script& script, std::vector<std::string> keys,
                            std::vector<std::string> args) {
  RedisArgs out;
  out.reserve(3 + keys.size() + args.size());
  out.push_back("EVALSHA");
  out.push_back(script.sha);
  out.push_back(std::to_string(keys.size()));
  for (auto& k : keys) out.push_back(std::move(k));
  for (auto& a : args) out.push_back(std::move(a));
  return out;
}

Result<RedisReply> RedisEngine::Call(RedisArgs args) {
  auto replies = CallMany({std::move(args)});
  return std::move(replies.front());
}

std::vector<Result<RedisReply>> RedisEngine::CallMany(std::vector<RedisArgs> commands) {
  const size_t n = commands.size();
  if (OnIoThread()) {
    return std::vector<Result<RedisReply>>(
        n, Result<RedisReply>(Internal("a synchronous Redis call on the Redis io thread")));
  }
  struct Pending {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<std::optional<Result<RedisReply>>> replies;
    size_t left = 0;
  };
  auto pending = std::make_shared<Pending>();
  pending->replies.resize(n);
  pending->left = n;
  for (size_t i = 0; i < n; ++i) {
    commands_->Send(std::move(commands[i]), [pending, i](Result<RedisReply> reply) {
      std::lock_guard lock(pending->mutex);
      pending->replies[i].emplace(std::move(reply));
      if (--pending->left == 0) pending->cv.notify_all();
    });
  }
  std::unique_lock lock(pending->mutex);
  const bool answered = pending->cv.wait_for(lock, options_.call_timeout,
                                             [&] { return pending->left == 0; });
  std::vector<Result<RedisReply>> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (pending->replies[i]) {
      out.push_back(std::move(*pending->replies[i]));
    } else {
      out.push_back(Unavailable(answered ? "no reply from Redis"
                                         : "Redis did not answer within " +
                                               std::to_string(options_.call_timeout.count()) +
                                               " ms"));
    }
  }
  return out;
}

}  // namespace magnetar::storage
