#include "storage/redis/redis_codec.h"

#include <cstdint>

namespace magnetar::storage::redis {
namespace {

constexpr uint8_t kVersion = 1;
constexpr size_t kMaxCount = 1 << 20;  // bound on any encoded list

class Writer {
 public:
  Writer() { out_.push_back(static_cast<char>(kVersion)); }
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U64(uint64_t v) {
    for (int i = 7; i >= 0; --i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void Str(std::string_view s) {
    U64(s.size());
    out_.append(s);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {
    uint8_t version = 0;
    ok_ = U8(version) && version == kVersion;
  }
  bool ok() const { return ok_; }
  bool done() const { return ok_ && in_.empty(); }
  bool U8(uint8_t& v) {
    if (in_.empty()) return ok_ = false;
    v = static_cast<uint8_t>(in_.front());
    in_.remove_prefix(1);
    return true;
  }
  bool U64(uint64_t& v) {
    if (in_.size() < 8) return ok_ = false;
    v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in_[i]);
    in_.remove_prefix(8);
    return true;
  }
  bool I64(int64_t& v) {
    uint64_t u = 0;
    if (!U64(u)) return false;
    v = static_cast<int64_t>(u);
    return true;
  }
  bool Str(std::string& s) {
    uint64_t n = 0;
    if (!U64(n) || n > in_.size()) return ok_ = false;
    s.assign(in_.substr(0, n));
    in_.remove_prefix(n);
    return true;
  }
  bool Count(uint64_t& n) { return U64(n) && (n <= kMaxCount || (ok_ = false)); }

 private:
  std::string_view in_;
  bool ok_ = true;
};

std::string PercentEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '%' || c == '/' || c == '{' || c == '}') {
      out.push_back('%');
      out.push_back(kHex[(static_cast<uint8_t>(c) >> 4) & 0xf]);
      out.push_back(kHex[static_cast<uint8_t>(c) & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::optional<std::string> PercentDecode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

}  // namespace

std::string Tag(const core::TopicKey& topic) {
  return PercentEncode(topic.owner) + "/" + PercentEncode(topic.name);
}

std::optional<core::TopicKey> ParseTag(std::string_view tag) {
  const size_t slash = tag.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto owner = PercentDecode(tag.substr(0, slash));
  auto name = PercentDecode(tag.substr(slash + 1));
  if (!owner || !name) return std::nullopt;
  return core::TopicKey{std::move(*owner), std::move(*name)};
}

std::string LogKey(const std::string& tag) { return "mg:{" + tag + "}:log"; }
std::string MetaKey(const std::string& tag) { return "mg:{" + tag + "}:meta"; }
std::string TtlKey(const std::string& tag) { return "mg:{" + tag + "}:ttl"; }
std::string CursorsKey(const std::string& tag) { return "mg:{" + tag + "}:cursors"; }
std::string Channel(const std::string& tag) { return "mg:{" + tag + "}:new"; }

std::string TagOfChannel(std::string_view channel) {
  if (!channel.starts_with("mg:{") || !channel.ends_with("}:new")) return {};
  return std::string(channel.substr(4, channel.size() - 4 - 5));
}

std::string CatalogKey(const std::string& owner) {
  return "mg:catalog:{" + PercentEncode(owner) + "}";
}

std::string KvKey(const std::string& key) { return "mg:kv:" + key; }

std::string IdString(const MessageId& id) { return id.ToString(); }

std::string EncodeMessageBody(const core::Message& m) {
  Writer w;
  w.Str(m.topic);
  w.Str(m.payload);
  w.U8(static_cast<uint8_t>(m.format));
  w.Str(m.key);
  w.Str(m.producer_name);
  w.U64(m.sequence_id);
  w.U64(m.properties.size());
  for (const auto& [k, v] : m.properties) {
    w.Str(k);
    w.Str(v);
  }
  return w.Take();
}

bool DecodeMessageBody(std::string_view in, core::Message& m) {
  Reader r(in);
  uint8_t format = 0;
  uint64_t count = 0;
  if (!(r.ok() && r.Str(m.topic) && r.Str(m.payload) && r.U8(format) && r.Str(m.key) &&
        r.Str(m.producer_name) && r.U64(m.sequence_id) && r.Count(count))) {
    return false;
  }
  if (format > static_cast<uint8_t>(core::PayloadFormat::kBinary)) return false;
  m.format = static_cast<core::PayloadFormat>(format);
  m.properties.clear();
  for (uint64_t i = 0; i < count; ++i) {
    std::string k, v;
    if (!r.Str(k) || !r.Str(v)) return false;
    m.properties.emplace_back(std::move(k), std::move(v));
  }
  return r.done();
}

std::string EncodeUser(const auth::User& u) {
  Writer w;
  w.Str(u.user_id);
  w.Str(u.username);
  w.U8(u.email ? 1 : 0);
  w.Str(u.email.value_or(""));
  w.Str(u.password_hash);
  w.U8(u.is_active ? 1 : 0);
  w.U64(static_cast<uint64_t>(u.created_at));
  w.U64(u.permissions.size());
  for (const auto& p : u.permissions) w.Str(p);
  return w.Take();
}

bool DecodeUser(std::string_view in, auth::User& u) {
  Reader r(in);
  uint8_t has_email = 0, active = 0;
  std::string email;
  uint64_t count = 0;
  if (!(r.ok() && r.Str(u.user_id) && r.Str(u.username) && r.U8(has_email) && r.Str(email) &&
        r.Str(u.password_hash) && r.U8(active) && r.I64(u.created_at) && r.Count(count))) {
    return false;
  }
  u.email = has_email ? std::optional<std::string>(std::move(email)) : std::nullopt;
  u.is_active = active != 0;
  u.permissions.clear();
  for (uint64_t i = 0; i < count; ++i) {
    std::string p;
    if (!r.Str(p)) return false;
    u.permissions.push_back(std::move(p));
  }
  return r.done();
}

std::string EncodeCursor(const core::CursorState& c) {
  Writer w;
  w.U64(c.mark_delete.hi);
  w.U64(c.mark_delete.lo);
  w.U64(c.individually_acked.size());
  for (const auto& id : c.individually_acked) {
    w.U64(id.hi);
    w.U64(id.lo);
  }
  return w.Take();
}

bool DecodeCursor(std::string_view in, core::CursorState& c) {
  Reader r(in);
  uint64_t count = 0;
  if (!(r.ok() && r.U64(c.mark_delete.hi) && r.U64(c.mark_delete.lo) && r.Count(count))) {
    return false;
  }
  c.individually_acked.clear();
  for (uint64_t i = 0; i < count; ++i) {
    MessageId id;
    if (!r.U64(id.hi) || !r.U64(id.lo)) return false;
    c.individually_acked.push_back(id);
  }
  return r.done();
}

std::string EncodeTopicRecord(const core::TopicRecord& t) {
  Writer w;
  w.Str(t.topic_id);
  w.Str(t.owner_id);
  w.Str(t.name);
  w.U64(static_cast<uint64_t>(t.created_at));
  w.U8(t.description ? 1 : 0);
  w.Str(t.description.value_or(""));
  // Trailing and only when set: records of plain topics stay as older versions wrote them.
  if (t.partitions > 0) w.U64(t.partitions);
  return w.Take();
}

bool DecodeTopicRecord(std::string_view in, core::TopicRecord& t) {
  Reader r(in);
  uint8_t has_description = 0;
  std::string description;
  if (!(r.ok() && r.Str(t.topic_id) && r.Str(t.owner_id) && r.Str(t.name) &&
        r.I64(t.created_at) && r.U8(has_description) && r.Str(description))) {
    return false;
  }
  t.description =
      has_description ? std::optional<std::string>(std::move(description)) : std::nullopt;
  t.partitions = 0;
  if (!r.done()) {
    uint64_t n = 0;
    if (!r.U64(n) || n > UINT32_MAX) return false;
    t.partitions = static_cast<uint32_t>(n);
  }
  return r.done();
}

}  // namespace magnetar::storage::redis
