#include "pulsar/connection.h"

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>

#include "common/log.h"
#include "common/random.h"
#include "pulsar/message_codec.h"
#include "pulsar/connection_internal.h"
#include "pulsar/pulsar_service.h"
#include "pulsar/tenants.h"

namespace magnetar::pulsar {

namespace asio = boost::asio;
using Type = proto::BaseCommand;
using namespace internal;  // NOLINT: the module's own helpers

namespace {

constexpr size_t kReadChunk = 64 * 1024;
// Replies and deliveries waiting for the socket beyond this mean the client stopped reading
// (deliveries are bounded by its permits, so a live client never gets here).
constexpr size_t kMaxPendingOutput = 64 * 1024 * 1024;
// Ours: v21 is the newest the spec lists; we answer min(client's, ours).
constexpr int kProtocolVersion = 21;

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


}  // namespace

Connection::Connection(PulsarService& service, asio::ip::tcp::socket socket,
                       asio::ssl::context* tls)
    : service_(service),
      socket_(std::move(socket)),
      keepalive_(socket_.get_executor()),
      auth_timer_(socket_.get_executor()) {
  if (tls) tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_, *tls);
}

Connection::~Connection() = default;

void Connection::Start() {
  tracker_id_ = service_.deps().tracker.Add(weak_from_this());
  boost::system::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  last_heard_ = std::chrono::steady_clock::now();
  if (tls_) return StartTls();
  ArmKeepAlive();
  DoRead();
}

void Connection::StartTls() {
  // The handshake timer is auth_timer_: no token expiry is armed before CONNECT.
  auth_timer_.expires_after(std::chrono::seconds(std::max(1, service_.options().tls_handshake_seconds)));
  auth_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec && !self->closed_) self->Close("TLS handshake timed out");
  });
  tls_->async_handshake(asio::ssl::stream_base::server,
                        [self = shared_from_this()](boost::system::error_code ec) {
                          if (self->closed_) return;
                          self->auth_timer_.cancel();
                          if (ec) {
                            Logger("pulsar")->debug("TLS handshake failed: {}", ec.message());
                            return self->Close("TLS handshake failed");
                          }
                          self->last_heard_ = std::chrono::steady_clock::now();
                          self->ArmKeepAlive();
                          self->DoRead();
                        });
}

void Connection::Shutdown() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->Close("server shutdown"); });
}

void Connection::DoRead() {
  if (closed_) return;
  read_chunk_.resize(kReadChunk);
  auto on_read = [self = shared_from_this()](boost::system::error_code ec, size_t n) {
    self->OnRead(ec, n);
  };
  if (tls_) return tls_->async_read_some(asio::buffer(read_chunk_), std::move(on_read));
  socket_.async_read_some(asio::buffer(read_chunk_), std::move(on_read));
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

void Connection::Handle(Frame& frame) {
  const proto::BaseCommand& c = frame.command;
  if (!connected_) {
    if (c.type() == Type::CONNECT && c.has_connect()) {
      return HandleConnect(c.connect());
    }
    SendError(0, proto::NotAllowedError, "CONNECT must be the first command");
    return Close("command before CONNECT");
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
    case Type::AUTH_RESPONSE: if (c.has_authresponse()) HandleAuthResponse(c.authresponse()); break;
    default: HandleUnknown(c); break;
  }
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
  auto on_written = [self = shared_from_this()](boost::system::error_code ec, size_t) {
    self->write_in_flight_ = false;
    self->writing_.clear();
    if (ec) return self->Close(ec.message());
    self->Flush();
  };
  if (tls_) return asio::async_write(*tls_, asio::buffer(writing_), std::move(on_written));
  asio::async_write(socket_, asio::buffer(writing_), std::move(on_written));
}

void Connection::Close(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  Logger("pulsar")->debug("connection closed: {}", why);
  boost::system::error_code ignored;
  // Let a last ERROR (auth failure, protocol error) go out: one non-blocking attempt, which a
  // small frame on a fresh socket buffer always fits; never wait for a client that is not reading.
  if (!out_.empty() && !write_in_flight_) {
    socket_.non_blocking(true, ignored);
    if (tls_) {
      tls_->write_some(asio::buffer(out_), ignored);
    } else {
      socket_.write_some(asio::buffer(out_), ignored);
    }
  }
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  keepalive_.cancel();
  auth_timer_.cancel();
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

// ---- token expiry and refresh ------------------------------------------------------------------

void Connection::ArmTokenExpiry() {
  if (token_exp_ <= 0 || closed_) return;
  const int64_t now_micros = service_.deps().clock.Now();
  const int64_t left = std::max<int64_t>(token_exp_ * 1'000'000 - now_micros, 0);
  auth_timer_.expires_after(std::chrono::microseconds(left));
  auth_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->OnTokenExpired();
  });
}

void Connection::OnTokenExpired() {
  if (closed_) return;
  if (challenge_outstanding_) {  // asked, and no valid answer within the keep-alive interval
    SendError(0, proto::AuthenticationError, "Token expired and was not refreshed");
    return Close("token refresh timed out");
  }
  if (!supports_auth_refresh_) {
    SendError(0, proto::AuthenticationError, "Token expired: reconnect with a fresh token");
    return Close("token expired");
  }
  challenge_outstanding_ = true;
  proto::BaseCommand challenge = MakeCommand(Type::AUTH_CHALLENGE);
  auto* c = challenge.mutable_authchallenge();
  c->set_server_version(service_.options().server_version);
  c->set_protocol_version(protocol_version_);
  c->mutable_challenge()->set_auth_method_name("token");
  c->mutable_challenge()->set_auth_data("refresh");
  Send(challenge);
  auth_timer_.expires_after(std::chrono::seconds(std::max(1, service_.options().keepalive_seconds)));
  auth_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->OnTokenExpired();
  });
}

void Connection::HandleAuthResponse(const proto::CommandAuthResponse& c) {
  if (!challenge_outstanding_) return;  // unsolicited: nothing was asked
  std::string token = c.response().auth_data();
  if (token.rfind("token:", 0) == 0) token.erase(0, 6);
  // Later commands wait: their tenant checks read user_, which the answer replaces.
  paused_ = true;
  const PulsarDeps& deps = service_.deps();
  RunStoreWork(
      deps, socket_.get_executor(),
      [&deps, token]() { return deps.authenticator.Authenticate(token); },
      [self = shared_from_this()](Result<auth::AuthContext> auth) {
        if (self->closed_) return;
        if (!auth.ok() || auth->user.user_id != self->user_->user_id) {
          self->SendError(0, proto::AuthenticationError,
                          auth.ok() ? "Refreshed token is for another user"
                                    : "Token refresh failed: " + auth.status().message());
          return self->Close("token refresh refused");
        }
        // Permissions may have changed since CONNECT: later commands use the new ones.
        self->user_ = std::move(auth->user);
        self->token_exp_ = auth->claims.exp;
        self->challenge_outstanding_ = false;
        self->ArmTokenExpiry();
        self->Resume();
      });
}

// ---- connect and discovery -------------------------------------------------------------------

void Connection::HandleConnect(const proto::CommandConnect& c) {
  protocol_version_ = std::min(c.protocol_version(), kProtocolVersion);
  supports_auth_refresh_ = c.has_feature_flags() && c.feature_flags().supports_auth_refresh();
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
        self->token_exp_ = auth->claims.exp;
        self->connected_ = true;
        self->ArmTokenExpiry();
        proto::BaseCommand reply = MakeCommand(Type::CONNECTED);
        auto* connected = reply.mutable_connected();
        connected->set_server_version(self->service_.options().server_version);
        connected->set_protocol_version(self->protocol_version_);
        connected->set_max_message_size(static_cast<int32_t>(self->service_.options().max_message_size));
        // Token refresh is the only optional feature implemented.
        connected->mutable_feature_flags()->set_supports_auth_refresh(true);
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
    // With TLS, both (as Java's broker): a client on pulsar+ssl:// takes the TLS one. Without a
    // plain listener the TLS URL is the only one (clients that read only brokerServiceUrl).
    const std::string plain_url = service_.BrokerUrl();
    const std::string tls_url = service_.BrokerUrlTls();
    r->set_brokerserviceurl(plain_url.empty() ? tls_url : plain_url);
    if (!tls_url.empty()) r->set_brokerserviceurltls(tls_url);
    r->set_authoritative(true);
    r->set_proxy_through_service_url(false);
  }
  Send(reply);
}

void Connection::HandlePartitionedMetadata(const proto::CommandPartitionedTopicMetadata& c) {
  const uint64_t request_id = c.request_id();
  auto fail = [this, request_id](proto::ServerError error, const std::string& message) {
    proto::BaseCommand reply = MakeCommand(Type::PARTITIONED_METADATA_RESPONSE);
    auto* r = reply.mutable_partitionmetadataresponse();
    r->set_request_id(request_id);
    r->set_response(proto::CommandPartitionedTopicMetadataResponse::Failed);
    r->set_error(error);
    r->set_message(message);
    Send(reply);
  };
  std::string error;
  auto name = ParsePulsarTopic(c.topic(), &error);
  if (!name) return fail(proto::InvalidTopicName, error);
  struct Answer {
    std::optional<proto::ServerError> error;
    std::string message;
    uint32_t partitions = 0;
  };
  const bool may_create = !c.has_metadata_auto_creation_enabled() || c.metadata_auto_creation_enabled();
  paused_ = true;
  RunStoreWork(
      service_.deps(), socket_.get_executor(),
      [self = shared_from_this(), name = *name, may_create] {
        Answer a;
        TopicResolution where =
            ResolveTopic(self->service_.deps().users, *self->user_, name, std::nullopt);
        if (where.error) {
          a.error = where.error;
          a.message = std::move(where.message);
          return a;
        }
        // Non-persistent topics and the partitions themselves are never partitioned.
        if (!name.persistent || PartitionIndex(name.local, nullptr)) return a;
        auto record = self->service_.deps().topics.Get(where.topic);
        if (record.ok()) {
          a.partitions = record->partitions;
          return a;
        }
        if (record.status().code() != StatusCode::kNotFound) {
          a.error = proto::ServiceNotReady;
          a.message = record.status().message();
          return a;
        }
        // A new topic: created partitioned when the server says so (allowAutoTopicCreationType
        // = partitioned), else it stays unknown until a producer or consumer uses it.
        const uint32_t n = self->service_.options().default_partitions;
        if (n == 0 || !may_create) return a;
        core::TopicRecord created{NewUuid4(), where.topic.owner, where.topic.name,
                                  self->service_.deps().clock.Now(),
                                  "Auto-created partitioned topic by " + self->user_->username, n};
        Status st = self->service_.deps().topics.Create(created);
        if (st.code() == StatusCode::kAlreadyExists) {
          auto again = self->service_.deps().topics.Get(where.topic);
          if (again.ok()) a.partitions = again->partitions;
          return a;
        }
        if (!st.ok()) {
          a.error = proto::PersistenceError;
          a.message = "Failed to create topic: " + st.message();
          return a;
        }
        a.partitions = n;
        return a;
      },
      [self = shared_from_this(), request_id](Answer a) {
        if (self->closed_) return;
        proto::BaseCommand reply = MakeCommand(Type::PARTITIONED_METADATA_RESPONSE);
        auto* r = reply.mutable_partitionmetadataresponse();
        r->set_request_id(request_id);
        if (a.error) {
          r->set_response(proto::CommandPartitionedTopicMetadataResponse::Failed);
          r->set_error(*a.error);
          r->set_message(a.message);
        } else {
          r->set_response(proto::CommandPartitionedTopicMetadataResponse::Success);
          r->set_partitions(a.partitions);
        }
        self->Send(reply);
        self->Resume();
      });
}

Connection::Resolved Connection::Resolve(const PulsarTopicName& name,
                                         auth::Permission needed) const {
  Resolved r;
  TopicResolution where = ResolveTopic(service_.deps().users, *user_, name, needed);
  r.error = where.error;
  r.message = std::move(where.message);
  r.topic = std::move(where.topic);
  if (r.error) return r;
  if (name.persistent) {
    if (Status s = EnsureTopic(service_.deps().topics, r.topic, user_->username, service_.deps().clock);
        !s.ok()) {
      r.error = proto::PersistenceError;
      r.message = "Failed to create topic: " + s.message();
    }
  }
  return r;
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
