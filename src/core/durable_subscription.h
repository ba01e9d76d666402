#pragma once

// DurableSubscription: the ack state of one named, durable subscription on one topic (a Pulsar
// subscription, an eFTL durable). It reads messages from the MessageStore and keeps only ids of
// the messages in flight, never their payloads.
//
// Model (Pulsar's managed cursor):
//   * mark-delete: every id <= mark_delete() is acknowledged.
//   * individually acked: ids above the mark-delete that were acked out of order. The mark-delete
//     advances over them as soon as no live, unacked message lies in between; messages trimmed by
//     retention or expired by TTL are not live, so gaps in the (sparse) ids never block it.
//   * read position: the highest id handed out as a new message. Next() reads after it.
//   * pending: delivered and not yet acked. A pending message becomes "due" for redelivery after a
//     negative ack whose delay passed, an ack timeout, or RedeliverUnacked(); Next() hands due ones
//     out again, in id order, before new messages, with their redelivery count incremented.
//
//   * delayed: a message read with Message::deliver_at still in the future is not handed out; it
//     becomes pending at once (so the mark-delete waits for it) and due at deliver_at, when Next()
//     hands it out for the first time (redelivery count 0). Acking it before then is allowed.
//
// Only mark-delete and the individually acked ids are durable (Snapshot()). A subscription rebuilt
// from a snapshot starts reading again at the mark-delete: every unacked message is delivered
// again (redelivery count back to 0), no acked one is.
//
// Acks: acking an id at or below the mark-delete, or twice, succeeds and changes nothing (clients
// repeat acks). An id that is neither pending nor a live message of the topic (never existed,
// trimmed before it was delivered) is ignored and the call succeeds, as Pulsar does. A live
// message acked before it was delivered is recorded and will not be delivered.
//
// Threading: not thread-safe; owned by one executor. Calls that touch the store (Next, Ack,
// AckCumulative) read it synchronously, so when store.blocking() the owner must call them where
// blocking is allowed. The store must outlive the subscription.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/message_id.h"
#include "common/status.h"
#include "core/message.h"
#include "core/message_store.h"

namespace magnetar::core {

struct DeliveredMessage {
  MessagePtr message;
  uint32_t redelivery_count = 0;  // 0 on first delivery
};

// What a store persists for a durable subscription.
struct CursorState {
  MessageId mark_delete;                     // everything <= it is acked
  std::vector<MessageId> individually_acked;  // ascending, all > mark_delete

  bool operator==(const CursorState&) const = default;
};

class DurableSubscription {
 public:
  // `start` is the persisted state, or {} (mark-delete Min(): from the beginning) for a new one;
  // a new subscription starting at "latest" passes the topic's last id as mark_delete.
  DurableSubscription(MessageStore& store, TopicKey topic, std::string name, CursorState start);
  DurableSubscription(const DurableSubscription&) = delete;
  DurableSubscription& operator=(const DurableSubscription&) = delete;

  const TopicKey& topic() const { return topic_; }
  const std::string& name() const { return name_; }

  // Up to `max` messages to hand out next: first the redeliveries that are due at `now`, in id
  // order, with their redelivery_count incremented (0 for a delayed message's first delivery);
  // then new messages after the read position (delayed ones become pending instead, see above;
  // when only such were read, the result is empty and read_position() moved: call again).
  // Every returned message becomes pending (delivered at `now`). Acked, expired and trimmed
  // messages are skipped; a due message that is gone is dropped from pending. On a store error
  // nothing changes.
  Result<std::vector<DeliveredMessage>> Next(size_t max, UnixMicros now);

  // Individual ack; the mark-delete then advances over the contiguous acked prefix.
  Status Ack(MessageId id);
  // Acks everything <= id. An id past the read position must be a live message (else ignored).
  Status AckCumulative(MessageId id);

  // The pending message `id` becomes due at `redeliver_at`. Ignored if `id` is not pending.
  void NegativeAck(MessageId id, UnixMicros redeliver_at);
  // Every pending message becomes due now (Pulsar's redeliver without ids, eFTL reattach).
  void RedeliverUnacked();
  // Pending messages delivered at or before now - ack_timeout_micros, and not already scheduled
  // for redelivery, become due. A timeout <= 0 means "no ack timeout" and does nothing.
  void ExpireAckTimeouts(UnixMicros now, int64_t ack_timeout_micros);

  // Resets the cursor to `after` (Pulsar seek): every id <= after counts as acked, every id above
  // it as unacked and undelivered. Pending entries and individual acks are cleared.
  void Seek(MessageId after);

  MessageId mark_delete() const { return mark_delete_; }
  MessageId read_position() const { return read_position_; }
  // Delivered and not acked, including those waiting for redelivery.
  size_t pending_count() const { return pending_.size(); }
  // The earliest time a pending message is due for redelivery or for its delayed first delivery,
  // for the owner's timer (a time in the past means some are due already); nullopt when none is
  // scheduled.
  std::optional<UnixMicros> NextRedeliveryTime() const;

  CursorState Snapshot() const;

 private:
  static constexpr UnixMicros kNotDue = INT64_MAX;
  static constexpr size_t kMaxDelayedPerNext = 4096;

  struct Pending {
    uint32_t redelivery_count = 0;
    UnixMicros delivered_at = 0;
    UnixMicros due_at = kNotDue;  // when to redeliver; kNotDue while waiting for an ack
    bool delayed = false;         // not delivered yet: due_at is its deliver_at
  };

  // The live message with this exact id, or nullptr when it is gone or never existed.
  Result<MessagePtr> ReadOne(MessageId id);
  // Moves mark_delete_ over acked ids while nothing live and unacked lies in between.
  Status AdvanceMarkDelete();

  MessageStore& store_;
  const TopicKey topic_;
  const std::string name_;
  MessageId mark_delete_;
  MessageId read_position_;         // >= mark_delete_
  std::set<MessageId> acked_;       // individually acked, all > mark_delete_
  std::map<MessageId, Pending> pending_;  // all > mark_delete_ and <= read_position_
};

}  // namespace magnetar::core
