#include "cli/eftl_commands.h"

#include <boost/json.hpp>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>

#include "client/eftl.h"
#include "client/url.h"

namespace magnetar::cli {

namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

void Out(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void Err(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

constexpr int kDefaultEftlPort = 9191;

std::string EftlUrls(Session& session, const EftlCommonOptions& c) {
  if (!c.eftl_url.empty()) return c.eftl_url;
  if (const char* env = std::getenv("MAGNETAR_EFTL_URL"); env && *env) return env;
  const client::RelayEndpoint relay = client::parse_relay_endpoint(session.url());
  const std::string host = relay.host.find(':') != std::string::npos ? "[" + relay.host + "]" : relay.host;
  return std::string(relay.tls ? "wss://" : "ws://") + host + ":" + std::to_string(kDefaultEftlPort) +
         "/" + c.channel;
}

// Connects with the URL's credentials, else an access token of the stored login as the password
// (a refused cached token is refreshed once).
std::unique_ptr<client::EftlConnection> Connect(Session& session, const EftlCommonOptions& c) {
  const std::string urls = EftlUrls(session, c);
  bool url_credentials = false;
  for (const auto& u : client::parse_eftl_urls(urls)) {
    url_credentials = url_credentials || !u.username.empty() || !u.password.empty();
  }
  client::EftlOptions options;
  options.tls = session.tls();
  options.auto_reconnect_max_delay = 5s;
  options.on_error = [](int code, const std::string& reason) {
    Err("magnetar: eFTL error " + std::to_string(code) + ": " + reason);
  };
  if (url_credentials) return std::make_unique<client::EftlConnection>(urls, options);
  auto tokens = session.tokens();
  options.password = tokens->get_token();
  try {
    return std::make_unique<client::EftlConnection>(urls, options);
  } catch (const client::EftlError& e) {
    if (e.code() != client::EftlError::kAuthenticationFailed) throw;
  }
  tokens->invalidate();
  options.password = tokens->get_token();
  return std::make_unique<client::EftlConnection>(urls, options);
}

client::EftlMessage ParseMessage(const std::string& text, const std::string& where) {
  try {
    return client::EftlMessage::from_json(text);
  } catch (const std::invalid_argument& e) {
    throw UsageError(where + ": " + e.what());
  }
}

std::string Describe(const client::EftlMessage& m, bool as_json) {
  if (!as_json) return m.to_json();
  std::string out = "{\"subscription\":" + json::serialize(json::value(m.subscription_id())) +
                    ",\"seq\":" + std::to_string(m.seq());
  if (m.store_message_id()) out += ",\"store_id\":" + std::to_string(m.store_message_id());
  if (m.delivery_count()) out += ",\"delivery_count\":" + std::to_string(m.delivery_count());
  out += ",\"body\":" + m.to_json() + "}";
  return out;
}

}  // namespace

int EftlPublish(Session& session, const EftlCommonOptions& c, const EftlPublishOptions& o) {
  const bool as_json = session.options().json;
  if (o.message != "-") {
    const client::EftlMessage m = ParseMessage(o.message, "the message");
    auto conn = Connect(session, c);
    conn->publish(m);
    Out(as_json ? R"({"published":1})" : "published 1 message to " + conn->url());
    return 0;
  }
  auto conn = Connect(session, c);
  int published = 0;
  int line_no = 0;
  for (std::string line; std::getline(std::cin, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    conn->publish(ParseMessage(line, "stdin line " + std::to_string(line_no)));
    ++published;
  }
  Out(as_json ? "{\"published\":" + std::to_string(published) + "}"
              : "published " + std::to_string(published) + " message(s) to " + conn->url());
  return 0;
}

int EftlSubscribe(Session& session, const EftlCommonOptions& c, const EftlSubscribeOptions& o,
                  std::stop_token stop) {
  client::EftlSubscribeOptions s;
  s.matcher = o.matcher;
  s.durable = o.durable;
  s.key = o.key;
  if (o.type == "standard") s.type = client::EftlDurableType::kStandard;
  else if (o.type == "shared") s.type = client::EftlDurableType::kShared;
  else if (o.type == "last-value") s.type = client::EftlDurableType::kLastValue;
  else if (!o.type.empty()) throw UsageError("--type must be standard, shared or last-value");
  if (o.ack == "auto") s.ack = client::EftlAckMode::kAuto;
  else if (o.ack == "client") s.ack = client::EftlAckMode::kClient;
  else if (o.ack == "none") s.ack = client::EftlAckMode::kNone;
  else throw UsageError("--ack must be auto, client or none");
  const bool as_json = session.options().json;

  std::mutex mutex;
  std::condition_variable cv;
  int received = 0;
  bool ended = false;
  std::string end_reason;
  auto conn = Connect(session, c);
  client::EftlConnection* raw = conn.get();
  // Printed on the connection's thread, in delivery order; a client-ack message is acked once
  // printed (so a crash before that gets it redelivered).
  conn->subscribe(s, [&, raw, client_ack = s.ack == client::EftlAckMode::kClient](
                         const client::EftlMessage& m) {
    {
      std::lock_guard lock(mutex);
      if (o.count > 0 && received >= o.count) return;  // more than asked for: not printed or acked
      ++received;
    }
    Out(Describe(m, as_json));
    if (client_ack) raw->acknowledge(m);
    cv.notify_all();
  });
  Err("magnetar: subscribed on " + conn->url());
  std::unique_lock lock(mutex);
  while (!stop.stop_requested() && !(o.count > 0 && received >= o.count)) {
    if (!conn->is_connected() && conn->state() == client::EftlState::kDisconnected) {
      ended = true;
      end_reason = "the eFTL connection ended";
      break;
    }
    cv.wait_for(lock, 100ms);
  }
  lock.unlock();
  conn->disconnect();
  if (ended) throw client::EftlError(client::EftlError::kPublishFailed, end_reason);
  return 0;
}

int EftlRequest(Session& session, const EftlCommonOptions& c, const EftlRequestOptions& o) {
  if (o.timeout <= 0) throw UsageError("--timeout must be positive");
  const client::EftlMessage m = ParseMessage(o.message, "the request");
  auto conn = Connect(session, c);
  const client::EftlMessage reply =
      conn->send_request(m, std::chrono::milliseconds(static_cast<int64_t>(o.timeout * 1000)));
  Out(reply.to_json());
  return 0;
}

int EftlKv(Session& session, const EftlCommonOptions& c, const EftlKvOptions& o) {
  const bool as_json = session.options().json;
  if (o.action == "set") {
    const client::EftlMessage value = ParseMessage(o.message, "the value");
    auto conn = Connect(session, c);
    conn->kv_map(o.map).set(o.key, value);
    Out(as_json ? R"({"set":true})" : "set " + o.map + "[" + o.key + "]");
    return 0;
  }
  if (o.action == "get") {
    auto conn = Connect(session, c);
    auto value = conn->kv_map(o.map).get(o.key);
    if (!value) {
      if (as_json) Out("null");
      Err("magnetar: " + o.map + "[" + o.key + "] is not set");
      return 1;
    }
    Out(value->to_json());
    return 0;
  }
  if (o.action == "remove") {
    auto conn = Connect(session, c);
    conn->kv_map(o.map).remove(o.key);
    Out(as_json ? R"({"removed":true})" : "removed " + o.map + "[" + o.key + "]");
    return 0;
  }
  if (o.action == "destroy") {
    auto conn = Connect(session, c);
    conn->remove_kv_map(o.map);
    // Fire-and-forget on the wire: a get on the same connection is answered after it.
    (void)conn->kv_map(o.map).get("-");
    Out(as_json ? R"({"destroyed":true})" : "destroyed map " + o.map);
    return 0;
  }
  throw UsageError("unknown kv action " + o.action);
}

}  // namespace magnetar::cli
