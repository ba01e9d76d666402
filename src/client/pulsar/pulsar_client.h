#pragma once

// The Pulsar binary-protocol client (contract: shared/spec/pulsar-binary.md; connection
// behaviour: shared/spec/clients.md Part B), with a blocking API in the style of the relay
// client: `PulsarClient`, `Producer`, `Consumer`.
//
//   mp::PulsarClient client({.service_url = "pulsar://127.0.0.1:6650", .token = jwt});
//   mp::Producer producer = client.create_producer({.topic = "jobs"});
//   mp::MessageId id = producer.send({.payload = "hello", .key = "k1"});
//   mp::Consumer consumer = client.subscribe({.topic = "jobs", .subscription = "workers"});
//   if (auto m = consumer.receive(std::chrono::seconds(5))) consumer.acknowledge(m->id);
//
// Threads: a client owns one I/O thread (Boost.Asio). Every connection, producer and consumer
// lives on it, so none of them needs a lock; the public calls post work to it and wait. A
// blocking call made on that thread (inside a send callback) throws std::logic_error.
// Connections: one TCP connection per broker address, shared by every producer and consumer the
// lookups send there; requests are correlated by request id, each with its own timeout.
// Failures: a dropped connection reconnects with exponential backoff and jitter; producers and
// consumers then register again (lookup, PRODUCER / SUBSCRIBE) and producers send their
// unreceipted messages again, with the same sequence ids, in order.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/errors.h"
#include "client/tls_options.h"

namespace magnetar::client {
class TokenProvider;
}

namespace magnetar::client::pulsar {

using Millis = std::chrono::milliseconds;

enum class ErrorCode {
  kDisconnected,       // no connection to the broker right now
  kConnectionLost,     // the connection dropped while the request was pending
  kTimeout,            // no answer within the timeout
  kMessageTooLarge,    // over the broker's max_message_size: not sent
  kLookupFailed,       // LOOKUP / PARTITIONED_METADATA answered Failed
  kTooManyRedirects,   // more than 20 lookup redirects
  kClosed,             // the client, producer or consumer is closed
  kServerError,        // the broker answered ERROR / SEND_ERROR (server_error() says which)
  kInvalidArgument,    // a bad URL, topic or option
  kProtocol,           // the broker broke the protocol (an out-of-order receipt, ...)
};

const char* ErrorCodeName(ErrorCode code);

class PulsarError : public Error {
 public:
  PulsarError(ErrorCode code, const std::string& message, int server_error = -1)
      : Error(message), code_(code), server_error_(server_error) {}
  ErrorCode code() const { return code_; }
  // The broker's ServerError number (pulsar-binary.md §3.1), -1 when the broker said nothing.
  int server_error() const { return server_error_; }

 private:
  ErrorCode code_;
  int server_error_;
};

// `pulsar://host[:6650]` or `pulsar+ssl://host[:6651]`.
struct ServiceUrl {
  bool tls = false;
  std::string host;
  uint16_t port = 6650;
  // Throws PulsarError(kInvalidArgument) for another scheme, an empty host or a bad port.
  static ServiceUrl parse(std::string_view url);
  std::string str() const;
};

// Reconnect delays (clients.md §B.7, with configurable bounds): next(0) is uniform over
// [1 ms, initial]; after that min(prev * 2, max) plus a jitter of 1..100 ms.
class Backoff {
 public:
  Backoff(Millis initial = Millis(100), Millis max = Millis(30'000));
  Millis next(Millis prev);

 private:
  Millis initial_, max_;
  uint64_t state_;
};

struct ClientOptions {
  std::string service_url = "pulsar://127.0.0.1:6650";
  // Token auth (auth_method_name "token"): a fixed JWT, or a provider asked at every handshake
  // and on AUTH_CHALLENGE (on a helper thread: providers may block).
  std::string token;
  std::shared_ptr<TokenProvider> tokens;
  Millis connect_timeout{10'000};    // TCP connect, then again for CONNECTED
  Millis operation_timeout{30'000};  // lookups, PRODUCER, SUBSCRIBE, SEEK, CLOSE_*
  Millis ping_interval{30'000};      // a PING after this much silence; two silent intervals = dead
  Millis backoff_initial{100};
  Millis backoff_max{30'000};
  std::string client_version = "Magnetar C++ Client";
  // pulsar+ssl:// service URLs (and lookups answering one): the broker's certificate is checked
  // against the system's trust store, or ca_file / ca_path, and its host name; verify=false
  // accepts any certificate (tests only).
  TlsOptions tls;
};

struct MessageId {
  uint64_t ledger = 0;
  uint64_t entry = 0;
  int32_t partition = -1;
  int32_t batch_index = -1;
  // "<ledger>-<entry>" (Magnetar's id), with ":<batch index>" for a member of a batch.
  std::string str() const;
  static MessageId earliest();
  static MessageId latest();
  friend bool operator==(const MessageId&, const MessageId&) = default;
};

struct OutgoingMessage {
  std::string payload;
  std::optional<std::string> key;  // partition_key
  std::map<std::string, std::string> properties;
  std::optional<uint64_t> event_time;  // ms since the epoch
};

struct Message {
  MessageId id;
  std::string topic;
  std::string payload;
  std::optional<std::string> key;
  std::map<std::string, std::string> properties;
  uint64_t publish_time = 0;  // ms since the epoch
  uint64_t event_time = 0;
  uint32_t redelivery_count = 0;
  std::string producer_name;
};

enum class SubscriptionType { kExclusive, kShared, kFailover, kKeyShared };
enum class InitialPosition { kLatest, kEarliest };

// "exclusive", "shared", "failover", "key_shared" (also "Key_Shared"); nullopt otherwise.
std::optional<SubscriptionType> ParseSubscriptionType(std::string_view name);

struct ProducerOptions {
  std::string topic;
  std::string producer_name;  // empty: the broker picks one (kept across reconnects)
  // Batching: sends wait up to batch_max_delay and leave as one batched SEND
  // (num_messages_in_batch) of at most batch_max_messages / batch_max_bytes.
  bool batching = false;
  uint32_t batch_max_messages = 1000;
  size_t batch_max_bytes = 128 * 1024;
  Millis batch_max_delay{10};
  Millis send_timeout{30'000};       // a message without a receipt after this fails with kTimeout
  size_t max_pending_messages = 1000;  // send_async blocks the caller while this many wait
};

struct SendResult {
  MessageId id;
  std::optional<PulsarError> error;
};
// Runs on the client's I/O thread: keep it short and never make a blocking client call in it.
using SendCallback = std::function<void(const SendResult&)>;

struct ConsumerOptions {
  std::string topic;
  std::string subscription;
  SubscriptionType type = SubscriptionType::kExclusive;
  InitialPosition initial_position = InitialPosition::kLatest;
  std::string consumer_name;
  uint32_t receiver_queue_size = 1000;  // FLOW permits; topped up when half are consumed
  bool durable = true;
};

namespace detail {
class ClientImpl;
class ProducerImpl;
class ConsumerImpl;
struct Arrivals;
}  // namespace detail

class Producer {
 public:
  Producer(Producer&&) noexcept;
  Producer& operator=(Producer&&) noexcept;
  ~Producer();  // close()

  const std::string& topic() const;
  std::string producer_name() const;

  // Waits for the receipt; throws PulsarError.
  MessageId send(OutgoingMessage message);
  // Queues the message (blocking while max_pending_messages wait) and calls `done` with the
  // receipt or the error. Receipts come in send order.
  void send_async(OutgoingMessage message, SendCallback done);
  // Sends the open batch now and waits until every message sent before has its answer.
  void flush();
  // Flushes (up to the send timeout), then CLOSE_PRODUCER. Messages still unanswered fail with
  // kClosed. Idempotent.
  void close();

 private:
  friend class PulsarClient;
  Producer(std::shared_ptr<detail::ClientImpl> client, std::string topic,
           std::vector<std::shared_ptr<detail::ProducerImpl>> impls);
  // The partition a message goes to: by key hash when it has a key, else round-robin.
  size_t route(const OutgoingMessage& message);
  std::shared_ptr<detail::ClientImpl> client_;
  std::string topic_;
  // One per partition (partition i = index i), or the one producer of a plain topic.
  std::vector<std::shared_ptr<detail::ProducerImpl>> impls_;
  size_t next_partition_ = 0;  // round-robin (guarded by the caller: one thread per Producer)
  bool partitioned_ = false;    // impls_ are partitions (ids carry their index)
};

class Consumer {
 public:
  Consumer(Consumer&&) noexcept;
  Consumer& operator=(Consumer&&) noexcept;
  ~Consumer();  // close()

  const std::string& topic() const;
  const std::string& subscription() const;

  // The next message, or nullopt after `timeout`. Throws PulsarError(kClosed) once closed.
  std::optional<Message> receive(Millis timeout);
  Message receive();

  // Fire-and-forget, as Pulsar clients do: an ack lost with a connection is a redelivery.
  void acknowledge(const MessageId& id);
  void acknowledge_cumulative(const MessageId& id);  // Exclusive and Failover only
  // REDELIVER_UNACKNOWLEDGED_MESSAGES with this id: the broker sends it again.
  void negative_acknowledge(const MessageId& id);
  // REDELIVER_UNACKNOWLEDGED_MESSAGES without ids: everything unacked comes again.
  void redeliver_unacknowledged();
  // Moves the subscription (inclusive) and drops what was received but not yet returned.
  void seek(const MessageId& id);
  void seek_to_time(uint64_t publish_time_ms);
  // Deletes the subscription, then closes.
  void unsubscribe();
  void close();

 private:
  friend class PulsarClient;
  Consumer(std::shared_ptr<detail::ClientImpl> client, std::string topic,
           std::vector<std::shared_ptr<detail::ConsumerImpl>> impls,
           std::shared_ptr<detail::Arrivals> arrivals);
  // The consumer of the partition an id names (the only one of a plain topic).
  const std::shared_ptr<detail::ConsumerImpl>& owner_of(const MessageId& id) const;
  std::shared_ptr<detail::ClientImpl> client_;
  std::string topic_;
  std::vector<std::shared_ptr<detail::ConsumerImpl>> impls_;  // as Producer's
  std::shared_ptr<detail::Arrivals> arrivals_;  // partitioned: any partition's queue grew
  size_t next_partition_ = 0;  // where receive() looks first (fairness across partitions)
  bool partitioned_ = false;
};

class PulsarClient {
 public:
  explicit PulsarClient(ClientOptions options);
  ~PulsarClient();  // close()
  PulsarClient(const PulsarClient&) = delete;
  PulsarClient& operator=(const PulsarClient&) = delete;

  // PARTITIONED_METADATA: the partition count, 0 for a topic that is not partitioned.
  uint32_t partitions(const std::string& topic);
  // LOOKUP (following redirects): the broker URL that owns the topic.
  std::string lookup(const std::string& topic);

  // Register on the owning broker; throw PulsarError (kServerError with the broker's code, or
  // kTimeout after operation_timeout). On a partitioned topic (partitions() > 0) they register
  // on every partition `<topic>-partition-<i>`: a producer routes each message by its key's hash
  // (Java's String.hashCode over the key's bytes, so Java clients agree for ASCII keys), else
  // round-robin; a consumer receives from all of them, ids carry their partition, and acks go
  // back to it.
  Producer create_producer(ProducerOptions options);
  Consumer subscribe(ConsumerOptions options);

  // Closes every producer (flushing), then every consumer, then the connections.
  void close();

 private:
  std::shared_ptr<detail::ClientImpl> impl_;
};

}  // namespace magnetar::client::pulsar
