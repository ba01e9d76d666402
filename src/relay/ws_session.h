#pragma once

// The relay WebSocket protocol on one connection (spec §4 with corrections D10 and D15).
//
// After the handshake (authenticated before accept), the first frame must subscribe; then ping,
// ack, unsubscribe and further subscribes. A subscribe's `offset` ("last", "first" or a message
// id) replays history from the store before going live, gap-free: the broker's subscribe returns
// the newest id already fanned out; history is read up to it, and live messages that arrive
// meanwhile wait in a per-topic buffer. Replay is paced by the connection's send queue.
//
// Threading: every method runs on the connection's executor. Owned by its WsConnection.

#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "relay/connection_slots.h"
#include "relay/json_util.h"
#include "relay/relay_api.h"
#include "relay/ws_frames.h"

namespace magnetar::relay {

// Per-user count of open relay WebSockets (the ws_max_per_user cap). Thread-safe.
class WsRegistry {
 public:
  // The cluster-wide caps (connection_slots.h); set once, before any TryAcquire.
  void SetSlots(std::shared_ptr<ConnectionSlots> slots) { slots_ = std::move(slots); }
  // Counts one socket of `user_id` in this process (false at `max`). The "ws" slot the caller
  // acquired for it is given back by Release, or at once on false.
  bool TryAcquire(const std::string& user_id, int max);
  void Release(const std::string& user_id);

 private:
  std::shared_ptr<ConnectionSlots> slots_;
  std::mutex mutex_;
  std::unordered_map<std::string, int> per_user_;
};

class RelayWsSession : public ws::WsHandler,
                       public std::enable_shared_from_this<RelayWsSession> {
 public:
  RelayWsSession(RelayDeps& deps, const RelayOptions& options,
                 std::shared_ptr<WsRegistry> registry, auth::AuthContext auth, std::string token,
                 boost::asio::any_io_executor executor);
  ~RelayWsSession() override;

  void OnOpen(ws::WsConnection& conn) override;
  void OnText(ws::WsConnection& conn, std::string_view text) override;
  void OnBinary(ws::WsConnection& conn, std::string_view data) override;
  void OnClosed(ws::WsConnection& conn) override;

  // A live message for `topic` (posted by the topic's sink).
  void Deliver(const std::string& topic, const core::MessagePtr& message);

 private:
  struct TopicState {
    std::shared_ptr<core::SubscriberSink> sink;
    bool replaying = false;
    MessageId replay_cursor;  // last id replayed
    MessageId replay_upto;    // replay ends here; live takes over after it
    std::deque<core::MessagePtr> buffered;  // live messages that came during replay
    // With an offset, the client has (by its history reads) or gets (from the replay) every
    // message up to here. A delayed message is in the log, so in history and replays, before it
    // falls due; its late fan-out at or below this id must not send it a second time.
    MessageId seen_upto = MessageId::Min();
  };

  void HandleSubscribe(const SubscribeFields& fields, bool first);
  void HandleUnsubscribe(const std::vector<std::string>& names);
  void ReplayStep(const std::string& topic);
  void FinishReplay(const std::string& topic);
  void SendError(std::string_view code, std::string_view message);
  void ArmIdleTimer();
  void ArmTokenChecks();
  void CloseWith(uint16_t code, std::string reason);
  void UnsubscribeAll();

  RelayDeps& deps_;
  const RelayOptions& options_;
  std::shared_ptr<WsRegistry> registry_;
  auth::AuthContext auth_;
  std::string token_;
  std::weak_ptr<ws::WsConnection> conn_;
  std::map<std::string, TopicState> topics_;
  bool subscribed_ = false;
  bool closed_ = false;
  std::string session_id_;
  boost::asio::steady_timer idle_timer_;
  boost::asio::steady_timer token_timer_;
  boost::asio::steady_timer replay_timer_;
  bool replay_timer_armed_ = false;
};

}  // namespace magnetar::relay
