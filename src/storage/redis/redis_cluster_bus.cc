#include "storage/redis/redis_cluster_bus.h"

#include <boost/asio/post.hpp>
#include <functional>
#include <future>

#include "common/log.h"
#include "storage/redis/redis_codec.h"
#include "storage/redis/redis_message_store.h"

namespace magnetar::storage {

namespace asio = boost::asio;

namespace {
constexpr size_t kReadBatch = 512;
}

RedisClusterBus::RedisClusterBus(std::shared_ptr<RedisEngine> engine) : engine_(std::move(engine)) {}

std::unique_ptr<RedisClusterBus> RedisClusterBus::Start(std::shared_ptr<RedisEngine> engine) {
  std::unique_ptr<RedisClusterBus> bus(new RedisClusterBus(engine));
  RedisClusterBus* self = bus.get();
  RedisConnection::Hooks hooks;
  hooks.on_push = [self](RedisReply push) { self->OnPush(push); };
  hooks.on_ready = [self] {
    // A new connection has no subscriptions: subscribe every watched topic again. Each
    // confirmation starts a catch-up read.
    if (self->topics_.empty()) return;
    RedisArgs subscribe{"SUBSCRIBE"};
    for (const auto& entry : self->topics_) subscribe.push_back(redis::Channel(entry.first));
    self->pubsub_->Send(std::move(subscribe), nullptr);
  };
  bus->pubsub_ = std::make_shared<RedisConnection>(engine->io(), engine->endpoint(), "pubsub",
                                                   std::vector<RedisArgs>{}, std::move(hooks),
                                                   engine->tls());
  // Commands failed while the command connection was down (a read's reply lost): read again.
  engine->OnCommandsReady([self, alive = bus->alive_] {
    if (*alive) self->ReadAll();
  });
  bus->pubsub_->Start();
  return bus;
}

RedisClusterBus::~RedisClusterBus() { Stop(); }

void RedisClusterBus::Stop() {
  if (!pubsub_ || stop_requested_.exchange(true)) return;
  // On the io thread, so that no delivery runs after Stop() returns: stop the pub/sub connection
  // there, then wait for a handler queued behind its own stop.
  auto shutdown = [this](std::function<void()> then) {
    stopped_ = true;
    *alive_ = false;
    topics_.clear();
    pubsub_->Stop();
    asio::post(engine_->io(), std::move(then));
  };
  if (engine_->OnIoThread()) {
    shutdown([] {});
  } else {
    auto done = std::make_shared<std::promise<void>>();
    auto future = done->get_future();
    asio::post(engine_->io(), [shutdown, done] { shutdown([done] { done->set_value(); }); });
    // A stopped engine runs nothing any more, and then nothing can be delivered either.
    if (future.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
      Logger("storage")->warn("redis bus: the io thread did not answer the stop");
    }
  }
}

void RedisClusterBus::Watch(const core::TopicKey& topic, MessageId after, Delivery deliver) {
  asio::post(engine_->io(), [this, tag = redis::Tag(topic), after,
                             deliver = std::move(deliver)]() mutable {
    if (stopped_) return;
    Topic& t = topics_[tag];
    t.generation = ++next_generation_;
    t.cursor = after;
    t.deliver = std::move(deliver);
    t.reading = false;
    t.again = false;
    pubsub_->Send({"SUBSCRIBE", redis::Channel(tag)}, nullptr);
    ReadTopic(tag);
  });
}

void RedisClusterBus::Unwatch(const core::TopicKey& topic) {
  asio::post(engine_->io(), [this, tag = redis::Tag(topic)] {
    if (stopped_ || topics_.erase(tag) == 0) return;
    pubsub_->Send({"UNSUBSCRIBE", redis::Channel(tag)}, nullptr);
  });
}

void RedisClusterBus::OnPush(const RedisReply& push) {
  if (stopped_ || push.type != RedisReply::Type::kArray || push.elements.size() < 3) return;
  const std::string& kind = push.elements[0].str;
  // "message" is a notification; "subscribe" confirms a subscription, after which every append
  // notifies us, so one read now closes the window before it.
  if (kind != "message" && kind != "subscribe") return;
  const std::string tag = redis::TagOfChannel(push.elements[1].str);
  auto it = topics_.find(tag);
  if (it == topics_.end()) return;
  if (kind == "message") {
    // The notification names the append's last id: nothing to read when we are past it.
    auto last = MessageId::Parse(push.elements[2].str);
    if (last && *last <= it->second.cursor) return;
  }
  ReadTopic(tag);
}

void RedisClusterBus::ReadAll() {
  for (const auto& entry : topics_) ReadTopic(entry.first);
}

void RedisClusterBus::ReadTopic(const std::string& tag) {
  auto it = topics_.find(tag);
  if (it == topics_.end() || stopped_) return;
  Topic& t = it->second;
  if (t.reading) {
    t.again = true;
    return;
  }
  t.reading = true;
  t.again = false;
  const std::string from = t.cursor == MessageId::Min() ? "-" : "(" + t.cursor.ToString();
  engine_->Send({"XRANGE", redis::LogKey(tag), from, "+", "COUNT", std::to_string(kReadBatch)},
                [this, alive = alive_, tag, generation = t.generation](Result<RedisReply> reply) {
                  if (!*alive) return;  // the bus stopped (and may be gone)
                  auto it = topics_.find(tag);
                  if (stopped_ || it == topics_.end() || it->second.generation != generation) {
                    return;  // unwatched (or watched again) meanwhile
                  }
                  Topic& t = it->second;
                  t.reading = false;
                  if (!reply.ok()) return;  // the command connection's return reads again
                  auto messages = DecodeStreamEntries(*reply);
                  if (!messages.ok()) {
                    Logger("storage")->error("redis bus: reading {} failed: {}", tag,
                                             messages.status().message());
                    return;
                  }
                  const bool full = messages->size() == kReadBatch;
                  if (!messages->empty()) {
                    t.cursor = messages->back()->id;
                    // Delivery may not call back into the bus synchronously (it only posts).
                    t.deliver(std::move(*messages));
                  }
                  if (full || t.again) ReadTopic(tag);
                });
}

}  // namespace magnetar::storage
