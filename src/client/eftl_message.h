#pragma once

// EftlMessage: an eFTL message (spec eftl.md §a.4) for the C++ eFTL client (eftl.h).
//
// Typed fields: string, long, double, datetime (millisecond precision), opaque bytes, nested
// message, and homogeneous arrays of all of these but opaque. A getter returns nullopt when the
// field is not set or has another type (field_type() says which). Field names are unique; setting
// a name again replaces its value. to_json()/from_json() use the eFTL wire encoding
// ({"_d_":…} doubles, {"_m_":…} datetimes, {"_o_":…} opaques), which is also how Magnetar stores
// the message (so a relay reader sees exactly that JSON).
//
// A message received from a subscription also carries its delivery envelope (subscription id,
// delivery seq, store id, delivery count, and for a request its reply address); that is what
// acknowledge() and send_reply() use. Copies keep the envelope.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace magnetar::eftl {
struct Message;
}

namespace magnetar::client {

namespace detail {
struct EftlAccess;
}

enum class EftlFieldType {
  kString,
  kLong,
  kDouble,
  kDateTime,
  kOpaque,
  kMessage,
  kStringArray,
  kLongArray,
  kDoubleArray,
  kDateTimeArray,
  kMessageArray,
  kEmptyArray,  // [] received: the element type is unknown
};

class EftlMessage {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  EftlMessage();
  ~EftlMessage();
  EftlMessage(const EftlMessage& other);
  EftlMessage& operator=(const EftlMessage& other);
  EftlMessage(EftlMessage&& other) noexcept;
  EftlMessage& operator=(EftlMessage&& other) noexcept;

  // Parses the wire encoding (a JSON object); std::invalid_argument naming the bad field.
  static EftlMessage from_json(std::string_view text);
  std::string to_json() const;

  EftlMessage& set_string(const std::string& name, std::string value);
  EftlMessage& set_long(const std::string& name, std::int64_t value);
  EftlMessage& set_double(const std::string& name, double value);
  EftlMessage& set_datetime(const std::string& name, TimePoint value);  // truncated to ms
  EftlMessage& set_opaque(const std::string& name, std::string bytes);
  EftlMessage& set_message(const std::string& name, const EftlMessage& value);
  EftlMessage& set_string_array(const std::string& name, std::vector<std::string> values);
  EftlMessage& set_long_array(const std::string& name, std::vector<std::int64_t> values);
  EftlMessage& set_double_array(const std::string& name, std::vector<double> values);
  EftlMessage& set_datetime_array(const std::string& name, const std::vector<TimePoint>& values);
  EftlMessage& set_message_array(const std::string& name, const std::vector<EftlMessage>& values);

  std::optional<std::string> get_string(const std::string& name) const;
  std::optional<std::int64_t> get_long(const std::string& name) const;
  std::optional<double> get_double(const std::string& name) const;
  std::optional<TimePoint> get_datetime(const std::string& name) const;
  std::optional<std::string> get_opaque(const std::string& name) const;
  std::optional<EftlMessage> get_message(const std::string& name) const;
  std::optional<std::vector<std::string>> get_string_array(const std::string& name) const;
  std::optional<std::vector<std::int64_t>> get_long_array(const std::string& name) const;
  std::optional<std::vector<double>> get_double_array(const std::string& name) const;
  std::optional<std::vector<TimePoint>> get_datetime_array(const std::string& name) const;
  std::optional<std::vector<EftlMessage>> get_message_array(const std::string& name) const;

  std::vector<std::string> field_names() const;  // in the order they were set
  std::optional<EftlFieldType> field_type(const std::string& name) const;
  bool is_set(const std::string& name) const;
  void clear_field(const std::string& name);
  void clear_all_fields();
  bool empty() const;

  // The delivery envelope (zero / empty for a message that was not received).
  const std::string& subscription_id() const { return envelope_.subscription; }
  std::int64_t seq() const { return envelope_.seq; }
  std::int64_t store_message_id() const { return envelope_.sid; }
  std::int64_t delivery_count() const { return envelope_.cnt; }
  bool is_request() const { return !envelope_.reply_to.empty(); }

  // The codec's model (for the client's own use).
  const eftl::Message& body() const { return *body_; }
  explicit EftlMessage(eftl::Message body);

 private:
  friend struct detail::EftlAccess;
  struct Envelope {
    std::string subscription;
    std::int64_t seq = 0;
    std::int64_t sid = 0;
    std::int64_t cnt = 0;
    std::string reply_to;
    std::int64_t req = 0;
    bool client_ack = false;  // from a subscription in client ack mode
  };
  std::unique_ptr<eftl::Message> body_;
  Envelope envelope_;
};

}  // namespace magnetar::client
