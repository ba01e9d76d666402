#include "pulsar/connection.h"

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>

#include "common/log.h"
#include "common/random.h"
#include "pulsar/message_codec.h"
#include "pulsar/pulsar_service.h"

namespace magnetar::pulsar {

namespace asio = boost::asio;
using Type = proto::BaseCommand;

namespace {

constexpr size_t kReadChunk = 64 * 1024;
// Replies and deliveries waiting for the socket beyond this mean the client stopped reading
// (deliveries are bounded by its permits, so a live client never gets here).
constexpr size_t kMaxPendingOutput = 64 * 1024 * 1024;
// SENDs waiting for the store, per producer; clients bound theirs (Java 1000, pulsar-flex 1000).
constexpr size_t kMaxPendingSends = 10'000;
// Ours: v21 is the newest the spec lists; we answer min(client's, ours).
constexpr int kProtocolVersion = 21;
// Non-persistent topics are kept under their own owner key, apart from the relay's topics (the
// same key the Pulsar WebSocket API uses, so both protocols share them).
constexpr char kNonPersistentOwnerPrefix[] = "non-persistent:";

// The request_id of a command this broker does not implement: field 1 of its sub-message, which
// is where every request-carrying Pulsar command keeps it (transactions, topic watchers, ...).
std::optional<uint64_t> UnknownRequestId(const proto::BaseCommand& c) {
  std::string_view u = c.unknown_fields();
  auto varint = [&u](uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64 && !u.empty(); shift += 7) {
      const auto b = static_cast<uint8_t>(u.front());
      u.remove_prefix(1);
      *v |= uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  };
  uint64_t tag = 0, len = 0;
  if (!varint(&tag) || (tag & 7) != 2 || !varint(&len) || len > u.size()) return std::nullopt;
  u = u.substr(0, len);
  while (!u.empty()) {
    if (!varint(&tag)) return std::nullopt;
    uint64_t v = 0;
    switch (tag & 7) {
      case 0:
        if (!varint(&v)) return std::nullopt;
        if ((tag >> 3) == 1) return v;
        break;
      case 1: if (u.size() < 8) return std::nullopt; u.remove_prefix(8); break;
      case 5: if (u.size() < 4) return std::nullopt; u.remove_prefix(4); break;
      case 2:
        if (!varint(&v) || v > u.size()) return std::nullopt;
        u.remove_prefix(v);
        break;
      default: return std::nullopt;
    }
  }
  return std::nullopt;
}

proto::MessageIdData IdData(MessageId id) {
  proto::MessageIdData d;
  d.set_ledgerid(id.hi);
  d.set_entryid(id.lo);
  return d;
}

MessageId FromIdData(const proto::MessageIdData& d) { return {d.ledgerid(), d.entryid()}; }

// The id just before `id`, so that a cursor "after" it starts at `id` (seek is inclusive).
MessageId Before(MessageId id) {
  if (id.lo > 0) return {id.hi, id.lo - 1};
  if (id.hi > 0) return {id.hi - 1, UINT64_MAX};
  return MessageId::Min();
}

// Java's MessageId.earliest is {-1, -1} and latest {2^63-1, 2^63-1} (spec §5, readers).
bool IsEarliest(const proto::MessageIdData& d) { return d.ledgerid() == UINT64_MAX && d.entryid() == UINT64_MAX; }
bool IsLatest(const proto::MessageIdData& d) {
  return d.ledgerid() == uint64_t{INT64_MAX} && d.entryid() == uint64_t{INT64_MAX};
}

pulsar_ws::SubscriptionType SubType(proto::CommandSubscribe::SubType t) {
  switch (t) {
    case proto::CommandSubscribe::Shared: return pulsar_ws::SubscriptionType::kShared;
    case proto::CommandSubscribe::Failover: return pulsar_ws::SubscriptionType::kFailover;
    case proto::CommandSubscribe::Key_Shared: return pulsar_ws::SubscriptionType::kKeyShared;
    default: return pulsar_ws::SubscriptionType::kExclusive;
  }
}

// Get-or-create of the topic record, so the relay API lists topics first used over Pulsar.
Status EnsureTopic(core::TopicCatalog& topics, const core::TopicKey& key, const std::string& who,
                   const Clock& clock) {
  if (topics.Get(key).ok()) return Status::Ok();
  core::TopicRecord record{NewUuid4(), key.owner, key.name, clock.Now(),
                           "Auto-created topic by " + who};
  Status s = topics.Create(record);
  if (s.code() == StatusCode::kAlreadyExists) return Status::Ok();
  return s;
}

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

Connection::Connection(PulsarService& service, asio::ip::tcp::socket socket)
    : service_(service), socket_(std::move(socket)), keepalive_(socket_.get_executor()) {}

Connection::~Connection() = default;

void Connection::Start() {
  tracker_id_ = service_.deps().tracker.Add(weak_from_this());
  boost::system::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  last_heard_ = std::chrono::steady_clock::now();
  ArmKeepAlive();
  DoRead();
}

void Connection::Shutdown() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->Close("server shutdown"); });
}

void Connection::DoRead() {
  if (closed_) return;
  read_chunk_.resize(kReadChunk);
  socket_.async_read_some(asio::buffer(read_chunk_),
                          [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                            self->OnRead(ec, n);
                          });
}

void Connection::OnRead(boost::system::error_code ec, size_t n) {
  if (closed_) return;
  if (ec) return Close(ec == asio::error::eof ? "client closed" : ec.message());
  last_heard_ = std::chrono::steady_clock::now();
  ping_outstanding_ = false;
  in_.append(read_chunk_.data(), n);
  ProcessInput();
  // Paused, the input stays buffered; the frame limit bounds how much a client can push ahead.
  if (!closed_ && in_.size() <= 2 * (service_.options().max_message_size + kFramePadding)) DoRead();
  else if (!closed_) Close("client sent too much ahead of the replies");
}

void Connection::ProcessInput() {
  // Store work may complete inline (memory engine) and Resume() from inside Handle(): the loop
  // already running picks up from in_pos_, so a nested call has nothing to do.
  if (processing_) return;
  processing_ = true;
  const uint32_t limit = service_.options().max_message_size + kFramePadding;
  while (!paused_ && !closed_) {
    Frame frame;
    ParseResult r = ParseFrame(std::string_view(in_).substr(in_pos_), limit, &frame);
    if (r.status == ParseStatus::kNeedMore) break;
    if (r.status == ParseStatus::kError) {
      Logger("pulsar")->info("closing connection: {}", r.error);
      Close(r.error);
      break;
    }
    in_pos_ += r.consumed;
    Handle(frame);
  }
  in_.erase(0, in_pos_);
  in_pos_ = 0;
  processing_ = false;
}

void Connection::Resume() {
  if (closed_) return;
  paused_ = false;
  ProcessInput();
}

bool Connection::Handle(Frame& frame) {
  const proto::BaseCommand& c = frame.command;
  if (!connected_) {
    if (c.type() == Type::CONNECT && c.has_connect()) {
      HandleConnect(c.connect());
      return !paused_;
    }
    SendError(0, proto::NotAllowedError, "CONNECT must be the first command");
    Close("command before CONNECT");
    return false;
  }
  switch (c.type()) {
    case Type::PING: Send(MakeCommand(Type::PONG)); break;
    case Type::PONG: break;
    case Type::CONNECT: SendError(0, proto::NotAllowedError, "Already connected"); break;
    case Type::LOOKUP: if (c.has_lookuptopic()) HandleLookup(c.lookuptopic()); break;
    case Type::PARTITIONED_METADATA:
      if (c.has_partitionmetadata()) HandlePartitionedMetadata(c.partitionmetadata());
      break;
    case Type::PRODUCER: if (c.has_producer()) HandleProducer(c.producer()); break;
    case Type::SEND: if (c.has_send()) HandleSend(frame); break;
    case Type::CLOSE_PRODUCER: if (c.has_close_producer()) HandleCloseProducer(c.close_producer()); break;
    case Type::SUBSCRIBE: if (c.has_subscribe()) HandleSubscribe(c.subscribe()); break;
    case Type::FLOW: if (c.has_flow()) HandleFlow(c.flow()); break;
    case Type::ACK: if (c.has_ack()) HandleAck(c.ack()); break;
    case Type::REDELIVER_UNACKNOWLEDGED_MESSAGES:
      if (c.has_redeliverunacknowledgedmessages()) HandleRedeliver(c.redeliverunacknowledgedmessages());
      break;
    case Type::CLOSE_CONSUMER: if (c.has_close_consumer()) HandleCloseConsumer(c.close_consumer()); break;
    case Type::UNSUBSCRIBE: if (c.has_unsubscribe()) HandleUnsubscribe(c.unsubscribe()); break;
    case Type::SEEK: if (c.has_seek()) HandleSeek(c.seek()); break;
    case Type::GET_LAST_MESSAGE_ID:
      if (c.has_getlastmessageid()) HandleGetLastMessageId(c.getlastmessageid());
      break;
    case Type::CONSUMER_STATS: if (c.has_consumerstats()) HandleConsumerStats(c.consumerstats()); break;
    case Type::GET_TOPICS_OF_NAMESPACE:
      if (c.has_gettopicsofnamespace()) HandleTopicsOfNamespace(c.gettopicsofnamespace());
      break;
    case Type::GET_SCHEMA: if (c.has_getschema()) HandleGetSchema(c.getschema()); break;
    case Type::GET_OR_CREATE_SCHEMA:
      if (c.has_getorcreateschema()) HandleGetOrCreateSchema(c.getorcreateschema());
      break;
    case Type::AUTH_RESPONSE: break;  // no challenges are sent: nothing to answer
    default: HandleUnknown(c); break;
  }
  return !paused_;
}

// ---- output --------------------------------------------------------------------------------

void Connection::Send(const proto::BaseCommand& command) {
  if (closed_) return;
  if (!AppendCommand(out_, command)) {
    Logger("pulsar")->error("not sending {}: a required field is missing", CommandName(command.type()));
    return;
  }
  Flush();
}

void Connection::SendError(uint64_t request_id, proto::ServerError error, std::string message) {
  Send(MakeError(request_id, error, std::move(message)));
}

void Connection::Flush() {
  if (closed_ || write_in_flight_ || out_.empty()) return;
  if (out_.size() > kMaxPendingOutput) return Close("client is not reading its replies");
  write_in_flight_ = true;
  writing_.swap(out_);
  out_.clear();
  asio::async_write(socket_, asio::buffer(writing_),
                    [self = shared_from_this()](boost::system::error_code ec, size_t) {
                      self->write_in_flight_ = false;
                      self->writing_.clear();
                      if (ec) return self->Close(ec.message());
                      self->Flush();
                    });
}

void Connection::Close(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  Logger("pulsar")->debug("connection closed: {}", why);
  // Let a last ERROR go out when one is queued; the socket closes either way.
  if (!out_.empty() && !write_in_flight_) {
    boost::system::error_code ignored;
    asio::write(socket_, asio::buffer(out_), ignored);
  }
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  keepalive_.cancel();
  for (auto& [id, p] : producers_) ReleaseProducer(p);
  producers_.clear();
  for (auto& [id, c] : consumers_) c.sub->Detach(c.core_id);
  consumers_.clear();
  service_.deps().tracker.Remove(tracker_id_);
}

void Connection::ArmKeepAlive() {
  const auto interval = std::chrono::seconds(std::max(1, service_.options().keepalive_seconds));
  keepalive_.expires_after(interval);
  keepalive_.async_wait([self = shared_from_this(), interval](boost::system::error_code ec) {
    if (ec || self->closed_) return;
    const auto silent = std::chrono::steady_clock::now() - self->last_heard_;
    if (silent >= 2 * interval) return self->Close("keep-alive expired");
    if (silent >= interval && self->connected_ && !self->ping_outstanding_) {
      self->ping_outstanding_ = true;
      self->Send(MakeCommand(Type::PING));
    }
    self->ArmKeepAlive();
  });
}

// ---- connect and discovery -------------------------------------------------------------------

void Connection::HandleConnect(const proto::CommandConnect& c) {
  protocol_version_ = std::min(c.protocol_version(), kProtocolVersion);
  std::string token;
  if (c.has_auth_data() && (c.auth_method_name() == "token" || c.auth_method_name().empty())) {
    token = c.auth_data();
    if (token.rfind("token:", 0) == 0) token.erase(0, 6);  // Java's "token:<jwt>" spelling
  }
  if (token.empty()) {
    SendError(0, proto::AuthenticationError,
              "Authentication required: connect with auth method 'token' and a Magnetar access "
              "token");
    return Close("no token");
  }
  paused_ = true;
  const PulsarDeps& deps = service_.deps();
  RunStoreWork(
      deps, socket_.get_executor(),
      [&deps, token]() { return deps.authenticator.Authenticate(token); },
      [self = shared_from_this()](Result<auth::AuthContext> auth) {
        if (self->closed_) return;
        if (!auth.ok()) {
          const StatusCode code = auth.status().code();
          const bool refused = code == StatusCode::kUnauthenticated || code == StatusCode::kPermissionDenied;
          self->SendError(0, refused ? proto::AuthenticationError : proto::ServiceNotReady,
                          "Failed to authenticate: " + auth.status().message());
          return self->Close("authentication failed");
        }
        self->user_ = std::move(auth->user);
        self->connected_ = true;
        proto::BaseCommand reply = MakeCommand(Type::CONNECTED);
        auto* connected = reply.mutable_connected();
        connected->set_server_version(self->service_.options().server_version);
        connected->set_protocol_version(self->protocol_version_);
        connected->set_max_message_size(static_cast<int32_t>(self->service_.options().max_message_size));
        connected->mutable_feature_flags();  // every flag false: nothing optional is implemented
        self->Send(reply);
        self->Resume();
      });
}

void Connection::HandleLookup(const proto::CommandLookupTopic& c) {
  proto::BaseCommand reply = MakeCommand(Type::LOOKUP_RESPONSE);
  auto* r = reply.mutable_lookuptopicresponse();
  r->set_request_id(c.request_id());
  std::string error;
  if (!ParsePulsarTopic(c.topic(), &error)) {
    r->set_response(proto::CommandLookupTopicResponse::Failed);
    r->set_error(proto::InvalidTopicName);
    r->set_message(error);
  } else {
    // One broker owns every topic: always "connect here".
    r->set_response(proto::CommandLookupTopicResponse::Connect);
    r->set_brokerserviceurl(service_.BrokerUrl());
    r->set_authoritative(true);
    r->set_proxy_through_service_url(false);
  }
  Send(reply);
}

void Connection::HandlePartitionedMetadata(const proto::CommandPartitionedTopicMetadata& c) {
  proto::BaseCommand reply = MakeCommand(Type::PARTITIONED_METADATA_RESPONSE);
  auto* r = reply.mutable_partitionmetadataresponse();
  r->set_request_id(c.request_id());
  std::string error;
  if (!ParsePulsarTopic(c.topic(), &error)) {
    r->set_response(proto::CommandPartitionedTopicMetadataResponse::Failed);
    r->set_error(proto::InvalidTopicName);
    r->set_message(error);
  } else {
    // Topics are not partitioned here (a client may still use `T-partition-i` names directly).
    r->set_response(proto::CommandPartitionedTopicMetadataResponse::Success);
    r->set_partitions(0);
  }
  Send(reply);
}

Connection::Resolved Connection::Resolve(const PulsarTopicName& name,
                                         auth::Permission needed) const {
  Resolved r;
  const auth::User& user = *user_;
  if (!user.Has(needed)) {
    r.error = proto::AuthorizationError;
    r.message = std::string("Permission '") +
                (needed == auth::Permission::kWrite ? "write" : "read") + "' required";
    return r;
  }
  std::string owner;
  if (name.tenant == kPublicTenant || name.tenant == user.username) {
    owner = user.user_id;
  } else if (user.Has(auth::Permission::kAdmin)) {
    auto other = service_.deps().users.GetByUsername(name.tenant);
    if (!other.ok()) {
      r.error = other.status().code() == StatusCode::kNotFound ? proto::TopicNotFound
                                                               : proto::ServiceNotReady;
      r.message = other.status().code() == StatusCode::kNotFound
                      ? "Tenant '" + name.tenant + "' not found"
                      : other.status().message();
      return r;
    }
    owner = other->user_id;
  } else {
    r.error = proto::AuthorizationError;
    r.message = "Not authorized for tenant '" + name.tenant + "'";
    return r;
  }
  if (name.ns != kDefaultNamespace) {
    r.error = proto::TopicNotFound;
    r.message = "Namespace '" + name.tenant + "/" + name.ns + "' not found (only 'default' exists)";
    return r;
  }
  r.topic = core::TopicKey{name.persistent ? owner : kNonPersistentOwnerPrefix + owner, name.local};
  if (name.persistent) {
    if (Status s = EnsureTopic(service_.deps().topics, r.topic, user.username, service_.deps().clock);
        !s.ok()) {
      r.error = proto::PersistenceError;
      r.message = "Failed to create topic: " + s.message();
    }
  }
  return r;
}

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
      reply.mutable_producer_success()->set_last_sequence_id(-1);
      return Send(reply);
    }
    return SendError(request_id, proto::ServiceNotReady, "Producer is being created");
  }
  std::string error;
  auto name = ParsePulsarTopic(c.topic(), &error);
  if (!name) return SendError(request_id, proto::InvalidTopicName, error);
  if (c.encrypted()) return SendError(request_id, proto::NotAllowedError, "Encryption is not supported");
  const bool exclusive = c.producer_access_mode() != proto::Shared;
  const std::string producer_name = c.has_producer_name() && !c.producer_name().empty()
                                        ? c.producer_name()
                                        : "magnetar-" + RandomHex(8);
  std::optional<proto::Schema> schema;
  if (c.has_schema()) schema = c.schema();
  producers_[producer_id] = Producer{};  // reserved while the store answers
  paused_ = true;
  RunStoreWork(
      service_.deps(), socket_.get_executor(),
      [self = shared_from_this(), name = *name] { return self->Resolve(name, auth::Permission::kWrite); },
      [self = shared_from_this(), request_id, producer_id, producer_name, exclusive, schema,
       full = name->FullName()](Resolved r) {
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
        p.ready = true;
        proto::BaseCommand reply = MakeCommand(Type::PRODUCER_SUCCESS);
        auto* ok = reply.mutable_producer_success();
        ok->set_request_id(request_id);
        ok->set_producer_name(producer_name);
        ok->set_last_sequence_id(-1);  // no broker-side de-duplication
        if (schema) {
          StoredSchema stored = self->service_.GetOrCreateSchema(full, *schema);
          std::string version(8, '\0');
          for (int i = 0; i < 8; ++i) version[i] = static_cast<char>(stored.version >> (56 - 8 * i));
          ok->set_schema_version(version);
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
  SendDrafts drafts = DraftsFromSend(frame, p.name);
  if (drafts.drafts.empty()) {
    return CompleteReceipt(producer_id, token, send_error(drafts.error, drafts.message));
  }
  for (auto& d : drafts.drafts) d->topic = p.topic.name;
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
  while (!receipts.empty() && receipts.front().done) {
    Send(receipts.front().reply);
    receipts.pop_front();
  }
}

void Connection::HandleCloseProducer(const proto::CommandCloseProducer& c) {
  if (auto it = producers_.find(c.producer_id()); it != producers_.end()) {
    ReleaseProducer(it->second);
    producers_.erase(it);
  }
  Send(MakeSuccess(c.request_id()));
}

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

void Connection::HandleTopicsOfNamespace(const proto::CommandGetTopicsOfNamespace& c) {
  const uint64_t request_id = c.request_id();
  const std::string& ns = c.namespace_();
  const size_t slash = ns.find('/');
  if (slash == std::string::npos || ns.find('/', slash + 1) != std::string::npos) {
    return SendError(request_id, proto::InvalidTopicName, "Namespace must be <tenant>/<namespace>");
  }
  PulsarTopicName probe;
  probe.tenant = ns.substr(0, slash);
  probe.ns = ns.substr(slash + 1);
  probe.local = "x";
  const bool non_persistent_only = c.mode() == proto::CommandGetTopicsOfNamespace::NON_PERSISTENT;
  paused_ = true;
  struct Listing {
    Resolved resolved;
    std::vector<std::string> names;
  };
  RunStoreWork(
      service_.deps(), socket_.get_executor(),
      [self = shared_from_this(), probe, non_persistent_only] {
        Listing l;
        // Resolving a probe name checks the tenant and namespace without creating anything.
        PulsarTopicName np = probe;
        np.persistent = false;
        l.resolved = self->Resolve(np, auth::Permission::kRead);
        if (l.resolved.error || non_persistent_only) return l;
        auto records = self->service_.deps().topics.ListByOwner(l.resolved.topic.owner.substr(
            std::string_view(kNonPersistentOwnerPrefix).size()));
        if (!records.ok()) {
          l.resolved.error = proto::ServiceNotReady;
          l.resolved.message = records.status().message();
          return l;
        }
        for (const auto& rec : *records) l.names.push_back(rec.name);
        return l;
      },
      [self = shared_from_this(), request_id, probe](Listing l) {
        if (self->closed_) return;
        if (l.resolved.error) {
          self->SendError(request_id, *l.resolved.error, l.resolved.message);
          return self->Resume();
        }
        proto::BaseCommand reply = MakeCommand(Type::GET_TOPICS_OF_NAMESPACE_RESPONSE);
        auto* r = reply.mutable_gettopicsofnamespaceresponse();
        r->set_request_id(request_id);
        for (const auto& n : l.names) {
          PulsarTopicName t = probe;
          t.local = n;
          r->add_topics(t.FullName());
        }
        r->set_filtered(false);
        r->set_changed(true);
        self->Send(reply);
        self->Resume();
      });
}

void Connection::HandleGetSchema(const proto::CommandGetSchema& c) {
  proto::BaseCommand reply = MakeCommand(Type::GET_SCHEMA_RESPONSE);
  auto* r = reply.mutable_getschemaresponse();
  r->set_request_id(c.request_id());
  std::string error;
  auto name = ParsePulsarTopic(c.topic(), &error);
  std::optional<StoredSchema> stored;
  if (name) stored = service_.GetSchema(name->FullName());
  if (!stored) {
    r->set_error_code(proto::TopicNotFound);
    r->set_error_message(name ? "Schema not found" : error);
  } else {
    *r->mutable_schema() = stored->schema;
    std::string version(8, '\0');
    for (int i = 0; i < 8; ++i) version[i] = static_cast<char>(stored->version >> (56 - 8 * i));
    r->set_schema_version(version);
  }
  Send(reply);
}

void Connection::HandleGetOrCreateSchema(const proto::CommandGetOrCreateSchema& c) {
  proto::BaseCommand reply = MakeCommand(Type::GET_OR_CREATE_SCHEMA_RESPONSE);
  auto* r = reply.mutable_getorcreateschemaresponse();
  r->set_request_id(c.request_id());
  std::string error;
  auto name = ParsePulsarTopic(c.topic(), &error);
  if (!name) {
    r->set_error_code(proto::InvalidTopicName);
    r->set_error_message(error);
  } else {
    StoredSchema stored = service_.GetOrCreateSchema(name->FullName(), c.schema());
    std::string version(8, '\0');
    for (int i = 0; i < 8; ++i) version[i] = static_cast<char>(stored.version >> (56 - 8 * i));
    r->set_schema_version(version);
  }
  Send(reply);
}

void Connection::HandleUnknown(const proto::BaseCommand& command) {
  const char* name = CommandName(command.type());
  Logger("pulsar")->debug("unsupported command {} ({})", name, command.type());
  if (auto request_id = UnknownRequestId(command)) {
    SendError(*request_id, proto::NotAllowedError,
              std::string("Command ") + (std::string(name) == "UNKNOWN" ? std::to_string(command.type()) : name) +
                  " is not supported by this broker");
  }
}

}  // namespace magnetar::pulsar
