#include "cli/commands.h"

#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <thread>

#include "client/device_flow.h"
#include "client/errors.h"
#include "client/subscriber.h"
#include "client/topics.h"
#include "client/transport.h"

namespace magnetar::cli {

namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

constexpr size_t kBulkLimit = 100;  // the relay accepts 1-100 messages per bulk request

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

std::string Str(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  if (!v || v->is_null()) return "";
  if (v->is_string()) return std::string(v->get_string());
  return json::serialize(*v);
}

// One message per line: `<topic> <message_id> <payload>` or the whole item as JSON.
void PrintMessage(const json::object& m, bool as_json) {
  if (as_json) {
    Out(json::serialize(m));
    return;
  }
  const json::value* payload = m.if_contains("payload");
  Out(Str(m, "topic") + " " + Str(m, "message_id") + " " +
      (payload ? json::serialize(*payload) : std::string("null")));
}

// Calls f(token); on a 401 gets a fresh token and calls it once more.
template <class F>
auto WithToken(Session& session, F f) {
  auto tokens = session.tokens();
  try {
    return f(tokens->get_token());
  } catch (const client::ClientError& e) {
    if (e.status() != 401) throw;
  }
  tokens->invalidate();
  return f(tokens->get_token());
}

std::string Hostname() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

// One line from stdin (without echo when prompting on a terminal). Polls, so that Ctrl-C (a stop
// request: the signals are taken by another thread) still ends it, with the echo restored.
std::string ReadPasswordLine(bool prompt, std::stop_token stop) {
  termios old{};
  const bool tty = prompt && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
  if (tty) {
    std::fputs("Password: ", stderr);
    std::fflush(stderr);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  bool done = false;
  while (!done && !stop.stop_requested()) {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    char c = 0;
    const ssize_t n = ::read(STDIN_FILENO, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') {
      done = true;
    } else {
      line.push_back(c);
    }
  }
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::fputc('\n', stderr);
  }
  if (stop.stop_requested()) throw UsageError("interrupted");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

json::object ParsePayload(const std::string& text, const std::string& where) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) throw UsageError(where + " is not valid JSON: " + ec.message());
  if (!v.is_object()) throw UsageError(where + " must be a JSON object (the message payload)");
  return std::move(v.get_object());
}

std::optional<std::map<std::string, std::string>> ParseMetadata(
    const std::vector<std::string>& items) {
  if (items.empty()) return std::nullopt;
  std::map<std::string, std::string> out;
  for (const auto& item : items) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw UsageError("--metadata takes KEY=VALUE (got '" + item + "')");
    }
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

}  // namespace

// ---- login / logout / whoami -------------------------------------------------------------------

int Login(Session& session, const LoginOptions& o, std::stop_token stop) {
  const std::string url = session.url();
  const bool as_json = session.options().json;
  if (o.device == !o.username.empty()) {
    throw UsageError("login needs either --username (password login) or --device");
  }
  if (o.pair && !o.device) throw UsageError("--pair needs --device");
  session.forget_access_token();
  client::CredentialsFile& file = session.credentials();

  if (o.device) {
    Err("Starting device-flow login against " + url);
    Err("Open the URL below in a browser on any machine and approve the sign-in.");
    client::DeviceFlowOptions flow;
    flow.client_hint = o.client_hint.empty() ? "magnetar-cli on " + Hostname() : o.client_hint;
    flow.pair = o.pair;
    flow.tls = session.tls();
    client::DeviceFlowResult result;
    try {
      result = client::DeviceFlow(url, file, flow).run(stop);
    } catch (const client::DeviceFlowError& e) {
      Err(std::string("Login failed: ") + e.what());
      return 1;
    }
    if (result.access_token && result.expires_in) {
      session.cache_access_token(url, *result.access_token,
                                 std::chrono::seconds(*result.expires_in));
    }
    Err("Credentials written to " + file.label());
    json::object summary{{"relay_url", url}, {"credentials_file", file.label()}};
    if (o.pair) {
      if (!result.refresh_token_secondary) {
        Err("magnetar: warning: the relay returned no secondary refresh token");
      } else if (!o.secondary_credentials.empty()) {
        client::CredentialsFile second(o.secondary_credentials);
        second.save({url, result.refresh_token_secondary, client::utc_now_iso(), std::nullopt,
                     std::nullopt});
        Err("Secondary credentials written to " + second.label());
        summary["secondary_credentials_file"] = second.label();
      } else {
        // No file named: hand the secret to the caller on stdout, and only there.
        summary["refresh_token_secondary"] = *result.refresh_token_secondary;
        if (!as_json) Out(*result.refresh_token_secondary);
      }
    }
    if (as_json) Out(json::serialize(summary));
    return 0;
  }

  std::string password = o.password;
  if (o.password_stdin) {
    password = ReadPasswordLine(false, stop);
  } else if (password.empty()) {
    if (const char* env = std::getenv("MAGNETAR_PASSWORD"); env && *env) {
      password = env;
    } else if (isatty(STDIN_FILENO)) {
      password = ReadPasswordLine(true, stop);
    } else {
      throw UsageError("no password: pass --password, --password-stdin or set MAGNETAR_PASSWORD");
    }
  }
  auto store = session.credentials_ptr();
  client::PasswordAuthenticator auth(url, o.username, password, store, std::chrono::seconds(10),
                                     session.tls());
  client::AccessToken token = auth.authenticate();
  if (!file.exists()) {
    throw client::AuthError("the relay returned no refresh token, so there is nothing to store");
  }
  session.cache_access_token(url, token.token, token.expires_in);
  std::string username = o.username;
  try {
    client::HttpRelayClient relay(url, std::chrono::seconds(10), session.tls());
    username = Str(relay.whoami(token.token), "username");
  } catch (const client::Error&) {
  }
  if (as_json) {
    Out(json::serialize(json::object{
        {"relay_url", url}, {"username", username}, {"credentials_file", file.label()}}));
  } else {
    Out("Logged in to " + url + " as " + username + "; credentials written to " + file.label());
  }
  return 0;
}

int Logout(Session& session, const LogoutOptions& o) {
  client::CredentialsFile& file = session.credentials();
  const bool as_json = session.options().json;
  if (!file.exists()) {
    if (as_json) {
      Out(json::serialize(json::object{{"logged_out", false}, {"credentials_file", file.label()}}));
    } else {
      Out("Not logged in (no credentials at " + file.label() + ")");
    }
    session.forget_access_token();
    return 0;
  }
  if (!o.local_only) {
    try {
      const std::string url = session.url();
      client::HttpRelayClient relay(url, std::chrono::seconds(10), session.tls());
      if (auto access = session.cached_access_token(url)) {
        try {
          relay.logout(*access);
        } catch (const client::ClientError&) {
        }
      }
      if (auto creds = file.load(); creds && creds->refresh_token) {
        relay.revoke_refresh_token(*creds->refresh_token);
      }
    } catch (const std::exception& e) {
      Err(std::string("magnetar: warning: could not revoke the session on the relay: ") + e.what());
    }
  }
  session.forget_access_token();
  file.remove();
  if (as_json) {
    Out(json::serialize(json::object{{"logged_out", true}, {"credentials_file", file.label()}}));
  } else {
    Out("Logged out; removed " + file.label());
  }
  return 0;
}

int Whoami(Session& session) {
  const std::string url = session.url();
  client::HttpRelayClient relay(url, std::chrono::seconds(10), session.tls());
  json::object me = WithToken(session, [&](const std::string& t) { return relay.whoami(t); });
  if (session.options().json) {
    Out(json::serialize(me));
    return 0;
  }
  std::string perms;
  if (const json::value* p = me.if_contains("permissions"); p && p->is_array()) {
    for (const auto& item : p->get_array()) {
      perms +=
          (perms.empty() ? "" : ", ") + std::string(item.is_string() ? item.get_string() : "?");
    }
  }
  Out(Str(me, "username") + " (user id " + Str(me, "user_id") + ") on " + url);
  Out("permissions: " + (perms.empty() ? std::string("none") : perms));
  return 0;
}

// ---- topics ------------------------------------------------------------------------------------

int TopicsList(Session& session) {
  client::HttpRelayClient relay(session.url(), std::chrono::seconds(10), session.tls());
  json::array topics =
      WithToken(session, [&](const std::string& t) { return relay.list_topics(t); });
  std::sort(topics.begin(), topics.end(), [](const json::value& a, const json::value& b) {
    return (a.is_object() ? Str(a.get_object(), "topic_name") : "") <
           (b.is_object() ? Str(b.get_object(), "topic_name") : "");
  });
  if (session.options().json) {
    Out(json::serialize(topics));
    return 0;
  }
  if (topics.empty()) {
    Err("(no topics)");
    return 0;
  }
  size_t width = 4;
  for (const auto& t : topics) {
    if (t.is_object()) width = std::max(width, Str(t.get_object(), "topic_name").size());
  }
  auto pad = [&](std::string s) {
    s.resize(std::max(s.size(), width), ' ');
    return s;
  };
  Out(pad("NAME") + "  " + "CREATED                      DESCRIPTION");
  for (const auto& t : topics) {
    if (!t.is_object()) continue;
    std::string created = Str(t.get_object(), "created_at");
    created.resize(std::max<size_t>(created.size(), 27), ' ');
    Out(pad(Str(t.get_object(), "topic_name")) + "  " + created + "  " +
        Str(t.get_object(), "description"));
  }
  return 0;
}

int TopicsCreate(Session& session, const std::string& name, const std::string& description) {
  client::HttpRelayClient relay(session.url(), std::chrono::seconds(10), session.tls());
  std::optional<std::string> desc;
  if (!description.empty()) desc = description;
  const bool created =
      WithToken(session, [&](const std::string& t) { return relay.ensure_topic(t, name, desc); });
  if (session.options().json) {
    Out(json::serialize(json::object{{"topic", name}, {"created", created}}));
  } else {
    Out(created ? "Created topic " + name : "Topic " + name + " already exists (yours)");
  }
  return 0;
}

int TopicsDelete(Session& session, const std::string& name) {
  client::HttpRelayClient relay(session.url(), std::chrono::seconds(10), session.tls());
  try {
    WithToken(session, [&](const std::string& t) {
      relay.delete_topic(t, name);
      return 0;
    });
  } catch (const client::ClientError& e) {
    if (e.status() == 404) throw client::Error("no topic named " + name);
    throw;
  }
  if (session.options().json) {
    Out(json::serialize(json::object{{"topic", name}, {"deleted", true}}));
  } else {
    Out("Deleted topic " + name);
  }
  return 0;
}

// ---- publish -----------------------------------------------------------------------------------

namespace {

client::TransportOptions PublishTransportOptions(Session& session, int max_attempts) {
  client::TransportOptions t;
  t.tls = session.tls();
  if (max_attempts > 0) t.retry.max_attempts = max_attempts;
  return t;
}

// JSON lines from stdin, published in bulk requests of up to 100. A batch goes out when it is
// full, when stdin has been quiet for 200 ms (so a slow producer's lines are not held back) and
// at the end.
int PublishLines(Session& session, const PublishOptions& o, client::RelayTransport& transport,
                 std::stop_token stop) {
  const bool as_json = session.options().json;
  const auto metadata = ParseMetadata(o.metadata);
  std::vector<std::pair<size_t, json::object>> batch;  // (line number, bulk item)
  size_t line_no = 0, accepted = 0, rejected = 0;

  auto flush = [&] {
    if (batch.empty()) return;
    json::array items;
    for (auto& [n, item] : batch) items.push_back(item);
    json::object result = transport.post_bulk_messages(std::move(items), stop);
    const json::value* results = result.if_contains("results");
    for (size_t i = 0; i < batch.size(); ++i) {
      json::object r;
      if (results && results->is_array() && i < results->get_array().size() &&
          results->get_array()[i].is_object()) {
        r = results->get_array()[i].get_object();
      }
      const bool ok = Str(r, "status") == "accepted";
      ok ? ++accepted : ++rejected;
      if (as_json) {
        json::object line{{"line", batch[i].first}};
        for (const auto& kv : r) line[kv.key()] = kv.value();
        Out(json::serialize(line));
      } else if (!ok) {
        Err("magnetar: line " + std::to_string(batch[i].first) + " rejected: " + Str(r, "error"));
      }
    }
    batch.clear();
  };
  auto take = [&](std::string line) {
    ++line_no;
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    size_t start = 0;
    while (start < line.size() && std::isspace(static_cast<unsigned char>(line[start]))) ++start;
    if (start == line.size()) return;
    json::object item{
        {"topic", o.topic},
        {"payload", ParsePayload(line.substr(start), "stdin line " + std::to_string(line_no))}};
    if (o.ttl) item["ttl"] = *o.ttl;
    if (metadata) {
      json::object m;
      for (const auto& [k, v] : *metadata) m[k] = v;
      item["metadata"] = std::move(m);
    }
    batch.emplace_back(line_no, std::move(item));
    if (batch.size() == kBulkLimit) flush();
  };

  std::string buffer;
  bool eof = false;
  try {
    while (!eof && !stop.stop_requested()) {
      pollfd p{STDIN_FILENO, POLLIN, 0};
      const int ready = ::poll(&p, 1, batch.empty() ? 500 : 200);
      if (ready == 0) {
        flush();
        continue;
      }
      if (ready < 0 && errno == EINTR) continue;
      char chunk[65536];
      const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof = true;
      } else {
        buffer.append(chunk, static_cast<size_t>(n));
      }
      size_t nl;
      while ((nl = buffer.find('\n')) != std::string::npos) {
        take(buffer.substr(0, nl));
        buffer.erase(0, nl + 1);
      }
    }
    if (eof && !buffer.empty()) take(buffer);
    flush();
  } catch (const UsageError&) {
    flush();  // the lines before the bad one are published
    if (!as_json)
      Err("magnetar: published " + std::to_string(accepted) + " message(s) before the error");
    throw;
  }
  if (!as_json) {
    Out("published " + std::to_string(accepted) + " message(s) to " + o.topic +
        (rejected ? ", " + std::to_string(rejected) + " rejected" : std::string()));
  }
  return rejected ? 1 : 0;
}

}  // namespace

int Publish(Session& session, const PublishOptions& o, std::stop_token stop) {
  if (o.json != "-") {
    json::object payload = ParsePayload(o.json, "the message");
    const auto metadata = ParseMetadata(o.metadata);
    client::RelayTransport transport(session.url(), session.tokens(),
                                     PublishTransportOptions(session, o.max_attempts));
    json::object r = transport.post_message(o.topic, std::move(payload), o.ttl, metadata, stop);
    if (session.options().json) {
      Out(json::serialize(r));
    } else {
      Out("published " + Str(r, "message_id") + " to " + o.topic);
    }
    return 0;
  }
  ParseMetadata(o.metadata);  // usage errors before anything is read
  client::RelayTransport transport(session.url(), session.tokens(),
                                   PublishTransportOptions(session, o.max_attempts));
  return PublishLines(session, o, transport, stop);
}

// ---- poll --------------------------------------------------------------------------------------

int Poll(Session& session, const PollOptions& o, std::stop_token stop) {
  if (o.timeout < 1 || o.timeout > 60) throw UsageError("--timeout must be 1-60 seconds");
  client::TransportOptions t;
  t.tls = session.tls();
  if (!o.cursor_file.empty()) t.cursor_path = std::filesystem::absolute(o.cursor_file);
  // Printed first, committed after: a crash repeats messages rather than losing them.
  t.cursor_commit = client::CursorCommit::kManual;
  client::RelayTransport transport(session.url(), session.tokens(), t);
  if (!o.since.empty()) {
    for (const auto& topic : o.topics) {
      if (!transport.last_message_id(topic)) transport.set_last_message_id(topic, o.since);
    }
  }
  const bool as_json = session.options().json;
  auto delay = 1s;
  while (!stop.stop_requested()) {
    std::vector<json::object> messages;
    try {
      messages = transport.long_poll(o.topics, std::chrono::seconds(o.timeout), stop);
    } catch (const client::TransportError& e) {
      if (!o.follow ||
          (e.status() && (*e.status() == 401 || *e.status() == 403 || *e.status() == 422))) {
        throw;
      }
      Err(std::string("magnetar: poll failed: ") + e.what() + "; retrying in " +
          std::to_string(delay.count()) + "s");
      // Wait, but wake up for Ctrl-C.
      for (auto waited = 0ms; waited < delay && !stop.stop_requested(); waited += 100ms) {
        std::this_thread::sleep_for(100ms);
      }
      delay = std::min(delay * 2, std::chrono::seconds(5));
      continue;
    }
    delay = 1s;
    for (const auto& m : messages) PrintMessage(m, as_json);
    transport.commit(messages);
    if (!o.follow) break;
  }
  return 0;
}

// ---- subscribe ---------------------------------------------------------------------------------

int Subscribe(Session& session, const SubscribeOptions& o, std::stop_token stop) {
  client::SubscriberOptions s;
  s.topics = o.topics;
  s.offset = o.offset;
  s.client_id = "magnetar-cli";
  s.tls = session.tls();
  s.on_event = [](const client::SubscriberEvent& e) {
    switch (e.kind) {
      case client::SubscriberEvent::Kind::kConnected:
        Err("magnetar: subscribed (" + e.detail + ")");
        break;
      case client::SubscriberEvent::Kind::kDisconnected:
        Err("magnetar: disconnected: " + e.detail);
        break;
      case client::SubscriberEvent::Kind::kReconnecting:
        Err("magnetar: reconnecting in " +
            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(e.delay).count()) +
            " ms");
        break;
    }
  };
  client::RelaySubscriber subscriber(session.url(), session.tokens(), s);
  const bool as_json = session.options().json;
  int received = 0;
  subscriber.run(
      [&](const json::object& m) {
        PrintMessage(m, as_json);
        if (o.count > 0 && ++received >= o.count) subscriber.stop();
      },
      stop);
  return 0;
}

}  // namespace magnetar::cli
