#pragma once

// The client commands. Each returns the process exit code, prints results on stdout (human
// text, or JSON with --json) and progress and errors on stderr, and throws UsageError,
// NotLoggedIn or a client::Error for cli.cc to report.

#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "cli/session.h"

namespace magnetar::cli {

struct LoginOptions {
  std::string username;
  std::string password;
  bool password_stdin = false;
  bool device = false;
  bool pair = false;
  std::string client_hint;            // default "magnetar-cli on <hostname>"
  std::string secondary_credentials;  // --pair: where to save the second token
};
int Login(Session& session, const LoginOptions& options, std::stop_token stop);

struct LogoutOptions {
  bool local_only = false;  // do not revoke on the relay
};
int Logout(Session& session, const LogoutOptions& options);

int Whoami(Session& session);
int TopicsList(Session& session);
int TopicsCreate(Session& session, const std::string& name, const std::string& description);
int TopicsDelete(Session& session, const std::string& name);

struct PublishOptions {
  std::string topic;
  std::string json;  // a JSON object, or "-" for JSON lines on stdin
  std::optional<std::int64_t> ttl;
  std::vector<std::string> metadata;  // KEY=VALUE
  int max_attempts = 5;               // 0 = retry for ever
};
int Publish(Session& session, const PublishOptions& options, std::stop_token stop);

struct PollOptions {
  std::vector<std::string> topics;
  bool follow = false;
  int timeout = 30;
  std::string cursor_file;
  std::string since;  // start after this id for topics with no cursor yet
};
int Poll(Session& session, const PollOptions& options, std::stop_token stop);

struct SubscribeOptions {
  std::vector<std::string> topics;
  std::string offset = "last";
  int count = 0;  // stop after this many messages (0 = never)
};
int Subscribe(Session& session, const SubscribeOptions& options, std::stop_token stop);

// `magnetar pulsar ...` (the Pulsar binary protocol; pulsar_commands.cc).
struct PulsarOptions {
  std::string service_url;  // default: MAGNETAR_PULSAR_URL, else pulsar://<relay host>:6650
  std::string token;        // default: MAGNETAR_TOKEN, else the credentials' access token
  int timeout = 30;         // seconds for connecting, registering and each send
};

struct PulsarProduceOptions {
  PulsarOptions common;
  std::string topic;
  std::string key;
  std::vector<std::string> properties;  // KEY=VALUE
  std::vector<std::string> messages;
};
int PulsarProduce(Session& session, const PulsarProduceOptions& options, std::stop_token stop);

struct PulsarConsumeOptions {
  PulsarOptions common;
  std::string topic;
  std::string subscription;
  std::string type = "exclusive";
  std::string position = "latest";
  int count = 0;  // stop after this many messages (0 = never)
};
int PulsarConsume(Session& session, const PulsarConsumeOptions& options, std::stop_token stop);

}  // namespace magnetar::cli
