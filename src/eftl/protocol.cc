#include "eftl/protocol.h"

#include "eftl/codec.h"

namespace magnetar::eftl {

namespace {

std::string Begin(int op) { return "{\"op\":" + std::to_string(op); }

void Str(std::string& out, std::string_view name, std::string_view value) {
  out += ",\"";
  out += name;
  out += "\":";
  AppendJsonString(out, value);
}

void Num(std::string& out, std::string_view name, int64_t value) {
  out += ",\"";
  out += name;
  out += "\":";
  out += std::to_string(value);
}

std::string ErrFrame(int op, std::optional<int64_t> seq, int err, std::string_view reason) {
  std::string out = Begin(op);
  if (seq) Num(out, "seq", *seq);
  Num(out, "err", err);
  Str(out, "reason", reason);
  out.push_back('}');
  return out;
}

}  // namespace

std::string WelcomeFrame(const WelcomeFields& w) {
  std::string out = Begin(kOpWelcome);
  Str(out, "client_id", w.client_id);
  Str(out, "id_token", w.id_token);
  Num(out, "timeout", w.timeout_seconds);
  Num(out, "heartbeat", w.heartbeat_seconds);
  Num(out, "max_size", static_cast<int64_t>(w.max_size));
  Num(out, "protocol", kProtocolVersion);
  Str(out, "_qos", "true");
  Str(out, "_resume", w.resume ? "true" : "false");
  out += ",\"stop_supported\":true}";
  return out;
}

std::string HeartbeatFrame() { return "{\"op\":0}"; }

std::string SubscribedFrame(std::string_view id) {
  std::string out = Begin(kOpSubscribed);
  Str(out, "id", id);
  out.push_back('}');
  return out;
}

std::string UnsubscribedFrame(std::string_view id, int err, std::string_view reason) {
  std::string out = Begin(kOpUnsubscribed);
  Str(out, "id", id);
  Num(out, "err", err);
  Str(out, "reason", reason);
  out.push_back('}');
  return out;
}

std::string EventFrame(std::string_view to, uint64_t seq, std::string_view body,
                       const EventExtras& extras) {
  std::string out;
  out.reserve(body.size() + to.size() + 64);
  out = Begin(kOpEvent);
  Str(out, "to", to);
  Num(out, "seq", static_cast<int64_t>(seq));
  out += ",\"body\":";
  out += body;
  if (extras.reply_to) {
    Str(out, "reply_to", *extras.reply_to);
    Num(out, "req", static_cast<int64_t>(extras.req));
  }
  if (extras.sid) Num(out, "sid", static_cast<int64_t>(extras.sid));
  if (extras.cnt) Num(out, "cnt", extras.cnt);
  out.push_back('}');
  return out;
}

std::string AckFrame(int64_t seq) {
  std::string out = Begin(kOpAck);
  Num(out, "seq", seq);
  out.push_back('}');
  return out;
}

std::string AckErrorFrame(int64_t seq, int err, std::string_view reason) {
  return ErrFrame(kOpAck, seq, err, reason);
}

std::string ErrorFrame(int err, std::string_view reason) {
  return ErrFrame(kOpError, std::nullopt, err, reason);
}

std::string GoodbyeFrame(int err, std::string_view reason) {
  return ErrFrame(kOpGoodbye, std::nullopt, err, reason);
}

std::string RequestReplyFrame(int64_t seq, std::string_view body) {
  std::string out = Begin(kOpRequestReply);
  Num(out, "seq", seq);
  out += ",\"body\":";
  out += body;
  out.push_back('}');
  return out;
}

std::string RequestErrorFrame(int64_t seq, int err, std::string_view reason) {
  return ErrFrame(kOpRequestReply, seq, err, reason);
}

std::string MapResponseFrame(int64_t seq, std::string_view value) {
  std::string out = Begin(kOpMapResponse);
  Num(out, "seq", seq);
  if (!value.empty()) {
    out += ",\"value\":";
    out += value;
  }
  out.push_back('}');
  return out;
}

std::string MapErrorFrame(int64_t seq, int err, std::string_view reason) {
  return ErrFrame(kOpMapResponse, seq, err, reason);
}

std::string StartedFrame(std::string_view id) {
  std::string out = Begin(kOpStarted);
  Str(out, "to", id);
  out.push_back('}');
  return out;
}

}  // namespace magnetar::eftl
