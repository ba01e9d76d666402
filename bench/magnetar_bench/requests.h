#pragma once

// The relay requests magnetar-bench sends (spec relay-http.md §1.3, §2, §3, §4), serialised once
// per connection so the hot loop only patches a timestamp in place, and the small scanners that
// read what it needs back out of responses and frames without a JSON parser.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bench/magnetar_bench/common.h"

namespace magnetar::bench {

// A request whose bytes never change except a fixed-width decimal timestamp field ("t") inside
// the message payload(s): the send time in generator-clock nanoseconds, which a subscriber reads
// back to compute the delivery latency.
struct PreparedRequest {
  std::string bytes;
  std::vector<size_t> stamp_offsets;  // where each 20-digit "t" value starts
  void Stamp(uint64_t ns);
};

// POST /auth/login with a url-encoded form.
std::string LoginRequest(const Target& target, std::string_view user, std::string_view password);
// POST /api/v1/messages with one message on `topic`.
PreparedRequest PublishRequest(const Target& target, const std::string& token,
                               const std::string& topic, int payload_bytes);
// POST /api/v1/messages/bulk with `batch` messages on `topic` (only the first is stamped).
PreparedRequest BulkRequest(const Target& target, const std::string& token,
                            const std::string& topic, int payload_bytes, int batch);
// POST /messages/poll for one topic, after `since` (empty: no cursor), into `out` (reused).
void PollRequest(std::string& out, const Target& target, const std::string& token,
                 const std::string& topic, std::string_view since, int timeout_s);
// GET /ws upgrade with the bearer subprotocols.
std::string WsHandshake(const Target& target, const std::string& token);
// The first client frame: subscribe to `topic`.
std::string SubscribeFrame(const std::string& topic, std::string_view offset);

// The first "t":"<digits>" stamp in `text`; nullopt when there is none.
std::optional<uint64_t> FindStamp(std::string_view text);
// Every "t" stamp in `text`, in order, passed to f(ns). Tolerates whitespace around the colon
// (servers that pretty-print), though the relay servers write compact JSON.
template <typename F>
void ForEachStamp(std::string_view text, F&& f) {
  size_t pos = 0;
  while ((pos = text.find(R"("t")", pos)) != std::string_view::npos) {
    pos += 3;
    size_t i = pos;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    if (i >= text.size() || text[i] != ':') continue;
    ++i;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    if (i >= text.size() || text[i] != '"') continue;
    const size_t digits = ++i;
    uint64_t v = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') v = v * 10 + static_cast<uint64_t>(text[i++] - '0');
    if (i > digits && i < text.size() && text[i] == '"') f(v);
    pos = i;
  }
}
// The value of the first "type" field of a frame ("message", "subscribed", "error", ...): the
// relay puts it first, so this reads only the frame's head, never the payload.
std::string_view FrameType(std::string_view frame);
// The value of the last "message_id":"…" in `text` (empty when there is none).
std::string_view LastMessageId(std::string_view text);
// A string field's value from a flat JSON object ("access_token" from a login answer).
std::string_view JsonStringField(std::string_view json, std::string_view name);

// --- Apache Pulsar WebSocket API v2 (shared/spec/pulsar-websocket.md) ---------------------------

// GET /ws/v2/<role>/persistent/<tenant>/default/<topic>[/<subscription>]?token=<jwt>[&<query>]
// upgrade (the token as the `token` query parameter, §2). `subscription` only for "consumer".
std::string PulsarWsHandshake(const Target& target, std::string_view role, std::string_view tenant,
                              std::string_view topic, std::string_view subscription,
                              const std::string& token, std::string_view query);
// A producer's publish frame {"payload":"<base64>","properties":{"t":"<20>"},"context":"<20>"}:
// `payload_bytes` bytes of JSON object before base64; the send-time stamp goes in a property
// (the consumer frame carries properties as plain JSON, so FindStamp reads it back) and in the
// context (echoed by the receipt, so receipt latency needs no bookkeeping).
PreparedRequest PulsarWsPublishFrame(int payload_bytes);
// The stamp in a receipt's "context" (nullopt when there is none or it is not digits).
std::optional<uint64_t> ContextStamp(std::string_view receipt);
// Standard base64 with padding (RFC 4648 §4).
std::string Base64Encode(std::string_view bytes);
// The "username" claim of a JWT (its payload decoded, not verified): the Pulsar tenant.
std::string TokenUsername(std::string_view jwt);

// A topic name unique to this run.
std::string FreshTopic(std::string_view prefix);

}  // namespace magnetar::bench
