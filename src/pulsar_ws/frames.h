#pragma once

// JSON frames of the Pulsar WebSocket API (spec §3.2-§3.3, §4.2-§4.3): the consumer/reader message
// frame (serialised once per message and shared), producer receipts, and the parse of a publish.

#include <optional>
#include <string>
#include <string_view>

#include "common/json_string.h"
#include "core/durable_subscription.h"
#include "core/message.h"

namespace magnetar::pulsar_ws {

// Where a producer's eventTime is kept among the message properties (not shown to Pulsar
// consumers, who get it as `eventTime`).
inline constexpr char kEventTimeProperty[] = "__pulsar_event_time";

// {"messageId":…,"payload":…,"properties":{…},"publishTime":…[,"eventTime"][,"key"],"redeliveryCount":N}
std::string ConsumerFrame(const core::MessagePtr& message, uint32_t redelivery_count);

std::string ReceiptOk(MessageId id, const std::optional<std::string>& context);
std::string ReceiptError(int code, std::string_view message, const std::optional<std::string>& context);

// A publish frame turned into a draft, or the receipt error (`code` 3 or 7).
struct PublishParse {
  core::DraftPtr draft;  // null on error
  std::optional<std::string> context;
  int error_code = 0;
  std::string error_message;
  int64_t deliver_at_millis = 0;  // 0 = now
  // `sequenceId`, when the frame gives one (>= 0): the producer's own sequence id for this
  // message, for de-duplication of a re-sent message. Else the session numbers messages itself.
  std::optional<uint64_t> sequence_id;
};
PublishParse ParsePublishFrame(std::string_view text, int64_t now_millis);

}  // namespace magnetar::pulsar_ws
