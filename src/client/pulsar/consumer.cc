// ConsumerImpl: SUBSCRIBE (and again after a drop), FLOW permits, MESSAGE decoding (batches and
// compressed payloads included), acks, negative acks, seek, unsubscribe and close. The receive
// queue is the only state shared with application threads.

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "client/pulsar/internal.h"
#include "common/log.h"
#include "pulsar/codec/batch.h"
#include "pulsar/codec/compression.h"

namespace magnetar::client::pulsar::detail {

namespace asio = boost::asio;
using proto::BaseCommand;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::shared_ptr<spdlog::logger> Log() {
  static auto log = Logger("client");
  return log;
}

proto::CommandSubscribe::SubType WireType(SubscriptionType t) {
  switch (t) {
    case SubscriptionType::kExclusive: return proto::CommandSubscribe::Exclusive;
    case SubscriptionType::kShared: return proto::CommandSubscribe::Shared;
    case SubscriptionType::kFailover: return proto::CommandSubscribe::Failover;
    case SubscriptionType::kKeyShared: return proto::CommandSubscribe::Key_Shared;
  }
  return proto::CommandSubscribe::Exclusive;
}

void SetId(proto::MessageIdData* out, const MessageId& id) {
  out->set_ledgerid(id.ledger);
  out->set_entryid(id.entry);
  if (id.partition >= 0) out->set_partition(id.partition);
  if (id.batch_index >= 0) out->set_batch_index(id.batch_index);
}

std::map<std::string, std::string> Properties(
    const google::protobuf::RepeatedPtrField<proto::KeyValue>& kvs) {
  std::map<std::string, std::string> out;
  for (const auto& kv : kvs) out[kv.key()] = kv.value();
  return out;
}

asio::awaitable<void> Sleep(Millis d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(kTuple);
}

}  // namespace

ConsumerImpl::ConsumerImpl(ClientImpl* client, ConsumerOptions options)
    : client_(client),
      options_(std::move(options)),
      consumer_id_(client->next_consumer_id()),
      backoff_(client->options().backoff_initial, client->options().backoff_max) {}

asio::awaitable<void> ConsumerImpl::start() {
  co_await register_with_retry(Clock::now() + client_->options().operation_timeout, false);
}

asio::awaitable<void> ConsumerImpl::register_once(Clock::time_point deadline) {
  // (Operands named first: g++ 12 mishandles temporaries inside co_await expressions.)
  asio::awaitable<std::shared_ptr<Connection>> lookup = client_->lookup(options_.topic, deadline);
  std::shared_ptr<Connection> conn = co_await std::move(lookup);
  co_await conn->wait_connected(deadline);
  const uint64_t request_id = conn->next_request_id();
  BaseCommand cmd = magnetar::pulsar::MakeCommand(BaseCommand::SUBSCRIBE);
  auto* s = cmd.mutable_subscribe();
  s->set_topic(options_.topic);
  s->set_subscription(options_.subscription);
  s->set_subtype(WireType(options_.type));
  s->set_consumer_id(consumer_id_);
  s->set_request_id(request_id);
  if (!options_.consumer_name.empty()) s->set_consumer_name(options_.consumer_name);
  s->set_durable(options_.durable);
  s->set_initialposition(options_.initial_position == InitialPosition::kEarliest
                             ? proto::CommandSubscribe::Earliest
                             : proto::CommandSubscribe::Latest);
  s->set_force_topic_creation(true);
  conn->register_consumer(consumer_id_, weak_from_this());
  const auto left = std::max(std::chrono::duration_cast<Millis>(deadline - Clock::now()), Millis(1));
  try {
    asio::awaitable<BaseCommand> op = conn->request(request_id, std::move(cmd), left, {});
    co_await std::move(op);
  } catch (...) {
    conn->unregister_consumer(consumer_id_);
    throw;
  }
  if (closed_) {
    conn->unregister_consumer(consumer_id_);
    throw PulsarError(ErrorCode::kClosed, "the consumer is closed");
  }
  {
    // What the old connection delivered and nobody took yet comes again (it is unacked).
    std::lock_guard lock(mutex_);
    queue_.clear();
    ++epoch_;
    consumed_ = 0;
  }
  conn_ = conn;
  ready_ = true;
  BaseCommand flow = magnetar::pulsar::MakeCommand(BaseCommand::FLOW);
  flow.mutable_flow()->set_consumer_id(consumer_id_);
  flow.mutable_flow()->set_messagepermits(options_.receiver_queue_size);
  conn_->send(flow);
}

asio::awaitable<void> ConsumerImpl::register_with_retry(std::optional<Clock::time_point> deadline,
                                                        bool reconnecting) {
  Millis prev{0};
  for (;;) {
    std::optional<PulsarError> error;
    auto attempt_deadline = Clock::now() + client_->options().operation_timeout;
    if (deadline && *deadline < attempt_deadline) attempt_deadline = *deadline;
    try {
      co_await register_once(attempt_deadline);
      co_return;
    } catch (const PulsarError& e) {
      error = e;
    }
    if (closed_) throw PulsarError(ErrorCode::kClosed, "the consumer is closed");
    if (!Retryable(*error, reconnecting)) throw *error;
    const auto now = Clock::now();
    if (deadline && now >= *deadline) throw *error;
    prev = backoff_.next(prev);
    Millis wait = prev;
    if (deadline) wait = std::min(wait, std::chrono::duration_cast<Millis>(*deadline - now));
    Log()->debug("pulsar consumer {}/{}: {}; retrying in {} ms", options_.topic,
                 options_.subscription, error->what(), wait.count());
    co_await Sleep(wait);
  }
}

asio::awaitable<void> ConsumerImpl::reconnect(std::shared_ptr<ConsumerImpl> self) {
  (void)self;  // alive until subscribed again
  if (reconnecting_ || closed_) co_return;
  reconnecting_ = true;
  std::optional<PulsarError> error;
  try {
    co_await register_with_retry(std::nullopt, true);
  } catch (const PulsarError& e) {
    error = e;
  }
  reconnecting_ = false;
  if (error && !closed_) {
    Log()->error("pulsar consumer {}/{}: cannot subscribe again: {}", options_.topic,
                 options_.subscription, error->what());
    closed_ = true;
    close_queue();
  }
}

void ConsumerImpl::on_connection_lost() {
  ready_ = false;
  conn_.reset();
  if (closed_) return;
  asio::co_spawn(client_->executor(), reconnect(shared_from_this()), asio::detached);
}

void ConsumerImpl::on_closed_by_broker() {
  Log()->info("pulsar consumer {}/{}: closed by the broker; subscribing again", options_.topic,
              options_.subscription);
  on_connection_lost();
}

void ConsumerImpl::on_active_change(bool active) {
  Log()->debug("pulsar consumer {}/{}: {}", options_.topic, options_.subscription,
               active ? "active" : "inactive");
}

void ConsumerImpl::on_message(magnetar::pulsar::Frame& frame) {
  const auto& m = frame.command.message();
  auto reject = [&](proto::CommandAck::ValidationError why, const std::string& what) {
    // As the Java and C++ clients do: acknowledge it as invalid, so it is not redelivered forever.
    Log()->warn("pulsar consumer {}/{}: dropping message {}-{}: {}", options_.topic,
                options_.subscription, m.message_id().ledgerid(), m.message_id().entryid(), what);
    BaseCommand ack = magnetar::pulsar::MakeCommand(BaseCommand::ACK);
    auto* a = ack.mutable_ack();
    a->set_consumer_id(consumer_id_);
    a->set_ack_type(proto::CommandAck::Individual);
    *a->add_message_id() = m.message_id();
    a->set_validation_error(why);
    if (conn_) conn_->send(ack);
    grant(epoch_, 1);
  };
  if (!frame.has_payload) return reject(proto::CommandAck::BatchDeSerializeError, "no payload");
  if (!frame.checksum_ok) return reject(proto::CommandAck::ChecksumMismatch, "checksum mismatch");
  const proto::MessageMetadata& md = frame.metadata;
  std::string payload = std::move(frame.payload);
  if (md.compression() != proto::NONE) {
    auto plain = magnetar::pulsar::Decompress(md.compression(), payload, md.uncompressed_size(),
                                              magnetar::pulsar::kDefaultMaxMessageSize);
    if (!plain.ok()) return reject(proto::CommandAck::DecompressionError, plain.status().message());
    payload = std::move(*plain);
  }
  Message base;
  base.id.ledger = m.message_id().ledgerid();
  base.id.entry = m.message_id().entryid();
  base.id.partition = m.message_id().partition();
  base.topic = options_.topic;
  base.publish_time = md.publish_time();
  base.event_time = md.event_time();
  base.redelivery_count = m.redelivery_count();
  base.producer_name = md.producer_name();
  if (!md.has_num_messages_in_batch()) {
    base.payload = std::move(payload);
    if (md.has_partition_key()) base.key = md.partition_key();
    base.properties = Properties(md.properties());
    push(std::move(base));
    return;
  }
  auto entries = magnetar::pulsar::ParseBatch(payload, md.num_messages_in_batch());
  if (!entries.ok()) return reject(proto::CommandAck::BatchDeSerializeError, entries.status().message());
  for (size_t i = 0; i < entries->size(); ++i) {
    auto& e = (*entries)[i];
    Message one = base;
    one.id.batch_index = static_cast<int32_t>(i);
    if (e.metadata.compacted_out()) continue;
    one.payload = std::move(e.payload);
    if (e.metadata.has_partition_key()) one.key = e.metadata.partition_key();
    one.properties = Properties(e.metadata.properties());
    if (e.metadata.has_event_time()) one.event_time = e.metadata.event_time();
    push(std::move(one));
  }
}

void ConsumerImpl::push(Message m) {
  {
    std::lock_guard lock(mutex_);
    if (queue_closed_) return;
    queue_.push_back(std::move(m));
  }
  cv_.notify_one();
  if (arrivals_) arrivals_->bump();
}

std::optional<Message> ConsumerImpl::receive(Millis timeout) {
  std::unique_lock lock(mutex_);
  if (!cv_.wait_for(lock, timeout, [&] { return !queue_.empty() || queue_closed_; })) {
    return std::nullopt;
  }
  if (queue_.empty()) throw PulsarError(ErrorCode::kClosed, "the consumer is closed");
  Message m = std::move(queue_.front());
  queue_.pop_front();
  ++consumed_;
  const uint32_t threshold = std::max<uint32_t>(1, options_.receiver_queue_size / 2);
  if (consumed_ >= threshold) {
    const uint32_t n = consumed_;
    consumed_ = 0;
    const uint64_t epoch = epoch_;
    lock.unlock();
    asio::post(client_->executor(), [self = shared_from_this(), epoch, n] { self->grant(epoch, n); });
  }
  return m;
}

void ConsumerImpl::grant(uint64_t epoch, uint32_t permits) {
  {
    std::lock_guard lock(mutex_);
    if (epoch != epoch_) return;  // a newer subscription got its full window already
  }
  if (!ready_ || !conn_ || permits == 0) return;
  BaseCommand flow = magnetar::pulsar::MakeCommand(BaseCommand::FLOW);
  flow.mutable_flow()->set_consumer_id(consumer_id_);
  flow.mutable_flow()->set_messagepermits(permits);
  conn_->send(flow);
}

void ConsumerImpl::close_queue() {
  {
    std::lock_guard lock(mutex_);
    queue_closed_ = true;
  }
  cv_.notify_all();
  if (arrivals_) arrivals_->bump();
}

void ConsumerImpl::ack(MessageId id, bool cumulative) {
  if (!ready_ || !conn_) return;  // the broker redelivers what the lost connection had
  BaseCommand cmd = magnetar::pulsar::MakeCommand(BaseCommand::ACK);
  auto* a = cmd.mutable_ack();
  a->set_consumer_id(consumer_id_);
  a->set_ack_type(cumulative ? proto::CommandAck::Cumulative : proto::CommandAck::Individual);
  SetId(a->add_message_id(), id);
  conn_->send(cmd);
}

void ConsumerImpl::redeliver(std::optional<MessageId> id) {
  if (!ready_ || !conn_) return;
  BaseCommand cmd = magnetar::pulsar::MakeCommand(BaseCommand::REDELIVER_UNACKNOWLEDGED_MESSAGES);
  auto* r = cmd.mutable_redeliverunacknowledgedmessages();
  r->set_consumer_id(consumer_id_);
  if (id) SetId(r->add_message_ids(), *id);
  conn_->send(cmd);
}

asio::awaitable<void> ConsumerImpl::seek(std::optional<MessageId> id, uint64_t publish_time) {
  if (closed_) throw PulsarError(ErrorCode::kClosed, "the consumer is closed");
  if (!ready_ || !conn_) throw PulsarError(ErrorCode::kDisconnected, "the consumer is reconnecting");
  std::shared_ptr<Connection> conn = conn_;
  const uint64_t request_id = conn->next_request_id();
  BaseCommand cmd = magnetar::pulsar::MakeCommand(BaseCommand::SEEK);
  auto* s = cmd.mutable_seek();
  s->set_consumer_id(consumer_id_);
  s->set_request_id(request_id);
  if (id) {
    SetId(s->mutable_message_id(), *id);
  } else {
    s->set_message_publish_time(publish_time);
  }
  uint32_t regrant = 0;
  // Inline with the SUCCESS, before any MESSAGE after it: what came before is from the old
  // position; its permits are granted again.
  auto on_reply = [this, &regrant](const BaseCommand& reply) {
    if (reply.type() != BaseCommand::SUCCESS) return;
    std::lock_guard lock(mutex_);
    regrant = static_cast<uint32_t>(queue_.size());
    queue_.clear();
  };
  asio::awaitable<BaseCommand> op = conn->request(
      request_id, std::move(cmd), client_->options().operation_timeout, std::move(on_reply));
  co_await std::move(op);
  uint64_t epoch = 0;
  {
    std::lock_guard lock(mutex_);
    epoch = epoch_;
  }
  grant(epoch, regrant);
}

asio::awaitable<void> ConsumerImpl::unsubscribe() {
  if (closed_) throw PulsarError(ErrorCode::kClosed, "the consumer is closed");
  if (!ready_ || !conn_) throw PulsarError(ErrorCode::kDisconnected, "the consumer is reconnecting");
  std::shared_ptr<Connection> conn = conn_;
  const uint64_t request_id = conn->next_request_id();
  BaseCommand cmd = magnetar::pulsar::MakeCommand(BaseCommand::UNSUBSCRIBE);
  cmd.mutable_unsubscribe()->set_consumer_id(consumer_id_);
  cmd.mutable_unsubscribe()->set_request_id(request_id);
  asio::awaitable<BaseCommand> op =
      conn->request(request_id, std::move(cmd), client_->options().operation_timeout, {});
  co_await std::move(op);
  closed_ = true;
  ready_ = false;
  conn->unregister_consumer(consumer_id_);
  conn_.reset();
  close_queue();
}

asio::awaitable<void> ConsumerImpl::close() {
  if (closed_) co_return;
  closed_ = true;
  close_queue();
  std::shared_ptr<Connection> conn = std::move(conn_);
  const bool was_ready = ready_;
  ready_ = false;
  if (!conn || !was_ready || conn->state() != Connection::State::kConnected) co_return;
  conn->unregister_consumer(consumer_id_);
  const uint64_t request_id = conn->next_request_id();
  BaseCommand cmd = magnetar::pulsar::MakeCommand(BaseCommand::CLOSE_CONSUMER);
  cmd.mutable_close_consumer()->set_consumer_id(consumer_id_);
  cmd.mutable_close_consumer()->set_request_id(request_id);
  try {
    asio::awaitable<BaseCommand> op = conn->request(
        request_id, std::move(cmd), std::min(client_->options().operation_timeout, Millis(5000)), {});
    co_await std::move(op);
  } catch (const PulsarError& e) {
    Log()->debug("pulsar consumer {}/{}: CLOSE_CONSUMER: {}", options_.topic, options_.subscription,
                 e.what());
  }
}

}  // namespace magnetar::client::pulsar::detail
