#pragma once

// Topic and token calls that take an access token per call (spec clients.md §A.6): the
// RelayClient interface callers inject, and HttpRelayClient, its HTTP implementation.

#include <boost/asio/awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "client/tls_options.h"

namespace magnetar::client {

namespace detail {
class Runtime;
class HttpClient;
struct HttpRequest;
struct HttpResponse;
}  // namespace detail

enum class Order { asc, desc };

// "asc" / "desc" → Order; anything else throws std::invalid_argument("order must be 'asc' or
// 'desc' ...").
Order parse_order(std::string_view text);
const char* to_string(Order order);

struct FetchOptions {
  int limit = 10;
  Order order = Order::desc;
  std::optional<std::string> cursor;  // left out of the query when empty
};

class RelayClient {
 public:
  virtual ~RelayClient() = default;
  // POST /auth/token/refresh. Returns the body as is; persists nothing (the caller stores the
  // rotated token). 401 → RefreshTokenRejected; anything else → ClientError.
  virtual boost::json::object exchange_refresh_token(std::string_view refresh_token) = 0;
  // GET /auth/me. Any failure → ClientError ("could not read /auth/me on relay: ...").
  virtual boost::json::object whoami(std::string_view access_token) = 0;
  // POST /api/v1/topics; when the topic exists (400/409) checks that the caller owns it
  // (TopicOwnershipConflict otherwise). Idempotent for the owner.
  virtual void create_or_verify_topic(std::string_view access_token, std::string_view topic) = 0;
  // GET /api/v1/topics/{topic}/messages?limit&order[&cursor] → the page verbatim.
  // 401 → RefreshTokenRejected; other failures → ClientError.
  virtual boost::json::object fetch_messages(std::string_view access_token, std::string_view topic,
                                             FetchOptions options = {}) = 0;
};

// No retries and no token cache: every call takes the access token. Thread-safe; calls from
// several threads run concurrently (each takes its own keep-alive connection).
class HttpRelayClient final : public RelayClient {
 public:
  explicit HttpRelayClient(std::string relay_url,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10),
                           TlsOptions tls = {});
  ~HttpRelayClient() override;

  boost::json::object exchange_refresh_token(std::string_view refresh_token) override;
  boost::json::object whoami(std::string_view access_token) override;
  void create_or_verify_topic(std::string_view access_token, std::string_view topic) override;
  boost::json::object fetch_messages(std::string_view access_token, std::string_view topic,
                                     FetchOptions options = {}) override;

  // create_or_verify_topic that also says whether this call created the topic.
  bool ensure_topic(std::string_view access_token, std::string_view topic,
                    std::optional<std::string> description = {});
  // GET /api/v1/topics: the caller's topics.
  boost::json::array list_topics(std::string_view access_token);
  // GET /api/v1/topics/{topic}. 404 → ClientError with status 404.
  boost::json::object get_topic(std::string_view access_token, std::string_view topic);
  // DELETE /api/v1/topics/{topic}. 404 → ClientError with status 404.
  void delete_topic(std::string_view access_token, std::string_view topic);
  // POST /auth/token/revoke (logout of a refresh token; the server answers 204 either way).
  void revoke_refresh_token(std::string_view refresh_token, bool revoke_chain = false);
  // POST /auth/logout: deny-lists the access token.
  void logout(std::string_view access_token);

  // Coroutine forms of the RelayClient calls.
  boost::asio::awaitable<boost::json::object> async_whoami(std::string access_token);
  boost::asio::awaitable<void> async_create_or_verify_topic(std::string access_token,
                                                            std::string topic);
  boost::asio::awaitable<boost::json::object> async_fetch_messages(std::string access_token,
                                                                   std::string topic,
                                                                   FetchOptions options = {});

  const std::string& relay_url() const { return relay_url_; }

 private:
  boost::asio::awaitable<detail::HttpResponse> send(detail::HttpRequest request, std::string what);
  boost::asio::awaitable<boost::json::object> whoami_op(std::string access_token);
  boost::asio::awaitable<bool> ensure_topic_op(std::string access_token, std::string topic,
                                               std::optional<std::string> description);
  boost::asio::awaitable<boost::json::object> fetch_op(std::string access_token, std::string topic,
                                                       FetchOptions options);
  boost::asio::awaitable<boost::json::object> exchange_op(std::string refresh_token);
  boost::asio::awaitable<boost::json::array> list_op(std::string access_token);
  boost::asio::awaitable<boost::json::object> get_topic_op(std::string access_token,
                                                           std::string topic);
  boost::asio::awaitable<void> delete_topic_op(std::string access_token, std::string topic);
  boost::asio::awaitable<void> revoke_op(std::string refresh_token, bool chain);
  boost::asio::awaitable<void> logout_op(std::string access_token);

  std::string relay_url_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<detail::Runtime> runtime_;
  std::unique_ptr<detail::HttpClient> http_;
};

using RelayClientFactory = std::function<std::unique_ptr<RelayClient>(std::string_view url)>;
std::unique_ptr<RelayClient> default_relay_client_factory(std::string_view url);

}  // namespace magnetar::client
