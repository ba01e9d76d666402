// normalize_relay_url and quote_topic (spec clients.md §A.1, §A.7 "URL", §A.10.13-14).

#include "client/url.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "client/auth.h"
#include "client/errors.h"
#include "client/topics.h"
#include "client/transport.h"

namespace magnetar::client {
namespace {

// Sets or clears the insecure bypass variable for one test.
class BypassEnv {
 public:
  explicit BypassEnv(const char* value) {
    if (const char* old = std::getenv(kInsecureBypassEnvVar)) old_ = old;
    if (value) {
      setenv(kInsecureBypassEnvVar, value, 1);
    } else {
      unsetenv(kInsecureBypassEnvVar);
    }
  }
  ~BypassEnv() {
    if (old_) {
      setenv(kInsecureBypassEnvVar, old_->c_str(), 1);
    } else {
      unsetenv(kInsecureBypassEnvVar);
    }
  }

 private:
  std::optional<std::string> old_;
};

std::string ErrorOf(std::string_view url, bool allow_localhost = true) {
  try {
    normalize_relay_url(url, allow_localhost);
  } catch (const UrlError& e) {
    return e.what();
  }
  return "<accepted>";
}

TEST(NormalizeRelayUrl, StripsTrailingSlashKeepsPortAndCase) {
  BypassEnv env(nullptr);
  EXPECT_EQ(normalize_relay_url("https://relay.example/"), "https://relay.example");
  EXPECT_EQ(normalize_relay_url("https://relay.example:9000"), "https://relay.example:9000");
  EXPECT_EQ(normalize_relay_url("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
  EXPECT_EQ(normalize_relay_url("HTTPS://Relay.Example"), "https://Relay.Example");
  EXPECT_EQ(normalize_relay_url("https://relay.example?"), "https://relay.example");
  EXPECT_EQ(normalize_relay_url("https://relay.example#"), "https://relay.example");
}

TEST(NormalizeRelayUrl, PlainHttpOnlyToLocalhost) {
  BypassEnv env(nullptr);
  EXPECT_EQ(normalize_relay_url("http://localhost:8080"), "http://localhost:8080");
  EXPECT_EQ(normalize_relay_url("http://LOCALHOST:8080"), "http://LOCALHOST:8080");
  EXPECT_EQ(normalize_relay_url("http://[::1]:8080"), "http://[::1]:8080");
  EXPECT_NE(ErrorOf("http://relay.example").find("plaintext"), std::string::npos);
}

TEST(NormalizeRelayUrl, RejectsEachRuleWithItsMessage) {
  BypassEnv env(nullptr);
  EXPECT_NE(ErrorOf("ftp://relay.example").find("http://"), std::string::npos);
  EXPECT_NE(ErrorOf("ftp://relay.example").find("'ftp'"), std::string::npos);
  EXPECT_NE(ErrorOf("").find("http://"), std::string::npos);
  EXPECT_NE(ErrorOf("https://").find("host"), std::string::npos);
  EXPECT_NE(ErrorOf("https://user:pw@relay.example").find("username:password"), std::string::npos);
  EXPECT_NE(ErrorOf("https://@relay.example").find("username:password"), std::string::npos);
  EXPECT_NE(ErrorOf("https://relay.example/api/v1").find("path component"), std::string::npos);
  EXPECT_NE(ErrorOf("https://relay.example//").find("path component"), std::string::npos);
  EXPECT_NE(ErrorOf("https://relay.example?token=abc").find("query string or fragment"),
            std::string::npos);
  EXPECT_NE(ErrorOf("https://relay.example#frag").find("query string or fragment"),
            std::string::npos);
  // C++ tightenings: a numeric port, no whitespace.
  EXPECT_NE(ErrorOf("https://relay:abc").find("port"), std::string::npos);
  EXPECT_NE(ErrorOf("https://relay:70000").find("port"), std::string::npos);
  EXPECT_NE(ErrorOf(" https://relay.example").find("whitespace"), std::string::npos);
}

TEST(NormalizeRelayUrl, FirstFailingRuleWins) {
  BypassEnv env(nullptr);
  // Scheme before everything, host before userinfo, path before query.
  EXPECT_NE(ErrorOf("ftp://u:p@host/path").find("http://"), std::string::npos);
  EXPECT_NE(ErrorOf("https://relay.example/x?y=1").find("path component"), std::string::npos);
  EXPECT_NE(ErrorOf("http://u:p@remote.example").find("username:password"), std::string::npos);
}

TEST(NormalizeRelayUrl, BypassOnlyWithExactlyOne) {
  for (const char* value : {"true", "yes", "0", "", " 1"}) {
    BypassEnv env(value);
    EXPECT_NE(ErrorOf("http://relay.example").find("plaintext"), std::string::npos) << value;
  }
  BypassEnv env("1");
  EXPECT_EQ(normalize_relay_url("http://relay.example"), "http://relay.example");
}

TEST(NormalizeRelayUrl, AllowInsecureLocalhostFalseRejectsLocalhost) {
  BypassEnv env(nullptr);
  EXPECT_NE(ErrorOf("http://localhost:8080", false).find("allow_insecure_localhost"),
            std::string::npos);
  EXPECT_EQ(normalize_relay_url("https://localhost:8080", false), "https://localhost:8080");
}

TEST(NormalizeRelayUrl, ConstructorsValidate) {
  BypassEnv env(nullptr);
  EXPECT_THROW(HttpRelayClient("http://relay.example"), UrlError);
  EXPECT_THROW(make_auth_manager("https://relay.example/api", AuthConfig{"u", "p"}), UrlError);
  EXPECT_THROW(RelayTransport("ftp://x", AuthConfig{"u", "p"}), UrlError);
}

TEST(ParseRelayEndpoint, DefaultPortsAndHostHeader) {
  auto e = parse_relay_endpoint("https://Relay.Example");
  EXPECT_TRUE(e.tls);
  EXPECT_EQ(e.host, "relay.example");
  EXPECT_EQ(e.port, 443);
  EXPECT_EQ(e.host_header, "Relay.Example");
  auto v6 = parse_relay_endpoint("http://[::1]:8080");
  EXPECT_FALSE(v6.tls);
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 8080);
  EXPECT_EQ(v6.host_header, "[::1]:8080");
}

TEST(QuoteTopic, EncodesEverythingButUnreserved) {
  EXPECT_EQ(quote_topic("normal-topic_1"), "normal-topic_1");
  EXPECT_EQ(quote_topic("a.b~c"), "a.b~c");
  EXPECT_EQ(quote_topic("../admin/users").find('/'), std::string::npos);
  EXPECT_EQ(quote_topic("../admin/users"), "..%2Fadmin%2Fusers");
  EXPECT_EQ(quote_topic("100%"), "100%25");
  EXPECT_EQ(quote_topic("a#b"), "a%23b");
  EXPECT_EQ(quote_topic("weird/../topic name"), "weird%2F..%2Ftopic%20name");
  EXPECT_EQ(quote_topic("caf\xc3\xa9"), "caf%C3%A9");
  EXPECT_EQ(quote_topic("?&=+"), "%3F%26%3D%2B");
}

}  // namespace
}  // namespace magnetar::client
