#include "storage/rocksdb/codec.h"

#include <cstdint>
#include <limits>

namespace magnetar::storage::rocks {

namespace {

// Version 2 = version 1 + a trailing deliver_at (I64). Messages without a delay are still written
// as version 1, so data without delayed messages stays readable by older binaries.
constexpr uint8_t kMessageVersion = 1;
constexpr uint8_t kMessageVersionDelayed = 2;
constexpr uint8_t kTopicMetaVersion = 1;
constexpr uint8_t kTopicRecordVersion = 1;
constexpr uint8_t kUserVersion = 1;
constexpr uint8_t kCursorVersion = 1;

// Appends fixed-width big-endian integers and u32-length-prefixed strings.
class ValueWriter {
 public:
  explicit ValueWriter(uint8_t version) { out_.push_back(static_cast<char>(version)); }

  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U64(uint64_t v) { AppendU64BE(out_, v); }
  void I64(int64_t v) { U64(static_cast<uint64_t>(v)); }
  void Id(MessageId id) {
    U64(id.hi);
    U64(id.lo);
  }
  void Str(std::string_view s) {
    const auto n = static_cast<uint32_t>(s.size());
    for (int shift = 24; shift >= 0; shift -= 8) out_.push_back(static_cast<char>(n >> shift));
    out_.append(s);
  }
  void OptStr(const std::optional<std::string>& s) {
    U8(s ? 1 : 0);
    if (s) Str(*s);
  }

  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// The reading side of ValueWriter. Any short read sets !ok() and returns zero values.
class ValueReader {
 public:
  ValueReader(std::string_view in, uint8_t version) : ValueReader(in, version, version) {}
  // Accepts any version in [min_version, max_version]; version() tells which.
  ValueReader(std::string_view in, uint8_t min_version, uint8_t max_version) : in_(in) {
    if (!in_.empty()) version_ = static_cast<uint8_t>(in_.front());
    ok_ = !in_.empty() && version_ >= min_version && version_ <= max_version;
    if (ok_) in_.remove_prefix(1);
  }

  bool ok() const { return ok_; }
  uint8_t version() const { return version_; }
  bool done() const { return ok_ && in_.empty(); }

  uint8_t U8() {
    if (!Need(1)) return 0;
    const auto v = static_cast<uint8_t>(in_.front());
    in_.remove_prefix(1);
    return v;
  }
  uint64_t U64() {
    if (!Need(8)) return 0;
    const uint64_t v = ReadU64BE(in_.data());
    in_.remove_prefix(8);
    return v;
  }
  int64_t I64() { return static_cast<int64_t>(U64()); }
  MessageId Id() {
    MessageId id;
    id.hi = U64();
    id.lo = U64();
    return id;
  }
  std::string_view StrView() {
    if (!Need(4)) return {};
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<uint8_t>(in_[i]);
    in_.remove_prefix(4);
    if (!Need(n)) return {};
    std::string_view s = in_.substr(0, n);
    in_.remove_prefix(n);
    return s;
  }
  std::string Str() { return std::string(StrView()); }
  std::optional<std::string> OptStr() {
    if (U8() == 0) return std::nullopt;
    return Str();
  }

 private:
  bool Need(size_t n) {
    if (!ok_ || in_.size() < n) ok_ = false;
    return ok_;
  }

  std::string_view in_;
  bool ok_ = false;
  uint8_t version_ = 0;
};

}  // namespace

void AppendOrderedString(std::string& out, std::string_view s) {
  for (char c : s) {
    out.push_back(c);
    if (c == '\0') out.push_back('\xff');
  }
  out.push_back('\0');
  out.push_back('\x01');
}

bool ReadOrderedString(std::string_view& in, std::string* out) {
  out->clear();
  size_t i = 0;
  while (i < in.size()) {
    const char c = in[i];
    if (c != '\0') {
      out->push_back(c);
      ++i;
      continue;
    }
    if (i + 1 >= in.size()) return false;
    if (in[i + 1] == '\x01') {
      in.remove_prefix(i + 2);
      return true;
    }
    if (in[i + 1] != '\xff') return false;
    out->push_back('\0');
    i += 2;
  }
  return false;
}

void AppendU64BE(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

uint64_t ReadU64BE(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::string PrefixSuccessor(std::string_view prefix) {
  std::string out(prefix);
  while (!out.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(out.back());
    if (last != 0xff) {
      ++last;
      return out;
    }
    out.pop_back();
  }
  return out;
}

std::string TopicPrefix(const core::TopicKey& topic) {
  std::string out;
  out.reserve(topic.owner.size() + topic.name.size() + 4);
  AppendOrderedString(out, topic.owner);
  AppendOrderedString(out, topic.name);
  return out;
}

bool ParseTopicPrefix(std::string_view key, core::TopicKey* topic) {
  return ReadOrderedString(key, &topic->owner) && ReadOrderedString(key, &topic->name) &&
         key.empty();
}

std::string MessageKey(std::string_view topic_prefix, MessageId id) {
  std::string out;
  out.reserve(topic_prefix.size() + kIdBytes);
  out.append(topic_prefix);
  AppendU64BE(out, id.hi);
  AppendU64BE(out, id.lo);
  return out;
}

MessageId MessageKeyId(std::string_view key) {
  const char* p = key.data() + key.size() - kIdBytes;
  return {ReadU64BE(p), ReadU64BE(p + 8)};
}

std::string ExpiryKey(UnixMicros expires_at, std::string_view message_key) {
  std::string out;
  out.reserve(8 + message_key.size());
  AppendU64BE(out, static_cast<uint64_t>(std::max<UnixMicros>(expires_at, 0)));
  out.append(message_key);
  return out;
}

bool ParseExpiryKey(std::string_view key, UnixMicros* expires_at, std::string_view* message_key) {
  if (key.size() < 8 + kIdBytes) return false;
  *expires_at = static_cast<UnixMicros>(ReadU64BE(key.data()));
  *message_key = key.substr(8);
  return true;
}

std::string EncodeMessage(const core::Message& m) {
  ValueWriter w(m.deliver_at != 0 ? kMessageVersionDelayed : kMessageVersion);
  w.U64(m.ByteSize());
  w.I64(m.publish_time);
  w.I64(m.expires_at);
  w.U8(static_cast<uint8_t>(m.format));
  w.Str(m.payload);
  w.Str(m.key);
  w.Str(m.producer_name);
  w.U64(m.sequence_id);
  w.U64(m.properties.size());
  for (const auto& [k, v] : m.properties) {
    w.Str(k);
    w.Str(v);
  }
  if (m.deliver_at != 0) w.I64(m.deliver_at);
  return w.Take();
}

bool DecodeMessageHeader(std::string_view value, MessageHeader* out) {
  ValueReader r(value, kMessageVersion, kMessageVersionDelayed);
  out->byte_size = r.U64();
  out->publish_time = r.I64();
  out->expires_at = r.I64();
  return r.ok();
}

bool DecodeMessage(std::string_view value, core::Message* out) {
  ValueReader r(value, kMessageVersion, kMessageVersionDelayed);
  r.U64();  // byte size: recomputed from the fields
  out->publish_time = r.I64();
  out->expires_at = r.I64();
  const uint8_t format = r.U8();
  if (format > static_cast<uint8_t>(core::PayloadFormat::kBinary)) return false;
  out->format = static_cast<core::PayloadFormat>(format);
  out->payload = r.Str();
  out->key = r.Str();
  out->producer_name = r.Str();
  out->sequence_id = r.U64();
  const uint64_t properties = r.U64();
  if (!r.ok() || properties > value.size()) return false;  // each property takes >= 8 bytes
  out->properties.clear();
  out->properties.reserve(properties);
  for (uint64_t i = 0; i < properties && r.ok(); ++i) {
    std::string k = r.Str();
    std::string v = r.Str();
    out->properties.emplace_back(std::move(k), std::move(v));
  }
  out->deliver_at = r.version() == kMessageVersionDelayed ? r.I64() : 0;
  return r.done();
}

std::string EncodeTopicMeta(const TopicMeta& meta) {
  ValueWriter w(kTopicMetaVersion);
  w.Id(meta.last_id);
  w.Id(meta.first_id);
  w.U64(meta.count);
  w.U64(meta.bytes);
  w.U8(meta.policy ? 1 : 0);
  if (meta.policy) {
    w.U64(meta.policy->max_messages);
    w.U64(meta.policy->max_bytes);
    w.I64(meta.policy->max_age_micros);
  }
  return w.Take();
}

bool DecodeTopicMeta(std::string_view value, TopicMeta* out) {
  ValueReader r(value, kTopicMetaVersion);
  out->last_id = r.Id();
  out->first_id = r.Id();
  out->count = r.U64();
  out->bytes = r.U64();
  out->policy.reset();
  if (r.U8() != 0) {
    core::RetentionPolicy p;
    p.max_messages = r.U64();
    p.max_bytes = r.U64();
    p.max_age_micros = r.I64();
    out->policy = p;
  }
  return r.done();
}

std::string EncodeTopicRecord(const core::TopicRecord& record) {
  ValueWriter w(kTopicRecordVersion);
  w.Str(record.topic_id);
  w.I64(record.created_at);
  w.OptStr(record.description);
  // Trailing and only when set: records of plain topics stay as older versions wrote them.
  if (record.partitions > 0) w.U64(record.partitions);
  return w.Take();
}

bool DecodeTopicRecord(std::string_view value, core::TopicRecord* out) {
  ValueReader r(value, kTopicRecordVersion);
  out->topic_id = r.Str();
  out->created_at = r.I64();
  out->description = r.OptStr();
  out->partitions = 0;
  if (r.ok() && !r.done()) {
    const uint64_t n = r.U64();
    if (n > UINT32_MAX) return false;
    out->partitions = static_cast<uint32_t>(n);
  }
  return r.done();
}

std::string EncodeUser(const auth::User& user) {
  ValueWriter w(kUserVersion);
  w.Str(user.user_id);
  w.Str(user.username);
  w.OptStr(user.email);
  w.Str(user.password_hash);
  w.U8(user.is_active ? 1 : 0);
  w.I64(user.created_at);
  w.U64(user.permissions.size());
  for (const auto& p : user.permissions) w.Str(p);
  return w.Take();
}

bool DecodeUser(std::string_view value, auth::User* out) {
  ValueReader r(value, kUserVersion);
  out->user_id = r.Str();
  out->username = r.Str();
  out->email = r.OptStr();
  out->password_hash = r.Str();
  out->is_active = r.U8() != 0;
  out->created_at = r.I64();
  const uint64_t n = r.U64();
  if (!r.ok() || n > value.size()) return false;
  out->permissions.clear();
  for (uint64_t i = 0; i < n && r.ok(); ++i) out->permissions.push_back(r.Str());
  return r.done();
}

std::string EncodeKvValue(std::string_view value, UnixMicros expires_at) {
  std::string out;
  out.reserve(8 + value.size());
  AppendU64BE(out, static_cast<uint64_t>(std::max<UnixMicros>(expires_at, 0)));
  out.append(value);
  return out;
}

bool DecodeKvValue(std::string_view stored, std::string_view* value, UnixMicros* expires_at) {
  if (stored.size() < 8) return false;
  *expires_at = static_cast<UnixMicros>(ReadU64BE(stored.data()));
  *value = stored.substr(8);
  return true;
}

std::string CursorKey(const core::TopicKey& topic, std::string_view subscription) {
  std::string out = TopicPrefix(topic);
  AppendOrderedString(out, subscription);
  return out;
}

std::string EncodeCursor(const core::CursorState& state) {
  ValueWriter w(kCursorVersion);
  w.Id(state.mark_delete);
  w.U64(state.individually_acked.size());
  for (MessageId id : state.individually_acked) w.Id(id);
  return w.Take();
}

bool DecodeCursor(std::string_view value, core::CursorState* out) {
  ValueReader r(value, kCursorVersion);
  out->mark_delete = r.Id();
  const uint64_t n = r.U64();
  if (!r.ok() || n > value.size() / kIdBytes) return false;
  out->individually_acked.clear();
  out->individually_acked.reserve(n);
  for (uint64_t i = 0; i < n && r.ok(); ++i) out->individually_acked.push_back(r.Id());
  return r.done();
}

}  // namespace magnetar::storage::rocks
