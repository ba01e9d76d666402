#include "server/startup_guards.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace magnetar::server {
namespace {

std::vector<std::string> Ids(const ServeConfig& c) {
  std::vector<std::string> ids;
  for (const auto& f : CheckStartupGuards(c)) ids.push_back(f.id);
  return ids;
}

using Ids_ = std::vector<std::string>;

TEST(StartupGuards, DefaultsAreSafe) {
  // No secret (random per start), no bootstrap admin (random password file), loopback, no lists.
  EXPECT_EQ(Ids(ServeConfig{}), Ids_{});
}

TEST(StartupGuards, ReferenceDefaultSecretIsRefused) {
  ServeConfig c;
  c.jwt_secret_key = std::string(kReferenceDefaultJwtSecret);
  EXPECT_EQ(Ids(c), Ids_{"jwt-secret-default"});
}

TEST(StartupGuards, ShortSecretIsRefusedButLongEnoughIsFine) {
  ServeConfig c;
  c.jwt_secret_key = std::string(31, 'x');
  EXPECT_EQ(Ids(c), Ids_{"jwt-secret-short"});
  c.jwt_secret_key = std::string(32, 'x');
  EXPECT_EQ(Ids(c), Ids_{});
}

TEST(StartupGuards, MessagesNeverContainTheSecret) {
  ServeConfig c;
  c.jwt_secret_key = "hunter2-sekrit";
  c.bootstrap_admin_password = "pw-very-secret";
  const auto findings = CheckStartupGuards(c);
  ASSERT_EQ(findings.size(), 2u);
  for (const auto& f : findings) {
    EXPECT_EQ(f.problem.find("hunter2"), std::string::npos) << f.problem;
    EXPECT_EQ(f.fix.find("hunter2"), std::string::npos) << f.fix;
    EXPECT_EQ(f.problem.find("pw-very-secret"), std::string::npos) << f.problem;
  }
  const Status refused = EnforceStartupGuards(c);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.message().find("hunter2"), std::string::npos);
  EXPECT_EQ(refused.message().find("pw-very-secret"), std::string::npos);
}

TEST(StartupGuards, HalfABootstrapAdminIsRefused) {
  ServeConfig c;
  c.bootstrap_admin_username = "root";
  EXPECT_EQ(Ids(c), Ids_{"bootstrap-admin-password"});
  c.bootstrap_admin_password = "long-enough-password";
  EXPECT_EQ(Ids(c), Ids_{});
  c.bootstrap_admin_username.clear();
  EXPECT_EQ(Ids(c), Ids_{"bootstrap-admin-username"});
}

TEST(StartupGuards, ExplicitlyEmptyTrustedHostsAreRefused) {
  ServeConfig c;
  c.trusted_hosts_set = true;  // given, but empty
  EXPECT_EQ(Ids(c), Ids_{"trusted-hosts-empty"});
  c.trusted_hosts = {"relay.example.org"};
  EXPECT_EQ(Ids(c), Ids_{});
}

TEST(StartupGuards, WildcardTrustedHostOnlyMattersOffLoopback) {
  ServeConfig c;
  c.trusted_hosts_set = true;
  c.trusted_hosts = {"*"};
  for (const char* host : {"127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"}) {
    c.host = host;
    EXPECT_EQ(Ids(c), Ids_{}) << host;
  }
  for (const char* host : {"0.0.0.0", "::", "10.1.2.3", "relay.example.org"}) {
    c.host = host;
    EXPECT_EQ(Ids(c), Ids_{"trusted-hosts-any"}) << host;
  }
  c.trusted_hosts = {"relay.example.org", "*"};  // '*' anywhere in the list accepts any host
  EXPECT_EQ(Ids(c), Ids_{"trusted-hosts-any"});
}

TEST(StartupGuards, WildcardOriginOnlyMattersOffLoopback) {
  ServeConfig c;
  c.allowed_origins = {"https://app.example.org", "*"};
  EXPECT_EQ(Ids(c), Ids_{});
  c.host = "0.0.0.0";
  EXPECT_EQ(Ids(c), Ids_{"allowed-origins-any"});
  c.allowed_origins = {"https://app.example.org"};
  EXPECT_EQ(Ids(c), Ids_{});
}

TEST(StartupGuards, EveryFindingIsReportedInOrder) {
  ServeConfig c;
  c.host = "0.0.0.0";
  c.jwt_secret_key = "short";
  c.bootstrap_admin_username = "root";
  c.trusted_hosts_set = true;
  c.trusted_hosts = {"*"};
  c.allowed_origins = {"*"};
  EXPECT_EQ(Ids(c), (Ids_{"jwt-secret-short", "bootstrap-admin-password", "trusted-hosts-any",
                          "allowed-origins-any"}));
  const Status refused = EnforceStartupGuards(c);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  for (const char* id : {"[jwt-secret-short]", "[bootstrap-admin-password]",
                         "[trusted-hosts-any]", "[allowed-origins-any]", "Fix:",
                         "--allow-insecure-defaults"}) {
    EXPECT_NE(refused.message().find(id), std::string::npos) << id << "\n" << refused.message();
  }
}

TEST(StartupGuards, InsecureFlagStartsAnyway) {
  ServeConfig c;
  c.jwt_secret_key = "short";
  c.allow_insecure_defaults = true;
  EXPECT_TRUE(EnforceStartupGuards(c).ok());
  c.allow_insecure_defaults = false;
  EXPECT_FALSE(EnforceStartupGuards(c).ok());
  EXPECT_TRUE(EnforceStartupGuards(ServeConfig{}).ok());
}

TEST(StartupGuards, Loopback) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.255.0.9"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("[::1]"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("::"));
  EXPECT_FALSE(IsLoopbackHost("192.168.1.1"));
  EXPECT_FALSE(IsLoopbackHost("relay.example.org"));
  EXPECT_FALSE(IsLoopbackHost(""));
}

}  // namespace
}  // namespace magnetar::server
