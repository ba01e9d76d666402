#include "client/testing/fakes.h"

#include <algorithm>
#include <stdexcept>

#include "client/errors.h"
#include "common/log.h"

namespace magnetar::client::testing {

namespace json = boost::json;

namespace {

void WarnOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    Logger("client")->warn(
        "magnetar::client::testing fakes bypass authentication and the network; they are for "
        "tests only and must never be used in production");
  });
}

}  // namespace

FakeAuthManager::FakeAuthManager(std::string token) : token(std::move(token)) { WarnOnce(); }

FakeRelayClient::FakeRelayClient(std::string user_id, std::string username,
                                 std::string rotated_access_token,
                                 std::string rotated_refresh_token)
    : user_id(std::move(user_id)),
      username(std::move(username)),
      rotated_access_token(std::move(rotated_access_token)),
      rotated_refresh_token(std::move(rotated_refresh_token)) {
  WarnOnce();
}

json::object FakeRelayClient::exchange_refresh_token(std::string_view refresh_token) {
  exchange_calls.emplace_back(refresh_token);
  return {{"access_token", rotated_access_token},
          {"refresh_token", rotated_refresh_token},
          {"token_type", "bearer"},
          {"expires_in", 3600}};
}

json::object FakeRelayClient::whoami(std::string_view access_token) {
  whoami_calls.emplace_back(access_token);
  return {{"user_id", user_id}, {"username", username}};
}

void FakeRelayClient::create_or_verify_topic(std::string_view, std::string_view topic) {
  const std::string name(topic);
  if (auto it = preclaimed.find(name); it != preclaimed.end() && it->second != user_id) {
    throw TopicOwnershipConflict(
        "relay topic " + name + " is owned by another user ('" + it->second + "')", 200,
        it->second);
  }
  created[name] = user_id;
}

json::object FakeRelayClient::fetch_messages(std::string_view access_token, std::string_view topic,
                                             FetchOptions options) {
  return fetch_messages(access_token, topic, options.limit, to_string(options.order),
                        options.cursor);
}

json::object FakeRelayClient::fetch_messages(std::string_view access_token, std::string_view topic,
                                             int limit, std::string_view order,
                                             std::optional<std::string> cursor) {
  // Recorded first: a call with a bad order is recorded and then refused.
  fetch_calls.push_back(
      {std::string(access_token), std::string(topic), limit, std::string(order), cursor});
  const Order o = parse_order(order);
  std::vector<json::object> items;
  if (auto it = stored_messages.find(std::string(topic)); it != stored_messages.end()) {
    items = it->second;
  }
  if (o == Order::desc) std::reverse(items.begin(), items.end());
  if (cursor) {
    auto pos = std::find_if(items.begin(), items.end(), [&](const json::object& m) {
      const json::value* id = m.if_contains("message_id");
      return id && id->is_string() && id->get_string() == *cursor;
    });
    items = pos == items.end() ? std::vector<json::object>{}
                               : std::vector<json::object>(pos + 1, items.end());
  }
  const size_t n = std::min<size_t>(static_cast<size_t>(std::max(limit, 0)), items.size());
  json::array page;
  for (size_t i = 0; i < n; ++i) page.push_back(items[i]);
  json::value next_cursor = nullptr;
  if (items.size() > n && n > 0) {
    if (const json::value* id = items[n - 1].if_contains("message_id")) next_cursor = *id;
  }
  return {{"messages", page},
          {"total", page.size()},
          {"limit", limit},
          {"order", std::string(order)},
          {"cursor", cursor ? json::value(*cursor) : json::value(nullptr)},
          {"next_cursor", next_cursor}};
}

}  // namespace magnetar::client::testing
