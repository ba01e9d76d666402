// ParseCommandLine and ImportReferenceEnvironment for the options of TLS, the startup guards and
// the rate-limit switch. Each test clears the variables it reads.

#include "server/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <initializer_list>
#include <string>
#include <vector>

namespace magnetar::server {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { Clear(); }
  void TearDown() override { Clear(); }

  static void Clear() {
    for (const char* name :
         {"MAGNETAR_TRUSTED_HOSTS", "PULSAR_TRUSTED_HOSTS", "MAGNETAR_RATE_LIMITS",
          "PULSAR_RATELIMIT_ENABLED", "RATELIMIT_ENABLED", "MAGNETAR_TLS_CERT", "MAGNETAR_TLS_KEY",
          "MAGNETAR_ALLOW_INSECURE_DEFAULTS", "PULSAR_ALLOW_INSECURE_DEFAULTS",
          "MAGNETAR_QUOTA_PUBLISH_PER_MINUTE", "MAGNETAR_PULSAR_PORT", "MAGNETAR_PULSAR_WS_PORT",
          "MAGNETAR_ADVERTISED_ADDRESS"}) {
      unsetenv(name);
    }
  }

  static ServeConfig Parse(std::initializer_list<const char*> args) {
    std::vector<std::string> storage = {"magnetar", "serve"};
    storage.insert(storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : storage) argv.push_back(s.data());
    int exit_code = -1;
    auto config = ParseCommandLine(static_cast<int>(argv.size()), argv.data(), &exit_code);
    EXPECT_TRUE(config.has_value()) << "exit code " << exit_code;
    return config.value_or(ServeConfig{});
  }
};

TEST_F(ConfigTest, Defaults) {
  const ServeConfig c = Parse({});
  EXPECT_TRUE(c.rate_limits);
  EXPECT_EQ(c.quota_publish_per_minute, 0);
  EXPECT_EQ(c.quota_poll_per_minute, 0);
  EXPECT_TRUE(c.tls_cert.empty());
  EXPECT_TRUE(c.tls_key.empty());
  EXPECT_EQ(c.tls_handshake_timeout_seconds, 10);
  EXPECT_FALSE(c.trusted_hosts_set);
  EXPECT_FALSE(c.allow_insecure_defaults);
}

TEST_F(ConfigTest, TlsAndQuotaOptions) {
  const ServeConfig c = Parse({"--tls-cert", "/c.pem", "--tls-key", "/k.pem",
                               "--tls-handshake-timeout", "3", "--quota-publish-per-minute", "7",
                               "--quota-poll-per-minute", "9"});
  EXPECT_EQ(c.tls_cert, "/c.pem");
  EXPECT_EQ(c.tls_key, "/k.pem");
  EXPECT_EQ(c.tls_handshake_timeout_seconds, 3);
  EXPECT_EQ(c.quota_publish_per_minute, 7);
  EXPECT_EQ(c.quota_poll_per_minute, 9);
  setenv("MAGNETAR_TLS_CERT", "/env.pem", 1);
  setenv("MAGNETAR_QUOTA_PUBLISH_PER_MINUTE", "11", 1);
  const ServeConfig e = Parse({});
  EXPECT_EQ(e.tls_cert, "/env.pem");
  EXPECT_EQ(e.quota_publish_per_minute, 11);
}

TEST_F(ConfigTest, RateLimitSwitchSpellings) {
  for (const char* off : {"off", "OFF", "false", "no", "0"}) {
    EXPECT_FALSE(Parse({"--rate-limits", off}).rate_limits) << off;
  }
  for (const char* on : {"on", "true", "True", "yes", "1"}) {
    EXPECT_TRUE(Parse({"--rate-limits", on}).rate_limits) << on;
  }
}

TEST_F(ConfigTest, ReferenceRateLimitSwitch) {
  setenv("RATELIMIT_ENABLED", "false", 1);
  ImportReferenceEnvironment();
  EXPECT_FALSE(Parse({}).rate_limits);
  Clear();
  setenv("PULSAR_RATELIMIT_ENABLED", "False", 1);
  ImportReferenceEnvironment();
  EXPECT_FALSE(Parse({}).rate_limits);
  Clear();
  // Our own name wins over the reference's.
  setenv("MAGNETAR_RATE_LIMITS", "on", 1);
  setenv("RATELIMIT_ENABLED", "false", 1);
  ImportReferenceEnvironment();
  EXPECT_TRUE(Parse({}).rate_limits);
}

TEST_F(ConfigTest, TrustedHostsGivenEvenWhenEmpty) {
  EXPECT_FALSE(Parse({}).trusted_hosts_set);
  ServeConfig c = Parse({"--trusted-hosts", ""});
  EXPECT_TRUE(c.trusted_hosts_set);
  EXPECT_TRUE(c.trusted_hosts.empty());
  c = Parse({"--trusted-hosts", "a.example, b.example"});
  EXPECT_TRUE(c.trusted_hosts_set);
  EXPECT_EQ(c.trusted_hosts, (std::vector<std::string>{"a.example", "b.example"}));
  // The reference's JSON list, empty: CLI11 ignores an empty variable, the guard must not.
  setenv("PULSAR_TRUSTED_HOSTS", "[]", 1);
  ImportReferenceEnvironment();
  c = Parse({});
  EXPECT_TRUE(c.trusted_hosts_set);
  EXPECT_TRUE(c.trusted_hosts.empty());
}

TEST_F(ConfigTest, InsecureFlagFromTheReferenceEnvironment) {
  setenv("PULSAR_ALLOW_INSECURE_DEFAULTS", "true", 1);
  ImportReferenceEnvironment();
  EXPECT_TRUE(Parse({}).allow_insecure_defaults);
}

TEST_F(ConfigTest, PulsarPortAndAdvertisedAddress) {
  ServeConfig defaults = Parse({});
  EXPECT_EQ(defaults.pulsar_port, 6650);
  EXPECT_EQ(defaults.advertised_address, "");
  EXPECT_EQ(defaults.pulsar_tls_port, 6651);
  EXPECT_EQ(Parse({"--pulsar-tls-port", "0"}).pulsar_tls_port, 0);
  EXPECT_EQ(Parse({"--pulsar-tls-port", "-1"}).pulsar_tls_port, -1);
  EXPECT_EQ(defaults.pulsar_default_partitions, 0);
  EXPECT_EQ(Parse({"--pulsar-default-partitions", "4"}).pulsar_default_partitions, 4);
  ServeConfig c = Parse({"--pulsar-port", "0", "--advertised-address", "broker.example:7000"});
  EXPECT_EQ(c.pulsar_port, 0);
  EXPECT_EQ(c.advertised_address, "broker.example:7000");
  EXPECT_EQ(Parse({"--pulsar-port", "-1"}).pulsar_port, -1);
  setenv("MAGNETAR_PULSAR_PORT", "6651", 1);
  EXPECT_EQ(Parse({}).pulsar_port, 6651);

  std::vector<std::string> args = {"magnetar", "serve", "--pulsar-port", "70000"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  int exit_code = 0;
  EXPECT_FALSE(ParseCommandLine(static_cast<int>(argv.size()), argv.data(), &exit_code));
  EXPECT_NE(exit_code, 0);
}

TEST_F(ConfigTest, PulsarWsPort) {
  EXPECT_EQ(Parse({}).pulsar_ws_port, 8080);
  EXPECT_EQ(Parse({"--pulsar-ws-port", "0"}).pulsar_ws_port, 0);
  EXPECT_EQ(Parse({"--pulsar-ws-port", "-1"}).pulsar_ws_port, -1);
  setenv("MAGNETAR_PULSAR_WS_PORT", "8081", 1);
  EXPECT_EQ(Parse({}).pulsar_ws_port, 8081);

  std::vector<std::string> args = {"magnetar", "serve", "--pulsar-ws-port", "-2"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  int exit_code = 0;
  EXPECT_FALSE(ParseCommandLine(static_cast<int>(argv.size()), argv.data(), &exit_code));
  EXPECT_NE(exit_code, 0);
}

}  // namespace
}  // namespace magnetar::server
