#include "client/cursor_file.h"

#include <boost/json/serialize.hpp>

#include "client/json_util.h"
#include "client/pyjson.h"
#include "client/secure_file.h"
#include "common/log.h"

namespace magnetar::client::detail {
namespace json = boost::json;

namespace {

constexpr std::size_t kMaxCursorBytes = 16u << 20;

// Python's truthiness and str() for the values a cursor file may hold.
std::optional<std::string> CursorValue(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string:
      if (v.get_string().empty()) return std::nullopt;
      return std::string(v.get_string());
    case json::kind::int64:
      if (v.get_int64() == 0) return std::nullopt;
      return std::to_string(v.get_int64());
    case json::kind::uint64:
      if (v.get_uint64() == 0) return std::nullopt;
      return std::to_string(v.get_uint64());
    case json::kind::double_:
      if (v.get_double() == 0.0) return std::nullopt;
      return json::serialize(v);
    case json::kind::bool_:
      if (!v.get_bool()) return std::nullopt;
      return std::string("True");
    case json::kind::null:
      return std::nullopt;
    case json::kind::array:
      if (v.get_array().empty()) return std::nullopt;
      return json::serialize(v);
    case json::kind::object:
      if (v.get_object().empty()) return std::nullopt;
      return json::serialize(v);
  }
  return std::nullopt;
}

}  // namespace

std::map<std::string, std::string> load_cursor_file(const std::filesystem::path& path) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  auto read = read_file(path, /*no_follow=*/false, kMaxCursorBytes, ec);
  if (!read) {
    if (ec != std::errc::no_such_file_or_directory) {
      Logger("client")->warn("Failed to load relay cursor file {}: {}", path.string(),
                             ec.message());
    }
    return out;
  }
  auto parsed = parse_json(read->content);
  if (!parsed) {
    Logger("client")->warn("Failed to load relay cursor file {}: not valid JSON", path.string());
    return out;
  }
  if (!parsed->is_object()) {
    Logger("client")->warn("Ignoring relay cursor file {}: not a JSON object", path.string());
    return out;
  }
  for (const auto& kv : parsed->get_object()) {
    if (kv.key().empty()) continue;
    if (auto value = CursorValue(kv.value())) out[std::string(kv.key())] = std::move(*value);
  }
  return out;
}

bool persist_cursor_file(const std::filesystem::path& path,
                         const std::map<std::string, std::string>& cursors) {
  try {
    create_private_directories(path.parent_path());
    json::object obj;
    for (const auto& [topic, id] : cursors) obj[topic] = id;
    atomic_write(path, python_json_dumps(obj), ".pulsar-relay-cursor-");
    return true;
  } catch (const std::exception& e) {
    // The in-memory cursor has moved already; the next successful persist catches the file up.
    Logger("client")->error("Failed to persist relay cursor file {}: {}", path.string(), e.what());
    return false;
  }
}

}  // namespace magnetar::client::detail
