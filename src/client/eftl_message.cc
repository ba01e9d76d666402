#include "client/eftl_message.h"

#include <stdexcept>

#include "eftl/codec.h"

namespace magnetar::client {

namespace {

using eftl::Field;
using eftl::FieldType;

std::int64_t ToMillis(EftlMessage::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

EftlMessage::TimePoint FromMillis(std::int64_t ms) {
  return EftlMessage::TimePoint(
      std::chrono::duration_cast<EftlMessage::TimePoint::duration>(std::chrono::milliseconds(ms)));
}

void CheckName(const std::string& name) {
  if (name.empty()) throw std::invalid_argument("an eFTL field needs a name");
}

}  // namespace

EftlMessage::EftlMessage() : body_(std::make_unique<eftl::Message>()) {}
EftlMessage::EftlMessage(eftl::Message body)
    : body_(std::make_unique<eftl::Message>(std::move(body))) {}
EftlMessage::~EftlMessage() = default;
EftlMessage::EftlMessage(const EftlMessage& other)
    : body_(std::make_unique<eftl::Message>(*other.body_)), envelope_(other.envelope_) {}
EftlMessage& EftlMessage::operator=(const EftlMessage& other) {
  if (this != &other) {
    *body_ = *other.body_;
    envelope_ = other.envelope_;
  }
  return *this;
}
EftlMessage::EftlMessage(EftlMessage&& other) noexcept
    : body_(std::make_unique<eftl::Message>(std::move(*other.body_))),
      envelope_(std::move(other.envelope_)) {}
EftlMessage& EftlMessage::operator=(EftlMessage&& other) noexcept {
  if (this != &other) {
    *body_ = std::move(*other.body_);
    envelope_ = std::move(other.envelope_);
  }
  return *this;
}

EftlMessage EftlMessage::from_json(std::string_view text) {
  auto parsed = eftl::ParseMessage(text, eftl::DecodeMode::kWire);
  if (!parsed.ok()) throw std::invalid_argument("not an eFTL message: " + parsed.status().message());
  return EftlMessage(std::move(parsed).value());
}

std::string EftlMessage::to_json() const { return eftl::EncodeMessage(*body_); }

EftlMessage& EftlMessage::set_string(const std::string& name, std::string value) {
  CheckName(name);
  body_->Set(name, Field::String(std::move(value)));
  return *this;
}
EftlMessage& EftlMessage::set_long(const std::string& name, std::int64_t value) {
  CheckName(name);
  body_->Set(name, Field::Long(value));
  return *this;
}
EftlMessage& EftlMessage::set_double(const std::string& name, double value) {
  CheckName(name);
  body_->Set(name, Field::Double(value));
  return *this;
}
EftlMessage& EftlMessage::set_datetime(const std::string& name, TimePoint value) {
  CheckName(name);
  body_->Set(name, Field::DateTime(ToMillis(value)));
  return *this;
}
EftlMessage& EftlMessage::set_opaque(const std::string& name, std::string bytes) {
  CheckName(name);
  body_->Set(name, Field::Opaque(std::move(bytes)));
  return *this;
}
EftlMessage& EftlMessage::set_message(const std::string& name, const EftlMessage& value) {
  CheckName(name);
  body_->Set(name, Field::Nested(*value.body_));
  return *this;
}
EftlMessage& EftlMessage::set_string_array(const std::string& name,
                                           std::vector<std::string> values) {
  CheckName(name);
  Field f;
  f.type = values.empty() ? FieldType::kEmptyArray : FieldType::kStringArray;
  f.texts = std::move(values);
  body_->Set(name, std::move(f));
  return *this;
}
EftlMessage& EftlMessage::set_long_array(const std::string& name, std::vector<std::int64_t> values) {
  CheckName(name);
  Field f;
  f.type = values.empty() ? FieldType::kEmptyArray : FieldType::kLongArray;
  f.numbers = std::move(values);
  body_->Set(name, std::move(f));
  return *this;
}
EftlMessage& EftlMessage::set_double_array(const std::string& name, std::vector<double> values) {
  CheckName(name);
  Field f;
  f.type = values.empty() ? FieldType::kEmptyArray : FieldType::kDoubleArray;
  f.reals = std::move(values);
  body_->Set(name, std::move(f));
  return *this;
}
EftlMessage& EftlMessage::set_datetime_array(const std::string& name,
                                             const std::vector<TimePoint>& values) {
  CheckName(name);
  Field f;
  f.type = values.empty() ? FieldType::kEmptyArray : FieldType::kDateTimeArray;
  for (const auto& t : values) f.numbers.push_back(ToMillis(t));
  body_->Set(name, std::move(f));
  return *this;
}
EftlMessage& EftlMessage::set_message_array(const std::string& name,
                                            const std::vector<EftlMessage>& values) {
  CheckName(name);
  Field f;
  f.type = values.empty() ? FieldType::kEmptyArray : FieldType::kMessageArray;
  for (const auto& m : values) f.messages.push_back(*m.body_);
  body_->Set(name, std::move(f));
  return *this;
}

namespace {

// The field when it has `type`; an empty array counts as an array of any element type.
const Field* Typed(const eftl::Message& m, const std::string& name, FieldType type) {
  const Field* f = m.Find(name);
  if (!f) return nullptr;
  if (f->type == type) return f;
  const bool array = type == FieldType::kStringArray || type == FieldType::kLongArray ||
                     type == FieldType::kDoubleArray || type == FieldType::kDateTimeArray ||
                     type == FieldType::kMessageArray;
  return array && f->type == FieldType::kEmptyArray ? f : nullptr;
}

}  // namespace

std::optional<std::string> EftlMessage::get_string(const std::string& name) const {
  if (const Field* f = Typed(*body_, name, FieldType::kString)) return f->text;
  return std::nullopt;
}
std::optional<std::int64_t> EftlMessage::get_long(const std::string& name) const {
  if (const Field* f = Typed(*body_, name, FieldType::kLong)) return f->number;
  return std::nullopt;
}
std::optional<double> EftlMessage::get_double(const std::string& name) const {
  if (const Field* f = Typed(*body_, name, FieldType::kDouble)) return f->real;
  return std::nullopt;
}
std::optional<EftlMessage::TimePoint> EftlMessage::get_datetime(const std::string& name) const {
  if (const Field* f = Typed(*body_, name, FieldType::kDateTime)) return FromMillis(f->number);
  return std::nullopt;
}
std::optional<std::string> EftlMessage::get_opaque(const std::string& name) const {
  if (const Field* f = Typed(*body_, name, FieldType::kOpaque)) return f->text;
  return std::nullopt;
}
std::optional<EftlMessage> EftlMessage::get_message(const std::string& name) const {
  const Field* f = Typed(*body_, name, FieldType::kMessage);
  if (!f) return std::nullopt;
  return f->messages.empty() ? EftlMessage() : EftlMessage(f->messages.front());
}
std::optional<std::vector<std::string>> EftlMessage::get_string_array(const std::string& name) const {
  if (const Field* f = Typed(*body_, name, FieldType::kStringArray)) return f->texts;
  return std::nullopt;
}
std::optional<std::vector<std::int64_t>> EftlMessage::get_long_array(const std::string& name) const {
  if (const Field* f = Typed(*body_, name, FieldType::kLongArray)) return f->numbers;
  return std::nullopt;
}
std::optional<std::vector<double>> EftlMessage::get_double_array(const std::string& name) const {
  if (const Field* f = Typed(*body_, name, FieldType::kDoubleArray)) return f->reals;
  return std::nullopt;
}
std::optional<std::vector<EftlMessage::TimePoint>> EftlMessage::get_datetime_array(
    const std::string& name) const {
  const Field* f = Typed(*body_, name, FieldType::kDateTimeArray);
  if (!f) return std::nullopt;
  std::vector<TimePoint> out;
  for (std::int64_t ms : f->numbers) out.push_back(FromMillis(ms));
  return out;
}
std::optional<std::vector<EftlMessage>> EftlMessage::get_message_array(
    const std::string& name) const {
  const Field* f = Typed(*body_, name, FieldType::kMessageArray);
  if (!f) return std::nullopt;
  std::vector<EftlMessage> out;
  for (const auto& m : f->messages) out.emplace_back(m);
  return out;
}

std::vector<std::string> EftlMessage::field_names() const {
  std::vector<std::string> out;
  for (const auto& f : body_->fields) out.push_back(f.name);
  return out;
}

std::optional<EftlFieldType> EftlMessage::field_type(const std::string& name) const {
  const Field* f = body_->Find(name);
  if (!f) return std::nullopt;
  // The two enums list the same types in the same order.
  return static_cast<EftlFieldType>(static_cast<int>(f->type));
}

bool EftlMessage::is_set(const std::string& name) const { return body_->Find(name) != nullptr; }

void EftlMessage::clear_field(const std::string& name) {
  auto& fields = body_->fields;
  for (auto it = fields.begin(); it != fields.end(); ++it) {
    if (it->name == name) {
      fields.erase(it);
      return;
    }
  }
}

void EftlMessage::clear_all_fields() { body_->fields.clear(); }

bool EftlMessage::empty() const { return body_->empty(); }

}  // namespace magnetar::client
