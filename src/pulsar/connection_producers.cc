// Connection: producers (PRODUCER, SEND and receipts in order, CLOSE_PRODUCER).

#include "pulsar/connection.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <string_view>

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

// SENDs waiting for the store, per producer; clients bound theirs (Java 1000, pulsar-flex 1000).
constexpr size_t kMaxPendingSends = 10'000;

constexpr std::string_view kGeneratedNamePrefix = "magnetar-";

std::string GenerateProducerName() { return std::string(kGeneratedNamePrefix) + RandomHex(8); }

// A name this broker generated: clients (pulsar-flex, Java) send it back when they re-register
// after a reconnect or a broker restart. It names one producer session, not a producer that
// carries its sequence ids on (pulsar-flex starts again at 0), so it never de-duplicates across
// registrations; de-duplication across sessions needs a name the client chose, as in Pulsar.
bool IsGeneratedProducerName(std::string_view name) {
  if (!name.starts_with(kGeneratedNamePrefix)) return false;
  const std::string_view hex = name.substr(kGeneratedNamePrefix.size());
  return hex.size() == 16 && std::all_of(hex.begin(), hex.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

// ---- producers -------------------------------------------------------------------------------

void Connection::HandleProducer(const proto::CommandProducer& c) {
  const uint64_t request_id = c.request_id();
  const uint64_t producer_id = c.producer_id();
  if (auto it = producers_.find(producer_id); it != producers_.end()) {
    // A client re-sending PRODUCER for a live id (reconnect logic): the same answer again.
    if (it->second.ready) {
      proto::BaseCommand reply = MakeCommand(Type::PRODUCER_SUCCESS);
      reply.mutable_producer_success()->set_request_id(request_id);
      reply.mutable_producer_success()->set_producer_name(it->second.name);
      auto last = service_.deps().broker.LastSequence(it->second.topic, it->second.name);
      reply.mutable_producer_success()->set_last_sequence_id(last ? static_cast<int64_t>(*last) : -1);
      return Send(reply);
    }
    return SendError(request_id, proto::ServiceNotReady, "Producer is being created");
  }
  std::string error;
  auto name = ParsePulsarTopic(c.topic(), &error);
  if (!name) return SendError(request_id, proto::InvalidTopicName, error);
  if (c.encrypted()) return SendError(request_id, proto::NotAllowedError, "Encryption is not supported");
  const bool exclusive = c.producer_access_mode() != proto::Shared;
  const bool name_given = c.has_producer_name() && !c.producer_name().empty();
  const std::string producer_name = name_given ? c.producer_name() : GenerateProducerName();
  const bool generated_name = IsGeneratedProducerName(producer_name);
  std::optional<proto::Schema> schema;
  if (c.has_schema()) schema = c.schema();
  producers_[producer_id] = Producer{};  // reserved while the store answers
  paused_ = true;
  RunStoreWork(
      service_.deps(), socket_.get_executor(),
      [self = shared_from_this(), name = *name, producer_name, generated_name] {
        Resolved r = self->Resolve(name, auth::Permission::kWrite);
        if (r.error) return r;
        auto& broker = self->service_.deps().broker;
        // De-duplication (core::ProducerSequences): a named client continues after this. (The
        // first call on a topic also makes its hub, which relearns marks from the newest
        // messages.)
        r.last_sequence = broker.LastSequence(r.topic, producer_name);
        // A generated name starts over (see IsGeneratedProducerName), even when the topic's
        // newest messages taught a restarted broker its old marks.
        if (generated_name) {
          broker.ForgetProducer(r.topic, producer_name);
          r.last_sequence.reset();
        }
        return r;
      },
      [self = shared_from_this(), request_id, producer_id, producer_name, generated_name, exclusive,
       schema, full = name->FullName()](Resolved r) {
        if (self->closed_) return;
        auto fail = [&](proto::ServerError e, std::string m) {
          self->producers_.erase(producer_id);
          self->SendError(request_id, e, std::move(m));
          self->Resume();
        };
        if (r.error) return fail(*r.error, r.message);
        if (!self->service_.AcquireProducerSlot(r.topic, exclusive)) {
          return fail(proto::ProducerBusy, exclusive ? "Topic has other producers: exclusive access refused"
                                                     : "Topic has an exclusive producer");
        }
        if (!self->service_.deps().producer_names->TryAcquire(r.topic, producer_name)) {
          self->service_.ReleaseProducerSlot(r.topic);
          return fail(proto::ProducerBusy,
                      "Producer with name '" + producer_name + "' is already connected to topic");
        }
        Producer& p = self->producers_[producer_id];
        p.topic = r.topic;
        p.name = producer_name;
        p.generated_name = generated_name;
        p.ready = true;
        proto::BaseCommand reply = MakeCommand(Type::PRODUCER_SUCCESS);
        auto* ok = reply.mutable_producer_success();
        ok->set_request_id(request_id);
        ok->set_producer_name(producer_name);
        ok->set_last_sequence_id(r.last_sequence ? static_cast<int64_t>(*r.last_sequence) : -1);
        if (schema) {
          StoredSchema stored = self->service_.GetOrCreateSchema(full, *schema);
          ok->set_schema_version(SchemaVersionBytes(stored.version));
        }
        ok->set_producer_ready(true);
        self->Send(reply);
        self->Resume();
      });
}

void Connection::ReleaseProducer(Producer& p) {
  if (!p.ready) return;
  service_.deps().producer_names->Release(p.topic, p.name);
  service_.ReleaseProducerSlot(p.topic);
  if (p.generated_name) service_.deps().broker.ForgetProducer(p.topic, p.name);
  p.ready = false;
}

void Connection::HandleSend(Frame& frame) {
  const proto::CommandSend& c = frame.command.send();
  const uint64_t producer_id = c.producer_id();
  auto send_error = [&](proto::ServerError e, std::string m) {
    proto::BaseCommand reply = MakeCommand(Type::SEND_ERROR);
    auto* err = reply.mutable_send_error();
    err->set_producer_id(producer_id);
    err->set_sequence_id(c.sequence_id());
    err->set_error(e);
    err->set_message(std::move(m));
    return reply;
  };
  auto it = producers_.find(producer_id);
  if (it == producers_.end() || !it->second.ready) {
    return Send(send_error(proto::NotAllowedError, "Producer " + std::to_string(producer_id) +
                                                       " is not registered on this connection"));
  }
  Producer& p = it->second;
  const uint64_t token = next_receipt_token_++;
  p.receipts.push_back({token, false, {}});
  if (!frame.has_payload) {
    return CompleteReceipt(producer_id, token, send_error(proto::UnknownError, "SEND without a payload"));
  }
  if (!frame.checksum_ok) {
    return CompleteReceipt(producer_id, token, send_error(proto::ChecksumError, "Checksum mismatch"));
  }
  if (p.receipts.size() > kMaxPendingSends) {
    return CompleteReceipt(producer_id, token,
                           send_error(proto::ProducerBlockedQuotaExceededError,
                                      "Too many sends waiting for the store"));
  }
  SendDrafts drafts = DraftsFromSend(frame, p.name, service_.options().max_message_size);
  if (drafts.drafts.empty()) {
    return CompleteReceipt(producer_id, token, send_error(drafts.error, drafts.message));
  }
  for (auto& d : drafts.drafts) {
    d->topic = p.topic.name;
    // De-duplication goes by the producer this connection registered, whatever name the
    // metadata carries (as Pulsar's broker does).
    d->producer_name = p.name;
  }
  proto::BaseCommand receipt = MakeCommand(Type::SEND_RECEIPT);
  auto* ok = receipt.mutable_send_receipt();
  ok->set_producer_id(producer_id);
  ok->set_sequence_id(c.sequence_id());
  if (c.has_highest_sequence_id()) ok->set_highest_sequence_id(c.highest_sequence_id());
  proto::BaseCommand failure = send_error(proto::PersistenceError, "");
  service_.deps().broker.Publish(
      p.topic, std::move(drafts.drafts),
      [weak = weak_from_this(), executor = socket_.get_executor(), producer_id, token,
       receipt = std::move(receipt), failure = std::move(failure)](
          Result<std::vector<core::MessagePtr>> result) mutable {
        proto::BaseCommand reply;
        if (result.ok() && !result->empty()) {
          reply = std::move(receipt);
          *reply.mutable_send_receipt()->mutable_message_id() = IdData(result->front()->id);
        } else {
          reply = std::move(failure);
          reply.mutable_send_error()->set_message(
              result.ok() ? "publish failed" : "Failed to persist: " + result.status().message());
        }
        asio::post(executor, [weak, producer_id, token, reply = std::move(reply)]() mutable {
          if (auto self = weak.lock()) self->CompleteReceipt(producer_id, token, std::move(reply));
        });
      });
}

void Connection::CompleteReceipt(uint64_t producer_id, uint64_t token, proto::BaseCommand reply) {
  auto it = producers_.find(producer_id);
  if (it == producers_.end()) return;  // closed meanwhile: nobody waits for it
  auto& receipts = it->second.receipts;
  for (auto& r : receipts) {
    if (r.token == token) {
      r.done = true;
      r.reply = std::move(reply);
      break;
    }
  }
  // Receipts go out in SEND order (spec §5: clients treat anything else as a protocol error).
  // Send() may close the connection, which clears producers_: look the producer up each time.
  while (!closed_) {
    it = producers_.find(producer_id);
    if (it == producers_.end() || it->second.receipts.empty() || !it->second.receipts.front().done) {
      break;
    }
    proto::BaseCommand next = std::move(it->second.receipts.front().reply);
    it->second.receipts.pop_front();
    Send(next);
  }
}

void Connection::HandleCloseProducer(const proto::CommandCloseProducer& c) {
  if (auto it = producers_.find(c.producer_id()); it != producers_.end()) {
    ReleaseProducer(it->second);
    producers_.erase(it);
  }
  Send(MakeSuccess(c.request_id()));
}

}  // namespace magnetar::pulsar
