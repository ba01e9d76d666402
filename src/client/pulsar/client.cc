// PulsarClient and the small value types; ClientImpl (connection pool, lookup); the blocking
// wrappers of Producer and Consumer.

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_future.hpp>
#include <cctype>
#include <charconv>
#include <future>
#include <random>

#include "client/auth.h"
#include "client/http.h"
#include "client/pulsar/internal.h"
#include "common/log.h"

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
  // The TLS context is built up front (a lookup may also answer pulsar+ssl:// URLs); a bad CA
  // file fails here, not at the first connect.
  tls_context_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  tls_context_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                            asio::ssl::context::no_tlsv1_1);
  try {
    if (!options_.tls.ca_file.empty()) {
      tls_context_->load_verify_file(options_.tls.ca_file);
    } else if (!options_.tls.ca_path.empty()) {
      tls_context_->add_verify_path(options_.tls.ca_path);
    } else {
      tls_context_->set_default_verify_paths();
    }
  } catch (const std::exception& e) {
    throw PulsarError(ErrorCode::kInvalidArgument,
                      "TLS trust store (" +
                          (options_.tls.ca_file.empty() ? options_.tls.ca_path : options_.tls.ca_file) +
                          "): " + e.what());
  }
  if (options_.tls.verify) {
    tls_context_->set_verify_mode(asio::ssl::verify_peer);
  } else {
    tls_context_->set_verify_mode(asio::ssl::verify_none);
    if (service_url_.tls) {
      Logger("client")->warn("TLS certificate verification is OFF for {}", service_url_.str());
    }
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
  auto conn = std::make_shared<Connection>(executor(), url, options_, tokens_, tls_context_.get());
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
    // Over TLS, the broker's TLS URL (as Java's and C++'s clients); a broker without one has
    // only the plain URL, which then must itself be pulsar+ssl://.
    const std::string& url = service_url_.tls && !r.brokerserviceurltls().empty()
                                 ? r.brokerserviceurltls()
                                 : r.brokerserviceurl();
    if (url.empty()) throw PulsarError(ErrorCode::kLookupFailed, "lookup of " + topic + ": no broker URL");
    ServiceUrl target = ServiceUrl::parse(url);
    if (service_url_.tls && !target.tls) {  // never downgrade: the token would cross in clear
      throw PulsarError(ErrorCode::kLookupFailed,
                        "lookup of " + topic + ": the broker has no TLS URL (answered " + url + ")");
    }
    std::shared_ptr<Connection> next = connection_for(target);
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

std::string PartitionTopic(const std::string& topic, uint32_t i) {
  return topic + "-partition-" + std::to_string(i);
}

// One producer per partition (or the one of a plain topic), registered one after the other; any
// failure closes those already registered.
asio::awaitable<std::vector<std::shared_ptr<ProducerImpl>>> CreateProducerOp(ClientImpl* c,
                                                                             ProducerOptions o) {
  if (c->closed()) throw PulsarError(ErrorCode::kClosed, "the client is closed");
  const auto deadline = Clock::now() + c->options().operation_timeout;
  asio::awaitable<uint32_t> count = c->partitions(o.topic, deadline);
  const uint32_t n = co_await std::move(count);
  std::vector<std::shared_ptr<ProducerImpl>> out;
  std::optional<PulsarError> failed;
  for (uint32_t i = 0; i < std::max(n, 1u); ++i) {
    ProducerOptions each = o;
    if (n > 0) each.topic = PartitionTopic(o.topic, i);
    auto p = std::make_shared<ProducerImpl>(c, std::move(each));
    try {
      co_await p->start();
    } catch (const PulsarError& e) {
      failed = e;
    }
    if (failed) break;
    c->track(p);
    out.push_back(std::move(p));
  }
  if (failed) {
    for (auto& p : out) co_await p->close();
    throw *failed;
  }
  co_return out;
}

asio::awaitable<std::vector<std::shared_ptr<ConsumerImpl>>> SubscribeOp(
    ClientImpl* c, ConsumerOptions o, std::shared_ptr<Arrivals> arrivals) {
  if (c->closed()) throw PulsarError(ErrorCode::kClosed, "the client is closed");
  const auto deadline = Clock::now() + c->options().operation_timeout;
  asio::awaitable<uint32_t> count = c->partitions(o.topic, deadline);
  const uint32_t n = co_await std::move(count);
  std::vector<std::shared_ptr<ConsumerImpl>> out;
  std::optional<PulsarError> failed;
  for (uint32_t i = 0; i < std::max(n, 1u); ++i) {
    ConsumerOptions each = o;
    if (n > 0) each.topic = PartitionTopic(o.topic, i);
    auto consumer = std::make_shared<ConsumerImpl>(c, std::move(each));
    if (n > 0) consumer->set_arrivals(arrivals);
    try {
      co_await consumer->start();
    } catch (const PulsarError& e) {
      failed = e;
    }
    if (failed) break;
    c->track(consumer);
    out.push_back(std::move(consumer));
  }
  if (failed) {
    for (auto& each : out) co_await each->close();
    throw *failed;
  }
  co_return out;
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
  std::string topic = options.topic;
  auto p = impl_->runtime().run(detail::CreateProducerOp(impl_.get(), std::move(options)));
  return Producer(impl_, std::move(topic), std::move(p));
}

Consumer PulsarClient::subscribe(ConsumerOptions options) {
  if (options.topic.empty() || options.subscription.empty()) {
    throw PulsarError(ErrorCode::kInvalidArgument, "a consumer needs a topic and a subscription");
  }
  if (options.receiver_queue_size == 0) options.receiver_queue_size = 1;
  std::string topic = options.topic;
  auto arrivals = std::make_shared<detail::Arrivals>();
  auto c = impl_->runtime().run(detail::SubscribeOp(impl_.get(), std::move(options), arrivals));
  return Consumer(impl_, std::move(topic), std::move(c), std::move(arrivals));
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

Producer::Producer(std::shared_ptr<detail::ClientImpl> client, std::string topic,
                   std::vector<std::shared_ptr<detail::ProducerImpl>> impls)
    : client_(std::move(client)), topic_(std::move(topic)), impls_(std::move(impls)) {
  partitioned_ = !impls_.empty() && impls_[0]->topic() != topic_;
}
Producer::Producer(Producer&&) noexcept = default;
Producer& Producer::operator=(Producer&& other) noexcept {
  if (this != &other) {
    try {
      close();
    } catch (...) {
    }
    client_ = std::move(other.client_);
    topic_ = std::move(other.topic_);
    impls_ = std::move(other.impls_);
    next_partition_ = other.next_partition_;
    partitioned_ = other.partitioned_;
  }
  return *this;
}
Producer::~Producer() {
  try {
    close();
  } catch (...) {
  }
}

const std::string& Producer::topic() const { return topic_; }
std::string Producer::producer_name() const { return impls_.empty() ? std::string() : impls_[0]->name(); }

size_t Producer::route(const OutgoingMessage& message) {
  if (impls_.size() <= 1) return 0;
  if (message.key) {
    // Java's String.hashCode (the Java client's default JavaStringHash), over the bytes.
    int32_t h = 0;
    for (unsigned char ch : *message.key) h = static_cast<int32_t>(31u * static_cast<uint32_t>(h) + ch);
    return static_cast<size_t>(static_cast<uint32_t>(h) & 0x7fffffffu) % impls_.size();
  }
  return next_partition_++ % impls_.size();
}

void Producer::send_async(OutgoingMessage message, SendCallback done) {
  if (impls_.empty()) throw PulsarError(ErrorCode::kClosed, "the producer is closed");
  const size_t index = route(message);
  const std::shared_ptr<detail::ProducerImpl>& impl = impls_[index];
  if (partitioned_) {
    // The id names its partition, as Pulsar's clients fill it in.
    done = [index, done = std::move(done)](const SendResult& r) {
      SendResult with = r;
      with.id.partition = static_cast<int32_t>(index);
      if (done) done(with);
    };
  }
  if (client_->runtime().on_runtime_thread()) {
    // No blocking on the I/O thread: skip the back-pressure wait there.
    impl->send(std::move(message), std::move(done));
    return;
  }
  impl->acquire_slot();
  // The slot is given back when the message is answered (receipt, error or timeout).
  SendCallback release = [raw = impl.get(), done = std::move(done)](const SendResult& r) {
    raw->release_slot();
    if (done) done(r);
  };
  impl->send_from_app(std::move(message), std::move(release));
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
  for (auto& impl : impls_) client_->runtime().run(detail::FlushOp(impl));
}

void Producer::close() {
  if (impls_.empty() || !client_ || client_->closed()) return;
  for (auto& impl : impls_) client_->runtime().run(detail::CloseProducerOp(impl));
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

Consumer::Consumer(std::shared_ptr<detail::ClientImpl> client, std::string topic,
                   std::vector<std::shared_ptr<detail::ConsumerImpl>> impls,
                   std::shared_ptr<detail::Arrivals> arrivals)
    : client_(std::move(client)),
      topic_(std::move(topic)),
      impls_(std::move(impls)),
      arrivals_(std::move(arrivals)) {
  partitioned_ = !impls_.empty() && impls_[0]->options().topic != topic_;
}
Consumer::Consumer(Consumer&&) noexcept = default;
Consumer& Consumer::operator=(Consumer&& other) noexcept {
  if (this != &other) {
    try {
      close();
    } catch (...) {
    }
    client_ = std::move(other.client_);
    topic_ = std::move(other.topic_);
    impls_ = std::move(other.impls_);
    arrivals_ = std::move(other.arrivals_);
    next_partition_ = other.next_partition_;
    partitioned_ = other.partitioned_;
  }
  return *this;
}
Consumer::~Consumer() {
  try {
    close();
  } catch (...) {
  }
}

const std::string& Consumer::topic() const { return topic_; }
const std::string& Consumer::subscription() const { return impls_.at(0)->options().subscription; }

const std::shared_ptr<detail::ConsumerImpl>& Consumer::owner_of(const MessageId& id) const {
  if (partitioned_ && id.partition >= 0 && static_cast<size_t>(id.partition) < impls_.size()) {
    return impls_[static_cast<size_t>(id.partition)];
  }
  return impls_.at(0);
}

std::optional<Message> Consumer::receive(Millis timeout) {
  if (impls_.empty()) throw PulsarError(ErrorCode::kClosed, "the consumer is closed");
  if (client_->runtime().on_runtime_thread()) {
    throw std::logic_error("magnetar pulsar client: blocking receive on the client's I/O thread");
  }
  if (!partitioned_) return impls_[0]->receive(timeout);
  // Partitioned: take from the partitions in turn; with all empty, wait for any arrival.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    uint64_t seen = 0;
    size_t first = 0;
    {
      // (next_partition_ too: receive() may be called from several threads.)
      std::lock_guard lock(arrivals_->mutex);
      seen = arrivals_->count;
      first = next_partition_;
    }
    for (size_t k = 0; k < impls_.size(); ++k) {
      const size_t index = (first + k) % impls_.size();
      if (auto m = impls_[index]->receive(Millis(0))) {
        {
          std::lock_guard lock(arrivals_->mutex);
          next_partition_ = index + 1;
        }
        m->id.partition = static_cast<int32_t>(index);
        return m;
      }
    }
    std::unique_lock lock(arrivals_->mutex);
    if (!arrivals_->cv.wait_until(lock, deadline, [&] { return arrivals_->count != seen; })) {
      return std::nullopt;
    }
  }
}

Message Consumer::receive() {
  for (;;) {
    if (auto m = receive(Millis(3'600'000))) return std::move(*m);
  }
}

void Consumer::acknowledge(const MessageId& id) {
  if (impls_.empty()) return;
  asio::post(client_->executor(), [impl = owner_of(id), id] { impl->ack(id, false); });
}

void Consumer::acknowledge_cumulative(const MessageId& id) {
  if (impls_.empty()) return;
  asio::post(client_->executor(), [impl = owner_of(id), id] { impl->ack(id, true); });
}

void Consumer::negative_acknowledge(const MessageId& id) {
  if (impls_.empty()) return;
  asio::post(client_->executor(), [impl = owner_of(id), id] { impl->redeliver(id); });
}

void Consumer::redeliver_unacknowledged() {
  for (auto& impl : impls_) {
    asio::post(client_->executor(), [impl] { impl->redeliver(std::nullopt); });
  }
}

void Consumer::seek(const MessageId& id) {
  if (impls_.empty()) throw PulsarError(ErrorCode::kClosed, "the consumer is closed");
  // An id of one partition moves that partition; earliest/latest (no partition) move them all.
  if (partitioned_ && id.partition >= 0) {
    client_->runtime().run(detail::SeekOp(owner_of(id), id, 0));
    return;
  }
  for (auto& impl : impls_) client_->runtime().run(detail::SeekOp(impl, id, 0));
}

void Consumer::seek_to_time(uint64_t publish_time_ms) {
  if (impls_.empty()) throw PulsarError(ErrorCode::kClosed, "the consumer is closed");
  for (auto& impl : impls_) client_->runtime().run(detail::SeekOp(impl, std::nullopt, publish_time_ms));
}

void Consumer::unsubscribe() {
  if (impls_.empty()) throw PulsarError(ErrorCode::kClosed, "the consumer is closed");
  for (auto& impl : impls_) client_->runtime().run(detail::UnsubscribeOp(impl));
}

void Consumer::close() {
  if (impls_.empty() || !client_) return;
  for (auto& impl : impls_) impl->close_queue();
  if (client_->closed()) return;
  for (auto& impl : impls_) client_->runtime().run(detail::CloseConsumerOp(impl));
}

}  // namespace magnetar::client::pulsar
