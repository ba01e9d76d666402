#pragma once

// Logging facade: one named spdlog logger per module. Never log a secret, token or password.

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace magnetar {

enum class LogFormat { kText, kJson };

// Configures every logger (level, format). Safe to call once at start-up.
void ConfigureLogging(const std::string& level, LogFormat format);

// The logger for a module, created on first use ("relay", "core", "http", ...).
std::shared_ptr<spdlog::logger> Logger(const std::string& module);

}  // namespace magnetar
