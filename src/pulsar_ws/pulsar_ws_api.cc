#include "pulsar_ws/pulsar_ws_api.h"

#include "common/log.h"
#include "common/random.h"
#include "core/topic_name.h"
#include "pulsar_ws/codec.h"
#include "pulsar_ws/sessions.h"

namespace magnetar::pulsar_ws {

namespace {

// Non-persistent topics live under their own owner key, apart from the relay's topics.
constexpr char kNonPersistentOwnerPrefix[] = "non-persistent:";

http::Response Refusal(unsigned status, std::string text) {
  return http::Response::Text(status, std::move(text));
}

// What admission decided: the response to refuse with, or what the session needs.
struct Admission {
  std::optional<http::Response> refusal;
  core::TopicKey topic;
  std::string producer_name;
  bool generated_name = false;
  std::optional<uint64_t> last_sequence;  // the broker's de-duplication mark for producer_name
  SubscriptionRegistry::Attached attached;
};

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

// "persistent://alice/default/x", "alice/default/x" or a bare name, in the caller's tenant.
std::string DeadLetterName(const std::string& param, const TopicPath& path) {
  if (param.empty()) return path.topic + "-" + path.subscription + "-DLQ";
  std::string_view name = param;
  if (auto scheme = name.find("://"); scheme != std::string_view::npos) name.remove_prefix(scheme + 3);
  if (auto slash = name.rfind('/'); slash != std::string_view::npos) name.remove_prefix(slash + 1);
  return std::string(name);
}

// The Authorization header wins; `token` stands in for it (browsers cannot set headers).
std::string TokenOf(const http::RequestContext& ctx) {
  if (auto bearer = auth::ParseBearer(ctx.Header(boost::beast::http::field::authorization))) {
    return std::string(*bearer);
  }
  if (auto q = ctx.Query("token")) {
    std::string_view t = *q;
    if (t.size() > 7 && (t.substr(0, 7) == "Bearer " || t.substr(0, 7) == "bearer ")) t.remove_prefix(7);
    return std::string(t);
  }
  return {};
}

}  // namespace

bool ProducerNames::TryAcquire(const core::TopicKey& topic, const std::string& name) {
  std::lock_guard lock(mutex_);
  return live_.emplace(topic.owner, topic.name, name).second;
}

void ProducerNames::Release(const core::TopicKey& topic, const std::string& name) {
  std::lock_guard lock(mutex_);
  live_.erase({topic.owner, topic.name, name});
}

PulsarWsApi::PulsarWsApi(PulsarWsDeps deps, PulsarWsOptions options)
    : deps_(deps),
      options_(std::move(options)),
      producer_names_(std::make_shared<ProducerNames>()),
      subscriptions_(std::make_unique<SubscriptionRegistry>(
          StoreEnv{deps_.broker, deps_.cursors, deps_.blocking, deps_.clock})) {}

PulsarWsApi::~PulsarWsApi() = default;

void PulsarWsApi::Register(http::HttpService& service) {
  service.AddUpgradePrefix("/ws/v2/", [this](const http::RequestContextPtr& ctx,
                                             net::AnyStream stream) {
    HandleUpgrade(ctx, std::move(stream));
  });
}

void PulsarWsApi::HandlePingPong(const http::RequestContextPtr& ctx, net::AnyStream stream) {
  const std::string token = TokenOf(*ctx);
  if (token.empty()) return ws::RejectUpgrade(std::move(stream), Refusal(401, "Failed to authenticate"));
  auto stream_holder = std::make_shared<net::AnyStream>(std::move(stream));
  auto work = [this, token]() -> std::optional<http::Response> {
    auto auth = deps_.authenticator.Authenticate(token);
    if (auth.ok()) return std::nullopt;
    const StatusCode code = auth.status().code();
    return code == StatusCode::kUnauthenticated || code == StatusCode::kPermissionDenied
               ? Refusal(401, "Failed to authenticate")
               : Refusal(500, "Failed to authenticate: " + auth.status().message());
  };
  auto then = [this, ctx, stream_holder](std::optional<http::Response> refusal) {
    if (refusal) return ws::RejectUpgrade(std::move(*stream_holder), std::move(*refusal));
    auto conn = ws::WsConnection::Create(std::move(*stream_holder), deps_.tracker, options_.ws);
    conn->Accept(std::move(ctx->request), "", std::make_shared<PingPongSession>());
  };
  RunStoreWork(deps_, ctx->executor, std::move(work), std::move(then));
}

void PulsarWsApi::HandleUpgrade(const http::RequestContextPtr& ctx,
                                net::AnyStream stream) {
  if (ctx->path == kPingPongPath) return HandlePingPong(ctx, std::move(stream));
  // 1. Everything that needs no storage: path, parameters, token presence (spec §8.1).
  std::string error;
  auto path = ParseTopicPath(std::string_view(ctx->request.target()), &error);
  if (!path) return ws::RejectUpgrade(std::move(stream), Refusal(400, "Invalid query params: " + error));
  if (auto bad = core::ValidateTopicName(path->topic)) {
    return ws::RejectUpgrade(std::move(stream), Refusal(400, "Invalid query params: " + *bad));
  }
  if (path->role == Role::kConsumer && path->subscription.size() > 255) {
    return ws::RejectUpgrade(std::move(stream), Refusal(400, "Invalid query params: subscription name too long"));
  }
  std::optional<ProducerParams> producer;
  std::optional<ConsumerParams> consumer;
  std::optional<ReaderParams> reader;
  switch (path->role) {
    case Role::kProducer: producer = ParseProducerParams(ctx->query, &error); break;
    case Role::kConsumer: consumer = ParseConsumerParams(ctx->query, &error); break;
    case Role::kReader: {
      bool bad_id = false;
      reader = ParseReaderParams(ctx->query, &error, &bad_id);
      if (!reader && bad_id) return ws::RejectUpgrade(std::move(stream), Refusal(500, error));
      break;
    }
  }
  if (!producer && !consumer && !reader) {
    return ws::RejectUpgrade(std::move(stream), Refusal(400, "Invalid query params: " + error));
  }
  const std::string token = TokenOf(*ctx);
  if (token.empty()) return ws::RejectUpgrade(std::move(stream), Refusal(401, "Failed to authenticate"));

  // 2. What reads storage (users, deny-list, topic records, cursors), off the I/O thread.
  auto stream_holder = std::make_shared<net::AnyStream>(std::move(stream));
  auto executor = ctx->executor;
  auto work = [this, path = *path, token, producer, consumer, executor]() -> Admission {
    Admission a;
    auto auth = deps_.authenticator.Authenticate(token);
    if (!auth.ok()) {
      const StatusCode code = auth.status().code();
      a.refusal = code == StatusCode::kUnauthenticated || code == StatusCode::kPermissionDenied
                      ? Refusal(401, "Failed to authenticate")
                      : Refusal(500, "Failed to authenticate: " + auth.status().message());
      return a;
    }
    const auth::User& user = auth->user;
    const auth::Permission needed =
        path.role == Role::kProducer ? auth::Permission::kWrite : auth::Permission::kRead;
    if (!user.Has(needed)) {
      a.refusal = Refusal(403, "Not authorized");
      return a;
    }
    std::string owner;
    if (path.tenant == user.username) {
      owner = user.user_id;
    } else if (user.Has(auth::Permission::kAdmin)) {
      auto other = deps_.users.GetByUsername(path.tenant);
      if (!other.ok()) {
        a.refusal = other.status().code() == StatusCode::kNotFound
                        ? Refusal(404, "Tenant not found")
                        : Refusal(500, other.status().message());
        return a;
      }
      owner = other->user_id;
    } else {
      a.refusal = Refusal(403, "Not authorized");
      return a;
    }
    if (path.ns != "default") {
      a.refusal = Refusal(404, "Namespace not found");
      return a;
    }
    a.topic = core::TopicKey{path.persistent ? owner : kNonPersistentOwnerPrefix + owner, path.topic};
    if (path.persistent) {
      if (Status s = EnsureTopic(deps_.topics, a.topic, user.username, deps_.clock); !s.ok()) {
        a.refusal = Refusal(500, "Failed to create topic: " + s.message());
        return a;
      }
    }
    if (producer) {
      a.generated_name = producer->producer_name.empty();
      a.producer_name = a.generated_name ? "magnetar-" + RandomHex(8) : producer->producer_name;
      if (!producer_names_->TryAcquire(a.topic, a.producer_name)) {
        a.refusal = Refusal(409, "Producer with name '" + a.producer_name + "' is already connected");
        return a;
      }
      // Here, off the I/O thread: the first look at a topic may read its newest messages.
      if (!a.generated_name) a.last_sequence = deps_.broker.LastSequence(a.topic, a.producer_name);
      return a;
    }
    if (consumer) {
      ConsumerSpec spec;
      spec.name = consumer->consumer_name.empty() ? "consumer-" + RandomHex(6) : consumer->consumer_name;
      spec.priority = consumer->priority_level;
      spec.pull_mode = consumer->pull_mode;
      spec.window = std::max(consumer->receiver_queue_size, 1);
      spec.nack_delay_micros = int64_t{consumer->negative_ack_redelivery_delay_millis} * 1000;
      spec.ack_timeout_micros = consumer->ack_timeout_millis * 1000;
      spec.max_redeliver_count = consumer->max_redeliver_count;
      spec.dead_letter_topic = {a.topic.owner, DeadLetterName(consumer->dead_letter_topic, path)};
      auto attached = subscriptions_->Attach(a.topic, path.subscription, consumer->type,
                                             consumer->durable, std::move(spec), executor);
      if (!attached.ok()) {
        a.refusal = attached.status().code() == StatusCode::kAlreadyExists
                        ? Refusal(409, attached.status().message())
                        : Refusal(500, "Failed to subscribe: " + attached.status().message());
        return a;
      }
      a.attached = std::move(attached).value();
    }
    return a;
  };
  auto then = [this, ctx, stream_holder, producer, reader](Admission a) mutable {
    if (a.refusal) return ws::RejectUpgrade(std::move(*stream_holder), std::move(*a.refusal));
    auto conn = ws::WsConnection::Create(std::move(*stream_holder), deps_.tracker, options_.ws);
    std::shared_ptr<ws::WsHandler> session;
    if (producer) {
      session = std::make_shared<ProducerSession>(deps_, producer_names_, a.topic,
                                                  a.producer_name, a.generated_name,
                                                  a.last_sequence, *producer);
    } else if (reader) {
      session = std::make_shared<ReaderSession>(deps_, a.topic, *reader);
    } else {
      session = std::make_shared<ConsumerSession>(a.attached.subscription, a.attached.consumer);
    }
    conn->Accept(std::move(ctx->request), "", std::move(session));
  };
  RunStoreWork(deps_, executor, std::move(work), std::move(then));
}

}  // namespace magnetar::pulsar_ws
