#include "relay/poll_manager.h"

#include <boost/asio/post.hpp>

#include "common/message_metrics.h"
#include "relay/frames.h"
#include "relay/json_util.h"
#include "relay/store_reads.h"

namespace magnetar::relay {

namespace asio = boost::asio;

namespace {

constexpr size_t kMaxPerTopic = 100;

metrics::Gauge& WaitersGauge() {
  static metrics::Gauge& gauge = metrics::Registry::Default().GetGauge(
      "magnetar_longpoll_waiters", "Long-poll requests parked now, waiting for messages.");
  return gauge;
}

class WakeSink final : public core::SubscriberSink {
 public:
  explicit WakeSink(std::weak_ptr<PollWaiter> waiter) : waiter_(std::move(waiter)) {}
  void OnMessage(const core::MessagePtr&) override {
    if (auto w = waiter_.lock()) w->Wake();
  }

 private:
  std::weak_ptr<PollWaiter> waiter_;
};

}  // namespace

bool PollManager::Add(const std::shared_ptr<PollWaiter>& waiter) {
  std::lock_guard lock(mutex_);
  int& count = per_user_[waiter->user_id()];
  if (count >= options_.poll_max_per_user) {
    if (count == 0) per_user_.erase(waiter->user_id());
    if (slots_) slots_->Release("poll", waiter->user_id());
    return false;
  }
  ++count;
  waiters_[waiter.get()] = waiter;
  WaitersGauge().Inc();
  for (const auto& t : waiter->topics()) ++per_topic_[{t.key.owner, t.key.name}];
  return true;
}

void PollManager::Remove(const PollWaiter* waiter) {
  std::lock_guard lock(mutex_);
  if (waiters_.erase(waiter) == 0) return;
  WaitersGauge().Dec();
  if (slots_) slots_->Release("poll", waiter->user_id());
  if (--per_user_[waiter->user_id()] <= 0) per_user_.erase(waiter->user_id());
  for (const auto& t : waiter->topics()) {
    auto it = per_topic_.find({t.key.owner, t.key.name});
    if (it != per_topic_.end() && --it->second <= 0) per_topic_.erase(it);
  }
}

std::string PollManager::StatsJson(const auth::User& caller) const {
  const bool admin = caller.Has(auth::Permission::kAdmin);
  std::lock_guard lock(mutex_);
  int active = 0;
  if (admin) {
    for (const auto& [user, n] : per_user_) active += n;
  } else if (auto it = per_user_.find(caller.user_id); it != per_user_.end()) {
    active = it->second;
  }
  std::string counts = "{";
  int topics = 0;
  for (const auto& [key, n] : per_topic_) {
    const bool own = key.first == caller.user_id;
    if (!admin && !own) continue;
    if (topics++) counts.push_back(',');
    // The caller's own topics by their bare names; an admin sees the others as "<owner>/<topic>".
    AppendJsonString(counts, own ? key.second : key.first + "/" + key.second);
    counts += ":" + std::to_string(n);
  }
  counts.push_back('}');
  return R"({"active_waiters":)" + std::to_string(active) + R"(,"subscribed_topics":)" +
         std::to_string(topics) + R"(,"topic_subscriber_counts":)" + counts + "}";
}

void PollManager::Shutdown() {
  std::vector<std::shared_ptr<PollWaiter>> live;
  {
    std::lock_guard lock(mutex_);
    shutting_down_ = true;
    for (auto& [ptr, weak] : waiters_) {
      if (auto w = weak.lock()) live.push_back(std::move(w));
    }
  }
  for (auto& w : live) w->AnswerNow();
}

PollWaiter::PollWaiter(PollManager& manager, asio::any_io_executor executor, std::string user_id,
                       std::vector<core::TopicKey> topics, std::map<std::string, MessageId> since,
                       bool catch_up, std::chrono::seconds timeout, http::Responder respond)
    : manager_(manager),
      executor_(executor),
      user_id_(std::move(user_id)),
      catch_up_(catch_up),
      timeout_(timeout),
      respond_(std::move(respond)),
      timer_(executor) {
  for (auto& key : topics) {
    auto it = since.find(key.name);
    topics_.push_back({std::move(key), it == since.end() ? MessageId::Min() : it->second});
  }
}

PollWaiter::~PollWaiter() = default;

void PollWaiter::Start() {
  auto self = shared_from_this();
  auto& broker = manager_.deps().broker;
  started_at_ = manager_.deps().clock.Now();
  for (auto& t : topics_) {
    auto sink = std::make_shared<WakeSink>(weak_from_this());
    const MessageId live_from = broker.Subscribe(t.key, sink);
    sinks_.push_back(std::move(sink));
    // Without catch-up a poll is for what arrives from now on.
    if (!catch_up_) t.cursor = live_from;
  }
  timer_.expires_after(timeout_);
  timer_.async_wait([self](boost::system::error_code ec) {
    if (!ec) self->Collect(/*final=*/true);
  });
  if (catch_up_) Collect(/*final=*/false);
}

void PollWaiter::Wake() {
  if (wake_posted_.exchange(true)) return;
  asio::post(executor_, [self = shared_from_this()] {
    self->wake_posted_ = false;
    self->Collect(/*final=*/false);
  });
}

void PollWaiter::AnswerNow() {
  asio::post(executor_, [self = shared_from_this()] { self->Collect(/*final=*/true); });
}

void PollWaiter::Collect(bool final) {
  if (finished_ || reading_) {
    if (final && reading_) {
      // A read is in flight: it will answer; make sure it answers even if empty.
      timeout_ = std::chrono::seconds(0);
    }
    return;
  }
  reading_ = true;
  std::vector<TopicRead> reads;
  reads.reserve(topics_.size());
  for (const auto& t : topics_) {
    core::ReadRequest r;
    r.after = t.cursor;
    r.limit = kMaxPerTopic;
    reads.emplace_back(t.key, r);
  }
  ReadTopics(manager_.deps(), executor_, std::move(reads),
             [self = shared_from_this(), final](Result<std::vector<core::ReadResult>> results) {
               self->reading_ = false;
               if (self->finished_) return;
               if (!results.ok()) {
                 self->finished_ = true;
                 self->Detach();
                 return self->respond_(http::InternalErrorResponse());
               }
               std::string body = R"({"messages":[)";
               bool any = false;
               bool has_more = false;
               for (const auto& r : *results) {
                 has_more |= r.has_more;
                 for (const auto& m : r.messages) {
                   if (any) body.push_back(',');
                   any = true;
                   body += *MessageFrame(m);
                 }
               }
               if (!any && !final && self->timeout_.count() != 0) return;  // keep waiting
               self->CountDelivered(*results);
               body += has_more ? R"(],"has_more":true})" : R"(],"has_more":false})";
               self->Finish(std::move(body));
             });
}

// Messages published while the request was parked were delivered live: their latency counts.
void PollWaiter::CountDelivered(const std::vector<core::ReadResult>& results) const {
  auto& m = metrics::MessagesFor(metrics::Protocol::kRelayHttp);
  const UnixMicros now = manager_.deps().clock.Now();
  for (const auto& r : results) {
    for (const auto& message : r.messages) {
      if (message->publish_time >= started_at_) {
        m.Delivered(1, message->publish_time, now);
      } else {
        m.delivered.Inc();
      }
    }
  }
}

void PollWaiter::Finish(std::string body) {
  finished_ = true;
  Detach();
  respond_(http::Response::Json(200, std::move(body)));
}

void PollWaiter::Detach() {
  timer_.cancel();
  auto& broker = manager_.deps().broker;
  for (size_t i = 0; i < sinks_.size(); ++i) broker.Unsubscribe(topics_[i].key, sinks_[i].get());
  sinks_.clear();
  manager_.Remove(this);
}

}  // namespace magnetar::relay
