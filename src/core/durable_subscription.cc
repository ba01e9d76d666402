#include "core/durable_subscription.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace magnetar::core {
namespace {

// The ids just before and after `id` in (hi, lo) order, for reading one exact id. Saturating.
MessageId Predecessor(MessageId id) {
  if (id.lo > 0) return {id.hi, id.lo - 1};
  if (id.hi > 0) return {id.hi - 1, UINT64_MAX};
  return id;
}

MessageId Successor(MessageId id) {
  if (id.lo < UINT64_MAX) return {id.hi, id.lo + 1};
  if (id.hi < UINT64_MAX) return {id.hi + 1, 0};
  return id;
}

}  // namespace

DurableSubscription::DurableSubscription(MessageStore& store, TopicKey topic, std::string name,
                                         CursorState start)
    : store_(store),
      topic_(std::move(topic)),
      name_(std::move(name)),
      mark_delete_(start.mark_delete),
      read_position_(start.mark_delete) {
  for (const MessageId& id : start.individually_acked) {
    if (id > mark_delete_) acked_.insert(id);
  }
}

Result<MessagePtr> DurableSubscription::ReadOne(MessageId id) {
  if (id == MessageId::Min() || id == MessageId::Max()) return MessagePtr();
  ReadRequest request;
  request.after = Predecessor(id);
  request.before = Successor(id);
  request.limit = 1;
  auto read = store_.Read(topic_, request);
  if (!read.ok()) return read.status();
  if (read->messages.empty() || read->messages.front()->id != id) return MessagePtr();
  return read->messages.front();
}

Result<std::vector<DeliveredMessage>> DurableSubscription::Next(size_t max, UnixMicros now) {
  std::vector<DeliveredMessage> out;
  if (max == 0) return out;

  // Look everything up first and change state only at the end, so a store error changes nothing.
  std::vector<MessageId> gone;  // due for redelivery but trimmed or expired meanwhile
  std::vector<bool> first_delivery;  // per entry of `out`: a delayed message, now due
  for (const auto& [id, pending] : pending_) {
    if (out.size() == max) break;
    if (pending.due_at > now) continue;
    auto message = ReadOne(id);
    if (!message.ok()) return message.status();
    if (*message == nullptr) {
      gone.push_back(id);
    } else {
      out.push_back({std::move(*message), pending.delayed ? 0u : pending.redelivery_count + 1});
      first_delivery.push_back(pending.delayed);
    }
  }
  const size_t redelivered = out.size();
  std::vector<std::pair<MessageId, UnixMicros>> delayed;  // read now, due later

  MessageId position = read_position_;
  // Delayed messages read past do not count against `max`, but are bounded per call: a caller
  // that gets nothing back while read_position() moved should call again.
  while (out.size() < max && delayed.size() < kMaxDelayedPerNext) {
    ReadRequest request;
    request.after = position;
    request.limit = max - out.size();
    auto read = store_.Read(topic_, request);
    if (!read.ok()) return read.status();
    for (auto& message : read->messages) {
      position = message->id;
      // Acked ahead of delivery (or restored from a snapshot): skip.
      if (acked_.contains(message->id) || pending_.contains(message->id)) continue;
      if (message->DelayedAt(now)) {
        delayed.emplace_back(message->id, message->deliver_at);
        continue;
      }
      out.push_back({std::move(message), 0});
    }
    if (!read->has_more || read->messages.empty()) break;
  }

  for (const MessageId& id : gone) pending_.erase(id);
  for (size_t i = 0; i < out.size(); ++i) {
    Pending& pending = pending_[out[i].message->id];
    if (i < redelivered && !first_delivery[i]) ++pending.redelivery_count;
    pending.delivered_at = now;
    pending.due_at = kNotDue;
    pending.delayed = false;
  }
  for (const auto& [id, deliver_at] : delayed) {
    Pending& pending = pending_[id];
    pending.delayed = true;
    pending.due_at = deliver_at;
  }
  read_position_ = position;
  return out;
}

Status DurableSubscription::Ack(MessageId id) {
  if (id <= mark_delete_ || acked_.contains(id)) return Status::Ok();
  if (pending_.erase(id) == 0) {
    // Not delivered: record it only if it is a live message, so that a made-up id can never move
    // the mark-delete past messages that do not exist yet.
    auto message = ReadOne(id);
    if (!message.ok()) return message.status();
    if (*message == nullptr) return Status::Ok();
  }
  acked_.insert(id);
  return AdvanceMarkDelete();
}

Status DurableSubscription::AckCumulative(MessageId id) {
  if (id <= mark_delete_) return Status::Ok();
  if (id > read_position_) {
    // Everything up to the read position has been read from the store; beyond it, only a live
    // message is a safe place to move the mark-delete to.
    auto message = ReadOne(id);
    if (!message.ok()) return message.status();
    if (*message == nullptr) return Status::Ok();
    read_position_ = id;
  }
  mark_delete_ = id;
  pending_.erase(pending_.begin(), pending_.upper_bound(id));
  acked_.erase(acked_.begin(), acked_.upper_bound(id));
  return AdvanceMarkDelete();
}

Status DurableSubscription::AdvanceMarkDelete() {
  while (!acked_.empty()) {
    const MessageId next = *acked_.begin();
    // Nothing in (mark_delete_, next) is acked; if nothing there is live either, it is contiguous.
    ReadRequest request;
    request.after = mark_delete_;
    request.before = next;
    request.limit = 1;
    auto read = store_.Read(topic_, request);
    if (!read.ok()) return read.status();
    if (!read->messages.empty()) break;
    // In-flight messages in the gap were trimmed or expired: they can never be acked or resent.
    pending_.erase(pending_.begin(), pending_.lower_bound(next));
    mark_delete_ = next;
    acked_.erase(acked_.begin());
  }
  read_position_ = std::max(read_position_, mark_delete_);
  return Status::Ok();
}

void DurableSubscription::NegativeAck(MessageId id, UnixMicros redeliver_at) {
  auto it = pending_.find(id);
  // A delayed message was never delivered: there is nothing to redeliver earlier.
  if (it != pending_.end() && !it->second.delayed) it->second.due_at = redeliver_at;
}

void DurableSubscription::RedeliverUnacked() {
  for (auto& [id, pending] : pending_) {
    if (!pending.delayed) pending.due_at = std::numeric_limits<UnixMicros>::min();
  }
}

void DurableSubscription::ExpireAckTimeouts(UnixMicros now, int64_t ack_timeout_micros) {
  if (ack_timeout_micros <= 0) return;
  for (auto& [id, pending] : pending_) {
    if (pending.due_at == kNotDue && now - pending.delivered_at >= ack_timeout_micros) {
      pending.due_at = now;
    }
  }
}

void DurableSubscription::Seek(MessageId after) {
  mark_delete_ = after;
  read_position_ = after;
  acked_.clear();
  pending_.clear();
}

std::optional<UnixMicros> DurableSubscription::NextRedeliveryTime() const {
  std::optional<UnixMicros> earliest;
  for (const auto& [id, pending] : pending_) {
    if (pending.due_at != kNotDue && (!earliest || pending.due_at < *earliest)) {
      earliest = pending.due_at;
    }
  }
  return earliest;
}

CursorState DurableSubscription::Snapshot() const {
  return CursorState{mark_delete_, std::vector<MessageId>(acked_.begin(), acked_.end())};
}

}  // namespace magnetar::core
