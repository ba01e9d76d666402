#pragma once

// Test doubles for programs that use the client library (spec clients.md §A.8). They bypass
// authentication and the network: never use them in production. They live in their own target,
// magnetar_client_testing (magnetar::client_testing when installed), which production binaries do
// not link, and the first fake constructed logs a warning saying so.

#include <atomic>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "client/auth.h"
#include "client/topics.h"

namespace magnetar::client::testing {

// get_token() returns `token`; invalidate() only counts.
class FakeAuthManager final : public TokenProvider {
 public:
  explicit FakeAuthManager(std::string token = "stub-access-token");
  std::string get_token() override { return token; }
  void invalidate() override { ++invalidate_calls; }
  std::optional<std::string> cached_token() override { return token; }

  std::string token;
  std::atomic<int> invalidate_calls{0};
};

// An in-memory relay. Its state is public and owned by the test; it is not thread-safe.
class FakeRelayClient final : public RelayClient {
 public:
  struct FetchCall {
    std::string access_token;
    std::string topic;
    int limit;
    std::string order;
    std::optional<std::string> cursor;
    bool operator==(const FetchCall&) const = default;
  };

  explicit FakeRelayClient(std::string user_id = "u-1", std::string username = "fake-user",
                           std::string rotated_access_token = "AT-NEW",
                           std::string rotated_refresh_token = "RT-NEW");

  // Records the token; returns {access_token, refresh_token, token_type, expires_in: 3600}.
  boost::json::object exchange_refresh_token(std::string_view refresh_token) override;
  // Records the token; returns {user_id, username}.
  boost::json::object whoami(std::string_view access_token) override;
  // TopicOwnershipConflict when `preclaimed` names another owner; else created[name] = user_id.
  void create_or_verify_topic(std::string_view access_token, std::string_view topic) override;
  // Records the call, then pages `stored_messages[topic]` (reversed for desc; after `cursor` when
  // given, an unknown cursor giving an empty page); next_cursor is set only when more remain.
  boost::json::object fetch_messages(std::string_view access_token, std::string_view topic,
                                     FetchOptions options = {}) override;
  // The string form of the order, as the CLI passes it: a bad value is recorded, then throws
  // std::invalid_argument.
  boost::json::object fetch_messages(std::string_view access_token, std::string_view topic,
                                     int limit, std::string_view order,
                                     std::optional<std::string> cursor = {});

  std::string user_id;
  std::string username;
  std::string rotated_access_token;
  std::string rotated_refresh_token;
  std::map<std::string, std::string> created;     // topic → owner
  std::map<std::string, std::string> preclaimed;  // topic → owner (seeded by the test)
  std::map<std::string, std::vector<boost::json::object>> stored_messages;  // publish order
  std::vector<std::string> exchange_calls;
  std::vector<std::string> whoami_calls;
  std::vector<FetchCall> fetch_calls;
};

}  // namespace magnetar::client::testing
