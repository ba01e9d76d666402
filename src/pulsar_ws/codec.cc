#include "pulsar_ws/codec.h"

#include <charconv>
#include <limits>

#include "common/time_format.h"

namespace magnetar::pulsar_ws {

namespace {

void AppendVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Reads one varint at `pos`; at most 10 bytes.
bool ReadVarint(std::string_view in, size_t& pos, uint64_t& out) {
  out = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (pos >= in.size()) return false;
    const auto byte = static_cast<uint8_t>(in[pos++]);
    if (shift == 63 && byte > 1) return false;  // more than 64 bits
    out |= uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// Percent-decoding of one path segment; nullopt on a malformed escape.
std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int v = 0;
    for (size_t j = i + 1; j <= i + 2; ++j) {
      const char c = s[j];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else return std::nullopt;
    }
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return out;
}

template <typename T>
std::optional<T> ParseJavaInteger(std::string_view s) {
  if (s.empty()) return std::nullopt;
  bool negative = false;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    s.remove_prefix(1);
    if (s.empty()) return std::nullopt;
  }
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  // Parse the magnitude as unsigned so the most negative value fits.
  uint64_t magnitude = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), magnitude);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  const uint64_t max = static_cast<uint64_t>(std::numeric_limits<T>::max());
  if (negative) {
    if (magnitude > max + 1) return std::nullopt;
    return static_cast<T>(-static_cast<int64_t>(magnitude - 1) - 1);
  }
  if (magnitude > max) return std::nullopt;
  return static_cast<T>(magnitude);
}

// Looks up the last value of `name` (Java's servlet getParameter takes the first; both are fine
// for well-formed clients, we take the first too).
const std::string* Find(const QueryPairs& query, std::string_view name) {
  for (const auto& [k, v] : query) {
    if (k == name) return &v;
  }
  return nullptr;
}

// An int parameter: absent leaves `out`; malformed sets `error`.
bool IntParam(const QueryPairs& q, std::string_view name, int32_t& out, std::string* error,
              int32_t min = std::numeric_limits<int32_t>::min()) {
  const std::string* v = Find(q, name);
  if (!v) return true;
  auto parsed = ParseJavaInt(*v);
  if (!parsed) {
    *error = std::string(name) + " must be an integer: '" + *v + "'";
    return false;
  }
  if (*parsed < min) {
    *error = std::string(name) + " must be >= " + std::to_string(min);
    return false;
  }
  out = *parsed;
  return true;
}

bool LongParam(const QueryPairs& q, std::string_view name, int64_t& out, std::string* error,
               int64_t min = std::numeric_limits<int64_t>::min()) {
  const std::string* v = Find(q, name);
  if (!v) return true;
  auto parsed = ParseJavaLong(*v);
  if (!parsed) {
    *error = std::string(name) + " must be a long: '" + *v + "'";
    return false;
  }
  if (*parsed < min) {
    *error = std::string(name) + " must be >= " + std::to_string(min);
    return false;
  }
  out = *parsed;
  return true;
}

// An enum parameter: absent is fine; a value outside `allowed` sets `error`.
bool EnumParam(const QueryPairs& q, std::string_view name,
               std::initializer_list<std::string_view> allowed, std::string* error,
               std::string* out = nullptr) {
  const std::string* v = Find(q, name);
  if (!v) return true;
  for (auto a : allowed) {
    if (*v == a) {
      if (out) *out = *v;
      return true;
    }
  }
  *error = "No enum constant for " + std::string(name) + ": '" + *v + "'";
  return false;
}

}  // namespace

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') pad = text[text.size() - 2] == '=' ? 2 : 1;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size() - pad; ++i) {
    const int v = value(text[i]);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::string EncodeMessageId(MessageId id) {
  std::string bytes;
  bytes.push_back(0x08);  // field 1 (ledgerId), varint
  AppendVarint(bytes, id.hi);
  bytes.push_back(0x10);  // field 2 (entryId), varint
  AppendVarint(bytes, id.lo);
  return Base64Encode(bytes);
}

std::optional<MessageId> DecodeMessageIdBytes(std::string_view in) {
  if (in.size() > kMaxMessageIdBytes) return std::nullopt;
  MessageId id;
  bool have_ledger = false, have_entry = false;
  size_t pos = 0;
  while (pos < in.size()) {
    uint64_t tag = 0;
    if (!ReadVarint(in, pos, tag)) return std::nullopt;
    const uint64_t field = tag >> 3;
    const unsigned wire = tag & 7;
    if (field == 0) return std::nullopt;
    switch (wire) {
      case 0: {  // varint
        uint64_t v = 0;
        if (!ReadVarint(in, pos, v)) return std::nullopt;
        if (field == 1) id.hi = v, have_ledger = true;
        if (field == 2) id.lo = v, have_entry = true;
        break;
      }
      case 1:  // fixed64
        if (in.size() - pos < 8) return std::nullopt;
        pos += 8;
        break;
      case 2: {  // length-delimited: packed ack_set, first_chunk_message_id, unknown
        uint64_t len = 0;
        if (!ReadVarint(in, pos, len) || len > in.size() - pos) return std::nullopt;
        pos += len;
        break;
      }
      case 5:  // fixed32
        if (in.size() - pos < 4) return std::nullopt;
        pos += 4;
        break;
      default:
        return std::nullopt;
    }
  }
  if (!have_ledger || !have_entry) return std::nullopt;
  return id;
}

std::optional<MessageId> DecodeMessageId(std::string_view base64) {
  if (base64.size() > (kMaxMessageIdBytes / 3 + 1) * 4) return std::nullopt;
  auto bytes = Base64Decode(base64);
  if (!bytes) return std::nullopt;
  return DecodeMessageIdBytes(*bytes);
}

std::string TopicPath::FullName() const {
  return std::string(persistent ? "persistent" : "non-persistent") + "://" + tenant + "/" + ns +
         "/" + topic;
}

std::optional<TopicPath> ParseTopicPath(std::string_view target, std::string* error) {
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (true) {
    size_t slash = target.find('/', i);
    parts.push_back(target.substr(i, slash == std::string_view::npos ? slash : slash - i));
    if (slash == std::string_view::npos) break;
    i = slash + 1;
  }
  // "", ws, v2, role, domain, tenant, ns, topic...
  if (parts.size() < 8 || !parts[0].empty() || parts[1] != "ws" || parts[2] != "v2") {
    *error = "Invalid topic path";
    return std::nullopt;
  }
  TopicPath out;
  if (parts[3] == "producer") out.role = Role::kProducer;
  else if (parts[3] == "consumer") out.role = Role::kConsumer;
  else if (parts[3] == "reader") out.role = Role::kReader;
  else {
    *error = "Unknown role: " + std::string(parts[3]);
    return std::nullopt;
  }
  if (parts[4] == "persistent") out.persistent = true;
  else if (parts[4] == "non-persistent") out.persistent = false;
  else {
    *error = "Invalid domain: " + std::string(parts[4]);
    return std::nullopt;
  }
  auto tenant = PercentDecode(parts[5]);
  auto ns = PercentDecode(parts[6]);
  if (!tenant || !ns || tenant->empty() || ns->empty()) {
    *error = "Invalid tenant or namespace";
    return std::nullopt;
  }
  out.tenant = std::move(*tenant);
  out.ns = std::move(*ns);
  size_t topic_end = parts.size();
  if (out.role == Role::kConsumer) {
    // As in Pulsar's subscription extractor: exactly one topic segment, then the subscription.
    if (parts.size() != 9 || parts[8].empty()) {
      *error = "Invalid consumer path: expected .../{topic}/{subscription}";
      return std::nullopt;
    }
    auto sub = PercentDecode(parts[8]);
    if (!sub || sub->empty()) {
      *error = "Invalid subscription name";
      return std::nullopt;
    }
    out.subscription = std::move(*sub);
    topic_end = 8;
  }
  std::string joined;
  for (size_t k = 7; k < topic_end; ++k) {
    if (parts[k].empty()) continue;
    if (!joined.empty()) joined.push_back('/');
    joined.append(parts[k]);
  }
  auto topic = PercentDecode(joined);
  if (!topic || topic->empty()) {
    *error = "Invalid topic name";
    return std::nullopt;
  }
  out.topic = std::move(*topic);
  return out;
}

const char* SubscriptionTypeName(SubscriptionType t) {
  switch (t) {
    case SubscriptionType::kExclusive: return "Exclusive";
    case SubscriptionType::kShared: return "Shared";
    case SubscriptionType::kFailover: return "Failover";
    case SubscriptionType::kKeyShared: return "Key_Shared";
  }
  return "Exclusive";
}

std::optional<ProducerParams> ParseProducerParams(const QueryPairs& q, std::string* error) {
  ProducerParams p;
  if (const std::string* v = Find(q, "producerName")) p.producer_name = *v;
  if (Find(q, "initialSequenceId")) {
    int64_t seq = 0;
    if (!LongParam(q, "initialSequenceId", seq, error)) return std::nullopt;
    p.initial_sequence_id = seq;
  }
  if (!IntParam(q, "sendTimeoutMillis", p.send_timeout_millis, error, 0)) return std::nullopt;
  if (!IntParam(q, "maxPendingMessages", p.max_pending_messages, error, 0)) return std::nullopt;
  // Accepted and without effect here: batching and compression only shape the traffic between a
  // Pulsar client and its broker, and Magnetar is the broker (documented in README.md).
  int32_t ignored_int = 0;
  int64_t ignored_long = 0;
  if (const std::string* v = Find(q, "batchingEnabled")) (void)ParseJavaBool(*v);
  if (!IntParam(q, "batchingMaxMessages", ignored_int, error, 0)) return std::nullopt;
  if (!LongParam(q, "batchingMaxPublishDelay", ignored_long, error, 0)) return std::nullopt;
  if (!EnumParam(q, "messageRoutingMode", {"SinglePartition", "RoundRobinPartition", "CustomPartition"},
                 error)) {
    return std::nullopt;
  }
  if (!EnumParam(q, "hashingScheme", {"JavaStringHash", "Murmur3_32Hash"}, error)) return std::nullopt;
  if (!EnumParam(q, "compressionType", {"NONE", "LZ4", "ZLIB", "ZSTD", "SNAPPY"}, error)) {
    return std::nullopt;
  }
  if (const std::string* v = Find(q, "encryptionKeys"); v && !v->empty()) {
    *error = "encryptionKeys: end-to-end encryption is not supported";
    return std::nullopt;
  }
  return p;
}

std::optional<ConsumerParams> ParseConsumerParams(const QueryPairs& q, std::string* error) {
  ConsumerParams p;
  std::string type;
  if (!EnumParam(q, "subscriptionType", {"Exclusive", "Shared", "Failover", "Key_Shared"}, error,
                 &type)) {
    return std::nullopt;
  }
  if (type == "Shared") p.type = SubscriptionType::kShared;
  if (type == "Failover") p.type = SubscriptionType::kFailover;
  if (type == "Key_Shared") p.type = SubscriptionType::kKeyShared;
  std::string mode;
  if (!EnumParam(q, "subscriptionMode", {"Durable", "NonDurable"}, error, &mode)) return std::nullopt;
  p.durable = mode != "NonDurable";
  if (!IntParam(q, "receiverQueueSize", p.receiver_queue_size, error, 0)) return std::nullopt;
  p.receiver_queue_size = std::min(p.receiver_queue_size, 1000);
  if (!LongParam(q, "ackTimeoutMillis", p.ack_timeout_millis, error, 0)) return std::nullopt;
  if (p.ack_timeout_millis != 0 && p.ack_timeout_millis < 1000) {
    *error = "Ack timeout should be greater than 1000 ms";
    return std::nullopt;
  }
  if (!IntParam(q, "negativeAckRedeliveryDelay", p.negative_ack_redelivery_delay_millis, error, 0)) {
    return std::nullopt;
  }
  if (const std::string* v = Find(q, "consumerName")) p.consumer_name = *v;
  if (!IntParam(q, "priorityLevel", p.priority_level, error, 0)) return std::nullopt;
  if (!IntParam(q, "maxRedeliverCount", p.max_redeliver_count, error, 0)) return std::nullopt;
  if (const std::string* v = Find(q, "deadLetterTopic")) p.dead_letter_topic = *v;
  if (const std::string* v = Find(q, "pullMode")) p.pull_mode = ParseJavaBool(*v);
  // cryptoFailureAction: an invalid value is logged and ignored by Pulsar; nothing is encrypted
  // here, so every value is accepted.
  return p;
}

std::optional<ReaderParams> ParseReaderParams(const QueryPairs& q, std::string* error,
                                              bool* bad_message_id) {
  ReaderParams p;
  *bad_message_id = false;
  if (const std::string* v = Find(q, "readerName")) p.reader_name = *v;
  if (!IntParam(q, "receiverQueueSize", p.receiver_queue_size, error, 0)) return std::nullopt;
  p.receiver_queue_size = std::min(p.receiver_queue_size, 1000);
  if (const std::string* v = Find(q, "messageId")) {
    std::string_view id = *v;
    while (!id.empty() && id.front() == ' ') id.remove_prefix(1);
    while (!id.empty() && id.back() == ' ') id.remove_suffix(1);
    if (id.empty() || id == "latest") {
      p.start = ReaderParams::Start::kLatest;
    } else if (id == "earliest") {
      p.start = ReaderParams::Start::kEarliest;
    } else if (auto decoded = DecodeMessageId(id)) {
      p.start = ReaderParams::Start::kMessageId;
      p.start_id = *decoded;
    } else {
      *bad_message_id = true;
      *error = "Failed to create reader: invalid messageId";
      return std::nullopt;
    }
  }
  return p;
}

std::optional<int32_t> ParseJavaInt(std::string_view s) { return ParseJavaInteger<int32_t>(s); }
std::optional<int64_t> ParseJavaLong(std::string_view s) { return ParseJavaInteger<int64_t>(s); }

bool ParseJavaBool(std::string_view s) {
  if (s.size() != 4) return false;
  const char* t = "true";
  for (size_t i = 0; i < 4; ++i) {
    if ((s[i] | 0x20) != t[i]) return false;
  }
  return true;
}

std::string FormatPulsarTime(int64_t unix_micros) {
  std::string out = FormatRfc3339(unix_micros);  // 2025-10-09T12:00:00.123456Z
  if (out.size() == 27) out.erase(23, 3);       // keep milliseconds
  return out;
}

}  // namespace magnetar::pulsar_ws
