#include "storage/redis/redis_record_stores.h"

#include <algorithm>
#include <charconv>

#include "storage/redis/redis_codec.h"

namespace magnetar::storage {
namespace {

// The reply of a call, or the Status explaining why there is none (transport or error reply).
Result<RedisReply> Checked(Result<RedisReply> reply) {
  if (!reply.ok()) return reply;
  if (reply->is_error()) return ReplyError(*reply);
  return reply;
}

Status UserIdNotFound(const std::string& user_id) {
  return NotFound("User with ID '" + user_id + "' not found");
}

}  // namespace

// --- topic catalog ---

Status RedisTopicCatalog::Create(const core::TopicRecord& record) {
  auto replies = engine_->CallMany(
      {{"HSETNX", redis::CatalogKey(record.owner_id), record.name,
        redis::EncodeTopicRecord(record)},
       {"SADD", redis::kCatalogOwnersKey, record.owner_id}});
  auto created = Checked(std::move(replies[0]));
  if (!created.ok()) return created.status();
  if (created->integer == 0) {
    return AlreadyExists("Topic '" + record.name + "' already exists");
  }
  return Checked(std::move(replies[1])).status();
}

Result<core::TopicRecord> RedisTopicCatalog::Get(const core::TopicKey& key) {
  auto reply = Checked(engine_->Call({"HGET", redis::CatalogKey(key.owner), key.name}));
  if (!reply.ok()) return reply.status();
  if (reply->is_nil()) return NotFound("Topic '" + key.name + "' not found");
  core::TopicRecord record;
  if (!redis::DecodeTopicRecord(reply->str, record)) return Internal("malformed topic record");
  return record;
}

Result<std::vector<core::TopicRecord>> RedisTopicCatalog::ListByOwner(const std::string& owner_id) {
  auto reply = Checked(engine_->Call({"HVALS", redis::CatalogKey(owner_id)}));
  if (!reply.ok()) return reply.status();
  std::vector<core::TopicRecord> out;
  out.reserve(reply->elements.size());
  for (const auto& value : reply->elements) {
    core::TopicRecord record;
    if (!redis::DecodeTopicRecord(value.str, record)) return Internal("malformed topic record");
    out.push_back(std::move(record));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

Status RedisTopicCatalog::Update(const core::TopicRecord& record) {
  auto reply = Checked(engine_->Call(RedisEngine::Eval(
      redis::HashUpdateScript(), {redis::CatalogKey(record.owner_id)},
      {record.name, redis::EncodeTopicRecord(record)})));
  if (!reply.ok()) return reply.status();
  if (reply->integer == 0) return NotFound("Topic '" + record.name + "' not found");
  return Status::Ok();
}

Status RedisTopicCatalog::Delete(const core::TopicKey& key) {
  auto reply = Checked(engine_->Call({"HDEL", redis::CatalogKey(key.owner), key.name}));
  if (!reply.ok()) return reply.status();
  if (reply->integer == 0) return NotFound("Topic '" + key.name + "' not found");
  return Status::Ok();
}

Result<uint64_t> RedisTopicCatalog::Count() {
  auto owners = Checked(engine_->Call({"SMEMBERS", redis::kCatalogOwnersKey}));
  if (!owners.ok()) return owners.status();
  std::vector<RedisArgs> commands;
  for (const auto& owner : owners->elements) {
    commands.push_back({"HLEN", redis::CatalogKey(owner.str)});
  }
  uint64_t total = 0;
  for (auto& reply : engine_->CallMany(std::move(commands))) {
    auto checked = Checked(std::move(reply));
    if (!checked.ok()) return checked.status();
    total += static_cast<uint64_t>(checked->integer);
  }
  return total;
}

// --- kv ---

Result<bool> RedisKvStore::Write(const char* mode, const std::string& key,
                                 const std::string& value, UnixMicros expires_at,
                                 const std::string& expected) {
  const UnixMicros now = engine_->clock().Now();
  // Redis drops the key a second after it expired by our clock (reads check the exact time).
  int64_t pexpire_ms = 0;
  if (expires_at != 0) pexpire_ms = std::max<int64_t>(1, (expires_at - now) / 1000) + 1000;
  auto reply = Checked(engine_->Call(RedisEngine::Eval(
      redis::KvWriteScript(), {redis::KvKey(key)},
      {std::to_string(now), value, std::to_string(expires_at), std::to_string(pexpire_ms), mode,
       expected})));
  if (!reply.ok()) return reply.status();
  return reply->integer == 1;
}

Result<bool> RedisKvStore::PutIfAbsent(const std::string& key, const std::string& value,
                                       UnixMicros expires_at) {
  return Write("nx", key, value, expires_at, "");
}

Status RedisKvStore::Put(const std::string& key, const std::string& value,
                         UnixMicros expires_at) {
  return Write("put", key, value, expires_at, "").status();
}

Result<bool> RedisKvStore::CompareAndSet(const std::string& key, const std::string& expected,
                                         const std::string& value, UnixMicros expires_at) {
  return Write("cas", key, value, expires_at, expected);
}

namespace {

RedisArgs KvGetCommand(const std::string& key) { return {"HMGET", redis::KvKey(key), "e", "v"}; }

// The value of a KV record from its KvGetCommand reply; nullopt when absent or expired at `now`.
Result<std::optional<std::string>> KvValueOf(Result<RedisReply> reply, const std::string& key,
                                             UnixMicros now) {
  reply = Checked(std::move(reply));
  if (!reply.ok()) return reply.status();
  if (reply->elements.size() != 2 || reply->elements[0].is_nil()) {
    return std::optional<std::string>();
  }
  int64_t expires_at = 0;
  const std::string& e = reply->elements[0].str;
  if (std::from_chars(e.data(), e.data() + e.size(), expires_at).ec != std::errc()) {
    return Internal("malformed expiry in " + redis::KvKey(key));
  }
  if (expires_at != 0 && expires_at <= now) return std::optional<std::string>();
  return std::optional<std::string>(std::move(reply->elements[1].str));
}

RedisArgs UserGetCommand(const std::string& user_id) {
  return {"HGET", redis::kUsersByIdKey, user_id};
}

// The user from its UserGetCommand reply; nullopt when there is none.
Result<std::optional<auth::User>> UserOf(Result<RedisReply> reply) {
  reply = Checked(std::move(reply));
  if (!reply.ok()) return reply.status();
  if (reply->is_nil()) return std::optional<auth::User>();
  auth::User user;
  if (!redis::DecodeUser(reply->str, user)) return Internal("malformed user record");
  return std::optional<auth::User>(std::move(user));
}

}  // namespace

Result<std::optional<std::string>> RedisKvStore::Get(const std::string& key) {
  return KvValueOf(engine_->Call(KvGetCommand(key)), key, engine_->clock().Now());
}

Status RedisKvStore::Delete(const std::string& key) {
  return Checked(engine_->Call({"DEL", redis::KvKey(key)})).status();
}

// --- users ---

Status RedisUserStore::Create(const auth::User& user) {
  auto reply = Checked(engine_->Call(
      RedisEngine::Eval(redis::UserCreateScript(), {redis::kUsersByIdKey, redis::kUsersByNameKey},
                        {user.user_id, user.username, redis::EncodeUser(user)})));
  if (!reply.ok()) return reply.status();
  if (reply->integer == 1) return AlreadyExists("Username '" + user.username + "' already exists");
  if (reply->integer == 2) {
    return AlreadyExists("User with ID '" + user.user_id + "' already exists");
  }
  return Status::Ok();
}

Result<auth::User> RedisUserStore::GetById(const std::string& user_id) {
  auto user = UserOf(engine_->Call(UserGetCommand(user_id)));
  if (!user.ok()) return user.status();
  if (!*user) return UserIdNotFound(user_id);
  return **std::move(user);
}

Result<auth::TokenRecords::Read> RedisTokenRecords::ReadBoth(const std::string& deny_key,
                                                             const std::string& user_id) {
  Read read;
  if (deny_key.empty()) {
    auto user = UserOf(engine_->Call(UserGetCommand(user_id)));
    if (!user.ok()) return user.status();
    read.user = *std::move(user);
    return read;
  }
  // Two keys in two hash slots: pipelined, not one multi-key command (Redis Cluster-ready).
  auto replies = engine_->CallMany({KvGetCommand(deny_key), UserGetCommand(user_id)});
  auto record = KvValueOf(std::move(replies[0]), deny_key, engine_->clock().Now());
  if (!record.ok()) return record.status();
  auto user = UserOf(std::move(replies[1]));
  if (!user.ok()) return user.status();
  read.revoked = record->has_value();
  read.user = *std::move(user);
  return read;
}

Result<auth::User> RedisUserStore::GetByUsername(const std::string& username) {
  auto id = Checked(engine_->Call({"HGET", redis::kUsersByNameKey, username}));
  if (!id.ok()) return id.status();
  if (id->is_nil()) return NotFound("User '" + username + "' not found");
  auto user = GetById(id->str);
  if (!user.ok() && user.status().code() == StatusCode::kNotFound) {
    return NotFound("User '" + username + "' not found");  // deleted in between
  }
  return user;
}

Result<std::vector<auth::User>> RedisUserStore::List() {
  auto reply = Checked(engine_->Call({"HVALS", redis::kUsersByIdKey}));
  if (!reply.ok()) return reply.status();
  std::vector<auth::User> users;
  users.reserve(reply->elements.size());
  for (const auto& value : reply->elements) {
    auth::User user;
    if (!redis::DecodeUser(value.str, user)) return Internal("malformed user record");
    users.push_back(std::move(user));
  }
  std::sort(users.begin(), users.end(), [](const auth::User& a, const auth::User& b) {
    return a.created_at != b.created_at ? a.created_at < b.created_at : a.user_id < b.user_id;
  });
  return users;
}

Status RedisUserStore::Update(const auth::User& user) {
  auto stored = GetById(user.user_id);
  if (!stored.ok()) return stored.status();
  auth::User updated = user;
  updated.username = stored->username;  // usernames never change
  auto reply = Checked(engine_->Call(RedisEngine::Eval(
      redis::HashUpdateScript(), {redis::kUsersByIdKey},
      {user.user_id, redis::EncodeUser(updated)})));
  if (!reply.ok()) return reply.status();
  if (reply->integer == 0) return UserIdNotFound(user.user_id);
  return Status::Ok();
}

Status RedisUserStore::Delete(const std::string& user_id) {
  auto stored = GetById(user_id);
  if (!stored.ok()) return stored.status();
  auto reply = Checked(engine_->Call(
      RedisEngine::Eval(redis::UserDeleteScript(), {redis::kUsersByIdKey, redis::kUsersByNameKey},
                        {user_id, stored->username})));
  if (!reply.ok()) return reply.status();
  if (reply->integer == 0) return UserIdNotFound(user_id);
  return Status::Ok();
}

// --- cursors ---

Status RedisCursorStore::Save(const core::TopicKey& topic, const std::string& subscription,
                              const core::CursorState& state) {
  return Checked(engine_->Call({"HSET", redis::CursorsKey(redis::Tag(topic)), subscription,
                                redis::EncodeCursor(state)}))
      .status();
}

Result<core::CursorState> RedisCursorStore::Load(const core::TopicKey& topic,
                                                 const std::string& subscription) {
  auto reply =
      Checked(engine_->Call({"HGET", redis::CursorsKey(redis::Tag(topic)), subscription}));
  if (!reply.ok()) return reply.status();
  if (reply->is_nil()) return NotFound("no cursor for subscription '" + subscription + "'");
  core::CursorState state;
  if (!redis::DecodeCursor(reply->str, state)) return Internal("malformed cursor record");
  return state;
}

Status RedisCursorStore::Delete(const core::TopicKey& topic, const std::string& subscription) {
  return Checked(engine_->Call({"HDEL", redis::CursorsKey(redis::Tag(topic)), subscription}))
      .status();
}

}  // namespace magnetar::storage
