#pragma once

// The relay encodings of a message. The item shape is one for WebSocket pushes and every poll
// item, catch-up or live (relay correction D6); each message's frame is serialised once.

#include <string>

#include "core/message.h"

namespace magnetar::relay {

// {"type":"message","message_id":…,"topic":…,"payload":{…},"timestamp":…,"metadata":{…}}
// Shared through the message's EncodingCache: computed once per fan-out, whatever the number of
// subscribers.
core::Encoded MessageFrame(const core::MessagePtr& message);

// {"message_id":…,"topic":…,"payload":{…},"timestamp":…,"metadata":{…}} (topic history pages).
void AppendStoredMessage(std::string& out, const core::Message& message);

// The payload as JSON: the stored object for relay messages; bytes from other protocols appear
// as {"encoding":"base64","data":"…"} so a relay client always receives a JSON object.
void AppendPayloadJson(std::string& out, const core::Message& message);

}  // namespace magnetar::relay
