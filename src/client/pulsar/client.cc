// PulsarClient and the small value types; ClientImpl (connection pool, lookup); the blocking
// wrappers of Producer and Consumer.

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <cctype>
#include <charconv>
#include <future>
#include <random>

#include "client/auth.h"
#include "client/http.h"
#include "client/pulsar/internal.h"

namespace magnetar::client::pulsar {

namespace asio = boost::asio;
using detail::Clock;
using detail::proto::BaseCommand;

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kDisconnected: return "disconnected";
    case ErrorCode::kConnectionLost: return "connection_lost";
    case ErrorCode::kTimeout: return "timeout";
    case ErrorCode::kMessageTooLarge: return "message_too_large";
    case ErrorCode::kLookupFailed: return "lookup_failed";
    case ErrorCode::kTooManyRedirects: return "too_many_redirects";
    case ErrorCode::kClosed: return "closed";
    case ErrorCode::kServerError: return "server_error";
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kProtocol: return "protocol";
  }
  return "unknown";
}

ServiceUrl ServiceUrl::parse(std::string_view url) {
  ServiceUrl out;
  std::string_view rest;
  if (url.rfind("pulsar://", 0) == 0) {
    rest = url.substr(9);
  } else if (url.rfind("pulsar+ssl://", 0) == 0) {
    out.tls = true;
    out.port = 6651;
    rest = url.substr(13);
  } else {
    throw PulsarError(ErrorCode::kInvalidArgument,
                      "service URL '" + std::string(url) + "' must start with pulsar:// or pulsar+ssl://");
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  std::string_view host = rest;
  if (!rest.empty() && rest.front() == '[') {  // [v6]:port
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      throw PulsarError(ErrorCode::kInvalidArgument, "service URL '" + std::string(url) + "': bad IPv6 host");
    }
    host = rest.substr(1, close - 1);
    rest.remove_prefix(close + 1);
    if (!rest.empty() && rest.front() != ':') {
      throw PulsarError(ErrorCode::kInvalidArgument, "service URL '" + std::string(url) + "': bad port");
    }
  } else if (const size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    rest.remove_prefix(colon);
  } else {
    rest = {};
  }
  if (!rest.empty()) {  // ":port"
    const std::string_view digits = rest.substr(1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || end != digits.data() + digits.size() || port == 0 || port > 65535) {
      throw PulsarError(ErrorCode::kInvalidArgument, "service URL '" + std::string(url) + "': bad port");
    }
    out.port = static_cast<uint16_t>(port);
  }
  if (host.empty() || host.find_first_of("/ \t") != std::string_view::npos) {
    throw PulsarError(ErrorCode::kInvalidArgument, "service URL '" + std::string(url) + "': bad host");
  }
  out.host = std::string(host);
  return out;
}

std::string ServiceUrl::str() const {
  const bool v6 = host.find(':') != std::string::npos;
  return std::string(tls ? "pulsar+ssl://" : "pulsar://") + (v6 ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

Backoff::Backoff(Millis initial, Millis max)
    : initial_(std::max(initial, Millis(1))), max_(std::max(max, Millis(1))),
      state_(std::random_device{}()) {}

Millis Backoff::next(Millis prev) {
  std::mt19937_64 rng(state_);
  state_ = rng();
  auto uniform = [&](int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(state_ % static_cast<uint64_t>(hi - lo + 1));
  };
  if (prev.count() <= 0) return Millis(uniform(1, initial_.count()));
  const Millis doubled = std::min(prev * 2, max_);
  return doubled + Millis(uniform(1, 100));
}

std::string MessageId::str() const {
  std::string s = std::to_string(ledger) + "-" + std::to_string(entry);
  if (batch_index >= 0) s += ":" + std::to_string(batch_index);
  return s;
}

MessageId MessageId::earliest() { return {~uint64_t{0}, ~uint64_t{0}, -1, -1}; }
MessageId MessageId::latest() {
  return {uint64_t{0x7fffffffffffffff}, uint64_t{0x7fffffffffffffff}, -1, -1};
}

std::optional<SubscriptionType> ParseSubscriptionType(std::string_view name) {
  std::string lower;
  for (char c : name) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (lower == "exclusive") return SubscriptionType::kExclusive;
  if (lower == "shared") return SubscriptionType::kShared;
  if (lower == "failover") return SubscriptionType::kFailover;
  if (lower == "key_shared" || lower == "keyshared" || lower == "key-shared") {
    return SubscriptionType::kKeyShared;
  }
  return std::nullopt;
}

namespace detail {

namespace {

asio::awaitable<std::string> FetchOnHelper(Runtime* helper, std::shared_ptr<TokenProvider> tokens,
                                           bool refresh) {
  if (!refresh) {
    if (auto cached = tokens->cached_token()) co_return *cached;
  }
  asio::awaitable<std::string> op = client::detail::blocking_get_token(tokens, refresh);
  std::string token = co_await asio::co_spawn(helper->executor(), std::move(op), asio::use_awaitable);
  co_return token;
}

}  // namespace

bool Retryable(const PulsarError& e, bool reconnecting) {
  switch (e.code()) {
    case ErrorCode::kDisconnected:
    case ErrorCode::kConnectionLost:
    case ErrorCode::kTimeout:
      return true;
    case ErrorCode::kServerError:
      if (e.server_error() == proto::ServiceNotReady) return true;
      if (e.server_error() == proto::AuthenticationError) return false;
      return reconnecting && (e.server_error() == proto::ConsumerBusy ||
                              e.server_error() == proto::ProducerBusy ||
                              e.server_error() == proto::UnknownError);
    default:
      return false;
  }
}

ClientImpl::ClientImpl(ClientOptions options)
    : options_(std::move(options)), service_url_(ServiceUrl::parse(options_.service_url)) {
  if (service_url_.tls) {
    throw PulsarError(ErrorCode::kInvalidArgument,
                      "pulsar+ssl:// is not supported by this client yet (Magnetar's Pulsar port is "
                      "plain TCP)");
  }
  tokens_ = std::make_shared<TokenSource>();
  tokens_->fixed = options_.token;
  tokens_->provider = options_.tokens;
  if (options_.tokens) {
    helper_ = std::make_unique<Runtime>();
    tokens_->fetch = [helper = helper_.get(), tokens = options_.tokens](bool refresh) {
      return FetchOnHelper(helper, tokens, refresh);
    };
  }
  runtime_ = std::make_unique<Runtime>();
}

ClientImpl::~ClientImpl() {
  // Stop the I/O thread (destroying what still waits on it) before the members it uses go.
  runtime_.reset();
  helper_.reset();
}

std::shared_ptr<Connection> ClientImpl::connection_for(const ServiceUrl& url) {
  const std::string key = url.str();
  auto it = connections_.find(key);
  if (it != connections_.end()) return it->second;
  auto conn = std::make_shared<Connection>(executor(), url, options_, tokens_);
  connections_.emplace(key, conn);
  conn->start();
  return conn;
}

asio::awaitable<std::shared_ptr<Connection>> ClientImpl::lookup(std::string topic,
                                                                Clock::time_point deadline) {
  if (closed_) throw PulsarError(ErrorCode::kClosed, "the client is closed");
  std::shared_ptr<Connection> conn = connection_for(service_url_);
  bool authoritative = false;
  for (int hop = 0; hop <= 20; ++hop) {
    co_await conn->wait_connected(deadline);
    const uint64_t request_id = conn->next_request_id();
    BaseCommand cmd = magnetar::pulsar::MakeCommand(BaseCommand::LOOKUP);
    auto* l = cmd.mutable_lookuptopic();
    l->set_topic(topic);
    l->set_request_id(request_id);
    l->set_authoritative(authoritative);
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    // (Operands named first: g++ 12 mishandles temporaries inside co_await expressions.)
    asio::awaitable<BaseCommand> op = conn->request(request_id, std::move(cmd), std::max(left, Millis(1)), {});
    BaseCommand reply = co_await std::move(op);
    const auto& r = reply.lookuptopicresponse();
    if (!r.has_response() || r.response() == proto::CommandLookupTopicResponse::Failed) {
      throw PulsarError(ErrorCode::kLookupFailed,
                        "lookup of " + topic + " failed: " +
                            (r.has_error() ? proto::ServerError_Name(r.error()) : std::string("no answer")) +
                            (r.has_message() ? ": " + r.message() : std::string()),
                        r.has_error() ? r.error() : -1);
    }
    if (r.proxy_through_service_url()) co_return conn;
    const std::string& url = r.brokerserviceurl();
    if (url.empty()) throw PulsarError(ErrorCode::kLookupFailed, "lookup of " + topic + ": no broker URL");
    std::shared_ptr<Connection> next = connection_for(ServiceUrl::parse(url));
    if (r.response() == proto::CommandLookupTopicResponse::Connect) co_return next;
    conn = next;  // Redirect: ask that broker, with its authoritative flag
    authoritative = r.authoritative();
  }
  throw PulsarError(ErrorCode::kTooManyRedirects, "lookup of " + topic + ": more than 20 redirects");
}

asio::awaitable<uint32_t> ClientImpl::partitions(std::string topic, Clock::time_point deadline) {
  if (closed_) throw PulsarError(ErrorCode::kClosed, "the client is closed");
  std::shared_ptr<Connection> conn = connection_for(service_url_);
  co_await conn->wait_connected(deadline);
  const uint64_t request_id = conn->next_request_id();
  BaseCommand cmd = magnetar::pulsar::MakeCommand(BaseCommand::PARTITIONED_METADATA);
  cmd.mutable_partitionmetadata()->set_topic(topic);
  cmd.mutable_partitionmetadata()->set_request_id(request_id);
  const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
  asio::awaitable<BaseCommand> op = conn->request(request_id, std::move(cmd), std::max(left, Millis(1)), {});
  BaseCommand reply = co_await std::move(op);
  const auto& r = reply.partitionmetadataresponse();
  if (r.has_response() && r.response() == proto::CommandPartitionedTopicMetadataResponse::Failed) {
    throw PulsarError(ErrorCode::kLookupFailed,
                      "partition metadata of " + topic + " failed: " +
                          (r.has_error() ? proto::ServerError_Name(r.error()) : std::string("?")) +
                          (r.has_message() ? ": " + r.message() : std::string()),
                      r.has_error() ? r.error() : -1);
  }
  co_return r.partitions();
}

asio::awaitable<void> ClientImpl::close() {
  if (closed_) co_return;
  closed_ = true;
  // Producers first (their flush needs the connections), then consumers, then the sockets.
  auto producers = std::move(producers_);
  for (auto& weak : producers) {
    if (auto p = weak.lock()) co_await p->close();
  }
  auto consumers = std::move(consumers_);
  for (auto& weak : consumers) {
    if (auto c = weak.lock()) co_await c->close();
  }
  for (auto& [url, conn] : connections_) conn->stop();
  connections_.clear();
}

namespace {

asio::awaitable<uint32_t> PartitionsOp(ClientImpl* c, std::string topic) {
  asio::awaitable<uint32_t> op =
      c->partitions(std::move(topic), Clock::now() + c->options().operation_timeout);
  uint32_t n = co_await std::move(op);
  co_return n;
}

asio::awaitable<std::string> LookupOp(ClientImpl* c, std::string topic) {
  asio::awaitable<std::shared_ptr<Connection>> op =
      c->lookup(std::move(topic), Clock::now() + c->options().operation_timeout);
  std::shared_ptr<Connection> conn = co_await std::move(op);
  co_return conn->url().str();
}

asio::awaitable<void> CloseClientOp(ClientImpl* c) { co_await c->close(); }

asio::awaitable<std::shared_ptr<ProducerImpl>> CreateProducerOp(ClientImpl* c, ProducerOptions o) {
  if (c->closed()) throw PulsarError(ErrorCode::kClosed, "the client is closed");
  const auto deadline = Clock::now() + c->options().operation_timeout;
  asio::awaitable<uint32_t> count = c->partitions(o.topic, deadline);
  const uint32_t n = co_await std::move(count);
  if (n > 0) {
    throw PulsarError(ErrorCode::kInvalidArgument,
                      o.topic + " has " + std::to_string(n) +
                          " partitions; this client produces to one partition at a time "
                          "(use <topic>-partition-<i>)");
  }
  auto p = std::make_shared<ProducerImpl>(c, std::move(o));
  co_await p->start();
  c->track(p);
  co_return p;
}

asio::awaitable<std::shared_ptr<ConsumerImpl>> SubscribeOp(ClientImpl* c, ConsumerOptions o) {
  if (c->closed()) throw PulsarError(ErrorCode::kClosed, "the client is closed");
  const auto deadline = Clock::now() + c->options().operation_timeout;
  asio::awaitable<uint32_t> count = c->partitions(o.topic, deadline);
  const uint32_t n = co_await std::move(count);
  if (n > 0) {
    throw PulsarError(ErrorCode::kInvalidArgument,
                      o.topic + " has " + std::to_string(n) +
                          " partitions; this client consumes one partition at a time "
                          "(use <topic>-partition-<i>)");
  }
  auto consumer = std::make_shared<ConsumerImpl>(c, std::move(o));
  co_await consumer->start();
  c->track(consumer);
  co_return consumer;
}

}  // namespace

}  // namespace detail

// ---- PulsarClient ------------------------------------------------------------------------------

PulsarClient::PulsarClient(ClientOptions options)
    : impl_(std::make_shared<detail::ClientImpl>(std::move(options))) {}

PulsarClient::~PulsarClient() {
  try {
    close();
  } catch (...) {
  }
}

uint32_t PulsarClient::partitions(const std::string& topic) {
  return impl_->runtime().run(detail::PartitionsOp(impl_.get(), topic));
}

std::string PulsarClient::lookup(const std::string& topic) {
  return impl_->runtime().run(detail::LookupOp(impl_.get(), topic));
}

Producer PulsarClient::create_producer(ProducerOptions options) {
  if (options.topic.empty()) throw PulsarError(ErrorCode::kInvalidArgument, "a producer needs a topic");
  auto p = impl_->runtime().run(detail::CreateProducerOp(impl_.get(), std::move(options)));
  return Producer(impl_, std::move(p));
}

Consumer PulsarClient::subscribe(ConsumerOptions options) {
  if (options.topic.empty() || options.subscription.empty()) {
    throw PulsarError(ErrorCode::kInvalidArgument, "a consumer needs a topic and a subscription");
  }
  if (options.receiver_queue_size == 0) options.receiver_queue_size = 1;
  auto c = impl_->runtime().run(detail::SubscribeOp(impl_.get(), std::move(options)));
  return Consumer(impl_, std::move(c));
}

void PulsarClient::close() {
  if (!impl_ || impl_->closed()) return;
  impl_->runtime().run(detail::CloseClientOp(impl_.get()));
}

// ---- Producer ----------------------------------------------------------------------------------

namespace detail {
namespace {

asio::awaitable<void> FlushOp(std::shared_ptr<ProducerImpl> p) {
  co_await p->flush(Clock::now() + p->options().send_timeout);
}
asio::awaitable<void> CloseProducerOp(std::shared_ptr<ProducerImpl> p) { co_await p->close(); }

}  // namespace
}  // namespace detail

Producer::Producer(std::shared_ptr<detail::ClientImpl> client, std::shared_ptr<detail::ProducerImpl> impl)
    : client_(std::move(client)), impl_(std::move(impl)) {}
Producer::Producer(Producer&&) noexcept = default;
Producer& Producer::operator=(Producer&& other) noexcept {
  if (this != &other) {
    try {
      close();
    } catch (...) {
    }
    client_ = std::move(other.client_);
    impl_ = std::move(other.impl_);
  }
  return *this;
}
Producer::~Producer() {
  try {
    close();
  } catch (...) {
  }
}

const std::string& Producer::topic() const { return impl_->topic(); }
std::string Producer::producer_name() const { return impl_->name(); }

void Producer::send_async(OutgoingMessage message, SendCallback done) {
  if (!impl_) throw PulsarError(ErrorCode::kClosed, "the producer is closed");
  if (client_->runtime().on_runtime_thread()) {
    // No blocking on the I/O thread: skip the back-pressure wait there.
    impl_->send(std::move(message), std::move(done));
    return;
  }
  impl_->acquire_slot();
  // The slot is given back when the message is answered (receipt, error or timeout).
  SendCallback release = [impl = impl_.get(), done = std::move(done)](const SendResult& r) {
    impl->release_slot();
    if (done) done(r);
  };
  asio::post(client_->executor(),
             [impl = impl_, message = std::move(message), release = std::move(release)]() mutable {
               impl->send(std::move(message), std::move(release));
             });
}

MessageId Producer::send(OutgoingMessage message) {
  if (client_ && client_->runtime().on_runtime_thread()) {
    throw std::logic_error("magnetar pulsar client: blocking send on the client's I/O thread");
  }
  auto promise = std::make_shared<std::promise<SendResult>>();
  auto future = promise->get_future();
  send_async(std::move(message), [promise](const SendResult& r) { promise->set_value(r); });
  SendResult r = future.get();
  if (r.error) throw *r.error;
  return r.id;
}

void Producer::flush() {
  if (!impl_) return;
  client_->runtime().run(detail::FlushOp(impl_));
}

void Producer::close() {
  if (!impl_ || !client_ || client_->closed()) return;
  client_->runtime().run(detail::CloseProducerOp(impl_));
}

// ---- Consumer ----------------------------------------------------------------------------------

namespace detail {
namespace {

asio::awaitable<void> SeekOp(std::shared_ptr<ConsumerImpl> c, std::optional<MessageId> id,
                             uint64_t time) {
  co_await c->seek(id, time);
}
asio::awaitable<void> UnsubscribeOp(std::shared_ptr<ConsumerImpl> c) { co_await c->unsubscribe(); }
asio::awaitable<void> CloseConsumerOp(std::shared_ptr<ConsumerImpl> c) { co_await c->close(); }

}  // namespace
}  // namespace detail

Consumer::Consumer(std::shared_ptr<detail::ClientImpl> client, std::shared_ptr<detail::ConsumerImpl> impl)
    : client_(std::move(client)), impl_(std::move(impl)) {}
Consumer::Consumer(Consumer&&) noexcept = default;
Consumer& Consumer::operator=(Consumer&& other) noexcept {
  if (this != &other) {
    try {
      close();
    } catch (...) {
    }
    client_ = std::move(other.client_);
    impl_ = std::move(other.impl_);
  }
  return *this;
}
Consumer::~Consumer() {
  try {
    close();
  } catch (...) {
  }
}

const std::string& Consumer::topic() const { return impl_->options().topic; }
const std::string& Consumer::subscription() const { return impl_->options().subscription; }

std::optional<Message> Consumer::receive(Millis timeout) {
  if (!impl_) throw PulsarError(ErrorCode::kClosed, "the consumer is closed");
  if (client_->runtime().on_runtime_thread()) {
    throw std::logic_error("magnetar pulsar client: blocking receive on the client's I/O thread");
  }
  return impl_->receive(timeout);
}

Message Consumer::receive() {
  for (;;) {
    if (auto m = receive(Millis(3'600'000))) return std::move(*m);
  }
}

void Consumer::acknowledge(const MessageId& id) {
  if (!impl_) return;
  asio::post(client_->executor(), [impl = impl_, id] { impl->ack(id, false); });
}

void Consumer::acknowledge_cumulative(const MessageId& id) {
  if (!impl_) return;
  asio::post(client_->executor(), [impl = impl_, id] { impl->ack(id, true); });
}

void Consumer::negative_acknowledge(const MessageId& id) {
  if (!impl_) return;
  asio::post(client_->executor(), [impl = impl_, id] { impl->redeliver(id); });
}

void Consumer::redeliver_unacknowledged() {
  if (!impl_) return;
  asio::post(client_->executor(), [impl = impl_] { impl->redeliver(std::nullopt); });
}

void Consumer::seek(const MessageId& id) {
  if (!impl_) throw PulsarError(ErrorCode::kClosed, "the consumer is closed");
  client_->runtime().run(detail::SeekOp(impl_, id, 0));
}

void Consumer::seek_to_time(uint64_t publish_time_ms) {
  if (!impl_) throw PulsarError(ErrorCode::kClosed, "the consumer is closed");
  client_->runtime().run(detail::SeekOp(impl_, std::nullopt, publish_time_ms));
}

void Consumer::unsubscribe() {
  if (!impl_) throw PulsarError(ErrorCode::kClosed, "the consumer is closed");
  client_->runtime().run(detail::UnsubscribeOp(impl_));
}

void Consumer::close() {
  if (!impl_ || !client_) return;
  impl_->close_queue();
  if (client_->closed()) return;
  client_->runtime().run(detail::CloseConsumerOp(impl_));
}

}  // namespace magnetar::client::pulsar
