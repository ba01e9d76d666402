#include "eftl/session.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cctype>

#include "common/log.h"
#include "common/random.h"
#include "core/topic_name.h"
#include "eftl/protocol.h"

namespace magnetar::eftl {

namespace json = boost::json;

namespace {

constexpr size_t kMaxIdBytes = 256;          // subscription ids, client ids
constexpr size_t kMaxCredentialBytes = 4096;  // user names, passwords, tokens
constexpr size_t kMaxMapNameBytes = 256;
constexpr size_t kMaxMapKeyBytes = 1024;
constexpr char kMapPrefix[] = "eftl:map:";
constexpr char kMapKeysPrefix[] = "eftl:mapkeys:";
constexpr size_t kMaxEarlyFrames = 64;  // ops held while the login is checked
constexpr size_t kMaxApplied = 10000;  // remembered client op seqs per session
constexpr size_t kMaxLastValueScan = 10000;  // messages read back for a last-value snapshot

// WebSocket close reasons are at most 123 bytes.
std::string CloseReason(std::string s) {
  if (s.size() > 120) s.resize(120);
  return s;
}

const json::value* Get(const json::object& o, std::string_view name) { return o.if_contains(name); }

std::optional<std::string> GetString(const json::object& o, std::string_view name) {
  const json::value* v = Get(o, name);
  if (!v || !v->is_string()) return std::nullopt;
  return std::string(v->get_string());
}

std::optional<int64_t> GetInt(const json::object& o, std::string_view name) {
  const json::value* v = Get(o, name);
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(v->get_uint64());
  }
  return std::nullopt;
}

// Ids are strings on the wire; a number is taken as its decimal text.
std::optional<std::string> GetId(const json::object& o, std::string_view name) {
  const json::value* v = Get(o, name);
  if (!v) return std::nullopt;
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_int64() || v->is_uint64()) return json::serialize(*v);
  return std::nullopt;
}

// true/"true" (any case) — Go and Python send some flags as strings.
bool GetFlag(const json::object& o, std::string_view name, bool fallback) {
  const json::value* v = Get(o, name);
  if (!v) return fallback;
  if (v->is_bool()) return v->get_bool();
  if (v->is_string()) {
    std::string s(v->get_string());
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (s == "true") return true;
    if (s == "false") return false;
  }
  return fallback;
}

bool LooksLikeJwt(std::string_view s) {
  return std::count(s.begin(), s.end(), '.') == 2 && s.size() > 20;
}

Status EnsureTopic(core::TopicCatalog& topics, const core::TopicKey& key, const std::string& who,
                   const Clock& clock) {
  if (topics.Get(key).ok()) return Status::Ok();
  core::TopicRecord record{NewUuid4(), key.owner, key.name, clock.Now(),
                           "Auto-created topic by " + who + " (eFTL)"};
  Status s = topics.Create(record);
  if (s.code() == StatusCode::kAlreadyExists) return Status::Ok();
  return s;
}

}  // namespace

Session::Session(std::shared_ptr<EftlShared> shared, SessionParams params)
    : shared_(std::move(shared)), params_(std::move(params)) {}

void Session::OnOpen(ws::WsConnection& conn) {
  conn_ = std::static_pointer_cast<ws::WsConnection>(conn.shared_from_this());
  timer_ = std::make_unique<boost::asio::steady_timer>(conn.executor());
  last_received_ = std::chrono::steady_clock::now();
  ArmTimer(shared_->options.login_timeout_seconds);
}

void Session::Send(std::string frame) {
  if (auto conn = conn_.lock()) conn->SendText(std::move(frame));
}

void Session::Fail(uint16_t code, int err, std::string reason) {
  Send(GoodbyeFrame(err, reason));
  if (auto conn = conn_.lock()) conn->Close(code, CloseReason(std::move(reason)));
}

void Session::ArmTimer(int seconds) {
  if (!timer_ || state_ == State::kClosed) return;
  timer_->expires_after(std::chrono::seconds(std::max(seconds, 1)));
  timer_->async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->OnTimer();
  });
}

void Session::OnTimer() {
  auto conn = conn_.lock();
  if (!conn || state_ == State::kClosed) return;
  if (state_ != State::kOpen) {
    return Fail(kClosePolicy, kClosePolicy,
                "no login within " + std::to_string(shared_->options.login_timeout_seconds) + " s");
  }
  const auto silent = std::chrono::steady_clock::now() - last_received_;
  if (silent >= std::chrono::seconds(shared_->options.timeout_seconds)) {
    return Fail(kCloseForced, kCloseForced, "heartbeat timeout: nothing received for " +
                                                std::to_string(shared_->options.timeout_seconds) + " s");
  }
  Send(HeartbeatFrame());
  ArmTimer(std::min(shared_->options.heartbeat_seconds, shared_->options.timeout_seconds));
}

void Session::OnBinary(ws::WsConnection&, std::string_view) {
  Fail(kCloseUnsupportedData, kCloseUnsupportedData, "binary frames are not eFTL: send JSON text");
}

void Session::OnText(ws::WsConnection&, std::string_view text) {
  if (state_ == State::kClosed) return;
  last_received_ = std::chrono::steady_clock::now();
  auto parsed = ParseJson(text, 2 * kMaxDepth + 8);  // exact doubles: bodies are stored as read
  if (!parsed.ok()) {
    return Fail(kCloseProtocolError, kCloseProtocolError, "invalid JSON: " + parsed.status().message());
  }
  const json::value& v = *parsed;
  if (!v.is_object()) return Fail(kCloseProtocolError, kCloseProtocolError, "a frame must be a JSON object");
  const json::object& o = v.get_object();
  auto op = GetInt(o, "op");
  if (!op) return Fail(kCloseProtocolError, kCloseProtocolError, "a frame needs an integer \"op\"");
  if (*op == kOpHeartbeat) return;  // the client's echo: it only had to arrive
  if (state_ == State::kAwaitLogin) {
    if (*op != kOpLogin) return Fail(kClosePolicy, kClosePolicy, "login required before op " + std::to_string(*op));
    return OnLogin(o);
  }
  if (state_ == State::kLoggingIn) {
    // A client may pipeline ops behind its login: they run once it is welcomed (bounded).
    if (early_frames_.size() >= kMaxEarlyFrames) {
      return Fail(kClosePolicy, kClosePolicy, "too many ops before the welcome");
    }
    early_frames_.emplace_back(text);
    return;
  }
  switch (*op) {
    case kOpLogin: return Send(ErrorFrame(kErrUnsupported, "already logged in"));
    case kOpSubscribe: return OnSubscribe(o);
    case kOpUnsubscribe: return OnUnsubscribe(o);
    case kOpAck: return OnAck(o);
    case kOpMessage: return OnPublish(o);
    case kOpDisconnect:
      if (auto conn = conn_.lock()) conn->Close(kCloseNormal, "disconnect");
      return;
    case kOpRequest: return OnRequest(o);
    case kOpReply: return OnReply(o);
    case kOpMapCreate: return;  // maps exist from their first set (create_kv_map is local)
    case kOpMapDestroy:
    case kOpMapSet:
    case kOpMapGet:
    case kOpMapRemove: return OnMapOp(static_cast<int>(*op), o);
    case kOpStop: return OnStop(o);
    case kOpStart: return OnStart(o);
    default: return Send(ErrorFrame(kErrUnsupported, "unsupported op " + std::to_string(*op)));
  }
}

// ---- login ---------------------------------------------------------------------------------

void Session::OnLogin(const json::object& o) {
  std::string user = GetString(o, "user").value_or("");
  std::string password = GetString(o, "password").value_or("");
  if (user.empty() && password.empty()) {
    user = params_.basic_user;
    password = params_.basic_password;
  }
  std::string client_id = GetString(o, "client_id").value_or("");
  if (client_id.empty()) client_id = params_.query_client_id;
  std::string id_token = GetString(o, "id_token").value_or("");
  if (user.size() > kMaxCredentialBytes || password.size() > kMaxCredentialBytes) {
    Send(ErrorFrame(kCloseAuthFailed, "authentication failed: credentials too long"));
    if (auto conn = conn_.lock()) conn->Close(kCloseAuthFailed, "authentication failed");
    return;
  }
  if (client_id.size() > kMaxIdBytes) {
    return Fail(kClosePolicy, kClosePolicy, "client_id longer than 256 bytes");
  }
  int64_t max_pending = GetInt(o, "max_pending_acks").value_or(0);
  if (max_pending <= 0) max_pending = shared_->options.max_pending_acks;
  max_pending = std::min<int64_t>(max_pending, 1'000'000);
  state_ = State::kLoggingIn;
  auto conn = conn_.lock();
  if (!conn) return;
  // Off the I/O thread in every engine: a password check hashes.
  shared_->deps.blocking.Run(
      conn->executor(),
      [shared = shared_, user, password, remote = params_.remote]() -> LoginOutcome {
        LoginOutcome out;
        if (password.empty()) {
          out.kind = LoginOutcome::Kind::kBadCredentials;
          return out;
        }
        if (LooksLikeJwt(password)) {
          auto auth = shared->deps.authenticator.Authenticate(password);
          if (auth.ok() && (user.empty() || user == auth->user.username)) {
            out.kind = LoginOutcome::Kind::kOk;
            out.user = std::move(auth->user);
            return out;
          }
          if (!auth.ok() && auth.status().code() == StatusCode::kPermissionDenied) {
            out.kind = LoginOutcome::Kind::kInactive;
            return out;
          }
        }
        if (user.empty()) {
          out.kind = LoginOutcome::Kind::kBadCredentials;
          return out;
        }
        return shared->deps.password_check(remote, user, password);
      },
      [weak = weak_from_this(), client_id, id_token, max_pending](LoginOutcome outcome) {
        if (auto self = weak.lock()) {
          self->LoginDone(std::move(outcome), client_id, id_token, static_cast<int>(max_pending));
        }
      });
}

void Session::LoginDone(LoginOutcome outcome, std::string client_id, std::string id_token,
                        int max_pending) {
  if (state_ != State::kLoggingIn) return;
  auto conn = conn_.lock();
  if (!conn) return;
  if (outcome.kind != LoginOutcome::Kind::kOk) {
    std::string reason;
    uint16_t code = kCloseAuthFailed;
    switch (outcome.kind) {
      case LoginOutcome::Kind::kInactive: reason = "authentication failed: user is inactive"; break;
      case LoginOutcome::Kind::kRateLimited: reason = "authentication failed: " + outcome.detail; break;
      case LoginOutcome::Kind::kError:
        reason = "login unavailable: " + outcome.detail;
        code = kCloseUnavailable;
        break;
      default: reason = "authentication failed"; break;
    }
    Send(ErrorFrame(code, reason));
    early_frames_.clear();
    state_ = State::kAwaitLogin;
    conn->Close(code, CloseReason(reason));
    return;
  }
  user_ = std::move(outcome.user);
  client_id_ = client_id.empty() ? "magnetar-" + RandomHex(8) : std::move(client_id);
  // Resume (spec §b.3 step 5): the same client with the token of its last welcome continues its
  // delivery seqs and keeps the record of applied ops. Anyone else starts afresh.
  bool resumed = false;
  if (!id_token.empty()) {
    if (auto state = shared_->TakeResume(client_id_, id_token, user_.user_id)) {
      next_seq_ = state->next_seq;
      for (int64_t seq : state->applied) MarkApplied(seq);
      resumed = true;
    }
  }
  id_token_ = RandomHex(16);
  generation_ = shared_->next_generation++;
  max_pending_ = static_cast<size_t>(max_pending);
  reply_address_ = "_eftl.reply." + RandomHex(12);
  shared_->AddSession(reply_address_, weak_from_this());
  state_ = State::kOpen;
  WelcomeFields w;
  w.client_id = client_id_;
  w.id_token = id_token_;
  w.timeout_seconds = shared_->options.timeout_seconds;
  w.heartbeat_seconds = shared_->options.heartbeat_seconds;
  w.max_size = shared_->options.ws.max_message_bytes;
  // "true" unless a resume was asked for and is not possible: then the client must fail its
  // pending ops and restart its seq tracking.
  w.resume = resumed || id_token.empty();
  Send(WelcomeFrame(w));
  Logger("eftl")->info("eFTL login: user '{}' client '{}' on channel '{}'{}", user_.username,
                       client_id_, params_.channel, resumed ? " (resumed)" : "");
  ArmTimer(std::min(shared_->options.heartbeat_seconds, shared_->options.timeout_seconds));
  std::vector<std::string> early = std::move(early_frames_);
  early_frames_.clear();
  for (const std::string& frame : early) {
    if (state_ != State::kOpen) break;
    OnText(*conn, frame);
  }
}

void Session::MarkApplied(int64_t seq) {
  if (!applied_set_.insert(seq).second) return;
  applied_.push_back(seq);
  if (applied_.size() > kMaxApplied) {
    applied_set_.erase(applied_.front());
    applied_.pop_front();
  }
}

// ---- subscriptions -------------------------------------------------------------------------

void Session::OnSubscribe(const json::object& o) {
  auto id = GetId(o, "id");
  if (!id || id->empty()) return Send(ErrorFrame(kErrSubscriptionInvalid, "subscribe without an id"));
  if (id->size() > kMaxIdBytes) {
    return Send(UnsubscribedFrame(id->substr(0, kMaxIdBytes), kErrSubscriptionInvalid,
                                  "subscription id longer than 256 bytes"));
  }
  auto invalid = [&](const std::string& reason) {
    Send(UnsubscribedFrame(*id, kErrSubscriptionInvalid, reason));
  };
  if (!user_.Has(auth::Permission::kRead)) {
    return Send(UnsubscribedFrame(*id, kErrSubscriptionNotAuthorized,
                                  "subscription not authorized: read permission required"));
  }
  std::string matcher_text;
  if (const json::value* m = Get(o, "matcher"); m && !m->is_null()) {
    if (m->is_string()) matcher_text = std::string(m->get_string());
    else if (m->is_object()) matcher_text = json::serialize(*m);  // tolerated: the object itself
    else return invalid("matcher must be a JSON text string");
  }
  auto matcher = ParseMatcher(matcher_text);
  if (!matcher.ok()) return invalid(matcher.status().message());
  std::string ack = GetString(o, "ack").value_or("auto");
  AckMode mode;
  if (ack == "auto" || ack.empty()) mode = AckMode::kAuto;
  else if (ack == "client") mode = AckMode::kClient;
  else if (ack == "none") mode = AckMode::kNone;
  else return invalid("ack must be auto, client or none");
  const std::string durable = GetString(o, "durable").value_or("");
  const std::string type = GetString(o, "type").value_or("");
  const std::string key = GetString(o, "key").value_or("");
  DurableType durable_type = DurableType::kStandard;
  const bool last_value = type == "last-value";
  if (type == "shared") durable_type = DurableType::kShared;
  else if (!last_value && !type.empty() && type != "standard") return invalid("type must be standard, shared or last-value");
  if (durable.empty() && !type.empty()) return invalid("type '" + type + "' needs a durable name");
  if (!key.empty() && !last_value) return invalid("key is only for last-value durables");
  if (last_value && key.empty()) return invalid("a last-value durable needs a key field");
  if (durable.size() > kMaxIdBytes) return invalid("durable name longer than 256 bytes");
  std::string topic = params_.default_topic;
  if (auto dest = matcher->StringTerm("_dest")) {
    // The destination selects the topic (EMS-style); it is not matched against bodies, so the
    // topic's messages from other protocols (no `_dest`) and "TOPIC:x" vs "x" both arrive.
    topic = DestinationTopic(*dest);
    auto& terms = matcher->terms;
    terms.erase(std::remove_if(terms.begin(), terms.end(),
                               [](const MatchTerm& t) { return t.field == "_dest"; }),
                terms.end());
  }
  if (auto bad = core::ValidateTopicName(topic)) return invalid("invalid destination '" + topic + "': " + *bad);
  if (handle_by_id_.count(*id) == 0 && subs_.size() >= shared_->options.max_subscriptions) {
    return invalid("too many subscriptions on this connection (" +
                   std::to_string(shared_->options.max_subscriptions) + ")");
  }
  // Re-subscribing with a known id replaces the old subscription (clients do so on reconnect).
  if (auto it = handle_by_id_.find(*id); it != handle_by_id_.end()) RemoveSub(it->second);
  if (last_value && !matcher->StringTerm(key)) {
    return invalid("a last-value subscription's matcher must pin the key field '" + key +
                   "' to one string value");
  }
  if (!durable.empty() && !last_value) {
    return SubscribeDurable(*id, core::TopicKey{user_.user_id, topic}, durable, durable_type,
                            std::make_shared<const Matcher>(std::move(matcher).value()), mode,
                            GetFlag(o, "stopped", false));
  }
  const uint64_t handle = shared_->next_handle++;
  Sub sub;
  sub.id = *id;
  sub.topic = core::TopicKey{user_.user_id, topic};
  sub.ack = mode;
  sub.stopped = GetFlag(o, "stopped", false);
  if (last_value) {
    sub.ack = AckMode::kNone;  // last-value durables do not track acks
    sub.awaiting_snapshot = true;
  }
  subs_.emplace(handle, sub);
  handle_by_id_[*id] = handle;
  auto shared_matcher = std::make_shared<const Matcher>(std::move(matcher).value());
  // Live first, then the snapshot: nothing published in between is missed.
  shared_->fanout.Add(sub.topic, handle, shared_matcher,
                      std::weak_ptr<DeliveryTarget>(shared_from_this()));
  Send(SubscribedFrame(*id));
  if (last_value) SendSnapshot(handle, shared_matcher);
}

// Last-value (spec §c.2): the newest message of the topic that matches (so with the subscriber's
// key value) is delivered at once. The topic's log is the store: newest first, bounded scan.
void Session::SendSnapshot(uint64_t handle, std::shared_ptr<const Matcher> matcher) {
  auto conn = conn_.lock();
  if (!conn) return;
  const core::TopicKey topic = subs_[handle].topic;
  RunStoreWork(
      *shared_, conn->executor(),
      [shared = shared_, topic, matcher]() -> Result<std::string> {
        core::ReadRequest request;
        request.descending = true;
        request.limit = 100;
        size_t scanned = 0;
        while (scanned < kMaxLastValueScan) {
          auto page = shared->deps.broker.store().Read(topic, request);
          if (!page.ok()) {
            if (page.status().code() == StatusCode::kNotFound) return std::string();
            return page.status();
          }
          for (const auto& m : page->messages) {
            const Message decoded = FromStored(*m);
            if (matcher->Matches(decoded)) return EncodeMessage(decoded);
            request.before = m->id;
          }
          scanned += page->messages.size();
          if (!page->has_more || page->messages.empty()) break;
        }
        return std::string();
      },
      [weak = weak_from_this(), handle](Result<std::string> snapshot) {
        auto self = weak.lock();
        if (!self || self->state_ != State::kOpen) return;
        auto it = self->subs_.find(handle);
        if (it == self->subs_.end()) return;
        it->second.awaiting_snapshot = false;
        if (!snapshot.ok()) {
          Logger("eftl")->warn("eFTL last-value snapshot failed: {}", snapshot.status().message());
          return;
        }
        if (it->second.got_live || snapshot->empty() || it->second.stopped) return;
        self->Send(EventFrame(it->second.id, ++self->next_seq_, *snapshot, EventExtras{}));
      });
}

void Session::SubscribeDurable(std::string id, core::TopicKey topic, std::string name,
                               DurableType type, std::shared_ptr<const Matcher> matcher,
                               AckMode mode, bool stopped) {
  auto conn = conn_.lock();
  if (!conn) return;
  RunStoreWork(
      *shared_, conn->executor(),
      [shared = shared_, topic, name, type, matcher, executor = conn->executor()] {
        return shared->durables.Open(topic, name, type, matcher, executor);
      },
      [weak = weak_from_this(), id, topic, mode, stopped](Result<std::shared_ptr<Durable>> opened) {
        auto self = weak.lock();
        if (!self || self->state_ != State::kOpen) return;
        if (!opened.ok()) {
          const bool invalid = opened.status().code() == StatusCode::kInvalidArgument;
          return self->Send(UnsubscribedFrame(id, invalid ? kErrSubscriptionInvalid : kErrSubscriptionFailed,
                                              opened.status().message()));
        }
        if (auto it = self->handle_by_id_.find(id); it != self->handle_by_id_.end()) self->RemoveSub(it->second);
        const uint64_t handle = self->shared_->next_handle++;
        Sub sub;
        sub.id = id;
        sub.topic = topic;
        sub.ack = mode;
        sub.stopped = stopped;
        sub.durable = *opened;
        self->subs_.emplace(handle, sub);
        self->handle_by_id_[id] = handle;
        if (!stopped) sub.durable->Attach(handle, std::weak_ptr<DurableTarget>(self), self->max_pending_);
        self->Send(SubscribedFrame(id));
      });
}

void Session::RemoveSub(uint64_t handle, bool delete_durable) {
  auto it = subs_.find(handle);
  if (it == subs_.end()) return;
  if (it->second.durable) {
    if (delete_durable) it->second.durable->Delete(handle);
    else it->second.durable->Detach(handle);
  } else {
    shared_->fanout.Remove(it->second.topic, handle);
  }
  handle_by_id_.erase(it->second.id);
  subs_.erase(it);
  for (auto o = outstanding_.begin(); o != outstanding_.end();) {
    o = o->second.handle == handle ? outstanding_.erase(o) : std::next(o);
  }
}

void Session::OnUnsubscribe(const json::object& o) {
  auto id = GetId(o, "id");
  if (!id) return;
  auto it = handle_by_id_.find(*id);
  if (it == handle_by_id_.end()) return;
  // `del:false` (close; Go sends "false") keeps a durable; a live subscription has nothing to keep.
  RemoveSub(it->second, GetFlag(o, "del", true));
  DrainBacklog();
}

void Session::OnStop(const json::object& o) {
  auto id = GetId(o, "id");
  auto it = id ? handle_by_id_.find(*id) : handle_by_id_.end();
  if (it == handle_by_id_.end()) return Send(ErrorFrame(kErrStopFailed, "stop: no such subscription"));
  Sub& sub = subs_[it->second];
  if (!sub.stopped && sub.durable) {
    // Everything not acked is redelivered after start (the client drops what still arrives).
    sub.durable->Detach(it->second);
    for (auto o = outstanding_.begin(); o != outstanding_.end();) {
      o = o->second.handle == it->second ? outstanding_.erase(o) : std::next(o);
    }
  }
  sub.stopped = true;
}

void Session::OnStart(const json::object& o) {
  auto id = GetId(o, "id");
  auto it = id ? handle_by_id_.find(*id) : handle_by_id_.end();
  if (it == handle_by_id_.end()) return Send(ErrorFrame(kErrStartFailed, "start: no such subscription"));
  Sub& sub = subs_[it->second];
  if (sub.stopped && sub.durable) {
    sub.durable->Attach(it->second, std::weak_ptr<DurableTarget>(shared_from_this()), max_pending_);
  }
  sub.stopped = false;
  Send(StartedFrame(*id));
}

// ---- deliveries and acks -------------------------------------------------------------------

void Session::PostDelivery(uint64_t handle, BodyPtr body, std::optional<RequestInfo> request) {
  auto conn = conn_.lock();
  if (!conn) return;
  conn->Post([weak = weak_from_this(), handle, body = std::move(body),
              request = std::move(request)]() mutable {
    if (auto self = weak.lock()) self->Deliver(handle, std::move(body), std::move(request));
  });
}

void Session::Deliver(uint64_t handle, BodyPtr body, std::optional<RequestInfo> request) {
  if (state_ != State::kOpen) return;
  auto it = subs_.find(handle);
  if (it == subs_.end() || it->second.stopped) return;
  if (it->second.awaiting_snapshot) it->second.got_live = true;
  if (it->second.ack != AckMode::kNone && (outstanding_.size() >= max_pending_ || !backlog_.empty())) {
    if (backlog_.size() >= shared_->options.max_backlog) {
      backlog_.pop_front();
      if (dropped_++ % 1000 == 0) {
        Logger("eftl")->warn("eFTL client '{}' does not ack: dropped {} live events so far",
                             client_id_, dropped_);
      }
    }
    backlog_.push_back({handle, std::move(body), std::move(request)});
    return;
  }
  const uint64_t seq = ++next_seq_;
  EventExtras extras;
  if (request) {
    extras.reply_to = request->reply_to;
    extras.req = request->req;
  }
  Send(EventFrame(it->second.id, seq, *body, extras));
  if (it->second.ack != AckMode::kNone) outstanding_.emplace(seq, Outstanding{handle, {}, false});
}

void Session::DrainBacklog() {
  while (!backlog_.empty() && outstanding_.size() < max_pending_) {
    Queued q = std::move(backlog_.front());
    backlog_.pop_front();
    auto it = subs_.find(q.handle);
    if (it == subs_.end() || it->second.stopped) continue;
    const uint64_t seq = ++next_seq_;
    EventExtras extras;
    if (q.request) {
      extras.reply_to = q.request->reply_to;
      extras.req = q.request->req;
    }
    Send(EventFrame(it->second.id, seq, *q.body, extras));
    if (it->second.ack != AckMode::kNone) outstanding_.emplace(seq, Outstanding{q.handle, {}, false});
  }
}

void Session::OnAck(const json::object& o) {
  auto seq = GetInt(o, "seq");
  if (!seq || *seq < 0) return Send(ErrorFrame(kErrUnsupported, "ack without an integer seq"));
  const uint64_t n = static_cast<uint64_t>(*seq);
  std::map<uint64_t, std::vector<MessageId>> durable_acks;  // by handle
  auto take = [&](std::map<uint64_t, Outstanding>::iterator it) {
    if (it->second.durable) durable_acks[it->second.handle].push_back(it->second.id);
    return outstanding_.erase(it);
  };
  if (auto id = GetId(o, "id")) {
    // Cumulative: everything of that subscription up to and including seq.
    auto h = handle_by_id_.find(*id);
    if (h != handle_by_id_.end()) {
      for (auto it = outstanding_.begin(); it != outstanding_.end() && it->first <= n;) {
        it = it->second.handle == h->second ? take(it) : std::next(it);
      }
    }
  } else if (auto it = outstanding_.find(n); it != outstanding_.end()) {
    take(it);
  }
  for (auto& [handle, ids] : durable_acks) {
    if (auto s = subs_.find(handle); s != subs_.end() && s->second.durable) {
      s->second.durable->Ack(handle, std::move(ids));
    }
  }
  DrainBacklog();
}

void Session::PostDurableDelivery(uint64_t handle, BodyPtr body, MessageId id, uint32_t count) {
  auto conn = conn_.lock();
  if (!conn) return;
  conn->Post([weak = weak_from_this(), handle, body = std::move(body), id, count]() mutable {
    if (auto self = weak.lock()) self->DeliverDurable(handle, std::move(body), id, count);
  });
}

// Windowed by the durable already: never held back here.
void Session::DeliverDurable(uint64_t handle, BodyPtr body, MessageId id, uint32_t count) {
  if (state_ != State::kOpen) return;
  auto it = subs_.find(handle);
  // Stopped or gone: the durable was detached, so it redelivers this one.
  if (it == subs_.end() || it->second.stopped) return;
  const uint64_t seq = ++next_seq_;
  EventExtras extras;
  extras.cnt = count;
  Send(EventFrame(it->second.id, seq, *body, extras));
  if (it->second.ack == AckMode::kNone) {
    it->second.durable->Ack(handle, {id});  // the client never acks: done once sent
  } else {
    outstanding_.emplace(seq, Outstanding{handle, id, true});
  }
}

void Session::PostRevoked(uint64_t handle, int err, std::string reason) {
  auto conn = conn_.lock();
  if (!conn) return;
  conn->Post([weak = weak_from_this(), handle, err, reason = std::move(reason)] {
    auto self = weak.lock();
    if (!self || self->state_ != State::kOpen) return;
    auto it = self->subs_.find(handle);
    if (it == self->subs_.end()) return;
    const std::string id = it->second.id;
    self->handle_by_id_.erase(id);
    self->subs_.erase(it);  // the durable has let it go already
    for (auto o = self->outstanding_.begin(); o != self->outstanding_.end();) {
      o = o->second.handle == handle ? self->outstanding_.erase(o) : std::next(o);
    }
    self->Send(UnsubscribedFrame(id, err, reason));
  });
}

// ---- publish -------------------------------------------------------------------------------

void Session::OnPublish(const json::object& o) {
  auto seq = GetInt(o, "seq");
  if (!seq) return Send(ErrorFrame(kErrPublishFailed, "message without an integer seq"));
  if (Applied(*seq)) return Send(AckFrame(*seq));  // re-sent after a resume: stored already
  const json::value* body = Get(o, "body");
  if (!body || !body->is_object()) {
    return Send(AckErrorFrame(*seq, kErrPublishFailed, "message without a body object"));
  }
  if (!user_.Has(auth::Permission::kWrite)) {
    return Send(AckErrorFrame(*seq, kErrPublishNotAuthorized,
                              "publish not authorized: write permission required"));
  }
  auto message = DecodeMessage(*body, DecodeMode::kWire);
  if (!message.ok()) return Send(AckErrorFrame(*seq, kErrPublishFailed, message.status().message()));
  std::string topic = params_.default_topic;
  if (const Field* dest = message->Find("_dest"); dest && dest->type == FieldType::kString) {
    topic = DestinationTopic(dest->text);
  }
  if (auto bad = core::ValidateTopicName(topic)) {
    return Send(AckErrorFrame(*seq, kErrPublishFailed, "invalid destination '" + topic + "': " + *bad));
  }
  publishes_.push_back({*seq, std::move(topic), EncodeMessage(*message)});
  PumpPublishes();
}

// Publishes go out in the client's order; one waiting for its topic record holds the later ones.
void Session::PumpPublishes() {
  while (!publishes_.empty() && !ensuring_) {
    if (ensured_topics_.count(publishes_.front().topic)) {
      PendingPublish p = std::move(publishes_.front());
      publishes_.pop_front();
      Publish(std::move(p));
      continue;
    }
    auto conn = conn_.lock();
    if (!conn) return;
    ensuring_ = true;
    const core::TopicKey key{user_.user_id, publishes_.front().topic};
    RunStoreWork(
        *shared_, conn->executor(),
        [shared = shared_, key, who = user_.username] {
          return EnsureTopic(shared->deps.topics, key, who, shared->deps.clock);
        },
        [weak = weak_from_this(), name = key.name](Status s) {
          auto self = weak.lock();
          if (!self) return;
          self->ensuring_ = false;
          if (s.ok()) {
            if (self->ensured_topics_.size() > 1000) self->ensured_topics_.clear();
            self->ensured_topics_.insert(name);
          } else {
            // Every waiting publish to that topic fails the same way.
            for (auto it = self->publishes_.begin(); it != self->publishes_.end();) {
              if (it->topic != name) {
                ++it;
                continue;
              }
              self->Send(AckErrorFrame(it->seq, kErrPublishFailed, "publish failed: " + s.message()));
              it = self->publishes_.erase(it);
            }
          }
          self->PumpPublishes();
        });
    return;
  }
}

void Session::Publish(PendingPublish p) {
  auto conn = conn_.lock();
  if (!conn) return;
  auto draft = std::make_shared<core::Message>();
  draft->topic = p.topic;
  draft->payload = std::move(p.body);
  draft->format = core::PayloadFormat::kJson;
  const int64_t seq = p.seq;
  std::weak_ptr<ws::WsConnection> weak_conn = conn_;
  shared_->deps.broker.Publish(
      core::TopicKey{user_.user_id, p.topic}, {std::move(draft)},
      [weak = weak_from_this(), weak_conn, seq](Result<std::vector<core::MessagePtr>> result) {
        Status s = result.ok() ? Status::Ok() : result.status();
        auto conn = weak_conn.lock();
        if (!conn) return;
        conn->Post([weak, seq, s = std::move(s)]() mutable {
          if (auto self = weak.lock()) self->OnPublished(seq, std::move(s));
        });
      });
}

void Session::OnPublished(int64_t seq, Status status) {
  if (status.ok()) {
    MarkApplied(seq);
    return Send(AckFrame(seq));
  }
  Send(AckErrorFrame(seq, kErrPublishFailed, "publish failed: " + status.message()));
}

// ---- request / reply -----------------------------------------------------------------------

void Session::OnRequest(const json::object& o) {
  auto seq = GetInt(o, "seq");
  if (!seq) return Send(ErrorFrame(kErrRequestFailed, "request without an integer seq"));
  const json::value* body = Get(o, "body");
  if (!body || !body->is_object()) {
    return Send(RequestErrorFrame(*seq, kErrRequestFailed, "request without a body object"));
  }
  if (!user_.Has(auth::Permission::kWrite)) {
    return Send(RequestErrorFrame(*seq, kErrRequestNotAuthorized,
                                  "request not authorized: write permission required"));
  }
  auto message = DecodeMessage(*body, DecodeMode::kWire);
  if (!message.ok()) return Send(RequestErrorFrame(*seq, kErrRequestFailed, message.status().message()));
  std::string topic = params_.default_topic;
  if (const Field* dest = message->Find("_dest"); dest && dest->type == FieldType::kString) {
    topic = DestinationTopic(dest->text);
  }
  if (requests_.size() >= shared_->options.max_pending_requests) {
    return Send(RequestErrorFrame(*seq, kErrRequestFailed, "too many requests waiting for a reply"));
  }
  const uint64_t req = ++next_req_;
  requests_[req] = *seq;
  auto encoded = std::make_shared<const std::string>(EncodeMessage(*message));
  const size_t taken = shared_->fanout.Dispatch(core::TopicKey{user_.user_id, topic}, *message,
                                                encoded, RequestInfo{reply_address_, req});
  if (taken == 0) {
    requests_.erase(req);
    Send(RequestErrorFrame(*seq, kErrRequestFailed, "request failed: no subscriber matches it"));
  }
}

void Session::OnReply(const json::object& o) {
  auto seq = GetInt(o, "seq");
  if (!seq) return Send(ErrorFrame(kErrPublishFailed, "reply without an integer seq"));
  if (Applied(*seq)) return Send(AckFrame(*seq));
  auto to = GetString(o, "to");
  auto req = GetInt(o, "req");
  const json::value* body = Get(o, "body");
  if (!to || !req || !body || !body->is_object()) {
    return Send(AckErrorFrame(*seq, kErrPublishFailed, "reply needs to, req and a body object"));
  }
  auto message = DecodeMessage(*body, DecodeMode::kWire);
  if (!message.ok()) return Send(AckErrorFrame(*seq, kErrPublishFailed, message.status().message()));
  auto requester = shared_->FindSession(*to);
  if (!requester) return Send(AckErrorFrame(*seq, kErrPublishFailed, "the requester is gone"));
  requester->PostReply(static_cast<uint64_t>(*req), std::make_shared<const std::string>(EncodeMessage(*message)));
  MarkApplied(*seq);
  Send(AckFrame(*seq));
}

void Session::PostReply(uint64_t req, BodyPtr body) {
  auto conn = conn_.lock();
  if (!conn) return;
  conn->Post([weak = weak_from_this(), req, body = std::move(body)] {
    auto self = weak.lock();
    if (!self || self->state_ != State::kOpen) return;
    auto it = self->requests_.find(req);
    if (it == self->requests_.end()) return;  // answered already (first reply wins)
    self->Send(RequestReplyFrame(it->second, *body));
    self->requests_.erase(it);
  });
}

// ---- key-value maps ------------------------------------------------------------------------

namespace {

struct MapResult {
  Status status;
  std::string value;  // get: the stored message, empty when unset
};

// The key list of a map ("\n"-separated), kept so destroy can find every key.
Status UpdateKeyList(core::KvStore& kv, const std::string& list_key, const std::string& key,
                     bool add, size_t max_keys) {
  for (int attempt = 0; attempt < 64; ++attempt) {
    auto current = kv.Get(list_key);
    if (!current.ok()) return current.status();
    std::string list = current->value_or("");
    std::vector<std::string> keys;
    size_t start = 0;
    while (start < list.size()) {
      size_t end = list.find('\n', start);
      if (end == std::string::npos) end = list.size();
      keys.push_back(list.substr(start, end - start));
      start = end + 1;
    }
    auto it = std::find(keys.begin(), keys.end(), key);
    if (add == (it != keys.end())) return Status::Ok();
    if (add) {
      if (keys.size() >= max_keys) return ResourceExhausted("map holds " + std::to_string(max_keys) + " keys already");
      keys.push_back(key);
    } else {
      keys.erase(it);
    }
    std::string next;
    for (const auto& k : keys) {
      if (!next.empty()) next.push_back('\n');
      next += k;
    }
    if (!current->has_value()) {
      auto put = kv.PutIfAbsent(list_key, next, 0);
      if (!put.ok()) return put.status();
      if (*put) return Status::Ok();
      continue;
    }
    auto cas = kv.CompareAndSet(list_key, list, next, 0);
    if (!cas.ok()) return cas.status();
    if (*cas) return Status::Ok();
  }
  return Unavailable("map key list is too contended; try again");
}

}  // namespace

void Session::OnMapOp(int op, const json::object& o) {
  auto seq = GetInt(o, "seq");
  auto map = GetString(o, "map");
  auto key = GetString(o, "key");
  auto reply_error = [&](int err, const std::string& reason) {
    if (seq) Send(MapErrorFrame(*seq, err, reason));
    else Send(ErrorFrame(err, reason));
  };
  if (!map || map->empty() || map->size() > kMaxMapNameBytes || map->find('\n') != std::string::npos) {
    return reply_error(kErrMapFailed, "map name must be a string of 1-256 bytes");
  }
  if (op != kOpMapDestroy &&
      (!key || key->empty() || key->size() > kMaxMapKeyBytes || key->find('\n') != std::string::npos)) {
    return reply_error(kErrMapFailed, "key must be a string of 1-1024 bytes without newlines");
  }
  if (seq && (op == kOpMapSet || op == kOpMapRemove) && Applied(*seq)) {
    return Send(MapResponseFrame(*seq, ""));  // re-sent after a resume: applied already
  }
  const bool writes = op != kOpMapGet;
  if (!user_.Has(writes ? auth::Permission::kWrite : auth::Permission::kRead)) {
    return reply_error(kErrMapNotAuthorized, std::string("map request not authorized: ") +
                                                 (writes ? "write" : "read") + " permission required");
  }
  std::string value;
  if (op == kOpMapSet) {
    const json::value* v = Get(o, "value");
    if (!v || !v->is_object()) return reply_error(kErrMapFailed, "map set needs a value message");
    auto message = DecodeMessage(*v, DecodeMode::kWire);
    if (!message.ok()) return reply_error(kErrMapFailed, message.status().message());
    value = EncodeMessage(*message);
  }
  auto conn = conn_.lock();
  if (!conn) return;
  const std::string scope = user_.user_id + ":" + *map;
  const std::string list_key = kMapKeysPrefix + scope;
  const std::string entry_key = kMapPrefix + scope + "\n" + key.value_or("");
  const size_t max_keys = shared_->options.max_map_keys;
  RunStoreWork(
      *shared_, conn->executor(),
      [shared = shared_, op, list_key, entry_key, key = key.value_or(""), value, scope,
       max_keys]() -> MapResult {
        core::KvStore& kv = shared->deps.kv;
        MapResult r;
        switch (op) {
          case kOpMapSet:
            r.status = UpdateKeyList(kv, list_key, key, true, max_keys);
            if (r.status.ok()) r.status = kv.Put(entry_key, value, 0);
            break;
          case kOpMapGet: {
            auto got = kv.Get(entry_key);
            if (!got.ok()) r.status = got.status();
            else r.value = got->value_or("");
            break;
          }
          case kOpMapRemove:
            r.status = kv.Delete(entry_key);
            if (r.status.ok()) r.status = UpdateKeyList(kv, list_key, key, false, max_keys);
            break;
          case kOpMapDestroy: {
            auto list = kv.Get(list_key);
            if (!list.ok()) {
              r.status = list.status();
              break;
            }
            std::string keys = list->value_or("");
            size_t start = 0;
            while (start < keys.size()) {
              size_t end = keys.find('\n', start);
              if (end == std::string::npos) end = keys.size();
              if (Status s = kv.Delete(std::string(kMapPrefix) + scope + "\n" + keys.substr(start, end - start));
                  !s.ok()) {
                r.status = s;
              }
              start = end + 1;
            }
            if (Status s = kv.Delete(list_key); !s.ok()) r.status = s;
            break;
          }
        }
        return r;
      },
      [weak = weak_from_this(), seq, op](MapResult r) {
        auto self = weak.lock();
        if (!self || !seq) return;  // destroy is fire-and-forget
        if (!r.status.ok()) {
          return self->Send(MapErrorFrame(*seq, kErrMapFailed, "map request failed: " + r.status.message()));
        }
        if (op != kOpMapGet) self->MarkApplied(*seq);
        self->Send(MapResponseFrame(*seq, op == kOpMapGet ? r.value : std::string()));
      });
}

// ---- end -----------------------------------------------------------------------------------

void Session::OnClosed(ws::WsConnection&) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  if (timer_) timer_->cancel();
  for (const auto& [handle, sub] : subs_) {
    if (sub.durable) {
      if (!sub.stopped) sub.durable->Detach(handle);  // unacked: redelivered to the next one
    } else {
      shared_->fanout.Remove(sub.topic, handle);
    }
  }
  subs_.clear();
  handle_by_id_.clear();
  backlog_.clear();
  if (!reply_address_.empty()) shared_->RemoveSession(reply_address_);
  if (!id_token_.empty()) {
    ResumeState state;
    state.id_token = id_token_;
    state.user_id = user_.user_id;
    state.next_seq = next_seq_;
    state.applied = applied_;
    state.generation = generation_;
    shared_->SaveResume(client_id_, std::move(state));
  }
}

}  // namespace magnetar::eftl
