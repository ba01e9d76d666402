#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

namespace magnetar {
namespace {

std::mutex g_mutex;
spdlog::level::level_enum g_level = spdlog::level::info;
LogFormat g_format = LogFormat::kText;

void ApplyFormat(spdlog::logger& logger) {
  if (g_format == LogFormat::kJson) {
    logger.set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","module":"%n","thread":%t,"msg":"%v"})",
        spdlog::pattern_time_type::utc);
  } else {
    logger.set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%-5l%$ [%n] %v", spdlog::pattern_time_type::utc);
  }
  logger.set_level(g_level);
}

}  // namespace

void ConfigureLogging(const std::string& level, LogFormat format) {
  std::lock_guard lock(g_mutex);
  g_level = spdlog::level::from_str(level);
  if (level == "warning") g_level = spdlog::level::warn;
  g_format = format;
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { ApplyFormat(*l); });
}

std::shared_ptr<spdlog::logger> Logger(const std::string& module) {
  std::lock_guard lock(g_mutex);
  if (auto existing = spdlog::get(module)) return existing;
  auto logger = spdlog::stderr_color_mt(module);
  ApplyFormat(*logger);
  return logger;
}

}  // namespace magnetar
