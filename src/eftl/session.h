#pragma once

// Session: one eFTL client connection (spec/eftl.md §b). Login, welcome and heartbeats; publish
// with acks; live subscriptions (matcher, ack mode, stop/start) with per-connection delivery seqs
// and max_pending_acks flow control; request/reply; key-value maps.
//
// Flow control: every delivery carries a seq and (unless the subscription's ack mode is "none")
// stays outstanding until the client acks it, singly ({"op":9,"seq":N}) or cumulatively for its
// subscription ({"op":9,"seq":N,"id":…}). With max_pending_acks outstanding, further events wait
// in a bounded backlog (max_backlog, oldest dropped beyond it: live subscriptions promise no
// delivery to a client that does not keep up).
//
// Errors: per-op problems are answered in the op's own reply (publish: op 9 err 11/12;
// subscribe: op 6 err 13/22; request: op 14 err 40/41; maps: op 26 err 14/30); a frame that is
// not a JSON object with an integer op closes with 1002 (after a GOODBYE saying why), a binary
// frame with 1003, a failed login with 4002 (after op 10), any op before login with 1008, a
// client silent for `timeout` seconds with 4000; oversize frames are closed with 1009 by ws/.
//
// Threading: lives on its connection's executor, owned by the WsConnection. Other threads reach
// it only through posts (PostDelivery, replies).

#include <boost/asio/steady_timer.hpp>
#include <boost/json/fwd.hpp>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "eftl/eftl_api.h"
#include "eftl/matcher.h"

namespace magnetar::eftl {

struct SessionParams {
  std::string channel;
  std::string default_topic;
  std::string query_client_id;
  std::string basic_user;
  std::string basic_password;
  std::string remote;  // client address, for the login rate limit
};

class Session : public ws::WsHandler,
                public DeliveryTarget,
                public DurableTarget,
                public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<EftlShared> shared, SessionParams params);

  void OnOpen(ws::WsConnection& conn) override;
  void OnText(ws::WsConnection& conn, std::string_view text) override;
  void OnBinary(ws::WsConnection& conn, std::string_view data) override;
  void OnClosed(ws::WsConnection& conn) override;
  void PostDelivery(uint64_t handle, BodyPtr body, std::optional<RequestInfo> request) override;
  void PostDurableDelivery(uint64_t handle, BodyPtr body, MessageId id, uint32_t count) override;
  void PostRevoked(uint64_t handle, int err, std::string reason) override;
  // A reply to one of this session's requests (on this session's executor).
  void PostReply(uint64_t req, BodyPtr body);

 private:
  enum class State { kAwaitLogin, kLoggingIn, kOpen, kClosed };
  enum class AckMode { kAuto, kClient, kNone };
  struct Sub {
    std::string id;
    core::TopicKey topic;
    AckMode ack = AckMode::kAuto;
    bool stopped = false;
    std::shared_ptr<Durable> durable;  // null: a live subscription
    // Last-value: its snapshot (the newest matching message) is being read; a live event that
    // arrives meanwhile is at least as new, and then the snapshot is not sent.
    bool awaiting_snapshot = false;
    bool got_live = false;
  };
  struct Outstanding {
    uint64_t handle = 0;
    MessageId id;          // durable deliveries: the stored message
    bool durable = false;
  };
  struct Queued {
    uint64_t handle = 0;
    BodyPtr body;
    std::optional<RequestInfo> request;
  };
  struct PendingPublish {
    int64_t seq = 0;
    std::string topic;
    std::string body;
  };

  void Send(std::string frame);
  void Fail(uint16_t code, int err, std::string reason);  // GOODBYE, then close
  void ArmTimer(int seconds);
  void OnTimer();

  void OnLogin(const boost::json::object& o);
  void LoginDone(LoginOutcome outcome, std::string client_id, std::string id_token, int max_pending);
  // Client op seqs already applied (publish, reply, map set/remove): a resent one is acked only.
  bool Applied(int64_t seq) const { return applied_set_.count(seq) > 0; }
  void MarkApplied(int64_t seq);
  void OnSubscribe(const boost::json::object& o);
  void OnUnsubscribe(const boost::json::object& o);
  void OnAck(const boost::json::object& o);
  void OnPublish(const boost::json::object& o);
  void OnRequest(const boost::json::object& o);
  void OnReply(const boost::json::object& o);
  void OnMapOp(int op, const boost::json::object& o);
  void OnStop(const boost::json::object& o);
  void OnStart(const boost::json::object& o);

  void Deliver(uint64_t handle, BodyPtr body, std::optional<RequestInfo> request);
  void DrainBacklog();
  // `delete_durable`: unsubscribe (the durable goes); else close (the durable stays).
  void RemoveSub(uint64_t handle, bool delete_durable = false);
  void SubscribeDurable(std::string id, core::TopicKey topic, std::string name, DurableType type,
                        std::shared_ptr<const Matcher> matcher, AckMode mode, bool stopped);
  void DeliverDurable(uint64_t handle, BodyPtr body, MessageId id, uint32_t count);
  void SendSnapshot(uint64_t handle, std::shared_ptr<const Matcher> matcher);
  void PumpPublishes();
  void Publish(PendingPublish p);
  void OnPublished(int64_t seq, Status status);

  std::shared_ptr<EftlShared> shared_;
  SessionParams params_;
  std::weak_ptr<ws::WsConnection> conn_;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  State state_ = State::kAwaitLogin;

  auth::User user_;
  std::string client_id_;
  std::string reply_address_;
  size_t max_pending_ = 1000;
  std::chrono::steady_clock::time_point last_received_;

  uint64_t next_seq_ = 0;  // delivery seq of the last event sent
  std::unordered_map<std::string, uint64_t> handle_by_id_;
  std::unordered_map<uint64_t, Sub> subs_;  // by handle
  std::map<uint64_t, Outstanding> outstanding_;  // by delivery seq
  std::deque<Queued> backlog_;
  uint64_t dropped_ = 0;

  std::set<std::string> ensured_topics_;  // topic records known to exist
  std::deque<PendingPublish> publishes_;  // waiting for their topic record, in order
  bool ensuring_ = false;

  std::vector<std::string> early_frames_;  // ops sent before the welcome: run after it
  std::string id_token_;
  uint64_t generation_ = 0;
  std::deque<int64_t> applied_;
  std::unordered_set<int64_t> applied_set_;

  uint64_t next_req_ = 0;
  std::unordered_map<uint64_t, int64_t> requests_;  // req -> the client's request seq
};

}  // namespace magnetar::eftl
