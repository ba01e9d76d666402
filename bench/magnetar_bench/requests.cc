#include "bench/magnetar_bench/requests.h"

#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>

namespace magnetar::bench {

namespace {

constexpr size_t kStampDigits = 20;  // fits any uint64

std::string UrlEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

// Appends {"topic":"T","payload":{"t":"000…","pad":"xxx"}} and returns the stamp's offset
// relative to the start of `out`.
size_t AppendMessage(std::string& out, const std::string& topic, int payload_bytes) {
  out += R"({"topic":")";
  out += topic;  // topic names are [A-Za-z0-9_.-]: nothing to escape
  out += R"(","payload":{"t":")";
  const size_t stamp = out.size();
  out.append(kStampDigits, '0');
  out += R"(","pad":")";
  // {"t":"<20>","pad":""} is 37 bytes; the padding brings the payload to payload_bytes.
  const int pad = payload_bytes > 37 ? payload_bytes - 37 : 0;
  out.append(static_cast<size_t>(pad), 'x');
  out += R"("}})";
  return stamp;
}

PreparedRequest PostJson(const Target& target, const std::string& token, std::string_view path,
                         const std::string& body, const std::vector<size_t>& body_stamps) {
  PreparedRequest r;
  std::string& b = r.bytes;
  b.append("POST ").append(target.base_path).append(path).append(" HTTP/1.1\r\nHost: ");
  b.append(target.host_header).append("\r\nAuthorization: Bearer ").append(token);
  b.append("\r\nContent-Type: application/json\r\nContent-Length: ");
  b.append(std::to_string(body.size())).append("\r\n\r\n");
  const size_t body_start = b.size();
  b.append(body);
  for (size_t s : body_stamps) r.stamp_offsets.push_back(body_start + s);
  return r;
}

}  // namespace

void PreparedRequest::Stamp(uint64_t ns) {
  char digits[kStampDigits];
  for (size_t i = kStampDigits; i-- > 0;) {
    digits[i] = static_cast<char>('0' + ns % 10);
    ns /= 10;
  }
  for (size_t off : stamp_offsets) std::memcpy(bytes.data() + off, digits, kStampDigits);
}

std::string LoginRequest(const Target& target, std::string_view user, std::string_view password) {
  std::string body;
  body.append("username=").append(UrlEncode(user)).append("&password=").append(UrlEncode(password));
  std::string out;
  out.append("POST ").append(target.base_path).append("/auth/login HTTP/1.1\r\nHost: ");
  out.append(target.host_header);
  out.append("\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ");
  out.append(std::to_string(body.size())).append("\r\n\r\n").append(body);
  return out;
}

PreparedRequest PublishRequest(const Target& target, const std::string& token,
                               const std::string& topic, int payload_bytes) {
  std::string body;
  const size_t stamp = AppendMessage(body, topic, payload_bytes);
  return PostJson(target, token, "/api/v1/messages", body, {stamp});
}

PreparedRequest BulkRequest(const Target& target, const std::string& token,
                            const std::string& topic, int payload_bytes, int batch) {
  std::string body = R"({"messages":[)";
  size_t first_stamp = 0;
  for (int i = 0; i < batch; ++i) {
    if (i) body.push_back(',');
    const size_t stamp = AppendMessage(body, topic, payload_bytes);
    if (i == 0) first_stamp = stamp;
  }
  body += "]}";
  return PostJson(target, token, "/api/v1/messages/bulk", body, {first_stamp});
}

void PollRequest(std::string& out, const Target& target, const std::string& token,
                 const std::string& topic, std::string_view since, int timeout_s) {
  // The body first (its length goes in the header), into the tail of `out`; no allocation once
  // `out` has grown to size.
  char body[512];
  int n;
  if (since.empty()) {
    n = std::snprintf(body, sizeof body, R"({"topics":["%s"],"timeout":%d})", topic.c_str(),
                      timeout_s);
  } else {
    n = std::snprintf(body, sizeof body, R"({"topics":["%s"],"since":{"%s":"%.*s"},"timeout":%d})",
                      topic.c_str(), topic.c_str(), static_cast<int>(since.size()), since.data(),
                      timeout_s);
  }
  out.clear();
  out += "POST ";
  out += target.base_path;
  out += "/messages/poll HTTP/1.1\r\nHost: ";
  out += target.host_header;
  out += "\r\nAuthorization: Bearer ";
  out += token;
  out += "\r\nContent-Type: application/json\r\nContent-Length: ";
  char len[24];
  std::snprintf(len, sizeof len, "%d", n);
  out += len;
  out += "\r\n\r\n";
  out.append(body, static_cast<size_t>(n));
}

std::string WsHandshake(const Target& target, const std::string& token) {
  // A fixed key: the generator does not check Sec-WebSocket-Accept (loopback benchmarking).
  std::string out;
  out.append("GET ").append(target.base_path).append("/ws HTTP/1.1\r\nHost: ");
  out.append(target.host_header);
  out.append("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
  out.append("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n");
  out.append("Sec-WebSocket-Protocol: bearer, bearer.").append(token).append("\r\n\r\n");
  return out;
}

std::string SubscribeFrame(const std::string& topic, std::string_view offset) {
  std::string out = R"({"type":"subscribe","topics":[")";
  out.append(topic).append(R"("],"client_id":"magnetar-bench","offset":")");
  out.append(offset).append(R"("})");
  return out;
}

std::optional<uint64_t> FindStamp(std::string_view text) {
  std::optional<uint64_t> found;
  ForEachStamp(text, [&](uint64_t v) {
    if (!found) found = v;
  });
  return found;
}

std::string_view FrameType(std::string_view frame) {
  const size_t key = frame.find(R"("type")");
  if (key == std::string_view::npos) return {};
  size_t i = key + 6;
  while (i < frame.size() && (frame[i] == ' ' || frame[i] == ':' || frame[i] == '\t')) ++i;
  if (i >= frame.size() || frame[i] != '"') return {};
  const size_t end = frame.find('"', i + 1);
  if (end == std::string_view::npos) return {};
  return frame.substr(i + 1, end - i - 1);
}

std::string_view LastMessageId(std::string_view text) {
  constexpr std::string_view kKey = R"("message_id":")";
  const size_t pos = text.rfind(kKey);
  if (pos == std::string_view::npos) return {};
  const size_t start = pos + kKey.size();
  const size_t end = text.find('"', start);
  if (end == std::string_view::npos) return {};
  return text.substr(start, end - start);
}

std::string_view JsonStringField(std::string_view json, std::string_view name) {
  std::string key = "\"";
  key.append(name).push_back('"');
  size_t pos = json.find(key);
  if (pos == std::string_view::npos) return {};
  pos = json.find('"', json.find(':', pos + key.size()));
  if (pos == std::string_view::npos) return {};
  const size_t end = json.find('"', pos + 1);
  if (end == std::string_view::npos) return {};
  return json.substr(pos + 1, end - pos - 1);
}

std::string PulsarWsHandshake(const Target& target, std::string_view role, std::string_view tenant,
                              std::string_view topic, std::string_view subscription,
                              const std::string& token, std::string_view query) {
  std::string out;
  out.append("GET ").append(target.base_path).append("/ws/v2/").append(role);
  out.append("/persistent/").append(UrlEncode(tenant)).append("/default/").append(UrlEncode(topic));
  if (!subscription.empty()) out.append("/").append(UrlEncode(subscription));
  out.append("?token=").append(UrlEncode(token));
  if (!query.empty()) out.append("&").append(query);
  out.append(" HTTP/1.1\r\nHost: ").append(target.host_header);
  out.append("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
  out.append("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  return out;
}

PreparedRequest PulsarWsPublishFrame(int payload_bytes) {
  // {"pad":""} is 10 bytes around the padding.
  std::string payload = R"({"pad":")";
  payload.append(static_cast<size_t>(payload_bytes > 10 ? payload_bytes - 10 : 0), 'x');
  payload += R"("})";
  PreparedRequest r;
  r.bytes = R"({"payload":")" + Base64Encode(payload) + R"(","properties":{"t":")";
  r.stamp_offsets.push_back(r.bytes.size());
  r.bytes.append(kStampDigits, '0');
  r.bytes += R"("},"context":")";
  r.stamp_offsets.push_back(r.bytes.size());
  r.bytes.append(kStampDigits, '0');
  r.bytes += R"("})";
  return r;
}

std::optional<uint64_t> ContextStamp(std::string_view receipt) {
  const std::string_view digits = JsonStringField(receipt, "context");
  if (digits.empty() || digits.size() > kStampDigits) return std::nullopt;
  uint64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// Its own copy (common/base64.h has one): the generator carries no Magnetar code.
std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto at = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (const size_t rest = bytes.size() - i; rest > 0) {
    const uint32_t v = (at(i) << 16) | (rest == 2 ? at(i + 1) << 8 : 0);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::string TokenUsername(std::string_view jwt) {
  const size_t first = jwt.find('.');
  const size_t second = first == std::string_view::npos ? first : jwt.find('.', first + 1);
  if (second == std::string_view::npos) return {};
  const std::string_view part = jwt.substr(first + 1, second - first - 1);
  // base64url without padding -> bytes.
  std::string json;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : part) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '-' || c == '+') v = 62;
    else if (c == '_' || c == '/') v = 63;
    else if (c == '=') break;
    else return {};
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      json.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return std::string(JsonStringField(json, "username"));
}

std::string FreshTopic(std::string_view prefix) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::string(prefix) + "-" + std::to_string(getpid()) + "-" +
         std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(now).count() %
                        100000000);
}

}  // namespace magnetar::bench
