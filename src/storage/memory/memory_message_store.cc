#include "storage/memory/memory_message_store.h"

#include <algorithm>

namespace magnetar::storage {

using core::MessagePtr;

MemoryMessageStore::MemoryMessageStore(const Clock& clock) : clock_(clock) {}

std::shared_ptr<MemoryMessageStore::TopicLog> MemoryMessageStore::Find(
    const core::TopicKey& topic) const {
  std::shared_lock lock(mutex_);
  auto it = topics_.find(topic);
  return it == topics_.end() ? nullptr : it->second;
}

std::shared_ptr<MemoryMessageStore::TopicLog> MemoryMessageStore::FindOrCreate(
    const core::TopicKey& topic) {
  if (auto log = Find(topic)) return log;
  std::unique_lock lock(mutex_);
  auto& slot = topics_[topic];
  if (!slot) slot = std::make_shared<TopicLog>();
  return slot;
}

core::RetentionPolicy MemoryMessageStore::PolicyOf(const TopicLog& log) const {
  if (log.policy) return *log.policy;
  std::shared_lock lock(mutex_);
  return default_policy_;
}

void MemoryMessageStore::Enforce(TopicLog& log, UnixMicros now) const {
  const core::RetentionPolicy policy = PolicyOf(log);
  auto drop_front = [&] {
    log.bytes -= log.messages.front()->ByteSize();
    log.messages.pop_front();
  };
  while (!log.messages.empty()) {
    const auto& front = *log.messages.front();
    const bool over_count =
        policy.max_messages != 0 && log.messages.size() > policy.max_messages;
    const bool over_bytes = policy.max_bytes != 0 && log.bytes > policy.max_bytes;
    const bool too_old =
        policy.max_age_micros != 0 && front.publish_time + policy.max_age_micros <= now;
    if (!(over_count || over_bytes || too_old || front.ExpiredAt(now))) break;
    drop_front();
  }
}

void MemoryMessageStore::Append(const core::TopicKey& topic, std::vector<core::DraftPtr> drafts,
                                core::AppendCallback done) {
  auto log = FindOrCreate(topic);
  std::vector<MessagePtr> stored;
  stored.reserve(drafts.size());
  {
    std::lock_guard lock(log->mutex);
    const UnixMicros now = clock_.Now();
    const uint64_t now_ms = static_cast<uint64_t>(now / 1000);
    for (auto& draft : drafts) {
      MessageId id;
      if (now_ms > log->last_id.hi) {
        id = {now_ms, 0};
      } else {
        id = {log->last_id.hi, log->last_id.lo + 1};
      }
      draft->id = id;
      draft->publish_time = now;
      log->last_id = id;
      log->bytes += draft->ByteSize();
      if (draft->expires_at != 0 &&
          (log->earliest_expiry == 0 || draft->expires_at < log->earliest_expiry)) {
        log->earliest_expiry = draft->expires_at;
      }
      log->messages.push_back(draft);
      stored.push_back(std::move(draft));
    }
    Enforce(*log, now);
  }
  done(std::move(stored));
}

Result<core::ReadResult> MemoryMessageStore::Read(const core::TopicKey& topic,
                                                  const core::ReadRequest& request) {
  core::ReadResult result;
  auto log = Find(topic);
  if (!log || request.limit == 0) return result;
  const UnixMicros now = clock_.Now();
  std::lock_guard lock(log->mutex);
  const auto& msgs = log->messages;
  auto by_id = [](const MessagePtr& m, const MessageId& id) { return m->id < id; };
  // [first, last) = ids in the open interval (after, before).
  auto first = std::lower_bound(msgs.begin(), msgs.end(), request.after, by_id);
  if (first != msgs.end() && (*first)->id == request.after) ++first;
  auto last = std::lower_bound(first, msgs.end(), request.before, by_id);
  auto take = [&](const MessagePtr& m) {
    if (m->ExpiredAt(now)) return true;
    if (result.messages.size() == request.limit) {
      result.has_more = true;
      return false;
    }
    result.messages.push_back(m);
    return true;
  };
  if (request.descending) {
    for (auto it = last; it != first;) {
      if (!take(*--it)) break;
    }
  } else {
    for (auto it = first; it != last; ++it) {
      if (!take(*it)) break;
    }
  }
  return result;
}

Result<core::TopicStats> MemoryMessageStore::Stats(const core::TopicKey& topic) {
  core::TopicStats stats;
  auto log = Find(topic);
  if (!log) return stats;
  std::lock_guard lock(log->mutex);
  stats.message_count = log->messages.size();
  stats.byte_count = log->bytes;
  stats.last_id = log->last_id;
  if (!log->messages.empty()) stats.first_id = log->messages.front()->id;
  return stats;
}

Status MemoryMessageStore::DeleteTopic(const core::TopicKey& topic) {
  auto log = Find(topic);
  if (!log) return Status::Ok();
  std::lock_guard lock(log->mutex);
  log->messages.clear();
  log->bytes = 0;
  log->policy.reset();
  return Status::Ok();
}

void MemoryMessageStore::SetDefaultRetention(const core::RetentionPolicy& policy) {
  std::unique_lock lock(mutex_);
  default_policy_ = policy;
}

void MemoryMessageStore::SetRetention(const core::TopicKey& topic,
                                      const core::RetentionPolicy& policy) {
  auto log = FindOrCreate(topic);
  std::lock_guard lock(log->mutex);
  log->policy = policy;
  Enforce(*log, clock_.Now());
}

void MemoryMessageStore::Sweep(UnixMicros now) {
  std::vector<std::shared_ptr<TopicLog>> logs;
  {
    std::shared_lock lock(mutex_);
    logs.reserve(topics_.size());
    for (const auto& [key, log] : topics_) logs.push_back(log);
  }
  for (auto& log : logs) {
    std::lock_guard lock(log->mutex);
    Enforce(*log, now);
    if (log->earliest_expiry == 0 || log->earliest_expiry > now) continue;  // nothing due yet
    // Messages with a TTL may expire out of order: drop any expired one, wherever it is.
    auto expired = [now](const MessagePtr& m) { return m->ExpiredAt(now); };
    if (std::any_of(log->messages.begin(), log->messages.end(), expired)) {
      for (const auto& m : log->messages) {
        if (expired(m)) log->bytes -= m->ByteSize();
      }
      std::erase_if(log->messages, expired);
    }
    log->earliest_expiry = 0;
    for (const auto& m : log->messages) {
      if (m->expires_at != 0 && (log->earliest_expiry == 0 || m->expires_at < log->earliest_expiry)) {
        log->earliest_expiry = m->expires_at;
      }
    }
  }
}

}  // namespace magnetar::storage
