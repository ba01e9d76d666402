#include "client/topics.h"

#include <boost/json/serialize.hpp>
#include <stdexcept>

#include "client/errors.h"
#include "client/http.h"
#include "client/json_util.h"
#include "client/runtime.h"
#include "client/url.h"

namespace magnetar::client {

namespace asio = boost::asio;
namespace json = boost::json;
namespace http = boost::beast::http;
using detail::HttpRequest;
using detail::HttpResponse;

namespace {

bool IsSuccess(int status) { return status >= 200 && status < 300; }

HttpRequest Request(http::verb method, std::string target, std::string_view bearer = {}) {
  HttpRequest r;
  r.method = method;
  r.target = std::move(target);
  if (!bearer.empty()) r.headers.emplace_back("Authorization", "Bearer " + std::string(bearer));
  return r;
}

void JsonBody(HttpRequest& r, const json::object& body) {
  r.content_type = "application/json";
  r.body = json::serialize(body);
}

std::string Repr(std::string_view s) { return "'" + std::string(s) + "'"; }

}  // namespace

Order parse_order(std::string_view text) {
  if (text == "asc") return Order::asc;
  if (text == "desc") return Order::desc;
  throw std::invalid_argument("order must be 'asc' or 'desc' (got " + Repr(text) + ")");
}

const char* to_string(Order order) { return order == Order::asc ? "asc" : "desc"; }

HttpRelayClient::HttpRelayClient(std::string relay_url, std::chrono::milliseconds timeout,
                                 TlsOptions tls)
    : relay_url_(normalize_relay_url(relay_url)), timeout_(timeout) {
  runtime_ = std::make_unique<detail::Runtime>();
  http_ = std::make_unique<detail::HttpClient>(runtime_->executor(),
                                               parse_relay_endpoint(relay_url_), std::move(tls));
}

HttpRelayClient::~HttpRelayClient() {
  runtime_->run(detail::close_idle(http_.get()));
  http_.reset();
  runtime_.reset();
}

asio::awaitable<HttpResponse> HttpRelayClient::send(HttpRequest request, std::string what) {
  try {
    const detail::HttpTimeouts timeouts{timeout_, timeout_};
    co_return co_await http_->request(std::move(request), timeouts);
  } catch (const detail::HttpError& e) {
    throw ClientError(what + " (network): " + e.what());
  }
}

// ---- token refresh -----------------------------------------------------------------------------

json::object HttpRelayClient::exchange_refresh_token(std::string_view refresh_token) {
  return runtime_->run(exchange_op(std::string(refresh_token)));
}

asio::awaitable<json::object> HttpRelayClient::exchange_op(std::string refresh_token) {
  HttpRequest req = Request(http::verb::post, "/auth/token/refresh");
  JsonBody(req, {{"refresh_token", refresh_token}});
  HttpResponse resp = co_await send(std::move(req), "relay refresh failed");
  if (resp.status == 401) {
    throw RefreshTokenRejected("relay rejected refresh token (revoked or expired)", 401);
  }
  if (!IsSuccess(resp.status)) {
    throw ClientError("relay refresh failed: HTTP " + std::to_string(resp.status), resp.status);
  }
  auto body = detail::parse_json_object(resp.body);
  if (!body) throw ClientError("relay returned non-JSON body", resp.status);
  co_return std::move(*body);
}

// ---- /auth/me ----------------------------------------------------------------------------------

asio::awaitable<json::object> HttpRelayClient::whoami_op(std::string access_token) {
  const std::string what = "could not read /auth/me on relay";
  HttpResponse resp;
  try {
    HttpRequest req = Request(http::verb::get, "/auth/me", access_token);
    const detail::HttpTimeouts timeouts{timeout_, timeout_};
    resp = co_await http_->request(std::move(req), timeouts);
  } catch (const detail::HttpError& e) {
    throw ClientError(what + ": " + e.what());
  }
  if (!IsSuccess(resp.status)) {
    throw ClientError(what + ": " + detail::status_error_text(resp, relay_url_ + "/auth/me"),
                      resp.status);
  }
  auto body = detail::parse_json_object(resp.body);
  if (!body) throw ClientError(what + ": non-JSON body", resp.status);
  co_return std::move(*body);
}

json::object HttpRelayClient::whoami(std::string_view access_token) {
  return runtime_->run(whoami_op(std::string(access_token)));
}

asio::awaitable<json::object> HttpRelayClient::async_whoami(std::string access_token) {
  asio::awaitable<json::object> op = whoami_op(std::move(access_token));
  co_return co_await runtime_->await(std::move(op));
}

// ---- topics ------------------------------------------------------------------------------------

asio::awaitable<bool> HttpRelayClient::ensure_topic_op(std::string access_token, std::string topic,
                                                       std::optional<std::string> description) {
  HttpRequest req = Request(http::verb::post, "/api/v1/topics", access_token);
  json::object body{{"topic_name", topic}};
  if (description) body["description"] = *description;
  JsonBody(req, body);
  const std::string post_what = "relay topic POST " + topic + " failed";
  HttpResponse resp = co_await send(std::move(req), post_what);
  if (resp.status == 200 || resp.status == 201) co_return true;
  if (resp.status != 400 && resp.status != 409) {
    throw ClientError("relay topic POST " + topic + " failed: HTTP " + std::to_string(resp.status),
                      resp.status);
  }
  // It exists: it must be ours. (With per-user namespaces it always is, but a server with shared
  // names would make this the only line of defence against a pre-claimed topic.)
  json::object me = co_await whoami_op(access_token);
  auto my_id = detail::get_string(me, "user_id");
  if (!my_id || my_id->empty()) throw ClientError("relay /auth/me returned no user_id");
  // (Operands built beforehand: g++ 12 mishandles temporaries inside co_await expressions.)
  HttpRequest get = Request(http::verb::get, "/api/v1/topics/" + quote_topic(topic), access_token);
  const std::string get_what = "relay topic " + topic + " GET failed";
  HttpResponse check = co_await send(std::move(get), get_what);
  if (check.status != 200) {
    throw TopicOwnershipConflict("relay topic " + topic +
                                     " already exists and we cannot read it (HTTP " +
                                     std::to_string(check.status) + ")",
                                 check.status, std::nullopt);
  }
  auto record = detail::parse_json_object(check.body);
  if (!record) throw ClientError("relay topic " + topic + " GET returned non-JSON", check.status);
  const json::value* owner = record->if_contains("owner_id");
  std::optional<std::string> owner_id;
  if (owner && owner->is_string()) owner_id = std::string(owner->get_string());
  if (owner_id != my_id) {
    throw TopicOwnershipConflict("relay topic " + topic + " is owned by another user (" +
                                     (owner_id ? Repr(*owner_id) : std::string("None")) + ")",
                                 check.status, owner_id);
  }
  co_return false;
}

void HttpRelayClient::create_or_verify_topic(std::string_view access_token,
                                             std::string_view topic) {
  runtime_->run(ensure_topic_op(std::string(access_token), std::string(topic), std::nullopt));
}

bool HttpRelayClient::ensure_topic(std::string_view access_token, std::string_view topic,
                                   std::optional<std::string> description) {
  return runtime_->run(
      ensure_topic_op(std::string(access_token), std::string(topic), std::move(description)));
}

asio::awaitable<void> HttpRelayClient::async_create_or_verify_topic(std::string access_token,
                                                                    std::string topic) {
  asio::awaitable<bool> op =
      ensure_topic_op(std::move(access_token), std::move(topic), std::nullopt);
  co_await runtime_->await(std::move(op));
}

json::array HttpRelayClient::list_topics(std::string_view access_token) {
  return runtime_->run(list_op(std::string(access_token)));
}

asio::awaitable<json::array> HttpRelayClient::list_op(std::string access_token) {
  HttpRequest req = Request(http::verb::get, "/api/v1/topics", access_token);
  HttpResponse resp = co_await send(std::move(req), "relay topic list failed");
  if (!IsSuccess(resp.status)) {
    throw ClientError("relay topic list failed: HTTP " + std::to_string(resp.status), resp.status);
  }
  auto body = detail::parse_json(resp.body);
  if (!body || !body->is_array()) throw ClientError("relay topic list returned non-JSON");
  co_return std::move(body->get_array());
}

json::object HttpRelayClient::get_topic(std::string_view access_token, std::string_view topic) {
  return runtime_->run(get_topic_op(std::string(access_token), std::string(topic)));
}

asio::awaitable<json::object> HttpRelayClient::get_topic_op(std::string access_token,
                                                            std::string topic) {
  HttpRequest req = Request(http::verb::get, "/api/v1/topics/" + quote_topic(topic), access_token);
  const std::string what = "relay topic " + topic + " GET failed";
  HttpResponse resp = co_await send(std::move(req), what);
  if (!IsSuccess(resp.status)) {
    throw ClientError("relay topic " + topic + " GET failed: HTTP " + std::to_string(resp.status) +
                          " " + detail::snippet(resp.body),
                      resp.status);
  }
  auto body = detail::parse_json_object(resp.body);
  if (!body) throw ClientError("relay topic " + topic + " GET returned non-JSON");
  co_return std::move(*body);
}

void HttpRelayClient::delete_topic(std::string_view access_token, std::string_view topic) {
  runtime_->run(delete_topic_op(std::string(access_token), std::string(topic)));
}

asio::awaitable<void> HttpRelayClient::delete_topic_op(std::string access_token,
                                                       std::string topic) {
  HttpRequest req =
      Request(http::verb::delete_, "/api/v1/topics/" + quote_topic(topic), access_token);
  const std::string what = "relay topic " + topic + " DELETE failed";
  HttpResponse resp = co_await send(std::move(req), what);
  if (!IsSuccess(resp.status)) {
    throw ClientError("relay topic " + topic + " DELETE failed: HTTP " +
                          std::to_string(resp.status) + " " + detail::snippet(resp.body),
                      resp.status);
  }
}

void HttpRelayClient::revoke_refresh_token(std::string_view refresh_token, bool revoke_chain) {
  runtime_->run(revoke_op(std::string(refresh_token), revoke_chain));
}

asio::awaitable<void> HttpRelayClient::revoke_op(std::string refresh_token, bool chain) {
  HttpRequest req = Request(http::verb::post, "/auth/token/revoke");
  JsonBody(req, {{"refresh_token", refresh_token}, {"revoke_chain", chain}});
  HttpResponse resp = co_await send(std::move(req), "relay token revoke failed");
  if (!IsSuccess(resp.status)) {
    throw ClientError("relay token revoke failed: HTTP " + std::to_string(resp.status),
                      resp.status);
  }
}

void HttpRelayClient::logout(std::string_view access_token) {
  runtime_->run(logout_op(std::string(access_token)));
}

asio::awaitable<void> HttpRelayClient::logout_op(std::string access_token) {
  HttpRequest req = Request(http::verb::post, "/auth/logout", access_token);
  HttpResponse resp = co_await send(std::move(req), "relay logout failed");
  if (!IsSuccess(resp.status)) {
    throw ClientError("relay logout failed: HTTP " + std::to_string(resp.status), resp.status);
  }
}

// ---- message pages -----------------------------------------------------------------------------

asio::awaitable<json::object> HttpRelayClient::fetch_op(std::string access_token, std::string topic,
                                                        FetchOptions options) {
  std::string target = "/api/v1/topics/" + quote_topic(topic) + "/messages?" +
                       detail::form_encode({{"limit", std::to_string(options.limit)},
                                            {"order", to_string(options.order)}});
  if (options.cursor && !options.cursor->empty()) {
    target += "&" + detail::form_encode({{"cursor", *options.cursor}});
  }
  const std::string what = "relay fetch_messages " + topic;
  HttpRequest req = Request(http::verb::get, std::move(target), access_token);
  const std::string failed = what + " failed";
  HttpResponse resp = co_await send(std::move(req), failed);
  if (resp.status == 401) {
    throw RefreshTokenRejected(what + ": the relay rejected the token (HTTP 401)", 401);
  }
  if (!IsSuccess(resp.status)) {
    throw ClientError(what + " failed: HTTP " + std::to_string(resp.status), resp.status);
  }
  auto body = detail::parse_json_object(resp.body);
  if (!body) throw ClientError(what + " returned a non-JSON body", resp.status);
  co_return std::move(*body);
}

json::object HttpRelayClient::fetch_messages(std::string_view access_token, std::string_view topic,
                                             FetchOptions options) {
  return runtime_->run(fetch_op(std::string(access_token), std::string(topic), std::move(options)));
}

asio::awaitable<json::object> HttpRelayClient::async_fetch_messages(std::string access_token,
                                                                    std::string topic,
                                                                    FetchOptions options) {
  asio::awaitable<json::object> op =
      fetch_op(std::move(access_token), std::move(topic), std::move(options));
  co_return co_await runtime_->await(std::move(op));
}

std::unique_ptr<RelayClient> default_relay_client_factory(std::string_view url) {
  return std::make_unique<HttpRelayClient>(std::string(url));
}

}  // namespace magnetar::client
