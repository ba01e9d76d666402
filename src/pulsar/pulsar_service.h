#pragma once

// PulsarService: the Apache Pulsar binary protocol (spec/pulsar-binary.md) on its own TCP port,
// as a thin translation onto the shared core. It uses the Pulsar WebSocket API's subscription
// registry and producer names (pulsar_ws), so a subscription is one thing whichever protocol its
// consumers speak, and the same message ids: MessageIdData{ledgerId = hi, entryId = lo}.
//
// Identity: CONNECT carries a relay JWT (auth_method_name "token"); a connection without a valid
// token gets ERROR AuthenticationError and is closed. Tenants are relay usernames, as for the
// WebSocket API; the tenant `public` (what clients expand short names to) is the caller's own.
//
// Lifecycle: built by server/ after the PulsarWsApi, Accept()ed sockets from a net::Listener;
// must outlive the I/O threads. Connections register with the ConnectionTracker so shutdown
// reaches them.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "auth/authenticator.h"
#include "auth/user_store.h"
#include "core/broker.h"
#include "core/topic_catalog.h"
#include "net/blocking_pool.h"
#include "net/connection_tracker.h"
#include "pulsar/codec/frame.h"
#include "pulsar_ws/pulsar_ws_api.h"
#include "pulsar_ws/subscription.h"

namespace magnetar::pulsar {

struct PulsarDeps {
  core::Broker& broker;
  core::TopicCatalog& topics;
  auth::UserStore& users;
  auth::Authenticator& authenticator;
  net::BlockingPool& blocking;
  net::ConnectionTracker& tracker;
  const Clock& clock;
  pulsar_ws::SubscriptionRegistry& subscriptions;
  std::shared_ptr<pulsar_ws::ProducerNames> producer_names;
};

struct PulsarOptions {
  std::string server_version = "magnetar";
  // What LOOKUP answers: pulsar://<advertised_host>:<advertised_port>, and with TLS also
  // pulsar+ssl://<advertised_host>:<advertised_tls_port>.
  std::string advertised_host = "127.0.0.1";
  uint16_t advertised_port = 6650;
  uint16_t advertised_tls_port = 0;  // 0: no TLS listener
  // The server's TLS context (net::MakeServerTlsContext) for AcceptTls(); null without TLS.
  std::shared_ptr<boost::asio::ssl::context> tls_context;
  int tls_handshake_seconds = 10;
  uint32_t max_message_size = kDefaultMaxMessageSize;
  // Topics first seen in a PARTITIONED_METADATA request are created with this many partitions
  // (Pulsar's allowAutoTopicCreationType=partitioned with defaultNumPartitions); 0 = not
  // partitioned (Pulsar's default, non-partitioned auto-creation).
  uint32_t default_partitions = 0;
  // PING after this much silence from the client; close after twice as much.
  int keepalive_seconds = 30;
};

// Runs `work()` where the store allows (inline for an in-memory store, else on the blocking pool),
// then `then(result)` on `executor`.
template <typename Work, typename Then>
void RunStoreWork(const PulsarDeps& deps, const boost::asio::any_io_executor& executor, Work work,
                  Then then) {
  if (!deps.broker.store().blocking()) return then(work());
  deps.blocking.Run(executor, std::move(work), std::move(then));
}

// A schema stored by GET_OR_CREATE_SCHEMA or PRODUCER (kept in memory: schemas are informational
// here, payloads are bytes to every other protocol).
struct StoredSchema {
  proto::Schema schema;
  uint64_t version = 0;
};

class PulsarService {
 public:
  PulsarService(PulsarDeps deps, PulsarOptions options);
  ~PulsarService();

  // Takes over an accepted socket (on its own io_context): plain TCP, or TLS (the handshake
  // first, bounded by tls_handshake_seconds). AcceptTls needs options.tls_context.
  void Accept(boost::asio::ip::tcp::socket socket);
  void AcceptTls(boost::asio::ip::tcp::socket socket);

  const PulsarDeps& deps() const { return deps_; }
  const PulsarOptions& options() const { return options_; }
  std::string BrokerUrl() const;
  std::string BrokerUrlTls() const;  // empty without TLS

  // Producer access modes per topic (Shared / Exclusive), across this protocol's connections.
  // False when `exclusive` is asked and the topic has producers, or the topic has an exclusive one.
  bool AcquireProducerSlot(const core::TopicKey& topic, bool exclusive);
  void ReleaseProducerSlot(const core::TopicKey& topic);

  // Schemas by full topic name: the stored one, or store `schema` (a new version when it differs).
  std::optional<StoredSchema> GetSchema(const std::string& topic);
  StoredSchema GetOrCreateSchema(const std::string& topic, const proto::Schema& schema);

 private:
  PulsarDeps deps_;
  PulsarOptions options_;
  std::mutex mutex_;
  struct Slots {
    int producers = 0;
    bool exclusive = false;
  };
  std::map<std::pair<std::string, std::string>, Slots> slots_;  // guarded by mutex_
  std::map<std::string, StoredSchema> schemas_;                  // guarded by mutex_
};

}  // namespace magnetar::pulsar
