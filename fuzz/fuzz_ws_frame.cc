// Fuzzes the relay WebSocket protocol without a socket: the input is a sequence of client text
// frames (separated by '\n'). Each goes through ParseClientFrame — the decision RelayWsSession's
// OnText acts on — with the session's state (subscribed or not, the topic set) carried along as
// the session keeps it, and the frames the server would answer with are built and checked.

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "common/time_format.h"
#include "core/topic_name.h"
#include "fuzz_check.h"
#include "relay/json_util.h"
#include "relay/ws_frames.h"

namespace magnetar::relay {
namespace {

using magnetar::fuzz::IsJson;
using Kind = ClientFrame::Kind;

std::string ErrorFrame(std::string_view code, std::string_view message) {
  std::string out = R"({"type":"error","code":)";
  AppendJsonString(out, code);
  out += R"(,"message":)";
  AppendJsonString(out, message);
  out += R"(,"details":null})";
  return out;
}

struct Session {
  bool subscribed = false;
  bool closed = false;
  std::set<std::string> topics;

  void OnText(std::string_view text) {
    const bool first = !subscribed;
    ClientFrame frame = ParseClientFrame(text, subscribed);
    switch (frame.kind) {
      case Kind::kInvalid:
        FUZZ_CHECK(!frame.error_code.empty() && !frame.error_message.empty());
        FUZZ_CHECK(IsJson(ErrorFrame(frame.error_code, frame.error_message)));
        // Only a failed first subscribe closes; before it every failure does.
        FUZZ_CHECK(frame.close == first);
        if (frame.close) closed = true;
        return;
      case Kind::kSubscribe: {
        FUZZ_CHECK(frame.json && frame.json->is_object());
        const auto& s = frame.subscribe;
        FUZZ_CHECK(!s.topics.empty() && s.topics.size() <= kMaxSubscribeTopics);
        FUZZ_CHECK(!s.client_id.empty() && s.client_id.size() <= kMaxClientIdLength);
        // The session's HandleSubscribe reads the same fields again from the object.
        auto again = ParseSubscribeFields(frame.json->as_object());
        FUZZ_CHECK(again && again->topics == s.topics && again->replay_from == s.replay_from);
        std::string confirm = R"({"type":"subscribed","topics":[)";
        bool any = false;
        for (const auto& name : s.topics) {
          FUZZ_CHECK(!core::ValidateTopicName(name));
          const bool known = topics.count(name) > 0;
          if (first || !known) {
            if (any) confirm.push_back(',');
            any = true;
            AppendJsonString(confirm, name);
          }
          topics.insert(name);
        }
        confirm += R"(],"session_id":"sess_0123456789ab","timestamp":")";
        AppendRfc3339(confirm, 1'700'000'000'000'000);
        confirm += R"("})";
        FUZZ_CHECK(IsJson(confirm));
        subscribed = true;
        return;
      }
      case Kind::kPing:
        FUZZ_CHECK(subscribed);
        return;
      case Kind::kAck:
        FUZZ_CHECK(subscribed && frame.json);
        FUZZ_CHECK(ParseAckMessageId(frame.json->as_object()) == frame.message_id);
        return;
      case Kind::kUnsubscribe:
        FUZZ_CHECK(subscribed && !frame.topics.empty());
        for (const auto& name : frame.topics) {
          FUZZ_CHECK(!core::ValidateTopicName(name));
          topics.erase(name);
        }
        return;
      case Kind::kUnknown:
        FUZZ_CHECK(subscribed);
        FUZZ_CHECK(frame.type_name != "ping" && frame.type_name != "ack" &&
                   frame.type_name != "unsubscribe" && frame.type_name != "subscribe");
        FUZZ_CHECK(IsJson(ErrorFrame("UNKNOWN_MESSAGE_TYPE",
                                     "Unknown message type: " + frame.type_name)));
        return;
    }
    FUZZ_CHECK(false);  // every kind is handled above
  }
};

}  // namespace
}  // namespace magnetar::relay

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // The whole input as one frame, in both states.
  {
    magnetar::relay::Session fresh;
    fresh.OnText(input);
    magnetar::relay::Session subscribed;
    subscribed.subscribed = true;
    subscribed.OnText(input);
  }
  // Then as a conversation, one frame per line, until the server would close.
  magnetar::relay::Session session;
  size_t start = 0;
  while (start <= input.size() && !session.closed) {
    size_t end = input.find('\n', start);
    if (end == std::string_view::npos) end = input.size();
    session.OnText(input.substr(start, end - start));
    start = end + 1;
  }
  return 0;
}
