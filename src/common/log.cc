#include "common/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

namespace magnetar {
namespace {

std::mutex g_mutex;
spdlog::level::level_enum g_level = spdlog::level::info;
LogFormat g_format = LogFormat::kText;

// %j: the message as the inside of a JSON string (quotes, backslashes and control characters
// escaped), so every line of --log-format json parses whatever a message contains.
class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  static void Put(spdlog::memory_buf_t& dest, std::string_view text) {
    dest.append(text.data(), text.data() + text.size());
  }
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      switch (c) {
        case '"':
          Put(dest, "\\\"");
          break;
        case '\\':
          Put(dest, "\\\\");
          break;
        case '\n':
          Put(dest, "\\n");
          break;
        case '\r':
          Put(dest, "\\r");
          break;
        case '\t':
          Put(dest, "\\t");
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            const char esc[] = {'\\', 'u', '0', '0', kHex[(c >> 4) & 0xF], kHex[c & 0xF]};
            dest.append(esc, esc + sizeof esc);
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

void ApplyFormat(spdlog::logger& logger) {
  if (g_format == LogFormat::kJson) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonEscapedMessage>('j').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","module":"%n","thread":%t,"msg":"%j"})");
    logger.set_formatter(std::move(formatter));
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
