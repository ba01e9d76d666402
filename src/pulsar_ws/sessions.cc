#include "pulsar_ws/sessions.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cstdint>

#include "common/log.h"
#include "common/message_metrics.h"
#include "pulsar_ws/frames.h"

namespace magnetar::pulsar_ws {

namespace json = boost::json;

namespace {

constexpr size_t kReadPage = 100;

void CloseDeserialize(const std::weak_ptr<ws::WsConnection>& weak) {
  if (auto conn = weak.lock()) conn->Close(kClosePolicy, "3: Failed to deserialize from JSON");
}

}  // namespace

// ---- producer ------------------------------------------------------------------------------

namespace {

// Where a producer session starts numbering: after initialSequenceId when given (the client takes
// charge of its sequence ids, as in Pulsar), else after the broker's mark for this name.
uint64_t FirstSequenceId(const ProducerParams& params, std::optional<uint64_t> last_sequence) {
  if (params.initial_sequence_id) return static_cast<uint64_t>(*params.initial_sequence_id) + 1;
  return last_sequence ? *last_sequence + 1 : 0;
}

}  // namespace

ProducerSession::ProducerSession(const PulsarWsDeps& deps, std::shared_ptr<ProducerNames> names,
                                 core::TopicKey topic, std::string producer_name,
                                 bool generated_name, std::optional<uint64_t> last_sequence,
                                 ProducerParams params)
    : deps_(deps),
      names_(std::move(names)),
      topic_(std::move(topic)),
      producer_name_(std::move(producer_name)),
      generated_name_(generated_name),
      params_(params),
      sequence_id_(FirstSequenceId(params, last_sequence)) {}

void ProducerSession::OnOpen(ws::WsConnection& conn) {
  conn_ = std::static_pointer_cast<ws::WsConnection>(conn.shared_from_this());
}

void ProducerSession::OnBinary(ws::WsConnection& conn, std::string_view data) { OnText(conn, data); }

void ProducerSession::OnText(ws::WsConnection& conn, std::string_view text) {
  const uint64_t seq = next_seq_++;
  receipts_.push_back({seq, false, {}});
  PublishParse parsed = ParsePublishFrame(text, deps_.clock.Now() / 1000);
  if (!parsed.draft) return Complete(seq, ReceiptError(parsed.error_code, parsed.error_message, parsed.context));
  if (outstanding_ >= static_cast<size_t>(std::max(params_.max_pending_messages, 1))) {
    return Complete(seq, ReceiptError(8, "Producer send queue is full", parsed.context));
  }
  core::DraftPtr draft = std::move(parsed.draft);
  draft->topic = topic_.name;
  draft->producer_name = producer_name_;
  if (parsed.sequence_id) {
    // The client's own number (a re-send keeps it): the broker drops it if already stored.
    draft->sequence_id = *parsed.sequence_id;
    sequence_id_ = std::max(sequence_id_, *parsed.sequence_id + 1);
  } else {
    draft->sequence_id = sequence_id_++;
  }
  if (parsed.deliver_at_millis > 0) {
    draft->deliver_at = parsed.deliver_at_millis > INT64_MAX / 1000 ? INT64_MAX
                                                                    : parsed.deliver_at_millis * 1000;
  }
  ++outstanding_;
  std::weak_ptr<ProducerSession> weak = weak_from_this();
  std::weak_ptr<ws::WsConnection> weak_conn = conn_;
  (void)conn;
  deps_.broker.Publish(topic_, {std::move(draft)},
                       [weak, weak_conn, seq, context = std::move(parsed.context),
                        start = std::chrono::steady_clock::now()](
                           Result<std::vector<core::MessagePtr>> result) {
                         auto& m = metrics::MessagesFor(metrics::Protocol::kPulsarWs);
                         m.publish_latency.Observe(metrics::SecondsSince(start));
                         if (result.ok()) {
                           m.published.Inc(result->size());
                         } else {
                           m.publish_failures.Inc();
                         }
                         std::string frame =
                             result.ok() && !result->empty()
                                 ? ReceiptOk(result->front()->id, context)
                                 : ReceiptError(8, result.ok() ? "publish failed"
                                                               : result.status().message(),
                                                context);
                         auto conn = weak_conn.lock();
                         if (!conn) return;
                         conn->Post([weak, seq, frame = std::move(frame)]() mutable {
                           auto self = weak.lock();
                           if (!self) return;
                           --self->outstanding_;
                           self->Complete(seq, std::move(frame));
                         });
                       });
}

void ProducerSession::Complete(uint64_t seq, std::string frame) {
  for (auto& r : receipts_) {
    if (r.seq == seq) {
      r.done = true;
      r.frame = std::move(frame);
      break;
    }
  }
  Flush();
}

void ProducerSession::Flush() {
  auto conn = conn_.lock();
  while (!receipts_.empty() && receipts_.front().done) {
    if (conn) conn->SendText(std::move(receipts_.front().frame));
    receipts_.pop_front();
  }
}

void ProducerSession::OnClosed(ws::WsConnection&) {
  if (closed_) return;
  closed_ = true;
  names_->Release(topic_, producer_name_);
  if (generated_name_) deps_.broker.ForgetProducer(topic_, producer_name_);
}

// ---- consumer ------------------------------------------------------------------------------

ConsumerSession::ConsumerSession(std::shared_ptr<Subscription> sub, uint64_t consumer)
    : sub_(std::move(sub)), consumer_(consumer) {}

void ConsumerSession::OnOpen(ws::WsConnection& conn) {
  conn_ = std::static_pointer_cast<ws::WsConnection>(conn.shared_from_this());
  sub_->Start(consumer_, std::weak_ptr<ConsumerSink>(shared_from_this()));
}

void ConsumerSession::Deliver(std::vector<core::DeliveredMessage> messages) {
  auto conn = conn_.lock();
  if (!conn) return;
  conn->Post([weak = conn_, messages = std::move(messages)] {
    auto conn = weak.lock();
    if (!conn) return;
    auto& m = metrics::MessagesFor(metrics::Protocol::kPulsarWs);
    const UnixMicros now = SystemClock::Instance().Now();
    for (const auto& dm : messages) {
      conn->SendText(ConsumerFrame(dm.message, dm.redelivery_count));
      if (dm.redelivery_count > 0) {
        m.redelivered.Inc();
        m.delivered.Inc();
      } else {
        m.Delivered(1, dm.message->publish_time, now);
      }
    }
  });
}

void ConsumerSession::SubscriptionGone() {
  if (auto conn = conn_.lock()) {
    conn->Post([weak = conn_] {
      if (auto c = weak.lock()) c->Close(1000, "Unsubscribed");
    });
  }
}

void ConsumerSession::OnBinary(ws::WsConnection& conn, std::string_view data) { OnText(conn, data); }

void ConsumerSession::OnText(ws::WsConnection&, std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return CloseDeserialize(conn_);
  const json::object& obj = v.get_object();
  std::string_view type;
  if (const json::value* t = obj.if_contains("type"); t && t->is_string()) type = t->get_string();
  if (type == "permit") {
    const json::value* n = obj.if_contains("permitMessages");
    if (!n || !(n->is_int64() || n->is_uint64())) return CloseDeserialize(conn_);
    const int64_t permits = n->is_int64() ? n->get_int64() : INT64_MAX;
    if (permits > 0) sub_->AddPermits(consumer_, permits);
    return;
  }
  if (type == "isEndOfTopic") {
    // Topics are never terminated here, so the end is never reached.
    if (auto conn = conn_.lock()) conn->SendText(R"({"endOfTopic":false})");
    return;
  }
  if (type == "unsubscribe") return sub_->Unsubscribe(consumer_);
  const json::value* id_value = obj.if_contains("messageId");
  if (!id_value || !id_value->is_string()) return CloseDeserialize(conn_);
  auto id = DecodeMessageId(id_value->get_string());
  if (!id) return CloseDeserialize(conn_);
  if (type == "negativeAcknowledge") return sub_->Nack(consumer_, *id);
  sub_->Ack(consumer_, *id);
}

void ConsumerSession::OnClosed(ws::WsConnection&) {
  if (closed_) return;
  closed_ = true;
  sub_->Detach(consumer_);
}

// ---- reader --------------------------------------------------------------------------------

namespace {

class ReaderSink final : public core::SubscriberSink {
 public:
  ReaderSink(std::weak_ptr<ReaderSession> session, std::weak_ptr<ws::WsConnection> conn)
      : session_(std::move(session)), conn_(std::move(conn)) {}
  void OnMessage(const core::MessagePtr&) override {
    auto conn = conn_.lock();
    if (!conn) return;
    conn->Post([session = session_] {
      if (auto s = session.lock()) s->Wake();
    });
  }

 private:
  std::weak_ptr<ReaderSession> session_;
  std::weak_ptr<ws::WsConnection> conn_;
};

}  // namespace

ReaderSession::ReaderSession(const PulsarWsDeps& deps, core::TopicKey topic, ReaderParams params)
    : deps_(deps),
      topic_(std::move(topic)),
      params_(params),
      window_(std::max<int64_t>(params.receiver_queue_size, 1)) {}

void ReaderSession::OnOpen(ws::WsConnection& conn) {
  conn_ = std::static_pointer_cast<ws::WsConnection>(conn.shared_from_this());
  sink_ = std::make_shared<ReaderSink>(weak_from_this(), conn_);
  // Subscribing first makes "latest" exact: every message after the returned id reaches us.
  const MessageId live_from = deps_.broker.Subscribe(topic_, sink_);
  switch (params_.start) {
    case ReaderParams::Start::kLatest: cursor_ = live_from; break;
    case ReaderParams::Start::kEarliest: cursor_ = MessageId::Min(); break;
    case ReaderParams::Start::kMessageId: cursor_ = params_.start_id; break;
  }
  ReadMore();
}

void ReaderSession::Wake() {
  more_ = true;
  ReadMore();
}

void ReaderSession::ReadMore() {
  auto conn = conn_.lock();
  if (!conn || closed_ || reading_ || in_flight_ >= window_) return;
  reading_ = true;
  more_ = false;
  core::ReadRequest request;
  request.after = cursor_;
  request.limit = static_cast<size_t>(std::min<int64_t>(window_ - in_flight_, kReadPage));
  core::MessageStore& store = deps_.broker.store();
  RunStoreWork(
      deps_, conn->executor(), [&store, topic = topic_, request] { return store.Read(topic, request); },
      [weak = weak_from_this()](Result<core::ReadResult> result) {
        auto self = weak.lock();
        if (!self) return;
        self->reading_ = false;
        auto conn = self->conn_.lock();
        if (!conn || self->closed_) return;
        if (!result.ok()) return conn->Close(1011, "8: " + result.status().message());
        auto& flow = metrics::MessagesFor(metrics::Protocol::kPulsarWs);
        flow.delivered.Inc(result->messages.size());  // read from the log: no latency
        for (const auto& m : result->messages) {
          conn->SendText(ConsumerFrame(m, 0));
          self->cursor_ = m->id;
          ++self->in_flight_;
        }
        if (result->has_more || self->more_) self->ReadMore();
      });
}

void ReaderSession::OnBinary(ws::WsConnection& conn, std::string_view data) { OnText(conn, data); }

void ReaderSession::OnText(ws::WsConnection&, std::string_view text) {
  // Any frame frees one in-flight slot (spec §5.2), even one that does not parse.
  if (in_flight_ > 0) --in_flight_;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return CloseDeserialize(conn_);
  if (const json::value* t = v.get_object().if_contains("type");
      t && t->is_string() && t->get_string() == "isEndOfTopic") {
    if (auto conn = conn_.lock()) conn->SendText(R"({"endOfTopic":false})");
  }
  more_ = true;
  ReadMore();
}

void ReaderSession::OnClosed(ws::WsConnection&) {
  if (closed_) return;
  closed_ = true;
  if (sink_) deps_.broker.Unsubscribe(topic_, sink_.get());
}

}  // namespace magnetar::pulsar_ws
