#include "eftl/matcher.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>


namespace magnetar::eftl {

namespace json = boost::json;

bool Matcher::Matches(const Message& m) const {
  for (const MatchTerm& t : terms) {
    const Field* f = m.Find(t.field);
    switch (t.kind) {
      case MatchTerm::Kind::kPresent:
        if (!f) return false;
        break;
      case MatchTerm::Kind::kAbsent:
        if (f) return false;
        break;
      case MatchTerm::Kind::kString:
        if (!f || f->type != FieldType::kString || f->text != t.text) return false;
        break;
      case MatchTerm::Kind::kLong:
        if (!f || f->type != FieldType::kLong || f->number != t.number) return false;
        break;
    }
  }
  return true;
}

std::optional<std::string> Matcher::StringTerm(std::string_view field) const {
  for (const MatchTerm& t : terms) {
    if (t.field == field && t.kind == MatchTerm::Kind::kString) return t.text;
  }
  return std::nullopt;
}

Result<Matcher> ParseMatcher(std::string_view text) {
  Matcher m;
  // Clients send "" or omit it for "everything".
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return m;
  json::parse_options opts;
  opts.max_depth = 4;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, {}, opts);
  if (ec) return InvalidArgument("matcher is not valid JSON: " + ec.message());
  if (!v.is_object()) return InvalidArgument("matcher must be a JSON object");
  const json::object& o = v.get_object();
  if (o.size() > kMaxMatcherTerms) {
    return InvalidArgument("matcher has more than " + std::to_string(kMaxMatcherTerms) + " fields");
  }
  for (const auto& kv : o) {
    const std::string_view name = kv.key();
    if (name.empty()) return InvalidArgument("matcher field names must not be empty");
    MatchTerm t;
    t.field = std::string(name);
    const json::value& val = kv.value();
    if (val.is_string()) {
      if (val.get_string().size() > kMaxMatcherString) {
        return InvalidArgument("matcher value of '" + t.field + "' is longer than " +
                               std::to_string(kMaxMatcherString) + " characters");
      }
      t.kind = MatchTerm::Kind::kString;
      t.text = std::string(val.get_string());
    } else if (val.is_int64()) {
      t.kind = MatchTerm::Kind::kLong;
      t.number = val.get_int64();
    } else if (val.is_bool()) {
      t.kind = val.get_bool() ? MatchTerm::Kind::kPresent : MatchTerm::Kind::kAbsent;
    } else {
      return InvalidArgument("matcher value of '" + t.field +
                             "' must be a string, a 64-bit integer, true or false");
    }
    m.terms.push_back(std::move(t));
  }
  return m;
}

namespace {

std::string Key(std::string_view field, char type, std::string_view value) {
  std::string k;
  k.reserve(field.size() + value.size() + 2);
  k.append(field);
  k.push_back('\0');
  k.push_back(type);
  k.append(value);
  return k;
}

}  // namespace

std::string EqualityKey(std::string_view field, const Field& value) {
  if (value.type == FieldType::kString) return Key(field, 's', value.text);
  if (value.type == FieldType::kLong) return Key(field, 'l', std::to_string(value.number));
  return {};
}

std::string EqualityKey(const MatchTerm& term) {
  if (term.kind == MatchTerm::Kind::kString) return Key(term.field, 's', term.text);
  if (term.kind == MatchTerm::Kind::kLong) return Key(term.field, 'l', std::to_string(term.number));
  return {};
}

}  // namespace magnetar::eftl
