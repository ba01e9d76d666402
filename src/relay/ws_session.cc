#include "relay/ws_session.h"

#include <boost/asio/post.hpp>

#include <algorithm>

#include "common/message_metrics.h"
#include "common/random.h"
#include "common/time_format.h"
#include "relay/frames.h"
#include "relay/json_util.h"
#include "relay/store_reads.h"
#include "relay/ws_frames.h"

namespace magnetar::relay {

namespace asio = boost::asio;

namespace {

constexpr size_t kReplayPage = 100;
constexpr uint16_t kCloseTokenInvalid = 4001;

// Posts a topic's live messages to the session's executor.
class TopicSink final : public core::SubscriberSink {
 public:
  TopicSink(std::weak_ptr<RelayWsSession> session, std::weak_ptr<ws::WsConnection> conn,
            std::string topic)
      : session_(std::move(session)),
        conn_(std::move(conn)),
        topic_(std::make_shared<const std::string>(std::move(topic))) {}

  void OnMessage(const core::MessagePtr& message) override {
    auto conn = conn_.lock();
    if (!conn) return;
    // The topic name is shared, not copied: this runs once per subscriber per message.
    conn->Post([session = session_, topic = topic_, message] {
      if (auto s = session.lock()) s->Deliver(*topic, message);
    });
  }

 private:
  std::weak_ptr<RelayWsSession> session_;
  std::weak_ptr<ws::WsConnection> conn_;
  std::shared_ptr<const std::string> topic_;
};

std::string ErrorFrame(std::string_view code, std::string_view message) {
  std::string out = R"({"type":"error","code":)";
  AppendJsonString(out, code);
  out += R"(,"message":)";
  AppendJsonString(out, message);
  out += R"(,"details":null})";
  return out;
}

}  // namespace

bool WsRegistry::TryAcquire(const std::string& user_id, int max) {
  std::lock_guard lock(mutex_);
  int& n = per_user_[user_id];
  if (n >= max) {
    if (slots_) slots_->Release("ws", user_id);
    return false;
  }
  ++n;
  return true;
}

void WsRegistry::Release(const std::string& user_id) {
  if (slots_) slots_->Release("ws", user_id);
  std::lock_guard lock(mutex_);
  if (auto it = per_user_.find(user_id); it != per_user_.end() && --it->second <= 0) {
    per_user_.erase(it);
  }
}

RelayWsSession::RelayWsSession(RelayDeps& deps, const RelayOptions& options,
                               std::shared_ptr<WsRegistry> registry, auth::AuthContext auth,
                               std::string token, asio::any_io_executor executor)
    : deps_(deps),
      options_(options),
      registry_(std::move(registry)),
      auth_(std::move(auth)),
      token_(std::move(token)),
      session_id_("sess_" + RandomHex(6)),
      idle_timer_(executor),
      token_timer_(executor),
      replay_timer_(executor) {}

RelayWsSession::~RelayWsSession() = default;

void RelayWsSession::OnOpen(ws::WsConnection& conn) {
  conn_ = std::static_pointer_cast<ws::WsConnection>(conn.shared_from_this());
  ArmIdleTimer();
  ArmTokenChecks();
}

void RelayWsSession::ArmIdleTimer() {
  idle_timer_.expires_after(std::chrono::seconds(options_.ws_idle_seconds));
  idle_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self) return;
    // Only client frames count (spec §4.2): clients keep the socket with app-level pings.
    self->CloseWith(1011, self->subscribed_ ? "Idle timeout" : "Idle timeout before subscribe");
  });
}

void RelayWsSession::ArmTokenChecks() {
  // D10: the socket lives no longer than its token, and not past a logout or a deactivation.
  const int64_t now = deps_.clock.NowSeconds();
  const int64_t until_expiry = auth_.claims.exp - now;
  const int64_t wait = std::max<int64_t>(
      0, std::min<int64_t>(until_expiry, options_.revocation_check_seconds));
  token_timer_.expires_after(std::chrono::seconds(wait));
  token_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->closed_) return;
    if (self->deps_.clock.NowSeconds() >= self->auth_.claims.exp) {
      return self->CloseWith(kCloseTokenInvalid, "Token expired");
    }
    // The deny-list and user reads are store round trips (Redis: two per socket per check): on
    // the blocking pool when the engine blocks, so many sockets' checks never stall this thread.
    const auth::Authenticator& authenticator = self->deps_.authenticator;
    RunStoreWork(
        self->deps_, self->token_timer_.get_executor(),
        [&authenticator, token = self->token_] { return authenticator.Authenticate(token); },
        [weak](Result<auth::AuthContext> current) {
          auto self = weak.lock();
          if (!self || self->closed_) return;
          if (!current.ok()) {
            return self->CloseWith(kCloseTokenInvalid, current.status().message());
          }
          if (!current->user.Has(auth::Permission::kRead)) {
            return self->CloseWith(kCloseTokenInvalid,
                                   "Permission denied: read permission required");
          }
          self->ArmTokenChecks();
        });
  });
}

void RelayWsSession::CloseWith(uint16_t code, std::string reason) {
  if (auto conn = conn_.lock()) conn->Close(code, std::move(reason));
}

void RelayWsSession::SendError(std::string_view code, std::string_view message) {
  if (auto conn = conn_.lock()) conn->SendText(ErrorFrame(code, message));
}

void RelayWsSession::OnBinary(ws::WsConnection&, std::string_view) {
  ArmIdleTimer();
  if (!subscribed_) {
    SendError("SUBSCRIPTION_ERROR", "Failed to subscribe");
    return CloseWith(1000, "");
  }
  SendError("PROCESSING_ERROR", "processing error");
}

void RelayWsSession::OnText(ws::WsConnection&, std::string_view text) {
  ArmIdleTimer();
  // What the frame means is decided by ParseClientFrame (ws_frames.h, pure and fuzzed); the
  // handlers below carry it out.
  ClientFrame frame = ParseClientFrame(text, subscribed_);
  switch (frame.kind) {
    case ClientFrame::Kind::kInvalid:
      SendError(frame.error_code, frame.error_message);
      if (frame.close) CloseWith(1000, "");
      return;
    case ClientFrame::Kind::kSubscribe:
      return HandleSubscribe(frame.subscribe, /*first=*/!subscribed_);
    case ClientFrame::Kind::kPing: {
      std::string pong = R"({"type":"pong","timestamp":")";
      AppendRfc3339(pong, deps_.clock.Now());
      pong += R"("})";
      if (auto conn = conn_.lock()) conn->SendText(std::move(pong));
      return;
    }
    case ClientFrame::Kind::kAck:
      // Accepted for compatibility; relay WebSockets keep no delivery state (spec §4.2).
      return;
    case ClientFrame::Kind::kUnsubscribe:
      return HandleUnsubscribe(frame.topics);
    case ClientFrame::Kind::kUnknown:
      return SendError("UNKNOWN_MESSAGE_TYPE", "Unknown message type: " + frame.type_name);
  }
}

void RelayWsSession::HandleUnsubscribe(const std::vector<std::string>& names) {
  for (const auto& name : names) {
    auto it = topics_.find(name);
    if (it == topics_.end()) continue;
    deps_.broker.Unsubscribe({auth_.user.user_id, name}, it->second.sink.get());
    topics_.erase(it);
  }
}

void RelayWsSession::HandleSubscribe(const SubscribeFields& fields, bool first) {
  const std::vector<std::string>& names = fields.topics;
  const std::optional<MessageId>& replay_from = fields.replay_from;
  auto conn = conn_.lock();
  if (!conn) return;
  subscribed_ = true;

  std::string confirm = R"({"type":"subscribed","topics":[)";
  std::vector<std::string> to_replay;
  bool any = false;
  for (const auto& name : names) {
    // A later subscribe confirms the topics it added (D15); the first confirms all it named.
    const bool known = topics_.count(name) > 0;
    if (first || !known) {
      if (any) confirm.push_back(',');
      any = true;
      AppendJsonString(confirm, name);
    }
    if (known) continue;  // already subscribed: not doubled
    TopicState& state = topics_[name];
    state.sink = std::make_shared<TopicSink>(weak_from_this(), conn_, name);
    const MessageId live_from = deps_.broker.Subscribe({auth_.user.user_id, name}, state.sink);
    if (replay_from) state.seen_upto = std::max(*replay_from, live_from);
    if (replay_from && *replay_from < live_from) {
      state.replaying = true;
      state.replay_cursor = *replay_from;
      state.replay_upto = live_from;
      to_replay.push_back(name);
    }
  }
  confirm += R"(],"session_id":)";
  AppendJsonString(confirm, session_id_);
  confirm += R"(,"timestamp":")";
  AppendRfc3339(confirm, deps_.clock.Now());
  confirm += R"("})";
  conn->SendText(std::move(confirm));
  for (const auto& name : to_replay) ReplayStep(name);
}

void RelayWsSession::ReplayStep(const std::string& topic) {
  auto conn = conn_.lock();
  auto it = topics_.find(topic);
  if (!conn || closed_ || it == topics_.end() || !it->second.replaying) return;
  // Pace the replay by the send queue: history must not push a slow client over its bound.
  if (conn->queued_bytes() > options_.ws.max_queue_bytes / 2) {
    // One timer for the connection: when it fires, every topic still replaying goes on.
    if (replay_timer_armed_) return;
    replay_timer_armed_ = true;
    replay_timer_.expires_after(std::chrono::milliseconds(10));
    replay_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      auto self = weak.lock();
      if (!self || ec) return;
      self->replay_timer_armed_ = false;
      std::vector<std::string> replaying;
      for (const auto& [name, state] : self->topics_) {
        if (state.replaying) replaying.push_back(name);
      }
      for (const auto& name : replaying) self->ReplayStep(name);
    });
    return;
  }
  core::ReadRequest read;
  read.after = it->second.replay_cursor;
  read.limit = kReplayPage;
  ReadTopic(deps_, conn->executor(), {auth_.user.user_id, topic}, read,
            [weak = weak_from_this(), topic](Result<core::ReadResult> result) {
              auto self = weak.lock();
              if (!self) return;
              auto it = self->topics_.find(topic);
              auto conn = self->conn_.lock();
              if (it == self->topics_.end() || !conn || !it->second.replaying) return;
              if (!result.ok()) {
                return self->CloseWith(1011, "Internal server error");
              }
              TopicState& state = it->second;
              bool reached_live = result->messages.size() < kReplayPage;
              for (const auto& m : result->messages) {
                if (m->id > state.replay_upto) {
                  reached_live = true;
                  break;
                }
                conn->Send(MessageFrame(m));
                metrics::MessagesFor(metrics::Protocol::kRelayWs).delivered.Inc();
                state.replay_cursor = m->id;
              }
              if (state.replay_cursor >= state.replay_upto) reached_live = true;
              if (reached_live) return self->FinishReplay(topic);
              asio::post(conn->executor(), [weak, topic] {
                if (auto s = weak.lock()) s->ReplayStep(topic);
              });
            });
}

void RelayWsSession::FinishReplay(const std::string& topic) {
  auto it = topics_.find(topic);
  auto conn = conn_.lock();
  if (it == topics_.end() || !conn) return;
  TopicState& state = it->second;
  state.replaying = false;
  while (!state.buffered.empty()) {
    auto m = std::move(state.buffered.front());
    state.buffered.pop_front();
    if (m->id > state.replay_cursor) {
      conn->Send(MessageFrame(m));
      metrics::MessagesFor(metrics::Protocol::kRelayWs).Delivered(1, m->publish_time, deps_.clock.Now());
    }
  }
}

void RelayWsSession::Deliver(const std::string& topic, const core::MessagePtr& message) {
  auto it = topics_.find(topic);
  if (it == topics_.end() || closed_) return;
  // Only a delayed message fanned out when due (or one the fan-out delivers after the client
  // read past it in history) can be at or below the offset's reach: the client has it already.
  if (message->id <= it->second.seen_upto) return;
  auto conn = conn_.lock();
  if (!conn) return;
  if (it->second.replaying) {
    if (it->second.buffered.size() >= options_.ws.max_queue_frames) {
      metrics::MessagesFor(metrics::Protocol::kRelayWs).dropped.Inc(it->second.buffered.size() + 1);
      return CloseWith(1008, "Send queue overflow: client too slow");
    }
    it->second.buffered.push_back(message);
    return;
  }
  conn->Send(MessageFrame(message));
  metrics::MessagesFor(metrics::Protocol::kRelayWs).Delivered(1, message->publish_time, deps_.clock.Now());
}

void RelayWsSession::UnsubscribeAll() {
  for (auto& [name, state] : topics_) {
    deps_.broker.Unsubscribe({auth_.user.user_id, name}, state.sink.get());
  }
  topics_.clear();
}

void RelayWsSession::OnClosed(ws::WsConnection&) {
  if (closed_) return;
  closed_ = true;
  idle_timer_.cancel();
  token_timer_.cancel();
  replay_timer_.cancel();
  UnsubscribeAll();
  registry_->Release(auth_.user.user_id);
}

}  // namespace magnetar::relay
