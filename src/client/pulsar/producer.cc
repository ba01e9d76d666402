// ProducerImpl: registration (and re-registration after a drop), sequence ids, batching, receipts
// in order, send timeouts, flush and close. Runs on the client's I/O thread.

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "client/pulsar/internal.h"
#include "common/log.h"
#include "pulsar/codec/batch.h"

namespace magnetar::client::pulsar::detail {

namespace asio = boost::asio;
using proto::BaseCommand;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::shared_ptr<spdlog::logger> Log() {
  static auto log = Logger("client");
  return log;
}

uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

void FillProperties(const std::map<std::string, std::string>& in,
                    google::protobuf::RepeatedPtrField<proto::KeyValue>* out) {
  for (const auto& [k, v] : in) {
    auto* kv = out->Add();
    kv->set_key(k);
    kv->set_value(v);
  }
}

// One SEND frame (checksum included) for [first_seq, last_seq].
std::string EncodeSend(uint64_t producer_id, uint64_t first_seq, uint64_t last_seq, int32_t count,
                       const proto::MessageMetadata& metadata, std::string_view payload) {
  BaseCommand cmd = magnetar::pulsar::MakeCommand(BaseCommand::SEND);
  auto* s = cmd.mutable_send();
  s->set_producer_id(producer_id);
  s->set_sequence_id(first_seq);
  if (count > 1 || metadata.has_num_messages_in_batch()) {
    s->set_num_messages(count);
    s->set_highest_sequence_id(last_seq);
  }
  const std::string entry = magnetar::pulsar::EncodeEntry(metadata.SerializeAsString(), payload);
  std::string frame;
  magnetar::pulsar::AppendPayloadCommand(frame, cmd, entry);
  return frame;
}

asio::awaitable<void> Sleep(Millis d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(kTuple);
}

}  // namespace

ProducerImpl::ProducerImpl(ClientImpl* client, ProducerOptions options)
    : client_(client),
      options_(std::move(options)),
      producer_id_(client->next_producer_id()),
      producer_name_(options_.producer_name),
      backoff_(client->options().backoff_initial, client->options().backoff_max) {
  if (options_.max_pending_messages == 0) options_.max_pending_messages = 1;
  if (options_.batch_max_messages == 0) options_.batch_max_messages = 1;
  name_copy_ = producer_name_;
}

std::string ProducerImpl::name() const {
  std::lock_guard lock(slots_mutex_);
  return name_copy_;
}

asio::awaitable<void> ProducerImpl::start() {
  co_await register_with_retry(Clock::now() + client_->options().operation_timeout, false);
  asio::co_spawn(client_->executor(), timeout_loop(shared_from_this()), asio::detached);
}

asio::awaitable<void> ProducerImpl::register_once(Clock::time_point deadline) {
  // (Operands named first: g++ 12 mishandles temporaries inside co_await expressions.)
  asio::awaitable<std::shared_ptr<Connection>> lookup = client_->lookup(options_.topic, deadline);
  std::shared_ptr<Connection> conn = co_await std::move(lookup);
  co_await conn->wait_connected(deadline);
  const uint64_t request_id = conn->next_request_id();
  BaseCommand cmd = magnetar::pulsar::MakeCommand(BaseCommand::PRODUCER);
  auto* p = cmd.mutable_producer();
  p->set_topic(options_.topic);
  p->set_producer_id(producer_id_);
  p->set_request_id(request_id);
  if (!producer_name_.empty()) {
    p->set_producer_name(producer_name_);
    p->set_user_provided_producer_name(!options_.producer_name.empty());
  }
  p->set_producer_access_mode(proto::Shared);
  conn->register_producer(producer_id_, weak_from_this());
  const auto left = std::max(std::chrono::duration_cast<Millis>(deadline - Clock::now()), Millis(1));
  BaseCommand reply;
  try {
    asio::awaitable<BaseCommand> op = conn->request(request_id, std::move(cmd), left, {});
    reply = co_await std::move(op);
  } catch (...) {
    conn->unregister_producer(producer_id_);
    throw;
  }
  if (closed_) {
    conn->unregister_producer(producer_id_);
    throw PulsarError(ErrorCode::kClosed, "the producer is closed");
  }
  const auto& ok = reply.producer_success();
  producer_name_ = ok.producer_name();
  {
    std::lock_guard lock(slots_mutex_);
    name_copy_ = producer_name_;
  }
  if (ok.last_sequence_id() >= 0 && next_seq_ <= static_cast<uint64_t>(ok.last_sequence_id())) {
    next_seq_ = static_cast<uint64_t>(ok.last_sequence_id()) + 1;
  }
  conn_ = conn;
  ready_ = true;
  // Everything without a receipt goes again, in order, with its sequence ids.
  for (const Pending& pending : pending_) conn_->write_frame(pending.frame);
}

asio::awaitable<void> ProducerImpl::register_with_retry(std::optional<Clock::time_point> deadline,
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
    if (closed_ || closing_) throw PulsarError(ErrorCode::kClosed, "the producer is closed");
    if (!Retryable(*error, reconnecting)) throw *error;
    const auto now = Clock::now();
    if (deadline && now >= *deadline) throw *error;
    prev = backoff_.next(prev);
    Millis wait = prev;
    if (deadline) wait = std::min(wait, std::chrono::duration_cast<Millis>(*deadline - now));
    Log()->debug("pulsar producer {}: {}; retrying in {} ms", options_.topic, error->what(),
                 wait.count());
    co_await Sleep(wait);
  }
}

asio::awaitable<void> ProducerImpl::reconnect(std::shared_ptr<ProducerImpl> self) {
  (void)self;  // alive until registered again
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
    Log()->error("pulsar producer {}: cannot register again: {}", options_.topic, error->what());
    failed_ = *error;
    fail_all(*error);
  }
}

void ProducerImpl::on_connection_lost() {
  ready_ = false;
  conn_.reset();
  if (closed_) return;
  asio::co_spawn(client_->executor(), reconnect(shared_from_this()), asio::detached);
}

void ProducerImpl::on_closed_by_broker() {
  Log()->info("pulsar producer {}: closed by the broker; registering again", options_.topic);
  on_connection_lost();
}

void ProducerImpl::acquire_slot() {
  std::unique_lock lock(slots_mutex_);
  slots_cv_.wait(lock, [&] { return in_flight_ < options_.max_pending_messages || slots_closed_; });
  ++in_flight_;
}

void ProducerImpl::release_slot() {
  {
    std::lock_guard lock(slots_mutex_);
    if (in_flight_ > 0) --in_flight_;
  }
  slots_cv_.notify_one();
}

void ProducerImpl::send_from_app(OutgoingMessage message, SendCallback done) {
  bool post = false;
  {
    std::lock_guard lock(inbox_mutex_);
    inbox_.emplace_back(std::move(message), std::move(done));
    post = !drain_posted_;
    drain_posted_ = true;
  }
  if (post) asio::post(client_->executor(), [self = shared_from_this()] { self->drain_inbox(); });
}

void ProducerImpl::drain_inbox() {
  {
    std::lock_guard lock(inbox_mutex_);
    draining_.swap(inbox_);
    drain_posted_ = false;
  }
  // In queue order, which is each application thread's send order.
  for (auto& [message, done] : draining_) send(std::move(message), std::move(done));
  draining_.clear();
}

void ProducerImpl::send(OutgoingMessage message, SendCallback done) {
  auto fail = [&](PulsarError e) {
    SendResult r;
    r.error = std::move(e);
    if (done) done(r);
  };
  if (closed_ || closing_) return fail(PulsarError(ErrorCode::kClosed, "the producer is closed"));
  if (failed_) return fail(*failed_);
  const uint32_t limit =
      conn_ && conn_->max_message_size() ? *conn_->max_message_size() : magnetar::pulsar::kDefaultMaxMessageSize;
  if (message.payload.size() > limit) {
    return fail(PulsarError(ErrorCode::kMessageTooLarge,
                            "message of " + std::to_string(message.payload.size()) +
                                " bytes is over the broker's limit of " + std::to_string(limit)));
  }
  const uint64_t seq = next_seq_++;
  if (options_.batching) {
    if (!batch_.empty() && batch_bytes_ + message.payload.size() > options_.batch_max_bytes) flush_batch();
    batch_bytes_ += message.payload.size();
    batch_.push_back(Queued{std::move(message), seq, std::move(done)});
    if (batch_.size() >= options_.batch_max_messages || batch_bytes_ >= options_.batch_max_bytes) {
      flush_batch();
    } else if (!batch_timer_armed_) {
      batch_timer_armed_ = true;
      asio::co_spawn(client_->executor(), batch_timer(shared_from_this(), batch_generation_),
                     asio::detached);
    }
    return;
  }
  proto::MessageMetadata md;
  md.set_producer_name(producer_name_);
  md.set_sequence_id(seq);
  md.set_publish_time(NowMs());
  FillProperties(message.properties, md.mutable_properties());
  if (message.key) md.set_partition_key(*message.key);
  if (message.event_time) md.set_event_time(*message.event_time);
  Pending p;
  p.first_seq = p.last_seq = seq;
  p.frame = EncodeSend(producer_id_, seq, seq, 1, md, message.payload);
  p.callbacks.push_back(std::move(done));
  p.deadline = Clock::now() + options_.send_timeout;
  enqueue(std::move(p));
}

asio::awaitable<void> ProducerImpl::batch_timer(std::shared_ptr<ProducerImpl> self,
                                                uint64_t generation) {
  (void)self;
  co_await Sleep(options_.batch_max_delay);
  if (batch_generation_ == generation) flush_batch();
}

void ProducerImpl::flush_batch() {
  ++batch_generation_;
  batch_timer_armed_ = false;
  if (batch_.empty()) return;
  std::vector<Queued> batch = std::move(batch_);
  batch_.clear();
  batch_bytes_ = 0;
  Pending p;
  p.first_seq = batch.front().seq;
  p.last_seq = batch.back().seq;
  p.deadline = Clock::now() + options_.send_timeout;
  proto::MessageMetadata md;
  md.set_producer_name(producer_name_);
  md.set_sequence_id(p.first_seq);
  md.set_publish_time(NowMs());
  md.set_num_messages_in_batch(static_cast<int32_t>(batch.size()));
  md.set_highest_sequence_id(p.last_seq);
  std::vector<magnetar::pulsar::BatchEntry> entries;
  entries.reserve(batch.size());
  for (auto& q : batch) {
    magnetar::pulsar::BatchEntry e;
    proto::SingleMessageMetadata& sm = e.metadata;
    FillProperties(q.message.properties, sm.mutable_properties());
    if (q.message.key) sm.set_partition_key(*q.message.key);
    if (q.message.event_time) sm.set_event_time(*q.message.event_time);
    sm.set_payload_size(static_cast<int32_t>(q.message.payload.size()));
    sm.set_sequence_id(q.seq);
    e.metadata_bytes = sm.SerializeAsString();
    e.payload = std::move(q.message.payload);
    entries.push_back(std::move(e));
    p.callbacks.push_back(std::move(q.done));
  }
  const std::string payload = magnetar::pulsar::EncodeBatch(entries);
  md.set_uncompressed_size(static_cast<uint32_t>(payload.size()));
  p.frame = EncodeSend(producer_id_, p.first_seq, p.last_seq, static_cast<int32_t>(batch.size()), md,
                       payload);
  enqueue(std::move(p));
}

void ProducerImpl::enqueue(Pending pending) {
  if (ready_ && conn_) conn_->write_frame(pending.frame);
  pending_.push_back(std::move(pending));
}

void ProducerImpl::complete_front(const proto::MessageIdData* id,
                                  const std::optional<PulsarError>& error) {
  Pending p = std::move(pending_.front());
  pending_.pop_front();
  const bool batch = p.callbacks.size() > 1 || p.last_seq != p.first_seq;
  for (size_t i = 0; i < p.callbacks.size(); ++i) {
    SendResult r;
    if (error) {
      r.error = error;
    } else if (id) {
      r.id.ledger = id->ledgerid();
      r.id.entry = id->entryid();
      r.id.partition = id->partition();
      r.id.batch_index = batch ? static_cast<int32_t>(i) : -1;
    }
    if (p.callbacks[i]) p.callbacks[i](r);
  }
  notify_progress();
}

void ProducerImpl::on_receipt(const proto::CommandSendReceipt& receipt) {
  if (pending_.empty()) return;
  const uint64_t seq = receipt.sequence_id();
  const uint64_t front = pending_.front().first_seq;
  if (seq < front) return;  // a message sent twice across a reconnect, already answered
  if (seq > front) {
    // Receipts come in send order; a gap means the stream is not what we sent.
    Log()->warn("pulsar producer {}: receipt for {} while {} is the oldest pending", options_.topic,
                seq, front);
    if (conn_) conn_->drop("receipt out of order");
    return;
  }
  complete_front(receipt.has_message_id() ? &receipt.message_id() : nullptr, std::nullopt);
}

void ProducerImpl::on_send_error(const proto::CommandSendError& error) {
  if (pending_.empty() || pending_.front().first_seq != error.sequence_id()) return;
  const std::string name = proto::ServerError_IsValid(error.error())
                               ? proto::ServerError_Name(error.error())
                               : std::to_string(error.error());
  complete_front(nullptr, PulsarError(ErrorCode::kServerError, name + ": " + error.message(),
                                      error.error()));
}

void ProducerImpl::fail_all(const PulsarError& error) {
  std::vector<Queued> batch = std::move(batch_);
  batch_.clear();
  batch_bytes_ = 0;
  ++batch_generation_;
  batch_timer_armed_ = false;
  while (!pending_.empty()) complete_front(nullptr, error);
  for (auto& q : batch) {
    SendResult r;
    r.error = error;
    if (q.done) q.done(r);
  }
  notify_progress();
}

void ProducerImpl::notify_progress() { progress_.notify(); }

asio::awaitable<void> ProducerImpl::timeout_loop(std::shared_ptr<ProducerImpl> self) {
  (void)self;
  const Millis tick = std::clamp(options_.send_timeout / 4, Millis(10), Millis(1000));
  asio::steady_timer timer(client_->executor());
  while (!closed_) {
    timer.expires_after(tick);
    co_await timer.async_wait(kTuple);
    const auto now = Clock::now();
    while (!pending_.empty() && pending_.front().deadline <= now) {
      complete_front(nullptr, PulsarError(ErrorCode::kTimeout,
                                          "no receipt within " +
                                              std::to_string(options_.send_timeout.count()) + " ms"));
    }
  }
}

asio::awaitable<void> ProducerImpl::flush(Clock::time_point deadline) {
  flush_batch();
  if (next_seq_ == 0) co_return;
  const uint64_t target = next_seq_ - 1;
  asio::steady_timer timer(client_->executor());
  while (!pending_.empty() && pending_.front().first_seq <= target) {
    if (Clock::now() >= deadline) {
      throw PulsarError(ErrorCode::kTimeout, "flush: messages still without a receipt");
    }
    timer.expires_at(deadline);
    Waiters::Guard guard(progress_, &timer);
    co_await timer.async_wait(kTuple);
  }
}

asio::awaitable<void> ProducerImpl::close() {
  if (closed_ || closing_) co_return;
  closing_ = true;
  try {
    co_await flush(Clock::now() + options_.send_timeout);
  } catch (const PulsarError& e) {
    Log()->warn("pulsar producer {}: closing with messages unanswered: {}", options_.topic, e.what());
  }
  closed_ = true;
  fail_all(PulsarError(ErrorCode::kClosed, "the producer closed before the broker answered"));
  {
    std::lock_guard lock(slots_mutex_);
    slots_closed_ = true;
  }
  slots_cv_.notify_all();
  std::shared_ptr<Connection> conn = std::move(conn_);
  const bool was_ready = ready_;
  ready_ = false;
  if (!conn || !was_ready || conn->state() != Connection::State::kConnected) co_return;
  conn->unregister_producer(producer_id_);
  const uint64_t request_id = conn->next_request_id();
  BaseCommand cmd = magnetar::pulsar::MakeCommand(BaseCommand::CLOSE_PRODUCER);
  cmd.mutable_close_producer()->set_producer_id(producer_id_);
  cmd.mutable_close_producer()->set_request_id(request_id);
  try {
    asio::awaitable<BaseCommand> op = conn->request(
        request_id, std::move(cmd), std::min(client_->options().operation_timeout, Millis(5000)), {});
    co_await std::move(op);
  } catch (const PulsarError& e) {
    Log()->debug("pulsar producer {}: CLOSE_PRODUCER: {}", options_.topic, e.what());
  }
}

}  // namespace magnetar::client::pulsar::detail
