#include "pulsar/message_codec.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <cstdint>

#include "pulsar/codec/batch.h"
#include "pulsar/codec/compression.h"
#include "pulsar_ws/frames.h"

namespace magnetar::pulsar {

namespace {

// The EncodingCache slot after kPulsarWsFrame (slots 2-3 are free). Not added to core's enum to
// keep core/message.h, which nearly everything includes, unchanged; the lead may name it there.
constexpr auto kPulsarBinaryEntry = static_cast<core::EncodingCache::Slot>(2);

// A payload that is a JSON object is kept as JSON, so relay clients receive the object itself
// (the bytes are unchanged); the Pulsar WebSocket API applies the same rule.
core::PayloadFormat FormatOf(const std::string& payload) {
  if (payload.empty() || payload.front() != '{') return core::PayloadFormat::kBinary;
  boost::system::error_code ec;
  boost::json::value parsed = boost::json::parse(payload, ec);
  return !ec && parsed.is_object() ? core::PayloadFormat::kJson : core::PayloadFormat::kBinary;
}

template <typename Props>
void CopyProperties(const Props& props, core::Message& m) {
  m.properties.reserve(props.size());
  for (const auto& kv : props) m.properties.emplace_back(kv.key(), kv.value());
}

// deliver_at_time (epoch ms) -> Message::deliver_at; the core holds the message until then.
UnixMicros DeliverAt(const proto::MessageMetadata& md) {
  if (!md.has_deliver_at_time() || md.deliver_at_time() <= 0) return 0;
  return md.deliver_at_time() > INT64_MAX / 1000 ? INT64_MAX : md.deliver_at_time() * 1000;
}

void SetEventTime(uint64_t event_time, core::Message& m) {
  if (event_time != 0) m.properties.emplace_back(pulsar_ws::kEventTimeProperty, std::to_string(event_time));
}

}  // namespace

SendDrafts DraftsFromSend(const Frame& frame, const std::string& producer_name,
                          uint32_t max_uncompressed) {
  SendDrafts out;
  const proto::MessageMetadata& md = frame.metadata;
  if (md.encryption_keys_size() > 0) {
    out.error = proto::NotAllowedError;
    out.message = "Encrypted payloads are not supported by this broker";
    return out;
  }
  if (md.has_num_chunks_from_msg() && md.num_chunks_from_msg() > 1) {
    out.error = proto::NotAllowedError;
    out.message = "Chunked messages are not supported by this broker";
    return out;
  }
  const std::string& name = md.producer_name().empty() ? producer_name : md.producer_name();
  // Decompressed here, once: every protocol then reads plain messages.
  std::string_view plain = frame.payload;
  std::string decompressed;
  if (md.compression() != proto::NONE) {
    auto d = Decompress(md.compression(), frame.payload, md.uncompressed_size(), max_uncompressed);
    if (!d.ok()) {
      out.error = proto::UnknownError;
      out.message = "Cannot decompress: " + d.status().message();
      return out;
    }
    decompressed = std::move(d).value();
    plain = decompressed;
  }
  if (!md.has_num_messages_in_batch()) {
    auto d = std::make_shared<core::Message>();
    d->payload = std::string(plain);
    d->format = FormatOf(d->payload);
    CopyProperties(md.properties(), *d);
    SetEventTime(md.event_time(), *d);
    d->key = md.partition_key();
    d->producer_name = name;
    d->sequence_id = md.sequence_id();
    d->deliver_at = DeliverAt(md);
    out.drafts.push_back(std::move(d));
    return out;
  }
  auto entries = ParseBatch(plain, md.num_messages_in_batch());
  if (!entries.ok()) {
    out.error = proto::UnknownError;
    out.message = "Invalid batch: " + entries.status().message();
    return out;
  }
  uint64_t seq = md.sequence_id();
  for (auto& e : *entries) {
    auto d = std::make_shared<core::Message>();
    d->payload = std::move(e.payload);
    d->format = FormatOf(d->payload);
    CopyProperties(e.metadata.properties(), *d);
    SetEventTime(e.metadata.event_time(), *d);
    d->key = e.metadata.partition_key();
    d->producer_name = name;
    d->sequence_id = e.metadata.has_sequence_id() ? e.metadata.sequence_id() : seq;
    d->deliver_at = DeliverAt(md);
    ++seq;
    out.drafts.push_back(std::move(d));
  }
  if (out.drafts.empty()) {
    out.error = proto::UnknownError;
    out.message = "Empty batch";
  }
  return out;
}

proto::MessageMetadata MetadataFor(const core::Message& m) {
  proto::MessageMetadata md;
  // Required fields, present even when empty or 0 (relay messages have no producer).
  md.set_producer_name(m.producer_name.empty() ? "magnetar" : m.producer_name);
  md.set_sequence_id(m.sequence_id);
  md.set_publish_time(static_cast<uint64_t>(m.publish_time / 1000));
  if (m.deliver_at != 0) md.set_deliver_at_time(m.deliver_at / 1000);
  for (const auto& [k, v] : m.properties) {
    if (k == pulsar_ws::kEventTimeProperty) {
      uint64_t t = 0;
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), t);
      if (ec == std::errc() && ptr == v.data() + v.size()) md.set_event_time(t);
      continue;
    }
    auto* kv = md.add_properties();
    kv->set_key(k);
    kv->set_value(v);
  }
  if (!m.key.empty()) md.set_partition_key(m.key);
  return md;
}

EncodedEntry EntryFor(const core::MessagePtr& message) {
  // Cached as [u32 crc][entry]: the crc covers the entry, so both are computed once.
  core::Encoded cached = message->encodings.Get(kPulsarBinaryEntry, [&] {
    const std::string entry = EncodeEntry(MetadataFor(*message).SerializeAsString(), message->payload);
    const uint32_t crc = Crc32c(entry);
    std::string out;
    out.reserve(4 + entry.size());
    for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<char>(crc >> shift));
    out += entry;
    return out;
  });
  const auto* b = reinterpret_cast<const uint8_t*>(cached->data());
  EncodedEntry e;
  e.crc = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
  e.entry = std::string_view(*cached).substr(4);
  e.holder = std::move(cached);
  return e;
}

}  // namespace magnetar::pulsar
