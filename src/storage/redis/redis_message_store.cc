#include "storage/redis/redis_message_store.h"

#include <algorithm>
#include <charconv>

#include "common/log.h"
#include "storage/redis/redis_codec.h"

namespace magnetar::storage {

using core::MessagePtr;

namespace {

bool ParseInt(std::string_view text, int64_t& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

std::vector<std::string> LogKeys(const std::string& tag) {
  return {redis::LogKey(tag), redis::MetaKey(tag), redis::TtlKey(tag)};
}

std::vector<std::string> PolicyArgs(UnixMicros now, const core::RetentionPolicy& p) {
  return {std::to_string(now), std::to_string(p.max_messages), std::to_string(p.max_bytes),
          std::to_string(p.max_age_micros)};
}

}  // namespace

Result<std::vector<MessagePtr>> DecodeStreamEntries(const RedisReply& reply) {
  if (reply.is_error()) return ReplyError(reply);
  if (reply.type != RedisReply::Type::kArray) return Internal("unexpected reply to XRANGE");
  std::vector<MessagePtr> out;
  out.reserve(reply.elements.size());
  for (const RedisReply& entry : reply.elements) {
    if (entry.elements.size() != 2) return Internal("malformed stream entry");
    auto id = MessageId::Parse(entry.elements[0].str);
    if (!id) return Internal("malformed stream entry id");
    auto m = std::make_shared<core::Message>();
    m->id = *id;
    const auto& fields = entry.elements[1].elements;
    bool have_body = false;
    for (size_t i = 0; i + 1 < fields.size(); i += 2) {
      const std::string& name = fields[i].str;
      const std::string& value = fields[i + 1].str;
      if (name == "t") {
        if (!ParseInt(value, m->publish_time)) return Internal("malformed publish time");
      } else if (name == "x") {
        if (!ParseInt(value, m->expires_at)) return Internal("malformed expiry");
      } else if (name == "d") {
        if (!redis::DecodeMessageBody(value, *m)) return Internal("malformed message body");
        have_body = true;
      }
    }
    if (!have_body) return Internal("stream entry without a body");
    out.push_back(std::move(m));
  }
  return out;
}

RedisMessageStore::RedisMessageStore(std::shared_ptr<RedisEngine> engine)
    : engine_(std::move(engine)) {}

core::RetentionPolicy RedisMessageStore::DefaultPolicy() const {
  std::lock_guard lock(mutex_);
  return default_policy_;
}

void RedisMessageStore::Register(const std::string& tag) {
  {
    std::lock_guard lock(mutex_);
    if (!registered_.insert(tag).second) return;
  }
  engine_->Send({"SADD", redis::kTopicsKey, tag}, nullptr);
}

void RedisMessageStore::Append(const core::TopicKey& topic, std::vector<core::DraftPtr> drafts,
                               core::AppendCallback done) {
  if (drafts.empty()) {
    done(std::vector<MessagePtr>{});
    return;
  }
  const std::string tag = redis::Tag(topic);
  Register(tag);
  const UnixMicros now = engine_->clock().Now();
  std::vector<std::string> args = PolicyArgs(now, DefaultPolicy());
  args.push_back(redis::Channel(tag));
  args.reserve(args.size() + 3 * drafts.size());
  for (const auto& d : drafts) {
    args.push_back(std::to_string(d->ByteSize()));
    args.push_back(std::to_string(d->expires_at));
    args.push_back(redis::EncodeMessageBody(*d));
  }
  RedisArgs command = RedisEngine::Eval(redis::AppendScript(), LogKeys(tag), std::move(args));
  engine_->Send(std::move(command), [engine = engine_.get(), drafts = std::move(drafts), now,
                                     done = std::move(done)](Result<RedisReply> reply) mutable {
    Result<std::vector<MessagePtr>> result = std::vector<MessagePtr>{};
    if (!reply.ok()) {
      result = reply.status();
    } else if (reply->is_error()) {
      result = ReplyError(*reply);
    } else if (reply->elements.size() != drafts.size()) {
      result = Internal("the append script returned " + std::to_string(reply->elements.size()) +
                        " ids for " + std::to_string(drafts.size()) + " messages");
    } else {
      std::vector<MessagePtr> stored;
      stored.reserve(drafts.size());
      for (size_t i = 0; i < drafts.size(); ++i) {
        auto id = MessageId::Parse(reply->elements[i].str);
        if (!id) {
          result = Internal("the append script returned a malformed id");
          break;
        }
        drafts[i]->id = *id;
        drafts[i]->publish_time = now;
        stored.push_back(std::move(drafts[i]));
      }
      if (stored.size() == drafts.size()) result = std::move(stored);
    }
    engine->Complete([done = std::move(done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
  });
}

Result<core::ReadResult> RedisMessageStore::Read(const core::TopicKey& topic,
                                                 const core::ReadRequest& request) {
  core::ReadResult result;
  if (request.limit == 0 || request.after == MessageId::Max() ||
      request.before == MessageId::Min() || !(request.after < request.before)) {
    return result;
  }
  const std::string log = redis::LogKey(redis::Tag(topic));
  const UnixMicros now = engine_->clock().Now();
  std::string lower = request.after == MessageId::Min() ? "-" : "(" + request.after.ToString();
  std::string upper = request.before == MessageId::Max() ? "+" : "(" + request.before.ToString();
  for (;;) {
    // One more than the caller wants tells has_more; expired entries make us read on.
    const size_t wanted = request.limit + 1 - result.messages.size();
    const size_t batch = std::clamp<size_t>(wanted, 16, 1000);
    RedisArgs command = request.descending
                            ? RedisArgs{"XREVRANGE", log, upper, lower, "COUNT", std::to_string(batch)}
                            : RedisArgs{"XRANGE", log, lower, upper, "COUNT", std::to_string(batch)};
    auto reply = engine_->Call(std::move(command));
    if (!reply.ok()) return reply.status();
    auto entries = DecodeStreamEntries(*reply);
    if (!entries.ok()) return entries.status();
    for (auto& m : *entries) {
      if (m->ExpiredAt(now)) continue;
      if (result.messages.size() == request.limit) {
        result.has_more = true;
        return result;
      }
      result.messages.push_back(std::move(m));
    }
    if (entries->size() < batch) return result;
    const std::string last = "(" + entries->back()->id.ToString();
    (request.descending ? upper : lower) = last;
  }
}

Result<core::TopicStats> RedisMessageStore::Stats(const core::TopicKey& topic) {
  const std::string tag = redis::Tag(topic);
  auto reply = engine_->Call(RedisEngine::Eval(redis::StatsScript(),
                                               {redis::LogKey(tag), redis::MetaKey(tag)}, {}));
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return ReplyError(*reply);
  if (reply->elements.size() != 4) return Internal("unexpected reply to the stats script");
  core::TopicStats stats;
  stats.message_count = static_cast<uint64_t>(reply->elements[0].integer);
  if (const std::string& last = reply->elements[1].str; !last.empty()) {
    auto id = MessageId::Parse(last);
    if (!id) return Internal("malformed last id in " + redis::MetaKey(tag));
    stats.last_id = *id;
  }
  int64_t bytes = 0;
  if (ParseInt(reply->elements[2].str, bytes) && bytes > 0) {
    stats.byte_count = static_cast<uint64_t>(bytes);
  }
  if (const std::string& first = reply->elements[3].str; !first.empty()) {
    stats.first_id = MessageId::Parse(first).value_or(MessageId::Min());
  }
  return stats;
}

Status RedisMessageStore::DeleteTopic(const core::TopicKey& topic) {
  auto reply = engine_->Call(RedisEngine::Eval(redis::DeleteTopicScript(),
                                               LogKeys(redis::Tag(topic)), {}));
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return ReplyError(*reply);
  return Status::Ok();
}

void RedisMessageStore::SetDefaultRetention(const core::RetentionPolicy& policy) {
  std::lock_guard lock(mutex_);
  default_policy_ = policy;
}

void RedisMessageStore::SetRetention(const core::TopicKey& topic,
                                     const core::RetentionPolicy& policy) {
  const std::string tag = redis::Tag(topic);
  Register(tag);
  auto reply = engine_->Call(RedisEngine::Eval(redis::SetRetentionScript(), LogKeys(tag),
                                               PolicyArgs(engine_->clock().Now(), policy)));
  if (!reply.ok() || reply->is_error()) {
    Logger("storage")->warn("redis: setting the retention of {} failed: {}", topic.ToString(),
                            reply.ok() ? reply->str : reply.status().message());
  }
}

void RedisMessageStore::Sweep(UnixMicros now) {
  auto members = engine_->Call({"SMEMBERS", redis::kTopicsKey});
  if (!members.ok() || members->is_error()) return;  // Redis down: Health() says so already
  const std::vector<std::string> policy = PolicyArgs(now, DefaultPolicy());
  constexpr size_t kChunk = 256;
  const auto& tags = members->elements;
  for (size_t begin = 0; begin < tags.size(); begin += kChunk) {
    std::vector<RedisArgs> commands;
    for (size_t i = begin; i < std::min(tags.size(), begin + kChunk); ++i) {
      commands.push_back(RedisEngine::Eval(redis::SweepScript(), LogKeys(tags[i].str), policy));
    }
    for (const auto& reply : engine_->CallMany(std::move(commands))) {
      if (!reply.ok()) return;
      if (reply->is_error()) {
        Logger("storage")->warn("redis: sweep failed: {}", reply->str);
        return;
      }
    }
  }
}

}  // namespace magnetar::storage
