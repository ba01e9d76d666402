#include "server/config_file.h"

#include <toml++/toml.h>

#include <cstdlib>
#include <cstring>

namespace magnetar::server {

namespace {

std::string EnvName(std::string_view key) {
  std::string env = "MAGNETAR_";
  for (char ch : key) {
    env.push_back(ch == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
  }
  return env;
}

// A scalar as the command line would spell it; nullopt for tables and other shapes.
std::optional<std::string> Scalar(const toml::node& node) {
  if (auto s = node.value<std::string>()) return *s;
  if (auto b = node.as_boolean()) return b->get() ? "true" : "false";
  if (auto i = node.as_integer()) return std::to_string(i->get());
  if (auto f = node.as_floating_point()) return std::to_string(f->get());
  return std::nullopt;
}

}  // namespace

std::string FindConfigPath(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) return argv[i + 1];
    if (std::strncmp(argv[i], "--config=", 9) == 0) return argv[i] + 9;
  }
  const char* env = std::getenv("MAGNETAR_CONFIG");
  return env ? env : "";
}

Status LoadConfigFile(const std::string& path) {
  toml::table parsed;
  try {
    // Start-up only: the packaged toml++ reports errors by exception.
    parsed = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return InvalidArgument("cannot read config file " + path + ": " + std::string(e.description()));
  }
  for (const auto& [key, node] : parsed) {
    std::optional<std::string> value;
    if (const toml::array* array = node.as_array()) {
      std::string csv;
      for (const auto& item : *array) {
        auto v = Scalar(item);
        if (!v) return InvalidArgument("config key '" + std::string(key.str()) + "': bad list");
        if (!csv.empty()) csv += ",";
        csv += *v;
      }
      value = csv;
    } else {
      value = Scalar(node);
    }
    if (!value) {
      return InvalidArgument("config key '" + std::string(key.str()) + "' must be a value or list");
    }
    const std::string env = EnvName(key.str());
    if (!std::getenv(env.c_str())) setenv(env.c_str(), value->c_str(), 0);
  }
  return Status::Ok();
}

}  // namespace magnetar::server
