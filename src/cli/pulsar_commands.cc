// `magnetar pulsar produce|consume`: the Pulsar binary protocol through the C++ client, with the
// login and credentials handling of the other commands (a token from --token, else the access
// token the credentials give).

#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>

#include "cli/commands.h"
#include "client/auth.h"
#include "client/pulsar/pulsar_client.h"

namespace magnetar::cli {

namespace json = boost::json;
namespace mp = client::pulsar;
using namespace std::chrono_literals;

namespace {

void Line(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// --service-url, else MAGNETAR_PULSAR_URL, else the relay URL's host on port 6650.
std::string ServiceUrl(Session& session, const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("MAGNETAR_PULSAR_URL"); env && *env) return env;
  std::string url = session.url();
  const size_t scheme = url.find("://");
  if (scheme != std::string::npos) url.erase(0, scheme + 3);
  std::string host;
  if (!url.empty() && url.front() == '[') {
    host = url.substr(0, url.find(']') + 1);
  } else {
    host = url.substr(0, url.find_first_of(":/"));
  }
  return "pulsar://" + host + ":6650";
}

mp::ClientOptions ClientOptionsFor(Session& session, const PulsarOptions& o) {
  mp::ClientOptions c;
  c.service_url = ServiceUrl(session, o.service_url);
  if (!o.token.empty()) {
    c.token = o.token;
  } else if (const char* env = std::getenv("MAGNETAR_TOKEN"); env && *env) {
    c.token = env;
  } else {
    c.tokens = session.tokens();
  }
  c.operation_timeout = std::chrono::seconds(o.timeout);
  c.connect_timeout = std::chrono::seconds(o.timeout);
  // pulsar+ssl://: the same trust as https:// (--ca-file, --insecure-skip-tls-verify).
  c.tls = session.tls();
  return c;
}

}  // namespace

int PulsarProduce(Session& session, const PulsarProduceOptions& o, std::stop_token stop) {
  std::map<std::string, std::string> properties;
  for (const auto& item : o.properties) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw UsageError("--property '" + item + "' must be KEY=VALUE");
    }
    properties[item.substr(0, eq)] = item.substr(eq + 1);
  }
  if (o.messages.empty()) throw UsageError("no message to send");
  mp::PulsarClient client(ClientOptionsFor(session, o.common));
  mp::ProducerOptions po;
  po.topic = o.topic;
  po.send_timeout = std::chrono::seconds(o.common.timeout);
  po.batching = o.messages.size() > 1;  // many messages on one command line: one batch
  mp::Producer producer = client.create_producer(po);
  std::vector<mp::MessageId> ids(o.messages.size());
  std::vector<std::optional<mp::PulsarError>> errors(o.messages.size());
  for (size_t i = 0; i < o.messages.size() && !stop.stop_requested(); ++i) {
    mp::OutgoingMessage m;
    m.payload = o.messages[i];
    if (!o.key.empty()) m.key = o.key;
    m.properties = properties;
    // The callbacks write distinct slots; flush() orders them before the reads below.
    producer.send_async(std::move(m), [&ids, &errors, i](const mp::SendResult& r) {
      if (r.error) {
        errors[i] = *r.error;
      } else {
        ids[i] = r.id;
      }
    });
  }
  producer.flush();
  producer.close();
  int failed = 0;
  for (size_t i = 0; i < o.messages.size(); ++i) {
    if (errors[i]) {
      ++failed;
      std::fprintf(stderr, "magnetar: error: message %zu: %s\n", i + 1, errors[i]->what());
      continue;
    }
    if (session.options().json) {
      Line(json::serialize(json::object{{"message_id", ids[i].str()}, {"topic", o.topic}}));
    } else {
      Line(ids[i].str());
    }
  }
  return failed == 0 ? 0 : 1;
}

int PulsarConsume(Session& session, const PulsarConsumeOptions& o, std::stop_token stop) {
  auto type = mp::ParseSubscriptionType(o.type);
  if (!type) throw UsageError("--type must be exclusive, shared, failover or key_shared");
  mp::InitialPosition position;
  if (o.position == "latest") {
    position = mp::InitialPosition::kLatest;
  } else if (o.position == "earliest") {
    position = mp::InitialPosition::kEarliest;
  } else {
    throw UsageError("--position must be latest or earliest");
  }
  mp::PulsarClient client(ClientOptionsFor(session, o.common));
  mp::ConsumerOptions co;
  co.topic = o.topic;
  co.subscription = o.subscription;
  co.type = *type;
  co.initial_position = position;
  mp::Consumer consumer = client.subscribe(co);
  int received = 0;
  while (!stop.stop_requested() && (o.count == 0 || received < o.count)) {
    auto m = consumer.receive(200ms);
    if (!m) continue;
    if (session.options().json) {
      json::object props;
      for (const auto& [k, v] : m->properties) props[k] = v;
      json::object out{{"message_id", m->id.str()},
                       {"topic", o.topic},
                       {"payload", m->payload},
                       {"properties", std::move(props)},
                       {"publish_time", m->publish_time},
                       {"redelivery_count", m->redelivery_count}};
      if (m->key) out["key"] = *m->key;
      Line(json::serialize(out));
    } else {
      Line(m->id.str() + " " + (m->key ? "[" + *m->key + "] " : std::string()) + m->payload);
    }
    consumer.acknowledge(m->id);
    ++received;
  }
  consumer.close();
  client.close();
  return 0;
}

}  // namespace magnetar::cli
