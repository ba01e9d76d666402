#include "storage/redis/redis_shared_limits.h"

#include <boost/asio/post.hpp>
#include <random>


namespace magnetar::storage {

namespace asio = boost::asio;

namespace {

std::string RandomNodeId() {
  std::random_device random;
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) out.push_back(kHex[random() & 0xf]);
  return out;
}

std::string WindowKey(const std::string& key) { return "mg:{lim:" + key + "}"; }
std::string SlotsKey(const std::string& key) { return "mg:{slots:" + key + "}"; }

}  // namespace

std::shared_ptr<RedisSharedLimits> RedisSharedLimits::Start(std::shared_ptr<RedisEngine> engine,
                                                            std::chrono::milliseconds lease) {
  std::shared_ptr<RedisSharedLimits> limits(new RedisSharedLimits(std::move(engine), lease));
  asio::post(limits->engine_->io(), [weak = std::weak_ptr(limits)] {
    if (auto self = weak.lock()) self->ScheduleRenewal();
  });
  return limits;
}

RedisSharedLimits::RedisSharedLimits(std::shared_ptr<RedisEngine> engine,
                                     std::chrono::milliseconds lease)
    : engine_(std::move(engine)),
      lease_(lease < std::chrono::milliseconds(300) ? std::chrono::milliseconds(300) : lease),
      node_id_(RandomNodeId()),
      timer_(engine_->io()) {}

RedisSharedLimits::~RedisSharedLimits() = default;

void RedisSharedLimits::Stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  // The timer belongs to the io thread; a renewal already queued sees stopped_ and ends. Only
  // weak references reach the io thread, so this object (and the engine it holds) is never
  // destroyed there.
  asio::post(engine_->io(), [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->timer_.cancel();
  });
}

std::string RedisSharedLimits::NowMs() const {
  return std::to_string(engine_->clock().Now() / 1000);
}

void RedisSharedLimits::CountInWindow(const std::string& key, int64_t limit, int64_t cost,
                                      int64_t window_ms, WindowCallback done) {
  engine_->Send(
      RedisEngine::Eval(redis::WindowCountScript(), {WindowKey(key)},
                        {std::to_string(limit), std::to_string(cost), std::to_string(window_ms)}),
      [done = std::move(done)](Result<RedisReply> reply) {
        if (!reply.ok()) return done(reply.status());
        if (reply->is_error()) return done(ReplyError(*reply));
        if (reply->type != RedisReply::Type::kArray || reply->elements.size() != 2) {
          return done(Internal("unexpected reply to the window count script"));
        }
        WindowDecision d;
        d.allowed = reply->elements[0].integer == 1;
        d.retry_after_ms = reply->elements[1].integer;
        done(d);
      });
}

void RedisSharedLimits::AcquireSlot(const std::string& key, int64_t cap, SlotCallback done) {
  std::string redis_key = SlotsKey(key);
  engine_->Send(
      RedisEngine::Eval(redis::SlotAcquireScript(), {redis_key},
                        {node_id_, std::to_string(cap), NowMs(), std::to_string(lease_.count())}),
      [weak = weak_from_this(), redis_key, done = std::move(done)](Result<RedisReply> reply) {
        if (!reply.ok()) return done(reply.status());
        if (reply->is_error()) return done(ReplyError(*reply));
        const bool taken = reply->integer == 1;
        if (taken) {
          if (auto self = weak.lock()) {
            std::lock_guard lock(self->mutex_);
            ++self->held_[redis_key];
          }
        }
        done(taken);
      });
}

void RedisSharedLimits::ReleaseSlot(const std::string& key) {
  std::string redis_key = SlotsKey(key);
  // Sent under the lock, so a release and a renewal reach Redis in the order of their counts.
  std::lock_guard lock(mutex_);
  auto it = held_.find(redis_key);
  if (it == held_.end()) return;  // never taken here (or already given back)
  if (--it->second <= 0) held_.erase(it);
  // A release lost with the connection is repaired by the next renewal, which writes the node's
  // own count.
  engine_->Send(RedisEngine::Eval(redis::SlotReleaseScript(), {std::move(redis_key)},
                                  {node_id_, NowMs(), std::to_string(lease_.count())}),
                [](Result<RedisReply>) {});
}

void RedisSharedLimits::ScheduleRenewal() {
  timer_.expires_after(lease_ / 3);
  timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock()) {
      self->RenewAll();
      self->ScheduleRenewal();
    }
  });
}

void RedisSharedLimits::RenewAll() {
  const std::string now = NowMs();
  const std::string lease = std::to_string(lease_.count());
  std::lock_guard lock(mutex_);
  if (stopped_) return;
  for (const auto& [key, count] : held_) {
    engine_->Send(RedisEngine::Eval(redis::SlotRenewScript(), {key},
                                    {node_id_, std::to_string(count), now, lease}),
                  [](Result<RedisReply>) {});
  }
}

}  // namespace magnetar::storage
