#include "client/transport.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/serialize.hpp>

#include "client/cursor_file.h"
#include "client/errors.h"
#include "client/http.h"
#include "client/json_util.h"
#include "client/runtime.h"
#include "client/url.h"
#include "common/log.h"
#include "common/random.h"

namespace magnetar::client {

namespace asio = boost::asio;
namespace json = boost::json;
namespace http = boost::beast::http;
using detail::CancelState;
using detail::HttpError;
using detail::HttpFailure;
using detail::HttpRequest;
using detail::HttpResponse;

namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("client"); }

std::string Seconds(std::chrono::milliseconds d) {
  return fmt::format("{:.1f}", static_cast<double>(d.count()) / 1000.0);
}

bool IsSuccess(int status) { return status >= 200 && status < 300; }

}  // namespace

RelayTransport::RelayTransport(std::string relay_url, std::shared_ptr<TokenProvider> tokens,
                               TransportOptions options)
    : relay_url_(normalize_relay_url(relay_url)),
      tokens_(std::move(tokens)),
      options_(std::move(options)) {
  if (!tokens_) throw std::invalid_argument("RelayTransport needs a token provider");
  runtime_ = std::make_unique<detail::Runtime>();
  blocking_ = std::make_unique<detail::Runtime>();
  http_ = std::make_unique<detail::HttpClient>(runtime_->executor(),
                                               parse_relay_endpoint(relay_url_), options_.tls);
  if (options_.cursor_path) cursors_ = detail::load_cursor_file(*options_.cursor_path);
}

RelayTransport::RelayTransport(std::string relay_url, AuthConfig auth, TransportOptions options)
    : RelayTransport(relay_url, std::shared_ptr<TokenProvider>(make_auth_manager(relay_url, auth)),
                     std::move(options)) {}

RelayTransport::~RelayTransport() {
  // The helper thread first (it may hold a refresh that resumes on the I/O thread), then the idle
  // connections on the I/O thread that owns them, then that thread.
  blocking_.reset();
  close();
  http_.reset();
  runtime_.reset();
}

void RelayTransport::close() { runtime_->run(detail::close_idle(http_.get())); }

std::chrono::steady_clock::time_point RelayTransport::now() const {
  return options_.now ? options_.now() : std::chrono::steady_clock::now();
}

// ---- sync and async façades --------------------------------------------------------------------

template <class T>
T RelayTransport::run_sync(std::function<asio::awaitable<T>(std::shared_ptr<CancelState>)> op,
                           std::stop_token stop) {
  auto cancel = std::make_shared<CancelState>();
  std::stop_callback on_stop(stop, [cancel] { cancel->cancel(); });
  return runtime_->run(op(cancel));
}

template <class T>
asio::awaitable<T> RelayTransport::run_async(
    std::function<asio::awaitable<T>(std::shared_ptr<CancelState>)> op) {
  // The caller's cancellation (if its slot is connected) reaches the operation through the same
  // CancelState the stop token uses. The spawned operation gets no slot of its own, so the
  // handler assigned here stays in place while it runs.
  auto cancel = std::make_shared<CancelState>();
  asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
  asio::cancellation_slot slot = state.slot();
  if (slot.is_connected()) {
    slot.assign([cancel](asio::cancellation_type) { cancel->cancel(); });
  }
  // (Operands named first: g++ 12 mishandles temporaries inside co_await expressions.)
  asio::awaitable<T> operation = op(cancel);
  auto token = asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable);
  co_return co_await asio::co_spawn(runtime_->executor(), std::move(operation), std::move(token));
}

json::object RelayTransport::post_message(
    std::string_view topic, json::object payload, std::optional<std::int64_t> ttl,
    std::optional<std::map<std::string, std::string>> metadata, std::stop_token stop) {
  json::object body{{"topic", topic}, {"payload", std::move(payload)}};
  if (ttl) body["ttl"] = *ttl;
  if (metadata) {
    json::object m;
    for (const auto& [k, v] : *metadata) m[k] = v;
    body["metadata"] = std::move(m);
  }
  std::string text = json::serialize(body);
  return run_sync<json::object>(
      [this, text = std::move(text)](std::shared_ptr<CancelState> c) {
        return publish_op("post_message", "/api/v1/messages", text, std::move(c));
      },
      stop);
}

json::object RelayTransport::post_bulk_messages(json::array messages, std::stop_token stop) {
  std::string text = json::serialize(json::object{{"messages", std::move(messages)}});
  return run_sync<json::object>(
      [this, text = std::move(text)](std::shared_ptr<CancelState> c) {
        return publish_op("post_bulk_messages", "/api/v1/messages/bulk", text, std::move(c));
      },
      stop);
}

std::vector<json::object> RelayTransport::long_poll(std::span<const std::string> topics,
                                                    std::chrono::seconds timeout,
                                                    std::stop_token stop) {
  std::vector<std::string> list(topics.begin(), topics.end());
  return run_sync<std::vector<json::object>>(
      [this, list = std::move(list), timeout](std::shared_ptr<CancelState> c) {
        return long_poll_op(list, timeout, std::move(c));
      },
      stop);
}

asio::awaitable<json::object> RelayTransport::async_post_message(
    std::string topic, json::object payload, std::optional<std::int64_t> ttl,
    std::optional<std::map<std::string, std::string>> metadata) {
  json::object body{{"topic", topic}, {"payload", std::move(payload)}};
  if (ttl) body["ttl"] = *ttl;
  if (metadata) {
    json::object m;
    for (const auto& [k, v] : *metadata) m[k] = v;
    body["metadata"] = std::move(m);
  }
  std::string text = json::serialize(body);
  std::function<asio::awaitable<json::object>(std::shared_ptr<CancelState>)> op =
      [this, text](std::shared_ptr<CancelState> c) {
        return publish_op("post_message", "/api/v1/messages", text, std::move(c));
      };
  co_return co_await run_async<json::object>(std::move(op));
}

asio::awaitable<json::object> RelayTransport::async_post_bulk_messages(json::array messages) {
  std::string text = json::serialize(json::object{{"messages", std::move(messages)}});
  std::function<asio::awaitable<json::object>(std::shared_ptr<CancelState>)> op =
      [this, text](std::shared_ptr<CancelState> c) {
        return publish_op("post_bulk_messages", "/api/v1/messages/bulk", text, std::move(c));
      };
  co_return co_await run_async<json::object>(std::move(op));
}

asio::awaitable<std::vector<json::object>> RelayTransport::async_long_poll(
    std::vector<std::string> topics, std::chrono::seconds timeout) {
  std::function<asio::awaitable<std::vector<json::object>>(std::shared_ptr<CancelState>)> op =
      [this, topics, timeout](std::shared_ptr<CancelState> c) {
        return long_poll_op(topics, timeout, std::move(c));
      };
  co_return co_await run_async<std::vector<json::object>>(std::move(op));
}

// ---- the operations (on the I/O thread) --------------------------------------------------------

asio::awaitable<std::string> RelayTransport::token(bool refresh) {
  if (!refresh) {
    if (auto cached = tokens_->cached_token()) co_return *cached;
  }
  // A refresh is a blocking network call (and may wait for another caller's refresh): it runs on
  // the helper thread so the I/O thread keeps serving the other calls meanwhile.
  asio::awaitable<std::string> op = detail::blocking_get_token(tokens_, refresh);
  co_return co_await asio::co_spawn(blocking_->executor(), std::move(op), asio::use_awaitable);
}

asio::awaitable<void> RelayTransport::sleep(std::chrono::milliseconds delay,
                                            std::shared_ptr<CancelState> cancel) {
  if (options_.sleep) {
    options_.sleep(delay);
  } else {
    auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor, delay);
    if (cancel) {
      cancel->set_handler(
          [timer, ex = runtime_->executor()] { asio::post(ex, [timer] { timer->cancel(); }); });
    }
    // Expiry and cancellation end the wait alike; the check below tells them apart.
    co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
    if (cancel) cancel->clear_handler();
  }
  if (cancel && cancel->cancelled()) throw detail::Cancelled();
}

asio::awaitable<HttpResponse> RelayTransport::retry_loop(const std::string& op,
                                                         const HttpRequest& request,
                                                         std::shared_ptr<CancelState> cancel,
                                                         int* attempts) {
  const RetryPolicy& policy = options_.retry;
  const auto started = now();
  std::chrono::milliseconds delay = policy.initial;
  std::optional<int> last_status;
  while (true) {
    ++*attempts;
    std::string reason;
    try {
      const detail::HttpTimeouts timeouts{options_.timeout, options_.timeout};
      HttpResponse response = co_await http_->request(request, timeouts, cancel);
      if (IsSuccess(response.status) || response.status == 401) co_return response;
      const std::string text = detail::status_error_text(response, relay_url_ + request.target);
      if (response.status < 500) {
        // 4xx (408 and 429 included) are the caller's problem; 1xx and 3xx are not followed.
        std::string detail_text = detail::snippet(response.body);
        throw TransportError(
            op + " failed: " + text + (detail_text.empty() ? "" : " " + detail_text),
            response.status, *attempts);
      }
      last_status = response.status;
      reason = "HTTP " + std::to_string(response.status);
      Log()->warn("{} failed with status {} (attempt {}), retrying in {} seconds", op,
                  response.status, *attempts, Seconds(delay));
    } catch (const HttpError& e) {
      last_status.reset();
      switch (e.kind()) {
        case HttpFailure::kConnect:
        case HttpFailure::kConnectTimeout:
          reason = std::string("connection error: ") + e.what();
          break;
        case HttpFailure::kReadTimeout:
          reason = std::string("timeout: ") + e.what();
          break;
        default:
          reason = std::string("request error: ") + e.what();
      }
      Log()->warn("{} {} (attempt {}), retrying in {} seconds", op, reason, *attempts,
                  Seconds(delay));
    }
    if (policy.max_attempts && *attempts >= *policy.max_attempts) {
      throw TransportError(
          op + " gave up after " + std::to_string(*attempts) + " attempts: " + reason, last_status,
          *attempts);
    }
    if (policy.max_elapsed && (now() - started) + delay > *policy.max_elapsed) {
      throw TransportError(op + " gave up after " + std::to_string(*attempts) +
                               " attempts (max_elapsed reached): " + reason,
                           last_status, *attempts);
    }
    co_await sleep(delay, cancel);
    delay = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(delay * policy.factor),
                     policy.max_delay);
  }
}

asio::awaitable<json::object> RelayTransport::publish_op(std::string op, std::string target,
                                                         std::string body,
                                                         std::shared_ptr<CancelState> cancel) {
  // One key per logical publish, sent on every attempt (retries and the post-401 retry alike),
  // so the server stores the message once however many attempts reach it.
  const std::string key = NewUuid4Hex();
  int attempts = 0;
  try {
    HttpRequest request;
    request.method = http::verb::post;
    request.target = std::move(target);
    request.content_type = "application/json";
    request.body = std::move(body);
    auto with_token = [&](const std::string& bearer) {
      request.headers = {{"Authorization", "Bearer " + bearer}, {"Idempotency-Key", key}};
    };
    std::string bearer = co_await token(false);
    with_token(bearer);
    HttpResponse response = co_await retry_loop(op, request, cancel, &attempts);
    if (response.status == 401) {
      Log()->debug("{}: 401, re-authenticating and retrying once", op);
      bearer = co_await token(true);
      with_token(bearer);
      response = co_await retry_loop(op, request, cancel, &attempts);
    }
    if (response.status == 401) {
      throw TransportError(
          op + " failed: " + detail::status_error_text(response, relay_url_ + request.target), 401,
          attempts);
    }
    auto parsed = detail::parse_json_object(response.body);
    if (!parsed) {
      throw TransportError(op + " failed: the relay answered HTTP " +
                               std::to_string(response.status) + " with a non-JSON body",
                           response.status, attempts);
    }
    co_return std::move(*parsed);
  } catch (const detail::Cancelled&) {
    throw TransportError(op + " cancelled", std::nullopt, attempts);
  }
}

asio::awaitable<std::vector<json::object>> RelayTransport::long_poll_op(
    std::vector<std::string> topics, std::chrono::seconds timeout,
    std::shared_ptr<CancelState> cancel) {
  json::object body;
  json::array topic_list;
  for (const auto& t : topics) topic_list.emplace_back(t);
  body["topics"] = std::move(topic_list);
  body["timeout"] = std::clamp<std::int64_t>(timeout.count(), 1, 60);
  {
    std::lock_guard lock(cursor_mutex_);
    json::object since;
    for (const auto& t : topics) {
      if (auto it = cursors_.find(t); it != cursors_.end()) since[t] = it->second;
    }
    if (!since.empty()) body["since"] = std::move(since);
  }
  HttpRequest request;
  request.method = http::verb::post;
  request.target = "/messages/poll";
  request.content_type = "application/json";
  request.body = json::serialize(body);
  // The HTTP wait is the caller's timeout (not clamped) plus a grace period.
  const auto wait =
      std::chrono::duration_cast<std::chrono::milliseconds>(timeout) + options_.long_poll_grace;

  std::optional<HttpResponse> response;
  try {
    for (int round = 0; round < 2; ++round) {
      const std::string bearer = co_await token(round > 0);
      request.headers = {{"Authorization", "Bearer " + bearer}};
      const detail::HttpTimeouts timeouts{wait, wait};
      response = co_await http_->request(request, timeouts, cancel);
      if (response->status != 401) break;
    }
  } catch (const detail::Cancelled&) {
    co_return std::vector<json::object>{};
  } catch (const HttpError& e) {
    if (e.timeout()) co_return std::vector<json::object>{};  // normal for a long poll
    throw TransportError(std::string("Failed to long poll: ") + e.what());
  }
  if (!IsSuccess(response->status)) {
    throw TransportError("Failed to long poll: " +
                             detail::status_error_text(*response, relay_url_ + "/messages/poll"),
                         response->status);
  }
  auto parsed = detail::parse_json_object(response->body);
  if (!parsed) throw TransportError("Failed to long poll: non-JSON body", response->status);
  std::vector<json::object> messages;
  if (const json::value* list = parsed->if_contains("messages"); list && list->is_array()) {
    for (const json::value& item : list->get_array()) {
      if (item.is_object()) messages.push_back(item.get_object());
    }
  }
  if (options_.cursor_commit == CursorCommit::kBeforeReturn) commit(messages);
  co_return messages;
}

// ---- cursors -----------------------------------------------------------------------------------

std::optional<std::string> RelayTransport::last_message_id(std::string_view topic) const {
  std::lock_guard lock(cursor_mutex_);
  auto it = cursors_.find(std::string(topic));
  if (it == cursors_.end()) return std::nullopt;
  return it->second;
}

std::map<std::string, std::string> RelayTransport::tracked_message_ids() const {
  std::lock_guard lock(cursor_mutex_);
  return cursors_;
}

void RelayTransport::set_last_message_id(std::string_view topic, std::string_view id) {
  std::lock_guard lock(cursor_mutex_);
  advance_locked(topic, id);
  persist_locked();
}

void RelayTransport::clear_tracked_message_ids(std::optional<std::string_view> topic) {
  std::lock_guard lock(cursor_mutex_);
  if (topic) {
    cursors_.erase(std::string(*topic));
  } else {
    cursors_.clear();
  }
  persist_locked();
}

void RelayTransport::commit(const std::vector<json::object>& messages) {
  std::lock_guard lock(cursor_mutex_);
  bool changed = false;
  // In order: the last message of each topic wins, including topics that were not requested.
  for (const json::object& m : messages) {
    auto topic = detail::get_string(m, "topic");
    auto id = detail::get_string(m, "message_id");
    if (topic && id && !topic->empty() && !id->empty()) {
      advance_locked(*topic, *id);
      changed = true;
    }
  }
  // One write for the whole batch: the file ends as Python's once-per-message writes leave it.
  if (changed) persist_locked();
}

void RelayTransport::advance_locked(std::string_view topic, std::string_view id) {
  cursors_[std::string(topic)] = std::string(id);
}

void RelayTransport::persist_locked() {
  if (options_.cursor_path) detail::persist_cursor_file(*options_.cursor_path, cursors_);
}

}  // namespace magnetar::client
