#pragma once

// The objects behind PulsarClient, Producer and Consumer (internal). All of them live on the
// client's I/O thread; the public classes post to it. The only state shared with application
// threads is the consumer's receive queue and the producer's in-flight count, each behind its
// own mutex.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "client/pulsar/connection.h"
#include "client/pulsar/pulsar_client.h"
#include "client/runtime.h"

namespace magnetar::client::pulsar::detail {

using Runtime = magnetar::client::detail::Runtime;

class ClientImpl {
 public:
  explicit ClientImpl(ClientOptions options);
  ~ClientImpl();

  Runtime& runtime() { return *runtime_; }
  boost::asio::any_io_executor executor() { return runtime_->executor(); }
  const ClientOptions& options() const { return options_; }
  bool closed() const { return closed_.load(); }

  // The connection for a broker URL (started on first use). I/O thread.
  std::shared_ptr<Connection> connection_for(const ServiceUrl& url);
  // LOOKUP from the service URL's connection, following at most 20 redirects.
  boost::asio::awaitable<std::shared_ptr<Connection>> lookup(std::string topic,
                                                             Clock::time_point deadline);
  boost::asio::awaitable<uint32_t> partitions(std::string topic, Clock::time_point deadline);
  boost::asio::awaitable<void> close();

  uint64_t next_producer_id() { return next_producer_id_++; }
  uint64_t next_consumer_id() { return next_consumer_id_++; }
  void track(std::weak_ptr<ProducerImpl> p) { producers_.push_back(std::move(p)); }
  void track(std::weak_ptr<ConsumerImpl> c) { consumers_.push_back(std::move(c)); }

 private:
  ClientOptions options_;
  ServiceUrl service_url_;
  std::shared_ptr<TokenSource> tokens_;
  // Built once, from options_.tls, for every pulsar+ssl:// connection.
  std::unique_ptr<boost::asio::ssl::context> tls_context_;
  std::map<std::string, std::shared_ptr<Connection>> connections_;
  std::vector<std::weak_ptr<ProducerImpl>> producers_;
  std::vector<std::weak_ptr<ConsumerImpl>> consumers_;
  uint64_t next_producer_id_ = 1;
  uint64_t next_consumer_id_ = 1;
  std::atomic<bool> closed_{false};  // read by the public wrappers on other threads
  std::unique_ptr<Runtime> helper_;   // blocking token fetches
  std::unique_ptr<Runtime> runtime_;  // last member: stopped before the rest goes
};

// A backoff loop around a registration: retries kDisconnected, kConnectionLost, kTimeout and
// ServiceNotReady (plus ConsumerBusy / ProducerBusy when `reconnecting`: the broker may not have
// noticed the old connection die yet) until `deadline`.
bool Retryable(const PulsarError& e, bool reconnecting);

class ProducerImpl : public ProducerSink, public std::enable_shared_from_this<ProducerImpl> {
 public:
  ProducerImpl(ClientImpl* client, ProducerOptions options);

  const std::string& topic() const { return options_.topic; }
  std::string name() const;
  const ProducerOptions& options() const { return options_; }

  boost::asio::awaitable<void> start();  // the first registration; throws
  void send(OutgoingMessage message, SendCallback done);
  boost::asio::awaitable<void> flush(Clock::time_point deadline);
  boost::asio::awaitable<void> close();

  // In-flight accounting for send_async's back-pressure (any thread).
  void acquire_slot();
  void release_slot();
  // From an application thread: queued for send() on the I/O thread. One post drains everything
  // queued until it runs (a post per message was a fifth of the client's CPU in batched produce).
  void send_from_app(OutgoingMessage message, SendCallback done);

  void on_receipt(const proto::CommandSendReceipt& receipt) override;
  void on_send_error(const proto::CommandSendError& error) override;
  void on_closed_by_broker() override;
  void on_connection_lost() override;

 private:
  struct Pending {
    uint64_t first_seq = 0;
    uint64_t last_seq = 0;
    std::string frame;
    std::vector<SendCallback> callbacks;
    Clock::time_point deadline;
  };
  struct Queued {
    OutgoingMessage message;
    uint64_t seq = 0;
    SendCallback done;
  };

  boost::asio::awaitable<void> register_once(Clock::time_point deadline);
  // Retries (Retryable) with backoff; each attempt has operation_timeout; nullopt = no limit.
  boost::asio::awaitable<void> register_with_retry(std::optional<Clock::time_point> deadline,
                                                   bool reconnecting);
  boost::asio::awaitable<void> reconnect(std::shared_ptr<ProducerImpl> self);
  boost::asio::awaitable<void> timeout_loop(std::shared_ptr<ProducerImpl> self);
  boost::asio::awaitable<void> batch_timer(std::shared_ptr<ProducerImpl> self, uint64_t generation);
  void flush_batch();
  void enqueue(Pending pending);
  void complete_front(const proto::MessageIdData* id, const std::optional<PulsarError>& error);
  void fail_all(const PulsarError& error);
  void notify_progress();

  ClientImpl* client_;
  ProducerOptions options_;
  uint64_t producer_id_;
  std::shared_ptr<Connection> conn_;
  bool ready_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool reconnecting_ = false;
  std::optional<PulsarError> failed_;  // a terminal registration error
  std::string producer_name_;
  uint64_t next_seq_ = 0;
  std::deque<Pending> pending_;
  std::vector<Queued> batch_;
  size_t batch_bytes_ = 0;
  uint64_t batch_generation_ = 0;  // a batch timer flushes only the batch it was armed for
  bool batch_timer_armed_ = false;
  Backoff backoff_;
  Waiters progress_;  // flush() waiters: woken when pending_ shrinks

  void drain_inbox();  // I/O thread

  std::mutex inbox_mutex_;
  std::vector<std::pair<OutgoingMessage, SendCallback>> inbox_;  // guarded by inbox_mutex_
  bool drain_posted_ = false;                                     // guarded by inbox_mutex_
  std::vector<std::pair<OutgoingMessage, SendCallback>> draining_;  // I/O thread

  mutable std::mutex slots_mutex_;
  std::condition_variable slots_cv_;
  size_t in_flight_ = 0;
  bool slots_closed_ = false;
  std::string name_copy_;  // producer_name_ for other threads (under slots_mutex_)
};

// A partitioned consumer's wake-up: every partition's queue bumps `count` when it grows or closes,
// so receive() can wait for any of them.
struct Arrivals {
  std::mutex mutex;
  std::condition_variable cv;
  uint64_t count = 0;
  void bump() {
    {
      std::lock_guard lock(mutex);
      ++count;
    }
    cv.notify_all();
  }
};

class ConsumerImpl : public ConsumerSink, public std::enable_shared_from_this<ConsumerImpl> {
 public:
  ConsumerImpl(ClientImpl* client, ConsumerOptions options);

  const ConsumerOptions& options() const { return options_; }
  // Before start(): who else hears about arrivals (a partitioned consumer).
  void set_arrivals(std::shared_ptr<Arrivals> arrivals) { arrivals_ = std::move(arrivals); }

  boost::asio::awaitable<void> start();
  boost::asio::awaitable<void> seek(std::optional<MessageId> id, uint64_t publish_time);
  boost::asio::awaitable<void> unsubscribe();
  boost::asio::awaitable<void> close();
  void ack(MessageId id, bool cumulative);
  void redeliver(std::optional<MessageId> id);

  // Application threads.
  std::optional<Message> receive(Millis timeout);
  void close_queue();

  void on_message(magnetar::pulsar::Frame& frame) override;
  void on_active_change(bool active) override;
  void on_closed_by_broker() override;
  void on_connection_lost() override;

 private:
  boost::asio::awaitable<void> register_once(Clock::time_point deadline);
  // Retries (Retryable) with backoff; each attempt has operation_timeout; nullopt = no limit.
  boost::asio::awaitable<void> register_with_retry(std::optional<Clock::time_point> deadline,
                                                   bool reconnecting);
  boost::asio::awaitable<void> reconnect(std::shared_ptr<ConsumerImpl> self);
  void grant(uint64_t epoch, uint32_t permits);
  void push(Message m);

  ClientImpl* client_;
  ConsumerOptions options_;
  uint64_t consumer_id_;
  std::shared_ptr<Connection> conn_;
  bool ready_ = false;
  bool closed_ = false;
  bool reconnecting_ = false;
  Backoff backoff_;
  std::shared_ptr<Arrivals> arrivals_;

  // Shared with application threads.
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Message> queue_;
  bool queue_closed_ = false;
  uint64_t epoch_ = 0;          // one per subscription incarnation; stale FLOW top-ups are dropped
  uint32_t consumed_ = 0;       // returned by receive() since the last FLOW
};

}  // namespace magnetar::client::pulsar::detail
