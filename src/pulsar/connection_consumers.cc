// Connection: consumers (SUBSCRIBE, FLOW, deliveries, ACK, redelivery, SEEK, UNSUBSCRIBE, ...).

#include "pulsar/connection.h"

#include <boost/asio/post.hpp>

#include "common/log.h"
#include "common/random.h"
#include "pulsar/connection_internal.h"
#include "pulsar/message_codec.h"
#include "pulsar/pulsar_service.h"

namespace magnetar::pulsar {

namespace asio = boost::asio;
using Type = proto::BaseCommand;
using namespace internal;  // NOLINT: the module's own helpers

namespace {

// Hands a subscription's deliveries to the connection's executor. Called under the
// subscription's mutex: posts only.
class Sink final : public pulsar_ws::ConsumerSink {
 public:
  Sink(std::weak_ptr<Connection> conn, asio::any_io_executor executor, uint64_t consumer_id)
      : conn_(std::move(conn)), executor_(std::move(executor)), consumer_id_(consumer_id) {}
  void Deliver(std::vector<core::DeliveredMessage> messages) override {
    asio::post(executor_, [conn = conn_, id = consumer_id_, messages = std::move(messages)]() mutable {
      if (auto c = conn.lock()) c->DeliverTo(id, std::move(messages));
    });
  }
  void ActiveChanged(bool active) override {
    asio::post(executor_, [conn = conn_, id = consumer_id_, active] {
      if (auto c = conn.lock()) c->ActiveConsumerChanged(id, active);
    });
  }
  void SubscriptionGone() override {
    asio::post(executor_, [conn = conn_, id = consumer_id_] {
      if (auto c = conn.lock()) c->SubscriptionGoneFor(id);
    });
  }

 private:
  std::weak_ptr<Connection> conn_;
  asio::any_io_executor executor_;
  uint64_t consumer_id_;
};

}  // namespace

// ---- consumers -------------------------------------------------------------------------------

void Connection::HandleSubscribe(const proto::CommandSubscribe& c) {
  const uint64_t request_id = c.request_id();
  const uint64_t consumer_id = c.consumer_id();
  if (consumers_.count(consumer_id)) return Send(MakeSuccess(request_id));  // already subscribed
  std::string error;
  auto name = ParsePulsarTopic(c.topic(), &error);
  if (!name) return SendError(request_id, proto::InvalidTopicName, error);
  if (c.subscription().empty() || c.subscription().size() > 255) {
    return SendError(request_id, proto::InvalidTopicName, "Subscription name must be 1-255 bytes");
  }
  pulsar_ws::ConsumerSpec spec;
  spec.name = c.consumer_name().empty() ? "consumer-" + RandomHex(6) : c.consumer_name();
  spec.priority = c.priority_level();
  spec.pull_mode = true;        // FLOW permits are the only source of permits
  spec.nack_delay_micros = 0;   // clients delay their negative acks themselves
  std::optional<MessageId> initial;
  if (c.has_start_message_id()) {
    const proto::MessageIdData& start = c.start_message_id();
    if (IsEarliest(start)) {
      initial = MessageId::Min();
    } else if (!IsLatest(start)) {
      initial = FromIdData(start);
    }
  } else if (c.initialposition() == proto::CommandSubscribe::Earliest) {
    initial = MessageId::Min();
  }
  const auto type = SubType(c.subtype());
  const bool durable = c.durable();
  const std::string subscription = c.subscription();
  std::optional<uint64_t> epoch;
  if (c.has_consumer_epoch()) epoch = c.consumer_epoch();
  paused_ = true;
  struct Outcome {
    Resolved resolved;
    Result<pulsar_ws::SubscriptionRegistry::Attached> attached = Status::Ok();
  };
  RunStoreWork(
      service_.deps(), socket_.get_executor(),
      [self = shared_from_this(), name = *name, subscription, type, durable, spec, initial,
       executor = socket_.get_executor()]() mutable {
        Outcome o;
        o.resolved = self->Resolve(name, auth::Permission::kRead);
        if (o.resolved.error) return o;
        o.attached = self->service_.deps().subscriptions.Attach(
            o.resolved.topic, subscription, type, durable, std::move(spec), executor, initial);
        return o;
      },
      [self = shared_from_this(), request_id, consumer_id, subscription, epoch](Outcome o) {
        if (self->closed_) {
          if (o.attached.ok() && o.attached->subscription) {
            o.attached->subscription->Detach(o.attached->consumer);
          }
          return;
        }
        if (o.resolved.error) {
          self->SendError(request_id, *o.resolved.error, o.resolved.message);
          return self->Resume();
        }
        if (!o.attached.ok()) {
          const bool busy = o.attached.status().code() == StatusCode::kAlreadyExists;
          self->SendError(request_id, busy ? proto::ConsumerBusy : proto::ServiceNotReady,
                          o.attached.status().message());
          return self->Resume();
        }
        Consumer consumer;
        consumer.topic = o.resolved.topic;
        consumer.subscription = subscription;
        consumer.sub = o.attached->subscription;
        consumer.core_id = o.attached->consumer;
        consumer.sink = std::make_shared<Sink>(self->weak_from_this(), self->socket_.get_executor(),
                                               consumer_id);
        consumer.epoch = epoch;
        consumer.sub->Start(consumer.core_id, consumer.sink);
        self->consumers_.emplace(consumer_id, std::move(consumer));
        self->Send(MakeSuccess(request_id));
        self->Resume();
      });
}

void Connection::DeliverTo(uint64_t consumer_id, std::vector<core::DeliveredMessage> messages) {
  if (closed_) return;
  auto it = consumers_.find(consumer_id);
  if (it == consumers_.end()) return;  // closed meanwhile: the subscription redelivers
  for (const auto& dm : messages) {
    proto::BaseCommand cmd = MakeCommand(Type::MESSAGE);
    auto* m = cmd.mutable_message();
    m->set_consumer_id(consumer_id);
    *m->mutable_message_id() = IdData(dm.message->id);
    m->set_redelivery_count(dm.redelivery_count);
    if (it->second.epoch) m->set_consumer_epoch(*it->second.epoch);
    const EncodedEntry entry = EntryFor(dm.message);
    AppendPayloadCommand(out_, cmd, entry.entry, entry.crc);
  }
  Flush();
}

void Connection::ActiveConsumerChanged(uint64_t consumer_id, bool active) {
  if (closed_ || consumers_.count(consumer_id) == 0) return;
  proto::BaseCommand cmd = MakeCommand(Type::ACTIVE_CONSUMER_CHANGE);
  cmd.mutable_active_consumer_change()->set_consumer_id(consumer_id);
  cmd.mutable_active_consumer_change()->set_is_active(active);
  Send(cmd);
}

void Connection::SubscriptionGoneFor(uint64_t consumer_id) {
  auto it = consumers_.find(consumer_id);
  if (it == consumers_.end()) return;
  // Deleted by another consumer's unsubscribe: tell the client this consumer is closed.
  consumers_.erase(it);
  proto::BaseCommand cmd = MakeCommand(Type::CLOSE_CONSUMER);
  cmd.mutable_close_consumer()->set_consumer_id(consumer_id);
  cmd.mutable_close_consumer()->set_request_id(0);
  Send(cmd);
}

void Connection::HandleFlow(const proto::CommandFlow& c) {
  auto it = consumers_.find(c.consumer_id());
  if (it == consumers_.end()) return;  // FLOW has no request id: nothing to answer
  if (c.messagepermits() > 0) it->second.sub->AddPermits(it->second.core_id, c.messagepermits());
}

void Connection::HandleAck(const proto::CommandAck& c) {
  auto it = consumers_.find(c.consumer_id());
  proto::BaseCommand reply = MakeCommand(Type::ACK_RESPONSE);
  auto* r = reply.mutable_ackresponse();
  r->set_consumer_id(c.consumer_id());
  if (c.has_request_id()) r->set_request_id(c.request_id());
  if (it == consumers_.end()) {
    r->set_error(proto::ConsumerNotFound);
    r->set_message("Consumer " + std::to_string(c.consumer_id()) + " not found");
  } else {
    Consumer& consumer = it->second;
    for (const auto& id : c.message_id()) {
      if (c.ack_type() == proto::CommandAck::Cumulative) {
        consumer.sub->AckCumulative(consumer.core_id, FromIdData(id));
      } else {
        // Entries are never batches here, so a batch index or ack set names the whole entry.
        consumer.sub->Ack(consumer.core_id, FromIdData(id));
      }
    }
  }
  // Only a client that asked (request_id) waits for the answer (pulsar-flex always does).
  if (c.has_request_id()) Send(reply);
}

void Connection::HandleRedeliver(const proto::CommandRedeliverUnacknowledgedMessages& c) {
  auto it = consumers_.find(c.consumer_id());
  if (it == consumers_.end()) return;
  Consumer& consumer = it->second;
  if (c.has_consumer_epoch()) consumer.epoch = c.consumer_epoch();
  if (c.message_ids_size() == 0) return consumer.sub->RedeliverUnacked(consumer.core_id);
  for (const auto& id : c.message_ids()) consumer.sub->Nack(consumer.core_id, FromIdData(id));
}

void Connection::HandleCloseConsumer(const proto::CommandCloseConsumer& c) {
  if (auto it = consumers_.find(c.consumer_id()); it != consumers_.end()) {
    it->second.sub->Detach(it->second.core_id);
    consumers_.erase(it);
  }
  Send(MakeSuccess(c.request_id()));
}

void Connection::HandleUnsubscribe(const proto::CommandUnsubscribe& c) {
  auto it = consumers_.find(c.consumer_id());
  const uint64_t request_id = c.request_id();
  if (it == consumers_.end()) {
    return SendError(request_id, proto::ConsumerNotFound, "Consumer not found");
  }
  const uint64_t consumer_id = c.consumer_id();
  it->second.sub->Unsubscribe(
      it->second.core_id,
      [weak = weak_from_this(), executor = socket_.get_executor(), request_id, consumer_id](bool deleted) {
        asio::post(executor, [weak, request_id, consumer_id, deleted] {
          auto self = weak.lock();
          if (!self || self->closed_) return;
          if (!deleted) {
            return self->SendError(request_id, proto::ConsumerBusy,
                                   "Subscription has other connected consumers");
          }
          self->consumers_.erase(consumer_id);
          self->Send(MakeSuccess(request_id));
        });
      });
}

void Connection::HandleSeek(const proto::CommandSeek& c) {
  auto it = consumers_.find(c.consumer_id());
  if (it == consumers_.end()) return SendError(c.request_id(), proto::ConsumerNotFound, "Consumer not found");
  MessageId after;
  if (c.has_message_id()) {
    const auto& id = c.message_id();
    if (IsEarliest(id)) {
      after = MessageId::Min();
    } else if (IsLatest(id)) {
      after = MessageId::Max();
    } else {
      after = Before(FromIdData(id));  // the message itself is delivered again
    }
  } else if (c.has_message_publish_time()) {
    // Ids start with the publish time in ms: everything published at or after it comes again.
    after = Before(MessageId{c.message_publish_time(), 0});
  } else {
    return SendError(c.request_id(), proto::UnknownError, "SEEK needs a message id or a publish time");
  }
  it->second.sub->Seek(after);
  Send(MakeSuccess(c.request_id()));
}

void Connection::HandleGetLastMessageId(const proto::CommandGetLastMessageId& c) {
  auto it = consumers_.find(c.consumer_id());
  const uint64_t request_id = c.request_id();
  if (it == consumers_.end()) return SendError(request_id, proto::ConsumerNotFound, "Consumer not found");
  core::MessageStore& store = service_.deps().broker.store();
  paused_ = true;
  RunStoreWork(
      service_.deps(), socket_.get_executor(),
      [&store, topic = it->second.topic] { return store.Stats(topic); },
      [self = shared_from_this(), request_id](Result<core::TopicStats> stats) {
        if (self->closed_) return;
        if (!stats.ok()) {
          self->SendError(request_id, proto::PersistenceError, stats.status().message());
          return self->Resume();
        }
        proto::BaseCommand reply = MakeCommand(Type::GET_LAST_MESSAGE_ID_RESPONSE);
        auto* r = reply.mutable_getlastmessageidresponse();
        r->set_request_id(request_id);
        if (stats->last_id == MessageId::Min()) {
          // Empty topic: below every real id (Java answers entryId -1).
          r->mutable_last_message_id()->set_ledgerid(0);
          r->mutable_last_message_id()->set_entryid(UINT64_MAX);
        } else {
          *r->mutable_last_message_id() = IdData(stats->last_id);
        }
        self->Send(reply);
        self->Resume();
      });
}

void Connection::HandleConsumerStats(const proto::CommandConsumerStats& c) {
  auto it = consumers_.find(c.consumer_id());
  if (it == consumers_.end()) {
    proto::BaseCommand reply = MakeCommand(Type::CONSUMER_STATS_RESPONSE);
    reply.mutable_consumerstatsresponse()->set_request_id(c.request_id());
    reply.mutable_consumerstatsresponse()->set_error_code(proto::ConsumerNotFound);
    reply.mutable_consumerstatsresponse()->set_error_message("Consumer not found");
    return Send(reply);
  }
  proto::BaseCommand reply = MakeCommand(Type::CONSUMER_STATS_RESPONSE);
  auto* r = reply.mutable_consumerstatsresponse();
  r->set_request_id(c.request_id());
  r->set_consumername(it->second.subscription);
  r->set_msgrateout(0);
  r->set_msgthroughputout(0);
  Send(reply);
}

}  // namespace magnetar::pulsar
