#include "client/device_flow.h"

#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "client/errors.h"
#include "client/http.h"
#include "client/json_util.h"
#include "client/url.h"
#include "common/log.h"

namespace magnetar::client {

namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

constexpr const char* kDeviceGrant = "urn:ietf:params:oauth:grant-type:device_code";

// Sleeps up to `d`, waking early when `stop` is requested.
void InterruptibleSleep(std::chrono::seconds d, std::stop_token stop) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  cv.wait_for(lock, stop, d, [] { return false; });
}

}  // namespace

std::string device_banner(std::string_view verification_uri, std::string_view user_code) {
  const std::string bar(64, '=');
  std::string out;
  out += "\n" + bar + "\n";
  out += "  Visit:  " + std::string(verification_uri) + "\n";
  out += "  Code:   " + std::string(user_code) + "\n";
  out += "\n  (Approve via your configured identity provider; this CLI will\n";
  out += "   wait until the sign-in completes.)\n";
  out += bar + "\n";
  return out;
}

void print_device_banner(std::string_view verification_uri, std::string_view user_code) {
  const std::string text = device_banner(verification_uri, user_code);
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

DeviceFlow::DeviceFlow(std::string relay_url, CredentialsStore& store, DeviceFlowOptions options)
    : relay_url_(normalize_relay_url(relay_url)), store_(store), options_(std::move(options)) {}

DeviceFlowResult DeviceFlow::run(std::stop_token stop) {
  const RelayEndpoint endpoint = parse_relay_endpoint(relay_url_);
  const detail::HttpTimeouts timeouts{options_.timeout, options_.timeout};
  auto now = [this] { return options_.now ? options_.now() : std::chrono::steady_clock::now(); };

  // 1. The device code.
  detail::HttpRequest code_req;
  code_req.method = http::verb::post;
  code_req.target = "/auth/device/code";
  code_req.content_type = "application/x-www-form-urlencoded";
  std::vector<std::pair<std::string, std::string>> form{{"client_hint", options_.client_hint}};
  if (options_.pair) form.emplace_back("pair", "true");
  code_req.body = detail::form_encode(form);
  detail::HttpResponse code_resp;
  try {
    code_resp = detail::blocking_request(endpoint, options_.tls, std::move(code_req), timeouts);
  } catch (const detail::HttpError& e) {
    throw DeviceFlowError(std::string("Failed to request device code: ") + e.what());
  }
  if (code_resp.status < 200 || code_resp.status >= 300) {
    throw DeviceFlowError("Failed to request device code: " +
                          detail::status_error_text(code_resp, relay_url_ + "/auth/device/code") +
                          " " + detail::snippet(code_resp.body));
  }
  auto device = detail::parse_json_object(code_resp.body);
  if (!device) throw DeviceFlowError("Failed to request device code: non-JSON response");
  auto device_code = detail::get_string(*device, "device_code");
  auto user_code = detail::get_string(*device, "user_code");
  auto uri = detail::get_string(*device, "verification_uri_complete");
  if (!device_code || !user_code || !uri) {
    throw DeviceFlowError(
        "Failed to request device code: the response lacks device_code, "
        "user_code or verification_uri_complete");
  }

  // 2. Show it: the complete URI, which carries ?user_code=.
  if (options_.on_user_code) {
    options_.on_user_code(*uri, *user_code);
  } else {
    print_device_banner(*uri, *user_code);
  }

  // 3. Timing.
  const std::chrono::seconds lifetime{detail::get_int(*device, "expires_in").value_or(600)};
  const auto deadline = now() + std::min(lifetime, options_.max_wait);
  std::chrono::seconds interval{
      std::max<std::int64_t>(detail::get_int(*device, "interval").value_or(5), 1)};

  // 4. Poll.
  while (true) {
    if (now() >= deadline) {
      throw DeviceFlowError("Device-flow user code expired before the sign-in completed.");
    }
    if (options_.sleep) {
      options_.sleep(interval);
    } else {
      InterruptibleSleep(interval, stop);
    }
    if (stop.stop_requested()) throw DeviceFlowError("Device-flow login cancelled.");

    detail::HttpRequest poll;
    poll.method = http::verb::post;
    poll.target = "/auth/device/token";
    poll.content_type = "application/x-www-form-urlencoded";
    poll.body = detail::form_encode({{"grant_type", kDeviceGrant}, {"device_code", *device_code}});
    detail::HttpResponse resp;
    try {
      resp = detail::blocking_request(endpoint, options_.tls, std::move(poll), timeouts);
    } catch (const detail::HttpError& e) {
      throw DeviceFlowError(std::string("Polling failed (network): ") + e.what());
    }

    if (resp.status == 200) {
      auto body = detail::parse_json_object(resp.body);
      auto access = body ? detail::get_string(*body, "access_token") : std::nullopt;
      if (!access) throw DeviceFlowError("Device-flow token response lacks access_token");
      DeviceFlowResult result;
      result.relay_url = relay_url_;
      result.refresh_token = detail::get_string(*body, "refresh_token");
      result.access_token = access;
      result.expires_in = detail::get_int(*body, "expires_in");
      result.issued_at = utc_now_iso();
      // Only the primary token is persisted; the secondary is for a delegate, in memory.
      store_.save(result);
      if (auto secondary = detail::get_string(*body, "refresh_token_secondary");
          secondary && !secondary->empty()) {
        result.refresh_token_secondary = secondary;
      }
      Logger("client")->info("Wrote relay credentials to {}", store_.label());
      return result;
    }

    // RFC 8628 §3.5: the error code decides, whatever the status.
    json::object body = detail::parse_json_object(resp.body).value_or(json::object{});
    const std::string error = detail::get_string(body, "error").value_or("");
    if (error == "authorization_pending") continue;
    if (error == "slow_down") {
      interval += std::chrono::seconds(5);
      Logger("client")->debug("Server requested slow_down; new interval={}s", interval.count());
      continue;
    }
    if (error == "access_denied") throw DeviceFlowError("Device-flow sign-in was denied.", error);
    if (error == "expired_token") {
      throw DeviceFlowError("Device code expired before the sign-in completed.", error);
    }
    throw DeviceFlowError("Device-flow polling returned HTTP " + std::to_string(resp.status) +
                              ": " + detail::snippet(resp.body),
                          error);
  }
}

}  // namespace magnetar::client
