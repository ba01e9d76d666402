#pragma once

// Connection: one client TCP connection speaking the Pulsar binary protocol. It reassembles
// frames, answers each command, and multiplexes the client's producers and consumers (keyed by
// the client-chosen producer_id / consumer_id, per connection).
//
// Threading: lives on its socket's io_context for its whole life; every member is touched only
// there. Store work runs through RunStoreWork and comes back to that executor; publish receipts
// and subscription deliveries are posted to it.
//
// Flow: the client speaks first (CONNECT). Commands that arrive while an earlier one waits for
// the store (CONNECT's token check, PRODUCER, SUBSCRIBE, ...) stay in the input buffer and are
// handled in order once it is answered (clients pipeline lookups and subscribes right after
// CONNECT, spec §9). One write in flight; replies produced meanwhile are appended to the next.
//
// TLS (pulsar+ssl://): the same connection over an SSL stream layered on the socket; Start()
// runs the server handshake first (bounded by the options' handshake timeout).
//
// Lifecycle: Start() registers with the ConnectionTracker and starts reading; the connection
// ends on EOF, a read/write error, a protocol error, keep-alive expiry or Shutdown(). Ending
// releases its producers and detaches its consumers from their subscriptions.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/user.h"
#include "core/durable_subscription.h"
#include "net/connection_tracker.h"
#include "pulsar/codec/frame.h"
#include "pulsar/topic_name.h"
#include "pulsar_ws/subscription.h"

namespace magnetar::pulsar {

class PulsarService;

class Connection : public net::Closable, public std::enable_shared_from_this<Connection> {
 public:
  // `tls`: the server's TLS context for a pulsar+ssl:// connection, null for plain TCP.
  Connection(PulsarService& service, boost::asio::ip::tcp::socket socket,
             boost::asio::ssl::context* tls);
  ~Connection() override;

  void Start();
  void Shutdown() override;

  // From a subscription (posted to our executor by the consumer's sink).
  void DeliverTo(uint64_t consumer_id, std::vector<core::DeliveredMessage> messages);
  void SubscriptionGoneFor(uint64_t consumer_id);
  void ActiveConsumerChanged(uint64_t consumer_id, bool active);

 private:
  struct Producer {
    core::TopicKey topic;
    std::string name;
    bool generated_name = false;  // ours, not the client's: nobody can re-send under it
    bool ready = false;  // PRODUCER_SUCCESS sent
    struct Receipt {
      uint64_t token = 0;
      bool done = false;
      proto::BaseCommand reply;
    };
    std::deque<Receipt> receipts;  // in SEND order; written as the head completes
  };
  struct Consumer {
    core::TopicKey topic;
    std::string subscription;
    std::shared_ptr<pulsar_ws::Subscription> sub;
    uint64_t core_id = 0;
    std::shared_ptr<pulsar_ws::ConsumerSink> sink;
    std::optional<uint64_t> epoch;
  };
  // Where a topic command resolved to (tenant -> owner user id, topic record ensured).
  struct Resolved {
    std::optional<proto::ServerError> error;
    std::string message;
    core::TopicKey topic;
    std::optional<uint64_t> last_sequence;  // producers: the broker's de-duplication mark
  };

  void DoRead();
  void StartTls();
  void OnRead(boost::system::error_code ec, size_t n);
  void ProcessInput();
  // One command. It may pause input (store work in flight) or close the connection.
  void Handle(Frame& frame);
  void Send(const proto::BaseCommand& command);
  void SendError(uint64_t request_id, proto::ServerError error, std::string message);
  void Flush();
  void Close(const std::string& why);
  void Resume();
  void ArmKeepAlive();
  // Token expiry: a client that announced supports_auth_refresh gets AUTH_CHALLENGE and must
  // answer with a valid token of the same user; any other is closed with AuthenticationError.
  void ArmTokenExpiry();
  void OnTokenExpired();
  void HandleAuthResponse(const proto::CommandAuthResponse& c);

  void HandleConnect(const proto::CommandConnect& c);
  void HandleLookup(const proto::CommandLookupTopic& c);
  void HandlePartitionedMetadata(const proto::CommandPartitionedTopicMetadata& c);
  void HandleProducer(const proto::CommandProducer& c);
  void HandleSend(Frame& frame);
  void CompleteReceipt(uint64_t producer_id, uint64_t seq_token, proto::BaseCommand reply);
  void HandleCloseProducer(const proto::CommandCloseProducer& c);
  void HandleSubscribe(const proto::CommandSubscribe& c);
  void HandleFlow(const proto::CommandFlow& c);
  void HandleAck(const proto::CommandAck& c);
  void HandleRedeliver(const proto::CommandRedeliverUnacknowledgedMessages& c);
  void HandleCloseConsumer(const proto::CommandCloseConsumer& c);
  void HandleUnsubscribe(const proto::CommandUnsubscribe& c);
  void HandleSeek(const proto::CommandSeek& c);
  void HandleGetLastMessageId(const proto::CommandGetLastMessageId& c);
  void HandleConsumerStats(const proto::CommandConsumerStats& c);
  void HandleTopicsOfNamespace(const proto::CommandGetTopicsOfNamespace& c);
  void HandleGetSchema(const proto::CommandGetSchema& c);
  void HandleGetOrCreateSchema(const proto::CommandGetOrCreateSchema& c);
  void HandleUnknown(const proto::BaseCommand& command);

  // Runs on the blocking side: tenant -> owner, permission, topic record.
  Resolved Resolve(const PulsarTopicName& name, auth::Permission needed) const;
  void ReleaseProducer(Producer& p);

  PulsarService& service_;
  boost::asio::ip::tcp::socket socket_;
  // Over socket_ (a reference: the socket stays the connection's), for pulsar+ssl:// only.
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
  boost::asio::steady_timer keepalive_;
  boost::asio::steady_timer auth_timer_;
  uint64_t tracker_id_ = 0;

  std::string in_;          // received, not yet parsed from in_pos_ on
  size_t in_pos_ = 0;
  bool processing_ = false;  // ProcessInput() is on the stack
  std::string read_chunk_;  // the buffer each read fills
  std::string out_;         // replies waiting for the write in flight
  std::string writing_;     // the write in flight
  bool write_in_flight_ = false;
  bool paused_ = false;  // a command waits for the store: later input waits too
  bool closed_ = false;
  bool connected_ = false;  // CONNECT accepted
  std::chrono::steady_clock::time_point last_heard_;
  bool ping_outstanding_ = false;

  std::optional<auth::User> user_;
  int64_t token_exp_ = 0;  // epoch seconds; 0 = never
  bool supports_auth_refresh_ = false;
  bool challenge_outstanding_ = false;
  int protocol_version_ = 0;
  std::map<uint64_t, Producer> producers_;
  std::map<uint64_t, Consumer> consumers_;
  uint64_t next_receipt_token_ = 0;
};

}  // namespace magnetar::pulsar
