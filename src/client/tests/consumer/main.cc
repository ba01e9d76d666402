// Uses the installed headers and libraries without a server: URL rules, a credentials file, a
// transport (built with a fake token provider) and the fake relay client.

#include <magnetar/client/client.h>
#include <magnetar/client/testing/fakes.h>

#include <cstdio>
#include <filesystem>
#include <memory>

int main() {
  namespace mc = magnetar::client;
  if (mc::normalize_relay_url("https://relay.example/") != "https://relay.example") return 1;
  if (mc::quote_topic("a/b") != "a%2Fb") return 2;
  try {
    mc::normalize_relay_url("http://relay.example");
    return 3;
  } catch (const mc::UrlError&) {
  }
  const auto dir = std::filesystem::temp_directory_path() / "magnetar-consumer-check";
  std::filesystem::remove_all(dir);
  mc::CredentialsFile file(dir / "relay_credentials.json");
  file.save({"https://relay.example", "jti.secret", mc::utc_now_iso(), std::nullopt, std::nullopt});
  if (file.load()->refresh_token != "jti.secret") return 4;
  std::filesystem::remove_all(dir);
  auto tokens = std::make_shared<mc::testing::FakeAuthManager>();
  mc::RelayTransport transport("http://127.0.0.1:9", tokens);
  transport.set_last_message_id("jobs", "1-0");
  if (transport.last_message_id("jobs") != "1-0") return 5;
  mc::testing::FakeRelayClient fake;
  fake.create_or_verify_topic("AT", "jobs");
  if (fake.created.at("jobs") != "u-1") return 6;
  std::puts("consumer ok");
  return 0;
}
