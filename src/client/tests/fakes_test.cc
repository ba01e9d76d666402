// The test doubles shipped in magnetar_client_testing (spec clients.md §A.8).

#include "client/testing/fakes.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "client/errors.h"

namespace magnetar::client::testing {
namespace {

namespace json = boost::json;

TEST(FakeAuthManager, ReturnsItsTokenAndCountsInvalidations) {
  FakeAuthManager fake;
  EXPECT_EQ(fake.get_token(), "stub-access-token");
  fake.invalidate();
  fake.invalidate();
  EXPECT_EQ(fake.invalidate_calls, 2);
  EXPECT_EQ(FakeAuthManager("x").get_token(), "x");
}

TEST(FakeRelayClient, RecordsExchangesAndWhoami) {
  FakeRelayClient fake;
  json::object tokens = fake.exchange_refresh_token("RT-OLD");
  EXPECT_EQ(
      tokens,
      json::parse(R"({"access_token":"AT-NEW","refresh_token":"RT-NEW","token_type":"bearer",)"
                  R"("expires_in":3600})")
          .as_object());
  EXPECT_EQ(fake.whoami("AT").at("user_id"), "u-1");
  EXPECT_EQ(fake.exchange_calls, std::vector<std::string>{"RT-OLD"});
  EXPECT_EQ(fake.whoami_calls, std::vector<std::string>{"AT"});
}

TEST(FakeRelayClient, TopicClaims) {
  FakeRelayClient fake;
  fake.preclaimed["taken"] = "u-2";
  fake.preclaimed["mine"] = "u-1";
  EXPECT_THROW(fake.create_or_verify_topic("AT", "taken"), TopicOwnershipConflict);
  EXPECT_NO_THROW(fake.create_or_verify_topic("AT", "mine"));
  EXPECT_NO_THROW(fake.create_or_verify_topic("AT", "fresh"));
  EXPECT_EQ(fake.created, (std::map<std::string, std::string>{{"fresh", "u-1"}, {"mine", "u-1"}}));
  EXPECT_TRUE(fake.whoami_calls.empty());
}

TEST(FakeRelayClient, PagesStoredMessages) {
  FakeRelayClient fake;
  for (int i = 1; i <= 5; ++i) {
    fake.stored_messages["t"].push_back({{"message_id", "m" + std::to_string(i)}});
  }
  json::object page = fake.fetch_messages("AT", "t", {2, Order::desc, std::nullopt});
  EXPECT_EQ(page.at("messages").as_array().size(), 2u);
  EXPECT_EQ(page.at("messages").as_array()[0].at("message_id"), "m5");
  EXPECT_EQ(page.at("next_cursor"), "m4");
  EXPECT_EQ(page.at("total"), 2);
  page = fake.fetch_messages("AT", "t", {2, Order::asc, "m3"});
  EXPECT_EQ(page.at("messages").as_array()[0].at("message_id"), "m4");
  EXPECT_TRUE(page.at("next_cursor").is_null());  // nothing beyond the page
  page = fake.fetch_messages("AT", "t", {10, Order::asc, "unknown"});
  EXPECT_TRUE(page.at("messages").as_array().empty());
  EXPECT_TRUE(fake.fetch_messages("AT", "none").at("messages").as_array().empty());
  // A bad order is recorded first, then refused.
  EXPECT_THROW(fake.fetch_messages("AT", "t", 1, "sideways"), std::invalid_argument);
  ASSERT_EQ(fake.fetch_calls.size(), 5u);
  EXPECT_EQ(fake.fetch_calls.back().order, "sideways");
  EXPECT_EQ(fake.fetch_calls[1], (FakeRelayClient::FetchCall{"AT", "t", 2, "asc", "m3"}));
}

}  // namespace
}  // namespace magnetar::client::testing
