#pragma once

// eFTL op codes, error codes and the server's frames (spec/eftl.md §b.2, §b.8). Frames are built
// as compact JSON text directly; bodies are already-encoded messages (codec.h). Pure.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace magnetar::eftl {

inline constexpr char kSubprotocol[] = "v1.eftl.tibco.com";
inline constexpr int kProtocolVersion = 1;

enum Op : int {
  kOpHeartbeat = 0,
  kOpLogin = 1,
  kOpWelcome = 2,
  kOpSubscribe = 3,
  kOpSubscribed = 4,
  kOpUnsubscribe = 5,
  kOpUnsubscribed = 6,
  kOpEvent = 7,
  kOpMessage = 8,
  kOpAck = 9,
  kOpError = 10,
  kOpDisconnect = 11,
  kOpGoodbye = 12,
  kOpRequest = 13,
  kOpRequestReply = 14,
  kOpReply = 15,
  kOpMapCreate = 16,
  kOpMapDestroy = 18,
  kOpMapSet = 20,
  kOpMapGet = 22,
  kOpMapRemove = 24,
  kOpMapResponse = 26,
  kOpStop = 28,
  kOpStart = 30,
  kOpStarted = 31,
};

// Error codes carried in frames (§b.8).
enum ErrorCode : int {
  kErrUnsupported = 6,  // an op this server does not know (C API "not supported")
  kErrPublishFailed = 11,
  kErrPublishNotAuthorized = 12,
  kErrSubscriptionNotAuthorized = 13,
  kErrMapNotAuthorized = 14,
  kErrSubscriptionFailed = 21,
  kErrSubscriptionInvalid = 22,
  kErrMapFailed = 30,
  kErrRequestNotAuthorized = 40,
  kErrRequestFailed = 41,
  kErrStopFailed = 50,
  kErrStartFailed = 51,
};

// WebSocket close codes the clients interpret (§b.8).
enum CloseCode : uint16_t {
  kCloseNormal = 1000,
  kCloseGoingAway = 1001,
  kCloseProtocolError = 1002,
  kCloseUnsupportedData = 1003,
  kClosePolicy = 1008,
  kCloseTooBig = 1009,
  kCloseForced = 4000,
  kCloseUnavailable = 4001,
  kCloseAuthFailed = 4002,
};

struct WelcomeFields {
  std::string client_id;
  std::string id_token;
  int timeout_seconds = 90;
  int heartbeat_seconds = 30;
  uint64_t max_size = 1 << 20;
  bool resume = false;
};

std::string WelcomeFrame(const WelcomeFields& w);
std::string HeartbeatFrame();
std::string SubscribedFrame(std::string_view id);
std::string UnsubscribedFrame(std::string_view id, int err, std::string_view reason);
// {"op":7,"to":…,"seq":…,"body":…[,"reply_to":…,"req":…][,"sid":…,"cnt":…]}
struct EventExtras {
  std::optional<std::string> reply_to;
  uint64_t req = 0;
  uint64_t sid = 0;  // store message id, 0 = none
  uint32_t cnt = 0;  // delivery count, 0 = none
};
std::string EventFrame(std::string_view to, uint64_t seq, std::string_view body,
                       const EventExtras& extras);
std::string AckFrame(int64_t seq);
std::string AckErrorFrame(int64_t seq, int err, std::string_view reason);
std::string ErrorFrame(int err, std::string_view reason);
std::string GoodbyeFrame(int err, std::string_view reason);
std::string RequestReplyFrame(int64_t seq, std::string_view body);
std::string RequestErrorFrame(int64_t seq, int err, std::string_view reason);
// body empty = no `value` (a get of an unset key, a set, a remove).
std::string MapResponseFrame(int64_t seq, std::string_view value);
std::string MapErrorFrame(int64_t seq, int err, std::string_view reason);
std::string StartedFrame(std::string_view id);

}  // namespace magnetar::eftl
